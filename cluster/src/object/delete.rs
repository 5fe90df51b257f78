//! DeleteObject: under the key's lock, remove the record (and inline bytes) from every drive
//! in one transaction each, then the version's shard files. Needs write quorum; below it the
//! records are put back where they were removed.

use futures::future::join_all;

use crate::metastore::{MetaOp, Table};
use crate::object::read_records;
use crate::record::{object_key, DataLocation};
use crate::set::ErasureSet;
use crate::store::Inner;
use crate::{DriveError, StoreError};

/// Deletes `bucket/key`; absent keys are fine.
pub(crate) async fn delete_object(
    store: &Inner,
    set: &ErasureSet,
    bucket: &str,
    key: &str,
) -> Result<(), StoreError> {
    let _guard = store.locks.lock(format!("{bucket}/{key}")).await?;
    let previous = read_records(set, bucket, key).await;
    if previous.iter().all(|r| matches!(r, Ok(None))) {
        return Ok(());
    }
    let okey = object_key(bucket, key);
    // Fencing: a deleter whose key lock was lost meanwhile must not commit.
    _guard.ensure_held()?;
    let outcomes: Vec<Result<(), DriveError>> = join_all(set.drives.iter().map(|d| {
        let ops = vec![MetaOp::Delete {
            table: Table::Objects,
            key: okey.clone(),
        }];
        async move { d.meta_apply(ops).await }
    }))
    .await;
    let results: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    let ok = results.iter().filter(|r| **r).count();
    let unknown = outcomes
        .iter()
        .filter(|r| matches!(r, Err(DriveError::NoAnswer(_))))
        .count();
    if ok < set.write_quorum() {
        // Undo: put back the records removed (their data was left in place).
        join_all(set.drives.iter().enumerate().map(|(slot, d)| {
            let restore = match (&previous[slot], results[slot]) {
                (Ok(Some(old)), true) => Some(MetaOp::Put {
                    table: Table::Objects,
                    key: okey.clone(),
                    value: old.encode(),
                }),
                _ => None,
            };
            async move {
                if let Some(op) = restore {
                    let _ = d.meta_apply(vec![op]).await;
                }
            }
        }))
        .await;
        if ok + unknown > 0 {
            // Drives that never answered may have removed it, and the undo may not have
            // reached every drive that took it: healing settles the key once they answer.
            store.heal_queue.push(bucket, key);
        }
        return Err(StoreError::below_write_quorum(
            ok,
            unknown,
            set.write_quorum(),
        ));
    }
    join_all(set.drives.iter().enumerate().map(|(slot, d)| {
        let old = match (&previous[slot], results[slot]) {
            (Ok(Some(old)), true) => Some(old.location.clone()),
            _ => None,
        };
        async move {
            match old {
                Some(DataLocation::Files(id)) => {
                    let _ = d.delete_data(bucket, &id).await;
                }
                Some(DataLocation::Inline(id)) => {
                    let _ = d
                        .meta_apply(vec![MetaOp::Delete {
                            table: Table::Inline,
                            key: id.as_str().as_bytes().to_vec(),
                        }])
                        .await;
                }
                None => {}
            }
        }
    }))
    .await;
    if ok < set.total() {
        store.heal_queue.push(bucket, key);
    }
    Ok(())
}
