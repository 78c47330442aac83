//! The relay receiving from real third-party clients: util-linux `logger` over UDP and TCP
//! (octet counting and LF framing), `openssl s_client` with and without a client certificate
//! against a listener that requires one, and syslog-ng's `loggen` over TLS. Every message sent
//! must be found by `auditrelay query` with the right fields.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, have, unique, wait_for, Relay};

#[test]
fn logger_over_udp_and_tcp_with_both_framings_is_stored_with_its_fields() {
    assert!(have("logger"), "util-linux logger is required");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = Relay::start(
        dir.path(),
        &[
            format!("--listen=udp://127.0.0.1:{port}"),
            format!("--listen=tcp://127.0.0.1:{port}"),
        ],
    );
    let cases: [(&str, &[&str], &str); 3] = [
        ("udp", &["-d"], "udp"),
        ("tcp-octet", &["-T", "--octet-count"], "tcp"),
        ("tcp-lf", &["-T"], "tcp"),
    ];
    for (mode, flags, transport) in cases {
        let marker = unique(mode);
        let status = Command::new("logger")
            .args(["-n", "127.0.0.1", "-P", &port.to_string(), "--rfc5424"])
            .args(flags)
            .args(["-t", "e2e-app", "-p", "local3.err", "--msgid", "E2E"])
            .args(["--sd-id", "meta@32473", "--sd-param", "case=\"one\""])
            .arg(&marker)
            .status()
            .unwrap();
        assert!(status.success(), "logger {mode} failed");
        let records = wait_for(
            &format!("{mode} message stored"),
            Duration::from_secs(10),
            || {
                let r = relay.query(&["--text", &marker]);
                (!r.is_empty()).then_some(r)
            },
        );
        assert_eq!(records.len(), 1, "{mode}: {records:?}");
        let r = &records[0];
        assert_eq!(r["format"], "rfc5424", "{mode}");
        assert_eq!(r["app_name"], "e2e-app");
        assert_eq!(r["msg_id"], "E2E");
        assert_eq!(
            (r["facility"].as_u64(), r["severity"].as_u64()),
            (Some(19), Some(3))
        );
        assert_eq!(r["message"], marker.as_str());
        assert_eq!(r["source"]["transport"], transport);
        assert_eq!(r["source"]["ip"], "127.0.0.1");
        let sd = r["structured_data"].as_array().unwrap();
        assert!(
            sd.iter()
                .any(|e| e["id"] == "meta@32473"
                    && e["params"][0] == serde_json::json!(["case", "one"])),
            "{sd:?}"
        );
        assert!(r["seq"].as_u64().unwrap() >= 1);
    }
    // Indexed queries find the same records.
    assert_eq!(relay.query(&["--app", "e2e-app"]).len(), 3);
    assert_eq!(
        relay
            .query(&["--severity-max", "3", "--app", "e2e-app"])
            .len(),
        3
    );
    assert_eq!(
        relay
            .query(&["--severity-max", "2", "--app", "e2e-app"])
            .len(),
        0
    );
    assert_eq!(relay.query(&["--source-ip", "127.0.0.1"]).len(), 3);
    assert_eq!(relay.metric("auditrelay_accepted_messages_total", &[]), 3.0);
}

/// Sends `lines` through `openssl s_client`; returns whether it exited successfully.
fn s_client(port: u16, dir: &Path, client_cert: bool, lines: &str) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-no_ign_eof",
        "-connect",
        &format!("127.0.0.1:{port}"),
    ])
    .args(["-CAfile", "ca.crt", "-verify_return_error"])
    .current_dir(dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if client_cert {
        cmd.args(["-cert", "client.crt", "-key", "client.key"]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(lines.as_bytes());
    drop(stdin);
    child.wait().unwrap().success()
}

#[test]
fn openssl_s_client_needs_a_client_certificate_where_the_listener_requires_one() {
    assert!(have("openssl"));
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    common::pki::make_pki(&pki);
    let port = free_port();
    let p = |f: &str| pki.join(f).display().to_string();
    let relay = Relay::start(
        &dir.path().join("data"),
        &[format!(
            "--listen=tls://127.0.0.1:{port}?cert={}&key={}&ca={}",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        )],
    );
    let with_cert = unique("with-cert");
    let without_cert = unique("without-cert");
    assert!(s_client(
        port,
        &pki,
        true,
        &format!("<13>1 - device-17 app - - - {with_cert}\n")
    ));
    s_client(
        port,
        &pki,
        false,
        &format!("<13>1 - intruder app - - - {without_cert}\n"),
    );
    let records = wait_for("TLS message stored", Duration::from_secs(10), || {
        let r = relay.query(&["--text", &with_cert]);
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(records[0]["source"]["transport"], "tls");
    let peer = records[0]["source"]["tls_peer"].as_str().unwrap();
    assert!(peer.contains("CN=device-17"), "{peer}");
    wait_for("refused handshake counted", Duration::from_secs(10), || {
        (relay.metric("auditrelay_refused_connections_total", &[]) >= 1.0).then_some(())
    });
    assert!(
        relay.query(&["--text", &without_cert]).is_empty(),
        "a client without certificate got through"
    );
}

#[test]
fn loggen_over_tls_delivers_100000_messages_and_its_reset_loses_none() {
    assert!(
        have("loggen"),
        "loggen (Debian package syslog-ng-core) is required"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The default TLS listener: a self-signed certificate generated into the data directory.
    let relay = Relay::start(dir.path(), &[format!("--listen=tls://127.0.0.1:{port}")]);
    assert!(relay.log_text().contains("self-signed"));
    const N: usize = 100_000;
    // loggen -U closes with a reset without reading TLS 1.3 session tickets.
    let out = Command::new("loggen")
        .args([
            "-U",
            "-P",
            "-Q",
            "-n",
            &N.to_string(),
            "-r",
            "1000000000",
            "-s",
            "256",
            "-I",
            "120",
        ])
        .args(["127.0.0.1", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loggen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "all loggen messages accepted",
        Duration::from_secs(60),
        || (relay.metric("auditrelay_accepted_messages_total", &[]) >= N as f64).then_some(()),
    );
    let records = relay.query(&[]);
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        let msg = r["message"].as_str().unwrap_or("");
        let seq = common::loggen_seq(msg).unwrap_or("");
        seen.insert(seq.to_string());
        assert_eq!(r["format"], "rfc5424");
    }
    assert_eq!(records.len(), N, "stored");
    assert_eq!(seen.len(), N, "distinct loggen sequence numbers");
}
