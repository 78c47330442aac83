//! Peer traffic: Raft's messages, writes a follower hands to the leader, and cluster
//! administration, over one TCP connection per peer stream. Each request is a frame (a 4-byte
//! length, a kind byte, a bincode body) answered by one frame; a broken or timed-out exchange
//! drops the connection, and the next call connects again.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};

use super::config::PeerTlsFiles;
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

/// Frames larger than this are refused: a snapshot chunk or one batch is far smaller.
const MAX_FRAME: usize = 512 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    body: &[u8],
) -> io::Result<()> {
    w.write_all(&((body.len() + 1) as u32).to_be_bytes())
        .await?;
    w.write_all(&[kind]).await?;
    w.write_all(body).await?;
    w.flush().await
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<(u8, Vec<u8>)> {
    let len = r.read_u32().await? as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::other(format!("bad frame length {len}")));
    }
    let kind = r.read_u8().await?;
    let mut body = vec![0u8; len - 1];
    r.read_exact(&mut body).await?;
    Ok((kind, body))
}

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
    tls: Option<PeerTls>,
    conn: Option<BufStream<Box<dyn Io>>>,
}

impl PeerClient {
    pub fn new(addr: &str, tls: Option<PeerTls>) -> PeerClient {
        PeerClient {
            addr: addr.to_string(),
            tls,
            conn: None,
        }
    }

    /// The peer address this client connects to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn connect(&self) -> Result<Box<dyn Io>, CallError> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| CallError::Unreachable(io::Error::other("connect timed out")))?
            .map_err(CallError::Unreachable)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let client = tls
                    .client(&self.addr)
                    .map_err(|e| CallError::Unreachable(io::Error::other(e)))?;
                let stream = client
                    .handshake(tcp, CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| CallError::Unreachable(io::Error::other(e)))?;
                Ok(Box::new(stream))
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
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => BufStream::with_capacity(64 << 10, 64 << 10, self.connect().await?),
        };
        let exchange = async {
            write_frame(&mut conn, kind as u8, body).await?;
            read_frame(&mut conn).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((_, answer))) => {
                self.conn = Some(conn);
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
            client: PeerClient::new(&node.addr, self.tls.clone()),
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

/// Answers one request; the answer is the encoded reply.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        kind: Kind,
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, String>> + Send;
}

/// Accepts peers until shutdown; each connection is served in order, request by request.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    tls: Option<PeerTls>,
    mut shutdown: Shutdown,
) {
    loop {
        let (tcp, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let _ = tcp.set_nodelay(true);
        let handler = handler.clone();
        let mut stop = shutdown.clone();
        let acceptor = tls.as_ref().map(|t| t.server.acceptor());
        tokio::spawn(async move {
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(e)) => {
                            tracing::warn!(peer = %from, error = %e, "peer TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            let mut conn = BufStream::with_capacity(64 << 10, 64 << 10, io);
            loop {
                let (kind, body) = tokio::select! {
                    r = read_frame(&mut conn) => match r {
                        Ok(frame) => frame,
                        Err(_) => return,
                    },
                    _ = stop.wait() => return,
                };
                let Some(kind) = Kind::of(kind) else {
                    tracing::warn!(peer = %from, kind, "unknown peer request; closing");
                    return;
                };
                match handler.handle(kind, body).await {
                    Ok(answer) => {
                        if write_frame(&mut conn, 0, &answer).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer = %from, ?kind, error = %e, "bad peer request; closing");
                        return;
                    }
                }
            }
        });
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
        async fn handle(&self, _kind: Kind, body: Vec<u8>) -> Result<Vec<u8>, String> {
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
        let mut client = PeerClient::new(&addr, None);
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
}
