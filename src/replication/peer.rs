//! Peer traffic: Raft's messages, writes a follower hands to the leader, and cluster
//! administration, over one TCP connection per peer stream. Each request is a frame (a 4-byte
//! length, a kind byte, a bincode body) answered by one frame; a broken or timed-out exchange
//! drops the connection, and the next call connects again.
//!
//! With TLS, both sides prove their node id with their certificate (see `identity`): the
//! client checks it reached the node it meant, the server hands the caller's id to the
//! [`Handler`], which decides what that node may ask (see `admission`). The server bounds what
//! a caller can hold: [`MAX_PEER_CONNECTIONS`], a handshake within [`CONNECT_TIMEOUT`], frames
//! within [`FRAME_TIMEOUT`] and [`MAX_FRAME`](super::frame::MAX_FRAME), idle connections
//! closed after [`IDLE_TIMEOUT`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::admission::Refusal;
use super::config::PeerTlsFiles;
use super::frame::{read_frame, read_len, read_rest, write_frame, FrameError};
use super::identity::node_id_of_chain;
use super::metrics::peer_refused;
use super::types::{decode, encode, NodeId, TypeConfig};
use crate::forward::config::TlsClient;
use crate::forward::tls::Client;
use crate::ingest::tls::{TlsFiles, TlsReloader};
use crate::shutdown::Shutdown;

/// What a frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Append = 1,
    Vote = 2,
    Snapshot = 3,
    /// A follower's write, for the leader to propose.
    Write = 4,
    /// `auditrelay cluster add|remove`, for the leader to carry out.
    Admin = 5,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Append,
            2 => Kind::Vote,
            3 => Kind::Snapshot,
            4 => Kind::Write,
            5 => Kind::Admin,
            _ => return None,
        })
    }
}

/// How long a TCP connect, and then a TLS handshake, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections the peer port serves at once; more are closed on arrival. A cluster of a few
/// nodes keeps one Raft connection per peer, plus a follower's writes in flight.
pub const MAX_PEER_CONNECTIONS: usize = 64;
/// An open connection with no frame for this long is closed: Raft's heartbeats keep live
/// ones busy many times a second.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A frame, once its length arrived, must arrive whole within this:
/// [`MAX_FRAME`](super::frame::MAX_FRAME) at a few MB/s.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// A client reuses a connection idle for less than this, well within [`IDLE_TIMEOUT`], so it
/// never writes to one the server is about to close.
const REUSE_WITHIN: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection could be made: the peer is down or unknown.
    Unreachable(io::Error),
    /// The exchange broke or timed out; the peer may or may not have acted on it.
    Network(io::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => write!(f, "unreachable: {e}"),
            CallError::Network(e) => write!(f, "{e}"),
        }
    }
}

/// A peer connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync> Io for T {}

/// How this node proves itself to peers and checks them: mutual TLS from one CA.
#[derive(Clone)]
pub struct PeerTls {
    files: TlsClient,
    server: Arc<TlsReloader>,
}

impl PeerTls {
    pub fn new(files: &PeerTlsFiles) -> Result<PeerTls, String> {
        let server = TlsReloader::new(
            "cluster",
            TlsFiles {
                cert: files.cert.clone(),
                key: files.key.clone(),
                ca: Some(files.ca.clone()),
            },
        )
        .map_err(|e| format!("cluster TLS: {e}"))?;
        Ok(PeerTls {
            files: TlsClient {
                ca: Some(files.ca.clone()),
                cert: Some(files.cert.clone()),
                key: Some(files.key.clone()),
                server_name: None,
            },
            server,
        })
    }

    pub fn reloader(&self) -> Arc<TlsReloader> {
        self.server.clone()
    }

    /// A connector for the peer at `addr`, which must prove the name (or IP) of its host.
    /// Made for each connection, so that replaced certificate files take effect.
    fn client(&self, addr: &str) -> Result<Client, String> {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        Client::new(host, &self.files)
    }
}

/// One connection to a peer, made on first use and after a failure.
pub struct PeerClient {
    addr: String,
    /// The node this client means to reach: with TLS, the server's certificate must name it.
    node: NodeId,
    tls: Option<PeerTls>,
    /// The open connection and when its last exchange ended.
    conn: Option<(BufStream<Box<dyn Io>>, Instant)>,
}

impl PeerClient {
    pub fn new(addr: &str, node: NodeId, tls: Option<PeerTls>) -> PeerClient {
        PeerClient {
            addr: addr.to_string(),
            node,
            tls,
            conn: None,
        }
    }

    /// The peer address this client connects to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn connect(&self) -> Result<Box<dyn Io>, CallError> {
        let unreachable = |e: String| CallError::Unreachable(io::Error::other(e));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(CallError::Unreachable)?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let client = tls.client(&self.addr).map_err(unreachable)?;
        let stream = client
            .handshake(tcp, CONNECT_TIMEOUT)
            .await
            .map_err(unreachable)?;
        match node_id_of_chain(stream.get_ref().1.peer_certificates()) {
            Some(id) if id == self.node => Ok(Box::new(stream)),
            named => {
                peer_refused(Refusal::WrongNode);
                let named = named.map_or("no node id".to_string(), |id| format!("node {id}"));
                tracing::warn!(peer = %self.addr, expected = self.node, certificate = %named, "peer's certificate names another node; not talking to it");
                Err(unreachable(format!(
                    "the certificate at {} names {named}, not node {}",
                    self.addr, self.node
                )))
            }
        }
    }

    /// Sends one request and waits for its answer, within `timeout`.
    ///
    /// Cancel-safe: the connection is taken out for the exchange and put back only after a
    /// whole one. Raft drops a call whose own timer runs out first (it starts before ours);
    /// had the connection stayed, the next call would have read the dropped call's answer as
    /// its own, or written after half a frame.
    pub async fn call(
        &mut self,
        kind: Kind,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let idle = self
            .conn
            .take()
            .filter(|(_, since)| since.elapsed() < REUSE_WITHIN);
        let mut conn = match idle {
            Some((conn, _)) => conn,
            None => BufStream::with_capacity(64 << 10, 64 << 10, self.connect().await?),
        };
        let exchange = async {
            write_frame(&mut conn, kind as u8, body).await?;
            read_frame(&mut conn).await.map_err(io::Error::from)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((_, answer))) => {
                self.conn = Some((conn, Instant::now()));
                Ok(answer)
            }
            Ok(Err(e)) => Err(CallError::Network(e)),
            Err(_) => Err(CallError::Network(io::Error::other(format!(
                "no answer within {timeout:?}"
            )))),
        }
    }
}

/// Makes Raft's connections to its peers.
pub struct Network {
    pub tls: Option<PeerTls>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            client: PeerClient::new(&node.addr, target, self.tls.clone()),
        }
    }
}

/// Raft's connection to one peer.
pub struct Peer {
    target: NodeId,
    client: PeerClient,
}

impl Peer {
    async fn rpc<Q, A, E>(
        &mut self,
        kind: Kind,
        request: &Q,
        option: RPCOption,
    ) -> Result<A, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Q: Serialize,
        A: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |e: String| RPCError::Network(NetworkError::new(&io::Error::other(e)));
        let body = encode(request).map_err(network)?;
        let answer = match self.client.call(kind, &body, option.hard_ttl()).await {
            Ok(answer) => answer,
            Err(CallError::Unreachable(e)) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(CallError::Network(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        match decode::<Result<A, RaftError<NodeId, E>>>(&answer).map_err(network)? {
            Ok(a) => Ok(a),
            Err(e) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(Kind::Append, &rpc, option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(Kind::Snapshot, &rpc, option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(Kind::Vote, &rpc, option).await
    }
}

/// Who sent a request, as far as the connection proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Plain TCP (loopback, or `insecure_plaintext_peers`): no identity to check.
    Unverified,
    /// The node id its TLS certificate names.
    Node(NodeId),
}

/// Why a request got no answer; either way the connection is closed.
#[derive(Debug)]
pub enum HandleError {
    /// The caller may not make this request (see `admission`).
    Refused(Refusal, String),
    /// The request could not be read or carried out.
    Bad(String),
}

impl From<String> for HandleError {
    fn from(e: String) -> HandleError {
        HandleError::Bad(e)
    }
}

/// Answers one request; the answer is the encoded reply.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        caller: Caller,
        kind: Kind,
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, HandleError>> + Send;
}

/// Counts and logs a refusal.
fn refuse(refusal: Refusal, from: SocketAddr, caller: Option<Caller>, detail: &str) {
    peer_refused(refusal);
    tracing::warn!(peer = %from, ?caller, reason = refusal.label(), detail, "peer refused; closing");
}

/// Accepts peers until shutdown, up to [`MAX_PEER_CONNECTIONS`] at once; each connection is
/// served in order, request by request.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    tls: Option<PeerTls>,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(MAX_PEER_CONNECTIONS));
    loop {
        let Some((tcp, from)) = crate::accept::next(&listener, &mut shutdown, "peer").await else {
            return;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(Refusal::Connections, from, None, "connection limit reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let handler = handler.clone();
        let stop = shutdown.clone();
        let acceptor = tls.as_ref().map(|t| t.server.acceptor());
        tokio::spawn(async move {
            serve_connection(tcp, from, acceptor, handler.as_ref(), stop).await;
            drop(slot);
        });
    }
}

/// The TLS handshake, then the caller's identity: `None` when it is refused.
async fn admit_connection(
    tcp: TcpStream,
    from: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) -> Option<(Box<dyn Io>, Caller)> {
    let Some(acceptor) = acceptor else {
        return Some((Box::new(tcp), Caller::Unverified));
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            refuse(
                Refusal::Handshake,
                from,
                None,
                &format!("peer TLS handshake failed: {e}"),
            );
            return None;
        }
        Err(_) => {
            refuse(Refusal::Timeout, from, None, "peer TLS handshake timed out");
            return None;
        }
    };
    let Some(id) = node_id_of_chain(stream.get_ref().1.peer_certificates()) else {
        refuse(
            Refusal::NoNodeId,
            from,
            None,
            "the certificate names no node (no urn:auditrelay:node:N URI SAN)",
        );
        return None;
    };
    Some((Box::new(stream), Caller::Node(id)))
}

/// What came next on a connection.
enum Next {
    Frame(u8, Vec<u8>),
    /// No frame began within [`IDLE_TIMEOUT`].
    Idle,
    /// A frame began but was not whole within [`FRAME_TIMEOUT`].
    TimedOut,
    Ended(FrameError),
}

/// Reads the next frame: it must begin within `idle` and, once begun, be whole within `within`.
async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    conn: &mut R,
    idle: Duration,
    within: Duration,
) -> Next {
    let len = match tokio::time::timeout(idle, read_len(conn)).await {
        Ok(Ok(len)) => len,
        Ok(Err(e)) => return Next::Ended(e),
        Err(_) => return Next::Idle,
    };
    match tokio::time::timeout(within, read_rest(conn, len)).await {
        Ok(Ok((kind, body))) => Next::Frame(kind, body),
        Ok(Err(e)) => Next::Ended(FrameError::Io(e)),
        Err(_) => Next::TimedOut,
    }
}

/// Serves one connection until it closes, misbehaves, idles out or the node stops.
async fn serve_connection<H: Handler>(
    tcp: TcpStream,
    from: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    handler: &H,
    mut stop: Shutdown,
) {
    let Some((io, caller)) = admit_connection(tcp, from, acceptor).await else {
        return;
    };
    let mut conn = BufStream::with_capacity(64 << 10, 64 << 10, io);
    loop {
        let (kind, body) = tokio::select! {
            next = next_frame(&mut conn, IDLE_TIMEOUT, FRAME_TIMEOUT) => match next {
                Next::Frame(kind, body) => (kind, body),
                Next::Idle => {
                    tracing::debug!(peer = %from, "idle peer connection closed");
                    return;
                }
                Next::TimedOut => {
                    let detail = format!("frame not complete within {FRAME_TIMEOUT:?}");
                    refuse(Refusal::Timeout, from, Some(caller), &detail);
                    return;
                }
                Next::Ended(e @ FrameError::TooLarge(_)) => {
                    refuse(Refusal::FrameTooLarge, from, Some(caller), &e.to_string());
                    return;
                }
                Next::Ended(e) => {
                    tracing::debug!(peer = %from, error = %e, "peer connection ended");
                    return;
                }
            },
            _ = stop.wait() => return,
        };
        let Some(kind) = Kind::of(kind) else {
            tracing::warn!(peer = %from, kind, "unknown peer request; closing");
            return;
        };
        match handler.handle(caller, kind, body).await {
            Ok(answer) => {
                if write_frame(&mut conn, 0, &answer).await.is_err() {
                    return;
                }
            }
            Err(HandleError::Refused(refusal, detail)) => {
                refuse(refusal, from, Some(caller), &format!("{kind:?}: {detail}"));
                return;
            }
            Err(HandleError::Bad(e)) => {
                tracing::warn!(peer = %from, ?kind, error = %e, "bad peer request; closing");
                return;
            }
        }
    }
}

/// Binds the peer port.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers each request with its own body, after `slow`'s delay for a body of `slow`.
    struct Echo;

    impl Handler for Echo {
        async fn handle(
            &self,
            _caller: Caller,
            _kind: Kind,
            body: Vec<u8>,
        ) -> Result<Vec<u8>, HandleError> {
            if body == b"slow" {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            Ok(body)
        }
    }

    #[tokio::test]
    async fn a_call_dropped_before_its_answer_leaves_no_answer_for_the_next_call() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, shutdown) = crate::shutdown::channel();
        let server = tokio::spawn(serve(listener, Arc::new(Echo), None, shutdown));
        let mut client = PeerClient::new(&addr, 1, None);
        assert_eq!(
            client
                .call(Kind::Append, b"first", Duration::from_secs(5))
                .await
                .unwrap(),
            b"first"
        );
        // Dropped by a caller's timer shorter than the server's delay, as Raft's own timer
        // drops a call: the request went out, its answer had not come back.
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            client.call(Kind::Append, b"slow", Duration::from_secs(5)),
        )
        .await;
        assert!(dropped.is_err(), "the call should have been dropped");
        for body in [&b"second"[..], b"third"] {
            let answer = client
                .call(Kind::Append, body, Duration::from_secs(5))
                .await;
            assert_eq!(answer.unwrap(), body, "each call gets its own answer");
        }
        stop.trigger();
        let _ = server.await;
    }

    #[tokio::test]
    async fn the_peer_port_closes_connections_beyond_its_cap() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = crate::shutdown::channel();
        let server = tokio::spawn(serve(listener, Arc::new(Echo), None, shutdown));
        let mut held = Vec::new();
        for _ in 0..MAX_PEER_CONNECTIONS {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            write_frame(&mut tcp, Kind::Write as u8, b"hello")
                .await
                .unwrap();
            let (_, answer) = read_frame(&mut tcp).await.unwrap();
            assert_eq!(answer, b"hello", "a connection within the cap is served");
            held.push(tcp);
        }
        let mut over = TcpStream::connect(addr).await.unwrap();
        let _ = write_frame(&mut over, Kind::Write as u8, b"hello").await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection over the cap was not closed unanswered: {read:?} {rest:?}"
        );
        let _ = over.shutdown().await;
        stop.trigger();
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_frame_begun_but_not_whole_in_time_is_cut_off_and_an_idle_connection_closed() {
        use tokio::io::AsyncWriteExt;
        let short = Duration::from_millis(100);
        let long = Duration::from_secs(30);
        let (mut client, mut server) = tokio::io::duplex(1 << 10);
        client.write_all(&100u32.to_be_bytes()).await.unwrap();
        client.write_all(&[1u8; 10]).await.unwrap();
        assert!(matches!(
            next_frame(&mut server, long, short).await,
            Next::TimedOut
        ));
        let (_client, mut server) = tokio::io::duplex(1 << 10);
        assert!(matches!(
            next_frame(&mut server, short, long).await,
            Next::Idle
        ));
    }

    /// Answers each request with the node id the server saw on its certificate.
    struct WhoAsks;

    impl Handler for WhoAsks {
        async fn handle(
            &self,
            caller: Caller,
            _kind: Kind,
            _body: Vec<u8>,
        ) -> Result<Vec<u8>, HandleError> {
            match caller {
                Caller::Node(id) => Ok(id.to_be_bytes().to_vec()),
                Caller::Unverified => Ok(Vec::new()),
            }
        }
    }

    /// A CA and certificates for nodes 1 and 2 (naming their ids, 127.0.0.1 and localhost)
    /// in `dir`; returns each node's files.
    fn node_pki(dir: &std::path::Path) -> [PeerTlsFiles; 2] {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            SanType,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        [1u64, 2].map(|id| {
            let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            let uri = format!("urn:auditrelay:node:{id}");
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().unwrap()));
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            let files = PeerTlsFiles {
                cert: dir.join(format!("node{id}.crt")),
                key: dir.join(format!("node{id}.key")),
                ca: dir.join("ca.crt"),
            };
            std::fs::write(&files.cert, cert.pem()).unwrap();
            std::fs::write(&files.key, key.serialize_pem()).unwrap();
            files
        })
    }

    #[tokio::test]
    async fn over_tls_the_server_learns_the_caller_s_node_id_and_the_client_checks_the_server_s() {
        let dir = tempfile::tempdir().unwrap();
        let [node1, node2] = node_pki(dir.path());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, shutdown) = crate::shutdown::channel();
        let server_tls = PeerTls::new(&node2).unwrap();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(WhoAsks),
            Some(server_tls),
            shutdown,
        ));
        let client_tls = PeerTls::new(&node1).unwrap();

        let mut to_node2 = PeerClient::new(&addr, 2, Some(client_tls.clone()));
        let answer = to_node2
            .call(Kind::Vote, b"", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            answer,
            1u64.to_be_bytes(),
            "the server saw node 1's certificate"
        );

        let mut to_node3 = PeerClient::new(&addr, 3, Some(client_tls));
        match to_node3.call(Kind::Vote, b"", Duration::from_secs(5)).await {
            Err(CallError::Unreachable(e)) => {
                assert!(e.to_string().contains("names node 2, not node 3"), "{e}")
            }
            other => panic!("a server with node 2's certificate taken for node 3: {other:?}"),
        }
        stop.trigger();
        let _ = server.await;
    }
}
