//! The operations endpoint under hostile callers: anonymous and wrong-token calls, a web page
//! in a browser on the same host (cross-site `POST`, a rebound host name), and a flood of
//! connections that never finish their request head. Requests go through real `curl`, as an
//! operator's would; the relay is a real process on 127.0.0.1.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{free_port, have, http_get, unique, wait_for, Relay, BIN};

/// Connections the flood test opens: several times the endpoint's cap of 256.
const FLOOD: usize = 2_000;

/// A relay with one TCP syslog listener; returns it and the listener's port.
fn relay_with_tcp(dir: &Path, extra: &[String]) -> (Relay, u16) {
    let port = free_port();
    let mut args = vec![format!("--listen=tcp://127.0.0.1:{port}")];
    args.extend_from_slice(extra);
    (Relay::start(dir, &args), port)
}

/// Runs `curl -s -m 10` with `args` against `url`; returns the status code (0: no answer).
fn curl(args: &[&str], url: &str) -> u16 {
    assert!(have("curl"), "curl is required");
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Sends one syslog message over TCP and waits until `query` finds it: the node commits.
fn assert_commits(relay: &Relay, port: u16, tag: &str) {
    let marker = unique(tag);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    writeln!(s, "<13>1 2026-12-07T10:00:00Z host app - - - {marker}").unwrap();
    drop(s);
    wait_for(
        &format!("{marker} committed"),
        Duration::from_secs(30),
        || (!relay.query(&["--text", &marker]).is_empty()).then_some(()),
    );
}

fn member_ids(relay: &Relay) -> Vec<u64> {
    let (code, body) = http_get(relay.http, "/cluster/status").expect("status answers");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect()
}

fn admin_token(relay: &Relay) -> String {
    std::fs::read_to_string(relay.data_dir.join("admin.token"))
        .expect("the relay wrote its admin token into the data dir")
        .trim()
        .to_string()
}

#[test]
fn mutating_calls_without_the_admin_token_are_refused_and_the_node_keeps_committing() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, port) = relay_with_tcp(dir.path(), &[]);
    let members = member_ids(&relay);
    let base = format!("http://{}", relay.http);
    let add = format!("{base}/cluster/add?id=9&address=127.0.0.1:7999");
    let wrong = "Authorization: Bearer 00000000000000000000000000000000";

    assert_eq!(curl(&["-X", "POST"], &add), 401, "no token");
    assert_eq!(curl(&["-X", "POST", "-H", wrong], &add), 401, "wrong token");
    let remove_self = format!("{base}/cluster/remove?id={}", members[0]);
    assert_eq!(curl(&["-X", "POST"], &remove_self), 401);
    let replay = format!("{base}/dlq/replay?destination=siem");
    assert_eq!(curl(&["-X", "POST", "-H", wrong], &replay), 401);

    let m = relay.metrics();
    let refused = |reason: &str| {
        common::metric_value(
            &m,
            "auditrelay_http_refused_total",
            &[&format!("reason=\"{reason}\"")],
        )
    };
    assert_eq!(refused("no_token"), 2.0, "{m}");
    assert_eq!(refused("bad_token"), 2.0, "{m}");
    assert!(
        !relay
            .log_text()
            .contains("00000000000000000000000000000000"),
        "a presented token was logged"
    );

    assert_commits(&relay, port, "after-anonymous-calls");
    assert_eq!(
        member_ids(&relay),
        members,
        "no member was added or removed"
    );
}

#[test]
fn a_web_page_can_neither_post_cross_site_nor_reach_the_endpoint_under_a_rebound_name() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, port) = relay_with_tcp(dir.path(), &[]);
    let members = member_ids(&relay);
    let add = format!(
        "http://{}/cluster/add?id=9&address=127.0.0.1:7999",
        relay.http
    );

    // What a form or fetch() with a CORS-safelisted request sends: no Authorization.
    let cross_site = [
        "-X",
        "POST",
        "-H",
        "Origin: http://evil.example",
        "-H",
        "Content-Type: text/plain",
    ];
    assert_eq!(curl(&cross_site, &add), 403);
    // Even a token would not help a page that carries an Origin.
    let bearer = format!("Authorization: Bearer {}", admin_token(&relay));
    let with_token = [
        "-X",
        "POST",
        "-H",
        "Origin: http://evil.example",
        "-H",
        &bearer,
    ];
    assert_eq!(curl(&with_token, &add), 403);
    // A page at evil.example whose name now resolves to 127.0.0.1: same origin for the
    // browser, but the Host names the page's site.
    let rebound = format!("Host: evil.example:{}", relay.http.port());
    assert_eq!(curl(&["-X", "POST", "-H", &rebound], &add), 421);
    let status = format!("http://{}/cluster/status", relay.http);
    assert_eq!(
        curl(&["-H", &rebound], &status),
        421,
        "reading is refused too"
    );
    // Probes stay open to any name (Prometheus may know the node by one we do not).
    let metrics = format!("http://{}/metrics", relay.http);
    assert_eq!(curl(&["-H", &rebound], &metrics), 200);

    let m = relay.metrics();
    let refused =
        |reason: &str| common::metric_value(&m, "auditrelay_http_refused_total", &[reason]);
    assert_eq!(refused("reason=\"origin\""), 2.0, "{m}");
    assert_eq!(refused("reason=\"host\""), 2.0, "{m}");

    assert_commits(&relay, port, "after-cross-site-calls");
    assert_eq!(member_ids(&relay), members, "no member was added");
}

#[test]
fn the_admin_token_from_the_data_dir_is_accepted_by_the_endpoint_and_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _) = relay_with_tcp(dir.path(), &[]);
    let path = relay.data_dir.join("admin.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private: {mode:o}");
    let token = admin_token(&relay);
    assert!(
        !relay.log_text().contains(&token),
        "the token itself was logged"
    );
    assert!(relay.log_text().contains(&path.display().to_string()));

    let bearer = format!("Authorization: Bearer {token}");
    let replay = format!("http://{}/dlq/replay?destination=siem", relay.http);
    assert_eq!(
        curl(&["-X", "POST", "-H", &bearer], &replay),
        404,
        "no such destination"
    );
    let remove = format!("http://{}/cluster/remove?id=9", relay.http);
    let answer = curl(&["-X", "POST", "-H", &bearer], &remove);
    assert!(
        answer == 200 || answer == 409,
        "remove of a stranger: {answer}"
    );

    let http = relay.http.to_string();
    let data_dir = relay.data_dir.display().to_string();
    let cli = |args: &[&str]| {
        Command::new(&*BIN)
            .args(args)
            .env_remove("AUDITRELAY_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let status = cli(&[
        "cluster",
        "status",
        "--http",
        &http,
        "--data-dir",
        &data_dir,
    ]);
    assert!(status.status.success(), "{status:?}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(status["members"].is_array(), "{status}");

    let anonymous = cli(&["cluster", "remove", "9", "--http", &http]);
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(!anonymous.status.success());
    assert!(
        stderr.contains("no admin token: pass --token-file or --data-dir of the node"),
        "{stderr}"
    );
    let remove = cli(&[
        "cluster",
        "remove",
        "9",
        "--http",
        &http,
        "--data-dir",
        &data_dir,
    ]);
    let stderr = String::from_utf8_lossy(&remove.stderr);
    assert!(!stderr.contains("401"), "{stderr}");
    let from_env = Command::new(&*BIN)
        .args(["dlq", "replay", "siem", "--http", &http])
        .env("AUDITRELAY_ADMIN_TOKEN", &token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&from_env.stderr);
    assert!(
        stderr.contains("answered 404"),
        "the variable's token is accepted: {stderr}"
    );
}

#[test]
fn a_configured_token_file_and_allowed_host_names_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let token = "configured-token-0123456789abcdef";
    let token_path = dir.path().join("ops.token");
    std::fs::write(&token_path, format!("{token}\n")).unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:1\"\nadmin_token_file = {:?}\n\
             allowed_hosts = [\"relay1.example\"]\n",
            token_path.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (relay, _) = relay_with_tcp(&data, &[format!("--config={}", config.display())]);
    assert!(
        !data.join("admin.token").exists(),
        "no token is generated when one is configured"
    );
    let status = format!("http://{}/cluster/status", relay.http);
    assert_eq!(curl(&["-H", "Host: relay1.example:9514"], &status), 200);
    assert_eq!(curl(&["-H", "Host: relay2.example:9514"], &status), 421);
    let replay = format!("http://{}/dlq/replay?destination=siem", relay.http);
    let bearer = format!("Authorization: Bearer {token}");
    let by_name = ["-X", "POST", "-H", "Host: relay1.example", "-H", &bearer];
    assert_eq!(curl(&by_name, &replay), 404, "no such destination");
    let out = Command::new(&*BIN)
        .args(["dlq", "replay", "siem", "--http", &relay.http.to_string()])
        .arg("--token-file")
        .arg(&token_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("answered 404"), "{stderr}");
}

/// Raises this process's open-file limit to its hard limit, for the flood's sockets.
fn raise_open_file_limit() {
    let limit = auditrelay::descriptors::raise_limit();
    assert!(
        limit.soft as usize > FLOOD + 100,
        "the hard limit of open files ({}) is too low for {FLOOD} connections",
        limit.soft
    );
}

#[test]
fn half_sent_request_heads_neither_starve_the_endpoint_nor_ingest_and_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    // The relay starts first, so it keeps the open-file limit it was given.
    let (relay, port) = relay_with_tcp(dir.path(), &[]);
    raise_open_file_limit();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut s = TcpStream::connect_timeout(&relay.http, Duration::from_secs(5))
            .expect("the endpoint accepts");
        // An early connection may already be closed to make room; that is the point.
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHo");
        flood.push(s);
    }

    assert!(have("curl"), "curl is required");
    let metrics = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{}/metrics", relay.http)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.status.success() && text.contains("auditrelay_http_refused_total"),
        "/metrics did not answer during the flood: {metrics:?}"
    );
    assert_commits(&relay, port, "during-the-flood");

    // Each connection ends: closed to make room, or at the header timeout (10 s).
    for (i, s) in flood.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connection {i} is still open: {e}"),
        }
    }
    let refused = relay.metric("auditrelay_http_refused_total", &["reason=\"connections\""]);
    assert!(refused > 0.0, "connections over the cap are counted");
    assert!(relay.is_ready());
}
