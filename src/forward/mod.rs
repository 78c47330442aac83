//! Forwarding: one task per destination, reading the store from that destination's cursor.
//!
//! The store is the buffer. Each destination has a cursor, the highest `seq` it has
//! acknowledged with every lower one also acknowledged (or passed by its filter, or
//! dead-lettered). The cursor is committed through the commit log like records, so a restart
//! (or, with replication, a new leader) resumes where forwarding stopped, and at most the last
//! unacknowledged batches are sent again: delivery is at least once, and each record carries
//! its `seq` so that receivers can drop duplicates.
//!
//! A destination's task reads records, filters and encodes them into batches, and hands the
//! batches to its sink, which delivers them in order (retrying with backoff) and acknowledges
//! each; the task advances the cursor over the contiguous acknowledged prefix. A bounded number
//! of batches is in flight. Nothing here can slow ingest: a slow destination only falls behind
//! in the store.

pub mod config;
pub mod encode;
mod file;
pub mod filter;
mod http;
pub mod metrics;
mod relp;
mod sink;
mod stream;
mod tcp_ack;
pub(crate) mod tls;
mod udp;
pub mod view;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

pub use config::{Destination, ForwardSection};
use encode::Encoder;
pub use sink::{Ack, Batch};
use view::RecordView;

use crate::ingest::now_micros;
use crate::shutdown::Shutdown;
use crate::store::{Control, Store, StoreError};
use crate::write_path::CommitLog;
use metrics::DestinationMetrics;

/// How long a stopping forwarder waits for batches it already sent to be acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Asks a destination to send its dead letters again; answered with how many were queued.
pub type ReplayRequest = oneshot::Sender<Result<usize, String>>;

/// The running destinations, by name, for `auditrelay dlq replay`.
#[derive(Clone, Default)]
pub struct Forwarders {
    replay: HashMap<String, mpsc::Sender<ReplayRequest>>,
}

impl Forwarders {
    /// Queues the dead letters of `destination` for sending again.
    pub async fn replay(&self, destination: &str) -> Result<usize, String> {
        let tx = self
            .replay
            .get(destination)
            .ok_or_else(|| {
                format!("no destination named {destination:?} forwards here (forwarding runs on the leader)")
            })?;
        let (reply, answer) = oneshot::channel();
        tx.send(reply)
            .await
            .map_err(|_| "the destination has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the destination has stopped".to_string())?
    }
}

/// Starts one task per destination; returns their handles and the replay registry. Called
/// before the listeners start, so a destination without a cursor that starts at the end
/// misses nothing received after start-up.
pub fn start(
    destinations: &[Destination],
    store: Arc<Store>,
    log: Arc<dyn CommitLog>,
    hangup: watch::Receiver<u64>,
    shutdown: &Shutdown,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Forwarders), String> {
    let mut tasks = Vec::new();
    let mut forwarders = Forwarders::default();
    let cluster_id = store.cluster_id().unwrap_or_default();
    for dest in destinations {
        let failed = |e: StoreError| format!("destination {}: {e}", dest.name);
        let cursor = match store.cursor(&dest.name).map_err(failed)? {
            Some(seq) => seq,
            None => {
                let seq = if dest.start_at_end {
                    store.next_seq() - 1
                } else {
                    0
                };
                log.control(&[Control::SetCursor {
                    destination: dest.name.clone(),
                    seq,
                }])
                .map_err(failed)?;
                seq
            }
        };
        let (tx, rx) = mpsc::channel(4);
        forwarders.replay.insert(dest.name.clone(), tx);
        let task = Task {
            dest: Arc::new(dest.clone()),
            encoder: Arc::new(Encoder::new(dest, &cluster_id)),
            metrics: DestinationMetrics::new(&dest.name),
            store: store.clone(),
            log: log.clone(),
        };
        tracing::info!(destination = %dest.name, url = %dest.url, "forwarding");
        tasks.push(tokio::spawn(task.run(
            cursor,
            rx,
            hangup.clone(),
            shutdown.clone(),
        )));
    }
    Ok((tasks, forwarders))
}

/// Exponential backoff with full jitter, so that many relays retrying one receiver spread out.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST,
            max,
        }
    }

    /// The pause before the next attempt: uniform in [d/2, d], d doubling up to the maximum.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        let jitter = crate::store::meta::random_u64() % (half.as_micros() as u64 + 1);
        half + Duration::from_micros(jitter)
    }

    pub fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }
}

/// A batch handed to the sink and not yet acknowledged.
struct Pending {
    id: u64,
    /// The cursor once this batch is acknowledged; `None` for replayed dead letters.
    upto: Option<u64>,
    seqs: Vec<u64>,
    /// Receive time of its oldest record, for the age metric.
    oldest_micros: Option<i64>,
    done: Option<Vec<(u64, String)>>,
}

/// Records read and encoded for one batch.
struct Prepared {
    batch: Batch,
    end: u64,
    oldest_micros: Option<i64>,
    filtered: u64,
    /// Stored records that could not be read as records: dead-lettered with the reason.
    unreadable: Vec<(u64, String)>,
}

impl Prepared {
    fn new(end: u64) -> Prepared {
        Prepared {
            batch: Batch::default(),
            end,
            oldest_micros: None,
            filtered: 0,
            unreadable: Vec::new(),
        }
    }
}

fn received_micros(text: Option<&str>) -> Option<i64> {
    text.and_then(crate::store::query::rfc3339_micros)
}

/// Reusable buffers for encoding.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    payload: Vec<u8>,
}

fn encode_one(
    encoder: &Encoder,
    seq: u64,
    json: &[u8],
    filter: Option<&filter::Filter>,
    out: &mut Prepared,
    scratch: &mut Scratch,
) {
    if out.oldest_micros.is_none() {
        out.oldest_micros = received_micros(view::fast_received_at(json));
    }
    // Most records need no full parse: an RFC 5424 message going out as it came needs only
    // its raw bytes.
    if filter.is_none() && encoder.passes_rfc5424_through() {
        if let Some(b"rfc5424") = view::fast_format_and_raw(json, &mut scratch.raw) {
            if encoder.push_rfc5424_raw(seq, &scratch.raw, &mut out.batch, &mut scratch.payload) {
                return;
            }
        }
    }
    match RecordView::parse(json) {
        Err(e) => out.unreadable.push((seq, e)),
        Ok(view) => {
            if filter.is_some_and(|f| !f.matches(&view)) {
                out.filtered += 1;
                return;
            }
            encoder.push(seq, json, &view, &mut out.batch, &mut scratch.payload);
        }
    }
}

struct Task {
    dest: Arc<Destination>,
    encoder: Arc<Encoder>,
    metrics: Arc<DestinationMetrics>,
    store: Arc<Store>,
    log: Arc<dyn CommitLog>,
}

impl Task {
    /// Reads and encodes the next batch from `from` (blocking: RocksDB reads).
    fn prepare(&self, from: u64) -> Result<Prepared, String> {
        let mut out = Prepared::new(from);
        out.batch = Batch::with_capacity(
            self.dest.batch_max_records.min(4096),
            self.dest.batch_max_bytes.min(4 << 20) + 4096,
        );
        let filter = (!self.dest.filter.is_empty()).then_some(&self.dest.filter);
        let mut scratch = Scratch::default();
        let encoder = &self.encoder;
        out.end = self
            .store
            .scan_from(
                from,
                self.dest.batch_max_records,
                self.dest.batch_max_bytes,
                &mut |seq, json| encode_one(encoder, seq, json, filter, &mut out, &mut scratch),
            )
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Reads and encodes dead letters for sending again (no filter: they passed it once).
    /// Stops at the batch byte bound; returns the seqs it did not get to.
    fn prepare_replay(&self, seqs: &[u64]) -> (Prepared, Vec<u64>, Vec<u64>) {
        let mut out = Prepared::new(0);
        let mut scratch = Scratch::default();
        let mut gone = Vec::new();
        for (i, seq) in seqs.iter().enumerate() {
            if out.batch.data.len() >= self.dest.batch_max_bytes {
                return (out, gone, seqs[i..].to_vec());
            }
            match self.store.get(*seq) {
                Ok(Some(json)) => {
                    encode_one(&self.encoder, *seq, &json, None, &mut out, &mut scratch)
                }
                Ok(None) => gone.push(*seq),
                Err(e) => out.unreadable.push((*seq, e.to_string())),
            }
        }
        (out, gone, Vec::new())
    }

    /// Forwards from `cursor` (the highest seq already acknowledged) until shutdown.
    async fn run(
        self,
        mut cursor: u64,
        mut replay_rx: mpsc::Receiver<ReplayRequest>,
        hangup: watch::Receiver<u64>,
        mut shutdown: Shutdown,
    ) {
        let this = Arc::new(self);
        let name = this.dest.name.clone();
        let mut persisted = cursor;
        let mut next = cursor + 1;
        let mut committed = this.store.subscribe();
        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(this.dest.in_flight);
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<Ack>();
        let sink = tokio::spawn(sink::run(
            this.dest.clone(),
            this.metrics.clone(),
            hangup,
            batch_rx,
            ack_tx,
        ));
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut controls: Vec<Control> = Vec::new();
        let mut replay_queue: VecDeque<u64> = VecDeque::new();
        let mut replaying: std::collections::HashSet<u64> = Default::default();
        let mut next_id = 0u64;
        let mut replay_open = true;
        // A batch waiting for room in the sink's queue; the loop keeps serving acks, the
        // cursor and metrics meanwhile.
        let mut outbox: Option<Batch> = None;
        // After a failed store read, when to try again (the loop keeps serving meanwhile).
        let mut read_retry_at: Option<tokio::time::Instant> = None;
        let mut last_persist = Instant::now();
        let mut linger_until: Option<tokio::time::Instant> = None;
        let mut tick =
            tokio::time::interval(this.dest.cursor_interval.min(Duration::from_millis(250)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let available = committed.borrow_and_update().saturating_sub(next);
            // Produce a batch when there is room in the window.
            if outbox.is_none() && pending.len() < this.dest.window() {
                let mut prepared = None;
                if !replay_queue.is_empty() {
                    let n = replay_queue.len().min(this.dest.batch_max_records);
                    let seqs: Vec<u64> = replay_queue.drain(..n).collect();
                    let t = this.clone();
                    let s = seqs.clone();
                    match tokio::task::spawn_blocking(move || t.prepare_replay(&s)).await {
                        Ok((p, gone, rest)) => {
                            for seq in rest.into_iter().rev() {
                                replay_queue.push_front(seq);
                            }
                            for seq in gone {
                                replaying.remove(&seq);
                                controls.push(Control::Release {
                                    destination: name.clone(),
                                    seq,
                                });
                            }
                            prepared = Some((p, None));
                        }
                        Err(e) => {
                            tracing::error!(destination = %name, error = %e, "replay read task failed");
                            for seq in &seqs {
                                replaying.remove(seq);
                            }
                        }
                    }
                } else if available > 0
                    && read_retry_at.is_none_or(|t| tokio::time::Instant::now() >= t)
                {
                    let full = available >= this.dest.batch_max_records as u64;
                    let now = tokio::time::Instant::now();
                    let wait = match linger_until {
                        _ if full || this.dest.linger.is_zero() => false,
                        None => {
                            linger_until = Some(now + this.dest.linger);
                            true
                        }
                        Some(t) => now < t,
                    };
                    if !wait {
                        linger_until = None;
                        let t = this.clone();
                        let from = next;
                        match tokio::task::spawn_blocking(move || t.prepare(from)).await {
                            Ok(Ok(p)) => {
                                let upto = p.end - 1;
                                next = p.end;
                                prepared = Some((p, Some(upto)));
                            }
                            Ok(Err(e)) => {
                                tracing::error!(destination = %name, error = %e, "cannot read the store; retrying in a second");
                                read_retry_at =
                                    Some(tokio::time::Instant::now() + Duration::from_secs(1));
                            }
                            Err(e) => {
                                tracing::error!(destination = %name, error = %e, "read task failed")
                            }
                        }
                    }
                }
                if let Some((p, upto)) = prepared {
                    this.metrics.filtered.increment(p.filtered);
                    let id = next_id;
                    next_id += 1;
                    let seqs: Vec<u64> = p.batch.seqs().to_vec();
                    let mut entry = Pending {
                        id,
                        upto,
                        seqs,
                        oldest_micros: p.oldest_micros,
                        done: None,
                    };
                    let unreadable = p.unreadable;
                    if p.batch.is_empty() {
                        entry.done = Some(Vec::new());
                    } else {
                        let mut batch = p.batch;
                        batch.id = id;
                        outbox = Some(batch);
                    }
                    for (seq, error) in unreadable {
                        replaying.remove(&seq);
                        this.metrics.dead_lettered.increment(1);
                        controls.push(Control::DeadLetter {
                            destination: name.clone(),
                            seq,
                            at_micros: now_micros(),
                            error,
                        });
                    }
                    pending.push_back(entry);
                    this.settle(&mut pending, &mut cursor, &mut controls, &mut replaying);
                    continue;
                }
            }
            this.report(cursor, *committed.borrow(), &pending);
            let idle = available == 0 && replay_queue.is_empty();
            tokio::select! {
                permit = batch_tx.reserve(), if outbox.is_some() => match (permit, outbox.take()) {
                    (Ok(permit), Some(batch)) => permit.send(batch),
                    _ => {
                        tracing::error!(destination = %name, "sink stopped");
                        break;
                    }
                },
                ack = ack_rx.recv() => match ack {
                    Some(ack) => {
                        this.acknowledged(ack, &mut pending, &mut cursor, &mut controls, &mut replaying)
                    }
                    None => {
                        tracing::error!(destination = %name, "sink stopped");
                        break;
                    }
                },
                r = committed.changed(), if idle => if r.is_err() { break },
                _ = tokio::time::sleep_until(linger_until.unwrap_or_else(tokio::time::Instant::now)),
                    if linger_until.is_some() && outbox.is_none() && pending.len() < this.dest.window() => {}
                _ = tokio::time::sleep_until(read_retry_at.unwrap_or_else(tokio::time::Instant::now)),
                    if read_retry_at.is_some() => read_retry_at = None,
                _ = tick.tick() => {
                    if (cursor != persisted || !controls.is_empty())
                        && last_persist.elapsed() >= this.dest.cursor_interval
                        && this.persist(cursor, &mut controls).await
                    {
                        persisted = cursor;
                        last_persist = Instant::now();
                    }
                }
                request = replay_rx.recv(), if replay_open => if let Some(reply) = request {
                    let answer = this.store.dead_letters(&name).map(|letters| {
                        let fresh: Vec<u64> = letters
                            .iter()
                            .map(|l| l.seq)
                            .filter(|s| replaying.insert(*s))
                            .collect();
                        replay_queue.extend(&fresh);
                        fresh.len()
                    });
                    let _ = reply.send(answer.map_err(|e| e.to_string()));
                } else {
                    replay_open = false;
                },
                _ = shutdown.wait() => break,
            }
        }
        // Stopping: send nothing new, but give batches already sent a moment to be
        // acknowledged, so that a restart resends as little as possible.
        let sent = pending.len();
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        let unsent = outbox.as_ref().map(|b| b.id);
        while pending
            .front()
            .is_some_and(|p| p.done.is_none() && Some(p.id) != unsent)
        {
            tokio::select! {
                ack = ack_rx.recv() => match ack {
                    Some(ack) => {
                        this.acknowledged(ack, &mut pending, &mut cursor, &mut controls, &mut replaying)
                    }
                    None => break,
                },
                _ = &mut grace => break,
            }
        }
        sink.abort();
        if (cursor != persisted || !controls.is_empty())
            && this.persist(cursor, &mut controls).await
        {
            tracing::info!(
                destination = %name,
                cursor,
                unacknowledged_batches = pending.len(),
                in_flight_at_stop = sent,
                "cursor saved"
            );
        }
    }

    /// Takes the sink's word for one batch, then settles what that completes.
    fn acknowledged(
        &self,
        ack: Ack,
        pending: &mut VecDeque<Pending>,
        cursor: &mut u64,
        controls: &mut Vec<Control>,
        replaying: &mut std::collections::HashSet<u64>,
    ) {
        if let Some(p) = pending.iter_mut().find(|p| p.id == ack.id) {
            p.done = Some(ack.dead);
        }
        self.settle(pending, cursor, controls, replaying);
    }

    /// Pops the acknowledged prefix of `pending`: moves the cursor and queues dead letters.
    fn settle(
        &self,
        pending: &mut VecDeque<Pending>,
        cursor: &mut u64,
        controls: &mut Vec<Control>,
        replaying: &mut std::collections::HashSet<u64>,
    ) {
        let name = &self.dest.name;
        while pending.front().is_some_and(|p| p.done.is_some()) {
            let Some(p) = pending.pop_front() else { break };
            let dead = p.done.unwrap_or_default();
            let at = now_micros();
            self.metrics
                .acknowledged
                .increment((p.seqs.len() - dead.len().min(p.seqs.len())) as u64);
            self.metrics.dead_lettered.increment(dead.len() as u64);
            if p.upto.is_none() {
                for seq in &p.seqs {
                    replaying.remove(seq);
                    if !dead.iter().any(|(s, _)| s == seq) {
                        controls.push(Control::Release {
                            destination: name.clone(),
                            seq: *seq,
                        });
                    }
                }
            }
            for (seq, error) in dead {
                // The receiver's reason, which may echo the record: escaped (`?`).
                tracing::warn!(destination = %name, seq, error = ?error, "dead letter");
                controls.push(Control::DeadLetter {
                    destination: name.clone(),
                    seq,
                    at_micros: at,
                    error,
                });
            }
            if let Some(upto) = p.upto {
                *cursor = upto;
            }
        }
    }

    /// Commits the cursor with queued dead letters in one write; false if it failed.
    async fn persist(&self, cursor: u64, controls: &mut Vec<Control>) -> bool {
        let mut ops = std::mem::take(controls);
        ops.push(Control::SetCursor {
            destination: self.dest.name.clone(),
            seq: cursor,
        });
        let log = self.log.clone();
        let kept = ops.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = log.control(&ops);
            (r, ops)
        })
        .await;
        match result {
            Ok((Ok(()), _)) => {
                self.metrics.cursor.set(cursor as f64);
                true
            }
            Ok((Err(e), mut ops)) => {
                tracing::error!(destination = %self.dest.name, error = %e, "cannot save the cursor");
                ops.pop();
                *controls = ops;
                false
            }
            Err(e) => {
                tracing::error!(destination = %self.dest.name, error = %e, "cursor task failed");
                let mut kept = kept;
                kept.pop();
                *controls = kept;
                false
            }
        }
    }

    fn report(&self, cursor: u64, next_seq: u64, pending: &VecDeque<Pending>) {
        let lag = next_seq.saturating_sub(1).saturating_sub(cursor);
        self.metrics.lag.set(lag as f64);
        let oldest = pending.iter().find_map(|p| p.oldest_micros);
        let age = match oldest {
            Some(t) if lag > 0 => (now_micros() - t).max(0) as f64 / 1e6,
            _ => 0.0,
        };
        self.metrics.oldest_age.set(age);
    }
}
