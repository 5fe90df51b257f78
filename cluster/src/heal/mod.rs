//! Healing: the `HealQueue` of objects found damaged (on read) or written on fewer than all
//! drives — in memory, and durably through [`missed::MissedWrites`] on this node's drives —
//! and `heal_object`, which settles the current version, rebuilds every missing or rotten
//! shard block from the others, and writes shards and records back to the drives that lack
//! them. `worker` runs the queue, the drive watcher (re-formats a blank drive into its slot)
//! and bulk heals ([`bulk`]); the background scanner is `crate::scanner`. Healing never
//! changes what a quorum settled on, and never writes on a drive holding a foreign format.

pub mod bulk;
pub mod missed;
pub mod status;
pub(crate) mod worker;

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::future::join_all;

use crate::drive::{DataMove, Drive, ShardReader, ShardWriter};
use crate::metastore::{MetaOp, Table};
use crate::names::{BucketName, DataId, ObjectKey};
use crate::object::{read_records, settle};
use crate::record::{object_key, DataLocation, PartRef, VersionRecord};
use crate::set::ErasureSet;
use crate::types::HealReport;
use crate::{Store, StoreError};

pub use missed::MissedWrites;

/// Data blocks verified or rebuilt per read during healing.
const HEAL_BATCH_BLOCKS: u64 = 8;

/// Objects waiting to be healed, each at most once. With a durable backing
/// ([`HealQueue::attach_durable`]) every pushed pair is also recorded on this node's drives
/// by [`HealQueue::persist`], and forgotten there only once a heal reached every drive.
#[derive(Debug, Default)]
pub struct HealQueue {
    inner: Mutex<QueueState>,
    durable: OnceLock<Arc<MissedWrites>>,
    /// Serialises [`HealQueue::persist`] calls so concurrent writers share one transaction.
    flush: tokio::sync::Mutex<()>,
}

/// Queue order plus membership (for de-duplication), and pairs not yet recorded durably.
#[derive(Debug, Default)]
struct QueueState {
    order: VecDeque<(String, String)>,
    members: BTreeSet<(String, String)>,
    unrecorded: BTreeSet<(String, String)>,
}

impl HealQueue {
    pub(crate) fn push(&self, bucket: &str, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let item = (bucket.to_owned(), key.to_owned());
        if self.durable.get().is_some() {
            g.unrecorded.insert(item.clone());
        }
        if g.members.insert(item.clone()) {
            g.order.push_back(item);
        }
    }

    /// Queues a pair already recorded durably (no new record).
    fn push_recorded(&self, item: (String, String)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.members.insert(item.clone()) {
            g.order.push_back(item);
        }
    }

    /// Takes the next queued (bucket, key).
    pub fn pop(&self) -> Option<(String, String)> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let item = g.order.pop_front()?;
        g.members.remove(&item);
        Some(item)
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .members
            .contains(&(bucket.to_owned(), key.to_owned()))
    }

    /// Backs the queue with `missed` and queues every pair it holds (at open).
    pub(crate) fn attach_durable(&self, missed: MissedWrites) {
        let pending = missed.load();
        if self.durable.set(Arc::new(missed)).is_ok() {
            for item in pending {
                self.push_recorded(item);
            }
        }
    }

    /// The durable backing, when this node has drives to keep it on.
    pub(crate) fn durable(&self) -> Option<Arc<MissedWrites>> {
        self.durable.get().cloned()
    }

    /// Records every pushed pair not yet recorded, durably, before returning (writers call
    /// it before acknowledging). Concurrent calls share the work; a failure is logged and
    /// the pairs stay queued in memory.
    pub(crate) async fn persist(&self) {
        let Some(durable) = self.durable() else {
            return;
        };
        if self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unrecorded
            .is_empty()
        {
            return;
        }
        let _one = self.flush.lock().await;
        let items: Vec<(String, String)> = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut g.unrecorded).into_iter().collect()
        };
        if items.is_empty() {
            return;
        }
        let (d, list) = (durable.clone(), items.clone());
        let res = tokio::task::spawn_blocking(move || d.record(&list)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, pending = items.len(), "could not record missed writes durably")
            }
            Err(e) => tracing::warn!(error = %e, "could not record missed writes durably"),
        }
    }

    /// Forgets `(bucket, key)` durably (its heal reached every drive).
    pub(crate) async fn forget(&self, bucket: &str, key: &str) {
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.unrecorded.remove(&(bucket.to_owned(), key.to_owned()));
        }
        let Some(durable) = self.durable() else {
            return;
        };
        let (b, k) = (bucket.to_owned(), key.to_owned());
        match tokio::task::spawn_blocking(move || durable.remove(&b, &k)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not forget a healed missed write"),
            Err(e) => tracing::warn!(error = %e, "could not forget a healed missed write"),
        }
    }

    /// Queues again every durably recorded pair (after a drive or node came back).
    /// Returns how many are recorded.
    pub(crate) async fn requeue_recorded(&self) -> usize {
        let Some(durable) = self.durable() else {
            return 0;
        };
        let all = tokio::task::spawn_blocking(move || durable.load())
            .await
            .unwrap_or_default();
        let n = all.len();
        for item in all {
            self.push_recorded(item);
        }
        n
    }

    /// Pairs waiting: queued in memory or recorded durably.
    pub async fn pending(&self) -> usize {
        let mut all: BTreeSet<(String, String)> = {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.members.union(&g.unrecorded).cloned().collect()
        };
        if let Some(durable) = self.durable() {
            if let Ok(recorded) = tokio::task::spawn_blocking(move || durable.load()).await {
                all.extend(recorded);
            }
        }
        all.len()
    }
}

/// Whether a heal reached every drive it found lacking (nothing left to retry).
pub fn heal_complete(r: &HealReport) -> bool {
    r.damaged_drives.iter().all(|d| r.healed_drives.contains(d))
}

/// How hard a heal looks at the drives that already hold the current version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealMode {
    /// Reads and hashes every shard block of every holder (bitrot check).
    Deep,
    /// Trusts holders (their blocks are still hash-checked when used as rebuild sources);
    /// rebuilds only on drives lacking the version. For bulk heals onto a blank drive.
    Quick,
}

/// Heals one object: see the module docs. Holds the key's lock while it works.
pub(crate) async fn heal_object(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
) -> Result<HealReport, StoreError> {
    heal_object_mode(store, b, k, HealMode::Deep).await
}

/// [`heal_object`] with a [`HealMode`].
pub(crate) async fn heal_object_mode(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    mode: HealMode,
) -> Result<HealReport, StoreError> {
    let set = store.set_for(b, k).clone();
    let (bucket, key) = (b.as_str(), k.as_str());
    let _guard = store.inner.locks.lock(format!("{bucket}/{key}")).await?;
    let records = read_records(&set, bucket, key).await;
    let mut report = HealReport::default();
    let settled = settle(&records, set.read_quorum())?;
    let Some(settled) = settled else {
        // The key is gone: remove stale versions a drive kept from a missed delete.
        for (slot, r) in records.iter().enumerate() {
            if r.is_err() {
                // Unreachable: it may still hold a stale version; not healed yet.
                report
                    .damaged_drives
                    .push(set.drives[slot].endpoint().to_owned());
            }
            if let Ok(Some(stale)) = r {
                let d = &set.drives[slot];
                report.damaged_drives.push(d.endpoint().to_owned());
                if remove_version(d.as_ref(), bucket, key, stale).await.is_ok() {
                    report.healed_drives.push(d.endpoint().to_owned());
                }
            }
        }
        return Ok(report);
    };
    let record = settled.record.clone();
    let geometry = record.erasure.geometry().map_err(StoreError::internal)?;

    // Pass 1: which online drives lack the version or hold damaged shards.
    let mut targets: Vec<usize> = Vec::new();
    for (slot, r) in records.iter().enumerate() {
        let d = &set.drives[slot];
        if r.is_err() {
            report.damaged_drives.push(d.endpoint().to_owned());
            continue;
        }
        if !settled.holders[slot] {
            targets.push(slot);
            continue;
        }
        if mode == HealMode::Quick {
            continue;
        }
        let bad = verify_slot(d.as_ref(), bucket, &record, &geometry).await;
        if bad > 0 {
            report.damaged_blocks += bad;
            targets.push(slot);
        }
    }
    for &slot in &targets {
        report
            .damaged_drives
            .push(set.drives[slot].endpoint().to_owned());
    }
    if targets.is_empty() {
        return Ok(report);
    }
    let sources: Vec<usize> = (0..set.total())
        .filter(|s| settled.holders[*s] && !targets.contains(s))
        .collect();
    if sources.len() < geometry.data() {
        return Err(StoreError::ReadQuorum {
            ok: sources.len(),
            need: geometry.data(),
        });
    }

    // Pass 2: rebuild the targets' shards from the good sources and commit them.
    let healed = rebuild(
        &set, bucket, key, &record, &geometry, &sources, &targets, &records,
    )
    .await?;
    for slot in healed {
        report
            .healed_drives
            .push(set.drives[slot].endpoint().to_owned());
    }
    Ok(report)
}

/// Removes a stale version's record and data from one drive.
async fn remove_version(
    d: &dyn Drive,
    bucket: &str,
    key: &str,
    v: &VersionRecord,
) -> Result<(), StoreError> {
    let mut ops = vec![MetaOp::Delete {
        table: Table::Objects,
        key: object_key(bucket, key),
    }];
    if let DataLocation::Inline(id) = &v.location {
        ops.push(MetaOp::Delete {
            table: Table::Inline,
            key: id.as_str().as_bytes().to_vec(),
        });
    }
    d.meta_apply(ops).await.map_err(StoreError::internal)?;
    if let DataLocation::Files(id) = &v.location {
        d.delete_data(bucket, id)
            .await
            .map_err(StoreError::internal)?;
    }
    Ok(())
}

/// Counts the shard blocks of `slot` that are missing or fail their hash (every block of
/// every part is read).
async fn verify_slot(
    d: &dyn Drive,
    bucket: &str,
    record: &VersionRecord,
    g: &erasure::Geometry,
) -> u64 {
    let mut bad = 0u64;
    match &record.location {
        DataLocation::Inline(id) => {
            let part = &record.parts[0];
            let bytes = d
                .meta_get(Table::Inline, id.as_str().as_bytes().to_vec())
                .await;
            let bytes = match bytes {
                Ok(Some(b)) => b,
                _ => return g.block_count(part.size).max(1),
            };
            if bytes.len() as u64 != g.shard_file_len(part.size) {
                return g.block_count(part.size).max(1);
            }
            for blk in 0..g.block_count(part.size) {
                let r = g.framed_block_range(part.size, blk);
                if !erasure::verify_framed(
                    &bytes[r.start as usize..r.end as usize],
                    g.shard_len(g.block_len(part.size, blk)),
                ) {
                    bad += 1;
                }
            }
        }
        DataLocation::Files(id) => {
            for part in &record.parts {
                let blocks = g.block_count(part.size);
                let reader = match d.open_shard(bucket, id, &part.file).await {
                    Ok(r) => r,
                    Err(_) => {
                        bad += blocks.max(1);
                        continue;
                    }
                };
                // A file longer than it should be is damaged too.
                let len = g.shard_file_len(part.size);
                if reader.read_at(len, 1).await.is_ok() {
                    bad += 1;
                    continue;
                }
                let mut blk = 0;
                while blk < blocks {
                    let end = (blk + HEAL_BATCH_BLOCKS).min(blocks);
                    let base = g.framed_block_range(part.size, blk).start;
                    let stop = g.framed_block_range(part.size, end - 1).end;
                    match reader.read_at(base, (stop - base) as usize).await {
                        Ok(buf) => {
                            for b in blk..end {
                                let r = g.framed_block_range(part.size, b);
                                let framed =
                                    &buf[(r.start - base) as usize..(r.end - base) as usize];
                                if !erasure::verify_framed(
                                    framed,
                                    g.shard_len(g.block_len(part.size, b)),
                                ) {
                                    bad += 1;
                                }
                            }
                        }
                        Err(_) => bad += end - blk,
                    }
                    blk = end;
                }
            }
        }
    }
    bad
}

/// Where a target's rebuilt shards go while they are produced.
enum Sink {
    File(Box<dyn ShardWriter>),
    Memory(Vec<u8>),
    Failed,
}

/// Rebuilds every shard of the targets from the sources and commits each target drive
/// (shards into place, then its record in one transaction). Returns the healed slots.
#[allow(clippy::too_many_arguments)]
async fn rebuild(
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    record: &VersionRecord,
    g: &erasure::Geometry,
    sources: &[usize],
    targets: &[usize],
    previous: &crate::object::SlotRecords,
) -> Result<Vec<usize>, StoreError> {
    let decoder = Arc::new(erasure::Decoder::new(*g));
    let tmp = DataId::generate();
    let inline = matches!(record.location, DataLocation::Inline(_));
    let data_id = record.location.data_id().clone();
    let mut alive: Vec<bool> = vec![true; set.total()];
    let mut inline_bytes: Vec<Vec<u8>> = vec![Vec::new(); set.total()];

    for part in &record.parts {
        // Open the sources and the sinks of this part.
        let mut readers: Vec<Option<Source>> = (0..set.total()).map(|_| None).collect();
        for &s in sources {
            readers[s] = open_source(set.drives[s].as_ref(), bucket, &record.location, part).await;
        }
        let mut sinks: Vec<Sink> = Vec::new();
        for (slot, up) in alive.iter().enumerate() {
            sinks.push(if !targets.contains(&slot) || !up {
                Sink::Failed
            } else if inline {
                Sink::Memory(Vec::new())
            } else {
                match set.drives[slot].create_staged(&tmp, &part.file).await {
                    Ok(w) => Sink::File(w),
                    Err(_) => Sink::Failed,
                }
            });
        }
        let blocks = g.block_count(part.size);
        let shard_of = |slot: usize| record.erasure.shard_of_slot(slot);
        // Only the targets' shards are kept from each rebuilt block.
        let mut wanted = vec![false; g.total()];
        for &t in targets {
            wanted[shard_of(t)] = true;
        }
        let wanted = Arc::new(wanted);
        // Reads one batch of blocks from every source: (first block, end block, base
        // offset, one buffer per slot).
        let read_batch = |blk: u64| {
            let readers = &readers;
            async move {
                let end = (blk + HEAL_BATCH_BLOCKS).min(blocks);
                let base = g.framed_block_range(part.size, blk).start;
                let stop = g.framed_block_range(part.size, end - 1).end;
                let reads = join_all(readers.iter().map(|r| async move {
                    match r {
                        Some(src) => src.read(base, (stop - base) as usize).await,
                        None => None,
                    }
                }))
                .await;
                (blk, end, base, reads)
            }
        };
        // The next batch is read while the current one is decoded and written.
        let mut current = if blocks > 0 {
            Some(read_batch(0).await)
        } else {
            None
        };
        while let Some((blk, end, base, reads)) = current.take() {
            let mut by_shard: Vec<Option<Vec<u8>>> = vec![None; g.total()];
            for (slot, r) in reads.into_iter().enumerate() {
                if let Some(buf) = r {
                    by_shard[shard_of(slot)] = Some(buf);
                }
            }
            let sinks = &mut sinks;
            let process = async {
                let dec = decoder.clone();
                let geo = *g;
                let size = part.size;
                let wanted = wanted.clone();
                let mut rebuilt = tokio::task::spawn_blocking(move || {
                    let mut out: Vec<Vec<u8>> = vec![Vec::new(); geo.total()];
                    for b in blk..end {
                        let r = geo.framed_block_range(size, b);
                        let mut shards: Vec<Option<Vec<u8>>> = by_shard
                            .iter()
                            .map(|x| {
                                x.as_ref()
                                    .and_then(|v| {
                                        v.get((r.start - base) as usize..(r.end - base) as usize)
                                    })
                                    .map(<[u8]>::to_vec)
                            })
                            .collect();
                        dec.reconstruct_block(&mut shards, geo.block_len(size, b))?;
                        for (i, s) in shards.into_iter().enumerate() {
                            if wanted[i] {
                                out[i].extend_from_slice(&s.unwrap_or_default());
                            }
                        }
                    }
                    Ok::<_, erasure::DecodeError>(out)
                })
                .await
                .map_err(StoreError::internal)?
                .map_err(|e| StoreError::ReadQuorum {
                    ok: match e {
                        erasure::DecodeError::TooFewShards { good, .. } => good,
                        _ => 0,
                    },
                    need: g.data(),
                })?;
                for (slot, sink) in sinks.iter_mut().enumerate() {
                    let bytes = std::mem::take(&mut rebuilt[shard_of(slot)]);
                    match sink {
                        Sink::File(w) => {
                            if w.write(Bytes::from(bytes)).await.is_err() {
                                *sink = Sink::Failed;
                            }
                        }
                        Sink::Memory(m) => m.extend_from_slice(&bytes),
                        Sink::Failed => {}
                    }
                }
                Ok::<(), StoreError>(())
            };
            if end < blocks {
                let (done, next) = futures::join!(process, read_batch(end));
                done?;
                current = Some(next);
            } else {
                process.await?;
            }
        }
        for (slot, sink) in sinks.into_iter().enumerate() {
            match sink {
                Sink::File(w) => {
                    if w.finish().await.is_err() {
                        alive[slot] = false;
                    }
                }
                Sink::Memory(m) => inline_bytes[slot] = m,
                Sink::Failed => alive[slot] = false,
            }
        }
    }

    // Commit each target: shards into place, then its record (and bucket record) in one transaction.
    let bucket_record = bucket_record_bytes(set, bucket).await;
    let okey = object_key(bucket, key);
    let commits = targets.iter().map(|&slot| {
        let d = set.drives[slot].clone();
        let mut ops = vec![MetaOp::Put {
            table: Table::Objects,
            key: okey.clone(),
            value: record.for_slot(slot).encode(),
        }];
        if inline {
            ops.push(MetaOp::Put {
                table: Table::Inline,
                key: data_id.as_str().as_bytes().to_vec(),
                value: std::mem::take(&mut inline_bytes[slot]),
            });
        }
        if let Some(br) = &bucket_record {
            ops.push(MetaOp::Put {
                table: Table::Buckets,
                key: bucket.as_bytes().to_vec(),
                value: br.clone(),
            });
        }
        let mv = (!inline).then(|| DataMove {
            tmp: tmp.clone(),
            bucket: bucket.to_owned(),
            data_id: data_id.clone(),
        });
        let stale = match &previous[slot] {
            Ok(Some(old)) if old.location.data_id() != &data_id => Some(old.clone()),
            _ => None,
        };
        let ok = alive[slot];
        async move {
            if !ok || d.commit(mv, ops).await.is_err() {
                return None;
            }
            if let Some(old) = stale {
                match &old.location {
                    DataLocation::Files(id) => {
                        let _ = d.delete_data(bucket, id).await;
                    }
                    DataLocation::Inline(id) => {
                        let _ = d
                            .meta_apply(vec![MetaOp::Delete {
                                table: Table::Inline,
                                key: id.as_str().as_bytes().to_vec(),
                            }])
                            .await;
                    }
                }
            }
            Some(slot)
        }
    });
    let healed: Vec<usize> = join_all(commits).await.into_iter().flatten().collect();
    join_all(set.drives.iter().map(|d| d.remove_staged(&tmp))).await;
    Ok(healed)
}

/// The bucket's record as any drive of the set holds it (to restore it on a fresh drive).
async fn bucket_record_bytes(set: &ErasureSet, bucket: &str) -> Option<Vec<u8>> {
    for d in &set.drives {
        if let Ok(Some(v)) = d.meta_get(Table::Buckets, bucket.as_bytes().to_vec()).await {
            return Some(v);
        }
    }
    None
}

/// One healthy source of a part's shard.
enum Source {
    Inline(Vec<u8>),
    File(Box<dyn ShardReader>),
}

impl Source {
    async fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        match self {
            Source::Inline(b) => b
                .get(offset as usize..offset as usize + len)
                .map(<[u8]>::to_vec),
            Source::File(r) => r.read_at(offset, len).await.ok(),
        }
    }
}

async fn open_source(
    d: &dyn Drive,
    bucket: &str,
    loc: &DataLocation,
    part: &PartRef,
) -> Option<Source> {
    match loc {
        DataLocation::Inline(id) => d
            .meta_get(Table::Inline, id.as_str().as_bytes().to_vec())
            .await
            .ok()
            .flatten()
            .map(Source::Inline),
        DataLocation::Files(id) => d
            .open_shard(bucket, id, &part.file)
            .await
            .ok()
            .map(Source::File),
    }
}

impl Store {
    /// Heals every object in the heal queue (until it is empty); returns how many were
    /// healed without error.
    pub async fn heal_queued(&self) -> usize {
        let mut n = 0;
        while let Some((b, k)) = self.inner.heal_queue.pop() {
            let (Ok(b), Ok(k)) = (BucketName::new(&b), ObjectKey::new(&k)) else {
                continue;
            };
            if let Ok(report) = self.heal_object(&b, &k).await {
                n += 1;
                if heal_complete(&report) {
                    self.inner.heal_queue.forget(b.as_str(), k.as_str()).await;
                }
            }
        }
        n
    }
}

/// How often the read-repair worker looks at the heal queue.
const READ_REPAIR_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
    /// Starts the background worker that heals what reads found damaged: every
    /// [`READ_REPAIR_INTERVAL`] it drains the heal queue with [`Store::heal_queued`]. The
    /// worker holds the store weakly and ends once every other handle to it is gone. Needs a
    /// tokio runtime.
    pub fn spawn_read_repair(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(READ_REPAIR_INTERVAL).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let healed = Store { inner }.heal_queued().await;
                if healed > 0 {
                    tracing::info!(healed, "read repair: healed objects found damaged on read");
                }
            }
        })
    }
}

impl Store {
    /// After a multipart completion: a part written while a drive was away leaves that
    /// drive's part file missing although the completion reached it. Checks that every
    /// drive holding the completed version has every part file (opens only, no reads) and
    /// queues the object (durably) when one does not.
    pub(crate) async fn check_completed_parts(&self, b: &BucketName, k: &ObjectKey) {
        let set = self.set_for(b, k).clone();
        let records = read_records(&set, b.as_str(), k.as_str()).await;
        let Ok(Some(settled)) = settle(&records, set.read_quorum()) else {
            return;
        };
        let DataLocation::Files(id) = &settled.record.location else {
            return;
        };
        let checks = set.drives.iter().enumerate().map(|(slot, d)| {
            let holder = settled.holders[slot];
            let parts = &settled.record.parts;
            async move {
                if !holder {
                    return true;
                }
                for p in parts {
                    if d.open_shard(b.as_str(), id, &p.file).await.is_err() {
                        return false;
                    }
                }
                true
            }
        });
        if !join_all(checks).await.into_iter().all(|ok| ok) {
            self.inner.heal_queue.push(b.as_str(), k.as_str());
        }
    }
}
