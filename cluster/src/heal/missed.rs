//! The durable missed-write queue: `(bucket, key)` pairs whose last write, delete or heal
//! left some drive of the set without the current state, recorded in a small redb file
//! (`.tessera.sys/heal.redb`) on up to [`COPIES`] of THIS node's drives, so a restart (or the
//! loss of one of those drives) still heals them. An entry is removed only once a heal of
//! the key reached every drive of its set. This module keeps the records; it must never
//! heal, and never write anywhere but this node's own drives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// `bucket \0 key` → when it was recorded (ns since the epoch, little endian).
const MISSED: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("missed");

/// The file, under a drive's `.tessera.sys/`.
pub const FILE: &str = "heal.redb";

/// How many of this node's drives carry each record.
pub const COPIES: usize = 2;

/// Why the durable queue could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MissedError {
    #[error("missed-write queue {path}: {message}")]
    Db { path: String, message: String },
    #[error("no drive of this node could record the missed writes")]
    NoDrive,
}

/// One `heal.redb` per local drive that could open it. See the module docs.
#[derive(Default)]
pub struct MissedWrites {
    dbs: Vec<(PathBuf, redb::Database)>,
}

impl std::fmt::Debug for MissedWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.dbs.iter().map(|(p, _)| p))
            .finish()
    }
}

fn db_err(path: &Path, e: impl std::fmt::Display) -> MissedError {
    MissedError::Db {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn encode(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn decode(k: &[u8]) -> Option<(String, String)> {
    let at = k.iter().position(|b| *b == 0)?;
    let bucket = std::str::from_utf8(&k[..at]).ok()?;
    let key = std::str::from_utf8(&k[at + 1..]).ok()?;
    Some((bucket.to_owned(), key.to_owned()))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl MissedWrites {
    /// Opens (creating) the queue file on each formatted drive directory in `roots`
    /// (drive roots of this node). A drive whose file cannot be opened is skipped with a
    /// warning; a file still held by a store being closed is retried for up to a second.
    /// Blocking.
    pub fn open(roots: &[PathBuf]) -> MissedWrites {
        let mut dbs = Vec::new();
        for root in roots {
            let sys = root.join(".tessera.sys");
            if !sys.join("format.json").exists() {
                continue;
            }
            let path = sys.join(FILE);
            let mut tries = 0;
            let opened = loop {
                match open_one(&path) {
                    Ok(db) => break Some(db),
                    Err(e) if tries < 20 => {
                        tracing::debug!(error = %e, "missed-write queue busy; retrying");
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "missed-write queue unusable on this drive");
                        break None;
                    }
                }
            };
            if let Some(db) = opened {
                dbs.push((path, db));
            }
        }
        MissedWrites { dbs }
    }

    /// Whether any drive carries the queue (a node without drives keeps it in memory only).
    pub fn is_durable(&self) -> bool {
        !self.dbs.is_empty()
    }

    /// Every recorded pair (the union over the drives). Blocking.
    pub fn load(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, db) in &self.dbs {
            let mut read = || -> Result<(), MissedError> {
                let tx = db.begin_read().map_err(|e| db_err(path, e))?;
                let t = tx.open_table(MISSED).map_err(|e| db_err(path, e))?;
                for item in t.iter().map_err(|e| db_err(path, e))? {
                    let (k, _) = item.map_err(|e| db_err(path, e))?;
                    if let Some(pair) = decode(k.value()) {
                        out.insert(pair);
                    }
                }
                Ok(())
            };
            if let Err(e) = read() {
                tracing::warn!(error = %e, "reading the missed-write queue");
            }
        }
        out
    }

    /// Records `items` durably on up to [`COPIES`] drives; `Ok` once at least one has them.
    /// Blocking.
    pub fn record(&self, items: &[(String, String)]) -> Result<(), MissedError> {
        if items.is_empty() {
            return Ok(());
        }
        let stamp = now_ns().to_le_bytes();
        let mut copies = 0;
        let mut last = None;
        for (path, db) in &self.dbs {
            let write = || -> Result<(), MissedError> {
                let tx = db.begin_write().map_err(|e| db_err(path, e))?;
                {
                    let mut t = tx.open_table(MISSED).map_err(|e| db_err(path, e))?;
                    for (b, k) in items {
                        t.insert(encode(b, k).as_slice(), stamp.as_slice())
                            .map_err(|e| db_err(path, e))?;
                    }
                }
                tx.commit().map_err(|e| db_err(path, e))
            };
            match write() {
                Ok(()) => copies += 1,
                Err(e) => last = Some(e),
            }
            if copies >= COPIES {
                break;
            }
        }
        match (copies, last) {
            (0, Some(e)) => Err(e),
            (0, None) => Err(MissedError::NoDrive),
            _ => Ok(()),
        }
    }

    /// Removes `(bucket, key)` from every drive (healed). Blocking.
    pub fn remove(&self, bucket: &str, key: &str) -> Result<(), MissedError> {
        let k = encode(bucket, key);
        for (path, db) in &self.dbs {
            let tx = db.begin_write().map_err(|e| db_err(path, e))?;
            let present = {
                let mut t = tx.open_table(MISSED).map_err(|e| db_err(path, e))?;
                let removed = t.remove(k.as_slice()).map_err(|e| db_err(path, e))?;
                removed.is_some()
            };
            if present {
                tx.commit().map_err(|e| db_err(path, e))?;
            } else {
                tx.abort().map_err(|e| db_err(path, e))?;
            }
        }
        Ok(())
    }
}

fn open_one(path: &Path) -> Result<redb::Database, MissedError> {
    let db = redb::Database::create(path).map_err(|e| db_err(path, e))?;
    let tx = db.begin_write().map_err(|e| db_err(path, e))?;
    tx.open_table(MISSED).map_err(|e| db_err(path, e))?;
    tx.commit().map_err(|e| db_err(path, e))?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_removal_is_everywhere() {
        let dir = tempfile::tempdir().expect("tmp");
        let roots: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("d{i}"))).collect();
        for r in &roots {
            std::fs::create_dir_all(r.join(".tessera.sys")).expect("mkdir");
            std::fs::write(r.join(".tessera.sys/format.json"), b"{}").expect("format");
        }
        let pairs = vec![
            ("b".to_owned(), "a/key".to_owned()),
            ("b".to_owned(), "x\u{1}y".to_owned()),
        ];
        {
            let q = MissedWrites::open(&roots);
            q.record(&pairs).expect("recorded");
        }
        // Only COPIES drives carry it; the union still has everything.
        let q = MissedWrites::open(&roots[1..]);
        assert_eq!(q.load().len(), 2, "second copy");
        drop(q);
        let q = MissedWrites::open(&roots);
        assert_eq!(q.load(), pairs.iter().cloned().collect());
        q.remove("b", "a/key").expect("removed");
        drop(q);
        let q = MissedWrites::open(&roots);
        assert_eq!(
            q.load().into_iter().collect::<Vec<_>>(),
            vec![("b".to_owned(), "x\u{1}y".to_owned())]
        );
    }
}
