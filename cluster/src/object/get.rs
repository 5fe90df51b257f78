//! The read path: settle the version a read quorum agrees on, open the data shards first
//! (no decoding when they are healthy), read only the blocks the requested range touches,
//! verify every block's hash, reconstruct from parity when a shard is missing or rotten,
//! and queue what was found damaged for healing. Never yields bytes it could not verify:
//! losing quorum mid-stream ends the stream with an `io::Error`.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;

use crate::body::ByteStream;
use crate::drive::ShardReader;
use crate::metastore::Table;
use crate::object::{current_version, Settled};
use crate::record::{DataLocation, PartRef, VersionRecord};
use crate::set::ErasureSet;
use crate::store::Inner;
use crate::types::{ByteRange, GetObject};
use crate::StoreError;

/// Data bytes decoded per batch of blocks (bounds memory per request).
const BATCH_BYTES: usize = 2 << 20;
/// Batches up to this size decode on the async thread (microseconds of work).
const INLINE_DECODE_MAX: usize = 64 << 10;

type ShardBlocks = Vec<Option<Vec<Vec<u8>>>>;
/// A decoded batch: the object bytes as consecutive pieces, and the shards found corrupt.
type Decoded = Result<(Vec<Bytes>, Vec<usize>), erasure::DecodeError>;

/// [`decode_batch`] on the blocking pool, split in two halves that run in parallel.
async fn decode_parallel(
    decoder: Arc<erasure::Decoder>,
    part_size: u64,
    blocks: Range<u64>,
    mut got: ShardBlocks,
) -> Result<(ShardBlocks, Decoded), StoreError> {
    let n = blocks.end - blocks.start;
    if n < 2 {
        return tokio::task::spawn_blocking(move || decode_batch(&decoder, part_size, blocks, got))
            .await
            .map_err(StoreError::internal);
    }
    let mid = blocks.start + n / 2;
    let split = (n / 2) as usize;
    let second: ShardBlocks = got
        .iter_mut()
        .map(|s| s.as_mut().map(|v| v.split_off(split)))
        .collect();
    let d2 = decoder.clone();
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(move || decode_batch(
            &decoder,
            part_size,
            blocks.start..mid,
            got
        )),
        tokio::task::spawn_blocking(move || decode_batch(&d2, part_size, mid..blocks.end, second)),
    );
    let (mut got_a, res_a) = a.map_err(StoreError::internal)?;
    let (got_b, res_b) = b.map_err(StoreError::internal)?;
    for (x, y) in got_a.iter_mut().zip(got_b) {
        if let (Some(x), Some(y)) = (x.as_mut(), y) {
            x.extend(y);
        }
    }
    let res = match (res_a, res_b) {
        (Ok((mut out, mut corrupt)), Ok((out_b, corrupt_b))) => {
            out.extend(out_b);
            corrupt.extend(corrupt_b);
            Ok((out, corrupt))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    Ok((got_a, res))
}

/// Decodes every block of a batch; hands the shard buffers back (intact ones unchanged,
/// damaged ones removed or rebuilt) so a retry with more shards can reuse them. When every
/// data shard of every block is present and verifies (the healthy case), the object bytes
/// are handed out as slices of the shard buffers themselves, without a copy.
fn decode_batch(
    decoder: &erasure::Decoder,
    part_size: u64,
    blocks: Range<u64>,
    mut got: ShardBlocks,
) -> (ShardBlocks, Decoded) {
    let g = decoder.geometry();
    let k = g.data();
    let n = (blocks.end - blocks.start) as usize;
    let healthy = got[..k].iter().all(|s| {
        s.as_ref().is_some_and(|v| {
            v.len() == n
                && blocks.clone().zip(v).all(|(b, framed)| {
                    erasure::verify_framed(framed, g.shard_len(g.block_len(part_size, b)))
                })
        })
    });
    if healthy {
        let mut out = Vec::with_capacity(n * k);
        for (j, b) in blocks.enumerate() {
            let block_len = g.block_len(part_size, b);
            let shard_len = g.shard_len(block_len);
            let mut remaining = block_len;
            for shard in got[..k].iter_mut().flatten() {
                if remaining == 0 {
                    break;
                }
                let take = remaining.min(shard_len);
                let framed = Bytes::from(std::mem::take(&mut shard[j]));
                out.push(framed.slice(erasure::HASH_LEN..erasure::HASH_LEN + take));
                remaining -= take;
            }
        }
        return (got, Ok((out, Vec::new())));
    }
    let mut out = Vec::new();
    let mut corrupt = Vec::new();
    for (j, b) in blocks.enumerate() {
        let mut shards: Vec<Option<Vec<u8>>> = got
            .iter_mut()
            .map(|x| x.as_mut().and_then(|v| v.get_mut(j)).map(std::mem::take))
            .collect();
        let res = decoder.decode_block(&mut shards, g.block_len(part_size, b), &mut out);
        for (slot, shard) in got.iter_mut().zip(shards) {
            if let Some(v) = slot.as_mut() {
                v[j] = shard.unwrap_or_default();
            }
        }
        match res {
            Ok(report) => corrupt.extend(report.corrupt),
            Err(e) => return (got, Err(e)),
        }
    }
    (got, Ok((vec![Bytes::from(out)], corrupt)))
}

/// Resolves `range`/`part_number` against the settled record: the object byte range to
/// send and whether it is partial.
fn resolve(
    record: &VersionRecord,
    range: Option<ByteRange>,
    part_number: Option<u32>,
) -> Result<(Range<u64>, bool), StoreError> {
    let size = record.size;
    if let Some(n) = part_number {
        if range.is_some() {
            return Err(StoreError::InvalidArgument(
                "a range and a part number cannot be combined".into(),
            ));
        }
        if !record.multipart {
            return if n == 1 {
                Ok((0..size, false))
            } else {
                Err(StoreError::InvalidPartNumber)
            };
        }
        let idx = n
            .checked_sub(1)
            .map(|i| i as usize)
            .filter(|i| *i < record.parts.len());
        let idx = idx.ok_or(StoreError::InvalidPartNumber)?;
        let start: u64 = record.parts[..idx].iter().map(|p| p.size).sum();
        return Ok((start..start + record.parts[idx].size, true));
    }
    match range {
        None => Ok((0..size, false)),
        Some(r) => r
            .resolve(size)
            .map(|r| (r, true))
            .ok_or(StoreError::InvalidRange { size }),
    }
}

/// A GET of `bucket/key`.
pub(crate) async fn get_object(
    store: &Arc<Inner>,
    set: &Arc<ErasureSet>,
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
    part_number: Option<u32>,
) -> Result<GetObject, StoreError> {
    let mut last_err = None;
    // A concurrent overwrite may remove the settled version's files between reading the
    // record and opening them; settle again then.
    for _ in 0..3 {
        let settled = current_version(set, bucket, key).await?;
        let (object_range, partial) = resolve(&settled.record, range, part_number)?;
        let info = settled.record.info(bucket, key);
        let mut reader = ObjectReader::new(store.clone(), set.clone(), bucket, key, settled);
        match reader.prepare(&object_range).await {
            Ok(()) => {
                let body = reader.stream(object_range.clone());
                return Ok(GetObject {
                    info,
                    range: partial.then_some(object_range),
                    body,
                });
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| StoreError::internal("read retries exhausted")))
}

/// Where one shard of one part comes from.
enum Source {
    Unopened,
    Inline(Arc<Vec<u8>>),
    File(Box<dyn ShardReader>),
    Failed,
}

/// Reads one settled version.
pub(crate) struct ObjectReader {
    store: Arc<Inner>,
    set: Arc<ErasureSet>,
    bucket: String,
    key: String,
    settled: Settled,
    geometry: erasure::Geometry,
    decoder: Arc<erasure::Decoder>,
    /// Index of the part whose sources are open, and the sources by shard index.
    open_part: Option<usize>,
    sources: Vec<Source>,
    damaged: bool,
}

impl ObjectReader {
    pub(crate) fn new(
        store: Arc<Inner>,
        set: Arc<ErasureSet>,
        bucket: &str,
        key: &str,
        settled: Settled,
    ) -> Self {
        let geometry = settled.record.erasure.geometry().unwrap_or_else(|_| {
            erasure::Geometry::new(1, 0, erasure::DEFAULT_BLOCK_SIZE).expect("1+0 is valid")
        });
        let total = geometry.total();
        ObjectReader {
            store,
            set,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            decoder: Arc::new(erasure::Decoder::new(geometry)),
            geometry,
            settled,
            open_part: None,
            sources: (0..total).map(|_| Source::Unopened).collect(),
            damaged: false,
        }
    }

    fn record(&self) -> &VersionRecord {
        &self.settled.record
    }

    /// The slot holding shard `shard` of the settled version, if that drive holds it (or
    /// may: it had not answered when the read settled early).
    fn slot_of_shard(&self, shard: usize) -> Option<usize> {
        (0..self.settled.holders.len()).find(|&slot| {
            (self.settled.holders[slot] || self.settled.unasked.get(slot) == Some(&true))
                && self.record().erasure.shard_of_slot(slot) == shard
        })
    }

    /// Whether shard `shard` is on a drive known to hold the settled version.
    fn confirmed(&self, shard: usize) -> bool {
        self.slot_of_shard(shard)
            .is_some_and(|slot| self.settled.holders[slot])
    }

    /// Opens the first part the range touches (pins the version's files).
    async fn prepare(&mut self, range: &Range<u64>) -> Result<(), StoreError> {
        self.record()
            .erasure
            .geometry()
            .map_err(StoreError::internal)?;
        if range.is_empty() {
            return Ok(());
        }
        let (idx, _) = self.part_at(range.start);
        self.open(idx).await?;
        let good = self
            .sources
            .iter()
            .filter(|s| matches!(s, Source::File(_) | Source::Inline(_)))
            .count();
        if good < self.geometry.data() {
            return Err(StoreError::ReadQuorum {
                ok: good,
                need: self.geometry.data(),
            });
        }
        Ok(())
    }

    /// The part containing object offset `off`, and that part's start offset.
    fn part_at(&self, off: u64) -> (usize, u64) {
        let mut start = 0;
        for (i, p) in self.record().parts.iter().enumerate() {
            if off < start + p.size {
                return (i, start);
            }
            start += p.size;
        }
        (self.record().parts.len().saturating_sub(1), start)
    }

    /// Makes part `idx` current and opens K sources, data shards first.
    async fn open(&mut self, idx: usize) -> Result<(), StoreError> {
        if self.open_part != Some(idx) {
            self.open_part = Some(idx);
            self.sources = (0..self.geometry.total())
                .map(|_| Source::Unopened)
                .collect();
        }
        self.open_more(self.geometry.data()).await;
        Ok(())
    }

    fn usable(&self) -> usize {
        self.sources
            .iter()
            .filter(|s| matches!(s, Source::File(_) | Source::Inline(_)))
            .count()
    }

    /// Opens unopened shards, data shards first, until `want` are usable or none are left.
    async fn open_more(&mut self, want: usize) {
        loop {
            let need = want.saturating_sub(self.usable());
            if need == 0 {
                return;
            }
            // Known holders first (data shards first among them), then drives that may hold
            // the version.
            let mut order: Vec<usize> = (0..self.geometry.total())
                .filter(|&i| matches!(self.sources[i], Source::Unopened))
                .collect();
            order.sort_by_key(|&i| (!self.confirmed(i), i));
            let candidates: Vec<usize> = order.into_iter().take(need).collect();
            if candidates.is_empty() {
                return;
            }
            let opened = join_all(candidates.iter().map(|&i| self.open_source(i))).await;
            for (i, src) in candidates.into_iter().zip(opened) {
                if matches!(src, Source::Failed) && self.confirmed(i) {
                    self.damaged = true;
                }
                self.sources[i] = src;
            }
        }
    }

    async fn open_source(&self, shard: usize) -> Source {
        let Some(slot) = self.slot_of_shard(shard) else {
            return Source::Failed;
        };
        let drive = &self.set.drives[slot];
        let part: &PartRef = match self.open_part.and_then(|i| self.record().parts.get(i)) {
            Some(p) => p,
            None => return Source::Failed,
        };
        if let Some(Some(bytes)) = self.settled.inline.get(slot) {
            return Source::Inline(bytes.clone());
        }
        match &self.record().location {
            DataLocation::Inline(id) => match drive
                .meta_get(Table::Inline, id.as_str().as_bytes().to_vec())
                .await
            {
                Ok(Some(bytes)) => Source::Inline(Arc::new(bytes)),
                _ => Source::Failed,
            },
            DataLocation::Files(id) => match drive.open_shard(&self.bucket, id, &part.file).await {
                Ok(r) => Source::File(r),
                Err(_) => Source::Failed,
            },
        }
    }

    async fn read_source(&self, shard: usize, ranges: Vec<Range<u64>>) -> Option<Vec<Vec<u8>>> {
        match &self.sources[shard] {
            Source::Inline(b) => ranges
                .iter()
                .map(|r| b.get(r.start as usize..r.end as usize).map(<[u8]>::to_vec))
                .collect(),
            Source::File(r) => r.read_ranges(ranges).await.ok(),
            _ => None,
        }
    }

    /// Decodes blocks `blocks` of the current part (size `part_size`) into bytes.
    async fn read_blocks(
        &mut self,
        part_size: u64,
        blocks: Range<u64>,
    ) -> Result<Vec<Bytes>, StoreError> {
        let g = self.geometry;
        let ranges: Vec<Range<u64>> = blocks
            .clone()
            .map(|b| g.framed_block_range(part_size, b))
            .collect();
        let total = g.total();
        // got[shard][i] = framed block `blocks.start + i` of that shard.
        let mut got: Vec<Option<Vec<Vec<u8>>>> = vec![None; total];
        let mut attempted = vec![false; total];
        loop {
            let to_read: Vec<usize> = (0..total)
                .filter(|&i| {
                    !attempted[i] && matches!(self.sources[i], Source::File(_) | Source::Inline(_))
                })
                .collect();
            let reads =
                join_all(to_read.iter().map(|&i| self.read_source(i, ranges.clone()))).await;
            for (i, r) in to_read.into_iter().zip(reads) {
                attempted[i] = true;
                if r.is_none() {
                    self.sources[i] = Source::Failed;
                    self.damaged = true;
                }
                got[i] = r;
            }
            // Small batches decode in place; larger ones on the blocking pool, two halves
            // in parallel (hash verification is the cost of a healthy read).
            let batch_bytes = (blocks.end - blocks.start) as usize * g.block_size();
            let (back, res) = if batch_bytes <= INLINE_DECODE_MAX {
                decode_batch(&self.decoder, part_size, blocks.clone(), got)
            } else {
                decode_parallel(self.decoder.clone(), part_size, blocks.clone(), got).await?
            };
            got = back;
            match res {
                Ok((out, corrupt)) => {
                    if !corrupt.is_empty() {
                        self.damaged = true;
                    }
                    return Ok(out);
                }
                Err(_) => {
                    // Some shard failed its hash: bring in every other shard and retry.
                    self.damaged = true;
                    self.open_more(total).await;
                    let untried = (0..total).any(|i| {
                        !attempted[i]
                            && matches!(self.sources[i], Source::File(_) | Source::Inline(_))
                    });
                    if !untried {
                        let ok = got.iter().filter(|x| x.is_some()).count();
                        return Err(StoreError::ReadQuorum { ok, need: g.data() });
                    }
                }
            }
        }
    }

    /// Streams object bytes `range` (the first part is already open).
    fn stream(mut self, range: Range<u64>) -> ByteStream {
        // One decoded batch waits while the next is read: enough to keep the socket busy, and
        // a stream never holds more than about three batches (data plus shards) at once.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<Bytes>>>(1);
        tokio::spawn(async move {
            let res = self.send_range(range, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            if self.damaged {
                self.store.heal_queue.push(&self.bucket, &self.key);
            }
        });
        let queued = std::collections::VecDeque::<Bytes>::new();
        Box::pin(futures::stream::unfold(
            (rx, queued),
            |(mut rx, mut queued)| async move {
                loop {
                    if let Some(b) = queued.pop_front() {
                        return Some((Ok(b), (rx, queued)));
                    }
                    match rx.recv().await? {
                        Ok(pieces) => queued.extend(pieces),
                        Err(e) => return Some((Err(e), (rx, queued))),
                    }
                }
            },
        ))
    }

    async fn send_range(
        &mut self,
        range: Range<u64>,
        tx: &tokio::sync::mpsc::Sender<std::io::Result<Vec<Bytes>>>,
    ) -> Result<(), StoreError> {
        let mut off = range.start;
        let per_batch = (BATCH_BYTES / self.geometry.block_size()).max(1) as u64;
        while off < range.end {
            let (idx, part_start) = self.part_at(off);
            let part_size = self.record().parts[idx].size;
            self.open(idx).await?;
            let local = (off - part_start)..(range.end - part_start).min(part_size);
            let blocks = self.geometry.blocks_for_range(part_size, local.clone());
            let mut b = blocks.start;
            while b < blocks.end {
                let e = (b + per_batch).min(blocks.end);
                let data = self.read_blocks(part_size, b..e).await?;
                // Keep the pieces that overlap the wanted part-local range.
                let mut at = self.geometry.block_offset(b);
                let mut pieces = Vec::with_capacity(data.len());
                for piece in data {
                    let end = at + piece.len() as u64;
                    let from = local.start.clamp(at, end) - at;
                    let to = local.end.clamp(at, end) - at;
                    if from < to {
                        pieces.push(piece.slice(from as usize..to as usize));
                    }
                    at = end;
                }
                if tx.send(Ok(pieces)).await.is_err() {
                    return Ok(()); // the reader went away
                }
                b = e;
            }
            off = part_start + local.end;
        }
        Ok(())
    }
}
