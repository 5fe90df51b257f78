//! The background scanner: every cycle it walks every object of the sets this node is
//! responsible for, at a bounded rate, healing each one deeply (every shard block of every
//! drive hashed: bitrot, missing shards, stale or missing records), then removes orphaned
//! data directories (left by writes that died before their record was committed) on this
//! node's drives of those sets. One node scans a set: the node serving the set's first
//! online drive. Also the object walk the bulk heal shares ([`walk_set`]). It must never
//! delete a data directory that a record or an upload references, nor one younger than
//! [`ScannerConfig::orphan_age`].

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;

use crate::drive::Drive;
use crate::heal::status::{bump, WalkCounters};
use crate::heal::{heal_complete, heal_object_mode, HealMode};
use crate::metastore::{ScanRange, Table};
use crate::names::{BucketName, DataId, ObjectKey};
use crate::record::{decode, DataLocation, UploadRecord, VersionRecord};
use crate::store::Inner;
use crate::{Store, StoreError};

/// Object keys fetched per listing page of a set.
const PAGE: usize = 500;

/// Scanner tunables (see [`ScannerConfig::from_env`]).
#[derive(Clone, Debug)]
pub struct ScannerConfig {
    /// Objects per second at most; 0 = unlimited.
    pub rate: u64,
    /// Pause between the end of one cycle and the start of the next.
    pub interval: Duration,
    /// A data directory no record references is removed once older than this.
    pub orphan_age: Duration,
    /// Objects healed at once.
    pub concurrency: usize,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            rate: 100,
            interval: Duration::from_secs(3600),
            orphan_age: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

impl ScannerConfig {
    /// `TESSERA_SCANNER_RATE` (objects/s, default 100, 0 = unlimited),
    /// `TESSERA_SCANNER_INTERVAL` (seconds, default 3600) and
    /// `TESSERA_SCANNER_ORPHAN_AGE` (seconds, default 3600); unparsable values are ignored
    /// with a warning.
    pub fn from_env() -> ScannerConfig {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ScannerConfig {
        let mut c = ScannerConfig::default();
        let num = |name: &str| -> Option<u64> {
            let v = get(name)?;
            match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(%name, value = %v, "ignoring an unparsable scanner setting");
                    None
                }
            }
        };
        if let Some(r) = num("TESSERA_SCANNER_RATE") {
            c.rate = r;
        }
        if let Some(s) = num("TESSERA_SCANNER_INTERVAL") {
            c.interval = Duration::from_secs(s);
        }
        if let Some(s) = num("TESSERA_SCANNER_ORPHAN_AGE") {
            c.orphan_age = Duration::from_secs(s);
        }
        c
    }
}

/// How [`walk_set`] heals.
#[derive(Clone, Debug)]
pub(crate) struct WalkOptions {
    pub mode: HealMode,
    /// Objects per second at most; 0 = unlimited.
    pub rate: u64,
    pub concurrency: usize,
}

/// One page of a set's object keys: `(bucket, key, size)` in key order, and whether the
/// listing is exhausted. The page is the union of what the drives hold, cut where the
/// first drive's page ends so no key is skipped.
async fn keys_page(
    store: &Store,
    set: usize,
    after: Option<Vec<u8>>,
) -> Result<(Vec<(Vec<u8>, u64)>, bool), StoreError> {
    let range = ScanRange {
        start: after.map_or(Bound::Unbounded, Bound::Excluded),
        end: Bound::Unbounded,
        limit: PAGE,
    };
    let answers = store.inner.sets[set]
        .scan_quorum(Table::Objects, range)
        .await?;
    let cut: Option<Vec<u8>> = answers
        .iter()
        .flatten()
        .filter(|e| e.len() >= PAGE)
        .filter_map(|e| e.last().map(|(k, _)| k.clone()))
        .min();
    let mut keys: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (k, v) in answers.into_iter().flatten().flatten() {
        if cut.as_ref().is_some_and(|c| &k > c) {
            continue;
        }
        let size = VersionRecord::decode(&v).map(|r| r.size).unwrap_or(0);
        let e = keys.entry(k).or_insert(0);
        *e = (*e).max(size);
    }
    Ok((keys.into_iter().collect(), cut.is_none()))
}

/// How many objects the set holds (a metadata-only walk).
pub(crate) async fn count_objects(store: &Store, set: usize) -> Result<u64, StoreError> {
    let (mut n, mut after) = (0u64, None);
    loop {
        let (page, done) = keys_page(store, set, after).await?;
        n += page.len() as u64;
        after = page.last().map(|(k, _)| k.clone());
        if done || after.is_none() {
            return Ok(n);
        }
    }
}

/// Heals every object of set `set`, counting into `counters`. Holds the store only while
/// it works on a page; ends early (`Ok`) once the store is dropped.
pub(crate) async fn walk_set(
    weak: &Weak<Inner>,
    set: usize,
    opts: &WalkOptions,
    counters: &WalkCounters,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut dispatched: u64 = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        let store = Store { inner };
        let (page, done) = keys_page(&store, set, after.take()).await?;
        after = page.last().map(|(k, _)| k.clone());
        let rate = opts.rate;
        let first = dispatched;
        dispatched += page.len() as u64;
        futures::stream::iter(page.into_iter().enumerate())
            .then(|(i, item)| async move {
                if rate > 0 {
                    let due =
                        started + Duration::from_secs_f64((first + i as u64) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                item
            })
            .map(|(k, size)| heal_one(&store, k, size, opts.mode, counters))
            .buffer_unordered(opts.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
        if done || after.is_none() {
            return Ok(());
        }
    }
}

/// Heals one object of a walk and counts the outcome.
async fn heal_one(store: &Store, k: Vec<u8>, size: u64, mode: HealMode, c: &WalkCounters) {
    let Some(at) = k.iter().position(|b| *b == b'/') else {
        return;
    };
    let (Ok(b), Ok(key)) = (
        std::str::from_utf8(&k[..at]).map(BucketName::new),
        std::str::from_utf8(&k[at + 1..]).map(ObjectKey::new),
    ) else {
        return;
    };
    let (Ok(b), Ok(key)) = (b, key) else {
        return;
    };
    bump(&c.objects_scanned, 1);
    bump(&c.bytes_scanned, size);
    let this = store.clone();
    let (b2, k2) = (b.clone(), key.clone());
    // In its own task: a heal that started runs to its end even if the walk is dropped.
    let r = tokio::spawn(async move { heal_object_mode(&this, &b2, &k2, mode).await })
        .await
        .map_err(StoreError::internal)
        .and_then(|r| r);
    match r {
        Ok(report) => {
            if !report.healed_drives.is_empty() {
                bump(&c.objects_healed, 1);
                bump(&c.bytes_healed, size);
            }
            if heal_complete(&report) {
                if !report.healed_drives.is_empty() {
                    store
                        .inner
                        .heal_queue
                        .forget(b.as_str(), key.as_str())
                        .await;
                }
            } else {
                bump(&c.objects_failed, 1);
            }
        }
        Err(e) => {
            tracing::debug!(bucket = %b, key = %key, error = %e, "heal failed");
            bump(&c.objects_failed, 1);
        }
    }
}

/// Starts the scanner task (see the module docs).
pub(crate) fn spawn(store: &Store, cfg: ScannerConfig) {
    let weak = Arc::downgrade(&store.inner);
    {
        let mut t = store
            .inner
            .heal
            .scanner
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.rate = cfg.rate;
        t.interval_seconds = cfg.interval.as_secs();
    }
    tokio::spawn(async move {
        loop {
            let notified = match weak.upgrade() {
                Some(inner) => {
                    let wait = cfg.interval;
                    let inner2 = inner.clone();
                    drop(inner);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = inner2.heal.scan_now.notified() => {}
                    }
                    true
                }
                None => false,
            };
            if !notified {
                return;
            }
            if !run_cycle(&weak, &cfg).await {
                return;
            }
        }
    });
}

/// The sets whose first online drive this node serves.
async fn sets_here(store: &Store) -> Vec<usize> {
    let per_set = store.inner.layout.drives_per_set;
    let mut out = Vec::new();
    for set in &store.inner.sets {
        for (slot, d) in set.drives.iter().enumerate() {
            if matches!(d.info().await, Ok(i) if i.online) {
                if store.inner.node.served[set.index * per_set + slot].is_some() {
                    out.push(set.index);
                }
                break;
            }
        }
    }
    out
}

/// One scanner cycle; `false` once the store is gone.
async fn run_cycle(weak: &Weak<Inner>, cfg: &ScannerConfig) -> bool {
    let Some(inner) = weak.upgrade() else {
        return false;
    };
    let store = Store { inner };
    let sets = sets_here(&store).await;
    let state = &store.inner.heal.scanner;
    state.counters.reset();
    let began = Instant::now();
    {
        let mut t = state.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.running = true;
        t.cycle_started = Some(SystemTime::now());
        t.sets_scanned_here = sets.clone();
    }
    tracing::info!(sets = ?sets, "scanner: cycle starts");
    let opts = WalkOptions {
        mode: HealMode::Deep,
        rate: cfg.rate,
        concurrency: cfg.concurrency,
    };
    let store_weak = Arc::downgrade(&store.inner);
    let mut orphans = 0;
    for &set in &sets {
        if let Err(e) = walk_set(&store_weak, set, &opts, &state.counters).await {
            tracing::warn!(set, error = %e, "scanner: set walk stopped");
            continue;
        }
        orphans += remove_orphans(&store, set, cfg.orphan_age).await;
    }
    let secs = began.elapsed().as_secs_f64();
    let p = crate::heal::status::WalkProgress::from(&state.counters);
    {
        let mut t = state.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.running = false;
        t.cycles += 1;
        t.last_cycle_seconds = Some(secs);
        t.last_cycle_ended = Some(SystemTime::now());
        t.orphans_removed += orphans;
    }
    tracing::info!(
        objects_scanned = p.objects_scanned,
        objects_healed = p.objects_healed,
        objects_failed = p.objects_failed,
        bytes_scanned = p.bytes_scanned,
        orphans_removed = orphans,
        seconds = secs,
        "scanner: cycle done"
    );
    true
}

/// Every key of `table` on one drive, in pages.
async fn scan_all(
    d: &dyn Drive,
    table: Table,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, crate::DriveError> {
    let mut out = Vec::new();
    let mut start = Bound::Unbounded;
    loop {
        let page = d
            .meta_scan(
                table,
                ScanRange {
                    start,
                    end: Bound::Unbounded,
                    limit: 1000,
                },
            )
            .await?;
        let full = page.len() >= 1000;
        let Some(last) = page.last().map(|(k, _)| k.clone()) else {
            return Ok(out);
        };
        out.extend(page);
        if !full {
            return Ok(out);
        }
        start = Bound::Excluded(last);
    }
}

/// Data directories on this node's drives of `set` older than `age` that no object record
/// and no upload of that drive references: removed. Returns how many.
async fn remove_orphans(store: &Store, set: usize, age: Duration) -> u64 {
    let per_set = store.inner.layout.drives_per_set;
    let mut removed = 0;
    for (slot, d) in store.inner.sets[set].drives.iter().enumerate() {
        let Some(served) = store.inner.node.served[set * per_set + slot].clone() else {
            continue;
        };
        // List candidates first, then read the references: a directory committed in
        // between is referenced by the time its references are read.
        let root = served.root().to_path_buf();
        let candidates =
            tokio::task::spawn_blocking(move || old_data_dirs(&root.join("data"), age))
                .await
                .unwrap_or_default();
        if candidates.is_empty() {
            continue;
        }
        let (Ok(objects), Ok(uploads)) = (
            scan_all(d.as_ref(), Table::Objects).await,
            scan_all(d.as_ref(), Table::Uploads).await,
        ) else {
            continue;
        };
        let mut referenced: HashSet<String> = HashSet::new();
        for (_, v) in &objects {
            match VersionRecord::decode(v) {
                Ok(r) => {
                    if let DataLocation::Files(id) = &r.location {
                        referenced.insert(id.as_str().to_owned());
                    }
                }
                // A record this code cannot read: keep everything on this drive.
                Err(_) => return removed,
            }
        }
        for (_, v) in &uploads {
            match decode::<UploadRecord>(v) {
                Ok(u) => {
                    referenced.insert(u.data_id.as_str().to_owned());
                }
                Err(_) => return removed,
            }
        }
        for (bucket, id) in candidates {
            if referenced.contains(id.as_str()) {
                continue;
            }
            match d.delete_data(&bucket, &id).await {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(drive = %d.endpoint(), %bucket, data_id = %id.as_str(), "scanner: removed an orphaned data directory");
                }
                Err(e) => {
                    tracing::warn!(drive = %d.endpoint(), error = %e, "scanner: could not remove an orphaned data directory")
                }
            }
        }
    }
    removed
}

/// `(bucket, data id)` of every `data/<bucket>/<prefix>/<data-id>` directory last changed
/// more than `age` ago. Blocking.
fn old_data_dirs(data: &std::path::Path, age: Duration) -> Vec<(String, DataId)> {
    let mut out = Vec::new();
    let now = SystemTime::now();
    let dirs = |p: &std::path::Path| -> Vec<(String, std::path::PathBuf)> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (bucket, bdir) in dirs(data) {
        if BucketName::new(&bucket).is_err() {
            continue;
        }
        for (_, pdir) in dirs(&bdir) {
            for (name, ddir) in dirs(&pdir) {
                let Some(id) = DataId::parse(&name) else {
                    continue;
                };
                let old = std::fs::metadata(&ddir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|a| a >= age);
                if old {
                    out.push((bucket.clone(), id));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_settings_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let d = ScannerConfig::from_lookup(env(&[]));
        assert_eq!((d.rate, d.interval.as_secs()), (100, 3600));
        let c = ScannerConfig::from_lookup(env(&[
            ("TESSERA_SCANNER_RATE", "0"),
            ("TESSERA_SCANNER_INTERVAL", " 2 "),
            ("TESSERA_SCANNER_ORPHAN_AGE", "soon"),
        ]));
        assert_eq!(c.rate, 0);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(
            c.orphan_age,
            Duration::from_secs(3600),
            "unparsable: default kept"
        );
    }
}
