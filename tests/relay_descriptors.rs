//! File descriptors: a relay started with the common soft limit of 1024 open files raises it
//! to the hard limit itself, so its default listener's 1024 connections fit beside the store;
//! a flood of idle connections past the cap is refused and counted, and the relay keeps
//! storing and answering with its descriptors inside its limit.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::forwarding::frames;
use common::{free_port, wait_for, Relay, BIN};

/// The soft limit the relay is started with: what many systems give a service by default.
const STARTING_SOFT_LIMIT: u64 = 1024;
/// Idle connections the test opens: several times the listener's default cap of 1024.
const FLOOD: usize = 5000;
/// The default `max_connections` of a stream listener.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The soft "Max open files" of a process, from /proc.
fn soft_open_files_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn relay_raises_its_open_file_limit_and_refuses_connections_past_the_cap() {
    // The test itself holds the flood's client ends.
    let own = auditrelay::descriptors::raise_limit();
    let hard = own.hard;
    assert_eq!(
        own.soft, hard,
        "this test raises its own soft limit to the hard one"
    );
    assert!(
        hard >= (FLOOD + DEFAULT_MAX_CONNECTIONS * 2) as u64,
        "this test needs a hard open-file limit of at least {}, have {hard}",
        FLOOD + DEFAULT_MAX_CONNECTIONS * 2
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("relay.log");
    let tcp = free_port();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let args = vec![format!("--listen=tcp://127.0.0.1:{tcp}")];
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(&*BIN);
    command
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .arg("--http")
        .arg(http.to_string())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: between fork and exec the closure only calls setrlimit, which is
    // async-signal-safe, on a value it owns.
    unsafe {
        command.pre_exec(move || {
            let limit = rustix::process::Rlimit {
                current: Some(STARTING_SOFT_LIMIT),
                maximum: Some(hard),
            };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                .map_err(std::io::Error::from)
        });
    }
    let relay = Relay {
        child: Some(command.spawn().unwrap()),
        data_dir: data.clone(),
        http,
        args,
        log: log_path,
        env: Vec::new(),
    };
    relay.wait_ready();
    let pid = relay.pid();
    let limit = soft_open_files_limit(pid);
    assert_eq!(
        limit, hard,
        "the relay raised its soft limit to the hard one"
    );
    assert!(relay.log_text().contains("open-file limit"));

    // One sender connected before the flood: it holds one of the listener's connections.
    let mut sender = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let stream = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], tcp)),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("connection {i} of the flood: {e}"));
        flood.push(stream);
    }
    let refused = (FLOOD + 1 - DEFAULT_MAX_CONNECTIONS) as f64;
    wait_for(
        "the connections past the cap refused and counted",
        Duration::from_secs(60),
        || (relay.metric("auditrelay_refused_connections_total", &[]) == refused).then_some(()),
    );
    assert_eq!(
        relay.metric("auditrelay_open_connections", &[]),
        DEFAULT_MAX_CONNECTIONS as f64
    );

    sender.write_all(&frames(0..1)).unwrap();
    wait_for("the new message stored", Duration::from_secs(30), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) == 1.0).then_some(())
    });
    assert_eq!(relay.query(&[]).len(), 1);
    let open = open_descriptors(pid);
    assert!(
        open >= DEFAULT_MAX_CONNECTIONS && (open as u64) < limit,
        "{open} descriptors open, limit {limit}"
    );
    drop(flood);
}
