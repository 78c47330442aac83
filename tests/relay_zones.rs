//! Per-source zones for legacy timestamps (DESIGN.md §4: "zone per source from config"): a
//! listener name or an IP/CIDR block maps to an offset; the most specific match wins; other
//! sources get `parse.timezone`.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use common::{free_port, wait_for, Relay};

/// Sends one LF-framed message over TCP from `from` (a loopback address).
fn send_from(from: [u8; 4], port: u16, message: &str) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.write_all(format!("{message}\n").as_bytes()).unwrap();
}

#[test]
fn legacy_timestamps_take_the_zone_of_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let (eu, plain) = (free_port(), free_port());
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[listener]]
name = "eu"
url = "tcp://127.0.0.1:{eu}"
[[listener]]
name = "plain"
url = "tcp://127.0.0.1:{plain}"
[parse]
timezone = "+00:00"
[parse.zones]
eu = "+01:00"
"127.0.0.2" = "-05:00"
"#
        ),
    )
    .unwrap();
    let relay = Relay::start(
        &dir.path().join("data"),
        &["--config".to_string(), config.display().to_string()],
    );
    let cases = [
        ([127, 0, 0, 1], eu, "a", "+01:00"),
        ([127, 0, 0, 2], plain, "b", "-05:00"),
        ([127, 0, 0, 2], eu, "c", "-05:00"),
        ([127, 0, 0, 1], plain, "d", "Z"),
    ];
    for (from, port, tag, _) in cases {
        send_from(
            from,
            port,
            &format!("<13>Nov 26 08:00:00 host app: case {tag}"),
        );
    }
    let records = wait_for("4 records", Duration::from_secs(30), || {
        let r = relay.query(&[]);
        (r.len() == 4).then_some(r)
    });
    for (_, _, tag, zone) in cases {
        let r = records
            .iter()
            .find(|r| r["message"] == format!("case {tag}"))
            .unwrap();
        let ts = r["timestamp"].as_str().unwrap();
        assert_eq!(&ts[4..19], "-11-26T08:00:00", "{r}");
        assert!(ts.ends_with(zone), "case {tag}: {ts} should be in {zone}");
        assert_eq!(r["timestamp_inferred"], true);
    }
}
