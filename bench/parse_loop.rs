//! Parses one of the benchmark inputs N times (optionally writing its JSON), for counting
//! instructions with valgrind (`bench/parse-instructions.sh`). Criterion's times move by a
//! third between runs on a shared machine; an instruction count does not, so a change to the
//! parser can be judged by it before the timed benchmark confirms it.
//!
//!   parse_loop NAME parse|json|loose|loose-json N
//!   parse_loop NAME race-parse|race-json ROUNDS
//!
//! `loose` and `loose-json` do the same with `syslog_loose` (the benchmark's comparison), so
//! the two parsers' counts can be set side by side.
//!
//! The `race` modes time both parsers in turns: each round runs ours on the input for about a
//! millisecond, then syslog_loose for as many messages, and the ratio of the two is taken per
//! round. A load that comes and goes on a shared machine then slows both sides of a round
//! alike; the median round is printed (`bench/parse-race.sh`).

use std::hint::black_box;
use std::time::Instant;

use auditrelay_parsers::{parse, ParseOptions};

mod inputs;
use inputs::{loose_to_json, received, INPUTS};

/// What one timed loop does per message.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    Parse,
    Json,
    Loose,
    LooseJson,
}

fn run(work: Work, input: &[u8], n: u64, out: &mut Vec<u8>) {
    let at = received();
    let options = ParseOptions::default();
    for _ in 0..n {
        match work {
            Work::Parse => {
                black_box(parse(black_box(input), &at, &options));
            }
            Work::Json => {
                out.clear();
                parse(black_box(input), &at, &options).write_json(out);
                black_box(&out);
            }
            Work::Loose | Work::LooseJson => {
                let text = std::str::from_utf8(black_box(input)).unwrap();
                let message = syslog_loose::parse_message(text, syslog_loose::Variant::Either);
                if work == Work::LooseJson {
                    out.clear();
                    loose_to_json(&message, out);
                    black_box(&out);
                }
                black_box(message);
            }
        }
    }
}

/// Nanoseconds per message of `n` runs of `work`.
fn timed(work: Work, input: &[u8], n: u64, out: &mut Vec<u8>) -> f64 {
    let start = Instant::now();
    run(work, input, n, out);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Rounds of ours then theirs; prints the median time of each and the median of the
/// per-round ratios (theirs ÷ ours: above 1 when ours is faster).
fn race(name: &str, ours: Work, theirs: Work, input: &[u8], rounds: usize) {
    let mut out = Vec::with_capacity(4096);
    // Messages per turn: about a millisecond of ours, found after a warm-up.
    timed(ours, input, 20_000, &mut out);
    let per = timed(ours, input, 2_000, &mut out);
    let n = ((1_000_000.0 / per) as u64).max(100);
    timed(theirs, input, n, &mut out);
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let x = timed(ours, input, n, &mut out);
        let y = timed(theirs, input, n, &mut out);
        a.push(x);
        b.push(y);
        ratios.push(y / x);
    }
    println!(
        "{name:<20} {:>9.1} {:>9.1} {:>7.2}",
        median(a),
        median(b),
        median(ratios)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: parse_loop NAME parse|json|loose|loose-json N, \
                 or parse_loop NAME race-parse|race-json ROUNDS";
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
    let input = input.as_bytes();
    let work = match mode.as_str() {
        "parse" => Work::Parse,
        "json" => Work::Json,
        "loose" => Work::Loose,
        "loose-json" => Work::LooseJson,
        "race-parse" => return race(name, Work::Parse, Work::Loose, input, n as usize),
        "race-json" => return race(name, Work::Json, Work::LooseJson, input, n as usize),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    run(work, input, n, &mut Vec::with_capacity(4096));
}
