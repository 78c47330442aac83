//! Helpers for forwarding tests: RFC 5424 test messages of several shapes, a TCP sender, and
//! reading back what a receiver got.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Test message `n`: RFC 5424 in four shapes (SD with escapes, nil SD, several elements and a
/// BOM, an offset time with double spaces in MSG), none with a line break.
pub fn message(n: u64) -> String {
    match n % 4 {
        0 => format!(
            "<165>1 2026-11-26T10:00:00.{:06}Z host-{} app - ID{} [ex@32473 n=\"{n}\" q=\"a\\\"b\\]c\"] message {n} ünïcödé",
            n % 1_000_000,
            n % 7,
            n % 13
        ),
        1 => format!("<13>1 2026-11-26T10:00:00Z h{} - - - - message {n}", n % 5),
        2 => format!("<14>1 - - - - - [a@1][b@1 x=\"y\"] \u{feff}BOM message {n}"),
        _ => format!("<15>1 2026-11-26T10:00:00+01:00 host app 42 - -  two  spaces {n}"),
    }
}

/// Octet-counted frames of messages `range`.
pub fn frames(range: std::ops::Range<u64>) -> Vec<u8> {
    octet_frames(range, message)
}

/// `message(n)` for each `n` of `range`, octet-counted, back to back.
pub fn octet_frames(range: std::ops::Range<u64>, message: impl Fn(u64) -> String) -> Vec<u8> {
    let mut out = Vec::new();
    for n in range {
        let m = message(n);
        out.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    out
}

/// Sends `bytes` over one TCP connection and closes it.
pub fn send_tcp(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
}

/// Sends messages `range` at about `rate` per second, in 10 ms slices.
pub fn send_paced(port: u16, range: std::ops::Range<u64>, rate: u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let start = Instant::now();
    let per_slice = (rate / 100).max(1);
    let mut n = range.start;
    let mut slice = 0u32;
    while n < range.end {
        let end = (n + per_slice).min(range.end);
        s.write_all(&frames(n..end)).unwrap();
        n = end;
        slice += 1;
        let due = start + Duration::from_millis(10) * slice;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// A received line taken apart: the message as the relay received it, and the relay's seq.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub original: String,
    pub seq: u64,
    pub cluster: String,
}

/// Removes `[auditrelay@32473 seq="…" cluster="…"]` from a received line, restoring `-` where
/// it replaced a nil STRUCTURED-DATA.
pub fn strip_element(line: &str) -> Option<Received> {
    let start = line.find("[auditrelay@32473 seq=\"")?;
    let rest = &line[start..];
    let end = start + rest.find("\"]")? + 2;
    let element = &line[start..end];
    let seq = element
        .split("seq=\"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()?;
    let cluster = element
        .split("cluster=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let before = &line[..start];
    let original = if before.ends_with(']') {
        format!("{before}{}", &line[end..])
    } else {
        format!("{before}-{}", &line[end..])
    };
    Some(Received {
        original,
        seq,
        cluster,
    })
}

/// How often each test message `0..n` arrived, and lines that are no test message at all.
pub struct Tally {
    pub counts: Vec<u32>,
    pub foreign: Vec<String>,
    pub seqs: HashMap<u64, u32>,
}

impl Tally {
    pub fn of(lines: &[String], n: u64) -> Tally {
        let expected: HashMap<String, u64> = (0..n).map(|i| (message(i), i)).collect();
        let mut counts = vec![0u32; n as usize];
        let mut foreign = Vec::new();
        let mut seqs = HashMap::new();
        for line in lines {
            match strip_element(line) {
                Some(r) => match expected.get(&r.original) {
                    Some(i) => {
                        counts[*i as usize] += 1;
                        *seqs.entry(r.seq).or_insert(0) += 1;
                    }
                    None => foreign.push(line.clone()),
                },
                None => foreign.push(line.clone()),
            }
        }
        Tally {
            counts,
            foreign,
            seqs,
        }
    }

    /// The later of two tallies of a growing file.
    pub fn max_by(self, other: Tally) -> Tally {
        if other.counts.iter().sum::<u32>() > self.counts.iter().sum::<u32>() {
            other
        } else {
            self
        }
    }

    pub fn missing(&self) -> usize {
        self.counts.iter().filter(|c| **c == 0).count()
    }

    pub fn duplicates(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| u64::from(c.saturating_sub(1)))
            .sum()
    }
}

/// Like `send_paced`, but survives the relay going away: a failed slice is abandoned (TCP gives
/// no receipts, so part of it may or may not have been taken) and sending resumes on a new
/// connection once the relay listens again. Returns how many slices failed.
pub fn send_paced_reconnecting(port: u16, range: std::ops::Range<u64>, rate: u64) -> u32 {
    let connect = || loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut s = connect();
    let start = Instant::now();
    let per_slice = (rate / 100).max(1);
    let mut n = range.start;
    let mut slice = 0u32;
    let mut failed = 0;
    while n < range.end {
        let end = (n + per_slice).min(range.end);
        if s.write_all(&frames(n..end)).is_err() {
            failed += 1;
            s = connect();
        }
        n = end;
        slice += 1;
        let due = start + Duration::from_millis(10) * slice;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    failed
}

/// 256 pseudo-random hex digits drawn from `n`: filler that the Raft log's and the store's
/// compression cannot shrink, for tests that fill a disk at their messages' own size.
pub fn noise(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..16)
        .map(|_| {
            // xorshift64: cheap, and as good as random to a compressor.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{x:016x}")
        })
        .collect()
}
