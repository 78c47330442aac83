//! Parses one of the benchmark inputs N times (optionally writing its JSON), for counting
//! instructions with valgrind (`bench/parse-instructions.sh`). Criterion's times move by a
//! third between runs on a shared machine; an instruction count does not, so a change to the
//! parser can be judged by it before the timed benchmark confirms it.
//!
//!   parse_loop NAME parse|json|loose N
//!
//! `loose` parses with `syslog_loose` (the benchmark's comparison), so the two parsers'
//! counts can be set side by side.

use std::hint::black_box;

use auditrelay_parsers::{parse, ParseOptions};

mod inputs;
use inputs::{received, INPUTS};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: parse_loop NAME parse|json|loose N";
    let (Some(name), Some(mode), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Some((_, input)) = INPUTS.iter().find(|(k, _)| k == name) else {
        eprintln!("unknown input {name}; one of {:?}", INPUTS.map(|(k, _)| k));
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if mode == "loose" {
        for _ in 0..n {
            let text = std::str::from_utf8(black_box(input.as_bytes())).unwrap();
            black_box(syslog_loose::parse_message(
                text,
                syslog_loose::Variant::Either,
            ));
        }
        return;
    }
    let json = mode == "json";
    let at = received();
    let options = ParseOptions::default();
    let mut out = Vec::with_capacity(4096);
    for _ in 0..n {
        let record = parse(black_box(input.as_bytes()), &at, &options);
        if json {
            out.clear();
            record.write_json(&mut out);
            black_box(&out);
        }
        black_box(record);
    }
}
