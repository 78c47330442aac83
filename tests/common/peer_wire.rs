//! Speaking to a node's peer port by hand, as an intruder would: the frame format written out
//! byte by byte (a 4-byte big-endian length of kind byte and body, the kind byte, a bincode
//! 1.3 body), over plain TCP or TLS with any certificate the test picks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The kind byte of a Raft vote request.
pub const KIND_VOTE: u8 = 2;
/// The kind byte of a follower's write handed to the leader.
pub const KIND_WRITE: u8 = 4;

/// How long a read from the peer port may wait before the test treats it as no answer.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// Any stream to a peer port.
pub trait Wire: Read + Write {}
impl<T: Read + Write> Wire for T {}

/// A frame: length, kind, body.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// An openraft 0.9 `VoteRequest<u64>` as bincode 1.3 encodes it by default (fixed-width little
/// endian): `vote: { leader_id: { term, node_id }, committed }`, then `last_log_id: None`.
pub fn vote_request(term: u64, candidate: u64) -> Vec<u8> {
    let mut body = term.to_le_bytes().to_vec();
    body.extend_from_slice(&candidate.to_le_bytes());
    body.push(0); // committed: false
    body.push(0); // last_log_id: None
    body
}

/// A plain TCP connection to the peer port on 127.0.0.1.
pub fn plain(port: u16) -> TcpStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(READ_LIMIT)).unwrap();
    tcp
}

/// A TLS client to the peer port on 127.0.0.1, trusting `ca` and presenting `cert`/`key`. The
/// handshake runs on first use, so a server that refuses the certificate shows up as a failed
/// read or write.
pub fn tls(
    port: u16,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> StreamOwned<ClientConnection, TcpStream> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    StreamOwned::new(conn, plain(port))
}

/// Sends `bytes` and reads the answer frame: `Some((kind, body))`, or `None` when the server
/// closed the connection (or failed the handshake) instead of answering.
pub fn exchange(stream: &mut dyn Wire, bytes: &[u8]) -> Option<(u8, Vec<u8>)> {
    stream.write_all(bytes).ok()?;
    stream.flush().ok()?;
    read_frame(stream)
}

/// The largest answer a test expects: a vote or a write's verdict.
const MAX_ANSWER: usize = 1 << 20;

/// Reads one frame; `None` at end of stream, on an error, or when what came is no answer
/// frame (a TLS alert read as a length, say).
pub fn read_frame(stream: &mut dyn Wire) -> Option<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ANSWER {
        return None;
    }
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).ok()?;
    let kind = *rest.first()?;
    Some((kind, rest.split_off(1)))
}
