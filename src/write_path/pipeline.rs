//! The pipeline from the listeners to the write path: a channel bounded by records and by
//! bytes, and a gate that the disk watermark closes.
//!
//! Invariant: every record in the channel, in the batch being filled or in a batch being
//! committed holds a [`Charge`] on one byte budget, released only once its batch is committed
//! (or abandoned at exit). So the memory those records use is bounded by the budget whatever
//! their size, where a bound on the count alone let 65,536 records of maximum size, full of
//! control bytes that escape to six, need gigabytes.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::PreparedRecord;
use crate::shutdown::Shutdown;

/// What a record costs beyond its JSON: the struct, its index terms, its place in a batch.
pub const RECORD_OVERHEAD: usize = 256;

/// How often a stream sender held back by the disk watermark looks again.
const PAUSE_POLL: Duration = Duration::from_millis(100);

/// Whether the relay takes new messages: closed step by step as the disk fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Intake {
    Open = 0,
    /// Free disk is below the watermark: datagrams are refused (counted), streams go on.
    DatagramsRefused = 1,
    /// Free disk is below half the watermark: stream senders wait too (backpressure).
    Paused = 2,
}

impl Intake {
    fn of(value: u8) -> Intake {
        match value {
            0 => Intake::Open,
            1 => Intake::DatagramsRefused,
            _ => Intake::Paused,
        }
    }
}

/// Sets the pipeline's [`Intake`]; held by the disk watermark.
#[derive(Clone)]
pub struct IntakeGate(Arc<AtomicU8>);

impl IntakeGate {
    pub fn set(&self, intake: Intake) {
        self.0.store(intake as u8, Ordering::Relaxed);
    }

    pub fn get(&self) -> Intake {
        Intake::of(self.0.load(Ordering::Relaxed))
    }
}

/// Why a datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room left by count or by bytes.
    Full,
    /// The disk watermark refuses datagrams.
    DiskLow,
    /// The write path has gone (shutdown).
    Closed,
}

/// A record's share of the byte budget, and its place in the count of records not yet
/// committed. Dropped once the record's batch is committed.
pub struct Charge {
    _permit: OwnedSemaphorePermit,
    uncommitted: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.uncommitted.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Records handed over and not yet committed: what an exit now would leave uncommitted.
#[derive(Clone)]
pub struct Uncommitted(Arc<AtomicUsize>);

impl Uncommitted {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The listeners' side of the pipeline. Cloned into every listener.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<PreparedRecord>,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    gate: IntakeGate,
    uncommitted: Arc<AtomicUsize>,
    /// Once set, a paused intake no longer holds senders back: what was received before
    /// shutdown is committed like the rest.
    shutdown: Shutdown,
}

/// How much of the budget `record` needs: its JSON and [`RECORD_OVERHEAD`], capped at the
/// whole budget so that a record larger than it still goes through, alone.
fn cost(record: &PreparedRecord, budget_bytes: usize) -> u32 {
    let bytes = record.record.json.len() + RECORD_OVERHEAD;
    bytes.min(budget_bytes).min(u32::MAX as usize) as u32
}

impl Pipeline {
    /// A pipeline of at most `records` records and `bytes` bytes (both at least 1), and the
    /// write path's end of it.
    pub fn new(
        records: usize,
        bytes: usize,
        shutdown: Shutdown,
    ) -> (Pipeline, mpsc::Receiver<PreparedRecord>) {
        let (tx, rx) = mpsc::channel(records.max(1));
        let budget_bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        let pipeline = Pipeline {
            tx,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            gate: IntakeGate(Arc::new(AtomicU8::new(Intake::Open as u8))),
            uncommitted: Arc::new(AtomicUsize::new(0)),
            shutdown,
        };
        (pipeline, rx)
    }

    /// The handle the disk watermark closes the intake with.
    pub fn gate(&self) -> IntakeGate {
        self.gate.clone()
    }

    /// The count of records handed over and not yet committed, readable without holding
    /// the pipeline open (its holder must not keep the write path waiting for more).
    pub fn uncommitted(&self) -> Uncommitted {
        Uncommitted(self.uncommitted.clone())
    }

    /// Bytes of the budget in use.
    #[cfg(test)]
    fn used_bytes(&self) -> usize {
        self.budget_bytes - self.budget.available_permits()
    }

    fn charge(&self, permit: OwnedSemaphorePermit) -> Charge {
        self.uncommitted.fetch_add(1, Ordering::Relaxed);
        Charge {
            _permit: permit,
            uncommitted: self.uncommitted.clone(),
        }
    }

    /// Hands `record` over, waiting while the intake is paused and until the budget and the
    /// channel have room: the wait is the stream listeners' backpressure. `Err` once the write
    /// path has gone.
    pub async fn send(&self, mut record: PreparedRecord) -> Result<(), ()> {
        while self.gate.get() == Intake::Paused && !self.shutdown.is_set() {
            if self.tx.is_closed() {
                return Err(());
            }
            tokio::time::sleep(PAUSE_POLL).await;
        }
        let n = cost(&record, self.budget_bytes);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| ())?;
        record.charge = Some(self.charge(permit));
        self.tx.send(record).await.map_err(|_| ())
    }

    /// Hands `record` over if there is room now (datagrams cannot wait).
    pub fn try_send(&self, mut record: PreparedRecord) -> Result<(), Refused> {
        if self.gate.get() != Intake::Open {
            return Err(Refused::DiskLow);
        }
        if self.tx.is_closed() {
            return Err(Refused::Closed);
        }
        let n = cost(&record, self.budget_bytes);
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(n) else {
            return Err(Refused::Full);
        };
        record.charge = Some(self.charge(permit));
        match self.tx.try_send(record) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Closed(_)) => Err(Refused::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ListenerMetrics;
    use crate::store::keys::IndexTerms;
    use crate::write_path::ProposedRecord;

    /// A shutdown handle that is never set.
    fn running() -> Shutdown {
        let (trigger, shutdown) = crate::shutdown::channel();
        std::mem::forget(trigger);
        shutdown
    }

    fn record(json_len: usize) -> PreparedRecord {
        PreparedRecord {
            record: ProposedRecord {
                received_micros: 0,
                terms: IndexTerms::default(),
                json: vec![b'x'; json_len],
            },
            listener: ListenerMetrics::new("pipeline-test", "udp"),
            ack: None,
            charge: None,
        }
    }

    #[tokio::test]
    async fn records_wait_for_bytes_not_only_for_a_slot() {
        let (pipeline, mut rx) = Pipeline::new(1000, 3 * (1000 + RECORD_OVERHEAD), running());
        for _ in 0..3 {
            pipeline.send(record(1000)).await.unwrap();
        }
        assert_eq!(pipeline.uncommitted().get(), 3);
        // The budget is spent though the channel has 997 free slots.
        assert_eq!(pipeline.try_send(record(1000)), Err(Refused::Full));
        let blocked = tokio::time::timeout(Duration::from_millis(50), pipeline.send(record(1000)));
        assert!(blocked.await.is_err(), "a fourth record waits for bytes");
        // Committing one (dropping its charge) makes room for exactly one more.
        drop(rx.recv().await.unwrap());
        assert_eq!(pipeline.uncommitted().get(), 2);
        pipeline.try_send(record(1000)).unwrap();
        assert_eq!(pipeline.try_send(record(1)), Err(Refused::Full));
    }

    #[tokio::test]
    async fn a_record_larger_than_the_budget_goes_through_alone() {
        let (pipeline, mut rx) = Pipeline::new(10, 100, running());
        pipeline.send(record(10_000)).await.unwrap();
        assert_eq!(pipeline.used_bytes(), 100);
        assert_eq!(pipeline.try_send(record(1)), Err(Refused::Full));
        drop(rx.recv().await);
        assert_eq!(pipeline.used_bytes(), 0);
    }

    #[tokio::test]
    async fn the_watermark_refuses_datagrams_first_then_pauses_streams() {
        let (pipeline, mut rx) = Pipeline::new(10, 1 << 20, running());
        let gate = pipeline.gate();
        gate.set(Intake::DatagramsRefused);
        assert_eq!(pipeline.try_send(record(1)), Err(Refused::DiskLow));
        pipeline.send(record(1)).await.unwrap();
        gate.set(Intake::Paused);
        let paused = tokio::time::timeout(Duration::from_millis(300), pipeline.send(record(1)));
        assert!(paused.await.is_err(), "a stream sender waits while paused");
        gate.set(Intake::Open);
        pipeline.send(record(1)).await.unwrap();
        assert_eq!(rx.recv().await.map(|r| r.record.json.len()), Some(1));
        assert_eq!(rx.recv().await.map(|r| r.record.json.len()), Some(1));
    }
}
