//! The disk watermark: as the data directory's filesystem fills, the relay refuses datagrams
//! first (UDP senders cannot be slowed, and each is counted as dropped), then holds stream
//! senders back (TCP, TLS and RELP stop being read, so their senders keep what they have),
//! before the disk is full. A full disk stops Raft for good and the node then exits; the
//! watermark is what keeps a flood of datagrams from getting it there.
//!
//! Below `store.min_free_bytes` of free space datagrams are refused; below half of it the
//! intake pauses. Both show in `auditrelay_intake_state` and in `/readyz`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use metrics::{describe_gauge, gauge, Unit};
use tokio::sync::watch;

use crate::shutdown::Shutdown;
use crate::write_path::{Intake, IntakeGate};

pub const DISK_FREE: &str = "auditrelay_disk_free_bytes";
pub const INTAKE_STATE: &str = "auditrelay_intake_state";

/// How often free space is read: a second of UDP at line rate fits in the margin between the
/// watermark and a full disk for any watermark worth setting.
const POLL: Duration = Duration::from_secs(1);

/// Bytes free to an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What the intake should be with `free` bytes left and a watermark of `min_free` (0: off).
pub fn intake_for(free: u64, min_free: u64) -> Intake {
    if min_free == 0 || free >= min_free {
        Intake::Open
    } else if free >= min_free / 2 {
        Intake::DatagramsRefused
    } else {
        Intake::Paused
    }
}

/// Watches free space under `dir`.
pub struct DiskWatermark {
    dir: PathBuf,
    min_free: u64,
    gate: IntakeGate,
    /// True while the intake is open: part of readiness.
    open: watch::Sender<bool>,
}

impl DiskWatermark {
    pub fn new(
        dir: &Path,
        min_free: u64,
        gate: IntakeGate,
    ) -> (DiskWatermark, watch::Receiver<bool>) {
        describe_gauge!(
            DISK_FREE,
            Unit::Bytes,
            "Free bytes on the data directory's filesystem."
        );
        describe_gauge!(
            INTAKE_STATE,
            "0: taking messages; 1: free disk below store.min_free_bytes, datagrams refused; 2: below half of it, stream senders held back too."
        );
        let (open, open_rx) = watch::channel(true);
        let watermark = DiskWatermark {
            dir: dir.to_path_buf(),
            min_free,
            gate,
            open,
        };
        watermark.check();
        (watermark, open_rx)
    }

    /// Reads free space once and sets the intake; logs each change.
    pub fn check(&self) {
        let free = match free_bytes(&self.dir) {
            Ok(free) => free,
            Err(e) => {
                // Unknown free space changes nothing: the intake stays as it was.
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read free disk space");
                return;
            }
        };
        gauge!(DISK_FREE).set(free as f64);
        let intake = intake_for(free, self.min_free);
        gauge!(INTAKE_STATE).set(intake as u8 as f64);
        let before = self.gate.get();
        if before != intake {
            let (free, min_free) = (free, self.min_free);
            match intake {
                Intake::Open => tracing::info!(
                    free,
                    min_free,
                    "free disk space above the watermark: taking every message again"
                ),
                Intake::DatagramsRefused => tracing::warn!(
                    free,
                    min_free,
                    "free disk space below store.min_free_bytes: refusing UDP datagrams"
                ),
                Intake::Paused => tracing::error!(
                    free,
                    min_free,
                    "free disk space below half of store.min_free_bytes: holding every sender back"
                ),
            }
            self.gate.set(intake);
        }
        let open = intake == Intake::Open;
        self.open
            .send_if_modified(|o| std::mem::replace(o, open) != open);
    }

    /// Checks every [`POLL`] until shutdown. With the watermark off it only waits: it holds
    /// the readiness flag's sender, and readiness stops being tracked once a sender is gone.
    pub async fn run(self, mut shutdown: Shutdown) {
        if self.min_free == 0 {
            shutdown.wait().await;
            return;
        }
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = tick.tick() => self.check(),
                _ = shutdown.wait() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_refused_below_the_watermark_and_streams_held_below_half() {
        let gib = 1 << 30;
        assert_eq!(intake_for(3 * gib, 2 * gib), Intake::Open);
        assert_eq!(intake_for(2 * gib, 2 * gib), Intake::Open);
        assert_eq!(intake_for(2 * gib - 1, 2 * gib), Intake::DatagramsRefused);
        assert_eq!(intake_for(gib, 2 * gib), Intake::DatagramsRefused);
        assert_eq!(intake_for(gib - 1, 2 * gib), Intake::Paused);
        assert_eq!(intake_for(0, 0), Intake::Open, "0 turns the watermark off");
    }

    #[test]
    fn free_space_is_read_and_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
