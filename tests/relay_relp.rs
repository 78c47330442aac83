//! RELP with rsyslog's `omrelp` as the real client: 200,000 messages while the relay is killed
//! with SIGKILL twice and restarted. Afterwards every message rsyslog was given is in the store;
//! duplicates (resent after a kill, before the ack arrived) are allowed and counted.
//!
//! rsyslog runs unpacked from Debian's packages (it conflicts with syslog-ng-core, which
//! provides loggen); `tests/run.sh` sets `AUDITRELAY_RSYSLOG_ROOT` to it.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::peers::{rsyslog_root, rsyslogd};
use common::{free_port, have, wait_for, Relay};

/// Starts rsyslogd: imtcp on `input_port`, everything forwarded with omrelp to `relay_port`.
/// omrelp's default window of 128 holds rsyslog to about 640 messages a second here, against
/// rsyslog's own imrelp just the same (librelp pauses each time the window fills), so the
/// window is raised to 1024 as a production sender would.
fn start_rsyslog(work: &std::path::Path, input_port: u16, relay_port: u16) -> KillOnDrop {
    let root = rsyslog_root();
    let rsyslogd = rsyslogd();
    let conf = work.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="{input_port}" ruleset="forward")
ruleset(name="forward" queue.type="LinkedList" queue.size="500000") {{
  action(type="omrelp" target="127.0.0.1" port="{relay_port}" template="RSYSLOG_SyslogProtocol23Format"
         windowSize="1024" action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"#,
            work = work.display()
        ),
    )
    .unwrap();
    let child = Command::new(&rsyslogd)
        .args(["-n", "-i"])
        .arg(work.join("rsyslogd.pid"))
        .arg("-f")
        .arg(&conf)
        .arg("-M")
        .arg(root.join("usr/lib/x86_64-linux-gnu/rsyslog"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("rsyslogd.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for("rsyslog listening", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", input_port)).ok()
    });
    KillOnDrop(child)
}

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
    let _rsyslog = start_rsyslog(&work, input_port, relp_port);
    let loggen = Command::new("loggen")
        .args([
            "-i",
            "-S",
            "-P",
            "-Q",
            "-n",
            &N.to_string(),
            "-r",
            "20000",
            "-I",
            "300",
            "-s",
            "200",
        ])
        .args(["127.0.0.1", &input_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut loggen = KillOnDrop(loggen);
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

/// Kills a client if the test fails early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
