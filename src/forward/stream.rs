//! Syslog over TCP (RFC 6587) and TLS (RFC 5425).
//!
//! Plain syslog has no acknowledgements, so a batch counts as delivered when the receiving
//! kernel has acknowledged its last byte (`tcp_ack`) and the connection stayed healthy for the
//! settle time after that: a receiver that stops loses what its kernel took and it had not read
//! yet, and such data is still in the window and goes again on the next connection. Batches
//! are written back to back (up to `in_flight` unacknowledged) without waiting.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use super::config::{Framing, Kind};
use super::sink::{Batch, SinkContext};
use super::tcp_ack::unacknowledged;
use super::tls::{connect_tcp, Client};
use super::Backoff;

/// How often the kernel's acknowledgement is looked at.
const ACK_POLL: Duration = Duration::from_millis(10);

/// Counts the bytes written to the socket (below TLS, so they compare with the kernel's).
struct Counting<S> {
    inner: S,
    written: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Frames one message onto `out` (the encoder does this for stream destinations).
pub fn frame(framing: Framing, payload: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            super::encode::write_decimal(payload.len() as u64, out);
            out.push(b' ');
            out.extend_from_slice(payload);
        }
        Framing::Lf => {
            let body = payload.strip_suffix(b"\n").unwrap_or(payload);
            out.extend_from_slice(body);
            out.push(b'\n');
        }
    }
}

struct Sent {
    batch: Batch,
    /// Socket bytes written up to this batch's end, on the current connection.
    end: u64,
    acked_at: Option<Instant>,
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

struct Connection {
    writer: Writer,
    fd: i32,
    written: Arc<AtomicU64>,
    closed: oneshot::Receiver<()>,
    reader: tokio::task::JoinHandle<()>,
}

/// Splits `stream`, reading on a task of its own: a syslog receiver never writes, so a read
/// that returns means the connection is over, and `closed` says so.
fn watch_reads<S>(stream: S, closed: oneshot::Sender<()>) -> (tokio::task::JoinHandle<()>, Writer)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, w) = tokio::io::split(stream);
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    (task, Box::new(w))
}

async fn open(ctx: &SinkContext, tls: Option<&Client>) -> Result<Connection, String> {
    let tcp = connect_tcp(&ctx.dest).await?;
    let fd = tcp.as_raw_fd();
    let written = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: tcp,
        written: written.clone(),
    };
    let (tx, closed) = oneshot::channel();
    let (reader, writer) = match tls {
        Some(client) => watch_reads(client.handshake(counting, ctx.dest.timeout).await?, tx),
        None => watch_reads(counting, tx),
    };
    Ok(Connection {
        writer,
        fd,
        written,
        closed,
        reader,
    })
}

/// Writes a batch (framed by the encoder) and returns the socket bytes written so far.
async fn write_batch(
    ctx: &SinkContext,
    conn: &mut Connection,
    batch: &Batch,
) -> Result<u64, String> {
    let write = async {
        conn.writer.write_all(&batch.data).await?;
        conn.writer.flush().await
    };
    tokio::time::timeout(ctx.dest.timeout, write)
        .await
        .map_err(|_| "write timed out (the receiver stopped reading)".to_string())?
        .map_err(|e| format!("write: {e}"))?;
    ctx.metrics.sent.increment(batch.len() as u64);
    Ok(conn.written.load(Ordering::Relaxed))
}

pub async fn run(ctx: SinkContext, mut batches: mpsc::Receiver<Batch>) {
    let name = ctx.dest.name.clone();
    let tls = match (&ctx.dest.tls, ctx.dest.kind) {
        (Some(t), Kind::SyslogTls) => loop {
            match Client::new(&ctx.dest.host, t) {
                Ok(c) => break Some(c),
                Err(e) => {
                    tracing::error!(destination = %name, error = %e, "TLS setup failed; retrying");
                    tokio::time::sleep(ctx.dest.retry_max).await;
                }
            }
        },
        _ => None,
    };
    let mut window: VecDeque<Sent> = VecDeque::new();
    let mut backoff = Backoff::new(ctx.dest.retry_max);
    let mut input_open = true;
    loop {
        let mut conn = match open(&ctx, tls.as_ref()).await {
            Ok(c) => c,
            Err(e) => {
                ctx.metrics.connected.set(0.0);
                ctx.metrics.failures.increment(1);
                tracing::warn!(destination = %name, error = %e, "cannot connect");
                tokio::time::sleep(backoff.delay()).await;
                continue;
            }
        };
        ctx.metrics.connected.set(1.0);
        tracing::info!(destination = %name, "connected");
        let mut failure: Option<String> = None;
        for sent in window.iter_mut() {
            ctx.metrics.retried.increment(sent.batch.len() as u64);
            match write_batch(&ctx, &mut conn, &sent.batch).await {
                Ok(end) => {
                    sent.end = end;
                    sent.acked_at = None;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut tick = tokio::time::interval(ACK_POLL);
        // Whether this connection delivered anything (then a loss restarts the backoff), and
        // when the receiving kernel last acknowledged more bytes (a peer that vanished without
        // a reset would otherwise hold the window until TCP gives up, many minutes later).
        let mut delivered_any = false;
        let mut acked_before = 0u64;
        let mut progress_at = Instant::now();
        while failure.is_none() {
            tokio::select! {
                biased;
                _ = &mut conn.closed => failure = Some("the receiver closed the connection".into()),
                _ = tick.tick() => {
                    let written = conn.written.load(Ordering::Relaxed);
                    let acked = unacknowledged(conn.fd).map_or(0, |q| written.saturating_sub(q));
                    let now = Instant::now();
                    if acked > acked_before || acked == written {
                        acked_before = acked;
                        progress_at = now;
                    } else if now.duration_since(progress_at) > ctx.dest.timeout {
                        failure = Some(format!(
                            "the receiver acknowledged nothing for {:?}",
                            ctx.dest.timeout
                        ));
                        continue;
                    }
                    for sent in window.iter_mut() {
                        if sent.end > acked {
                            break;
                        }
                        sent.acked_at.get_or_insert(now);
                    }
                    while window
                        .front()
                        .and_then(|s| s.acked_at)
                        .is_some_and(|t| now.duration_since(t) >= ctx.dest.settle)
                    {
                        if let Some(sent) = window.pop_front() {
                            delivered_any = true;
                            if !ctx.ack(sent.batch.id, Vec::new()) {
                                return;
                            }
                        }
                    }
                    if !input_open && window.is_empty() {
                        return;
                    }
                }
                batch = batches.recv(), if input_open
                    && window.iter().filter(|s| s.acked_at.is_none()).count() < ctx.dest.in_flight => match batch {
                    Some(batch) => match write_batch(&ctx, &mut conn, &batch).await {
                        Ok(end) => window.push_back(Sent { batch, end, acked_at: None }),
                        Err(e) => {
                            window.push_back(Sent { batch, end: u64::MAX, acked_at: None });
                            failure = Some(e);
                        }
                    },
                    None => input_open = false,
                },
            }
        }
        conn.reader.abort();
        ctx.metrics.connected.set(0.0);
        ctx.metrics.failures.increment(1);
        let e = failure.unwrap_or_default();
        tracing::warn!(destination = %name, error = %e, unacknowledged = window.len(), "connection lost; unacknowledged batches go again");
        if delivered_any {
            backoff.reset();
        }
        tokio::time::sleep(backoff.delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let mut out = Vec::new();
        frame(Framing::OctetCounting, b"<13>1 - - - - - - hi", &mut out);
        frame(Framing::Lf, b"a\n", &mut out);
        frame(Framing::Lf, b"b", &mut out);
        assert_eq!(out, b"20 <13>1 - - - - - - hia\nb\n");
    }
}
