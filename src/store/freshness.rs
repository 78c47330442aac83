//! Fresh reads from other processes. `auditrelay query`, `digest` and `dlq list` open the store
//! as a RocksDB secondary, which sees only flushed data, and the store writes no WAL of its own
//! (the Raft log is its WAL). So a running relay listens on a Unix socket in its data
//! directory, and a reader that connects gets its answer once everything applied so far is
//! flushed: reads cost nothing while nobody reads, and see every committed record when
//! someone does. With no relay running there is nothing to flush (a relay flushes as it stops,
//! and after a crash the next start applies the rest from the Raft log).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;

use super::Store;

/// The socket's name in the data directory.
const SOCKET: &str = "flush.sock";
/// The socket's mode: its owner's readers only, like every file of the data directory.
const SOCKET_MODE: u32 = 0o600;

/// How long a reader waits for a flush (a full memtable takes well under a second).
const FLUSH_WAIT: Duration = Duration::from_secs(60);

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Starts answering flush requests for `store` in `data_dir`; the task runs until aborted.
/// A socket file left by a relay that died is replaced: the store's lock, held by now, says
/// no other relay uses this directory.
pub fn serve(store: Arc<Store>, data_dir: &Path) -> Result<tokio::task::JoinHandle<()>, String> {
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).map_err(|e| format!("{}: cannot listen: {e}", path.display()))?;
    // bind(2) gives the socket 0777 less the umask (0700 under the relay's 077); connecting
    // needs write permission only, so the owner's read and write are all it keeps.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(tokio::spawn(async move {
        loop {
            let mut conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "flush socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let store = store.clone();
            tokio::spawn(async move {
                let answer = match flush(store).await {
                    Ok(()) => "ok\n".to_string(),
                    Err(e) => format!("{e}\n"),
                };
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    }))
}

/// Flushes `store` off the async threads.
pub async fn flush(store: Arc<Store>) -> Result<(), String> {
    match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("flush task failed: {e}")),
    }
}

/// Asks the relay running on `data_dir`, if any, to flush its store, and waits for it. A
/// relay that is not running, or cannot flush, leaves the reader with what is on disk; the
/// latter is said on stderr, since the reader may then miss recent records.
pub fn request(data_dir: &Path) {
    let path = socket_path(data_dir);
    let Ok(mut conn) = UnixStream::connect(&path) else {
        return;
    };
    let mut answer = String::new();
    let outcome = conn
        .set_read_timeout(Some(FLUSH_WAIT))
        .and_then(|()| conn.read_to_string(&mut answer));
    match outcome {
        Ok(_) if answer == "ok\n" => {}
        Ok(_) => eprintln!(
            "warning: the running relay could not flush its store ({}); recent records may be missing",
            answer.trim_end()
        ),
        Err(e) => eprintln!(
            "warning: no answer from the running relay on {} ({e}); recent records may be missing",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::IndexTerms;
    use crate::store::{Change, Entry, StoreReader};

    fn apply_unflushed(store: &Store, n: usize) {
        let terms = IndexTerms::default();
        let entries = vec![
            Entry {
                received_micros: 1_795_000_000_000_000,
                json: b"{}",
                terms: &terms,
            };
            n
        ];
        store
            .apply(&[Change::Records(&entries)], &[], false)
            .unwrap();
    }

    fn next_seq_seen_by_a_reader(dir: &Path) -> u64 {
        StoreReader::open(dir).unwrap().next_seq().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_sees_what_was_applied_once_the_relay_flushed_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        apply_unflushed(&store, 3);
        let path = dir.path().to_path_buf();
        // Without a relay answering, the reader sees only what is on disk: nothing yet.
        let seen = tokio::task::spawn_blocking(move || next_seq_seen_by_a_reader(&path));
        assert_eq!(
            seen.await.unwrap(),
            1,
            "applied records were already on disk"
        );

        let server = serve(store.clone(), dir.path()).unwrap();
        apply_unflushed(&store, 2);
        let path = dir.path().to_path_buf();
        let seen = tokio::task::spawn_blocking(move || next_seq_seen_by_a_reader(&path));
        assert_eq!(seen.await.unwrap(), 6);
        server.abort();
    }
}
