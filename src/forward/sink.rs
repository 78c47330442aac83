//! What a sink is: a task that takes batches in order, delivers them (retrying transient
//! failures itself) and acknowledges each batch, in order, once the receiver has it. Records
//! the receiver refuses for good are returned in the acknowledgement as dead letters.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::config::{Destination, Kind};
use super::metrics::DestinationMetrics;

/// One record, encoded for the destination.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Records sent together.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: u64,
    pub items: Vec<Item>,
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
