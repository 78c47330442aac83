//! Who may read what the relay writes: everything under the data directory is its owner's
//! alone (directories 0700, files and sockets 0600), even when the relay is started under the
//! usual umask 022 on a data directory someone created 0755; a `file://` destination's output
//! gets its configured mode (default 0640), and the directories made for it let that group in.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::forwarding::{frames, send_tcp};
use common::{free_port, wait_for, Relay};

/// Every entry under `dir` (not following links), with its permission bits.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::FileType, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        out.push((entry.path(), meta.file_type(), mode));
        if meta.is_dir() {
            walk(&entry.path(), out);
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn data_directory_is_private_and_forward_output_gets_its_configured_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // As an installer running under umask 022 would leave it.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("forwarded/archive.ndjson");
    let tcp = free_port();
    let tls = free_port();
    let http = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let relay = Relay::launch(
        &data,
        http,
        // The test's own log, outside the data directory: the harness creates it, not the relay.
        &dir.path().join("relay.log"),
        &[
            format!("--listen=tcp://127.0.0.1:{tcp}"),
            // Without cert and key the relay generates a certificate into <data>/tls/.
            format!("--listen=tls://127.0.0.1:{tls}"),
            format!("--forward=file://{}?name=archive", out.display()),
        ],
    );
    relay.wait_ready();
    send_tcp(tcp, &frames(0..1));
    wait_for(
        "the record in the forward output",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&out)
                .is_ok_and(|t| t.lines().count() == 1)
                .then_some(())
        },
    );

    assert_eq!(mode_of(&data), 0o700, "the data directory is tightened");
    let mut entries = Vec::new();
    walk(&data, &mut entries);
    let names: Vec<String> = entries
        .iter()
        .map(|(p, _, _)| p.strip_prefix(&data).unwrap().display().to_string())
        .collect();
    for expected in ["store", "raft", "tls", "flush.sock"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} under the data directory: {names:?}"
        );
    }
    let loose: Vec<String> = entries
        .iter()
        .filter(|(_, kind, mode)| {
            let want = if kind.is_dir() { 0o700 } else { 0o600 };
            *mode != want
        })
        .map(|(p, kind, mode)| {
            let what = if kind.is_socket() { "socket" } else { "" };
            format!("{} {what} {mode:04o}", p.display())
        })
        .collect();
    assert!(
        loose.is_empty(),
        "directories 0700, files and sockets 0600: {loose:#?}"
    );
    assert_eq!(mode_of(&out), 0o640, "the forward output's default mode");
    assert_eq!(
        mode_of(out.parent().unwrap()),
        0o750,
        "its directory lets the file's group in"
    );
    assert!(
        relay
            .log_text()
            .contains("the data directory was readable by others"),
        "the relay says it tightened the data directory"
    );
}
