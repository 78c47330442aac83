//! The write path: records are prepared (parsed, serialised, index terms computed) where they
//! are received, grouped into batches, and committed through one narrow interface,
//! [`CommitLog`]. A message counts as accepted only after its batch is committed.

mod batcher;

use std::sync::Arc;

use tokio::sync::oneshot;

pub use batcher::{run_batcher, BatchLimits};

use crate::metrics::ListenerMetrics;
use crate::store::keys::IndexTerms;
use crate::store::{Control, Entry, SeqRange, StoreError};

/// One record ready to commit.
pub struct PreparedRecord {
    pub received_micros: i64,
    /// The record's canonical JSON, without `seq` (assigned at commit).
    pub json: Vec<u8>,
    pub terms: IndexTerms,
    pub listener: Arc<ListenerMetrics>,
    /// Told the record's seq once it is committed (RELP answers only then).
    pub ack: Option<oneshot::Sender<u64>>,
}

/// Makes a batch durable and says which seqs it got: implemented by replication (Raft), a
/// single relay being a one-member cluster. Called from blocking threads.
pub trait CommitLog: Send + Sync + 'static {
    fn commit(&self, entries: &[Entry<'_>]) -> Result<SeqRange, StoreError>;
    /// Makes forwarding state (cursors, dead letters) durable, ordered with the records.
    fn control(&self, ops: &[Control]) -> Result<(), StoreError>;
    fn next_seq(&self) -> u64;
}
