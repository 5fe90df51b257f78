//! The object layer on one erasure set: reading and settling version records by quorum
//! (this file), writing (`put`), reading (`get`), deleting (`delete`). It talks to drives
//! only through the `Drive` trait and never builds paths.

pub mod commit;
pub mod delete;
pub mod get;
pub mod put;

use futures::future::join_all;

use crate::metastore::Table;
use crate::record::{object_key, VersionRecord};
use crate::set::ErasureSet;
use crate::{DriveError, StoreError};

/// What each drive (by slot) holds for one key.
pub(crate) type SlotRecords = Vec<Result<Option<VersionRecord>, DriveError>>;

/// Reads the key's version record from every drive of the set, concurrently.
pub(crate) async fn read_records(set: &ErasureSet, bucket: &str, key: &str) -> SlotRecords {
    let k = object_key(bucket, key);
    join_all(set.drives.iter().map(|d| {
        let k = k.clone();
        async move {
            match d.meta_get(Table::Objects, k).await? {
                Some(bytes) => VersionRecord::decode(&bytes).map(Some),
                None => Ok(None),
            }
        }
    }))
    .await
}

/// The version a read quorum agrees on.
#[derive(Clone, Debug)]
pub(crate) struct Settled {
    /// The settled version as the first holding drive records it.
    pub record: VersionRecord,
    /// Per slot: whether that drive holds exactly this version.
    pub holders: Vec<bool>,
}

/// Settles the current version from per-drive answers: the version (or absence) held by at
/// least `quorum` drives; when several qualify, the newest version wins over older ones and
/// over absence. `Ok(None)` = the key settles as absent. Fewer than `quorum` agreeing →
/// `ReadQuorum`.
pub(crate) fn settle(records: &SlotRecords, quorum: usize) -> Result<Option<Settled>, StoreError> {
    let mut absent = 0usize;
    // (version_id, mod_time, count, first record)
    let mut groups: Vec<(&str, u64, usize, &VersionRecord)> = Vec::new();
    for r in records.iter() {
        match r {
            Ok(None) => absent += 1,
            Ok(Some(v)) => match groups.iter_mut().find(|g| g.0 == v.version_id) {
                Some(g) => g.2 += 1,
                None => groups.push((&v.version_id, v.mod_time_ns, 1, v)),
            },
            Err(_) => {}
        }
    }
    let best = groups
        .iter()
        .filter(|g| g.2 >= quorum)
        .max_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    if let Some(&(vid, _, _, rec)) = best {
        let holders = records
            .iter()
            .map(|r| matches!(r, Ok(Some(v)) if v.version_id == vid))
            .collect();
        return Ok(Some(Settled {
            record: rec.clone(),
            holders,
        }));
    }
    if absent >= quorum {
        return Ok(None);
    }
    let ok = groups.iter().map(|g| g.2).max().unwrap_or(0).max(absent);
    Err(StoreError::ReadQuorum { ok, need: quorum })
}

/// Reads and settles; `NoSuchKey` when the key settles as absent.
pub(crate) async fn current_version(
    set: &ErasureSet,
    bucket: &str,
    key: &str,
) -> Result<Settled, StoreError> {
    let records = read_records(set, bucket, key).await;
    settle(&records, set.read_quorum())?.ok_or(StoreError::NoSuchKey)
}
