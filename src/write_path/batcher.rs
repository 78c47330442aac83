//! Groups prepared records into batches (time, bytes and count bounds) and commits them, a
//! bounded number of batches in flight while the next one fills: under load batches grow and one fsync covers
//! thousands of messages; when idle a message waits at most the delay bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{CommitLog, PreparedRecord};
use crate::metrics;
use crate::store::Entry;

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

type Commit = JoinHandle<(Vec<PreparedRecord>, u64, f64)>;

/// Commits `batch`, retrying until it succeeds: a failing disk stops acceptance (and, through
/// the full pipeline, stream senders) instead of losing what was received.
fn commit_blocking(
    log: &dyn CommitLog,
    batch: &[PreparedRecord],
    healthy: &watch::Sender<bool>,
) -> (u64, f64) {
    let entries: Vec<Entry<'_>> = batch
        .iter()
        .map(|r| Entry {
            received_micros: r.received_micros,
            json: &r.json,
            terms: &r.terms,
        })
        .collect();
    let mut delay = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        match log.commit(&entries) {
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

fn spawn_commit(
    log: Arc<dyn CommitLog>,
    batch: Vec<PreparedRecord>,
    healthy: watch::Sender<bool>,
) -> Commit {
    tokio::task::spawn_blocking(move || {
        let (first, seconds) = commit_blocking(log.as_ref(), &batch, &healthy);
        (batch, first, seconds)
    })
}

fn finish(batch: Vec<PreparedRecord>, first: u64, seconds: f64) {
    let bytes: usize = batch.iter().map(|r| r.json.len()).sum();
    metrics::batch_committed(batch.len(), bytes, seconds, first + batch.len() as u64);
    for (i, record) in batch.into_iter().enumerate() {
        record.listener.accepted.increment(1);
        if let Some(ack) = record.ack {
            let _ = ack.send(first + i as u64);
        }
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
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut in_flight: std::collections::VecDeque<Commit> = std::collections::VecDeque::new();
    let mut closed = false;
    loop {
        let full = pending.len() >= limits.max_records || pending_bytes >= limits.max_bytes;
        let due = full || closed || deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        let room = in_flight.len() < limits.max_in_flight.max(1);
        if room && !pending.is_empty() && due {
            let batch = std::mem::take(&mut pending);
            pending_bytes = 0;
            deadline = None;
            in_flight.push_back(spawn_commit(log.clone(), batch, healthy.clone()));
            continue;
        }
        if closed && pending.is_empty() && in_flight.is_empty() {
            return;
        }
        tokio::select! {
            received = rx.recv(), if !closed && !full => match received {
                Some(record) => {
                    if pending.is_empty() {
                        deadline = Some(tokio::time::Instant::now() + limits.max_delay);
                    }
                    pending_bytes += record.json.len();
                    pending.push(record);
                }
                None => closed = true,
            },
            done = async { in_flight.front_mut().expect("guarded").await }, if !in_flight.is_empty() => {
                in_flight.pop_front();
                match done {
                    Ok((batch, first, seconds)) => finish(batch, first, seconds),
                    Err(e) => tracing::error!(error = %e, "commit task failed"),
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() && room && !due => {}
        }
    }
}
