//! The audit store as Raft's state machine. Applying entries is one store write per call
//! (records, control commands and how far the log is applied, together), not fsync'd: the
//! Raft log already is, and a crash re-applies from the last applied entry the store kept.
//! Snapshots are store checkpoints (see `snapshot_dir`), packed into one file when a peer needs
//! one, which Raft streams in chunks; taking one syncs everything it covers first (the log
//! behind it may then be purged).

use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, StorageIOError};

use super::pack;
use super::snapshot_dir::{remove_dir, Meta, SnapshotDir};
use super::types::{
    decode, encode, LogEntry, LogId, Membership, ProposedRecord, Request, Response, StorageError,
    TypeConfig,
};
use crate::store::{Change, Entry, Store};

/// Store metadata keys for Raft's applied state.
const APPLIED_KEY: &[u8] = b"raft/applied";
const MEMBERSHIP_KEY: &[u8] = b"raft/membership";
/// The highest node id any membership has held: new nodes get higher ones, never a reused id.
const HIGHEST_NODE_KEY: &[u8] = b"raft/highest_node_id";
pub struct StateMachine {
    store: Arc<Store>,
    /// `<data-dir>/snapshots`: the current snapshot and the one being received.
    snapshots: Arc<SnapshotDir>,
}

fn sm_read(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn sm_write(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn snapshot_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

impl StateMachine {
    pub fn open(store: Arc<Store>, data_dir: &Path) -> Result<StateMachine, String> {
        let dir = data_dir.join("snapshots");
        let snapshots =
            SnapshotDir::open(dir.clone()).map_err(|e| format!("{}: {e}", dir.display()))?;
        keep_interrupted_install(&store, &snapshots)
            .map_err(|e| format!("{}: finishing a snapshot install: {e}", dir.display()))?;
        Ok(StateMachine {
            store,
            snapshots: Arc::new(snapshots),
        })
    }

    fn applied(store: &Store) -> Result<(Option<LogId>, Membership), String> {
        let applied = match store.meta_value(APPLIED_KEY).map_err(|e| e.to_string())? {
            Some(v) => decode(&v)?,
            None => None,
        };
        let membership = match store
            .meta_value(MEMBERSHIP_KEY)
            .map_err(|e| e.to_string())?
        {
            Some(v) => decode(&v)?,
            None => Membership::default(),
        };
        Ok((applied, membership))
    }
}

/// The meta of the snapshot being installed, beside its unpacked copy, so that a node that
/// crashed after the store took the copy (see `Store::install`) still keeps it as its current
/// snapshot.
const INCOMING_META: &str = "incoming.meta";
const INCOMING_CHECKPOINT: &str = "incoming.checkpoint";
const INCOMING_PACKED: &str = "incoming.snap";

/// Finishes what an install cut short after the store holds the snapshot: makes it the current
/// snapshot, so that the snapshot this node offers is never older than what it applied.
/// Leftovers of an install the store did not take are removed.
fn keep_interrupted_install(store: &Store, snapshots: &SnapshotDir) -> Result<(), String> {
    let meta_path = snapshots.scratch(INCOMING_META);
    let bytes = match std::fs::read(&meta_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", meta_path.display())),
    };
    let meta: Meta = match decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(file = %meta_path.display(), error = %e, "an unreadable snapshot meta from an interrupted install; removed");
            return std::fs::remove_file(&meta_path)
                .map_err(|e| format!("{}: {e}", meta_path.display()));
        }
    };
    let checkpoint = snapshots.scratch(INCOMING_CHECKPOINT);
    let (applied, _) = StateMachine::applied(store)?;
    if applied == meta.last_log_id && checkpoint.is_dir() {
        let packed = snapshots.scratch(INCOMING_PACKED);
        snapshots
            .keep(
                &checkpoint,
                &meta,
                packed.exists().then_some(packed.as_path()),
            )
            .map_err(|e| e.to_string())?;
        tracing::info!(snapshot = %meta, "kept the snapshot an interrupted install had applied");
    }
    std::fs::remove_file(&meta_path).map_err(|e| format!("{}: {e}", meta_path.display()))
}

/// Applies `entries` to `store` in one write; answers each entry.
fn apply_entries(store: &Store, entries: Vec<LogEntry>) -> Result<Vec<Response>, String> {
    let Some(last) = entries.last().map(|e| e.log_id) else {
        return Ok(Vec::new());
    };
    // The store borrows each record batch as a slice of views; build those first.
    let views: Vec<Vec<Entry<'_>>> = entries
        .iter()
        .filter_map(|entry| match &entry.payload {
            EntryPayload::Normal(Request::Records(records)) => {
                Some(records.iter().map(ProposedRecord::entry).collect())
            }
            _ => None,
        })
        .collect();
    let mut next_view = views.iter();
    let mut changes = Vec::new();
    let mut membership = None;
    for entry in &entries {
        match &entry.payload {
            EntryPayload::Normal(Request::Records(_)) => {
                changes.push(Change::Records(next_view.next().expect("one per batch")))
            }
            EntryPayload::Normal(Request::Control(ops)) => changes.push(Change::Control(ops)),
            EntryPayload::Membership(m) => {
                membership = Some(Membership::new(Some(entry.log_id), m.clone()))
            }
            EntryPayload::Blank => {}
        }
    }
    let applied = encode(&Some(last))?;
    let membership_bytes = membership.as_ref().map(encode).transpose()?;
    let mut meta: Vec<(&[u8], &[u8])> = vec![(APPLIED_KEY, &applied)];
    if let Some(m) = &membership_bytes {
        meta.push((MEMBERSHIP_KEY, m));
    }
    let highest = match &membership {
        Some(m) => {
            let ids = m.membership().nodes().map(|(id, _)| *id);
            Some(ids.fold(highest_node_id(store)?, u64::max).to_be_bytes())
        }
        None => None,
    };
    if let Some(h) = &highest {
        meta.push((HIGHEST_NODE_KEY, h));
    }
    let ranges = store
        .apply(&changes, &meta, false)
        .map_err(|e| e.to_string())?;
    let mut ranges = ranges.into_iter();
    Ok(entries
        .iter()
        .map(|entry| match &entry.payload {
            EntryPayload::Normal(_) => match ranges.next().flatten() {
                Some(r) => Response::Records {
                    first: r.first,
                    count: r.count,
                },
                None => Response::Done,
            },
            _ => Response::Done,
        })
        .collect())
}

/// The highest node id ever a member or learner (0 before any).
pub fn highest_node_id(store: &Store) -> Result<u64, String> {
    Ok(
        match store
            .meta_value(HIGHEST_NODE_KEY)
            .map_err(|e| e.to_string())?
        {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| "a node id is not 8 bytes".to_string())?,
            ),
            None => 0,
        },
    )
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        StateMachine::applied(&self.store).map_err(sm_read)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || apply_entries(&store, entries))
            .await
            .map_err(sm_write)?
            .map_err(|e| StorageIOError::apply(last, &std::io::Error::other(e)).into())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.snapshots.scratch(INCOMING_PACKED))
            .await
            .map_err(snapshot_err)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        // The file is complete; it is read back by name.
        snapshot.sync_all().await.map_err(snapshot_err)?;
        drop(snapshot);
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let text = |e: &dyn std::fmt::Display| e.to_string();
            let incoming = snapshots.scratch(INCOMING_PACKED);
            let unpacked = snapshots.scratch(INCOMING_CHECKPOINT);
            let incoming_meta = snapshots.scratch(INCOMING_META);
            remove_dir(&unpacked).map_err(|e| text(&e))?;
            pack::unpack(&incoming, &unpacked).map_err(|e| text(&e))?;
            std::fs::write(&incoming_meta, encode(&meta)?)
                .and_then(|()| std::fs::File::open(&incoming_meta)?.sync_all())
                .map_err(|e| text(&e))?;
            // All or nothing across a crash; the unpacked copy stays until `keep` below.
            store.install(&unpacked).map_err(|e| text(&e))?;
            let applied = encode(&meta.last_log_id)?;
            let membership = encode(&meta.last_membership)?;
            store
                .apply(
                    &[],
                    &[(APPLIED_KEY, &applied), (MEMBERSHIP_KEY, &membership)],
                    true,
                )
                .map_err(|e| text(&e))?;
            // What was received is this node's snapshot now, packed already.
            snapshots
                .keep(&unpacked, &meta, Some(&incoming))
                .map_err(|e| text(&e))?;
            std::fs::remove_file(&incoming_meta).map_err(|e| text(&e))?;
            tracing::info!(
                snapshot = %meta,
                next_seq = store.next_seq(),
                seconds = started.elapsed().as_secs_f64(),
                "installed a snapshot"
            );
            Ok::<(), String>(())
        })
        .await
        .map_err(snapshot_err)?
        .map_err(snapshot_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = self.snapshots.clone();
        let packed = tokio::task::spawn_blocking(move || snapshots.packed())
            .await
            .map_err(sm_read)?
            .map_err(sm_read)?;
        let Some((meta, path)) = packed else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(path).await.map_err(sm_read)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Builds a snapshot off Raft's task: a checkpoint of the store, kept as the current snapshot.
pub struct SnapshotBuilder {
    store: Arc<Store>,
    snapshots: Arc<SnapshotDir>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        let meta = tokio::task::spawn_blocking(move || {
            let text = |e: &dyn std::fmt::Display| e.to_string();
            let checkpoint = snapshots.scratch("building.checkpoint");
            remove_dir(&checkpoint).map_err(|e| text(&e))?;
            let values = store
                .checkpoint(&checkpoint, &[APPLIED_KEY, MEMBERSHIP_KEY])
                .map_err(|e| text(&e))?;
            let last_log_id: Option<LogId> = match &values[0] {
                Some(v) => decode(v)?,
                None => None,
            };
            let last_membership: Membership = match &values[1] {
                Some(v) => decode(v)?,
                None => Membership::default(),
            };
            let snapshot_id = match &last_log_id {
                Some(id) => format!(
                    "{}-{}-{}",
                    id.leader_id.term,
                    id.index,
                    crate::store::meta::random_u64() % 100_000
                ),
                None => format!("empty-{}", crate::store::meta::random_u64() % 100_000),
            };
            let meta = Meta {
                last_log_id,
                last_membership,
                snapshot_id,
            };
            snapshots
                .keep(&checkpoint, &meta, None)
                .map_err(|e| text(&e))?;
            tracing::info!(snapshot = %meta, "built a snapshot");
            Ok::<Meta, String>(meta)
        })
        .await
        .map_err(snapshot_err)?
        .map_err(snapshot_err)?;
        // Raft takes only the meta from here; the body is packed when a peer needs it
        // (`get_current_snapshot`), so an empty stand-in serves.
        let nothing = tokio::fs::File::open("/dev/null")
            .await
            .map_err(snapshot_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(nothing),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that crashed after its store took a snapshot (the store's own marker finishes
    /// that part) but before the snapshot became its current one.
    fn crashed_after_the_store_took(applied_index: u64) -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let leader_id = openraft::CommittedLeaderId::new(3, 1);
        let meta = Meta {
            last_log_id: Some(LogId::new(leader_id, 40)),
            last_membership: Membership::default(),
            snapshot_id: "3-40-1".into(),
        };
        let applied = encode(&Some(LogId::new(leader_id, applied_index))).unwrap();
        store.apply(&[], &[(APPLIED_KEY, &applied)], true).unwrap();
        let snapshots = dir.path().join("snapshots");
        std::fs::create_dir_all(&snapshots).unwrap();
        store
            .checkpoint(&snapshots.join(INCOMING_CHECKPOINT), &[])
            .unwrap();
        std::fs::write(snapshots.join(INCOMING_META), encode(&meta).unwrap()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_snapshot_the_store_took_before_a_crash_becomes_the_current_one_at_open() {
        let (dir, store) = crashed_after_the_store_took(40);
        StateMachine::open(store, dir.path()).unwrap();
        let snapshots = dir.path().join("snapshots");
        assert!(snapshots.join("current.checkpoint").is_dir());
        assert!(snapshots.join("current.meta").is_file());
        assert!(!snapshots.join(INCOMING_META).exists());
        assert!(!snapshots.join(INCOMING_CHECKPOINT).exists());
    }

    #[test]
    fn a_snapshot_the_store_did_not_take_is_not_kept() {
        let (dir, store) = crashed_after_the_store_took(12);
        StateMachine::open(store, dir.path()).unwrap();
        let snapshots = dir.path().join("snapshots");
        assert!(!snapshots.join("current.meta").exists());
        assert!(!snapshots.join(INCOMING_META).exists());
    }
}
