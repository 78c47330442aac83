//! TLS for outgoing connections: the server is verified against the configured CA or the
//! system's trust store, and a client certificate is offered when configured.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::config::{Destination, TlsClient, SYSTEM_CAS};

use crate::ingest::tls::{provider, read_certs};

/// A connector for one destination, with the name its server must prove.
#[derive(Clone)]
pub struct Client {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Client {
    /// A connector trusting `tls.ca` (or the system's CAs), proving `tls.server_name` or else
    /// `host`.
    pub fn new(host: &str, tls: &TlsClient) -> Result<Client, String> {
        let mut roots = RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                for cert in read_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                }
            }
            None => {
                let (added, _) =
                    roots.add_parsable_certificates(read_certs(Path::new(SYSTEM_CAS))?);
                if added == 0 {
                    return Err(format!("{SYSTEM_CAS}: no usable CA certificate"));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(read_certs(cert)?, key)
                    .map_err(|e| format!("{}: {e}", cert.display()))?
            }
            _ => builder.with_no_client_auth(),
        };
        let host = tls.server_name.clone().unwrap_or_else(|| host.to_string());
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("{host:?} is not a server name: {e}"))?;
        Ok(Client {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS handshake over `stream`, given up on after `timeout`.
    pub async fn handshake<S>(&self, stream: S, timeout: Duration) -> Result<TlsStream<S>, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        tokio::time::timeout(timeout, self.connector.connect(self.name.clone(), stream))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// Connects TCP to the destination within its timeout, with Nagle off.
pub async fn connect_tcp(dest: &Destination) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(dest.timeout, TcpStream::connect(dest.authority()))
        .await
        .map_err(|_| format!("connect to {} timed out", dest.authority()))?
        .map_err(|e| format!("connect to {}: {e}", dest.authority()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
