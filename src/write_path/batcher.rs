//! Groups prepared records into batches (time, bytes and count bounds) and commits them, a
//! bounded number of batches in flight while the next one fills: under load batches grow and
//! one fsync covers thousands of messages.
//!
//! A batch closes when it is full, when its first record has waited `max_delay`, or when no
//! record has arrived for `max_idle`. The idle bound is what lets the delay bound be long:
//! every batch costs the same fixed work whatever its size (an fsync, the Raft round, a dozen
//! thread hand-offs; profiled at about half a millisecond of CPU), so under steady load long
//! batches save CPU, while a sender that waits for its answers (RELP, a lone `logger`) stops
//! sending, and its batch closes after the short idle bound instead of the long one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Charge, CommitLog, PreparedRecord, RecordBatch};
use crate::metrics::{self, ListenerMetrics};

/// When a batch closes.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// The longest a record waits for its batch to close.
    pub max_delay: Duration,
    /// A batch that someone waits on (a RELP sender for its answer) also closes once no record
    /// has arrived for this long.
    pub max_idle: Duration,
    pub max_bytes: usize,
    pub max_records: usize,
    /// Batches being committed at once: the next one is proposed while the last is still
    /// being replicated and applied (Raft keeps their order, so seqs follow it).
    pub max_in_flight: usize,
}

/// Longest pause between retries of a failing commit.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Who waits for each record of a batch in commit: its listener's counters, its receipt, and
/// its share of the pipeline's byte budget (released once the batch is committed).
type Waiting = Vec<(
    Arc<ListenerMetrics>,
    Option<oneshot::Sender<u64>>,
    Option<Charge>,
)>;

type Commit = JoinHandle<(Waiting, usize, u64, f64)>;

/// Commits `batch`, retrying until it succeeds: a failing disk stops acceptance (and, through
/// the full pipeline, stream senders) instead of losing what was received.
fn commit_blocking(
    log: &dyn CommitLog,
    batch: &RecordBatch,
    healthy: &watch::Sender<bool>,
) -> (u64, f64) {
    let mut delay = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        match log.commit(batch) {
            Ok(range) => {
                healthy.send_if_modified(|h| !std::mem::replace(h, true));
                return (range.first, started.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics::commit_failed();
                healthy.send_if_modified(|h| std::mem::replace(h, false));
                tracing::error!(error = %e, records = batch.len(), "commit failed; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// Commits `pending` off the async threads; the records move into the batch (no copy).
fn spawn_commit(
    log: Arc<dyn CommitLog>,
    pending: Vec<PreparedRecord>,
    bytes: usize,
    healthy: watch::Sender<bool>,
) -> Commit {
    let mut waiting = Vec::with_capacity(pending.len());
    let batch: RecordBatch = Arc::new(
        pending
            .into_iter()
            .map(|p| {
                waiting.push((p.listener, p.ack, p.charge));
                p.record
            })
            .collect(),
    );
    tokio::task::spawn_blocking(move || {
        let (first, seconds) = commit_blocking(log.as_ref(), &batch, &healthy);
        (waiting, bytes, first, seconds)
    })
}

fn finish(waiting: Waiting, bytes: usize, first: u64, seconds: f64) {
    metrics::batch_committed(waiting.len(), bytes, seconds, first + waiting.len() as u64);
    for (i, (listener, ack, charge)) in waiting.into_iter().enumerate() {
        listener.accepted.increment(1);
        if let Some(ack) = ack {
            let _ = ack.send(first + i as u64);
        }
        drop(charge);
    }
}

/// Records taken from the channel at a time. Taking them one by one cost a loop, a clock read
/// and a timer registration per message (7% of the relay's CPU under load); the bound keeps a
/// batch from overshooting its byte limit by more than this many messages.
const RECEIVE_AT_ONCE: usize = 64;

/// When the pending batch closes: at `latest` (its first record plus the delay bound), or, when
/// a sender waits for the answer to one of its records, sooner once no record has arrived for
/// the idle bound. Nobody waits on the others (UDP, TCP, TLS): closing their batches early
/// would only make more, smaller ones, and watching for a pause cost a wake-up per idle bound
/// under steady traffic (a tenth of the CPU at 50,000 UDP datagrams a second).
fn close_at(
    latest: tokio::time::Instant,
    last_arrival: tokio::time::Instant,
    awaited: bool,
    limits: &BatchLimits,
) -> tokio::time::Instant {
    if awaited {
        latest.min(last_arrival + limits.max_idle)
    } else {
        latest
    }
}

/// Runs until every sender is gone and everything received is committed.
/// `healthy` is false while commits fail.
pub async fn run_batcher(
    mut rx: mpsc::Receiver<PreparedRecord>,
    log: Arc<dyn CommitLog>,
    limits: BatchLimits,
    healthy: watch::Sender<bool>,
) {
    let mut pending: Vec<PreparedRecord> = Vec::new();
    let mut pending_bytes = 0usize;
    // When the pending batch must close at the latest (its first record plus `max_delay`),
    // and when a record last arrived. The one timer is set to the earliest moment the batch
    // may close and moved on when it fires early: not reset on every arrival.
    let mut latest = tokio::time::Instant::now();
    let mut last_arrival = latest;
    // Whether a pending record's sender waits for its answer.
    let mut awaited = false;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut in_flight: std::collections::VecDeque<Commit> = std::collections::VecDeque::new();
    let mut closed = false;
    loop {
        let full = pending.len() >= limits.max_records || pending_bytes >= limits.max_bytes;
        let closes = close_at(latest, last_arrival, awaited, &limits);
        let due = full || closed || (!pending.is_empty() && tokio::time::Instant::now() >= closes);
        let room = in_flight.len() < limits.max_in_flight.max(1);
        if room && !pending.is_empty() && due {
            let batch = std::mem::take(&mut pending);
            let bytes = std::mem::take(&mut pending_bytes);
            awaited = false;
            in_flight.push_back(spawn_commit(log.clone(), batch, bytes, healthy.clone()));
            continue;
        }
        if closed && pending.is_empty() && in_flight.is_empty() {
            return;
        }
        let wanted = RECEIVE_AT_ONCE.min(limits.max_records.saturating_sub(pending.len()));
        tokio::select! {
            // Appends to `pending` itself; only the new records are counted.
            n = rx.recv_many(&mut pending, wanted), if !closed && !full => {
                if n == 0 {
                    closed = true;
                } else {
                    last_arrival = tokio::time::Instant::now();
                    let new = &pending[pending.len() - n..];
                    pending_bytes += new.iter().map(|r| r.record.json.len()).sum::<usize>();
                    let first = pending.len() == n;
                    if first {
                        latest = last_arrival + limits.max_delay;
                    }
                    // The close moves only for a new batch, or when one becomes awaited.
                    let newly_awaited = !awaited && new.iter().any(|r| r.ack.is_some());
                    awaited |= newly_awaited;
                    if first || newly_awaited {
                        timer.as_mut().reset(close_at(latest, last_arrival, awaited, &limits));
                    }
                }
            },
            done = async { in_flight.front_mut().expect("guarded").await }, if !in_flight.is_empty() => {
                in_flight.pop_front();
                match done {
                    Ok((waiting, bytes, first, seconds)) => finish(waiting, bytes, first, seconds),
                    Err(e) => tracing::error!(error = %e, "commit task failed"),
                }
            },
            // Fired early (records kept arriving): wait on for the next possible close.
            () = &mut timer, if !pending.is_empty() && room && !due => {
                timer.as_mut().reset(close_at(latest, last_arrival, awaited, &limits));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::keys::IndexTerms;
    use crate::store::{Control, SeqRange, StoreError};
    use crate::write_path::ProposedRecord;

    /// Keeps the size of each committed batch. In memory: these tests are about when batches
    /// close, which no disk or peer takes part in.
    #[derive(Default)]
    struct InMemoryLog {
        batches: Mutex<Vec<usize>>,
    }

    impl CommitLog for InMemoryLog {
        fn commit(&self, batch: &RecordBatch) -> Result<SeqRange, StoreError> {
            let mut batches = self.batches.lock().unwrap();
            let first = batches.iter().sum::<usize>() as u64;
            batches.push(batch.len());
            Ok(SeqRange {
                first,
                count: batch.len() as u64,
            })
        }
        fn control(&self, _: &[Control]) -> Result<(), StoreError> {
            Ok(())
        }
        fn next_seq(&self) -> u64 {
            self.batches.lock().unwrap().iter().sum::<usize>() as u64
        }
    }

    fn record(ack: Option<oneshot::Sender<u64>>) -> PreparedRecord {
        PreparedRecord {
            record: ProposedRecord {
                received_micros: 0,
                terms: IndexTerms::default(),
                json: b"{}".to_vec(),
            },
            listener: ListenerMetrics::new("batcher-test", "tcp"),
            ack,
            charge: None,
        }
    }

    fn start(
        limits: BatchLimits,
    ) -> (
        mpsc::Sender<PreparedRecord>,
        Arc<InMemoryLog>,
        JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(1024);
        let log = Arc::new(InMemoryLog::default());
        let (healthy, _) = watch::channel(true);
        let batcher = tokio::spawn(run_batcher(rx, log.clone(), limits, healthy));
        (tx, log, batcher)
    }

    /// Limits under which only the idle bound (5 ms) can close a batch in a test's time: the
    /// delay bound is an hour, so waiting it out would hang the test rather than pass it.
    fn idle_bound_only() -> BatchLimits {
        BatchLimits {
            max_delay: Duration::from_secs(3600),
            max_idle: Duration::from_millis(5),
            max_bytes: 1 << 20,
            max_records: 1000,
            max_in_flight: 2,
        }
    }

    /// Sends a record whose sender waits for its answer, and returns the answer (its seq).
    async fn send_awaited(tx: &mpsc::Sender<PreparedRecord>) -> u64 {
        let (ack, answer) = oneshot::channel();
        tx.send(record(Some(ack))).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .expect("committed once idle")
            .unwrap()
    }

    /// A sender that waits for its answer is answered after the idle bound, not the delay
    /// bound.
    #[tokio::test]
    async fn a_lone_record_is_committed_once_idle_not_after_the_delay_bound_in_memory_log() {
        let (tx, log, batcher) = start(idle_bound_only());
        for expected_seq in 0..3 {
            assert_eq!(send_awaited(&tx).await, expected_seq);
        }
        assert_eq!(*log.batches.lock().unwrap(), vec![1, 1, 1]);
        drop(tx);
        batcher.await.unwrap();
    }

    /// Records nobody waits on (UDP, TCP, TLS) are not closed into a batch of their own by a
    /// pause: a record sent alone stays pending until a record someone waits on joins it, and
    /// both go in one batch once that one is idle.
    #[tokio::test]
    async fn a_pause_closes_only_a_batch_someone_waits_on_in_memory_log() {
        let (tx, log, batcher) = start(idle_bound_only());
        tx.send(record(None)).await.unwrap();
        // Forty idle bounds: had the pause closed the batch, it would be committed by now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(log.batches.lock().unwrap().is_empty());
        assert_eq!(send_awaited(&tx).await, 1);
        assert_eq!(*log.batches.lock().unwrap(), vec![2]);
        drop(tx);
        batcher.await.unwrap();
    }

    /// Records that keep arriving keep the batch open: a steady stream becomes few batches,
    /// each closed by the delay or the count bound rather than by every short pause.
    #[tokio::test]
    async fn a_steady_stream_fills_batches_to_their_count_bound_in_memory_log() {
        let (tx, log, batcher) = start(BatchLimits {
            max_delay: Duration::from_secs(3600),
            max_idle: Duration::from_secs(3600),
            max_bytes: 1 << 20,
            max_records: 100,
            max_in_flight: 2,
        });
        let mut answers = Vec::new();
        for _ in 0..250 {
            let (ack, answer) = oneshot::channel();
            tx.send(record(Some(ack))).await.unwrap();
            answers.push(answer);
        }
        drop(tx);
        batcher.await.unwrap();
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.await.unwrap(), i as u64);
        }
        // Two full batches; the rest is committed when the senders are gone.
        assert_eq!(*log.batches.lock().unwrap(), vec![100, 100, 50]);
    }
}
