//! Parse and parse+JSON throughput for representative messages, against `syslog_loose` (the
//! parser inside Vector) on the same inputs in the same run. Results: bench/README.md.

use std::hint::black_box;

use auditrelay_parsers::{parse, ParseOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use syslog_loose::{parse_message, Message, Variant};

mod inputs;
use inputs::{received, INPUTS};

/// syslog_loose's result as a relay would have to emit it: one JSON object.
fn loose_to_json(m: &Message<&str>, out: &mut Vec<u8>) {
    let sd: Vec<serde_json::Value> = m
        .structured_data
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "params": e.params().map(|(k, v)| [k.to_string(), v.to_string()]).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = serde_json::json!({
        "format": format!("{:?}", m.protocol),
        "facility": m.facility.map(|f| f.as_str()),
        "severity": m.severity.map(|s| s.as_str()),
        "timestamp": m.timestamp.map(|t| t.to_rfc3339()),
        "hostname": m.hostname,
        "app_name": m.appname,
        "proc_id": m.procid.as_ref().map(|p| p.to_string()),
        "msg_id": m.msgid,
        "structured_data": sd,
        "message": m.msg,
    });
    let _ = serde_json::to_writer(out, &value);
}

fn bench_parse(c: &mut Criterion) {
    let options = ParseOptions::default();
    let at = received();
    for (name, input) in INPUTS {
        let bytes = input.as_bytes();
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("auditrelay", |b| {
            b.iter(|| black_box(parse(black_box(bytes), &at, &options)))
        });
        group.bench_function("syslog_loose", |b| {
            b.iter(|| {
                let text = std::str::from_utf8(black_box(bytes)).unwrap();
                black_box(parse_message(text, Variant::Either))
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("parse_json/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut out = Vec::with_capacity(4096);
        group.bench_function("auditrelay", |b| {
            b.iter(|| {
                out.clear();
                parse(black_box(bytes), &at, &options).write_json(&mut out);
                black_box(out.len())
            })
        });
        group.bench_function("syslog_loose", |b| {
            b.iter(|| {
                out.clear();
                let text = std::str::from_utf8(black_box(bytes)).unwrap();
                loose_to_json(&parse_message(text, Variant::Either), &mut out);
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
