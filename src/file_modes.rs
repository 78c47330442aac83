//! Who may read what the relay writes. Audit records are sensitive, so everything under the
//! data directory (the store, the Raft log, `tls/`, `flush.sock`) is private to the relay's
//! user: the process umask is set to [`PRIVATE_UMASK`] before anything is created, and a data
//! directory that already exists with looser bits is tightened to [`DATA_DIR_MODE`].
//!
//! Invariant: once [`make_private`] has run, every file and directory the process creates
//! without an explicit `chmod` has no group or other bits. Files meant to be shared (a
//! `file://` destination's output, see [`create_with_mode`]) set their mode explicitly.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Clears every group and other bit from the modes of new files and directories.
pub const PRIVATE_UMASK: u32 = 0o077;
/// The data directory: its owner only.
pub const DATA_DIR_MODE: u32 = 0o700;
/// The permission bits a mode may carry (no setuid, setgid or sticky bit).
pub const PERMISSION_BITS: u32 = 0o777;

/// Sets the process umask to [`PRIVATE_UMASK`], and creates `data_dir` (0700) or tightens it
/// to 0700 if it exists with group or other bits, logging that it did. Called at the start
/// of `auditrelay run`, before any thread creates a file.
pub fn make_private(data_dir: &Path) -> Result<(), String> {
    set_umask(PRIVATE_UMASK);
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mode = std::fs::metadata(data_dir)
        .map_err(|e| format!("{}: {e}", data_dir.display()))?
        .permissions()
        .mode()
        & PERMISSION_BITS;
    if mode & !DATA_DIR_MODE != 0 {
        std::fs::set_permissions(data_dir, Permissions::from_mode(DATA_DIR_MODE))
            .map_err(|e| format!("cannot make {} private: {e}", data_dir.display()))?;
        tracing::warn!(
            data_dir = %data_dir.display(),
            was = format!("{mode:04o}"),
            now = format!("{DATA_DIR_MODE:04o}"),
            "the data directory was readable by others; tightened it"
        );
    }
    Ok(())
}

fn set_umask(mask: u32) {
    // A process-wide setting: which is why it is set at start-up, before files are created.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask as rustix::fs::RawMode));
}

/// Opens `path` for appending; if this call creates it, gives it exactly `mode` (the umask
/// would otherwise take the group bits away). Missing parent directories are created with
/// [`dir_mode_for`]`(mode)`, so that whoever may read the file can reach it. An existing file
/// keeps the mode it has: an operator's `chmod` is not undone at each reopen.
pub fn create_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        create_dirs_with_mode(parent, dir_mode_for(mode))?;
    }
    match OpenOptions::new().append(true).create_new(true).open(path) {
        Ok(file) => {
            file.set_permissions(Permissions::from_mode(mode & PERMISSION_BITS))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// The mode of a directory holding a file of `file_mode`: each class that may read the file
/// may also enter the directory (0640 → 0750, 0600 → 0700).
pub fn dir_mode_for(file_mode: u32) -> u32 {
    let read = file_mode & 0o444;
    (file_mode | read >> 2 | 0o700) & PERMISSION_BITS
}

/// Creates `dir` and its missing ancestors, giving exactly `mode` to each one it creates.
fn create_dirs_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_with_mode(parent, mode)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, Permissions::from_mode(mode)),
        // Another task made it in the meantime: it is theirs to have set up.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads a mode written in octal (`"0640"`, `"640"`); `None` unless it is permission bits only.
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| m & !PERMISSION_BITS == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_in_octal_and_only_permission_bits_pass() {
        assert_eq!(parse_mode("0640"), Some(0o640));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o644"), Some(0o644));
        for bad in ["", "0800", "4755", "rw-r-----", "01777", "00640"] {
            assert_eq!(parse_mode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn directories_for_a_shared_file_let_its_readers_in() {
        assert_eq!(dir_mode_for(0o640), 0o750);
        assert_eq!(dir_mode_for(0o600), 0o700);
        assert_eq!(dir_mode_for(0o644), 0o755);
    }

    #[test]
    fn a_created_file_gets_its_mode_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.ndjson");
        let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        drop(create_with_mode(&path, 0o640).unwrap());
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o750);
        std::fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        drop(create_with_mode(&path, 0o640).unwrap());
        assert_eq!(mode_of(&path), 0o600);
    }
}
