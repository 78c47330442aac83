//! Real syslog receivers for forwarding tests: syslog-ng and rsyslog as their users run them,
//! each writing every message it receives, exactly as received, as one line of a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_for;

/// Where `tests/run.sh` unpacked rsyslog (it conflicts with syslog-ng-core in Debian).
pub fn rsyslog_root() -> PathBuf {
    PathBuf::from(
        std::env::var("AUDITRELAY_RSYSLOG_ROOT")
            .unwrap_or_else(|_| "/var/tmp/auditrelay-peers/rsyslog-root".into()),
    )
}

/// The unpacked `rsyslogd`; panics with what to run when it is missing.
pub fn rsyslogd() -> PathBuf {
    let root = rsyslog_root();
    let rsyslogd = root.join("usr/sbin/rsyslogd");
    assert!(
        rsyslogd.exists(),
        "rsyslogd not unpacked at {} (run tests/run.sh)",
        root.display()
    );
    rsyslogd
}

/// How a receiver takes messages.
#[derive(Debug, Clone)]
pub enum Input {
    /// syslog-ng `syslog()` over TCP, RFC 6587 octet counting.
    SyslogNgTcp,
    /// syslog-ng `syslog()` over TLS with this certificate and key; with `client_ca`, senders
    /// must present a certificate that CA signed.
    SyslogNgTls {
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    },
    /// rsyslog `imtcp`.
    RsyslogImtcp,
    /// rsyslog `imrelp`.
    RsyslogImrelp,
}

/// A receiver process that can be stopped and started again on the same port and file.
pub struct Receiver {
    pub port: u16,
    pub out: PathBuf,
    work: PathBuf,
    input: Input,
    child: Option<Child>,
}

impl Receiver {
    pub fn start(work: &Path, port: u16, input: Input) -> Receiver {
        std::fs::create_dir_all(work).unwrap();
        let mut r = Receiver {
            port,
            out: work.join("received.log"),
            work: work.to_path_buf(),
            input,
            child: None,
        };
        r.restart();
        r
    }

    /// Starts the process again (after `terminate` or `kill9`); it appends to the same file.
    pub fn restart(&mut self) {
        let child = match &self.input {
            Input::SyslogNgTcp | Input::SyslogNgTls { .. } => self.spawn_syslog_ng(),
            Input::RsyslogImtcp | Input::RsyslogImrelp => self.spawn_rsyslog(),
        };
        self.child = Some(child);
        let port = self.port;
        let log = self.work.join("receiver.log");
        wait_for(
            &format!("receiver on port {port} (log: {})", log.display()),
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
    }

    fn spawn_syslog_ng(&self) -> Child {
        let transport = match &self.input {
            Input::SyslogNgTls {
                cert,
                key,
                client_ca,
            } => format!(
                "transport(\"tls\") tls(key-file(\"{}\") cert-file(\"{}\") {})",
                key.display(),
                cert.display(),
                match client_ca {
                    Some(ca) => format!(
                        "ca-file(\"{}\") peer-verify(required-trusted)",
                        ca.display()
                    ),
                    None => "peer-verify(optional-untrusted)".into(),
                }
            ),
            _ => "transport(\"tcp\")".into(),
        };
        let conf = self.work.join("syslog-ng.conf");
        std::fs::write(
            &conf,
            format!(
                r#"@version: 3.38
options {{ stats-freq(0); use-dns(no); dns-cache(no); keep-hostname(yes); log-msg-size(65536); }};
source s_in {{ syslog(ip("127.0.0.1") port({port}) {transport} flags(no-parse) max-connections(10) log-iw-size(100000)); }};
destination d_out {{ file("{out}" template("$MSG\n") log-fifo-size(100000)); }};
log {{ source(s_in); destination(d_out); flags(flow-control); }};
"#,
                port = self.port,
                out = self.out.display()
            ),
        )
        .unwrap();
        let w = &self.work;
        Command::new("syslog-ng")
            .args(["-F", "--no-caps", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(w.join("syslog-ng.pid"))
            .arg("-c")
            .arg(w.join("syslog-ng.ctl"))
            .arg("-R")
            .arg(w.join("syslog-ng.persist"))
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .unwrap()
    }

    fn spawn_rsyslog(&self) -> Child {
        let root = rsyslog_root();
        let rsyslogd = rsyslogd();
        let (module, input) = match self.input {
            Input::RsyslogImrelp => ("imrelp", "imrelp"),
            _ => ("imtcp", "imtcp"),
        };
        let conf = self.work.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="{module}")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="out") {{ action(type="omfile" file="{out}" template="raw") }}
input(type="{input}" address="127.0.0.1" port="{port}" ruleset="out")
"#,
                work = self.work.display(),
                out = self.out.display(),
                port = self.port
            ),
        )
        .unwrap();
        Command::new(&rsyslogd)
            .args(["-n", "-i"])
            .arg(self.work.join("rsyslogd.pid"))
            .arg("-f")
            .arg(&conf)
            .arg("-M")
            .arg(root.join("usr/lib/x86_64-linux-gnu/rsyslog"))
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .unwrap()
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("receiver.log"))
            .unwrap()
    }

    fn signal(&mut self, sig: &str) {
        let child = self.child.as_mut().expect("running");
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        child.wait().unwrap();
        self.child = None;
    }

    /// SIGTERM: the receiver shuts down its own way (syslog-ng loses what it had not written).
    pub fn terminate(&mut self) {
        self.signal("-TERM");
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// loggen sending `n` numbered RFC 5424 messages (200 B, 20,000 a second) to `port` over TCP.
pub fn spawn_loggen(port: u16, n: u64) -> Child {
    Command::new("loggen")
        .args([
            "-i",
            "-S",
            "-P",
            "-Q",
            "-n",
            &n.to_string(),
            "-r",
            "20000",
            "-I",
            "300",
            "-s",
            "200",
        ])
        .args(["127.0.0.1", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts rsyslogd as a RELP sender: imtcp on `input_port`, everything forwarded with omrelp to
/// `relay_port`, retried for ever every second. omrelp's default window of 128 holds rsyslog to
/// about 640 messages a second here (librelp pauses each time the window fills), so the window
/// is raised to 1024 as a production sender would.
pub fn rsyslog_omrelp_sender(work: &Path, input_port: u16, relay_port: u16) -> KillOnDrop {
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

/// Kills a process (a client, a sender) when the test ends, also when it fails early.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
