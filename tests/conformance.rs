//! Runs the peer parser's RFC 5424 and RFC 6587 test vectors (`../shared/conformance`) through
//! our parser and framing, and checks that every disagreement is one we have listed, with the
//! RFC section that justifies our answer, in `tests/conformance-disagreements.md`.
//!
//! The peer is compared in its "compliant MSG" mode, which checks MSG after a BOM is UTF-8 as
//! RFC 5424 §6.4 requires; RFC 6587 non-transparent cases run with multi-line frames on, the
//! peer's only behaviour (see the corpus README).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use auditrelay_parsers::framing::{split_stream_with, FrameDecoder, FrameKind, Framing};
use auditrelay_parsers::rfc5424::{parse_rfc5424, Rfc5424Message, Rfc5424Options, BOM};
use base64::Engine;
use serde_json::{json, Value};

fn corpus_dir() -> PathBuf {
    std::env::var_os("AUDITRELAY_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"))
}

fn cases(file: &str) -> Vec<Value> {
    let path = corpus_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect()
}

fn input_bytes(case: &Value) -> Vec<u8> {
    match (case.get("input"), case.get("input_b64")) {
        (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
        (_, Some(Value::String(b))) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("input_b64 is base64"),
        _ => panic!("case without input: {case}"),
    }
}

/// Our parse result in the corpus's message schema.
fn to_peer_schema(m: &Rfc5424Message<'_>) -> Value {
    let opt = |v: Option<&str>| v.map_or(Value::Null, |s| json!(s));
    let sd = if m.structured_data.is_empty() {
        Value::Null
    } else {
        let mut elements = serde_json::Map::new();
        for e in &m.structured_data {
            let params: serde_json::Map<String, Value> = e
                .params
                .iter()
                .map(|p| (p.name.to_string(), json!(p.value())))
                .collect();
            elements.insert(e.id.to_string(), Value::Object(params));
        }
        Value::Object(elements)
    };
    let mut out = json!({
        "pri": m.pri.value(),
        "facility": m.pri.facility(),
        "severity": m.pri.severity(),
        "version": m.version,
        "timestamp": opt(m.timestamp.map(|(_, text)| text)),
        "hostname": opt(m.hostname),
        "app_name": opt(m.app_name),
        "proc_id": opt(m.proc_id),
        "msg_id": opt(m.msg_id),
        "structured_data": sd,
    });
    // The peer keeps the BOM in MSG and reports an empty MSG as absent.
    let msg: Option<Vec<u8>> = m
        .msg
        .filter(|msg| msg.bom || !msg.bytes.is_empty())
        .map(|msg| {
            let mut bytes = if msg.bom { BOM.to_vec() } else { Vec::new() };
            bytes.extend_from_slice(msg.bytes);
            bytes
        });
    match msg {
        None => out["message"] = Value::Null,
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(s) => out["message"] = json!(s),
            Err(e) => {
                out["message_b64"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))
            }
        },
    }
    out
}

/// The fields on which `ours` differs from `expected`.
fn differing_fields(expected: &Value, ours: &Value) -> Vec<String> {
    let keys: BTreeSet<&String> = expected
        .as_object()
        .into_iter()
        .chain(ours.as_object())
        .flat_map(|o| o.keys())
        .collect();
    keys.into_iter()
        .filter(|k| {
            expected.get(*k).unwrap_or(&Value::Null) != ours.get(*k).unwrap_or(&Value::Null)
        })
        .map(|k| k.to_string())
        .collect()
}

const STRICT: Rfc5424Options = Rfc5424Options {
    allow_duplicate_sd_ids: false,
};

/// Returns a description of how we disagree with the peer on one RFC 5424 case, if we do.
fn rfc5424_disagreement(case: &Value) -> Option<String> {
    let input = input_bytes(case);
    // Where the peer has a compliant-MSG verdict, that is the RFC 5424 §6.4 reading we follow.
    let peer = case
        .get("compliant_msg_option")
        .filter(|v| !v.is_null())
        .unwrap_or(case);
    let peer_valid = peer["valid"].as_bool().expect("valid is a bool");
    match (parse_rfc5424(&input, STRICT), peer_valid) {
        (Ok(m), true) => {
            let diff = differing_fields(&case["expected"], &to_peer_schema(&m));
            (!diff.is_empty()).then(|| format!("fields differ: {}", diff.join(", ")))
        }
        (Err(_), false) => None,
        (Ok(_), false) => Some(format!("we accept; peer rejects: {}", peer["error"])),
        (Err(e), true) => Some(format!("we reject ({e}); peer accepts")),
    }
}

/// Compares the stream cases: every peer result maps to one of our frames in order.
fn rfc6587_disagreement(case: &Value) -> Option<String> {
    let input = input_bytes(case);
    let framing = match (case["framing"].as_str(), case["trailer"].as_str()) {
        (Some("octet-counting"), _) => Framing::OctetCounting,
        (_, Some("NUL")) => Framing::Nul,
        _ => Framing::Lf,
    };
    let max = case["max_message_length"].as_u64().unwrap_or(1 << 20) as usize;
    let decoder = FrameDecoder::new(framing, max).with_multiline(true);
    let frames = split_stream_with(decoder, &input, |_, _| {});
    let mut ours = frames.iter();
    for (i, expected) in case["expected"]
        .as_array()
        .expect("expected is a list")
        .iter()
        .enumerate()
    {
        let error = expected["error"].as_str();
        let complete = !expected["message"].is_null()
            && (error.is_none() || expected["error_kind"] == "reading");
        // "found EOF, expecting a MSGLEN": the stream ended cleanly between frames; we see no frame.
        if error.is_some_and(|e| e.starts_with("found EOF, expecting a MSGLEN")) {
            if let Some(extra) = ours.next() {
                return Some(format!(
                    "result {i}: peer sees end of stream, we see a frame {:?}",
                    extra.bytes
                ));
            }
            continue;
        }
        let Some(frame) = ours.next() else {
            return Some(format!("result {i}: peer has a result, we have no frame"));
        };
        let parsed = parse_rfc5424(frame.bytes, STRICT);
        match (complete, frame.defect(), parsed) {
            (true, None, Ok(m)) => {
                let unterminated = frame.kind == FrameKind::EndOfStream;
                if unterminated != (error.is_some()) {
                    return Some(format!("result {i}: trailer-at-end verdict differs"));
                }
                let diff = differing_fields(&expected["message"], &to_peer_schema(&m));
                if !diff.is_empty() {
                    return Some(format!("result {i}: fields differ: {}", diff.join(", ")));
                }
            }
            (true, defect, parsed) => {
                return Some(format!(
                    "result {i}: peer accepts; we: {defect:?} {:?}",
                    parsed.err()
                ))
            }
            (false, Some(_), _) | (false, None, Err(_)) => {}
            (false, None, Ok(_)) => return Some(format!("result {i}: peer rejects, we accept")),
        }
    }
    // In strict mode the peer stops at its first error; in best-effort mode it reports every frame.
    if case["best_effort"] == true {
        if let Some(extra) = ours.next() {
            return Some(format!("we have an extra frame {:?}", extra.bytes));
        }
    }
    None
}

/// The case ids listed in the disagreements file.
fn listed_disagreements() -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-disagreements.md");
    let text = std::fs::read_to_string(path).expect("tests/conformance-disagreements.md exists");
    text.lines()
        .filter(|l| l.starts_with("| go-syslog-"))
        .filter_map(|l| l.split('|').nth(1).map(|id| id.trim().to_string()))
        .collect()
}

fn check(file: &str, judge: fn(&Value) -> Option<String>) -> BTreeMap<String, String> {
    let all = cases(file);
    let disagreements: BTreeMap<String, String> = all
        .iter()
        .filter_map(|c| judge(c).map(|why| (c["id"].as_str().unwrap().to_string(), why)))
        .collect();
    let agree = all.len() - disagreements.len();
    eprintln!("{file}: {agree} of {} cases agree", all.len());
    assert!(
        agree * 100 >= all.len() * 99,
        "{file}: only {agree} of {} cases agree",
        all.len()
    );
    disagreements
}

#[test]
fn rfc5424_and_rfc6587_vectors_agree_except_for_listed_justified_cases() {
    let mut found = check("rfc5424-go-syslog.jsonl", rfc5424_disagreement);
    found.extend(check("rfc6587-go-syslog.jsonl", rfc6587_disagreement));
    let listed = listed_disagreements();
    let unlisted: Vec<_> = found
        .iter()
        .filter(|(id, _)| !listed.contains(*id))
        .collect();
    let stale: Vec<_> = listed
        .iter()
        .filter(|id| !found.contains_key(*id))
        .collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "disagreements not in tests/conformance-disagreements.md: {unlisted:#?}\n\
         listed there but no longer disagreeing: {stale:#?}"
    );
}
