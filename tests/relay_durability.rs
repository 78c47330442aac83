//! What "accepted" means, proven with real processes: SIGKILL under load loses nothing that was
//! counted, SIGTERM commits what was received, hostile input is kept and does not stop service,
//! certificates are replaced without dropping connections, and `promtool` accepts /metrics.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, have, wait_for, Relay};

/// Sends octet-counted messages `<app> n` over TCP until told to stop or the connection breaks;
/// returns how many were written.
fn tcp_sender(
    port: u16,
    app: &'static str,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let mut n = sent.load(Ordering::SeqCst);
        let mut buf = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            buf.clear();
            for _ in 0..100 {
                let msg = format!("<13>1 - loadgen {app} - - - message {n}");
                buf.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
                n += 1;
            }
            if s.write_all(&buf).is_err() {
                return;
            }
            sent.store(n, Ordering::SeqCst);
        }
    })
}

#[test]
fn sigkill_under_tcp_load_loses_nothing_counted_as_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut relay = Relay::start(dir.path(), &[format!("--listen=tcp://127.0.0.1:{port}")]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = tcp_sender(port, "killtest", stop.clone(), sent.clone());
    wait_for("load flowing", Duration::from_secs(30), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) > 20_000.0).then_some(())
    });
    let accepted = relay.metric("auditrelay_accepted_messages_total", &[]);
    relay.kill9();
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    relay.restart();
    let records = relay.query(&["--app", "killtest"]);
    assert!(
        records.len() as f64 >= accepted,
        "{} records stored, {accepted} counted accepted before the kill",
        records.len()
    );
    let seqs: HashSet<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), records.len(), "seqs are unique");
    // The messages stored are a prefix of what was sent: nothing in the middle went missing.
    let mut numbers: Vec<u64> = records
        .iter()
        .map(|r| {
            r["message"]
                .as_str()
                .unwrap()
                .trim_start_matches("message ")
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as u64),
        "stored messages have a gap"
    );
    // And after the restart the relay takes messages again.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"<13>1 - h after-restart - - - back\n")
        .unwrap();
    drop(s);
    wait_for("message after restart", Duration::from_secs(10), || {
        (!relay.query(&["--app", "after-restart"]).is_empty()).then_some(())
    });
}

#[test]
fn sigterm_commits_everything_received_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut relay = Relay::start(dir.path(), &[format!("--listen=tcp://127.0.0.1:{port}")]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut batch = Vec::new();
    for n in 0..20_000 {
        batch.extend_from_slice(format!("<13>1 - h termtest - - - m{n}\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    // The last message has no trailer yet: SIGTERM must still keep it.
    s.write_all(b"<13>1 - h termtest - - - last-without-trailer")
        .unwrap();
    wait_for("bytes received", Duration::from_secs(30), || {
        (relay.metric("auditrelay_received_messages_total", &[]) >= 20_000.0).then_some(())
    });
    let status = relay.terminate();
    assert!(status.success(), "exit status {status:?}");
    let records = common::query(dir.path(), &["--app", "termtest"]);
    assert_eq!(records.len(), 20_001);
    assert!(records
        .iter()
        .any(|r| r["message"] == "last-without-trailer"));
}

#[test]
fn hostile_input_is_kept_raw_and_a_good_client_is_served_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tls_port = free_port();
    let relay = Relay::start(
        dir.path(),
        &[
            format!("--listen=tcp://127.0.0.1:{port}"),
            format!("--listen=udp://127.0.0.1:{port}"),
            format!("--listen=tls://127.0.0.1:{tls_port}"),
        ],
    );
    // 1,000 idle connections.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_for("idle connections open", Duration::from_secs(10), || {
        (relay.metric("auditrelay_open_connections", &[]) >= 1000.0).then_some(())
    });
    let good = |n: u32| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(format!("<13>1 - goodhost good - - - good {n}\n").as_bytes())
            .unwrap();
    };
    good(0);
    // Random bytes over TCP and UDP.
    let random: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&random).unwrap();
    drop(s);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&random[..1400], ("127.0.0.1", port)).unwrap();
    good(1);
    // A 10 MiB frame, octet-counted.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big = vec![b'A'; 10 << 20];
    let header = "<13>1 - bighost big - - - ";
    s.write_all(format!("{} {header}", header.len() + big.len()).as_bytes())
        .unwrap();
    s.write_all(&big).unwrap();
    s.write_all(b"<13>1 - h after-big - - - x\n").unwrap();
    drop(s);
    good(2);
    // An absurd octet count.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"99999999999 <13>1 - h absurd - - - x\n<13>1 - h after-absurd - - - y\n")
        .unwrap();
    drop(s);
    // A TLS handshake of junk.
    let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    let _ = s.write_all(&random[..5000]);
    let _ = s.read(&mut [0u8; 64]);
    drop(s);
    good(3);
    wait_for("good messages stored", Duration::from_secs(20), || {
        (relay.query(&["--app", "good"]).len() == 4).then_some(())
    });
    let big = wait_for("big frame stored", Duration::from_secs(20), || {
        relay.query(&["--host", "bighost"]).pop()
    });
    assert!(
        big["parse_error"].as_str().unwrap().contains("truncated"),
        "{}",
        big["parse_error"]
    );
    wait_for(
        "the frame after a truncated one",
        Duration::from_secs(20),
        || (relay.query(&["--app", "after-big"]).len() == 1).then_some(()),
    );
    let absurd = relay.query(&["--text", "99999999999"]);
    assert_eq!(absurd.len(), 1);
    assert_eq!(absurd[0]["format"], "raw");
    assert_eq!(
        relay.query(&["--app", "after-absurd"]).len(),
        1,
        "the stream resynchronises"
    );
    let raw = relay
        .query(&["--source-ip", "127.0.0.1"])
        .into_iter()
        .filter(|r| r["format"] == "raw")
        .count();
    assert!(raw >= 2, "random bytes are kept raw");
    assert!(
        relay.metric("auditrelay_refused_connections_total", &[]) >= 1.0,
        "junk handshake refused"
    );
    assert!(relay.metric("auditrelay_truncated_messages_total", &[]) >= 1.0);
    drop(idle);
}

/// The subject of the certificate a TLS server presents, from `openssl s_client`'s output.
fn served_subject(port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

fn self_signed(dir: &std::path::Path, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            "new.key",
            "-out",
            "new.crt",
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "2",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    // Replace the served files by renaming, as certificate tools do.
    std::fs::rename(dir.join("new.key"), dir.join("relay.key")).unwrap();
    std::fs::rename(dir.join("new.crt"), dir.join("relay.crt")).unwrap();
}

#[test]
fn a_certificate_replaced_on_disk_is_served_to_new_clients_while_old_connections_keep_working() {
    assert!(have("openssl"));
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    self_signed(&pki, "relay-one");
    let port = free_port();
    let relay = Relay::start(
        &dir.path().join("data"),
        &[format!(
            "--listen=tls://127.0.0.1:{port}?cert={}&key={}",
            pki.join("relay.crt").display(),
            pki.join("relay.key").display()
        )],
    );
    assert!(served_subject(port).contains("relay-one"));
    let mut old = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-no_ign_eof",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut old_in = old.stdin.take().unwrap();
    old_in
        .write_all(b"<13>1 - h reload-test - - - before\n")
        .unwrap();
    old_in.flush().unwrap();
    wait_for("first message", Duration::from_secs(10), || {
        (relay.query(&["--app", "reload-test"]).len() == 1).then_some(())
    });
    self_signed(&pki, "relay-two");
    wait_for("reload", Duration::from_secs(10), || {
        (relay.metric("auditrelay_tls_reloads_total", &["outcome=\"ok\""]) >= 1.0).then_some(())
    });
    assert!(served_subject(port).contains("relay-two"));
    old_in
        .write_all(b"<13>1 - h reload-test - - - after\n")
        .unwrap();
    drop(old_in);
    let _ = old.wait();
    wait_for(
        "old connection still delivers",
        Duration::from_secs(10),
        || (relay.query(&["--app", "reload-test"]).len() == 2).then_some(()),
    );
}

#[test]
fn promtool_accepts_the_metrics_and_every_metric_is_there_before_traffic() {
    assert!(
        have("promtool"),
        "promtool (Debian package prometheus) is required"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(
        dir.path(),
        &[
            format!("--listen=udp://127.0.0.1:{port}"),
            format!("--listen=relp://127.0.0.1:{port}"),
        ],
    );
    let text = relay.metrics();
    for name in [
        "auditrelay_received_messages_total",
        "auditrelay_accepted_messages_total",
        "auditrelay_dropped_messages_total",
        "auditrelay_parsed_messages_total",
        "auditrelay_open_connections",
        "auditrelay_commit_duration_seconds",
        "auditrelay_batch_records",
        "auditrelay_udp_kernel_receive_buffer_errors_total",
    ] {
        assert!(
            text.contains(&format!("\n{name}")),
            "{name} missing before traffic:\n{text}"
        );
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
