//! Groups prepared records into batches (time, bytes and count bounds) and commits them, a
//! bounded number of batches in flight while the next one fills: under load batches grow and one fsync covers
//! thousands of messages; when idle a message waits at most the delay bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{CommitLog, PreparedRecord, RecordBatch};
use crate::metrics::{self, ListenerMetrics};

/// When a batch closes.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_delay: Duration,
    pub max_bytes: usize,
    pub max_records: usize,
    /// Batches being committed at once: the next one is proposed while the last is still
    /// being replicated and applied (Raft keeps their order, so seqs follow it).
    pub max_in_flight: usize,
}

/// Longest pause between retries of a failing commit.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Who waits for each record of a batch in commit: its listener's counters and its receipt.
type Waiting = Vec<(Arc<ListenerMetrics>, Option<oneshot::Sender<u64>>)>;

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
                waiting.push((p.listener, p.ack));
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
    for (i, (listener, ack)) in waiting.into_iter().enumerate() {
        listener.accepted.increment(1);
        if let Some(ack) = ack {
            let _ = ack.send(first + i as u64);
        }
    }
}

/// Records taken from the channel at a time. Taking them one by one cost a loop, a clock read
/// and a timer registration per message (7% of the relay's CPU under load); the bound keeps a
/// batch from overshooting its byte limit by more than this many messages.
const RECEIVE_AT_ONCE: usize = 64;

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
    // Set to the pending batch's deadline when its first record arrives: one timer, moved,
    // rather than a new one on every turn of the loop.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut in_flight: std::collections::VecDeque<Commit> = std::collections::VecDeque::new();
    let mut closed = false;
    loop {
        let full = pending.len() >= limits.max_records || pending_bytes >= limits.max_bytes;
        let due = full
            || closed
            || (!pending.is_empty() && tokio::time::Instant::now() >= timer.deadline());
        let room = in_flight.len() < limits.max_in_flight.max(1);
        if room && !pending.is_empty() && due {
            let batch = std::mem::take(&mut pending);
            let bytes = std::mem::take(&mut pending_bytes);
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
                } else if pending.len() == n {
                    timer.as_mut().reset(tokio::time::Instant::now() + limits.max_delay);
                }
                pending_bytes += pending[pending.len() - n..]
                    .iter()
                    .map(|r| r.record.json.len())
                    .sum::<usize>();
            },
            done = async { in_flight.front_mut().expect("guarded").await }, if !in_flight.is_empty() => {
                in_flight.pop_front();
                match done {
                    Ok((waiting, bytes, first, seconds)) => finish(waiting, bytes, first, seconds),
                    Err(e) => tracing::error!(error = %e, "commit task failed"),
                }
            },
            () = &mut timer, if !pending.is_empty() && room && !due => {}
        }
    }
}
