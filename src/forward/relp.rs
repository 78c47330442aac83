//! RELP (librelp's Reliable Event Logging Protocol) as a client: each message is a `syslog`
//! command and counts as delivered when the server answers `rsp 200`. After a broken
//! connection, every message not yet answered goes again on a new session.

use std::collections::{HashMap, VecDeque};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::sink::{Batch, SinkContext};
use super::tls::connect_tcp;
use super::Backoff;
use crate::ingest::relp::{parse_frame, Parsed};

const OFFER: &str = "relp_version=0\nrelp_software=auditrelay\ncommands=syslog";
/// TXNR wraps after this (RFC-style RELP allows 1..999999999).
const MAX_TXNR: u64 = 999_999_999;

struct Sent {
    batch: Batch,
    answered: Vec<bool>,
    open: usize,
    /// Messages the server refused (`rsp` other than 200): dead letters, not resent.
    dead: Vec<(u64, String)>,
}

struct Session {
    reader: OwnedReadHalf,
    writer: BufWriter<OwnedWriteHalf>,
    buf: Vec<u8>,
    next_txnr: u64,
    /// txnr → (batch id, item index)
    waiting: HashMap<u64, (u64, usize)>,
}

/// What the server said.
enum Reply {
    Rsp { txnr: u64, ok: bool, text: String },
    ServerClose,
}

impl Session {
    fn txnr(&mut self) -> u64 {
        let t = self.next_txnr;
        self.next_txnr = if t >= MAX_TXNR { 1 } else { t + 1 };
        t
    }

    async fn send(&mut self, txnr: u64, command: &str, data: &[u8]) -> std::io::Result<()> {
        let head = if data.is_empty() {
            format!("{txnr} {command} 0\n")
        } else {
            format!("{txnr} {command} {} ", data.len())
        };
        self.writer.write_all(head.as_bytes()).await?;
        if !data.is_empty() {
            self.writer.write_all(data).await?;
            self.writer.write_all(b"\n").await?;
        }
        Ok(())
    }

    /// The next reply; `Err` when the connection ends or the server speaks nonsense.
    async fn reply(&mut self) -> Result<Reply, String> {
        loop {
            let (outcome, consumed) = match parse_frame(&self.buf, None) {
                Parsed::Frame { frame, consumed } => {
                    let reply = match frame.command {
                        b"rsp" => {
                            let text = String::from_utf8_lossy(frame.data).into_owned();
                            Reply::Rsp {
                                txnr: frame.txnr,
                                ok: text.starts_with("200"),
                                text,
                            }
                        }
                        b"serverclose" => Reply::ServerClose,
                        other => {
                            return Err(format!(
                                "unexpected command {:?} from the server",
                                String::from_utf8_lossy(other)
                            ))
                        }
                    };
                    (reply, consumed)
                }
                Parsed::Invalid(e) => return Err(format!("bad frame from the server: {e}")),
                // Only a server's own `syslog` frames are kept truncated; replies never are.
                Parsed::Oversize { .. } => return Err("oversize frame from the server".into()),
                Parsed::Incomplete => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = self
                        .reader
                        .read(&mut chunk)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("the server closed the connection".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
            };
            self.buf.drain(..consumed);
            return Ok(outcome);
        }
    }
}

async fn open(ctx: &SinkContext) -> Result<Session, String> {
    let (reader, writer) = connect_tcp(&ctx.dest).await?.into_split();
    let mut session = Session {
        reader,
        writer: BufWriter::new(writer),
        buf: Vec::new(),
        next_txnr: 1,
        waiting: HashMap::new(),
    };
    let txnr = session.txnr();
    session
        .send(txnr, "open", OFFER.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    session.writer.flush().await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(ctx.dest.timeout, session.reply()).await {
        Ok(Ok(Reply::Rsp { ok: true, .. })) => Ok(session),
        Ok(Ok(Reply::Rsp { text, .. })) => Err(format!("open refused: {text}")),
        Ok(Ok(Reply::ServerClose)) => Err("the server closed the session".into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer to open".into()),
    }
}

async fn send_batch(ctx: &SinkContext, session: &mut Session, sent: &Sent) -> Result<(), String> {
    for (i, payload) in (0..sent.batch.len()).map(|i| (i, sent.batch.payload(i))) {
        if sent.answered[i] {
            continue;
        }
        let txnr = session.txnr();
        session.waiting.insert(txnr, (sent.batch.id, i));
        session
            .send(txnr, "syslog", payload)
            .await
            .map_err(|e| format!("write: {e}"))?;
        ctx.metrics.sent.increment(1);
    }
    session
        .writer
        .flush()
        .await
        .map_err(|e| format!("write: {e}"))
}

pub async fn run(ctx: SinkContext, mut batches: mpsc::Receiver<Batch>) {
    let name = ctx.dest.name.clone();
    let mut window: VecDeque<Sent> = VecDeque::new();
    let mut backoff = Backoff::new(ctx.dest.retry_max);
    let mut input_open = true;
    loop {
        let mut session = match open(&ctx).await {
            Ok(s) => s,
            Err(e) => {
                ctx.metrics.connected.set(0.0);
                ctx.metrics.failures.increment(1);
                // May hold the server's text: escaped (`?`).
                tracing::warn!(destination = %name, error = ?e, "cannot open a RELP session");
                tokio::time::sleep(backoff.delay()).await;
                continue;
            }
        };
        ctx.metrics.connected.set(1.0);
        tracing::info!(destination = %name, "RELP session open");
        let mut failure = None;
        // The last time the server answered; a server that stops answering is given up on
        // after the timeout, like one that stops reading.
        let mut last_answer = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        for sent in &window {
            ctx.metrics.retried.increment(sent.open as u64);
            if let Err(e) = send_batch(&ctx, &mut session, sent).await {
                failure = Some(e);
                break;
            }
        }
        while failure.is_none() {
            tokio::select! {
                reply = session.reply() => match reply {
                    Ok(Reply::Rsp { txnr, ok, text }) => {
                        let Some((id, i)) = session.waiting.remove(&txnr) else {
                            failure = Some(format!("an answer to unknown txnr {txnr}"));
                            continue;
                        };
                        last_answer = tokio::time::Instant::now();
                        backoff.reset();
                        if let Some(sent) = window.iter_mut().find(|s| s.batch.id == id) {
                            if !sent.answered[i] {
                                sent.answered[i] = true;
                                sent.open -= 1;
                                if !ok {
                                    // The server refused this message: resending it would
                                    // block the destination for good.
                                    let seq = sent.batch.seq(i);
                                    sent.dead.push((seq, format!("RELP rsp {}", text.trim())));
                                }
                            }
                        }
                        while window.front().is_some_and(|s| s.open == 0) {
                            if let Some(sent) = window.pop_front() {
                                if !ctx.ack(sent.batch.id, sent.dead) {
                                    return;
                                }
                            }
                        }
                        if !input_open && window.is_empty() {
                            return;
                        }
                    }
                    Ok(Reply::ServerClose) => failure = Some("the server closed the session".into()),
                    Err(e) => failure = Some(e),
                },
                _ = tick.tick() => {
                    if !session.waiting.is_empty() && last_answer.elapsed() > ctx.dest.timeout {
                        failure = Some(format!("no answer within {:?}", ctx.dest.timeout));
                    }
                }
                batch = batches.recv(), if input_open && window.len() < ctx.dest.in_flight => match batch {
                    Some(batch) => {
                        let n = batch.len();
                        let sent = Sent { batch, answered: vec![false; n], open: n, dead: Vec::new() };
                        if session.waiting.is_empty() {
                            // Idle until now: the wait for an answer starts here.
                            last_answer = tokio::time::Instant::now();
                        }
                        let r = send_batch(&ctx, &mut session, &sent).await;
                        window.push_back(sent);
                        if let Err(e) = r {
                            failure = Some(e);
                        }
                    }
                    None => input_open = false,
                },
            }
        }
        ctx.metrics.connected.set(0.0);
        ctx.metrics.failures.increment(1);
        tracing::warn!(destination = %name, error = ?failure.unwrap_or_default(), "RELP session lost; unanswered messages go again");
        tokio::time::sleep(backoff.delay()).await;
    }
}
