//! `auditrelay digest`: the same records print the same line, whichever copy of the store it
//! reads, while the relay runs or after; one more record changes it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::forwarding::{frames, send_tcp};
use common::{free_port, wait_for, Relay};

fn digest(data_dir: &std::path::Path) -> String {
    let out = common::run_cli(&[
        std::ffi::OsStr::new("digest"),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ]);
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn copies_of_a_store_digest_alike_and_a_new_record_changes_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tcp = free_port();
    let mut relay = Relay::start(&data, &[format!("--listen=tcp://127.0.0.1:{tcp}")]);
    send_tcp(tcp, &frames(0..1000));
    wait_for("1000 stored", Duration::from_secs(30), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) == 1000.0).then_some(())
    });
    let running = digest(&data);
    assert!(
        running.starts_with("records=1000 last_seq=1000 sha256="),
        "{running}"
    );
    assert!(relay.terminate().success());
    assert_eq!(digest(&data), running, "the same after shutdown");

    let copy = dir.path().join("copy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(digest(&copy), running, "a copy holds the same records");

    let relay = Relay::start(&copy, &[format!("--listen=tcp://127.0.0.1:{tcp}")]);
    send_tcp(tcp, &frames(1000..1001));
    wait_for("one more stored", Duration::from_secs(30), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) == 1.0).then_some(())
    });
    let grown = digest(&copy);
    assert!(grown.starts_with("records=1001 last_seq=1001 "), "{grown}");
    assert_ne!(grown, running);
}
