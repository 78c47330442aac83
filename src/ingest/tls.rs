//! TLS for the TLS and RELP-over-TLS listeners (RFC 5425): certificates and keys read as PEM
//! through `rustls-pki-types`, optional client certificates verified against a CA, and reloads
//! that swap the configuration for new connections without touching open ones.
//!
//! TLS 1.3 session tickets are not sent: a client that closes without reading them (loggen,
//! many device stacks) makes its kernel answer with a reset, and a reset discards data the
//! relay has not read yet. Without tickets the server never writes unasked, and nothing is lost.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::metrics;

/// How often certificate files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The files a TLS listener serves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// What identifies a file's content cheaply: size and modification time.
type Stamp = Vec<Option<(u64, SystemTime)>>;

/// The current server configuration of one listener, swapped on reload.
pub struct TlsReloader {
    listener: String,
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    stamp: Mutex<Stamp>,
}

pub(crate) fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// Builds a server configuration from the files; returns it and the certificate's expiry.
pub fn load(files: &TlsFiles) -> Result<(ServerConfig, i64), String> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let expiry = expiry_of(&certs[0]).unwrap_or(0);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} / {}: {e}", files.cert.display(), files.key.display()))?;
    config.send_tls13_tickets = 0;
    Ok((config, expiry))
}

fn stamp(files: &TlsFiles) -> Stamp {
    [Some(&files.cert), Some(&files.key), files.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

impl TlsReloader {
    /// Loads the files; fails (naming the file) if they do not make a valid configuration.
    pub fn new(listener: &str, files: TlsFiles) -> Result<Arc<TlsReloader>, String> {
        let stamp_now = stamp(&files);
        let (config, expiry) = load(&files)?;
        metrics::set_certificate_expiry(listener, expiry);
        Ok(Arc::new(TlsReloader {
            listener: listener.to_string(),
            files,
            current: RwLock::new(Arc::new(config)),
            stamp: Mutex::new(stamp_now),
        }))
    }

    /// An acceptor with the current configuration, for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    /// Reloads now (SIGHUP). A failed reload keeps the old configuration.
    pub fn reload(&self) {
        let stamp_now = stamp(&self.files);
        match load(&self.files) {
            Ok((config, expiry)) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
                metrics::set_certificate_expiry(&self.listener, expiry);
                metrics::tls_reloaded(&self.listener, true);
                tracing::info!(listener = %self.listener, cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                metrics::tls_reloaded(&self.listener, false);
                tracing::error!(listener = %self.listener, error = %e, "TLS reload failed; keeping the previous certificate");
            }
        }
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_now;
    }

    /// Reloads if a file changed since the last load.
    pub fn reload_if_changed(&self) {
        let changed = *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) != stamp(&self.files);
        if changed {
            self.reload();
        }
    }
}

/// The subject of a DER certificate, as `CN=…, O=…`.
pub fn subject_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.subject().to_string())
}

fn expiry_of(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// A self-signed certificate for `localhost` in `dir`, made on first use, so that TLS works
/// without configuration. Returns the certificate and key paths.
pub fn ensure_self_signed(dir: &Path) -> Result<TlsFiles, String> {
    let cert = dir.join("self-signed-cert.pem");
    let key = dir.join("self-signed-key.pem");
    if !(cert.exists() && key.exists()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let generated = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert, generated.cert.pem())
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        tracing::warn!(
            cert = %cert.display(),
            "no TLS certificate configured: generated a self-signed one for localhost; configure cert and key for production"
        );
    }
    Ok(TlsFiles {
        cert,
        key,
        ca: None,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}
