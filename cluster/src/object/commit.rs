//! Committing a new version of one key on every drive of its set: under the key's lock the
//! precondition is checked against the settled current version, each drive moves the data
//! into place and writes its record in one transaction, and below write quorum every drive
//! that committed is put back to its previous record and the new data removed. Cleanup of
//! the replaced version's data happens only after quorum. Never touches request bodies.

use futures::future::join_all;

use crate::drive::{DataMove, RemoteDrive};
use crate::metastore::{MetaOp, Table};
use crate::object::put::{discard_staged, Staged};
use crate::object::{node_groups, read_records, settle, SlotRecords};
use crate::record::{object_key, DataLocation, VersionRecord};
use crate::set::ErasureSet;
use crate::store::Inner;
use crate::types::WritePrecondition;
use crate::{DriveError, StoreError};

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
    if precondition.is_some() {
        let current = read_records(set, bucket, key).await;
        check_precondition(&current, set.read_quorum(), precondition)?;
    }
    let okey = object_key(bucket, key);
    let data_id = record.location.data_id().clone();
    // Fencing: a writer whose key lock was lost meanwhile must not commit.
    store.locks.ensure_held(&format!("{bucket}/{key}"))?;

    let work: Vec<Option<(Option<DataMove>, Vec<MetaOp>)>> = (0..set.total())
        .map(|slot| {
            if !ok.get(slot).copied().unwrap_or(false) {
                return None;
            }
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
            Some((mv, ops))
        })
        .collect();
    let results = commit_all(set, &okey, work).await;
    let committed: Vec<bool> = results.iter().map(|r| matches!(r, Some(Ok(_)))).collect();
    // Drives that took the commit call and never answered: it may have taken effect there.
    let unknown = results
        .iter()
        .filter(|r| matches!(r, Some(Err(DriveError::NoAnswer(_)))))
        .count();
    // What each committed drive held before: undo puts it back, cleanup removes its data.
    let previous: SlotRecords = results
        .into_iter()
        .map(|r| match r {
            Some(Ok(Some(bytes))) => VersionRecord::decode(&bytes).map(Some),
            Some(Ok(None)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => Err(DriveError::Offline("not written".into())),
        })
        .collect();
    let n_ok = committed.iter().filter(|c| **c).count();
    if let NewData::Staged(st) = &data {
        if st.inline.is_none() {
            discard_staged(set, &st.tmp).await;
        }
    }
    if n_ok < set.write_quorum() {
        undo(set, bucket, &okey, record, &previous, &committed, extra).await;
        if n_ok + unknown > 0 {
            // Drives that never answered may hold the new version, and the undo may not have
            // reached every drive that took it: healing settles the key once they answer.
            store.heal_queue.push(bucket, key);
        }
        return Err(StoreError::below_write_quorum(
            n_ok,
            unknown,
            set.write_quorum(),
        ));
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

/// Runs each slot's (data move, ops), where given, as [`Drive::commit_version`] of `key`:
/// one request per remote node for all of its drives. Per slot: `None` where nothing was
/// asked, else the drive's outcome with what `key` held before.
async fn commit_all(
    set: &ErasureSet,
    key: &[u8],
    mut work: Vec<Option<(Option<DataMove>, Vec<MetaOp>)>>,
) -> Vec<Option<Result<Option<Vec<u8>>, DriveError>>> {
    let calls = node_groups(set).into_iter().map(|group| {
        let slots: Vec<usize> = group.into_iter().filter(|&s| work[s].is_some()).collect();
        let items: Vec<(Option<DataMove>, Vec<MetaOp>)> =
            slots.iter().filter_map(|&s| work[s].take()).collect();
        let remotes: Option<Vec<&RemoteDrive>> = slots
            .iter()
            .map(|&s| set.drives[s].as_remote())
            .collect::<Option<Vec<_>>>()
            .filter(|r| r.len() > 1);
        let key = key.to_vec();
        async move {
            let answers = match remotes {
                Some(r) => RemoteDrive::commit_versions(&r, items, key).await,
                None => {
                    let each = slots
                        .iter()
                        .zip(items)
                        .map(|(&s, (mv, ops))| set.drives[s].commit_version(mv, ops, key.clone()));
                    join_all(each).await
                }
            };
            slots.into_iter().zip(answers).collect::<Vec<_>>()
        }
    });
    let mut out: Vec<Option<Result<Option<Vec<u8>>, DriveError>>> =
        (0..set.total()).map(|_| None).collect();
    for (slot, r) in join_all(calls).await.into_iter().flatten() {
        out[slot] = Some(r);
    }
    out
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
