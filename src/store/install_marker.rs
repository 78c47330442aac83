//! The marker that makes a snapshot install all-or-nothing across a crash.
//!
//! Installing a snapshot empties the store and refills it from a copy, without a WAL (see the
//! store's module doc). RocksDB flushes a full memtable on its own, so a large install reaches
//! the disk in parts: a crash in the middle would leave the old contents partly deleted and the
//! new ones partly written, with whatever applied index the meta family then holds.
//!
//! So an install first writes this marker, naming the copy it installs, and syncs it; it
//! removes the marker only after its final flush. A store that opens with the marker present
//! installs the named copy again before serving anything (installing is idempotent: it
//! empties, then copies). Invariant: a store with no marker holds whole contents, the old or
//! the new; the copy a marker names is kept until the marker is gone.

use std::io;
use std::path::{Path, PathBuf};

/// The marker's name, beside the store's directory in the data directory.
pub const MARKER: &str = "store.installing";

/// Writes the marker naming `source`, durably (file and directory entry synced).
pub fn write(marker: &Path, source: &Path) -> io::Result<()> {
    let source = std::path::absolute(source)?;
    let text = source.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not UTF-8", source.display()),
        )
    })?;
    let tmp = marker.with_extension("installing.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, marker)?;
    sync_parent(marker)
}

/// The copy an interrupted install was installing, if the marker is there.
pub fn read(marker: &Path) -> io::Result<Option<PathBuf>> {
    match std::fs::read_to_string(marker) {
        Ok(text) => Ok(Some(PathBuf::from(text))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the marker durably: the install it stood for is on disk.
pub fn remove(marker: &Path) -> io::Result<()> {
    match std::fs::remove_file(marker) {
        Ok(()) => sync_parent(marker),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_names_the_copy_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join(MARKER);
        assert_eq!(read(&marker).unwrap(), None);
        let copy = dir.path().join("snapshots/incoming.checkpoint");
        write(&marker, &copy).unwrap();
        assert_eq!(read(&marker).unwrap(), Some(copy));
        remove(&marker).unwrap();
        assert_eq!(read(&marker).unwrap(), None);
        remove(&marker).unwrap();
    }
}
