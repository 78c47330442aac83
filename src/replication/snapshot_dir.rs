//! The current snapshot on disk (`<data-dir>/snapshots`): `current.checkpoint/`, a checkpoint
//! of the store (hard links, so taking one costs a memtable flush, not a copy), its
//! `current.meta`, and `current.snap`, the checkpoint packed into one file for sending. Packing
//! copies the whole store, so it happens only when a peer needs the snapshot, once per snapshot.
//! One lock covers the directory: Raft builds snapshots on a task of its own while the state
//! machine may be packing or installing one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::pack;
use super::types::{decode, encode};

pub type Meta = openraft::SnapshotMeta<u64, openraft::BasicNode>;

const CHECKPOINT: &str = "current.checkpoint";
const META: &str = "current.meta";
const PACKED: &str = "current.snap";
/// The snapshot id `current.snap` was packed from.
const PACKED_ID: &str = "current.snap.id";

pub struct SnapshotDir {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl SnapshotDir {
    pub fn open(dir: PathBuf) -> io::Result<SnapshotDir> {
        std::fs::create_dir_all(&dir)?;
        Ok(SnapshotDir {
            dir,
            lock: Mutex::new(()),
        })
    }

    /// A path in the directory for work in progress.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Makes the checkpoint directory `checkpoint` (in this directory) and `meta` the current
    /// snapshot; `packed`, when given, is that checkpoint already packed.
    pub fn keep(&self, checkpoint: &Path, meta: &Meta, packed: Option<&Path>) -> io::Result<()> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.dir.join("old.checkpoint");
        remove_dir(&old)?;
        let current = self.dir.join(CHECKPOINT);
        if current.exists() {
            std::fs::rename(&current, &old)?;
        }
        std::fs::rename(checkpoint, &current)?;
        let tmp = self.dir.join("meta.tmp");
        std::fs::write(&tmp, encode(meta).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, self.dir.join(META))?;
        match packed {
            Some(p) => {
                std::fs::rename(p, self.dir.join(PACKED))?;
                std::fs::write(self.dir.join(PACKED_ID), &meta.snapshot_id)?;
            }
            None => remove_file(&self.dir.join(PACKED_ID))?,
        }
        remove_dir(&old)
    }

    fn meta(&self) -> io::Result<Option<Meta>> {
        match std::fs::read(self.dir.join(META)) {
            Ok(bytes) => decode(&bytes).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The current snapshot's meta and its packed file, packing it now if that was not done.
    pub fn packed(&self) -> io::Result<Option<(Meta, PathBuf)>> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        let packed = self.dir.join(PACKED);
        let packed_id = std::fs::read_to_string(self.dir.join(PACKED_ID)).unwrap_or_default();
        if packed_id != meta.snapshot_id || !packed.exists() {
            let tmp = self.dir.join("packing.snap");
            pack::pack(&self.dir.join(CHECKPOINT), &tmp)?;
            std::fs::rename(&tmp, &packed)?;
            std::fs::write(self.dir.join(PACKED_ID), &meta.snapshot_id)?;
            tracing::info!(snapshot = %meta, "packed a snapshot for a peer");
        }
        Ok(Some((meta, packed)))
    }
}

/// Removes a directory that may not exist.
pub fn remove_dir(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
