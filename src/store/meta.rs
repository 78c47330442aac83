//! Store metadata beside the records: each destination's cursor, its dead letters, and the
//! cluster's identity. Cursors and dead letters change only through [`Control`] commands, which
//! carry everything they write (times included), so applying them is deterministic like
//! applying records.

use std::hash::{BuildHasher, Hasher};

use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use super::keys::META_CF;
use super::{Db, StoreError};

const CURSOR_PREFIX: &[u8] = b"cursor/";
const DLQ_PREFIX: &[u8] = b"dlq/";
const CLUSTER_ID_KEY: &[u8] = b"cluster_id";

/// A change to forwarding state, committed like records are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// `destination` has acknowledged every record up to `seq`.
    SetCursor { destination: String, seq: u64 },
    /// `destination` refused record `seq` for good; kept with the reason until replayed.
    DeadLetter {
        destination: String,
        seq: u64,
        at_micros: i64,
        error: String,
    },
    /// A replayed dead letter was delivered.
    Release { destination: String, seq: u64 },
    /// Names the cluster, unless it already has a name: the first one committed wins, so
    /// every replica ends up with the same id whoever proposed it.
    SetClusterId { id: String },
}

/// A record a destination refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub seq: u64,
    /// When it was refused, µs since the epoch.
    pub at_micros: i64,
    pub error: String,
}

#[derive(Serialize, Deserialize)]
struct DeadLetterValue {
    at_micros: i64,
    error: String,
}

fn cursor_key(destination: &str) -> Vec<u8> {
    [CURSOR_PREFIX, destination.as_bytes()].concat()
}

/// `dlq/NAME\0SEQ`: NUL cannot appear in a destination name, so one name's letters are
/// contiguous and sorted by seq.
fn dlq_prefix(destination: &str) -> Vec<u8> {
    [DLQ_PREFIX, destination.as_bytes(), b"\0"].concat()
}

fn dlq_key(destination: &str, seq: u64) -> Vec<u8> {
    [dlq_prefix(destination).as_slice(), &seq.to_be_bytes()].concat()
}

fn meta_cf(db: &Db) -> Result<std::sync::Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
    db.cf_handle(META_CF)
        .ok_or_else(|| StoreError::Corrupt("no meta column family".into()))
}

fn read_err(e: rocksdb::Error) -> StoreError {
    StoreError::Read(e.to_string())
}

/// Adds `ops` to `batch`.
pub(super) fn stage(db: &Db, batch: &mut WriteBatch, ops: &[Control]) -> Result<(), StoreError> {
    let meta = meta_cf(db)?;
    let mut named = cluster_id(db)?.is_some();
    for op in ops {
        match op {
            Control::SetCursor { destination, seq } => {
                batch.put_cf(&meta, cursor_key(destination), seq.to_be_bytes())
            }
            Control::DeadLetter {
                destination,
                seq,
                at_micros,
                error,
            } => {
                let value = serde_json::to_vec(&DeadLetterValue {
                    at_micros: *at_micros,
                    error: error.clone(),
                })
                .map_err(|e| StoreError::Write(e.to_string()))?;
                batch.put_cf(&meta, dlq_key(destination, *seq), value)
            }
            Control::Release { destination, seq } => {
                batch.delete_cf(&meta, dlq_key(destination, *seq))
            }
            Control::SetClusterId { id } => {
                if !named {
                    batch.put_cf(&meta, CLUSTER_ID_KEY, id.as_bytes());
                    named = true;
                }
            }
        }
    }
    Ok(())
}

fn be_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!("{what} is not 8 bytes"))
    })?))
}

/// `None` for a destination that has never saved a cursor.
pub(super) fn cursor(db: &Db, destination: &str) -> Result<Option<u64>, StoreError> {
    db.get_cf(&meta_cf(db)?, cursor_key(destination))
        .map_err(read_err)?
        .map(|v| be_u64(&v, "a cursor"))
        .transpose()
}

pub(super) fn cursors(db: &Db) -> Result<Vec<(String, u64)>, StoreError> {
    let meta = meta_cf(db)?;
    let mut out = Vec::new();
    for item in db.iterator_cf(&meta, IteratorMode::From(CURSOR_PREFIX, Direction::Forward)) {
        let (key, value) = item.map_err(read_err)?;
        let Some(name) = key.strip_prefix(CURSOR_PREFIX) else {
            break;
        };
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            be_u64(&value, "a cursor")?,
        ));
    }
    Ok(out)
}

pub(super) fn dead_letters(db: &Db, destination: &str) -> Result<Vec<DeadLetter>, StoreError> {
    let meta = meta_cf(db)?;
    let prefix = dlq_prefix(destination);
    let mut out = Vec::new();
    for item in db.iterator_cf(&meta, IteratorMode::From(&prefix, Direction::Forward)) {
        let (key, value) = item.map_err(read_err)?;
        let Some(seq) = key.strip_prefix(prefix.as_slice()) else {
            break;
        };
        let seq = be_u64(seq, "a dead letter's seq")?;
        let v: DeadLetterValue = serde_json::from_slice(&value)
            .map_err(|e| StoreError::Corrupt(format!("dead letter {seq}: {e}")))?;
        out.push(DeadLetter {
            seq,
            at_micros: v.at_micros,
            error: v.error,
        });
    }
    Ok(out)
}

/// The cluster id, once one was committed (see [`Control::SetClusterId`]).
pub(super) fn cluster_id(db: &Db) -> Result<Option<String>, StoreError> {
    db.get_cf(&meta_cf(db)?, CLUSTER_ID_KEY)
        .map_err(read_err)?
        .map(|v| String::from_utf8(v).map_err(|_| StoreError::Corrupt("cluster id".into())))
        .transpose()
}

/// A new cluster id: random, 16 hex digits.
pub fn new_cluster_id() -> String {
    format!("{:016x}", random_u64())
}

/// 64 random bits from the standard library's per-process randomly keyed hasher.
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    #[test]
    fn cursors_and_dead_letters_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = Store::open(dir.path()).unwrap();
            store
                .apply_control(&[
                    Control::SetCursor {
                        destination: "a".into(),
                        seq: 7,
                    },
                    Control::DeadLetter {
                        destination: "a".into(),
                        seq: 3,
                        at_micros: 1,
                        error: "bad".into(),
                    },
                    Control::DeadLetter {
                        destination: "ab".into(),
                        seq: 4,
                        at_micros: 2,
                        error: "worse".into(),
                    },
                ])
                .unwrap();
            store
                .apply_control(&[
                    Control::Release {
                        destination: "ab".into(),
                        seq: 4,
                    },
                    Control::SetClusterId { id: "first".into() },
                    Control::SetClusterId {
                        id: "second".into(),
                    },
                ])
                .unwrap();
            store
                .apply_control(&[Control::SetClusterId { id: "third".into() }])
                .unwrap();
            store.cluster_id().unwrap()
        };
        assert_eq!(id, "first", "the first id committed wins");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.cluster_id().as_deref(), Some("first"));
        assert_eq!(store.cursor("a").unwrap(), Some(7));
        assert_eq!(store.cursor("b").unwrap(), None);
        assert_eq!(
            store.dead_letters("a").unwrap(),
            vec![DeadLetter {
                seq: 3,
                at_micros: 1,
                error: "bad".into()
            }]
        );
        assert!(store.dead_letters("ab").unwrap().is_empty());
    }
}
