//! Forwarding to Splunk HEC, Elasticsearch `_bulk` and a generic HTTP endpoint. No real Splunk
//! or Elasticsearch can run here, so these tests use protocol-faithful test servers (named so in
//! each test) that answer as the real ones do: per-item `_bulk` statuses (201, 409 for an
//! existing `_id`, 429, 400 `mapper_parsing_exception`), whole-request 429 with `Retry-After`
//! and 503, HEC's `invalid-event-number`, "Server is busy", tokens, channels and indexer
//! acknowledgement. Refused records land in the dead-letter set, and `auditrelay dlq replay`
//! sends them again once the receiver takes them.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http_server::{serve, Request, Response};
use common::{free_port, wait_for, Relay};
use serde_json::{json, Value};

const N: u64 = 2_000;

/// Message `n`; every hundredth carries the word the test servers refuse.
fn event(n: u64) -> String {
    let poison = if n % 100 == 7 { " POISON" } else { "" };
    format!(
        "<13>1 2026-11-26T10:00:00Z host-{} app - - - event {n}{poison}",
        n % 3
    )
}

fn poisoned() -> u64 {
    (0..N).filter(|n| n % 100 == 7).count() as u64
}

/// A relay with a TCP listener forwarding to `forward`, given all `N` events.
fn relay_sending_all(dir: &std::path::Path, forward: String) -> Relay {
    let tcp = free_port();
    let relay = Relay::start(
        &dir.join("data"),
        &[
            format!("--listen=tcp://127.0.0.1:{tcp}"),
            format!("--forward={forward}"),
        ],
    );
    send_all(tcp);
    relay
}

fn send_all(port: u16) {
    let mut bytes = Vec::new();
    for n in 0..N {
        let m = event(n);
        bytes.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    common::forwarding::send_tcp(port, &bytes);
}

fn event_number(raw: &str) -> Option<u64> {
    raw.split("event ").nth(1)?.split(' ').next()?.parse().ok()
}

fn dlq_list(relay: &Relay, destination: &str) -> Vec<Value> {
    let data_dir = relay.data_dir.display().to_string();
    common::run_cli(&["dlq", "list", destination, "--data-dir", &data_dir])
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn dlq_replay(relay: &Relay, destination: &str) -> Value {
    let http = relay.http.to_string();
    let data_dir = relay.data_dir.display().to_string();
    serde_json::from_slice(&common::run_cli(&[
        "dlq",
        "replay",
        destination,
        "--http",
        &http,
        "--data-dir",
        &data_dir,
    ]))
    .unwrap()
}

/// Checks the dead letters, makes the receiver accept them, replays, and waits for the set to
/// empty. `delivered` says how many distinct events the receiver holds.
fn dead_letters_then_replay(
    relay: &Relay,
    destination: &str,
    accept_poison: &AtomicBool,
    delivered: &dyn Fn() -> u64,
    reason: &str,
) {
    let dead = wait_for("dead letters", Duration::from_secs(60), || {
        let d = dlq_list(relay, destination);
        (d.len() as u64 == poisoned()).then_some(d)
    });
    for d in &dead {
        assert!(d["error"].as_str().unwrap().contains(reason), "{d}");
        assert!(
            d["record"]["raw"].as_str().unwrap().contains("POISON"),
            "{d}"
        );
        assert_eq!(d["record"]["seq"], d["seq"]);
    }
    // Batches after the refused ones may still be retrying (429, 503).
    wait_for("everything else delivered", Duration::from_secs(60), || {
        (delivered() == N - poisoned()).then_some(())
    });
    accept_poison.store(true, Ordering::SeqCst);
    let answer = dlq_replay(relay, destination);
    assert_eq!(answer["queued"], poisoned(), "{answer}");
    wait_for("replayed events delivered", Duration::from_secs(60), || {
        (delivered() == N).then_some(())
    });
    wait_for(
        "the dead-letter set to empty",
        Duration::from_secs(30),
        || dlq_list(relay, destination).is_empty().then_some(()),
    );
}

/// Elasticsearch as `_bulk` answers: created, conflicts, rejections, mapping errors.
#[derive(Default)]
struct Elasticsearch {
    docs: Mutex<HashMap<String, Value>>,
    requests: AtomicU64,
    whole_429: AtomicU64,
    whole_503: AtomicU64,
    item_429: AtomicU64,
    rejected_once: Mutex<HashSet<String>>,
    accept_poison: AtomicBool,
}

impl Elasticsearch {
    fn bulk(&self, r: &Request) -> Response {
        if r.method != "POST" || r.path != "/_bulk" {
            return Response::json(
                405,
                json!({"error": "Incorrect HTTP method", "status": 405}),
            );
        }
        if r.header("content-type") != Some("application/x-ndjson") {
            return Response::json(
                406,
                json!({"error": "Content-Type header is not supported", "status": 406}),
            );
        }
        match self.requests.fetch_add(1, Ordering::SeqCst) % 11 {
            3 => {
                self.whole_429.fetch_add(1, Ordering::SeqCst);
                return Response::json(429, json!({"error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}, "status": 429}))
                    .with_header("Retry-After", "1");
            }
            8 => {
                self.whole_503.fetch_add(1, Ordering::SeqCst);
                return Response::json(
                    503,
                    json!({"error": {"type": "cluster_block_exception", "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];"}, "status": 503}),
                );
            }
            _ => {}
        }
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if !text.ends_with('\n') {
            return Response::json(
                400,
                json!({"error": {"type": "illegal_argument_exception", "reason": "The bulk request must be terminated by a newline [\\n]"}, "status": 400}),
            );
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut items = Vec::new();
        let mut errors = false;
        for pair in lines.chunks(2) {
            let action: Value = serde_json::from_str(pair[0]).unwrap();
            let doc: Value = serde_json::from_str(pair.get(1).copied().unwrap_or("null")).unwrap();
            let create = &action["create"];
            let id = create["_id"].as_str().unwrap().to_string();
            let index = create["_index"].as_str().unwrap().to_string();
            assert!(
                doc["seq"].is_u64() && doc["@timestamp"].is_string(),
                "{doc}"
            );
            let raw = doc["raw"].as_str().unwrap_or("");
            let n = event_number(raw).unwrap_or(0);
            let first_try = self.rejected_once.lock().unwrap().insert(id.clone());
            let (status, error) = if self.docs.lock().unwrap().contains_key(&id) {
                (
                    409,
                    Some((
                        "version_conflict_engine_exception",
                        format!("[{id}]: version conflict, document already exists"),
                    )),
                )
            } else if n % 10 == 3 && first_try {
                self.item_429.fetch_add(1, Ordering::SeqCst);
                (
                    429,
                    Some((
                        "es_rejected_execution_exception",
                        "rejected execution of primary operation".to_string(),
                    )),
                )
            } else if raw.contains("POISON") && !self.accept_poison.load(Ordering::SeqCst) {
                (
                    400,
                    Some((
                        "mapper_parsing_exception",
                        "failed to parse field [message] of type [date]".to_string(),
                    )),
                )
            } else {
                self.docs.lock().unwrap().insert(id.clone(), doc);
                (201, None)
            };
            errors |= error.is_some();
            let mut item = json!({"_index": index, "_id": id, "status": status});
            match error {
                Some((kind, reason)) => item["error"] = json!({"type": kind, "reason": reason}),
                None => {
                    item["result"] = json!("created");
                    item["_version"] = json!(1);
                }
            }
            items.push(json!({"create": item}));
        }
        Response::json(200, json!({"took": 3, "errors": errors, "items": items}))
    }
}

#[test]
fn elasticsearch_bulk_via_protocol_faithful_test_server_partial_failures_dead_letters_and_replay() {
    let es = Arc::new(Elasticsearch::default());
    let server = es.clone();
    let port = serve(Arc::new(move |r: &Request| server.bulk(r)));
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_all(
        dir.path(),
        format!("elasticsearch://127.0.0.1:{port}/logs-%Y.%m.%d?name=es&batch_max_records=300"),
    );
    let delivered = || {
        let docs = es.docs.lock().unwrap();
        docs.values()
            .filter_map(|d| event_number(d["raw"].as_str()?))
            .collect::<HashSet<u64>>()
            .len() as u64
    };
    dead_letters_then_replay(
        &relay,
        "es",
        &es.accept_poison,
        &delivered,
        "mapper_parsing_exception",
    );
    let docs = es.docs.lock().unwrap();
    assert_eq!(
        docs.len() as u64,
        N,
        "one document per record: _id = cluster-seq"
    );
    assert!(docs.keys().all(|id| id.contains('-')));
    eprintln!(
        "Elasticsearch test server: {N} documents; served {} whole-request 429s, {} 503s, {} item 429s; relay retried {}",
        es.whole_429.load(Ordering::SeqCst),
        es.whole_503.load(Ordering::SeqCst),
        es.item_429.load(Ordering::SeqCst),
        relay.metric("auditrelay_forward_retried_messages_total", &[])
    );
    assert!(es.whole_429.load(Ordering::SeqCst) > 0 && es.whole_503.load(Ordering::SeqCst) > 0);
    assert!(es.item_429.load(Ordering::SeqCst) > 0);
    assert!(relay.metric("auditrelay_forward_retried_messages_total", &[]) > 0.0);
}

/// Splunk HEC as it answers: token, channel, busy, bad events by number, indexer acks.
#[derive(Default)]
struct Hec {
    events: Mutex<Vec<Value>>,
    requests: AtomicU64,
    busy: AtomicU64,
    next_ack: AtomicU64,
    ack_polls: Mutex<HashMap<u64, u32>>,
    accept_poison: AtomicBool,
}

impl Hec {
    fn handle(&self, r: &Request) -> Response {
        if r.header("authorization") != Some("Splunk s3cr3t") {
            return Response::json(403, json!({"text": "Invalid token", "code": 4}));
        }
        if r.header("x-splunk-request-channel").is_none() {
            return Response::json(400, json!({"text": "Data channel is missing", "code": 10}));
        }
        if r.path == "/services/collector/ack" {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let mut polls = self.ack_polls.lock().unwrap();
            let mut acks = serde_json::Map::new();
            for id in body["acks"].as_array().unwrap() {
                let id = id.as_u64().unwrap();
                let seen = polls.entry(id).or_insert(0);
                *seen += 1;
                // Indexed by the second poll, as a busy indexer would be.
                acks.insert(id.to_string(), json!(*seen >= 2));
            }
            return Response::json(200, json!({"acks": acks}));
        }
        if r.path != "/services/collector/event" {
            return Response::json(
                404,
                json!({"text": "The requested URL was not found on this server.", "code": 404}),
            );
        }
        if self.requests.fetch_add(1, Ordering::SeqCst) % 6 == 4 {
            self.busy.fetch_add(1, Ordering::SeqCst);
            return Response::json(
                503,
                json!({"text": "Server is busy", "code": 9, "invalid-event-number": 0}),
            );
        }
        let events: Vec<Value> = serde_json::Deserializer::from_slice(&r.body)
            .into_iter::<Value>()
            .map(|e| e.unwrap())
            .collect();
        for (i, e) in events.iter().enumerate() {
            let bad = e.get("event").is_none()
                || (e["event"]["raw"].as_str().unwrap_or("").contains("POISON")
                    && !self.accept_poison.load(Ordering::SeqCst));
            if bad {
                // Splunk indexes the events before the invalid one.
                self.events.lock().unwrap().extend_from_slice(&events[..i]);
                return Response::json(
                    400,
                    json!({"text": "Invalid data format", "code": 6, "invalid-event-number": i}),
                );
            }
        }
        self.events.lock().unwrap().extend(events);
        let ack = self.next_ack.fetch_add(1, Ordering::SeqCst);
        Response::json(200, json!({"text": "Success", "code": 0, "ackId": ack}))
    }
}

#[test]
fn splunk_hec_via_protocol_faithful_test_server_with_acks_dead_letters_and_replay() {
    let hec = Arc::new(Hec::default());
    let server = hec.clone();
    let port = serve(Arc::new(move |r: &Request| server.handle(r)));
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_all(
        dir.path(),
        format!("splunk-hec+http://127.0.0.1:{port}?name=hec&token=s3cr3t&ack=true&batch_max_records=250&index=audit"),
    );
    let delivered = || {
        hec.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| event_number(e["event"]["raw"].as_str()?))
            .collect::<HashSet<u64>>()
            .len() as u64
    };
    dead_letters_then_replay(
        &relay,
        "hec",
        &hec.accept_poison,
        &delivered,
        "Invalid data format",
    );
    let events = hec.events.lock().unwrap();
    let e = &events[0];
    assert_eq!(e["index"], "audit");
    assert_eq!(e["fields"]["auditrelay_seq"], e["event"]["seq"].to_string());
    eprintln!(
        "HEC test server: {} events for {N} records ({} duplicates from events before a bad one), {} busy answers, {} acks polled",
        events.len(),
        events.len() as u64 - N,
        hec.busy.load(Ordering::SeqCst),
        hec.ack_polls.lock().unwrap().len()
    );
    assert!(hec.busy.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_generic_endpoint_that_refuses_a_batch_gets_it_halved_until_the_bad_record_is_found() {
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let accept = Arc::new(AtomicBool::new(false));
    let (r2, a2) = (received.clone(), accept.clone());
    let port = serve(Arc::new(move |r: &Request| {
        let text = String::from_utf8_lossy(&r.body);
        if text.contains("POISON") && !a2.load(Ordering::SeqCst) {
            return Response::json(422, json!({"error": "unprocessable"}));
        }
        let mut got = r2.lock().unwrap();
        got.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
        Response::json(200, json!({"ok": true}))
    }));
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_all(
        dir.path(),
        format!("http://127.0.0.1:{port}/ingest?name=web"),
    );
    let delivered = || {
        received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| event_number(e["raw"].as_str()?))
            .collect::<HashSet<u64>>()
            .len() as u64
    };
    dead_letters_then_replay(&relay, "web", &accept, &delivered, "HTTP 422");
    assert_eq!(
        received.lock().unwrap().len() as u64,
        N,
        "no duplicates: only refused halves go again"
    );
}

/// A RELP server that refuses (`rsp 500`) what contains the poison word, as librelp servers
/// answer a message their output refused. rsyslog's imrelp cannot be made to refuse one
/// message, so this mock stands in for that case only.
fn mock_refusing_relp_server(accept_poison: Arc<AtomicBool>, got: Arc<Mutex<Vec<String>>>) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (accept_poison, got) = (accept_poison.clone(), got.clone());
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut input = BufReader::new(stream);
                loop {
                    // TXNR SP COMMAND SP DATALEN [SP DATA] LF
                    let mut head = Vec::new();
                    for _ in 0..3 {
                        let mut field = Vec::new();
                        if input.read_until(b' ', &mut field).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(String::from_utf8_lossy(&field).trim().to_string());
                    }
                    let (txnr, command) = (head[0].clone(), head[1].clone());
                    // DATALEN 0 ends with LF instead of SP: the read above took "0\n…".
                    let (len, mut data) = match head[2].split_once('\n') {
                        Some((n, rest)) => (n.parse::<usize>().unwrap(), rest.as_bytes().to_vec()),
                        None => (head[2].parse::<usize>().unwrap(), Vec::new()),
                    };
                    if len > 0 {
                        let mut body = vec![0u8; len + 1];
                        input.read_exact(&mut body).unwrap();
                        body.pop();
                        data = body;
                    }
                    let text = String::from_utf8_lossy(&data).into_owned();
                    let reply = match command.as_str() {
                        "open" => "200 OK\nrelp_version=0\ncommands=syslog".to_string(),
                        "syslog"
                            if text.contains("POISON") && !accept_poison.load(Ordering::SeqCst) =>
                        {
                            "500 message refused by the output".to_string()
                        }
                        "syslog" => {
                            got.lock().unwrap().push(text);
                            "200 OK".to_string()
                        }
                        _ => "200 OK".to_string(),
                    };
                    if out
                        .write_all(format!("{txnr} rsp {} {reply}\n", reply.len()).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn relp_refusals_become_dead_letters_with_a_mock_relp_server() {
    let accept = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::new()));
    let port = mock_refusing_relp_server(accept.clone(), got.clone());
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_all(dir.path(), format!("relp://127.0.0.1:{port}?name=relp"));
    let delivered = || {
        got.lock()
            .unwrap()
            .iter()
            .filter_map(|m| event_number(m))
            .collect::<HashSet<u64>>()
            .len() as u64
    };
    dead_letters_then_replay(&relay, "relp", &accept, &delivered, "RELP rsp 500");
}

/// A relay with a TCP listener forwarding to `forward`, given one event.
fn relay_sending_one(dir: &std::path::Path, forward: String) -> Relay {
    let tcp = free_port();
    let relay = Relay::start(
        &dir.join("data"),
        &[
            format!("--listen=tcp://127.0.0.1:{tcp}"),
            format!("--forward={forward}"),
        ],
    );
    let m = event(1);
    common::forwarding::send_tcp(tcp, format!("{} {m}", m.len()).as_bytes());
    relay
}

#[test]
fn a_receivers_refusal_text_cannot_forge_lines_in_the_relays_log() {
    // A receiver whose refusal echoes what it was sent, line breaks included.
    let port = serve(Arc::new(|_: &Request| Response {
        status: 422,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: b"refused\r\nFAKE LOG LINE: everything was delivered\nFAKE too".to_vec(),
    }));
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_one(
        dir.path(),
        format!("http://127.0.0.1:{port}/ingest?name=web"),
    );
    wait_for("the dead letter", Duration::from_secs(30), || {
        (relay.metric("auditrelay_forward_dead_lettered_messages_total", &[]) == 1.0).then_some(())
    });
    let log = relay.log_text();
    assert!(
        log.contains(r"refused\r\nFAKE LOG LINE"),
        "the receiver's text is in the log, escaped:\n{log}"
    );
    let forged: Vec<&str> = log.lines().filter(|l| l.starts_with("FAKE")).collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}");
}

/// A HEC stand-in whose token has indexer acknowledgement off (answers 200 without `ackId`)
/// until `acknowledging` is set; then it answers with an `ackId` and confirms it when polled.
#[derive(Default)]
struct HecTokenWithoutAcks {
    acknowledging: AtomicBool,
    events: Mutex<Vec<Value>>,
}

impl HecTokenWithoutAcks {
    fn handle(&self, r: &Request) -> Response {
        let acknowledging = self.acknowledging.load(Ordering::SeqCst);
        match r.path.as_str() {
            "/services/collector/ack" if acknowledging => {
                Response::json(200, json!({"acks": {"0": true}}))
            }
            "/services/collector/ack" => {
                Response::json(400, json!({"text": "ACK is disabled", "code": 14}))
            }
            "/services/collector/event" => {
                if !acknowledging {
                    return Response::json(200, json!({"text": "Success", "code": 0}));
                }
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                self.events.lock().unwrap().push(body);
                Response::json(200, json!({"text": "Success", "code": 0, "ackId": 0}))
            }
            _ => Response::json(404, json!({"text": "not found", "code": 404})),
        }
    }
}

#[test]
fn hec_with_ack_true_counts_nothing_delivered_without_an_ack_id_and_reports_the_configuration() {
    let hec = Arc::new(HecTokenWithoutAcks::default());
    let server = hec.clone();
    let port = serve(Arc::new(move |r: &Request| server.handle(r)));
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_sending_one(
        dir.path(),
        format!("splunk-hec+http://127.0.0.1:{port}?name=hec&token=t&ack=true&retry_max_secs=1"),
    );
    let errors = |r: &Relay| {
        r.metric(
            "auditrelay_forward_configuration_errors_total",
            &["destination=\"hec\""],
        )
    };
    wait_for(
        "the configuration error reported twice (sent again)",
        Duration::from_secs(30),
        || (errors(&relay) >= 2.0).then_some(()),
    );
    let cursor = |r: &Relay| r.metric("auditrelay_forward_cursor", &["destination=\"hec\""]);
    assert_eq!(cursor(&relay), 0.0, "nothing counts as delivered");
    assert_eq!(
        relay.metric("auditrelay_forward_acknowledged_messages_total", &[]),
        0.0
    );
    let log = relay.log_text();
    assert!(
        log.lines().any(|l| l.contains("configuration error")
            && l.contains("without ackId")
            && l.contains("hec")),
        "the log names the destination and the error:\n{log}"
    );

    // The operator enables indexer acknowledgement on the token.
    hec.acknowledging.store(true, Ordering::SeqCst);
    wait_for("the record delivered", Duration::from_secs(30), || {
        (cursor(&relay) == 1.0).then_some(())
    });
    assert_eq!(hec.events.lock().unwrap().len(), 1);
}
