//! What a sink is: a task that takes batches in order, delivers them (retrying transient
//! failures itself) and acknowledges each batch, in order, once the receiver has it. Records
//! the receiver refuses for good are returned in the acknowledgement as dead letters.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::config::{Destination, Kind};
use super::metrics::DestinationMetrics;

/// Records sent together, their encoded payloads back to back in one buffer (one allocation
/// per batch, not per record). For syslog over TCP and TLS the payloads are already framed,
/// so the buffer goes on the wire as it is.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub id: u64,
    seqs: Vec<u64>,
    ends: Vec<usize>,
    pub data: Vec<u8>,
}

impl Batch {
    pub fn with_capacity(records: usize, bytes: usize) -> Batch {
        Batch {
            id: 0,
            seqs: Vec::with_capacity(records),
            ends: Vec::with_capacity(records),
            data: Vec::with_capacity(bytes),
        }
    }

    /// Ends the payload of record `seq`, written to `data` since the previous one.
    pub fn close_item(&mut self, seq: u64) {
        self.seqs.push(seq);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    pub fn seqs(&self) -> &[u64] {
        &self.seqs
    }

    pub fn seq(&self, i: usize) -> u64 {
        self.seqs[i]
    }

    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// (seq, payload) of each record in order.
    pub fn items(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        (0..self.len()).map(|i| (self.seqs[i], self.payload(i)))
    }
}

/// The receiver has batch `id`, except the `dead` records (seq, reason).
#[derive(Debug)]
pub struct Ack {
    pub id: u64,
    pub dead: Vec<(u64, String)>,
}

/// What every sink is given.
pub struct SinkContext {
    pub dest: Arc<Destination>,
    pub metrics: Arc<DestinationMetrics>,
    /// Changes on SIGHUP (the file sink reopens its file).
    pub hangup: watch::Receiver<u64>,
    pub acks: mpsc::UnboundedSender<Ack>,
}

impl SinkContext {
    /// Reports a batch delivered; false when the forwarder is gone.
    pub fn ack(&self, id: u64, dead: Vec<(u64, String)>) -> bool {
        self.acks.send(Ack { id, dead }).is_ok()
    }
}

/// Runs the sink for the destination's kind until the forwarder drops its side.
pub async fn run(
    dest: Arc<Destination>,
    metrics: Arc<DestinationMetrics>,
    hangup: watch::Receiver<u64>,
    batches: mpsc::Receiver<Batch>,
    acks: mpsc::UnboundedSender<Ack>,
) {
    let ctx = SinkContext {
        dest,
        metrics,
        hangup,
        acks,
    };
    match ctx.dest.kind {
        Kind::SyslogTcp | Kind::SyslogTls => super::stream::run(ctx, batches).await,
        Kind::SyslogUdp => super::udp::run(ctx, batches).await,
        Kind::Relp => super::relp::run(ctx, batches).await,
        Kind::SplunkHec | Kind::Elasticsearch | Kind::Http => super::http::run(ctx, batches).await,
        Kind::File => super::file::run(ctx, batches).await,
    }
}
