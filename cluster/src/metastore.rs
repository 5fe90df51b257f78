//! The per-drive metadata store: an embedded, crash-safe, ordered key-value store holding
//! buckets, object version records, inline shard bytes, uploads and parts. Currently redb
//! (see docs/decisions/0002-metadata-store.md); the choice stays inside this file. Commits
//! are grouped: concurrent `apply` calls on one drive share one write (each call's ops stay
//! together, all or nothing), so a busy drive pays one fsync per batch, not per request.
//!
//! A batch is made durable by a write-ahead log beside the database (`meta.wal`, see
//! [`wal`]): one appended record and one `fdatasync` of a preallocated file, then the ops go
//! into redb in a non-durable transaction (visible to readers at once, durable only through
//! the log). When the log fills, a durable redb transaction (a checkpoint) persists
//! everything before it together with the last logged sequence number, and the log starts
//! over. Opening the store replays the records after the checkpoint, so an acknowledged
//! `apply` survives a crash or power loss exactly as a durable redb commit would; see
//! docs/decisions/0007-metadata-log.md. A batch the database refuses after it was logged is
//! taken back out of the log; a store whose log write failed (or could not take a record
//! back) refuses every later `apply` (its state is settled by the replay when it is opened
//! again). Blocking API: callers run it on a blocking thread. It must never interpret the
//! values it holds.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use redb::{ReadableDatabase, ReadableTable as _, TableDefinition};

use crate::DriveError;

mod wal;

/// The keyspaces of the metadata store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Table {
    /// bucket name → bucket record
    Buckets,
    /// `bucket/key` → version record
    Objects,
    /// data id → this drive's framed shard bytes of a small object
    Inline,
    /// `bucket/key\0upload-id` → upload record
    Uploads,
    /// `upload-id/NNNNN` → part record
    Parts,
}

impl Table {
    const ALL: [Table; 5] = [
        Table::Buckets,
        Table::Objects,
        Table::Inline,
        Table::Uploads,
        Table::Parts,
    ];

    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(match self {
            Table::Buckets => "buckets",
            Table::Objects => "objects",
            Table::Inline => "inline",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
        })
    }
}

/// A value and the value it links to, if any (see [`MetaStore::get_linked`]).
pub type Linked = (Vec<u8>, Option<Vec<u8>>);

/// Key-value pairs in key order, as a scan returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One change inside a metadata transaction.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MetaOp {
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: Vec<u8>,
    },
}

/// A key-ordered range of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
    pub limit: usize,
}

impl ScanRange {
    /// Every key starting with `prefix`, from `start` on (inclusive) if given.
    pub fn prefix(prefix: &[u8], limit: usize) -> Self {
        ScanRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_successor(prefix) {
                Some(s) => Bound::Excluded(s),
                None => Bound::Unbounded,
            },
            limit,
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`; `None` when
/// there is none (prefix empty or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

fn meta_err(e: impl std::fmt::Display) -> DriveError {
    DriveError::Meta(e.to_string())
}

/// Most requests folded into one group commit.
const MAX_BATCH: usize = 256;

/// The store's own bookkeeping (not a [`Table`]): the last log record a checkpoint covers.
const STATE: TableDefinition<'static, &'static str, u64> = TableDefinition::new("tessera_state");
const CHECKPOINT_KEY: &str = "wal_checkpoint";
/// The log's secret salt (see [`wal`]), made once with the store.
const SALT_KEY: &str = "wal_salt";

/// One drive's metadata database.
pub struct MetaStore {
    db: redb::Database,
    group: Mutex<GroupState>,
    log: Mutex<wal::Wal>,
    /// Set when a write failed after its batch was logged: later applies are refused.
    poisoned: std::sync::atomic::AtomicBool,
}

/// Requests waiting for the next group commit, and whether a caller is committing now.
#[derive(Default)]
struct GroupState {
    queue: Vec<Arc<Pending>>,
    leader_active: bool,
}

/// One caller's ops and, once committed, the outcome.
struct Pending {
    ops: Vec<MetaOp>,
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaStore")
    }
}

impl MetaStore {
    /// Opens or creates the store at `path` (a file), creating all tables, and replays the
    /// write-ahead log beside it (`path` with the extension `wal`) into a checkpoint.
    pub fn open(path: &Path) -> Result<Self, DriveError> {
        Self::open_with_log_size(path, wal::LOG_SIZE)
    }

    fn open_with_log_size(path: &Path, log_size: u64) -> Result<Self, DriveError> {
        let db = redb::Database::create(path).map_err(meta_err)?;
        let tx = db.begin_write().map_err(meta_err)?;
        for t in Table::ALL {
            tx.open_table(t.def()).map_err(meta_err)?;
        }
        let (checkpoint, salt) = {
            let mut state = tx.open_table(STATE).map_err(meta_err)?;
            let checkpoint = state.get(CHECKPOINT_KEY).map_err(meta_err)?;
            let checkpoint = checkpoint.map(|v| v.value()).unwrap_or(0);
            let salt = state.get(SALT_KEY).map_err(meta_err)?.map(|v| v.value());
            let salt = match salt {
                Some(s) => s,
                None => {
                    // Durable with this transaction, before the log holds anything.
                    let s = uuid::Uuid::new_v4().as_u64_pair().0;
                    state.insert(SALT_KEY, s).map_err(meta_err)?;
                    s
                }
            };
            (checkpoint, salt)
        };
        tx.commit().map_err(meta_err)?;
        let log_path = path.with_extension("wal");
        let (log, replay) = wal::Wal::open(&log_path, log_size, checkpoint, salt)?;
        let store = MetaStore {
            db,
            group: Mutex::new(GroupState::default()),
            log: Mutex::new(log),
            poisoned: std::sync::atomic::AtomicBool::new(false),
        };
        if !replay.is_empty() {
            tracing::info!(
                log = %log_path.display(),
                records = replay.len(),
                "metadata store: replaying logged commits"
            );
            let groups: Vec<&[MetaOp]> = replay.iter().map(|(_, ops)| ops.as_slice()).collect();
            let tx = store.db.begin_write().map_err(meta_err)?;
            Self::write_ops(&tx, &groups)?;
            tx.commit().map_err(meta_err)?;
        }
        // Everything logged so far is in the database now: make it durable and start the
        // log over (also when nothing was replayed: the log's next sequence number is set).
        let last = replay.last().map_or(checkpoint, |(seq, _)| *seq);
        store.checkpoint(last)?;
        store
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restart(last + 1);
        Ok(store)
    }

    /// A durable transaction that persists every commit before it and records that the log
    /// is covered up to `seq`.
    fn checkpoint(&self, seq: u64) -> Result<(), DriveError> {
        let tx = self.db.begin_write().map_err(meta_err)?;
        {
            let mut state = tx.open_table(STATE).map_err(meta_err)?;
            state.insert(CHECKPOINT_KEY, seq).map_err(meta_err)?;
        }
        tx.commit().map_err(meta_err)
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, DriveError> {
        let tx = self.db.begin_read().map_err(meta_err)?;
        let t = tx.open_table(table.def()).map_err(meta_err)?;
        Ok(t.get(key).map_err(meta_err)?.map(|v| v.value().to_vec()))
    }

    /// The value under `key` of `table` and, when `link` derives a second (table, key) from
    /// it, the value there too, both from one snapshot.
    pub fn get_linked(
        &self,
        table: Table,
        key: &[u8],
        link: impl FnOnce(&[u8]) -> Option<(Table, Vec<u8>)>,
    ) -> Result<Option<Linked>, DriveError> {
        let tx = self.db.begin_read().map_err(meta_err)?;
        let t = tx.open_table(table.def()).map_err(meta_err)?;
        let Some(first) = t.get(key).map_err(meta_err)?.map(|v| v.value().to_vec()) else {
            return Ok(None);
        };
        let second = match link(&first) {
            Some((t2, k2)) => {
                let t2 = tx.open_table(t2.def()).map_err(meta_err)?;
                let v = t2.get(k2.as_slice()).map_err(meta_err)?;
                v.map(|v| v.value().to_vec())
            }
            None => None,
        };
        Ok(Some((first, second)))
    }

    /// Up to `range.limit` entries in key order.
    pub fn scan(&self, table: Table, range: &ScanRange) -> Result<Entries, DriveError> {
        let tx = self.db.begin_read().map_err(meta_err)?;
        let t = tx.open_table(table.def()).map_err(meta_err)?;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (as_ref(&range.start), as_ref(&range.end));
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            bounds
        {
            if a > b {
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::new();
        for item in t.range::<&[u8]>(bounds).map_err(meta_err)? {
            if out.len() >= range.limit {
                break;
            }
            let (k, v) = item.map_err(meta_err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Applies every op in one durable transaction: all or nothing. Concurrent callers are
    /// grouped: the first becomes the leader and commits everything queued (its own ops and
    /// the others') in one transaction, then wakes the others; a failed batch is retried
    /// call by call so one caller's failure is never another's.
    pub fn apply(&self, ops: Vec<MetaOp>) -> Result<(), DriveError> {
        let me = Arc::new(Pending {
            ops,
            done: Mutex::new(None),
            cv: Condvar::new(),
        });
        let lead = {
            let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
            g.queue.push(me.clone());
            !std::mem::replace(&mut g.leader_active, true)
        };
        if lead {
            loop {
                let batch: Vec<Arc<Pending>> = {
                    let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
                    if g.queue.is_empty() {
                        g.leader_active = false;
                        break;
                    }
                    let n = g.queue.len().min(MAX_BATCH);
                    g.queue.drain(..n).collect()
                };
                let all: Vec<&[MetaOp]> = batch.iter().map(|p| p.ops.as_slice()).collect();
                let outcome = self.commit(&all);
                for p in &batch {
                    let r = match &outcome {
                        Ok(()) => Ok(()),
                        // Nothing of the batch was logged: each caller on its own.
                        Err(e) if !e.logged && batch.len() > 1 => self
                            .commit(&[p.ops.as_slice()])
                            .map_err(|e| e.error.to_string()),
                        Err(e) => Err(e.error.to_string()),
                    };
                    *p.done.lock().unwrap_or_else(|x| x.into_inner()) = Some(r);
                    p.cv.notify_all();
                }
            }
        }
        let mut done = me.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = done.take() {
                return r.map_err(DriveError::Meta);
            }
            done = me.cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Makes every op of every group durable (see the module docs): logged, then written
    /// to the database without a sync of its own; a batch too large for the log goes into a
    /// durable transaction directly. A failure after the batch's log record may have
    /// reached the disk poisons the store (see the module docs).
    fn commit(&self, groups: &[&[MetaOp]]) -> Result<(), CommitFailure> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.poisoned.load(SeqCst) {
            return Err(unlogged(DriveError::Meta(
                "metadata store refused: an earlier write failed after it was logged".into(),
            )));
        }
        let record = wal::encode(groups);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let poison = |e: DriveError| {
            self.poisoned.store(true, SeqCst);
            tracing::error!(error = %e, "metadata store: a logged write failed; refusing writes until reopened");
            CommitFailure {
                error: e,
                logged: true,
            }
        };
        if !log.fits_ever(record.len()) {
            // Too large for the log: one durable transaction, which also covers the log.
            let tx = self.db.begin_write().map_err(meta_err).map_err(unlogged)?;
            Self::write_ops(&tx, groups).map_err(unlogged)?;
            {
                let mut state = tx.open_table(STATE).map_err(meta_err).map_err(unlogged)?;
                state
                    .insert(CHECKPOINT_KEY, log.last_seq())
                    .map_err(meta_err)
                    .map_err(unlogged)?;
            }
            tx.commit().map_err(meta_err).map_err(unlogged)?;
            let next = log.last_seq() + 1;
            log.restart(next);
            return Ok(());
        }
        if !log.fits(record.len()) {
            // The log is full: persist what it covers, then start it over.
            self.checkpoint(log.last_seq()).map_err(unlogged)?;
            let next = log.last_seq() + 1;
            log.restart(next);
        }
        if let Err(e) = log.append(&record) {
            // The record may be partly on disk: a replay could still apply it.
            return Err(poison(e));
        }
        let written = self.db.begin_write().map_err(meta_err).and_then(|mut tx| {
            tx.set_durability(redb::Durability::None)
                .map_err(meta_err)?;
            Self::write_ops(&tx, groups)?;
            tx.commit().map_err(meta_err)
        });
        match written {
            Ok(()) => Ok(()),
            // The database took none of it: take the record back, and it never happened.
            Err(e) => match log.retract_last() {
                Ok(()) => Err(unlogged(e)),
                Err(_) => Err(poison(e)),
            },
        }
    }

    /// Every op of every group, in order, into `tx`.
    fn write_ops(tx: &redb::WriteTransaction, groups: &[&[MetaOp]]) -> Result<(), DriveError> {
        {
            let mut tables = Vec::new();
            for t in Table::ALL {
                tables.push((t, tx.open_table(t.def()).map_err(meta_err)?));
            }
            for op in groups.iter().flat_map(|g| g.iter()) {
                let (table, key) = match op {
                    MetaOp::Put { table, key, .. } | MetaOp::Delete { table, key } => (*table, key),
                };
                let (_, t) = tables
                    .iter_mut()
                    .find(|(x, _)| *x == table)
                    .expect("every table was opened above");
                match op {
                    MetaOp::Put { value, .. } => {
                        t.insert(key.as_slice(), value.as_slice())
                            .map_err(meta_err)?;
                    }
                    MetaOp::Delete { .. } => {
                        t.remove(key.as_slice()).map_err(meta_err)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A failed commit, and whether its batch may have reached the log (if not, each caller
/// may be retried on its own).
struct CommitFailure {
    error: DriveError,
    logged: bool,
}

/// A failure before anything of the batch was logged.
fn unlogged(error: DriveError) -> CommitFailure {
    CommitFailure {
        error,
        logged: false,
    }
}

impl Drop for MetaStore {
    /// A clean close leaves nothing to replay (best effort: the log covers a failure).
    fn drop(&mut self) {
        if self.poisoned.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let last = self
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq();
        if let Err(e) = self.checkpoint(last) {
            tracing::warn!(error = %e, "metadata store: checkpoint at close failed (the log will be replayed)");
        }
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_nest_coexist_and_scan_in_order() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let m = MetaStore::open(&dir.path().join("meta.redb"))?;
        let put = |k: &str| MetaOp::Put {
            table: Table::Objects,
            key: k.as_bytes().to_vec(),
            value: k.as_bytes().to_vec(),
        };
        m.apply(vec![put("b/a"), put("b/a/b"), put("b/c"), put("c/x")])?;
        let got = m.scan(Table::Objects, &ScanRange::prefix(b"b/", 10))?;
        let keys: Vec<_> = got
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).to_string())
            .collect();
        assert_eq!(keys, vec!["b/a", "b/a/b", "b/c"]);
        m.apply(vec![MetaOp::Delete {
            table: Table::Objects,
            key: b"b/a".to_vec(),
        }])?;
        assert_eq!(m.get(Table::Objects, b"b/a")?, None);
        assert_eq!(m.get(Table::Objects, b"b/a/b")?, Some(b"b/a/b".to_vec()));
        assert_eq!(
            m.scan(Table::Objects, &ScanRange::prefix(b"b/", 1))?.len(),
            1
        );
        Ok(())
    }

    #[test]
    fn concurrent_applies_are_grouped_and_all_land() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let m = Arc::new(MetaStore::open(&dir.path().join("meta.redb"))?);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let k = format!("k{t}-{i}").into_bytes();
                        m.apply(vec![
                            MetaOp::Put {
                                table: Table::Objects,
                                key: k.clone(),
                                value: k.clone(),
                            },
                            MetaOp::Put {
                                table: Table::Inline,
                                key: k.clone(),
                                value: k,
                            },
                        ])?;
                    }
                    Ok::<_, DriveError>(())
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| DriveError::Meta("thread panicked".into()))??;
        }
        let all = ScanRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: usize::MAX,
        };
        assert_eq!(m.scan(Table::Objects, &all)?.len(), 200);
        assert_eq!(m.scan(Table::Inline, &all)?.len(), 200);
        Ok(())
    }

    /// What a crash leaves: the files as they are while the store is open, with no close.
    fn crash_image(from: &Path, to: &Path) -> Result<(), DriveError> {
        for name in ["meta.redb", "meta.wal"] {
            std::fs::copy(from.join(name), to.join(name)).map_err(|e| DriveError::io(name, e))?;
        }
        Ok(())
    }

    #[test]
    fn acknowledged_applies_survive_a_crash_through_the_log() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let (live, image) = (dir.path().join("live"), dir.path().join("image"));
        for d in [&live, &image] {
            std::fs::create_dir(d).map_err(|e| DriveError::io("mkdir", e))?;
        }
        // A small log, so the run checkpoints and starts the log over several times.
        let m = MetaStore::open_with_log_size(&live.join("meta.redb"), 16 << 10)?;
        let put = |i: usize| MetaOp::Put {
            table: Table::Objects,
            key: format!("k{i:04}").into_bytes(),
            value: vec![i as u8; 300],
        };
        for i in 0..200 {
            m.apply(vec![put(i)])?;
        }
        m.apply(vec![MetaOp::Delete {
            table: Table::Objects,
            key: b"k0007".to_vec(),
        }])?;
        // A batch larger than the log goes into the database durably on its own.
        m.apply((200..300).map(put).collect())?;
        m.apply(vec![put(300)])?;
        crash_image(&live, &image)?;
        let all = ScanRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: usize::MAX,
        };
        let want = m.scan(Table::Objects, &all)?;
        assert_eq!(want.len(), 300);
        // Without its log the crash image misses the last writes: the log is what kept them.
        let nolog = dir.path().join("nolog");
        std::fs::create_dir(&nolog).map_err(|e| DriveError::io("mkdir", e))?;
        std::fs::copy(live.join("meta.redb"), nolog.join("meta.redb"))
            .map_err(|e| DriveError::io("copy", e))?;
        let bare = MetaStore::open(&nolog.join("meta.redb"))?;
        assert!(bare.get(Table::Objects, b"k0300")?.is_none());
        let back = MetaStore::open(&image.join("meta.redb"))?;
        assert_eq!(back.scan(Table::Objects, &all)?, want);
        // Writes after the replay are logged on top, and a second crash keeps both.
        back.apply(vec![put(7)])?;
        let again = dir.path().join("again");
        std::fs::create_dir(&again).map_err(|e| DriveError::io("mkdir", e))?;
        crash_image(&image, &again)?;
        let back2 = MetaStore::open(&again.join("meta.redb"))?;
        assert_eq!(back2.scan(Table::Objects, &all)?.len(), 301);
        assert_eq!(back2.get(Table::Objects, b"k0007")?, Some(vec![7u8; 300]));
        // A clean close leaves nothing to replay, and reopening keeps everything.
        drop(m);
        let reopened = MetaStore::open(&live.join("meta.redb"))?;
        assert_eq!(reopened.scan(Table::Objects, &all)?, want);
        Ok(())
    }

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
