//! Stream listeners: TCP and TLS carrying RFC 6587 frames (octet counting or LF/NUL, detected
//! per frame), and the accept loop that RELP shares. A semaphore caps connections; a connection
//! over the cap is closed at once and counted.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use auditrelay_parsers::framing::{FrameDecoder, Framing, Step};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::tls::TlsReloader;
use super::{relp, ConnectionGuard, Ingest, Peer, Received};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// The kernel send buffer of a RELP connection, which carries only replies of a few dozen
/// bytes: room for thousands, while a client that stops reading them cannot make the kernel
/// grow the buffer to megabytes (`tcp_wmem`) for each of a thousand connections.
const RELP_SEND_BUFFER: usize = 64 * 1024;

/// What runs on an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 6587 frames.
    Syslog,
    /// RELP commands with acknowledgements.
    Relp,
}

/// Accepts connections until shutdown.
pub async fn run(
    ingest: Arc<Ingest>,
    tls: Option<Arc<TlsReloader>>,
    protocol: Protocol,
) -> io::Result<()> {
    let listener = TcpListener::bind(ingest.config.url.addr).await?;
    tracing::info!(
        listener = %ingest.config.name,
        addr = %ingest.config.url.addr,
        transport = ingest.config.url.transport.scheme(),
        "listening"
    );
    let limit = Arc::new(Semaphore::new(ingest.config.max_connections));
    let mut shutdown = ingest.shutdown.clone();
    loop {
        let Some((stream, addr)) =
            crate::accept::next(&listener, &mut shutdown, &ingest.config.name).await
        else {
            return Ok(());
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ingest.metrics.connections_refused.increment(1);
            drop(stream);
            continue;
        };
        let guard = ConnectionGuard::new(ingest.metrics.clone(), permit);
        let ingest = ingest.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let _ = stream.set_nodelay(true);
            if protocol == Protocol::Relp {
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(RELP_SEND_BUFFER);
            }
            let peer = Peer::of(addr);
            match tls {
                None => serve(stream, peer, &ingest, protocol).await,
                Some(tls) => serve_tls(stream, peer, &ingest, &tls, protocol).await,
            }
        });
    }
}

async fn serve_tls(
    stream: TcpStream,
    mut peer: Peer,
    ingest: &Arc<Ingest>,
    tls: &TlsReloader,
    protocol: Protocol,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ingest.metrics.connections_refused.increment(1);
            tracing::info!(listener = %ingest.config.name, peer = %peer.ip, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            ingest.metrics.connections_refused.increment(1);
            tracing::info!(listener = %ingest.config.name, peer = %peer.ip, "TLS handshake timed out");
            return;
        }
    };
    peer.tls_peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| super::tls::subject_of(cert));
    serve(stream, peer, ingest, protocol).await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: Peer,
    ingest: &Arc<Ingest>,
    protocol: Protocol,
) {
    let result = match protocol {
        Protocol::Syslog => read_frames(stream, &peer, ingest).await,
        Protocol::Relp => relp::serve(stream, peer, ingest.clone()).await,
    };
    if let Err(e) = result {
        tracing::debug!(listener = %ingest.config.name, error = %e, "connection ended with an error");
    }
}

/// Why reading stopped.
enum ReadOutcome {
    Data,
    Eof,
}

/// Reads more bytes into `buf`, or reports the end: the peer closed, the connection was idle
/// too long, or the relay is stopping (then what was received is still handed over).
pub(crate) async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    ingest: &Ingest,
) -> io::Result<bool> {
    let mut shutdown = ingest.shutdown.clone();
    if shutdown.is_set() {
        return Ok(false);
    }
    buf.reserve(READ_CHUNK);
    let idle = Duration::from_secs(ingest.config.idle_timeout_secs);
    let outcome = tokio::select! {
        r = tokio::time::timeout(idle, reader.read_buf(buf)) => match r {
            Ok(Ok(0)) => ReadOutcome::Eof,
            Ok(Ok(_)) => ReadOutcome::Data,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                tracing::debug!(listener = %ingest.config.name, "idle connection closed");
                ReadOutcome::Eof
            }
        },
        _ = shutdown.wait() => ReadOutcome::Eof,
    };
    Ok(matches!(outcome, ReadOutcome::Data))
}

async fn read_frames<R: AsyncRead + Unpin>(
    mut reader: R,
    peer: &Peer,
    ingest: &Ingest,
) -> io::Result<()> {
    let mut decoder = FrameDecoder::new(Framing::Auto, ingest.config.max_message_size);
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut start = 0;
    let mut eof = false;
    let mut received = Received::now();
    loop {
        match decoder.decode(&buf[start..], eof) {
            Step::Frame { consumed, frame } => {
                let record = ingest.prepare(
                    frame.bytes,
                    frame.defect().as_deref(),
                    peer,
                    &received,
                    None,
                );
                start += consumed;
                // Waiting here is the backpressure: no reads while the pipeline is full.
                if ingest.pipeline.send(record).await.is_err() {
                    return Ok(());
                }
            }
            Step::Discard { consumed, .. } => start += consumed,
            Step::NeedMore if eof => return Ok(()),
            Step::NeedMore => {
                buf.drain(..start);
                start = 0;
                // A read error ends the connection; frames already complete were handed over,
                // and a partial one is kept as an incomplete frame.
                eof = !read_more(&mut reader, &mut buf, ingest)
                    .await
                    .unwrap_or(false);
                received = Received::now();
            }
        }
    }
}
