//! The audit store: records and their indexes in RocksDB, one column family per UTC day.
//! This module is the only code that touches RocksDB keys (see `keys`).
//!
//! The store is Raft's state machine: each apply is one atomic RocksDB write batch (records,
//! index postings, control commands and the applied index together). Applying is
//! deterministic (no clocks, no randomness): times, days and index terms arrive with the
//! entries, so every replica built from the same batches holds the same bytes.
//!
//! The store writes no WAL of its own: the Raft log is the write-ahead log. Writing every record
//! to a second log cost as much as the first (profiled). Instead the column families are
//! flushed together (RocksDB's atomic flush), so what is on disk is always the store as of one
//! applied index, which the store records beside the data; after a crash Raft applies the
//! entries after it again from its log, and the snapshots that let Raft drop log entries are
//! taken only after a flush. Readers in other processes see flushed data only: they ask the
//! running relay to flush first (see [`freshness`]).

pub mod digest;
pub mod freshness;
mod install_marker;
pub mod keys;
pub mod meta;
pub mod query;
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBWithThreadMode, MultiThreaded, Options,
    WriteBatch, WriteOptions,
};
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use keys::{
    day_cf_name, index_cf_name, index_key, record_key, IndexField, IndexTerms, META_CF,
    NEXT_SEQ_KEY,
};
pub use meta::{Control, DeadLetter};

type Db = DBWithThreadMode<MultiThreaded>;

/// A store failure; RocksDB's message is kept for the operator.
#[derive(Debug)]
pub enum StoreError {
    Open { path: PathBuf, message: String },
    Write(String),
    Read(String),
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Open { path, message } => {
                write!(f, "cannot open store {}: {message}", path.display())
            }
            StoreError::Write(m) => write!(f, "store write failed: {m}"),
            StoreError::Read(m) => write!(f, "store read failed: {m}"),
            StoreError::Corrupt(m) => write!(f, "store is corrupt: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// One part of an atomic write: a batch of records or control commands.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Records(&'a [Entry<'a>]),
    Control(&'a [Control]),
}

/// One record to commit: everything decided before proposing.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub received_micros: i64,
    pub json: &'a [u8],
    pub terms: &'a IndexTerms,
}

/// One value's posting in a batch being staged: where it goes and how many seqs it has.
struct Posting {
    day: i64,
    field: IndexField,
    hash: u64,
    /// The earliest receive time among its records (the index key's time).
    time: i64,
    count: usize,
}

/// The seqs a committed batch was given: `first..first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub first: u64,
    pub count: u64,
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_write_buffer_size(64 << 20);
    opts.set_keep_log_file_num(4);
    // Bounded, so that the relay's descriptors fit its budget (see `descriptors`).
    opts.set_max_open_files(crate::descriptors::ROCKSDB_MAX_OPEN_FILES);
    // 16 KiB blocks rather than 4: a block holds a dozen or more records instead of four, so
    // flushing builds a quarter of the blocks and index entries, and LZ4 finds the repeats
    // between neighbouring records (the same hosts, apps and keys).
    let mut table = BlockBasedOptions::default();
    table.set_block_size(16 << 10);
    opts.set_block_based_table_factory(&table);
    // Writes skip the WAL (see the module doc); all column families flush as one.
    opts.set_atomic_flush(true);
    opts
}

fn existing_cfs(path: &Path) -> Vec<String> {
    let mut cfs: BTreeSet<String> = Db::list_cf(&Options::default(), path)
        .unwrap_or_default()
        .into_iter()
        .collect();
    cfs.insert(META_CF.to_string());
    cfs.remove("default");
    cfs.into_iter().collect()
}

/// The writable store of a running relay.
pub struct Store {
    db: Db,
    path: PathBuf,
    /// The next seq to assign; only the single writer changes it.
    next_seq: Mutex<u64>,
    /// The lowest and highest seq stored in each day, so that readers by seq (forwarders)
    /// know which days to look in: near midnight one batch can span two days.
    day_ranges: Mutex<BTreeMap<i64, (u64, u64)>>,
    /// The next seq after the latest commit, for readers waiting for new records.
    committed: watch::Sender<u64>,
    /// Named by the first [`Control::SetClusterId`] committed.
    cluster_id: Mutex<Option<String>>,
    /// Every column family, for flushing them together.
    cf_names: Mutex<BTreeSet<String>>,
}

impl Store {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("store");
        std::fs::create_dir_all(&path).map_err(|e| open_error(&path, e))?;
        let cf_names: BTreeSet<String> = existing_cfs(&path).into_iter().collect();
        let cfs = cf_names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, db_options()));
        let db =
            Db::open_cf_descriptors(&db_options(), &path, cfs).map_err(|e| open_error(&path, e))?;
        let next_seq = read_next_seq(&db)?;
        let day_ranges = scan::day_ranges(&db)?;
        let cluster_id = meta::cluster_id(&db)?;
        let store = Store {
            db,
            path,
            next_seq: Mutex::new(next_seq),
            day_ranges: Mutex::new(day_ranges),
            committed: watch::channel(next_seq).0,
            cluster_id: Mutex::new(cluster_id),
            cf_names: Mutex::new(cf_names),
        };
        store.finish_interrupted_install()?;
        Ok(store)
    }

    /// Where [`install_marker`] lives: beside the store's directory.
    fn install_marker_path(&self) -> PathBuf {
        self.path.with_file_name(install_marker::MARKER)
    }

    /// Installs again the copy an interrupted install names, so that the store holds it
    /// whole; fails, naming the marker, if that copy is gone (the store may be half-installed
    /// and must not serve).
    fn finish_interrupted_install(&self) -> Result<(), StoreError> {
        let marker = self.install_marker_path();
        let Some(copy) = install_marker::read(&marker).map_err(|e| open_error(&marker, e))? else {
            return Ok(());
        };
        if !copy.is_dir() {
            return Err(open_error(
                &marker,
                format!(
                    "a snapshot install was interrupted and its copy {} is gone: the store may \
                     hold part of it; restore this node's data directory from a replica",
                    copy.display()
                ),
            ));
        }
        tracing::warn!(copy = %copy.display(), "a snapshot install was interrupted; installing it again");
        self.install(&copy)
    }

    /// The cluster's identity, carried downstream with each `seq`; `None` until the first
    /// leader names the cluster.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Follows the next seq after each commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The seq the next committed record will get.
    pub fn next_seq(&self) -> u64 {
        *self.next_seq.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a batch atomically, flushed to disk, and returns the seqs it was given.
    pub fn commit(&self, entries: &[Entry<'_>]) -> Result<SeqRange, StoreError> {
        let ranges = self.apply(&[Change::Records(entries)], &[], true)?;
        Ok(ranges[0].unwrap_or(SeqRange {
            first: self.next_seq(),
            count: 0,
        }))
    }

    /// Applies control commands (cursors, dead letters) in one write, flushed to disk.
    pub fn apply_control(&self, ops: &[Control]) -> Result<(), StoreError> {
        self.apply(&[Change::Control(ops)], &[], true).map(|_| ())
    }

    /// Applies `changes` in order as one atomic write, together with `meta` (opaque keys the
    /// caller keeps beside the records, such as how far a replicated log has been applied).
    /// Record batches get consecutive seqs; each change's range is returned (`None` for
    /// control commands). With `sync` they are flushed to disk before returning; without it
    /// they reach disk with the next flush, for callers whose own log is already durable (see
    /// the module doc).
    pub fn apply(
        &self,
        changes: &[Change<'_>],
        meta: &[(&[u8], &[u8])],
        sync: bool,
    ) -> Result<Vec<Option<SeqRange>>, StoreError> {
        let mut next = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
        // Sized up front: growing the batch by doubling copied every record again (profiled).
        let bytes: usize = changes
            .iter()
            .map(|c| match c {
                Change::Records(entries) => entries.iter().map(|e| e.json.len() + 96).sum(),
                Change::Control(_) => 256,
            })
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(bytes + 4096);
        let mut days: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut ranges = Vec::with_capacity(changes.len());
        let mut first = *next;
        let mut names_cluster = false;
        for change in changes {
            match change {
                Change::Records(entries) => {
                    self.stage_records(&mut batch, entries, first, &mut days)?;
                    ranges.push(Some(SeqRange {
                        first,
                        count: entries.len() as u64,
                    }));
                    first += entries.len() as u64;
                }
                Change::Control(ops) => {
                    names_cluster |= ops
                        .iter()
                        .any(|op| matches!(op, Control::SetClusterId { .. }));
                    meta::stage(&self.db, &mut batch, ops)?;
                    ranges.push(None);
                }
            }
        }
        let meta_cf = self
            .db
            .cf_handle(META_CF)
            .ok_or_else(|| StoreError::Corrupt("no meta column family".into()))?;
        if first != *next {
            batch.put_cf(&meta_cf, NEXT_SEQ_KEY, first.to_be_bytes());
        }
        for (key, value) in meta {
            batch.put_cf(&meta_cf, key, value);
        }
        self.write_unlogged(batch)?;
        if sync {
            self.flush()?;
        }
        *next = first;
        {
            let mut known = self.day_ranges.lock().unwrap_or_else(|p| p.into_inner());
            for (day, (lo, hi)) in days {
                let range = known.entry(day).or_insert((lo, hi));
                range.0 = range.0.min(lo);
                range.1 = range.1.max(hi);
            }
        }
        if names_cluster {
            *self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()) =
                meta::cluster_id(&self.db)?;
        }
        self.committed.send_replace(first);
        Ok(ranges)
    }

    /// Adds records `first..` and their index postings to `batch`.
    fn stage_records(
        &self,
        batch: &mut WriteBatch,
        entries: &[Entry<'_>],
        first: u64,
        days: &mut BTreeMap<i64, (u64, u64)>,
    ) -> Result<(), StoreError> {
        // One posting per (day, field, value hash) in the batch, numbered in the order each
        // first appears; `seqs` holds (posting, seq) in seq order. Grouped through a hash map
        // and a counting pass rather than by sorting every (posting, seq) pair, which was 3% of
        // ingest CPU.
        let mut numbers: FxHashMap<(i64, u8, u64), u32> = FxHashMap::default();
        let mut postings: Vec<Posting> = Vec::new();
        let mut seqs: Vec<(u32, u64)> = Vec::with_capacity(entries.len() * 4);
        // A batch almost always falls in one day: its column family is looked up once.
        let mut day_cf = None;
        for (i, entry) in entries.iter().enumerate() {
            let seq = first + i as u64;
            let day = keys::day_of(entry.received_micros);
            let range = days.entry(day).or_insert((seq, seq));
            range.0 = range.0.min(seq);
            range.1 = seq;
            let cf = match &day_cf {
                Some((d, cf)) if *d == day => cf,
                _ => &day_cf.insert((day, self.day_cf(day)?)).1,
            };
            batch.put_cf(cf, record_key(seq), entry.json);
            for (field, hash) in entry.terms.present() {
                let number = *numbers.entry((day, field as u8, hash)).or_insert_with(|| {
                    postings.push(Posting {
                        day,
                        field,
                        hash,
                        time: entry.received_micros,
                        count: 0,
                    });
                    (postings.len() - 1) as u32
                });
                let posting = &mut postings[number as usize];
                posting.time = posting.time.min(entry.received_micros);
                posting.count += 1;
                seqs.push((number, seq));
            }
        }
        // Each posting's seqs, contiguous and ascending (they were pushed in seq order).
        let mut starts = Vec::with_capacity(postings.len());
        let mut at = 0;
        for posting in &postings {
            starts.push(at);
            at += posting.count;
        }
        let mut grouped = vec![0u64; seqs.len()];
        let mut next = starts.clone();
        for (number, seq) in seqs {
            grouped[next[number as usize]] = seq;
            next[number as usize] += 1;
        }
        let mut value = Vec::new();
        let mut index_cf = None;
        for (posting, start) in postings.iter().zip(starts) {
            let seqs = &grouped[start..start + posting.count];
            value.clear();
            keys::encode_posting(seqs, &mut value);
            let cf = match &index_cf {
                Some((d, cf)) if *d == posting.day => cf,
                _ => {
                    &index_cf
                        .insert((posting.day, self.index_cf(posting.day)?))
                        .1
                }
            };
            batch.put_cf(
                cf,
                index_key(posting.field, posting.hash, posting.time, seqs[0]),
                &value,
            );
        }
        Ok(())
    }

    /// Writes a consistent copy of the store to `dir` (hard links where it can): the body of
    /// a snapshot. Everything applied so far is made durable first. Returns the values of
    /// `keys` (see [`Store::meta_value`]) as they are in the copy: no write happens between.
    pub fn checkpoint(
        &self,
        dir: &Path,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let write = |e: rocksdb::Error| StoreError::Write(e.to_string());
        // Writers hold this lock for the length of a write.
        let _writes = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
        self.flush()?;
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dir))
            .map_err(write)?;
        keys.iter().map(|k| self.meta_value(k)).collect()
    }

    /// Makes the store's content that of the copy at `dir` (a snapshot's body): each column
    /// family is emptied and filled from the copy, in bounded batches, and flushed at the end.
    /// Only a node that is behind installs a snapshot, so no reader is following this store.
    ///
    /// All or nothing across a crash: the copy must stay at `dir` until this returns, and a
    /// store opened after a crash in the middle installs it again (see [`install_marker`]).
    pub fn install(&self, dir: &Path) -> Result<(), StoreError> {
        let marker = self.install_marker_path();
        let marker_error =
            |e: std::io::Error| StoreError::Write(format!("{}: {e}", marker.display()));
        install_marker::write(&marker, dir).map_err(marker_error)?;
        self.replace_contents(dir)?;
        install_marker::remove(&marker).map_err(marker_error)
    }

    /// Deletes every key of every column family (not flushed).
    fn clear(&self) -> Result<(), StoreError> {
        // Keys are at most a few dozen bytes, so this bound is past every one of them.
        let end = [0xffu8; 64];
        let mut clear = WriteBatch::default();
        for name in existing_cfs(&self.path) {
            if let Some(cf) = self.db.cf_handle(&name) {
                clear.delete_range_cf(&cf, &[][..], &end[..]);
            }
        }
        self.write_unlogged(clear)
    }

    /// The body of [`Store::install`], between writing the marker and removing it.
    fn replace_contents(&self, dir: &Path) -> Result<(), StoreError> {
        let copy_cfs = existing_cfs(dir);
        let copy = Db::open_cf_for_read_only(&Options::default(), dir, &copy_cfs, false)
            .map_err(|e| open_error(dir, e))?;
        let mut next = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
        self.clear()?;
        for name in &copy_cfs {
            let Some(from) = copy.cf_handle(name) else {
                continue;
            };
            let to = if keys::day_of_cf_name(name).is_some()
                || keys::day_of_index_cf_name(name).is_some()
            {
                self.cf_created(name)?
            } else {
                self.db
                    .cf_handle(name)
                    .ok_or_else(|| StoreError::Corrupt(format!("no column family {name}")))?
            };
            let mut batch = WriteBatch::default();
            for item in copy.iterator_cf(&from, rocksdb::IteratorMode::Start) {
                let (key, value) = item.map_err(|e| StoreError::Read(e.to_string()))?;
                batch.put_cf(&to, key, value);
                if batch.size_in_bytes() > 8 << 20 {
                    self.write_unlogged(std::mem::take(&mut batch))?;
                }
            }
            self.write_unlogged(batch)?;
        }
        self.flush()?;
        *next = read_next_seq(&self.db)?;
        *self.day_ranges.lock().unwrap_or_else(|p| p.into_inner()) = scan::day_ranges(&self.db)?;
        *self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()) = meta::cluster_id(&self.db)?;
        self.committed.send_replace(*next);
        Ok(())
    }

    /// A value kept beside the records with [`Store::apply`]'s `meta`.
    pub fn meta_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let meta = self
            .db
            .cf_handle(META_CF)
            .ok_or_else(|| StoreError::Corrupt("no meta column family".into()))?;
        self.db
            .get_cf(&meta, key)
            .map_err(|e| StoreError::Read(e.to_string()))
    }

    /// The highest seq `destination` has acknowledged; `None` before its first cursor.
    pub fn cursor(&self, destination: &str) -> Result<Option<u64>, StoreError> {
        meta::cursor(&self.db, destination)
    }

    /// The dead letters of `destination`, by seq.
    pub fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, StoreError> {
        meta::dead_letters(&self.db, destination)
    }

    /// Committed records from `from` on, in seq order: at most `max_records`, and no more than
    /// `max_bytes` unless the first record alone is larger. Each is handed to `each` where it
    /// lies rather than copied out; returns where the next read starts.
    pub fn scan_from(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
        each: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<u64, StoreError> {
        // Not `next_seq`, whose lock is held for the length of a commit.
        let end = *self.committed.borrow();
        let days = self.days_covering(from, end);
        scan::scan(&self.db, &days, from, end, max_records, max_bytes, each)
    }

    /// One record by seq, if it is stored.
    pub fn get(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        scan::get(&self.db, &self.days_covering(seq, seq + 1), seq)
    }

    /// The days that may hold seqs in `from..end`.
    fn days_covering(&self, from: u64, end: u64) -> Vec<i64> {
        let ranges = self.day_ranges.lock().unwrap_or_else(|p| p.into_inner());
        scan::days_covering(&ranges, from, end)
    }

    /// Writes `batch` without a WAL (see the module doc).
    fn write_unlogged(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut write = WriteOptions::default();
        write.disable_wal(true);
        self.db
            .write_opt(batch, &write)
            .map_err(|e| StoreError::Write(e.to_string()))
    }

    /// Writes everything applied so far to disk, all column families as one, and waits for it.
    /// It takes no lock against writers: an atomic flush cuts all column families at one point
    /// of RocksDB's write sequence, between two write batches, so applies go on meanwhile.
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs: Vec<_> = self
            .cf_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|n| self.db.cf_handle(n))
            .collect();
        let mut options = rocksdb::FlushOptions::default();
        options.set_wait(true);
        self.db
            .flush_cfs_opt(&cfs.iter().collect::<Vec<_>>(), &options)
            .map_err(|e| StoreError::Write(format!("flush: {e}")))
    }

    /// The records column family of a day, created on first use.
    fn day_cf(&self, day: i64) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
        self.cf_created(&day_cf_name(day))
    }

    /// The index column family of a day, created on first use.
    fn index_cf(&self, day: i64) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
        self.cf_created(&index_cf_name(day))
    }

    fn cf_created(&self, name: &str) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
        if let Some(cf) = self.db.cf_handle(name) {
            return Ok(cf);
        }
        self.db
            .create_cf(name, &db_options())
            .map_err(|e| StoreError::Write(e.to_string()))?;
        self.cf_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Write(format!("column family {name} vanished")))
    }
}

fn read_next_seq(db: &Db) -> Result<u64, StoreError> {
    let meta = db
        .cf_handle(META_CF)
        .ok_or_else(|| StoreError::Corrupt("no meta column family".into()))?;
    match db
        .get_cf(&meta, NEXT_SEQ_KEY)
        .map_err(|e| StoreError::Read(e.to_string()))?
    {
        None => Ok(1),
        Some(v) => {
            Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| StoreError::Corrupt("next_seq is not 8 bytes".into()),
            )?))
        }
    }
}

/// A read-only view of a store that a running relay may be writing (a RocksDB secondary).
pub struct StoreReader {
    db: Db,
    days: Vec<i64>,
    // Kept so the secondary's own files live as long as the reader.
    _scratch: tempfile::TempDir,
}

impl StoreReader {
    /// Opens the store under `dir` for reading, caught up with the writer's latest commit
    /// (a running relay is asked to flush first).
    pub fn open(dir: &Path) -> Result<StoreReader, StoreError> {
        freshness::request(dir);
        let path = dir.join("store");
        if !path.join("CURRENT").exists() {
            return Err(open_error(&path, "no store here (no CURRENT file)"));
        }
        let scratch = tempfile::tempdir().map_err(|e| open_error(&path, e))?;
        let mut opts = Options::default();
        opts.set_max_open_files(-1);
        let cfs = existing_cfs(&path);
        let mut days: Vec<i64> = cfs.iter().filter_map(|n| keys::day_of_cf_name(n)).collect();
        days.sort_unstable();
        let db = Db::open_cf_as_secondary(&opts, &path, &scratch.path().to_path_buf(), cfs)
            .map_err(|e| open_error(&path, e))?;
        db.try_catch_up_with_primary()
            .map_err(|e| open_error(&path, e))?;
        Ok(StoreReader {
            db,
            days,
            _scratch: scratch,
        })
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The UTC days that have records, oldest first.
    pub fn days(&self) -> &[i64] {
        &self.days
    }

    /// The seq the writer will assign next.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        read_next_seq(&self.db)
    }

    /// The dead letters of `destination`, by seq.
    pub fn dead_letters(&self, destination: &str) -> Result<Vec<DeadLetter>, StoreError> {
        meta::dead_letters(&self.db, destination)
    }

    /// The destinations that have a cursor.
    pub fn destinations(&self) -> Result<Vec<(String, u64)>, StoreError> {
        meta::cursors(&self.db)
    }

    /// One record by seq, if it is stored.
    pub fn get(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        scan::get(&self.db, &self.days, seq)
    }

    /// Every record, in seq order, read in bounded chunks.
    pub fn scan_all(&self, each: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        let end = self.next_seq()?;
        let mut from = 1;
        while from < end {
            from = scan::scan(&self.db, &self.days, from, end, 10_000, 16 << 20, each)?;
        }
        Ok(())
    }
}

/// How a store that cannot be opened says so.
fn open_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_assign_consecutive_seqs_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let terms = IndexTerms::default();
        let e = Entry {
            received_micros: 1_795_000_000_000_000,
            json: b"{}",
            terms: &terms,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                store.commit(&[e, e]).unwrap(),
                SeqRange { first: 1, count: 2 }
            );
            assert_eq!(store.commit(&[e]).unwrap(), SeqRange { first: 3, count: 1 });
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_seq(), 4);
        let reader = StoreReader::open(dir.path()).unwrap();
        assert_eq!(reader.next_seq().unwrap(), 4);
    }

    /// Postings are grouped per value within a batch: values that alternate from record to
    /// record, and a batch that spans midnight, still index every record under its value.
    #[test]
    fn the_index_finds_interleaved_values_across_midnight() {
        use auditrelay_parsers::{parse, timestamp::DateTime, ParseOptions};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day = 86_400_000_000i64;
        let late = 1_795_000_000_000_000 / day * day + day - 3;
        let raws: Vec<String> = (0..12)
            .map(|i| format!("<14>1 2026-11-26T10:00:00Z host-{} app - - - n{i}", i % 3))
            .collect();
        let parsed: Vec<_> = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let at = late + i as i64;
                let record = parse(
                    raw.as_bytes(),
                    &DateTime::from_unix_micros(at),
                    &ParseOptions::default(),
                );
                (at, record.to_json(), IndexTerms::of(&record, None))
            })
            .collect();
        let entries: Vec<Entry<'_>> = parsed
            .iter()
            .map(|(at, json, terms)| Entry {
                received_micros: *at,
                json,
                terms,
            })
            .collect();
        store.commit(&entries).unwrap();
        store.flush().unwrap();
        let reader = StoreReader::open(dir.path()).unwrap();
        for host in 0..3u64 {
            let query = query::Query {
                host: Some(format!("host-{host}")),
                ..Default::default()
            };
            let mut seqs = Vec::new();
            query::run(&reader, &query, |seq, _| {
                seqs.push(seq);
                Ok(())
            })
            .unwrap();
            let expected: Vec<u64> = (1..=12).filter(|s| (s - 1) % 3 == host).collect();
            assert_eq!(seqs, expected, "host-{host}");
        }
    }

    /// The seqs `scan_from` hands out, and where the next read starts.
    fn read(store: &Store, from: u64, max_records: usize, max_bytes: usize) -> (Vec<u64>, u64) {
        let mut seqs = Vec::new();
        let end = store
            .scan_from(from, max_records, max_bytes, &mut |seq, _| seqs.push(seq))
            .unwrap();
        (seqs, end)
    }

    #[test]
    fn reading_by_seq_merges_days_and_honours_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let terms = IndexTerms::default();
        let day = 86_400_000_000i64;
        let late = 1_795_000_000_000_000 / day * day + day - 1;
        // Around midnight, receive order and commit order can differ by a little.
        let times = [late, late + 2, late, late + 5, late + 9];
        let jsons: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        let entries: Vec<Entry<'_>> = times
            .iter()
            .zip(&jsons)
            .map(|(t, j)| Entry {
                received_micros: *t,
                json: j,
                terms: &terms,
            })
            .collect();
        store.commit(&entries).unwrap();
        let (seqs, end) = read(&store, 1, 100, 1 << 20);
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(end, 6);
        let (two, end) = read(&store, 2, 2, 1 << 20);
        assert_eq!(two, vec![2, 3]);
        assert_eq!(end, 4);
        let mut seen = Vec::new();
        let end = store
            .scan_from(2, 3, 1 << 20, &mut |seq, json| {
                seen.push((seq, json.to_vec()))
            })
            .unwrap();
        assert_eq!(end, 5);
        assert_eq!(seen.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3, 4]);
        let (small, end) = read(&store, 1, 100, 10);
        assert_eq!(small.len(), 1);
        assert_eq!(end, 2);
        assert_eq!(store.get(4).unwrap().unwrap(), b"{\"n\":3}");
        assert!(read(&store, 6, 10, 100).0.is_empty());
        let later: Vec<Entry<'_>> = (0..3)
            .map(|_| Entry {
                received_micros: late + 3 * day,
                json: b"{}",
                terms: &terms,
            })
            .collect();
        store.commit(&later).unwrap();
        let mut seen = Vec::new();
        let end = store
            .scan_from(6, 10, 5, &mut |seq, _| seen.push(seq))
            .unwrap();
        assert_eq!(
            (seen, end),
            (vec![6, 7], 8),
            "one day, in place, bounded by bytes"
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(read(&store, 1, 100, 1 << 20).0.len(), 8);
    }

    /// A store holding `jsons` as records 1.., flushed.
    fn store_of(dir: &Path, jsons: &[&[u8]]) -> Store {
        let store = Store::open(dir).unwrap();
        let terms = IndexTerms::default();
        let entries: Vec<Entry<'_>> = jsons
            .iter()
            .map(|json| Entry {
                received_micros: 1_795_000_000_000_000,
                json,
                terms: &terms,
            })
            .collect();
        store.commit(&entries).unwrap();
        store
    }

    fn contents(store: &Store) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        store
            .scan_from(1, 100, 1 << 20, &mut |_, json| out.push(json.to_vec()))
            .unwrap();
        out
    }

    #[test]
    fn an_install_interrupted_half_way_is_finished_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let old: [&[u8]; 3] = [b"{\"old\":1}", b"{\"old\":2}", b"{\"old\":3}"];
        let new: [&[u8]; 5] = [
            b"{\"new\":1}",
            b"{\"new\":2}",
            b"{\"new\":3}",
            b"{\"new\":4}",
            b"{\"new\":5}",
        ];
        let copy = dir.path().join("copy");
        store_of(&dir.path().join("leader"), &new)
            .checkpoint(&copy, &[])
            .unwrap();
        let node = dir.path().join("node");
        let store = store_of(&node, &old);
        // An install that got as far as emptying the store, and reached the disk so, when
        // the process died.
        install_marker::write(&store.install_marker_path(), &copy).unwrap();
        store.clear().unwrap();
        store.flush().unwrap();
        drop(store);

        let store = Store::open(&node).unwrap();
        assert_eq!(contents(&store), new.map(<[u8]>::to_vec).to_vec());
        assert_eq!(store.next_seq(), 6);
        assert_eq!(
            install_marker::read(&store.install_marker_path()).unwrap(),
            None
        );
        drop(store);
        let store = Store::open(&node).unwrap();
        assert_eq!(contents(&store).len(), 5, "and it stays installed");
    }

    #[test]
    fn a_store_without_the_marker_keeps_its_contents_and_one_whose_copy_is_gone_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        let store = store_of(&node, &[b"{\"old\":1}"]);
        store.flush().unwrap();
        let marker = store.install_marker_path();
        drop(store);
        assert_eq!(contents(&Store::open(&node).unwrap()).len(), 1);

        install_marker::write(&marker, &dir.path().join("gone")).unwrap();
        let Err(e) = Store::open(&node) else {
            panic!("a half-installed store opened")
        };
        assert!(e.to_string().contains("store.installing"), "{e}");
    }
}
