//! The write path: a body stream is cut into blocks; a blocking thread hashes them (MD5 +
//! checksums) while another erasure-codes them and streams the shard blocks to every drive's
//! staging file concurrently (bounded channels: a few blocks in memory per request).
//! Small bodies (≤ 128 KiB) are kept in memory and committed inline. The commit itself is
//! in `commit.rs`.

use bytes::Bytes;
use futures::future::join_all;
use futures::StreamExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::body::ObjectBody;
use crate::checksum::{verify_claims, BodyDigests, BodyHashes, Checksum, ChecksumAlgorithm};
use crate::drive::ShardWriter;
use crate::names::DataId;
use crate::object::commit::{commit_version, ExtraOps, NewData};
use crate::record::{DataLocation, ErasureInfo, VersionRecord};
use crate::set::ErasureSet;
use crate::types::WritePrecondition;
use crate::{DriveError, StoreError};

/// Bodies up to this size are stored inline in the metadata record.
pub const INLINE_MAX: usize = 128 * 1024;

/// Blocks queued between the body reader and each of the hasher and the coder.
const PIPELINE_DEPTH: usize = 4;

/// What the client claimed about the body.
#[derive(Clone, Debug, Default)]
pub(crate) struct Claims {
    pub content_md5: Option<[u8; 16]>,
    pub algorithm: Option<ChecksumAlgorithm>,
    pub expected: Option<Checksum>,
}

/// A body that has been fully received, hashed, verified and staged on the drives.
#[derive(Debug)]
pub(crate) struct Staged {
    pub tmp: DataId,
    pub size: u64,
    pub digests: BodyDigests,
    /// The checksum to store (requested, claimed or trailing), if any.
    pub checksum: Option<Checksum>,
    /// Per slot: the staged shard is complete and durable.
    pub ok: Vec<bool>,
    /// For small bodies: every shard's framed bytes (by shard index), nothing on disk.
    pub inline: Option<Vec<Vec<u8>>>,
}

impl Staged {
    pub fn etag(&self) -> String {
        hex::encode(self.digests.md5)
    }
}

/// Removes a staging directory from every drive (best effort).
pub(crate) async fn discard_staged(set: &ErasureSet, tmp: &DataId) {
    join_all(set.drives.iter().map(|d| d.remove_staged(tmp))).await;
}

struct DriveStream {
    tx: Option<mpsc::Sender<Bytes>>,
    task: Option<tokio::task::JoinHandle<Result<(), DriveError>>>,
}

fn spawn_writer(mut w: Box<dyn ShardWriter>) -> DriveStream {
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let task = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            w.write(b).await?;
        }
        w.finish().await
    });
    DriveStream {
        tx: Some(tx),
        task: Some(task),
    }
}

/// Receives `body`, hashes and encodes it, stages shards as `file` on the set's drives (or
/// in memory when small and `allow_inline`), and verifies the client's claims. On any error
/// nothing remains staged.
pub(crate) async fn stage_body<B: ObjectBody>(
    set: &ErasureSet,
    erasure: &ErasureInfo,
    mut body: B,
    file: &str,
    claims: &Claims,
    allow_inline: bool,
) -> Result<Staged, StoreError> {
    let geometry = erasure.geometry().map_err(StoreError::internal)?;
    let block_size = geometry.block_size();
    let encoder = Arc::new(erasure::Encoder::new(geometry));
    let mut algorithms: Vec<ChecksumAlgorithm> = claims.algorithm.into_iter().collect();
    algorithms.extend(claims.expected.as_ref().map(|c| c.algorithm));
    let mut hashes = Some(BodyHashes::new(algorithms.clone()));
    let total = set.total();
    let tmp = DataId::generate();

    // Phase 1: read up to the inline threshold.
    let mut head: Vec<u8> = Vec::new();
    let mut ended = false;
    while allow_inline && !ended && head.len() <= INLINE_MAX {
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(StoreError::Body(e)),
            None => ended = true,
        }
    }

    if ended && allow_inline && head.len() <= INLINE_MAX {
        let size = head.len() as u64;
        let mut shards: Vec<Vec<u8>> = vec![Vec::new(); total];
        let enc = encoder.clone();
        let h = hashes.take().expect("hashes present");
        let (h, shards) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut h = h;
            h.update(&head);
            let mut out = Vec::new();
            for block in head.chunks(block_size) {
                enc.encode_block(block, &mut out)
                    .map_err(StoreError::internal)?;
                for (i, s) in out.iter().enumerate() {
                    shards[i].extend_from_slice(s);
                }
            }
            Ok((h, shards))
        })
        .await
        .map_err(StoreError::internal)??;
        let trailing = body.trailing_checksums();
        let (digests, checksum) = finish_hashes(h, claims, &trailing)?;
        return Ok(Staged {
            tmp,
            size,
            digests,
            checksum,
            ok: vec![true; total],
            inline: Some(shards),
        });
    }

    // Phase 2: stream to staging files on every drive.
    let writers = join_all(set.drives.iter().map(|d| d.create_staged(&tmp, file))).await;
    let mut streams: Vec<DriveStream> = writers
        .into_iter()
        .map(|w| match w {
            Ok(w) => spawn_writer(w),
            Err(_) => DriveStream {
                tx: None,
                task: None,
            },
        })
        .collect();
    let quorum = set.write_quorum();

    // The pipeline: this task cuts the body into blocks; one blocking thread runs MD5 and
    // the checksums over them in order (the serial part of a PUT), another erasure-codes
    // and seals them and hands the shards to the drive writers. The three overlap, so a
    // single request keeps the body socket, the hasher, the coder and the disks busy at once.
    let (hash_tx, mut hash_rx) = mpsc::channel::<Arc<Vec<u8>>>(PIPELINE_DEPTH);
    let mut h = hashes.take().expect("hashes present");
    let hasher = tokio::task::spawn_blocking(move || {
        while let Some(block) = hash_rx.blocking_recv() {
            h.update(&block);
        }
        h
    });
    let (enc_tx, mut enc_rx) = mpsc::channel::<Arc<Vec<u8>>>(PIPELINE_DEPTH);
    let mut senders: Vec<Option<mpsc::Sender<Bytes>>> =
        streams.iter().map(|s| s.tx.clone()).collect();
    let alive = Arc::new(AtomicUsize::new(
        senders.iter().filter(|s| s.is_some()).count(),
    ));
    let alive_enc = alive.clone();
    let enc = encoder.clone();
    let slot_shards: Vec<usize> = (0..total).map(|s| erasure.shard_of_slot(s)).collect();
    let coder = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        while let Some(block) = enc_rx.blocking_recv() {
            enc.encode_block(&block, &mut out)
                .map_err(StoreError::internal)?;
            drop(block);
            for (slot, tx) in senders.iter_mut().enumerate() {
                let shard = Bytes::from(std::mem::take(&mut out[slot_shards[slot]]));
                if let Some(t) = tx {
                    if t.blocking_send(shard).is_err() {
                        *tx = None;
                        alive_enc.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            if alive_enc.load(Ordering::Relaxed) < quorum {
                break;
            }
        }
        Ok(())
    });
    // Only the coder holds senders now: closing its input closes every drive's channel.
    for s in &mut streams {
        s.tx = None;
    }

    let result = async {
        let mut size = 0u64;
        let mut buf: Vec<u8> = Vec::with_capacity(block_size);
        let mut pending: Option<Bytes> = Some(Bytes::from(head));
        loop {
            let chunk = match pending.take() {
                Some(c) => Some(c),
                None if ended => None,
                None => match body.next().await {
                    Some(Ok(c)) => Some(c),
                    Some(Err(e)) => return Err(StoreError::Body(e)),
                    None => {
                        ended = true;
                        None
                    }
                },
            };
            let last = chunk.is_none();
            let mut chunk = chunk.unwrap_or_default();
            while !chunk.is_empty() || (last && !buf.is_empty()) {
                let take = (block_size - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk.split_to(take));
                if buf.len() < block_size && !last {
                    break;
                }
                let block = Arc::new(std::mem::replace(&mut buf, Vec::with_capacity(block_size)));
                size += block.len() as u64;
                let sent =
                    hash_tx.send(block.clone()).await.is_ok() && enc_tx.send(block).await.is_ok();
                let n = alive.load(Ordering::Relaxed);
                if !sent || n < quorum {
                    return Err(StoreError::WriteQuorum {
                        ok: n,
                        need: quorum,
                    });
                }
            }
            if last {
                return Ok(size);
            }
        }
    }
    .await;
    drop(hash_tx);
    drop(enc_tx);
    let coded = coder.await.map_err(StoreError::internal).and_then(|r| r);
    let hashed = hasher.await.map_err(StoreError::internal);
    let result = match (result, coded, hashed) {
        (Ok(size), Ok(()), Ok(h)) => {
            hashes = Some(h);
            Ok(size)
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    };

    // The channels are closed (the coder ended): let every drive finish (fsync) its file.
    let mut ok = vec![false; total];
    for (slot, s) in streams.iter_mut().enumerate() {
        if let Some(task) = s.task.take() {
            ok[slot] = matches!(task.await, Ok(Ok(())));
        }
    }
    let verified = result.and_then(|size| {
        let trailing = body.trailing_checksums();
        let (digests, checksum) =
            finish_hashes(hashes.take().expect("hashes present"), claims, &trailing)?;
        let good = ok.iter().filter(|o| **o).count();
        if good < quorum {
            return Err(StoreError::WriteQuorum {
                ok: good,
                need: quorum,
            });
        }
        Ok((size, digests, checksum))
    });
    match verified {
        Ok((size, digests, checksum)) => Ok(Staged {
            tmp,
            size,
            digests,
            checksum,
            ok,
            inline: None,
        }),
        Err(e) => {
            discard_staged(set, &tmp).await;
            Err(e)
        }
    }
}

fn finish_hashes(
    hashes: BodyHashes,
    claims: &Claims,
    trailing: &[Checksum],
) -> Result<(BodyDigests, Option<Checksum>), StoreError> {
    let digests = hashes.finish();
    let mut claimed: Vec<Checksum> = claims.expected.iter().cloned().collect();
    claimed.extend(trailing.iter().cloned());
    for c in &claimed {
        if digests.get(c.algorithm).is_none() {
            return Err(StoreError::InvalidChecksum(format!(
                "a {} checksum arrived but was not announced (set checksum_algorithm)",
                c.algorithm
            )));
        }
    }
    verify_claims(&digests, claims.content_md5, &claimed)?;
    let algorithm = claims
        .algorithm
        .or_else(|| claimed.first().map(|c| c.algorithm));
    let checksum = algorithm.and_then(|a| digests.get(a).cloned());
    Ok((digests, checksum))
}

/// Erasure parameters for a new object or upload on `set`, with a fresh rotation.
pub(crate) fn new_erasure(set: &ErasureSet, id: &DataId) -> ErasureInfo {
    let total = set.total();
    let rotation = usize::from_str_radix(&id.as_str()[..4], 16).unwrap_or(0) % total.max(1);
    ErasureInfo {
        data: set.data,
        parity: set.parity,
        block_size: set.block_size,
        rotation,
        shard_index: 0,
    }
}

/// PutObject.
pub(crate) async fn put_object(
    store: &crate::Store,
    b: &crate::BucketName,
    k: &crate::ObjectKey,
    body: impl ObjectBody + 'static,
    opts: crate::PutOptions,
) -> Result<crate::ObjectInfo, StoreError> {
    let set = store.set_for(b, k).clone();
    let seed = DataId::generate();
    let erasure = new_erasure(&set, &seed);
    let claims = Claims {
        content_md5: opts.content_md5,
        algorithm: opts.checksum_algorithm,
        expected: opts.expected_checksum.clone(),
    };
    let staged = stage_body(
        &set,
        &erasure,
        body,
        &crate::record::part_file(1),
        &claims,
        true,
    )
    .await?;
    let result = commit_staged(
        store,
        &set,
        b.as_str(),
        k.as_str(),
        &erasure,
        &staged,
        opts.meta,
        &opts.precondition,
    )
    .await;
    if result.is_err() && staged.inline.is_none() {
        discard_staged(&set, &staged.tmp).await;
    }
    result
}

/// Commits a staged body as the new version of `bucket/key` (PutObject and CopyObject).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit_staged(
    store: &crate::Store,
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    erasure: &ErasureInfo,
    staged: &Staged,
    meta: crate::ObjectMeta,
    precondition: &Option<WritePrecondition>,
) -> Result<crate::ObjectInfo, StoreError> {
    let etag = staged.etag();
    let data_id = staged.tmp.clone();
    let record = VersionRecord {
        version_id: uuid::Uuid::new_v4().to_string(),
        mod_time_ns: crate::record::now_ns(),
        size: staged.size,
        etag: etag.clone(),
        meta,
        checksum: staged.checksum.clone(),
        erasure: *erasure,
        location: if staged.inline.is_some() {
            DataLocation::Inline(data_id)
        } else {
            DataLocation::Files(data_id)
        },
        parts: vec![crate::record::PartRef {
            number: 1,
            size: staged.size,
            etag,
            checksum: staged.checksum.clone(),
            file: crate::record::part_file(1),
        }],
        multipart: false,
    };
    commit_version(
        &store.inner,
        set,
        bucket,
        key,
        &record,
        NewData::Staged(staged),
        &staged.ok,
        precondition,
        &ExtraOps::NONE,
    )
    .await?;
    Ok(record.info(bucket, key))
}
