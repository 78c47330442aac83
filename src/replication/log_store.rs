//! The Raft log in its own RocksDB instance (`<data-dir>/raft`): entries by index in one column
//! family, the vote and the purge point in another. Every append, truncation and vote is one
//! write with the WAL fsync'd, and an append is reported flushed to Raft only after that fsync
//! returned: an entry counts towards a majority only once it is on this node's disk.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, StorageIOError, Vote};
use rocksdb::{
    ColumnFamilyDescriptor, DBWithThreadMode, Direction, IteratorMode, MultiThreaded, Options,
    WriteBatch, WriteOptions,
};

use super::entry_codec::{decode_entry, encode_entry};
use super::types::{decode, encode, LogEntry, LogId, NodeId, StorageError, TypeConfig};

type Db = DBWithThreadMode<MultiThreaded>;

const LOG_CF: &str = "log";
const STATE_CF: &str = "state";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";

/// The log of one node; clones share the database (the reader Raft's replication uses).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    /// Kept for the WAL sync counter (tests check that a flush report follows a sync).
    options: Arc<Options>,
    /// The commit index Raft last saved, for metrics (Raft's own metrics lack it).
    committed: Arc<AtomicU64>,
    recent: Arc<Mutex<Recent>>,
}

/// How much of the newest log [`Recent`] keeps, by decoded (bincode) size.
const RECENT_BYTES: usize = 64 << 20;

/// The newest entries, kept decoded beside the database. Raft reads every entry back right
/// after appending it (to apply it, and on a leader once more per follower to replicate it);
/// from RocksDB that copied and decoded every record again (profiled), from here it is a
/// reference count. Holds a contiguous run of indexes ending at the log's last entry.
#[derive(Default)]
struct Recent {
    entries: VecDeque<(LogEntry, usize)>,
    bytes: usize,
}

impl Recent {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    /// Adds entries just made durable (whose indexes follow on, or the run starts again).
    fn append(&mut self, appended: Vec<(LogEntry, usize)>) {
        for (entry, size) in appended {
            if self
                .last()
                .is_some_and(|last| last + 1 != entry.log_id.index)
            {
                self.entries.clear();
                self.bytes = 0;
            }
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        while self.bytes > RECENT_BYTES {
            match self.entries.pop_front() {
                Some((_, size)) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// Forgets entries from `index` on (a truncation).
    fn truncate(&mut self, index: u64) {
        while self.last().is_some_and(|last| last >= index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets entries up to and including `index` (a purge).
    fn purge(&mut self, index: u64) {
        while self.first().is_some_and(|first| first <= index) {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
    }

    /// The entries in `range` when all of them are here.
    fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<LogEntry>> {
        let first = self.first()?;
        let start = first_index(range);
        if start < first {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take_while(|(e, _)| range.contains(&e.log_id.index))
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

/// The first index `range` can hold.
fn first_index(range: &impl RangeBounds<u64>) -> u64 {
    match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens (or creates) the log under `dir/raft`.
    pub fn open(dir: &Path) -> Result<LogStore, String> {
        let path = dir.join("raft");
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        options.enable_statistics();
        // Entries stay until a snapshot covers them and `log_keep` more have come. They are
        // compressed as they are written (`entry_codec`), so tables do not compress again.
        options.set_compression_type(rocksdb::DBCompressionType::None);
        options.set_write_buffer_size(64 << 20);
        options.set_keep_log_file_num(4);
        // Bounded, so that the relay's descriptors fit its budget (see `descriptors`).
        options.set_max_open_files(crate::descriptors::ROCKSDB_MAX_OPEN_FILES);
        // A WAL file is deleted only once every family's data in it is flushed; the small
        // state family would otherwise hold about a gigabyte of WAL (RocksDB's default bound)
        // before anything forces it to flush.
        options.set_max_total_wal_size(64 << 20);
        let cfs = [LOG_CF, STATE_CF].map(|name| ColumnFamilyDescriptor::new(name, options.clone()));
        let db = Db::open_cf_descriptors(&options, &path, cfs)
            .map_err(|e| format!("cannot open the Raft log {}: {e}", path.display()))?;
        Ok(LogStore {
            db: Arc::new(db),
            options: Arc::new(options),
            committed: Arc::new(AtomicU64::new(0)),
            recent: Arc::default(),
        })
    }

    fn cf(&self, name: &str) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, io::Error> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| io_error(format!("the Raft log has no column family {name}")))
    }

    fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, io::Error> {
        match self.db.get_cf(&self.cf(STATE_CF)?, key).map_err(io_error)? {
            None => Ok(None),
            Some(v) => decode(&v).map(Some).map_err(io_error),
        }
    }

    /// Writes `batch` and fsyncs the WAL before returning, off the async threads.
    async fn write_synced(&self, batch: WriteBatch) -> Result<(), io::Error> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut write = WriteOptions::default();
            write.set_sync(true);
            db.write_opt(batch, &write).map_err(io_error)
        })
        .await
        .map_err(io_error)?
    }

    /// Appends `entries` durably, then tells `flushed` (after the fsync, never before).
    async fn append_then(
        &self,
        entries: impl IntoIterator<Item = LogEntry>,
        flushed: impl FnOnce(Result<(), io::Error>),
    ) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        let mut appended = Vec::new();
        {
            let log = self.cf(LOG_CF)?;
            for entry in entries {
                let encoded = encode_entry(&entry).map_err(io_error)?;
                batch.put_cf(&log, index_key(entry.log_id.index), &encoded.bytes);
                appended.push((entry, encoded.plain_len));
            }
        }
        let result = self.write_synced(batch).await;
        if result.is_ok() {
            self.recent().append(appended);
        }
        let reported = result.as_ref().map(|_| ()).map_err(io_error);
        flushed(result);
        reported
    }

    /// The same database without the recent copies (tests compare the two).
    #[cfg(test)]
    fn open_second(log: &LogStore) -> LogStore {
        LogStore {
            recent: Arc::default(),
            ..log.clone()
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of the last entry Raft said is committed (0 before any).
    pub fn commit_index(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// How many times RocksDB has synced this log's WAL.
    pub fn wal_syncs(&self) -> u64 {
        self.options
            .get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, io::Error> {
        let log = self.cf(LOG_CF)?;
        match self.db.iterator_cf(&log, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(io_error)?;
                let entry = decode_entry(&value).map_err(io_error)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

fn read_err(e: io::Error) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: io::Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        if let Some(entries) = self.recent().get(&range) {
            return Ok(entries);
        }
        let start = first_index(&range);
        let log = self.cf(LOG_CF).map_err(read_err)?;
        let mut out = Vec::new();
        let from = index_key(start);
        for item in self
            .db
            .iterator_cf(&log, IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| read_err(io_error(e)))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0xff; 8]));
            if !range.contains(&index) {
                break;
            }
            out.push(decode_entry(&value).map_err(|e| read_err(io_error(e)))?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged: Option<LogId> = self.get_state(PURGED_KEY).map_err(read_err)?;
        let last = self.last_entry_id().map_err(read_err)?.or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let state = self.cf(STATE_CF).map_err(write_err)?;
        batch.put_cf(
            &state,
            VOTE_KEY,
            encode(vote).map_err(|e| write_err(io_error(e)))?,
        );
        drop(state);
        self.write_synced(batch)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_state(VOTE_KEY)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: after a crash Raft learns the commit point again from the leader.
        if let Some(id) = committed {
            self.committed.store(id.index, Ordering::Relaxed);
        }
        let state = self.cf(STATE_CF).map_err(write_err)?;
        let value = encode(&committed).map_err(|e| write_err(io_error(e)))?;
        self.db
            .put_cf(&state, COMMITTED_KEY, value)
            .map_err(|e| write_err(io_error(e)))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .get_state::<Option<LogId>>(COMMITTED_KEY)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_then(entries, |r| callback.log_io_completed(r))
            .await
            .map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The copies go first: a reader must not find in them what the log no longer holds.
        self.recent().truncate(log_id.index);
        let mut batch = WriteBatch::default();
        let log = self.cf(LOG_CF).map_err(write_err)?;
        batch.delete_range_cf(&log, index_key(log_id.index), index_key(u64::MAX));
        // The range end is exclusive: remove the last possible index too.
        batch.delete_cf(&log, index_key(u64::MAX));
        drop(log);
        self.write_synced(batch).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent().purge(log_id.index);
        let mut batch = WriteBatch::default();
        let log = self.cf(LOG_CF).map_err(write_err)?;
        let state = self.cf(STATE_CF).map_err(write_err)?;
        batch.put_cf(
            &state,
            PURGED_KEY,
            encode(&log_id).map_err(|e| write_err(io_error(e)))?,
        );
        batch.delete_range_cf(&log, index_key(0), index_key(log_id.index + 1));
        drop((log, state));
        self.write_synced(batch).await.map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> LogEntry {
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    #[tokio::test]
    async fn an_append_is_reported_only_after_its_wal_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        for round in 0..3u64 {
            let before = log.wal_syncs();
            let probe = log.clone();
            let mut seen = None;
            log.append_then((round * 10..round * 10 + 10).map(entry), |r| {
                r.unwrap();
                seen = Some(probe.wal_syncs());
            })
            .await
            .unwrap();
            assert!(seen.unwrap() > before, "reported before the WAL was synced");
        }
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.unwrap().index, 29);
        let got = log.try_get_log_entries(5..8).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        log.truncate(entry(20).log_id).await.unwrap();
        log.purge(entry(4).log_id).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.unwrap().index, 19);
        assert_eq!(state.last_purged_log_id.unwrap().index, 4);
        assert_eq!(log.try_get_log_entries(0..).await.unwrap().len(), 15);
        drop(log);
        let mut log = LogStore::open(dir.path()).unwrap();
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(
            log.get_log_state()
                .await
                .unwrap()
                .last_log_id
                .unwrap()
                .index,
            19
        );
    }

    #[tokio::test]
    async fn recent_entries_answer_as_the_database_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        let ids = |entries: Vec<LogEntry>| entries.iter().map(|e| e.log_id).collect::<Vec<_>>();
        log.append_then((1..30).map(entry), |r| r.unwrap())
            .await
            .unwrap();
        log.truncate(entry(25).log_id).await.unwrap();
        let newer = |index| LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Blank,
        };
        log.append_then((25..28).map(newer), |r| r.unwrap())
            .await
            .unwrap();
        log.purge(entry(3).log_id).await.unwrap();
        let ranges: [(Bound<u64>, Bound<u64>); 6] = [
            (Bound::Included(4), Bound::Unbounded),
            (Bound::Included(10), Bound::Excluded(26)),
            (Bound::Excluded(24), Bound::Included(27)),
            (Bound::Included(27), Bound::Included(40)),
            (Bound::Included(30), Bound::Unbounded),
            (Bound::Included(0), Bound::Excluded(6)),
        ];
        let mut from_disk = LogStore::open_second(&log);
        for range in ranges {
            let cached = log.recent().get(&range).map(ids);
            let stored = ids(from_disk.try_get_log_entries(range).await.unwrap());
            assert_eq!(
                cached.clone().unwrap_or(stored.clone()),
                stored,
                "{range:?}"
            );
            // Ranges that start at or after the first kept entry come from the copies.
            if !matches!(range.0, Bound::Included(0)) {
                assert!(cached.is_some(), "{range:?}");
            }
        }
    }
}
