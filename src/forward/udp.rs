//! Syslog over UDP (RFC 5426): one message per datagram, best effort. A datagram the kernel
//! refuses as too large is a dead letter; other send errors are retried with backoff.

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::sink::{Batch, SinkContext};
use super::Backoff;

async fn socket(ctx: &SinkContext) -> Result<UdpSocket, String> {
    let authority = ctx.dest.authority();
    let target = tokio::net::lookup_host(&authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(target).await.map_err(|e| e.to_string())?;
    Ok(socket)
}

pub async fn run(ctx: SinkContext, mut batches: mpsc::Receiver<Batch>) {
    let name = ctx.dest.name.clone();
    let mut backoff = Backoff::new(ctx.dest.retry_max);
    let socket = loop {
        match socket(&ctx).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "cannot open the UDP socket");
                tokio::time::sleep(backoff.delay()).await;
            }
        }
    };
    ctx.metrics.connected.set(1.0);
    while let Some(batch) = batches.recv().await {
        let mut dead = Vec::new();
        for (seq, payload) in batch.items() {
            loop {
                match socket.send(payload).await {
                    Ok(_) => {
                        ctx.metrics.sent.increment(1);
                        backoff.reset();
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                        dead.push((seq, format!("too large for a UDP datagram: {e}")));
                        break;
                    }
                    // An ICMP "port unreachable" from an earlier datagram surfaces here:
                    // the receiver is down, so wait and send this one again.
                    Err(e) => {
                        ctx.metrics.retried.increment(1);
                        ctx.metrics.failures.increment(1);
                        tracing::warn!(destination = %name, error = %e, "UDP send failed; retrying");
                        tokio::time::sleep(backoff.delay()).await;
                    }
                }
            }
        }
        if !ctx.ack(batch.id, dead) {
            return;
        }
    }
}
