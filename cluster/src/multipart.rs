//! Multipart uploads: create, upload part, list parts, complete, abort, list uploads. Parts
//! are staged and moved straight into the upload's data directory (each under a unique
//! `part.N.<version>` name), so completion copies no data: the object's record references
//! the chosen parts' files, and the upload and part records are removed in the same
//! per-drive transaction. Upload and part records settle by read quorum like versions.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::body::ObjectBody;
use crate::checksum::{composite_checksum, multipart_etag, ChecksumAlgorithm};
use crate::drive::DataMove;
use crate::metastore::{MetaOp, ScanRange, Table};
use crate::names::{BucketName, DataId, ObjectKey, UploadId};
use crate::object::commit::{commit_version_locked, ExtraOps, NewData};
use crate::object::put::{discard_staged, new_erasure, stage_body, Claims};
use crate::record::{
    decode, encode, now_ns, part_key, parts_prefix, to_system_time, upload_key, DataLocation,
    PartRecord, PartRef, UploadRecord, VersionRecord,
};
use crate::set::ErasureSet;
use crate::types::*;
use crate::{DriveError, Store, StoreError};

/// Smallest size of every part but the last (S3).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number (S3).
pub const MAX_PART_NUMBER: u32 = 10_000;

fn lock_name(b: &BucketName, k: &ObjectKey) -> String {
    format!("{b}/{k}")
}

/// Reads one metadata key from every drive of the set.
async fn read_all(
    set: &ErasureSet,
    table: Table,
    key: &[u8],
) -> Vec<Result<Option<Vec<u8>>, DriveError>> {
    join_all(set.drives.iter().map(|d| d.meta_get(table, key.to_vec()))).await
}

/// The upload as a read quorum sees it, with each slot's own record; `NoSuchUpload` if absent.
async fn settle_upload(
    set: &ErasureSet,
    b: &BucketName,
    k: &ObjectKey,
    id: &UploadId,
) -> Result<(UploadRecord, Vec<Option<UploadRecord>>), StoreError> {
    let results = read_all(
        set,
        Table::Uploads,
        &upload_key(b.as_str(), k.as_str(), id.as_str()),
    )
    .await;
    let per_slot: Vec<Option<UploadRecord>> = results
        .iter()
        .map(|r| match r {
            Ok(Some(bytes)) => decode::<UploadRecord>(bytes).ok(),
            _ => None,
        })
        .collect();
    let present = per_slot.iter().filter(|r| r.is_some()).count();
    let absent = results.iter().filter(|r| matches!(r, Ok(None))).count();
    let q = set.read_quorum();
    match per_slot.iter().flatten().next() {
        Some(rec) if present >= q => Ok((rec.clone(), per_slot)),
        _ if absent >= q || present == 0 => Err(StoreError::NoSuchUpload),
        _ => Err(StoreError::ReadQuorum {
            ok: present,
            need: q,
        }),
    }
}

/// Every part of an upload a read quorum agrees on, by number, plus each slot's raw part
/// records (for undo).
async fn settle_parts(
    set: &ErasureSet,
    id: &UploadId,
) -> Result<(BTreeMap<u32, PartRecord>, Vec<Vec<(Vec<u8>, Vec<u8>)>>), StoreError> {
    let range = ScanRange::prefix(&parts_prefix(id.as_str()), usize::MAX);
    let q = set.read_quorum();
    let results = set.scan_quorum(Table::Parts, range).await?;
    let mut votes: BTreeMap<(u32, String), (usize, PartRecord)> = BTreeMap::new();
    for entries in results.iter().flatten() {
        for (_, v) in entries {
            if let Ok(p) = decode::<PartRecord>(v) {
                let e = votes
                    .entry((p.part.number, p.version_id.clone()))
                    .or_insert((0, p));
                e.0 += 1;
            }
        }
    }
    let mut parts: BTreeMap<u32, PartRecord> = BTreeMap::new();
    for ((n, _), (count, rec)) in votes {
        if count >= q
            && parts
                .get(&n)
                .is_none_or(|p| p.mod_time_ns < rec.mod_time_ns)
        {
            parts.insert(n, rec);
        }
    }
    let raw = results.into_iter().map(|r| r.unwrap_or_default()).collect();
    Ok((parts, raw))
}

pub(crate) async fn create_multipart(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    meta: ObjectMeta,
    checksum_algorithm: Option<ChecksumAlgorithm>,
) -> Result<UploadId, StoreError> {
    let set = store.set_for(b, k).clone();
    let id = UploadId::generate();
    let data_id = DataId::generate();
    let erasure = new_erasure(&set, &data_id);
    let record = UploadRecord {
        upload_id: id.as_str().to_owned(),
        key: k.as_str().to_owned(),
        initiated_ns: now_ns(),
        meta,
        checksum_algorithm,
        erasure,
        data_id,
    };
    let ukey = upload_key(b.as_str(), k.as_str(), id.as_str());
    let ok = join_all(set.drives.iter().enumerate().map(|(slot, d)| {
        let rec = UploadRecord {
            erasure: record.erasure.for_slot(slot),
            ..record.clone()
        };
        let op = MetaOp::Put {
            table: Table::Uploads,
            key: ukey.clone(),
            value: encode(&rec),
        };
        async move { d.meta_apply(vec![op]).await.is_ok() }
    }))
    .await;
    let n = ok.iter().filter(|o| **o).count();
    if n < set.write_quorum() {
        let del = MetaOp::Delete {
            table: Table::Uploads,
            key: ukey,
        };
        join_all(set.drives.iter().map(|d| d.meta_apply(vec![del.clone()]))).await;
        return Err(StoreError::WriteQuorum {
            ok: n,
            need: set.write_quorum(),
        });
    }
    Ok(id)
}

pub(crate) async fn upload_part(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    id: &UploadId,
    part_number: u32,
    body: impl ObjectBody + 'static,
    opts: PartOptions,
) -> Result<PartInfo, StoreError> {
    if part_number == 0 || part_number > MAX_PART_NUMBER {
        return Err(StoreError::InvalidArgument(format!(
            "part number must be 1..={MAX_PART_NUMBER}"
        )));
    }
    let set = store.set_for(b, k).clone();
    let (upload, _) = settle_upload(&set, b, k, id).await?;
    let version_id = DataId::generate();
    let file = format!("part.{part_number}.{}", &version_id.as_str()[..12]);
    let claims = Claims {
        content_md5: opts.content_md5,
        algorithm: opts.checksum_algorithm.or(upload.checksum_algorithm),
        expected: opts.expected_checksum,
    };
    let staged = stage_body(&set, &upload.erasure, body, &file, &claims, false).await?;
    let part = PartRef {
        number: part_number,
        size: staged.size,
        etag: staged.etag(),
        checksum: staged.checksum.clone(),
        file: file.clone(),
    };
    let record = PartRecord {
        part: part.clone(),
        version_id: version_id.as_str().to_owned(),
        mod_time_ns: now_ns(),
    };
    let pkey = part_key(id.as_str(), part_number);

    let guard = store.inner.locks.lock(lock_name(b, k)).await?;
    // The upload may have been completed or aborted while the body streamed.
    // Fencing: a writer whose key lock was lost meanwhile must not commit.
    let previous = match settle_upload(&set, b, k, id)
        .await
        .and_then(|_| guard.ensure_held())
    {
        Ok(()) => read_all(&set, Table::Parts, &pkey).await,
        Err(e) => {
            drop(guard);
            discard_staged(&set, &staged.tmp).await;
            return Err(e);
        }
    };
    let outcomes = join_all(set.drives.iter().enumerate().map(|(slot, d)| {
        let mv = DataMove {
            tmp: staged.tmp.clone(),
            bucket: b.as_str().to_owned(),
            data_id: upload.data_id.clone(),
        };
        let op = MetaOp::Put {
            table: Table::Parts,
            key: pkey.clone(),
            value: encode(&record),
        };
        let go = staged.ok[slot];
        async move {
            if go {
                Some(d.commit(Some(mv), vec![op]).await)
            } else {
                None
            }
        }
    }))
    .await;
    discard_staged(&set, &staged.tmp).await;
    let committed: Vec<bool> = outcomes.iter().map(|o| matches!(o, Some(Ok(())))).collect();
    // Drives that took the call and never answered may hold the new part.
    let unknown = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Err(DriveError::NoAnswer(_)))))
        .count();
    let n = committed.iter().filter(|c| **c).count();
    let old_file = |slot: usize| match &previous[slot] {
        Ok(Some(bytes)) => decode::<PartRecord>(bytes).ok().map(|p| p.part.file),
        _ => None,
    };
    if n < set.write_quorum() {
        join_all(set.drives.iter().enumerate().map(|(slot, d)| {
            let restore = match &previous[slot] {
                Ok(Some(bytes)) => MetaOp::Put {
                    table: Table::Parts,
                    key: pkey.clone(),
                    value: bytes.clone(),
                },
                _ => MetaOp::Delete {
                    table: Table::Parts,
                    key: pkey.clone(),
                },
            };
            let (go, data_id, file) = (committed[slot], upload.data_id.clone(), file.clone());
            async move {
                if go {
                    let _ = d.meta_apply(vec![restore]).await;
                    let _ = d.delete_data_file(b.as_str(), &data_id, &file).await;
                }
            }
        }))
        .await;
        // Outcome-unknown: the client retries the part (or lists the parts) before completing.
        return Err(StoreError::below_write_quorum(
            n,
            unknown,
            set.write_quorum(),
        ));
    }
    join_all(set.drives.iter().enumerate().map(|(slot, d)| {
        let old = old_file(slot).filter(|f| *f != file && committed[slot]);
        let data_id = upload.data_id.clone();
        async move {
            if let Some(f) = old {
                let _ = d.delete_data_file(b.as_str(), &data_id, &f).await;
            }
        }
    }))
    .await;
    drop(guard);
    Ok(PartInfo {
        part_number,
        etag: part.etag,
        size: part.size,
        last_modified: to_system_time(record.mod_time_ns),
        checksum: part.checksum,
    })
}

pub(crate) async fn list_parts(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    id: &UploadId,
    part_marker: u32,
    max_parts: usize,
) -> Result<PartsPage, StoreError> {
    let set = store.set_for(b, k).clone();
    settle_upload(&set, b, k, id).await?;
    let (parts, _) = settle_parts(&set, id).await?;
    let mut page = PartsPage::default();
    for (n, p) in parts.range(part_marker.saturating_add(1)..) {
        if page.parts.len() == max_parts {
            page.is_truncated = true;
            break;
        }
        page.parts.push(PartInfo {
            part_number: *n,
            etag: p.part.etag.clone(),
            size: p.part.size,
            last_modified: to_system_time(p.mod_time_ns),
            checksum: p.part.checksum.clone(),
        });
        page.next_part_marker = *n;
    }
    Ok(page)
}

fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

pub(crate) async fn complete_multipart(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    id: &UploadId,
    parts: &[CompletedPart],
    precondition: Option<WritePrecondition>,
) -> Result<ObjectInfo, StoreError> {
    let set = store.set_for(b, k).clone();
    let _guard = store.inner.locks.lock(lock_name(b, k)).await?;
    let (upload, upload_slots) = settle_upload(&set, b, k, id).await?;
    let (stored, raw_parts) = settle_parts(&set, id).await?;
    if parts.is_empty() {
        return Err(StoreError::InvalidPart);
    }
    if parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(StoreError::InvalidPartOrder);
    }
    let mut chosen: Vec<PartRef> = Vec::with_capacity(parts.len());
    for c in parts {
        let p = stored.get(&c.part_number).ok_or(StoreError::InvalidPart)?;
        if unquote(&c.etag) != p.part.etag {
            return Err(StoreError::InvalidPart);
        }
        chosen.push(p.part.clone());
    }
    if chosen[..chosen.len() - 1]
        .iter()
        .any(|p| p.size < MIN_PART_SIZE)
    {
        return Err(StoreError::EntityTooSmall);
    }
    let etags: Vec<String> = chosen.iter().map(|p| p.etag.clone()).collect();
    let checksum = upload.checksum_algorithm.and_then(|a| {
        composite_checksum(
            a,
            &chosen
                .iter()
                .map(|p| p.checksum.clone())
                .collect::<Vec<_>>(),
        )
    });
    let record = VersionRecord {
        version_id: uuid::Uuid::new_v4().to_string(),
        mod_time_ns: now_ns(),
        size: chosen.iter().map(|p| p.size).sum(),
        etag: multipart_etag(&etags),
        meta: upload.meta.clone(),
        checksum,
        erasure: upload.erasure,
        location: DataLocation::Files(upload.data_id.clone()),
        parts: chosen,
        multipart: true,
    };
    let ukey = upload_key(b.as_str(), k.as_str(), id.as_str());
    let part_keys: Vec<Vec<u8>> = stored.keys().map(|n| part_key(id.as_str(), *n)).collect();
    let commit_ops = |_slot: usize| {
        let mut ops = vec![MetaOp::Delete {
            table: Table::Uploads,
            key: ukey.clone(),
        }];
        ops.extend(part_keys.iter().map(|k| MetaOp::Delete {
            table: Table::Parts,
            key: k.clone(),
        }));
        ops
    };
    let undo_ops = |slot: usize| {
        let mut ops: Vec<MetaOp> = upload_slots[slot]
            .iter()
            .map(|u| MetaOp::Put {
                table: Table::Uploads,
                key: ukey.clone(),
                value: encode(u),
            })
            .collect();
        ops.extend(raw_parts[slot].iter().map(|(k, v)| MetaOp::Put {
            table: Table::Parts,
            key: k.clone(),
            value: v.clone(),
        }));
        ops
    };
    let ok = vec![true; set.total()];
    commit_version_locked(
        &store.inner,
        &set,
        b.as_str(),
        k.as_str(),
        &record,
        NewData::InPlace,
        &ok,
        &precondition,
        &ExtraOps {
            commit: &commit_ops,
            undo: &undo_ops,
        },
    )
    .await?;
    // Files of uploaded parts the object does not use.
    let used: Vec<&str> = record.parts.iter().map(|p| p.file.as_str()).collect();
    let unused: Vec<String> = stored
        .values()
        .map(|p| p.part.file.clone())
        .filter(|f| !used.contains(&f.as_str()))
        .collect();
    if !unused.is_empty() {
        join_all(set.drives.iter().map(|d| {
            let unused = unused.clone();
            let data_id = upload.data_id.clone();
            async move {
                for f in unused {
                    let _ = d.delete_data_file(b.as_str(), &data_id, &f).await;
                }
            }
        }))
        .await;
    }
    Ok(record.info(b.as_str(), k.as_str()))
}

pub(crate) async fn abort_multipart(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    id: &UploadId,
) -> Result<(), StoreError> {
    let set = store.set_for(b, k).clone();
    let guard = store.inner.locks.lock(lock_name(b, k)).await?;
    let (upload, _) = settle_upload(&set, b, k, id).await?;
    // Fencing: an aborter whose key lock was lost meanwhile must not remove the upload.
    guard.ensure_held()?;
    let ukey = upload_key(b.as_str(), k.as_str(), id.as_str());
    let range = ScanRange::prefix(&parts_prefix(id.as_str()), usize::MAX);
    let outcomes = join_all(set.drives.iter().map(|d| {
        let (ukey, range, data_id) = (ukey.clone(), range.clone(), upload.data_id.clone());
        async move {
            // Each drive removes the part records it has, the upload record, then the data.
            let parts = d.meta_scan(Table::Parts, range).await.unwrap_or_default();
            let mut ops = vec![MetaOp::Delete {
                table: Table::Uploads,
                key: ukey,
            }];
            ops.extend(parts.into_iter().map(|(key, _)| MetaOp::Delete {
                table: Table::Parts,
                key,
            }));
            let applied = d.meta_apply(ops).await;
            if applied.is_ok() {
                let _ = d.delete_data(b.as_str(), &data_id).await;
            }
            applied
        }
    }))
    .await;
    let n = outcomes.iter().filter(|o| o.is_ok()).count();
    let unknown = outcomes
        .iter()
        .filter(|o| matches!(o, Err(DriveError::NoAnswer(_))))
        .count();
    if n < set.write_quorum() {
        return Err(StoreError::below_write_quorum(
            n,
            unknown,
            set.write_quorum(),
        ));
    }
    Ok(())
}
