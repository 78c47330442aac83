//! The write path: records are prepared (parsed, serialised, index terms computed) where they
//! are received, grouped into batches, and committed through one narrow interface,
//! [`CommitLog`]. A message counts as accepted only after its batch is committed.

mod batcher;
mod pipeline;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use batcher::{run_batcher, BatchLimits};
pub use pipeline::{Charge, Intake, IntakeGate, Pipeline, Refused};

use crate::metrics::ListenerMetrics;
use crate::store::keys::IndexTerms;
use crate::store::{Control, Entry, SeqRange, StoreError};

/// One record as proposed: everything apply needs, decided before proposing (apply itself
/// uses no clock and no randomness, so every replica stores the same bytes). It travels in the
/// Raft log and to peers (hence serde; the JSON as one byte string).
#[derive(Clone, Serialize, Deserialize)]
pub struct ProposedRecord {
    pub received_micros: i64,
    pub terms: IndexTerms,
    /// The record's canonical JSON, without `seq` (assigned at commit).
    #[serde(with = "bytes")]
    pub json: Vec<u8>,
}

impl ProposedRecord {
    /// The store's view of it.
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            received_micros: self.received_micros,
            json: &self.json,
            terms: &self.terms,
        }
    }
}

/// A batch as committed: shared, so that the copies the commit path keeps (the proposal, the
/// Raft log's recent entries, replication, a retry) are references, not copies of each record.
pub type RecordBatch = Arc<Vec<ProposedRecord>>;

/// One record ready to commit, with who is waiting for it.
pub struct PreparedRecord {
    pub record: ProposedRecord,
    pub listener: Arc<ListenerMetrics>,
    /// Told the record's seq once it is committed (RELP answers only then).
    pub ack: Option<oneshot::Sender<u64>>,
    /// Its share of the pipeline's byte budget, set when it is handed over and released
    /// once it is committed.
    pub charge: Option<Charge>,
}

/// Makes a batch durable and says which seqs it got: implemented by replication (Raft), a
/// single relay being a one-member cluster. Called from blocking threads.
pub trait CommitLog: Send + Sync + 'static {
    fn commit(&self, batch: &RecordBatch) -> Result<SeqRange, StoreError>;
    /// Makes forwarding state (cursors, dead letters) durable, ordered with the records.
    fn control(&self, ops: &[Control]) -> Result<(), StoreError>;
    fn next_seq(&self) -> u64;
}

/// Byte strings as bincode byte strings (a length and the bytes) instead of serde's default
/// of one element per byte.
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// The environment variable that slows every commit by its value in milliseconds. For tests
/// only: it lets a test fill the pipeline as a slow disk or a distant majority would.
pub const TEST_COMMIT_DELAY_ENV: &str = "AUDITRELAY_TEST_COMMIT_DELAY_MS";

/// A commit log whose record commits each wait `delay` first (see [`TEST_COMMIT_DELAY_ENV`]).
pub struct DelayedCommitLog {
    pub inner: Arc<dyn CommitLog>,
    pub delay: std::time::Duration,
}

impl CommitLog for DelayedCommitLog {
    fn commit(&self, batch: &RecordBatch) -> Result<SeqRange, StoreError> {
        std::thread::sleep(self.delay);
        self.inner.commit(batch)
    }

    fn control(&self, ops: &[Control]) -> Result<(), StoreError> {
        self.inner.control(ops)
    }

    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
}
