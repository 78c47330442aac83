//! The UDP listener (RFC 5426): one message per datagram, several sockets with SO_REUSEPORT so
//! the kernel spreads load over cores, and a large receive buffer for bursts. UDP has no
//! backpressure: a datagram that finds the pipeline full is dropped and counted.

use std::io;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;

use super::{Ingest, Peer, Received};
use crate::metrics::DropReason;

/// The largest UDP payload (65,535 minus IP and UDP headers).
const MAX_DATAGRAM: usize = 65_535;

fn bind_socket(ingest: &Ingest, reuse_port: bool) -> io::Result<UdpSocket> {
    let addr = ingest.config.url.addr;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // The kernel caps this at net.core.rmem_max; the effective size is logged.
    let _ = socket.set_recv_buffer_size(ingest.config.udp_receive_buffer);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let effective = socket.recv_buffer_size().unwrap_or(0);
    if effective < ingest.config.udp_receive_buffer {
        tracing::warn!(
            listener = %ingest.config.name,
            asked = ingest.config.udp_receive_buffer,
            effective,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max"
        );
    }
    UdpSocket::from_std(socket.into())
}

/// Binds the sockets and serves until shutdown.
pub async fn run(ingest: Arc<Ingest>) -> io::Result<()> {
    let count = ingest.config.udp_sockets.max(1);
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(bind_socket(&ingest, count > 1)?);
    }
    tracing::info!(listener = %ingest.config.name, addr = %ingest.config.url.addr, sockets = count, "listening (udp)");
    let mut tasks = Vec::new();
    for socket in sockets {
        tasks.push(tokio::spawn(serve(ingest.clone(), socket)));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

async fn serve(ingest: Arc<Ingest>, socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut shutdown = ingest.shutdown.clone();
    let max = ingest.config.max_message_size;
    loop {
        let (len, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(listener = %ingest.config.name, error = %e, "udp receive failed");
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let peer = Peer::of(from);
        let (bytes, defect) = if len > max {
            (
                &buf[..max],
                Some(format!("datagram truncated: {len} bytes, first {max} kept")),
            )
        } else {
            (&buf[..len], None)
        };
        let record = ingest.prepare(bytes, defect.as_deref(), &peer, &Received::now(), None);
        match ingest.pipeline.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => ingest
                .metrics
                .dropped(DropReason::PipelineFull)
                .increment(1),
            Err(TrySendError::Closed(_)) => {
                ingest.metrics.dropped(DropReason::Shutdown).increment(1);
                return;
            }
        }
    }
}
