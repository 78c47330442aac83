//! A local file: one record per line (NDJSON, or RFC 5424 / RFC 3164 text), appended, and
//! flushed and synced to disk before a batch counts as delivered. SIGHUP reopens the file by
//! name, so logrotate can move it away.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::sink::{Batch, SinkContext};
use super::Backoff;

/// Writes and syncs one batch; blocking. A batch that fails half-way is cut off again, so the
/// retry does not leave a partial line in front of it.
fn write(file: &mut File, batch: &Batch) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    let result = write_lines(file, batch);
    if result.is_err() {
        let _ = file.set_len(before);
    }
    result
}

fn write_lines(file: &mut File, batch: &Batch) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(batch.data.len() + batch.len());
    for (_, payload) in batch.items() {
        let line = payload.strip_suffix(b"\n").unwrap_or(payload);
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }
    file.write_all(&buf)?;
    file.sync_data()
}

pub async fn run(mut ctx: SinkContext, mut batches: mpsc::Receiver<Batch>) {
    let path = PathBuf::from(&ctx.dest.path);
    let name = ctx.dest.name.clone();
    let mut backoff = Backoff::new(ctx.dest.retry_max);
    let mut file: Option<File> = None;
    let mut hangups = true;
    ctx.hangup.borrow_and_update();
    loop {
        let batch = tokio::select! {
            b = batches.recv() => match b {
                Some(b) => b,
                None => return,
            },
            r = ctx.hangup.changed(), if hangups => {
                match r {
                    Ok(()) => {
                        tracing::info!(destination = %name, "SIGHUP: reopening {}", path.display());
                        file = None;
                    }
                    Err(_) => hangups = false,
                }
                continue;
            }
        };
        loop {
            if ctx.hangup.has_changed().unwrap_or(false) {
                ctx.hangup.borrow_and_update();
                file = None;
            }
            let mut f = match file.take() {
                Some(f) => f,
                // A file the relay creates gets the destination's `file_mode` (the process
                // umask keeps everything else private, see `file_modes`).
                None => match crate::file_modes::create_with_mode(&path, ctx.dest.file_mode) {
                    Ok(f) => f,
                    Err(e) => {
                        ctx.metrics.failures.increment(1);
                        tracing::warn!(destination = %name, error = %e, "cannot open {}", path.display());
                        tokio::time::sleep(backoff.delay()).await;
                        continue;
                    }
                },
            };
            let b = batch.clone();
            let result = tokio::task::spawn_blocking(move || write(&mut f, &b).map(|()| f)).await;
            match result {
                Ok(Ok(f)) => {
                    file = Some(f);
                    backoff.reset();
                    ctx.metrics.connected.set(1.0);
                    ctx.metrics.sent.increment(batch.len() as u64);
                    break;
                }
                Ok(Err(e)) => {
                    ctx.metrics.failures.increment(1);
                    ctx.metrics.retried.increment(batch.len() as u64);
                    tracing::warn!(destination = %name, error = %e, "cannot write {}; retrying", path.display());
                    tokio::time::sleep(backoff.delay()).await;
                }
                Err(e) => {
                    tracing::error!(destination = %name, error = %e, "file task failed");
                    return;
                }
            }
        }
        if !ctx.ack(batch.id, Vec::new()) {
            return;
        }
    }
}
