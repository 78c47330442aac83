//! Filesystems mounted for the length of a test. Mounting needs root: a test that cannot mount
//! fails and says so (CI and the development machines run as root); none passes without
//! running its real case.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs, unmounted when dropped.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `64m`) on `path`; fails the test where it cannot.
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(&self.path);
    }
}

/// Unmounts `path`, lazily if it is still busy.
pub fn unmount(path: &Path) {
    let unmounted = Command::new("umount")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !unmounted {
        let _ = Command::new("umount").arg("-l").arg(path).status();
    }
}
