//! The write path: records are prepared (parsed, serialised, index terms computed) where they
//! are received, grouped into batches, and committed through one narrow interface,
//! [`CommitLog`]. A message counts as accepted only after its batch is committed.

mod batcher;

use std::sync::Arc;

use tokio::sync::oneshot;

pub use batcher::{run_batcher, BatchLimits};

use crate::metrics::ListenerMetrics;
use crate::store::keys::IndexTerms;
use crate::store::{Entry, SeqRange, Store, StoreError};

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

/// Makes a batch durable and says which seqs it got. The single-node implementation writes
/// the store with a synced WAL; replication puts Raft behind the same interface.
pub trait CommitLog: Send + Sync + 'static {
    fn commit(&self, entries: &[Entry<'_>]) -> Result<SeqRange, StoreError>;
    fn next_seq(&self) -> u64;
}

/// The embedded single-node commit log: the store itself.
pub struct LocalCommitLog {
    store: Store,
}

impl LocalCommitLog {
    pub fn new(store: Store) -> LocalCommitLog {
        LocalCommitLog { store }
    }
}

impl CommitLog for LocalCommitLog {
    fn commit(&self, entries: &[Entry<'_>]) -> Result<SeqRange, StoreError> {
        self.store.commit(entries)
    }

    fn next_seq(&self) -> u64 {
        self.store.next_seq()
    }
}
