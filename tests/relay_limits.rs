//! The relay under hostile or failing conditions, as real processes on 127.0.0.1: memory stays
//! within its stated budget under a flood of maximum-size messages, RELP frames cannot make it
//! buffer more than a message's maximum, a client that never reads cannot hold up SIGTERM,
//! the disk watermark turns datagrams away before the disk is full, and a full disk makes the
//! node exit non-zero without losing what it acknowledged.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{digest_records, try_digest};
use common::mounts::Tmpfs;
use common::{free_port, http_get, wait_for, Relay};

/// `relay::SHUTDOWN_BOUND`, as the README states it.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);
/// What a test allows beyond the bound for the process to be reaped and seen gone.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("relay.toml");
    std::fs::write(&path, toml).unwrap();
    format!("--config={}", path.display())
}

/// A RELP session's text for `open`.
fn relp_open(txnr: u64) -> Vec<u8> {
    let offer = "relp_version=0\nrelp_software=auditrelay-test\ncommands=syslog";
    format!("{txnr} open {} {offer}\n", offer.len()).into_bytes()
}

fn relp_syslog(txnr: u64, message: &[u8]) -> Vec<u8> {
    let mut frame = format!("{txnr} syslog {} ", message.len()).into_bytes();
    frame.extend_from_slice(message);
    frame.push(b'\n');
    frame
}

/// Reads one RELP reply line and the data its length announces (which may span lines).
fn read_reply(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = Vec::new();
    // TXNR SP "rsp" SP, then DATALEN [SP DATA] LF
    for _ in 0..2 {
        head.clear();
        reader.read_until(b' ', &mut head).ok()?;
    }
    let mut reply = String::new();
    reader.read_line(&mut reply).ok()?;
    if reply.is_empty() {
        return None;
    }
    let (len, rest) = reply.split_once(' ').unwrap_or((reply.trim(), ""));
    let len: usize = len.trim().parse().ok()?;
    let mut data = rest.to_string();
    while data.trim_end_matches('\n').len() < len {
        let mut more = String::new();
        if reader.read_line(&mut more).ok()? == 0 {
            return None;
        }
        data.push_str(&more);
    }
    Some(data.trim_end().to_string())
}

/// An opened RELP session.
fn relp_session(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    relp_session_on(TcpStream::connect(("127.0.0.1", port)).unwrap())
}

/// Opens a RELP session on `s`.
fn relp_session_on(mut s: TcpStream) -> (TcpStream, BufReader<TcpStream>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&relp_open(1)).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let offer = read_reply(&mut reader).expect("an answer to open");
    assert!(offer.starts_with("200 OK"), "{offer}");
    (s, reader)
}

/// Messages a compressor cannot shrink: `n` and 256 pseudo-random hex digits.
fn filler(n: u64) -> String {
    format!(
        "<14>1 2026-12-07T10:00:00Z host app - - - filler {n} {}",
        common::forwarding::noise(n)
    )
}

/// How many records the store holds (`auditrelay digest`).
fn stored(data_dir: &Path) -> u64 {
    digest_records(&try_digest(data_dir).expect("auditrelay digest answers"))
}

/// 10,000 messages of the listener's maximum size, every byte a control byte (each escapes to
/// six in the record's JSON, twice: message and raw), sent as fast as one connection can while
/// every commit is slowed: the relay's peak memory stays within the budget the README states
/// for this configuration, and every message is stored.
#[test]
fn a_flood_of_maximum_size_control_byte_messages_stays_within_the_memory_budget() {
    const N: u64 = 10_000;
    const MAX: usize = 16 * 1024;
    const PIPELINE: u64 = 64 << 20;
    const BATCH: u64 = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"[[listener]]
url = "tcp://127.0.0.1:{tcp}"
max_message_size = {MAX}
[limits]
pipeline_max_bytes = {PIPELINE}
[batch]
max_bytes = {BATCH}
"#
        ),
    );
    let mut relay = Relay::start_with_env(
        dir.path(),
        &[config],
        &[("AUDITRELAY_TEST_COMMIT_DELAY_MS", "200")],
    );
    let (idle, _) = relay.memory();
    let mut message = b"<13>".to_vec();
    message.extend((0..MAX - 4).map(|i| [1u8, 2, 7, 27, 31][i % 5]));
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(&message);
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        for _ in 0..N {
            s.write_all(&frame).unwrap();
        }
    });
    sender.join().unwrap();
    wait_for("every message accepted", Duration::from_secs(600), || {
        (relay.metric("auditrelay_accepted_messages_total", &[]) >= N as f64).then_some(())
    });
    let (_, peak) = relay.memory();
    assert!(relay.terminate().success());
    assert_eq!(stored(&relay.data_dir), N);
    // The README's bound for this configuration: the pipeline's budget, two more copies of
    // each batch in commit (two in flight), the Raft log's cache of recent entries (64 MiB),
    // the memtables of the store and the Raft log (two of 64 MiB each) and one connection's
    // buffers, plus half for the allocator.
    let table = PIPELINE + 2 * BATCH * 2 + (64 << 20) + 4 * (64 << 20) + MAX as u64 + (192 << 10);
    let bound = idle + table + table / 2;
    eprintln!(
        "idle {} MiB, peak {} MiB, bound {} MiB",
        idle >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(
        peak <= bound,
        "peak RSS {peak} exceeds the stated bound {bound} (idle {idle})"
    );
}

/// A RELP frame that declares 16 MiB before `open` is a protocol error found from its header:
/// the session is closed at once instead of waiting for (and buffering) the 16 MiB, and the
/// listener goes on serving others.
#[test]
fn a_relp_frame_declaring_16_mib_before_open_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_port();
    let relay = Relay::start(dir.path(), &[format!("--listen=relp://127.0.0.1:{relp}")]);
    let mut s = TcpStream::connect(("127.0.0.1", relp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"1 syslog 16777216 ").unwrap();
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the relay did not close the session: {e}"
        ),
    }
    wait_for("the protocol error logged", Duration::from_secs(10), || {
        relay
            .log_text()
            .contains("DATALEN too large for this command")
            .then_some(())
    });
    let (mut s, mut reader) = relp_session(relp);
    s.write_all(&relp_syslog(2, b"<13>after the hostile frame"))
        .unwrap();
    assert_eq!(read_reply(&mut reader).as_deref(), Some("200 OK"));
    assert_eq!(relay.query(&["--text", "hostile"]).len(), 1);
}

/// In an open session, a `syslog` frame longer than the listener's maximum is kept truncated
/// (and says so), acknowledged, and the rest of its DATA is skipped as it streams: the next
/// frame is read as usual.
#[test]
fn a_relp_message_over_the_maximum_is_kept_truncated_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_port();
    let config = write_config(
        dir.path(),
        &format!("[[listener]]\nurl = \"relp://127.0.0.1:{relp}\"\nmax_message_size = 1024\n"),
    );
    let relay = Relay::start(dir.path(), &[config]);
    let (mut s, mut reader) = relp_session(relp);
    let mut long = b"<13>oversize ".to_vec();
    long.resize(300_000, b'x');
    let frame = relp_syslog(2, &long);
    for piece in frame.chunks(7_000) {
        s.write_all(piece).unwrap();
    }
    s.write_all(&relp_syslog(3, b"<13>next message")).unwrap();
    assert_eq!(read_reply(&mut reader).as_deref(), Some("200 OK"));
    assert_eq!(read_reply(&mut reader).as_deref(), Some("200 OK"));
    let kept = relay.query(&["--text", "oversize"]);
    assert_eq!(kept.len(), 1);
    let error = kept[0]["parse_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("truncated: 300000 bytes, first 1024 kept"),
        "{error}"
    );
    assert_eq!(relay.query(&["--text", "next message"]).len(), 1);
}

/// A RELP client that sends 100,000 messages and never reads a reply stops being read once
/// its window is full; SIGTERM still ends the relay within its bound with exit code 0, and
/// every message it committed is in the store.
#[test]
fn a_relp_client_that_never_reads_its_replies_does_not_hold_up_sigterm() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let relp = free_port();
    let mut relay = Relay::start(dir.path(), &[format!("--listen=relp://127.0.0.1:{relp}")]);
    // A small receive buffer, as a device that stops reading has: the replies it does not
    // read back up into the relay soon, instead of filling megabytes of kernel buffers.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], relp)).into())
        .unwrap();
    let (s, _reader) = relp_session_on(socket.into());
    let sender = std::thread::spawn(move || {
        let mut s = std::io::BufWriter::new(s);
        for n in 0..N {
            let message = format!("<13>never reads {n}");
            if s.write_all(&relp_syslog(n + 2, message.as_bytes()))
                .is_err()
            {
                return n;
            }
        }
        let _ = s.flush();
        N
    });
    // Wait until the relay stops reading: what it received no longer grows.
    let mut last = -1.0;
    wait_for(
        "the relay to stop reading",
        Duration::from_secs(120),
        || {
            std::thread::sleep(Duration::from_millis(500));
            let now = relay.metric("auditrelay_received_messages_total", &[]);
            let stalled = now == last && now > 0.0;
            last = now;
            stalled.then_some(())
        },
    );
    let accepted = relay.metric("auditrelay_accepted_messages_total", &[]) as u64;
    assert!(
        (accepted as f64) < N as f64,
        "the relay read all {N} messages: the client's window never filled"
    );
    let status = relay.terminate_within(SHUTDOWN_BOUND + EXIT_MARGIN);
    assert!(status.success(), "{status}; log:\n{}", relay.log_text());
    let _ = sender.join();
    let stored = stored(&relay.data_dir);
    assert!(
        stored >= accepted,
        "{accepted} accepted before SIGTERM, {stored} in the store"
    );
}

/// With free disk below `store.min_free_bytes` (here more than any disk has), datagrams are
/// refused and counted, stream senders are held back, and `/readyz` says not ready; SIGTERM
/// still commits the stream message that was held back.
#[test]
fn below_the_disk_watermark_datagrams_are_refused_and_streams_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "[[listener]]\nurl = \"udp://127.0.0.1:{port}\"\n[[listener]]\nurl = \"tcp://127.0.0.1:{port}\"\n[store]\nmin_free_bytes = {}\n",
            1u64 << 60
        ),
    );
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut relay = Relay::launch(dir.path(), http, &dir.path().join("relay.log"), &[config]);
    wait_for("the endpoint to answer", Duration::from_secs(30), || {
        http_get(http, "/healthz").map(|_| ())
    });
    assert_eq!(relay.metric("auditrelay_intake_state", &[]), 2.0);
    assert_eq!(http_get(http, "/readyz").map(|(code, _)| code), Some(503));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>a datagram while the disk is low", ("127.0.0.1", port))
        .unwrap();
    wait_for(
        "the datagram counted as refused",
        Duration::from_secs(10),
        || {
            (relay.metric(
                "auditrelay_dropped_messages_total",
                &["reason=\"disk_low\""],
            ) == 1.0)
                .then_some(())
        },
    );
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.write_all(b"<13>held back while the disk is low\n")
        .unwrap();
    wait_for(
        "the stream message received",
        Duration::from_secs(10),
        || {
            (relay.metric("auditrelay_received_messages_total", &["transport=\"tcp\""]) == 1.0)
                .then_some(())
        },
    );
    assert_eq!(relay.metric("auditrelay_accepted_messages_total", &[]), 0.0);
    let status = relay.terminate_within(SHUTDOWN_BOUND + EXIT_MARGIN);
    assert!(status.success(), "{status}; log:\n{}", relay.log_text());
    assert_eq!(relay.query(&["--text", "held back"]).len(), 1);
    assert!(relay.query(&["--text", "a datagram"]).is_empty());
}

/// Copies a directory tree (`cp -a`).
fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// A single node whose data directory is on a 64 MiB tmpfs (watermark off) takes RELP messages
/// until the disk is full: Raft stops, the node exits non-zero within its shutdown bound, and
/// every message it acknowledged (`rsp 200`) is there when a copy of its data directory is
/// opened on a healthy disk.
#[test]
fn a_single_node_whose_disk_fills_exits_non_zero_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("small-disk"), "64m");
    let data = disk.path.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let relp = free_port();
    let config = write_config(
        dir.path(),
        &format!("[[listener]]\nurl = \"relp://127.0.0.1:{relp}\"\n[store]\nmin_free_bytes = 0\n"),
    );
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut relay = Relay::launch(&data, http, &dir.path().join("relay.log"), &[config]);
    relay.wait_ready();
    let (mut s, mut reader) = relp_session(relp);
    let mut acknowledged = Vec::new();
    let mut n = 0u64;
    'sending: while n < 2_000_000 {
        let window: Vec<u64> = (n..n + 200).collect();
        n += 200;
        let mut frames = Vec::new();
        for &m in &window {
            frames.extend(relp_syslog(m + 2, filler(m).as_bytes()));
        }
        if s.write_all(&frames).is_err() {
            break;
        }
        for &m in &window {
            match read_reply(&mut reader) {
                Some(reply) if reply == "200 OK" => acknowledged.push(m),
                _ => break 'sending,
            }
        }
    }
    let status = relay.wait_exit(
        SHUTDOWN_BOUND + Duration::from_secs(30),
        "after its disk filled",
    );
    assert!(!status.success(), "exit {status} after a full disk");
    let log = relay.log_text();
    assert!(
        log.contains("storage failed"),
        "the log does not say why it stopped"
    );
    assert!(!acknowledged.is_empty());
    eprintln!(
        "{} messages acknowledged before the disk filled",
        acknowledged.len()
    );
    // On a healthy disk the node applies what its Raft log holds, then stops.
    let copy = dir.path().join("copy");
    copy_tree(&data, &copy);
    drop(disk);
    let mut again = Relay::start(
        &copy,
        &[format!("--listen=relp://127.0.0.1:{}", free_port())],
    );
    assert!(again.terminate().success());
    let stored = again.query(&["--text", "filler"]);
    let kept: std::collections::HashSet<u64> = stored
        .iter()
        .filter_map(|r| {
            r["message"]
                .as_str()?
                .strip_prefix("filler ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let lost: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|m| !kept.contains(m))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
