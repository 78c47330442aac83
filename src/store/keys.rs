//! Key layout of the audit store (DESIGN.md §5). Only the store encodes or decodes keys.
//!
//! Per UTC day, two column families:
//! - `day-YYYY-MM-DD`, records: `b'r' ‖ seq (u64 BE)` → the record's canonical JSON (without
//!   `seq`);
//! - `idx-YYYY-MM-DD`, index postings: `b'x' ‖ field tag ‖ hash(value) (u64 BE) ‖ received µs (u64 BE) ‖ seq`
//!   → the seqs of that batch's records with that value (delta varints). One posting per
//!   (batch, day, field, value) instead of one key per record: under load a batch of thousands
//!   of messages from one host costs a handful of index writes, not thousands. The key's time
//!   and seq are those of the posting's first record.
//!
//! Records and postings are apart because their keys grow differently: records only ever
//! append at the end of the key space, so RocksDB moves their flushed files down the levels
//! without rewriting them, while postings land all over theirs. In one column family every
//! flushed file overlapped everything below it and compaction rewrote the whole day again and
//! again (a fifth of the relay's CPU under load, profiled).
//!
//! Hashes are FNV-1a 64: stable across versions and machines, which a replicated store needs.
//! A query re-checks the record itself, so a collision costs a read, never a wrong answer.

use auditrelay_parsers::timestamp::civil_from_days;
use auditrelay_parsers::Record;

pub const RECORD_PREFIX: u8 = b'r';
pub const INDEX_PREFIX: u8 = b'x';
pub const META_CF: &str = "meta";
pub const NEXT_SEQ_KEY: &[u8] = b"next_seq";
const DAY_CF_PREFIX: &str = "day-";
const INDEX_CF_PREFIX: &str = "idx-";

/// The fields that have a secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum IndexField {
    Host = 1,
    App = 2,
    Severity = 3,
    Facility = 4,
    SourceIp = 5,
    MsgId = 6,
}

impl IndexField {
    pub const ALL: [IndexField; 6] = [
        IndexField::Host,
        IndexField::App,
        IndexField::Severity,
        IndexField::Facility,
        IndexField::SourceIp,
        IndexField::MsgId,
    ];
}

/// The hashed values of one record's indexed fields, computed before the record is proposed
/// (and carried in the Raft entry, hence serde).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexTerms(pub [Option<u64>; 6]);

impl IndexTerms {
    /// The index terms of a parsed record received from `source_ip`.
    pub fn of(record: &Record<'_>, source_ip: Option<&str>) -> IndexTerms {
        let mut terms = [None; 6];
        let mut set = |field: IndexField, value: Option<&str>| {
            terms[field as usize - 1] = value.map(|v| value_hash(v.as_bytes()));
        };
        set(IndexField::Host, record.hostname.as_deref());
        set(IndexField::App, record.app_name.as_deref());
        set(IndexField::MsgId, record.msg_id.as_deref());
        set(IndexField::SourceIp, source_ip);
        if let Some(pri) = record.pri {
            terms[IndexField::Severity as usize - 1] = Some(value_hash(&[b'0' + pri.severity()]));
            // The facility's number as text, without a String per record.
            let facility = pri.facility();
            let digits = [b'0' + facility / 10, b'0' + facility % 10];
            let text = if facility < 10 {
                &digits[1..]
            } else {
                &digits[..]
            };
            terms[IndexField::Facility as usize - 1] = Some(value_hash(text));
        }
        IndexTerms(terms)
    }

    /// The (field, hash) pairs that are present.
    pub fn present(&self) -> impl Iterator<Item = (IndexField, u64)> + '_ {
        IndexField::ALL
            .iter()
            .zip(self.0.iter())
            .filter_map(|(f, h)| h.map(|h| (*f, h)))
    }
}

/// FNV-1a, 64 bits.
pub fn value_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The UTC day (days since 1970-01-01) of a time in microseconds.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(86_400_000_000)
}

/// The records column family of a UTC day: `day-2026-11-26`.
pub fn day_cf_name(day: i64) -> String {
    dated_name(DAY_CF_PREFIX, day)
}

/// The index column family of a UTC day: `idx-2026-11-26`.
pub fn index_cf_name(day: i64) -> String {
    dated_name(INDEX_CF_PREFIX, day)
}

fn dated_name(prefix: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{prefix}{y:04}-{m:02}-{d:02}")
}

/// The day of a records column family's name.
pub fn day_of_cf_name(name: &str) -> Option<i64> {
    day_of_dated_name(DAY_CF_PREFIX, name)
}

/// The day of an index column family's name.
pub fn day_of_index_cf_name(name: &str) -> Option<i64> {
    day_of_dated_name(INDEX_CF_PREFIX, name)
}

fn day_of_dated_name(prefix: &str, name: &str) -> Option<i64> {
    let date = name.strip_prefix(prefix)?;
    let mut parts = date.splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    Some(auditrelay_parsers::timestamp::days_from_civil(y, m, d))
}

pub fn record_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = RECORD_PREFIX;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Times are stored offset so that negative times still sort correctly.
fn time_bits(micros: i64) -> u64 {
    (micros as u64) ^ (1 << 63)
}

pub fn index_key(field: IndexField, hash: u64, micros: i64, seq: u64) -> [u8; 26] {
    let mut k = [0u8; 26];
    k[0] = INDEX_PREFIX;
    k[1] = field as u8;
    k[2..10].copy_from_slice(&hash.to_be_bytes());
    k[10..18].copy_from_slice(&time_bits(micros).to_be_bytes());
    k[18..26].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The first key of one value's postings.
pub fn index_seek_key(field: IndexField, hash: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k.copy_from_slice(&index_key(field, hash, 0, 0)[..10]);
    k
}

/// Encodes a posting: the seqs after the first (which is in the key), as ascending deltas.
pub fn encode_posting(seqs: &[u64], out: &mut Vec<u8>) {
    for pair in seqs.windows(2) {
        let mut delta = pair[1] - pair[0];
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
}

/// Decodes a posting whose first seq is `first`; `None` if the bytes are malformed.
pub fn decode_posting(first: u64, bytes: &[u8]) -> Option<Vec<u64>> {
    let mut seqs = vec![first];
    let mut current = first;
    let (mut delta, mut shift) = (0u64, 0u32);
    for &b in bytes {
        if shift > 63 {
            return None;
        }
        delta |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            current = current.checked_add(delta)?;
            seqs.push(current);
            delta = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(seqs)
}

/// Splits an index key into (received µs, seq) when it belongs to `field`/`hash`.
pub fn parse_index_key(key: &[u8], field: IndexField, hash: u64) -> Option<(i64, u64)> {
    if key.len() != 26
        || key[0] != INDEX_PREFIX
        || key[1] != field as u8
        || key[2..10] != hash.to_be_bytes()
    {
        return None;
    }
    let time = u64::from_be_bytes(key[10..18].try_into().ok()?) ^ (1 << 63);
    let seq = u64::from_be_bytes(key[18..26].try_into().ok()?);
    Some((time as i64, seq))
}

/// The seq of a record key.
pub fn parse_record_key(key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != RECORD_PREFIX {
        return None;
    }
    Some(u64::from_be_bytes(key[1..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip() {
        let day = day_of(1_795_000_000_000_000);
        assert_eq!(day_of_cf_name(&day_cf_name(day)), Some(day));
        assert_eq!(day_cf_name(0), "day-1970-01-01");
        assert_eq!(day_of_index_cf_name(&index_cf_name(day)), Some(day));
        assert_eq!(day_of_cf_name(&index_cf_name(day)), None);
    }

    #[test]
    fn index_keys_sort_by_time_then_seq_and_parse_back() {
        let a = index_key(IndexField::Host, 7, -5, 9);
        let b = index_key(IndexField::Host, 7, 3, 1);
        assert!(a < b);
        assert_eq!(parse_index_key(&b, IndexField::Host, 7), Some((3, 1)));
        assert_eq!(parse_index_key(&b, IndexField::App, 7), None);
        assert_eq!(parse_record_key(&record_key(42)), Some(42));
    }

    #[test]
    fn postings_round_trip() {
        let seqs = [5u64, 6, 7, 300, 100_000];
        let mut bytes = Vec::new();
        encode_posting(&seqs, &mut bytes);
        assert_eq!(decode_posting(5, &bytes).unwrap(), seqs);
        assert_eq!(decode_posting(5, &[0x80]), None);
    }
}
