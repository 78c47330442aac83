//! The UDP listener (RFC 5426): one message per datagram, several sockets with SO_REUSEPORT so
//! the kernel spreads load over cores, and a large receive buffer for bursts. UDP has no
//! backpressure: a datagram that finds the pipeline full is dropped and counted.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::{Ingest, Peer, Received};
use crate::metrics::DropReason;
use crate::write_path::{PreparedRecord, Refused};

/// The largest UDP payload (65,535 minus IP and UDP headers).
const MAX_DATAGRAM: usize = 65_535;

/// How long a reading thread sleeps once it has emptied its socket while datagrams keep coming.
/// The kernel queues them meanwhile (the receive buffer is sized for bursts), and the thread
/// takes the queue in one pass. Waking for every few datagrams instead cost more CPU than
/// parsing them at 50,000 datagrams a second; 2 ms used 8% less CPU than 1 ms there
/// (bench/README.md, "UDP read by threads").
const GATHER: Duration = Duration::from_millis(2);

/// The most datagrams prepared before they are handed to the pipeline together. Handing them
/// over one by one woke the write path for nearly each of them, as it takes records faster
/// than they are parsed.
const HAND_OVER_AT: usize = 256;

/// The most bytes of records (their JSON) a thread holds before handing them over: records of
/// maximum size full of control bytes reach hundreds of kilobytes each, and what a thread
/// holds is outside the pipeline's byte budget until handed over.
const HAND_OVER_BYTES: usize = 1 << 20;

/// Datagrams a thread prepared and has not handed over yet, and the bytes of their JSON.
#[derive(Default)]
struct Prepared {
    records: Vec<PreparedRecord>,
    bytes: usize,
}

impl Prepared {
    fn push(&mut self, record: PreparedRecord) {
        self.bytes += record.record.json.len();
        self.records.push(record);
    }

    /// Whether to hand them over before reading more: [`HAND_OVER_AT`] or [`HAND_OVER_BYTES`].
    fn due(&self) -> bool {
        self.records.len() >= HAND_OVER_AT || self.bytes >= HAND_OVER_BYTES
    }

    fn take(&mut self) -> std::vec::Drain<'_, PreparedRecord> {
        self.bytes = 0;
        self.records.drain(..)
    }
}

/// How often a thread waiting for traffic looks for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

fn bind_socket(ingest: &Ingest, reuse_port: bool) -> io::Result<UdpSocket> {
    let addr = ingest.config.url.addr;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // The kernel caps this at net.core.rmem_max; the effective size is logged.
    let _ = socket.set_recv_buffer_size(ingest.config.udp_receive_buffer);
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let effective = socket.recv_buffer_size().unwrap_or(0);
    if effective < ingest.config.udp_receive_buffer {
        tracing::warn!(
            listener = %ingest.config.name,
            asked = ingest.config.udp_receive_buffer,
            effective,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max"
        );
    }
    Ok(socket.into())
}

/// Binds the sockets and serves until shutdown: one thread per socket, outside the async
/// runtime. A socket the runtime polls wakes a worker for every burst of datagrams, whether or
/// not a task is ready to read them; a thread of its own can let a burst gather instead.
pub async fn run(ingest: Arc<Ingest>) -> io::Result<()> {
    let count = ingest.config.udp_sockets.max(1);
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(bind_socket(&ingest, count > 1)?);
    }
    tracing::info!(listener = %ingest.config.name, addr = %ingest.config.url.addr, sockets = count, "listening (udp)");
    let mut done = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let ingest = ingest.clone();
        let (finished, finished_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("udp-{}-{i}", ingest.config.name))
            .spawn(move || {
                serve(&ingest, &socket);
                let _ = finished.send(());
            })?;
        done.push(finished_rx);
    }
    for finished in done {
        let _ = finished.await;
    }
    Ok(())
}

/// Reads datagrams until shutdown: a blocking wait while the socket is quiet; while datagrams
/// arrive, passes that empty its queue with a short sleep between them.
fn serve(ingest: &Ingest, socket: &UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // Most datagrams come from the sender of the one before: its address is printed once.
    let mut last: Option<(SocketAddr, Peer)> = None;
    let mut prepared = Prepared::default();
    let mut read = |socket: &UdpSocket, prepared: &mut Prepared| -> io::Result<()> {
        let (len, from) = socket.recv_from(&mut buf)?;
        let peer = match &last {
            Some((addr, peer)) if *addr == from => peer,
            _ => &last.insert((from, Peer::of(from))).1,
        };
        prepared.push(prepare(ingest, &buf[..len], peer));
        Ok(())
    };
    let nothing_queued = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    };
    let warn = |e: &io::Error| {
        tracing::warn!(listener = %ingest.config.name, error = %e, "udp receive failed");
    };
    while !ingest.shutdown.is_set() {
        // Quiet: wait for a datagram, or for the next look at shutdown.
        match read(socket, &mut prepared) {
            Ok(()) => {}
            Err(e) if nothing_queued(&e) => continue,
            Err(e) => {
                warn(&e);
                continue;
            }
        }
        // Busy: empty the queue, let the next burst gather, and again, until a pass finds
        // nothing.
        if let Err(e) = socket.set_nonblocking(true) {
            warn(&e);
            if !hand_over(ingest, &mut prepared) {
                return;
            }
            continue;
        }
        loop {
            let mut taken = 0usize;
            loop {
                match read(socket, &mut prepared) {
                    Ok(()) => taken += 1,
                    Err(e) if nothing_queued(&e) => break,
                    Err(e) => {
                        warn(&e);
                        break;
                    }
                }
                if prepared.due() && !hand_over(ingest, &mut prepared) {
                    return;
                }
            }
            if !hand_over(ingest, &mut prepared) {
                return;
            }
            if taken == 0 || ingest.shutdown.is_set() {
                break;
            }
            std::thread::sleep(GATHER);
        }
        if let Err(e) = socket.set_nonblocking(false) {
            warn(&e);
        }
    }
    // Received before shutdown: accepted like the rest.
    hand_over(ingest, &mut prepared);
}

/// Prepares one datagram: parsed, with its source and receive time.
fn prepare(ingest: &Ingest, datagram: &[u8], peer: &Peer) -> PreparedRecord {
    let max = ingest.config.max_message_size;
    let len = datagram.len();
    let (bytes, defect) = if len > max {
        (
            &datagram[..max],
            Some(format!("datagram truncated: {len} bytes, first {max} kept")),
        )
    } else {
        (datagram, None)
    };
    ingest.prepare(bytes, defect.as_deref(), peer, &Received::now(), None)
}

/// Hands prepared datagrams to the pipeline, counting those it has no room for (by count or
/// by bytes) or that the disk watermark refuses; `false` once the pipeline has closed.
fn hand_over(ingest: &Ingest, prepared: &mut Prepared) -> bool {
    for record in prepared.take() {
        match ingest.pipeline.try_send(record) {
            Ok(()) => {}
            Err(Refused::Full) => ingest
                .metrics
                .dropped(DropReason::PipelineFull)
                .increment(1),
            Err(Refused::DiskLow) => ingest.metrics.dropped(DropReason::DiskLow).increment(1),
            Err(Refused::Closed) => {
                ingest.metrics.dropped(DropReason::Shutdown).increment(1);
                return false;
            }
        }
    }
    true
}
