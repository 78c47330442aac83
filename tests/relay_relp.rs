//! RELP with rsyslog's `omrelp` as the real client: 200,000 messages while the relay is killed
//! with SIGKILL twice and restarted. Afterwards every message rsyslog was given is in the store;
//! duplicates (resent after a kill, before the ack arrived) are allowed and counted.
//!
//! rsyslog runs unpacked from Debian's packages (it conflicts with syslog-ng-core, which
//! provides loggen); `tests/run.sh` sets `AUDITRELAY_RSYSLOG_ROOT` to it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::peers::{rsyslog_omrelp_sender, spawn_loggen, KillOnDrop};
use common::{free_port, have, wait_for, Relay};

fn next_seq(relay: &Relay) -> f64 {
    relay.metric("auditrelay_store_next_seq", &[])
}

#[test]
fn rsyslog_omrelp_loses_nothing_when_the_relay_is_sigkilled_twice() {
    assert!(have("loggen"), "loggen (syslog-ng-core) is required");
    const N: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let relp_port = free_port();
    let mut relay = Relay::start(
        &dir.path().join("data"),
        &[format!("--listen=relp://127.0.0.1:{relp_port}")],
    );
    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let input_port = free_port();
    let _rsyslog = rsyslog_omrelp_sender(&work, input_port, relp_port);
    let mut loggen = KillOnDrop(spawn_loggen(input_port, N));
    let started = std::time::Instant::now();
    for kill_at in [40_000.0, 110_000.0] {
        wait_for("messages flowing", Duration::from_secs(120), || {
            (next_seq(&relay) > kill_at).then_some(())
        });
        relay.kill9();
        eprintln!("{:?}: killed at seq {kill_at}", started.elapsed());
        std::thread::sleep(Duration::from_millis(500));
        relay.restart();
    }
    assert!(loggen.0.wait().unwrap().success(), "loggen failed");
    eprintln!("{:?}: loggen done", started.elapsed());
    let distinct = |records: &[serde_json::Value]| {
        let mut count: HashMap<String, u32> = HashMap::new();
        for r in records {
            let msg = r["message"].as_str().unwrap_or("");
            if let Some(seq) = common::loggen_seq(msg) {
                *count.entry(seq.to_string()).or_default() += 1;
            }
        }
        count
    };
    let count = wait_for("every message stored", Duration::from_secs(180), || {
        if next_seq(&relay) < (N + 1) as f64 {
            std::thread::sleep(Duration::from_millis(500));
            return None;
        }
        eprintln!(
            "{:?}: store has {} records",
            started.elapsed(),
            next_seq(&relay) - 1.0
        );
        let count = distinct(&relay.query(&[]));
        (count.len() as u64 == N).then_some(count)
    });
    let duplicates: u32 = count.values().map(|c| c - 1).sum();
    eprintln!("{N} distinct messages stored; {duplicates} duplicates from resends after the kills");
}
