//! Reading records back: by time range and fields, in `seq` order, through the indexes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use auditrelay_parsers::timestamp::parse_rfc3339_strict;
use rocksdb::{Direction, IteratorMode};
use serde_json::Value;

use super::keys::{
    day_cf_name, day_of, decode_posting, index_cf_name, index_seek_key, parse_index_key,
    parse_record_key, record_key, value_hash, IndexField, RECORD_PREFIX,
};
use super::{StoreError, StoreReader};

/// What to look for; every set condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Received at or after, µs since the epoch.
    pub since: Option<i64>,
    /// Received before, µs since the epoch.
    pub until: Option<i64>,
    pub host: Option<String>,
    pub app: Option<String>,
    /// Severity at most this (0 is emergency): "this bad or worse".
    pub severity_max: Option<u8>,
    pub source_ip: Option<String>,
    /// A substring of `message` (of `raw` for records without a message).
    pub text: Option<String>,
    pub limit: Option<usize>,
}

impl Query {
    /// The index that narrows the search most, with the hashes to look up.
    fn index(&self) -> Option<(IndexField, Vec<u64>)> {
        let one =
            |field, v: &Option<String>| v.as_ref().map(|v| (field, vec![value_hash(v.as_bytes())]));
        one(IndexField::SourceIp, &self.source_ip)
            .or_else(|| one(IndexField::Host, &self.host))
            .or_else(|| one(IndexField::App, &self.app))
            .or_else(|| {
                self.severity_max.map(|max| {
                    let hashes = (0..=max.min(7)).map(|s| value_hash(&[b'0' + s])).collect();
                    (IndexField::Severity, hashes)
                })
            })
    }

    /// Whether a stored record matches every condition (the index only narrowed the search).
    fn matches(&self, record: &Value) -> bool {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        if !eq(&self.host, text("hostname")) || !eq(&self.app, text("app_name")) {
            return false;
        }
        if !eq(
            &self.source_ip,
            record.pointer("/source/ip").and_then(Value::as_str),
        ) {
            return false;
        }
        if let Some(max) = self.severity_max {
            match record.get("severity").and_then(Value::as_u64) {
                Some(s) if s <= u64::from(max) => {}
                _ => return false,
            }
        }
        if let Some(needle) = &self.text {
            let hay = text("message").or_else(|| text("raw")).unwrap_or("");
            if !hay.contains(needle.as_str()) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(at) = text("received_at").and_then(rfc3339_micros) else {
                return false;
            };
            if self.since.is_some_and(|s| at < s) || self.until.is_some_and(|u| at >= u) {
                return false;
            }
        }
        true
    }
}

/// Microseconds since the epoch of an RFC 3339 time.
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    match parse_rfc3339_strict(text.as_bytes()) {
        Some((dt, [])) => Some(dt.unix_seconds() * 1_000_000 + i64::from(dt.nanos / 1000)),
        _ => None,
    }
}

/// The seqs of one day that may match, ascending.
fn day_candidates(reader: &StoreReader, day: i64, query: &Query) -> Result<Vec<u64>, StoreError> {
    let db = reader.db();
    let Some(cf) = db.cf_handle(&day_cf_name(day)) else {
        return Ok(Vec::new());
    };
    // Postings have their own column family; stores written before that kept them with the
    // records.
    let index_cf = db
        .cf_handle(&index_cf_name(day))
        .unwrap_or_else(|| cf.clone());
    let read_err = |e: rocksdb::Error| StoreError::Read(e.to_string());
    let mut seqs = Vec::new();
    match query.index() {
        Some((field, hashes)) => {
            let until = query.until.unwrap_or(i64::MAX);
            for hash in hashes {
                let seek = index_seek_key(field, hash);
                for item in db.iterator_cf(&index_cf, IteratorMode::From(&seek, Direction::Forward))
                {
                    let (key, value) = item.map_err(read_err)?;
                    match parse_index_key(&key, field, hash) {
                        // A posting's time is its earliest record: later postings start later.
                        Some((at, _)) if at >= until => break,
                        Some((_, first)) => {
                            seqs.extend(decode_posting(first, &value).ok_or_else(|| {
                                StoreError::Corrupt("malformed index posting".into())
                            })?)
                        }
                        None => break,
                    }
                }
            }
            seqs.sort_unstable();
            seqs.dedup();
        }
        None => {
            let start = record_key(0);
            for item in db.iterator_cf(&cf, IteratorMode::From(&start, Direction::Forward)) {
                let (key, _) = item.map_err(read_err)?;
                if key.first() != Some(&RECORD_PREFIX) {
                    break;
                }
                seqs.extend(parse_record_key(&key));
            }
        }
    }
    Ok(seqs)
}

/// Runs `query`, calling `emit(seq, record JSON without seq)` for each match in `seq` order.
/// Returns how many records matched.
pub fn run(
    reader: &StoreReader,
    query: &Query,
    mut emit: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
) -> Result<usize, StoreError> {
    let first_day = query.since.map(day_of);
    let last_day = query.until.map(|u| day_of(u - 1));
    let days: Vec<i64> = reader
        .days()
        .iter()
        .copied()
        .filter(|d| first_day.is_none_or(|f| *d >= f) && last_day.is_none_or(|l| *d <= l))
        .collect();
    // Records are partitioned by receive day, and seq follows commit order: the days' lists are
    // each sorted, and merging them gives seq order even across midnight.
    let mut lists = Vec::new();
    for day in &days {
        lists.push((*day, day_candidates(reader, *day, query)?));
    }
    let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = lists
        .iter()
        .enumerate()
        .filter(|(_, (_, seqs))| !seqs.is_empty())
        .map(|(i, (_, seqs))| Reverse((seqs[0], i, 0)))
        .collect();
    let mut matched = 0;
    while let Some(Reverse((seq, list, pos))) = heap.pop() {
        if query.limit.is_some_and(|l| matched >= l) {
            break;
        }
        let (day, seqs) = &lists[list];
        if let Some(&next) = seqs.get(pos + 1) {
            heap.push(Reverse((next, list, pos + 1)));
        }
        let cf = reader
            .db()
            .cf_handle(&day_cf_name(*day))
            .ok_or_else(|| StoreError::Read(format!("day {day} vanished")))?;
        let Some(json) = reader
            .db()
            .get_pinned_cf(&cf, record_key(seq))
            .map_err(|e| StoreError::Read(e.to_string()))?
        else {
            continue;
        };
        let value: Value = serde_json::from_slice(&json)
            .map_err(|e| StoreError::Corrupt(format!("record {seq} is not JSON: {e}")))?;
        if query.matches(&value) {
            matched += 1;
            emit(seq, &json).map_err(|e| StoreError::Read(format!("output: {e}")))?;
        }
    }
    Ok(matched)
}

/// The record as printed: `seq` first, then the stored fields.
pub fn with_seq(seq: u64, json: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{{\"seq\":{seq}").as_bytes());
    match json {
        [b'{', b'}'] | [] => out.push(b'}'),
        [b'{', rest @ ..] => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        other => {
            out.extend_from_slice(b",\"stored\":");
            out.extend_from_slice(other);
            out.push(b'}');
        }
    }
}
