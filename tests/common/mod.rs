//! Helpers for end-to-end tests: a real `auditrelay` process on 127.0.0.1 with its own data
//! directory, real signals, and its real /metrics and `auditrelay query`.
#![allow(dead_code)]

pub mod cluster;
pub mod forwarding;
pub mod http_server;
pub mod mounts;
pub mod peer_wire;
pub mod peers;
pub mod pki;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: the one cargo built for these tests, or `AUDITRELAY_BIN` when set
/// (checkouts that share one build directory overwrite each other's `debug/auditrelay`).
pub static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("AUDITRELAY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_auditrelay").into())
});

/// A port that was free a moment ago on 127.0.0.1 (TCP and UDP).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as the returned socket lives:
/// bound (so no other test can take it) but not listening.
pub fn refusing_port() -> (socket2::Socket, u16) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, port)
}

/// Polls `check` until it returns Some, or panics after `limit` naming `what`.
pub fn wait_for<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll(limit, Duration::from_millis(50), check)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Calls `check` every `every` until it returns Some; None once `limit` has passed, for a
/// caller that has more to say about the timeout than [`wait_for`].
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A minimal HTTP/1.0 GET, naming the endpoint in `Host`; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A relay process under test.
pub struct Relay {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub args: Vec<String>,
    pub log: PathBuf,
    /// Environment variables the process is started with, besides the test's own.
    pub env: Vec<(String, String)>,
}

impl Relay {
    /// Starts a relay with `args` (listeners etc.) on its own data dir and waits until ready.
    pub fn start(data_dir: &Path, args: &[String]) -> Relay {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let relay = Relay::launch(data_dir, http, &data_dir.join("relay.log"), args);
        relay.wait_ready();
        relay
    }

    /// Spawns a relay with `args` on `data_dir`, its operations endpoint on `http` and its
    /// standard error appended to `log`, without waiting until it is ready (a node of a cluster
    /// is ready only once a majority runs); see `wait_ready`.
    pub fn launch(data_dir: &Path, http: SocketAddr, log: &Path, args: &[String]) -> Relay {
        let mut relay = Relay {
            child: None,
            data_dir: data_dir.to_path_buf(),
            http,
            args: args.to_vec(),
            log: log.to_path_buf(),
            env: Vec::new(),
        };
        relay.spawn();
        relay
    }

    /// Like [`Relay::start`], with `env` set in the process's environment.
    pub fn start_with_env(data_dir: &Path, args: &[String], env: &[(&str, &str)]) -> Relay {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut relay = Relay {
            child: None,
            data_dir: data_dir.to_path_buf(),
            http,
            args: args.to_vec(),
            log: data_dir.join("relay.log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        relay.spawn();
        relay.wait_ready();
        relay
    }

    /// Starts the process again with the same arguments (after a kill) and waits until ready.
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Starts the process again with the same arguments, without waiting until it is ready.
    pub fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&*BIN)
            .arg("run")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http")
            .arg(self.http.to_string())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Whether `/readyz` answers 200 now.
    pub fn is_ready(&self) -> bool {
        matches!(http_get(self.http, "/readyz"), Some((200, _)))
    }

    /// Waits (up to 30 seconds) until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        wait_for(
            &format!("relay ready (log: {})", self.log.display()),
            Duration::from_secs(30),
            || self.is_ready().then_some(()),
        );
    }

    /// How the process ended, if it was started and has exited on its own.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        self.child.take().unwrap().wait().unwrap();
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(Duration::from_secs(60))
    }

    /// SIGTERM, and wait for the exit at most `limit` (then fail, naming the limit).
    pub fn terminate_within(&mut self, limit: Duration) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit(limit, "after SIGTERM")
    }

    /// Waits at most `limit` for the process to exit on its own (`after` says after what, for
    /// the failure message) and returns how it ended; kills it and fails past the limit.
    pub fn wait_exit(&mut self, limit: Duration, after: &str) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "relay did not exit within {limit:?} {after}; end of its log:\n{}",
                    self.log_text()
                        .lines()
                        .rev()
                        .take(30)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory of the process: (now, peak), in bytes, from /proc (VmRSS, VmHWM).
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in /proc status"))
        };
        (kib("VmRSS:") * 1024, kib("VmHWM:") * 1024)
    }

    pub fn sighup(&self) {
        self.signal("-HUP");
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics").expect("metrics answer").1
    }

    /// The sum of a metric's samples whose labels contain every `label="value"` given.
    pub fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_value(&self.metrics(), name, labels)
    }

    /// Runs `auditrelay query` with `args` and returns the records.
    pub fn query(&self, args: &[&str]) -> Vec<serde_json::Value> {
        query(&self.data_dir, args)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sums the samples of `name` whose label sets contain all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `auditrelay ARGS…`, asserts it succeeded, and returns its standard output.
pub fn run_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new(&*BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "auditrelay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `auditrelay query --data-dir DIR ARGS…`.
pub fn query(data_dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(&*BIN)
        .arg("query")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("query prints JSON lines"))
        .collect()
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `seq: N` that loggen writes into each message body.
pub fn loggen_seq(message: &str) -> Option<&str> {
    message.split("seq: ").nth(1)?.split(',').next()
}

/// `tag` made unique to this moment, for a message a test looks for among others.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{nanos}")
}
