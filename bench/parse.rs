//! Parse and parse+JSON throughput for representative messages, against `syslog_loose` (the
//! parser inside Vector) on the same inputs in the same run. Results: bench/README.md.

use std::hint::black_box;

use auditrelay_parsers::{parse, ParseOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use syslog_loose::{parse_message, Variant};

mod inputs;
use inputs::{loose_to_json, received, INPUTS};

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
