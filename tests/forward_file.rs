//! The file destination, and where a new destination starts: `file://` NDJSON and RFC 5424
//! lines, synced per batch and reopened on SIGHUP (as logrotate needs); a destination added to
//! a store that already holds records gets all of them by default, and only new ones with
//! `start=end`.

mod common;

use std::time::Duration;

use common::forwarding::{frames, message, send_tcp, strip_element};
use common::{free_port, wait_for, Relay};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `seq` of every NDJSON line of a file destination's output.
fn seqs_in(path: &std::path::Path) -> Vec<u64> {
    lines(path)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn file_destinations_start_where_told_and_reopen_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tcp = free_port();
    let listen = format!("--listen=tcp://127.0.0.1:{tcp}");
    let mut relay = Relay::start(&data, std::slice::from_ref(&listen));
    send_tcp(tcp, &frames(0..100));
    wait_for("100 stored", Duration::from_secs(30), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) == 100.0).then_some(())
    });
    assert!(relay.terminate().success());

    let all = dir.path().join("out/all.ndjson");
    let new = dir.path().join("out/new.log");
    let relay = Relay::start(
        &data,
        &[
            listen,
            format!("--forward=file://{}?name=all", all.display()),
            format!(
                "--forward=file://{}?name=new&start=end&format=rfc5424",
                new.display()
            ),
        ],
    );
    send_tcp(tcp, &frames(100..150));
    wait_for(
        "150 records in all, 50 in new",
        Duration::from_secs(30),
        || (lines(&all).len() == 150 && lines(&new).len() == 50).then_some(()),
    );
    let seqs: Vec<u64> = seqs_in(&all);
    assert_eq!(
        seqs,
        (1..=150).collect::<Vec<u64>>(),
        "every stored record, in seq order"
    );
    let originals: Vec<String> = lines(&new)
        .iter()
        .map(|l| strip_element(l).unwrap().original)
        .collect();
    assert_eq!(originals, (100..150).map(message).collect::<Vec<_>>());

    // logrotate: move the file away, SIGHUP, and the next records go to a new file.
    let rotated = dir.path().join("out/all.ndjson.1");
    std::fs::rename(&all, &rotated).unwrap();
    relay.sighup();
    std::thread::sleep(Duration::from_millis(300));
    send_tcp(tcp, &frames(150..160));
    wait_for(
        "10 records in the new file",
        Duration::from_secs(30),
        || (lines(&all).len() == 10).then_some(()),
    );
    assert_eq!(lines(&rotated).len(), 150);
    let cursor = relay.metric("auditrelay_forward_cursor", &["destination=\"all\""]);
    assert!(cursor >= 150.0, "cursor {cursor}");
}

#[test]
fn a_routing_filter_from_the_config_file_passes_only_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let out = dir.path().join("local4.ndjson");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[listener]]
url = "tcp://127.0.0.1:{tcp}"

[[forward]]
name = "local4-notice"
url = "file://{out}"
[forward.filter]
facility = ["local4"]
severity = "notice"
host = ["host-*"]
"#,
            out = out.display()
        ),
    )
    .unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &["--config".to_string(), config.display().to_string()],
    );
    send_tcp(tcp, &frames(0..400));
    // Only message(n) with n % 4 == 0 is local4 (PRI 165: local4.notice) from host-N.
    wait_for(
        "100 records through the filter",
        Duration::from_secs(30),
        || {
            let cursor = relay.metric(
                "auditrelay_forward_cursor",
                &["destination=\"local4-notice\""],
            );
            (cursor >= 400.0).then_some(())
        },
    );
    let got: Vec<String> = lines(&out)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["raw"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        got,
        (0..400)
            .filter(|n| n % 4 == 0)
            .map(message)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        relay.metric("auditrelay_forward_filtered_messages_total", &[]),
        300.0
    );
}

#[test]
fn a_relay_stopped_while_forwarding_resends_nothing_the_receiver_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out.ndjson");
    let tcp = free_port();
    let args = [
        format!("--listen=tcp://127.0.0.1:{tcp}"),
        format!(
            "--forward=file://{}?name=f&batch_max_records=50&in_flight=8",
            out.display()
        ),
    ];
    let mut relay = Relay::start(&data, &args);
    send_tcp(tcp, &frames(0..20_000));
    // Stop while forwarding is under way.
    wait_for("forwarding under way", Duration::from_secs(30), || {
        (lines(&out).len() >= 2_000).then_some(())
    });
    assert!(relay.terminate().success());
    let relay = Relay::start(&data, &args);
    let stored = relay.metric("auditrelay_store_next_seq", &[]) as usize - 1;
    wait_for(
        "every stored record forwarded",
        Duration::from_secs(60),
        || (lines(&out).len() >= stored).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(500));
    let seqs: Vec<u64> = seqs_in(&out);
    let first_wrong = seqs
        .iter()
        .zip(1u64..)
        .find(|(got, want)| *got != want)
        .map(|(got, want)| format!("seq {got} where {want} belongs"));
    assert_eq!(
        (seqs.len(), first_wrong),
        (stored, None),
        "each stored record once, in order, across the restart"
    );
}
