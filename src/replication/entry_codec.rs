//! How a Raft entry is stored in the log: bincode, compressed with LZ4.
//!
//! Every accepted record passes through the log's WAL before anything else, and a record's
//! JSON carries its raw text twice (`raw` and `message`); writing it uncompressed made copying
//! bytes into the page cache the largest single cost of ingest (profiled: a fifth of the
//! relay's CPU). LZ4 makes the WAL, its memtable and the replicated copies several times
//! smaller for less than it saves.
//!
//! Entries written before compression are still read: they begin with their term as a
//! little-endian u64, which never reaches `u64::MAX` (that many elections cannot happen), so a
//! compressed entry starts with eight `0xff` bytes.

use super::types::{decode, encode, LogEntry};

/// Marks a compressed entry; an uncompressed one starts with its term instead.
const COMPRESSED: [u8; 8] = [0xff; 8];
/// The uncompressed length follows the mark, as a little-endian u32.
const HEADER: usize = COMPRESSED.len() + 4;
/// A length beyond this in a stored entry means the bytes are damaged, not that an entry is
/// that large (a batch is bounded far below it), so nothing that large is allocated.
const MAX_ENTRY: usize = 1 << 30;

/// An encoded entry and the size of its bincode form (what it takes in memory, decoded).
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub plain_len: usize,
}

/// Encodes `entry` for the log.
pub fn encode_entry(entry: &LogEntry) -> Result<Encoded, String> {
    let plain = encode(entry)?;
    let plain_len = plain.len();
    let len = u32::try_from(plain_len)
        .ok()
        .filter(|&n| n as usize <= MAX_ENTRY)
        .ok_or_else(|| format!("a Raft entry of {plain_len} bytes is too large"))?;
    // Compressed apart and then copied: the output is a fraction of the input, and a buffer
    // of the worst-case size would be zeroed (and faulted in) for every entry.
    let packed = lz4_flex::block::compress(&plain);
    let mut bytes = Vec::with_capacity(HEADER + packed.len());
    bytes.extend_from_slice(&COMPRESSED);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&packed);
    Ok(Encoded { bytes, plain_len })
}

/// Decodes what [`encode_entry`] wrote, or an entry written before compression.
pub fn decode_entry(bytes: &[u8]) -> Result<LogEntry, String> {
    let Some(rest) = bytes.strip_prefix(&COMPRESSED) else {
        return decode(bytes);
    };
    let (len, packed) = rest
        .split_first_chunk::<4>()
        .ok_or("a compressed Raft entry is cut short")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_ENTRY {
        return Err(format!("a compressed Raft entry claims {len} bytes"));
    }
    let plain = lz4_flex::block::decompress(packed, len)
        .map_err(|e| format!("a compressed Raft entry is damaged: {e}"))?;
    decode(&plain)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::replication::types::{LogId, Request};
    use crate::store::keys::IndexTerms;
    use crate::write_path::ProposedRecord;

    fn entry(term: u64, records: usize) -> LogEntry {
        let batch = (0..records)
            .map(|i| ProposedRecord {
                received_micros: i as i64,
                terms: IndexTerms::default(),
                json: format!(r#"{{"message":"record {i} of a batch","raw":"record {i}"}}"#)
                    .into_bytes(),
            })
            .collect();
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), 7),
            payload: EntryPayload::Normal(Request::Records(Arc::new(batch))),
        }
    }

    fn json_of(e: &LogEntry) -> Vec<Vec<u8>> {
        match &e.payload {
            EntryPayload::Normal(Request::Records(b)) => b.iter().map(|r| r.json.clone()).collect(),
            _ => panic!("not a record batch"),
        }
    }

    #[test]
    fn entries_round_trip_compressed_and_smaller() {
        let e = entry(3, 500);
        let encoded = encode_entry(&e).unwrap();
        assert_eq!(encoded.plain_len, encode(&e).unwrap().len());
        assert!(encoded.bytes.len() * 3 < encoded.plain_len);
        let back = decode_entry(&encoded.bytes).unwrap();
        assert_eq!(back.log_id, e.log_id);
        assert_eq!(json_of(&back), json_of(&e));
    }

    #[test]
    fn entries_written_before_compression_are_still_read() {
        // Any term a log can hold, including the largest a real cluster could reach.
        for term in [0, 1, u64::from(u32::MAX), u64::MAX - 1] {
            let e = entry(term, 3);
            let back = decode_entry(&encode(&e).unwrap()).unwrap();
            assert_eq!(back.log_id, e.log_id);
            assert_eq!(json_of(&back), json_of(&e));
        }
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let good = encode_entry(&entry(2, 50)).unwrap().bytes;
        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let cases = [
            good[..10].to_vec(),
            good[..good.len() / 2].to_vec(),
            huge,
            [&COMPRESSED[..], &[5, 0, 0, 0, 0xf0]].concat(),
        ];
        for bytes in cases {
            assert!(decode_entry(&bytes).is_err());
        }
    }
}
