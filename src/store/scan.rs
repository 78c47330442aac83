//! Reading records by seq, for consumers that follow the store in order (forwarders).
//!
//! Records live in the column family of their receive day, and seq follows commit order, so a
//! range of seqs is in one day or, around midnight, in two or three: each is read and the
//! results merged.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::keys::{day_cf_name, day_of_cf_name, parse_record_key, record_key, RECORD_PREFIX};
use super::{Db, StoreError};

/// Records read in seq order, copied out (only where days must be merged).
#[derive(Debug, Default)]
struct Chunk {
    /// (seq, the record's stored JSON without `seq`).
    records: Vec<(u64, Vec<u8>)>,
    /// Every seq below this (and at or above the start) was looked at: the next read starts
    /// here. Seqs with no record (removed by retention) are simply passed.
    end: u64,
}

fn read_err(e: rocksdb::Error) -> StoreError {
    StoreError::Read(e.to_string())
}

/// The lowest and highest seq of every day column family.
pub(super) fn day_ranges(db: &Db) -> Result<BTreeMap<i64, (u64, u64)>, StoreError> {
    let mut ranges = BTreeMap::new();
    let names = Db::list_cf(&rocksdb::Options::default(), db.path()).unwrap_or_default();
    for name in names {
        let Some(day) = day_of_cf_name(&name) else {
            continue;
        };
        let Some(cf) = db.cf_handle(&name) else {
            continue;
        };
        let edge = |seq: u64, direction: Direction| -> Result<Option<u64>, StoreError> {
            let key = record_key(seq);
            Ok(db
                .iterator_cf(&cf, IteratorMode::From(&key, direction))
                .next()
                .transpose()
                .map_err(read_err)?
                .and_then(|(k, _)| parse_record_key(&k)))
        };
        let first = edge(0, Direction::Forward)?;
        let last = edge(u64::MAX, Direction::Reverse)?;
        if let (Some(first), Some(last)) = (first, last) {
            ranges.insert(day, (first, last));
        }
    }
    Ok(ranges)
}

/// The days that may hold seqs in `from..end`.
pub(super) fn days_covering(ranges: &BTreeMap<i64, (u64, u64)>, from: u64, end: u64) -> Vec<i64> {
    ranges
        .iter()
        .filter(|(_, (lo, hi))| *hi >= from && *lo < end)
        .map(|(day, _)| *day)
        .collect()
}

/// Reads `from..end` from `days`, bounded by count and bytes, merging days by seq.
fn read(
    db: &Db,
    days: &[i64],
    from: u64,
    end: u64,
    max_records: usize,
    max_bytes: usize,
) -> Result<Chunk, StoreError> {
    let stop = end.min(from.saturating_add(max_records as u64));
    if from >= stop {
        return Ok(Chunk {
            records: Vec::new(),
            end: from.max(stop),
        });
    }
    let mut records = Vec::new();
    let mut end = stop;
    for day in days {
        let Some(cf) = db.cf_handle(&day_cf_name(*day)) else {
            continue;
        };
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(record_key(stop).to_vec());
        let start = record_key(from);
        let mut bytes = 0usize;
        for item in db.iterator_cf_opt(&cf, options, IteratorMode::From(&start, Direction::Forward))
        {
            let (key, value) = item.map_err(read_err)?;
            if key.first() != Some(&RECORD_PREFIX) {
                break;
            }
            let Some(seq) = parse_record_key(&key) else {
                break;
            };
            bytes += value.len();
            records.push((seq, value.into_vec()));
            // One day alone cannot exceed the byte bound by more than a record.
            if bytes >= max_bytes && days.len() == 1 {
                end = seq + 1;
                break;
            }
        }
    }
    if days.len() > 1 {
        records.sort_unstable_by_key(|(seq, _)| *seq);
    }
    let mut kept = 0usize;
    let mut bytes = 0usize;
    for (_, json) in &records {
        if kept > 0 && bytes + json.len() > max_bytes {
            break;
        }
        bytes += json.len();
        kept += 1;
    }
    if kept < records.len() {
        end = records[kept].0;
    }
    records.truncate(kept);
    Ok(Chunk { records, end })
}

/// Like [`read`], calling `each(seq, json)` on the records in place instead of copying them
/// out, when they are all in one day (always, but around midnight). Returns the chunk's end.
pub(super) fn scan(
    db: &Db,
    days: &[i64],
    from: u64,
    end: u64,
    max_records: usize,
    max_bytes: usize,
    each: &mut dyn FnMut(u64, &[u8]),
) -> Result<u64, StoreError> {
    let stop = end.min(from.saturating_add(max_records as u64));
    let [day] = days else {
        let chunk = read(db, days, from, end, max_records, max_bytes)?;
        for (seq, json) in &chunk.records {
            each(*seq, json);
        }
        return Ok(chunk.end);
    };
    if from >= stop {
        return Ok(from.max(stop));
    }
    let Some(cf) = db.cf_handle(&day_cf_name(*day)) else {
        return Ok(stop);
    };
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(record_key(stop).to_vec());
    // A forwarder reads each record once, in order: keep its blocks out of the cache, which
    // queries need, and read ahead.
    options.fill_cache(false);
    options.set_readahead_size(1 << 20);
    let mut iter = db.raw_iterator_cf_opt(&cf, options);
    iter.seek(record_key(from));
    let mut bytes = 0usize;
    while iter.valid() {
        let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
            break;
        };
        let Some(seq) = parse_record_key(key) else {
            break;
        };
        if bytes > 0 && bytes + value.len() > max_bytes {
            return Ok(seq);
        }
        bytes += value.len();
        each(seq, value);
        iter.next();
    }
    iter.status().map_err(read_err)?;
    Ok(stop)
}

/// One record by seq from the first of `days` that has it.
pub(super) fn get(db: &Db, days: &[i64], seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
    for day in days {
        let Some(cf) = db.cf_handle(&day_cf_name(*day)) else {
            continue;
        };
        if let Some(v) = db.get_cf(&cf, record_key(seq)).map_err(read_err)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
