//! Committing a new version of one key on every drive of its set: under the key's lock the
//! precondition is checked against the settled current version, each drive moves the data
//! into place and writes its record in one transaction, and below write quorum every drive
//! that committed is put back to its previous record and the new data removed. Cleanup of
//! the replaced version's data happens only after quorum. Never touches request bodies.

use futures::future::join_all;

use crate::drive::DataMove;
use crate::metastore::{MetaOp, Table};
use crate::object::put::{discard_staged, Staged};
use crate::object::{read_records, settle, SlotRecords};
use crate::record::{object_key, DataLocation, VersionRecord};
use crate::set::ErasureSet;
use crate::store::Inner;
use crate::types::WritePrecondition;
use crate::StoreError;

/// The data a new version brings with it.
#[derive(Debug)]
pub(crate) enum NewData<'a> {
    /// Staged by [`stage_body`]: moved into place (or written inline) at commit.
    Staged(&'a Staged),
    /// Already in place (multipart completion).
    InPlace,
}

/// More ops for a version commit's per-drive transaction, and what restores them on undo.
pub(crate) struct ExtraOps<'a> {
    pub commit: &'a (dyn Fn(usize) -> Vec<MetaOp> + Sync),
    pub undo: &'a (dyn Fn(usize) -> Vec<MetaOp> + Sync),
}

impl ExtraOps<'static> {
    pub const NONE: ExtraOps<'static> = ExtraOps {
        commit: &|_| Vec::new(),
        undo: &|_| Vec::new(),
    };
}

/// Checks a precondition against the settled current version.
pub(crate) fn check_precondition(
    records: &SlotRecords,
    quorum: usize,
    precondition: &Option<WritePrecondition>,
) -> Result<(), StoreError> {
    let Some(p) = precondition else { return Ok(()) };
    let current = settle(records, quorum)?;
    match (p, current) {
        (WritePrecondition::IfNoneMatchAny, None) => Ok(()),
        (WritePrecondition::IfMatch(etag), Some(cur)) if cur.record.etag == *etag => Ok(()),
        _ => Err(StoreError::PreconditionFailed),
    }
}

/// Commits `record` for `bucket/key` on every drive in `ok` (takes the key lock). `extra`
/// gives more ops for the same per-drive transaction. Below write quorum every committed
/// drive is restored to its previous record and the new data is removed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit_version(
    store: &Inner,
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    record: &VersionRecord,
    data: NewData<'_>,
    ok: &[bool],
    precondition: &Option<WritePrecondition>,
    extra: &ExtraOps<'_>,
) -> Result<(), StoreError> {
    let _guard = store.locks.lock(format!("{bucket}/{key}")).await?;
    commit_version_locked(
        store,
        set,
        bucket,
        key,
        record,
        data,
        ok,
        precondition,
        extra,
    )
    .await
}

/// [`commit_version`] for a caller that already holds the key's lock.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit_version_locked(
    store: &Inner,
    set: &ErasureSet,
    bucket: &str,
    key: &str,
    record: &VersionRecord,
    data: NewData<'_>,
    ok: &[bool],
    precondition: &Option<WritePrecondition>,
    extra: &ExtraOps<'_>,
) -> Result<(), StoreError> {
    let previous = read_records(set, bucket, key).await;
    check_precondition(&previous, set.read_quorum(), precondition)?;
    let okey = object_key(bucket, key);
    let data_id = record.location.data_id().clone();
    // Fencing: a writer whose key lock was lost meanwhile must not commit.
    store.locks.ensure_held(&format!("{bucket}/{key}"))?;

    let commits = set.drives.iter().enumerate().map(|(slot, drive)| {
        let mut ops = vec![MetaOp::Put {
            table: Table::Objects,
            key: okey.clone(),
            value: record.for_slot(slot).encode(),
        }];
        let mut mv = None;
        if let NewData::Staged(st) = &data {
            match &st.inline {
                Some(shards) => ops.push(MetaOp::Put {
                    table: Table::Inline,
                    key: data_id.as_str().as_bytes().to_vec(),
                    value: shards[record.erasure.shard_of_slot(slot)].clone(),
                }),
                None => {
                    mv = Some(DataMove {
                        tmp: st.tmp.clone(),
                        bucket: bucket.to_owned(),
                        data_id: data_id.clone(),
                    })
                }
            }
        }
        ops.extend((extra.commit)(slot));
        let go = ok.get(slot).copied().unwrap_or(false);
        async move {
            if !go {
                return false;
            }
            drive.commit(mv, ops).await.is_ok()
        }
    });
    let committed: Vec<bool> = join_all(commits).await;
    let n_ok = committed.iter().filter(|c| **c).count();
    if let NewData::Staged(st) = &data {
        if st.inline.is_none() {
            discard_staged(set, &st.tmp).await;
        }
    }
    if n_ok < set.write_quorum() {
        undo(set, bucket, &okey, record, &previous, &committed, extra).await;
        return Err(StoreError::WriteQuorum {
            ok: n_ok,
            need: set.write_quorum(),
        });
    }
    // Remove what the replaced version left behind, on the drives that moved on.
    let cleanups = set.drives.iter().enumerate().map(|(slot, drive)| {
        let old = match (&previous[slot], committed[slot]) {
            (Ok(Some(old)), true) if old.location.data_id() != &data_id => {
                Some(old.location.clone())
            }
            _ => None,
        };
        async move {
            match old {
                Some(DataLocation::Files(id)) => {
                    let _ = drive.delete_data(bucket, &id).await;
                }
                Some(DataLocation::Inline(id)) => {
                    let _ = drive
                        .meta_apply(vec![MetaOp::Delete {
                            table: Table::Inline,
                            key: id.as_str().as_bytes().to_vec(),
                        }])
                        .await;
                }
                None => {}
            }
        }
    });
    join_all(cleanups).await;
    if n_ok < set.total() {
        store.heal_queue.push(bucket, key);
    }
    Ok(())
}

/// Restores the previous record on every drive that committed `record`, and removes the
/// new version's data there.
async fn undo(
    set: &ErasureSet,
    bucket: &str,
    okey: &[u8],
    record: &VersionRecord,
    previous: &SlotRecords,
    committed: &[bool],
    extra: &ExtraOps<'_>,
) {
    let data_id = record.location.data_id().clone();
    let undos = set.drives.iter().enumerate().map(|(slot, drive)| {
        let mut ops = vec![match &previous[slot] {
            Ok(Some(old)) => MetaOp::Put {
                table: Table::Objects,
                key: okey.to_vec(),
                value: old.encode(),
            },
            _ => MetaOp::Delete {
                table: Table::Objects,
                key: okey.to_vec(),
            },
        }];
        ops.extend((extra.undo)(slot));
        if matches!(record.location, DataLocation::Inline(_)) {
            ops.push(MetaOp::Delete {
                table: Table::Inline,
                key: data_id.as_str().as_bytes().to_vec(),
            });
        }
        let go = committed[slot];
        let files = matches!(record.location, DataLocation::Files(_)) && !record.multipart;
        let data_id = data_id.clone();
        async move {
            if go {
                let _ = drive.meta_apply(ops).await;
                if files {
                    let _ = drive.delete_data(bucket, &data_id).await;
                }
            }
        }
    });
    join_all(undos).await;
}
