//! The object layer on one erasure set: reading and settling version records by quorum
//! (this file), writing (`put`), reading (`get`), deleting (`delete`). It talks to drives
//! only through the `Drive` trait and never builds paths.

pub mod commit;
pub mod delete;
pub mod get;
pub mod put;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};

use crate::drive::{Drive, RemoteDrive, StoredVersion};
use crate::record::{object_key, DataLocation, VersionRecord};
use crate::set::ErasureSet;
use crate::{DriveError, StoreError};

/// What each drive (by slot) holds for one key.
pub(crate) type SlotRecords = Vec<Result<Option<VersionRecord>, DriveError>>;

/// Answers of one group of drives: (slot, what that drive holds).
type GroupAnswers = Vec<(usize, Result<Option<StoredVersion>, DriveError>)>;

/// The slots of `set` grouped by who answers them: each local drive on its own, and all the
/// drives of one remote node together (one request per node).
pub(crate) fn node_groups(set: &ErasureSet) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut bases: Vec<(String, usize)> = Vec::new();
    for (slot, d) in set.drives.iter().enumerate() {
        match d.as_remote() {
            Some(r) => match bases.iter().find(|(b, _)| b == r.node_base()) {
                Some(&(_, g)) => groups[g].push(slot),
                None => {
                    bases.push((r.node_base().to_owned(), groups.len()));
                    groups.push(vec![slot]);
                }
            },
            None => groups.push(vec![slot]),
        }
    }
    groups
}

/// Starts reading `key`'s version record (with its inline shard when `inline`) on every
/// drive of the set: one future per group of [`node_groups`], owning what it needs, so the
/// ones still running after a caller is satisfied can be finished in the background.
fn start_reads(
    set: &ErasureSet,
    key: &[u8],
    inline: bool,
) -> FuturesUnordered<BoxFuture<'static, GroupAnswers>> {
    let futs = FuturesUnordered::new();
    push_reads(&futs, set, node_groups(set), key, inline);
    futs
}

/// Adds the record reads of `groups` to `futs` (see [`start_reads`]).
fn push_reads(
    futs: &FuturesUnordered<BoxFuture<'static, GroupAnswers>>,
    set: &ErasureSet,
    groups: Vec<Vec<usize>>,
    key: &[u8],
    inline: bool,
) {
    for group in groups {
        let key = key.to_vec();
        let drives: Vec<Arc<dyn Drive>> = group.iter().map(|&s| set.drives[s].clone()).collect();
        futs.push(Box::pin(async move {
            let remotes: Option<Vec<RemoteDrive>> = drives
                .iter()
                .map(|d| d.as_remote().cloned())
                .collect::<Option<Vec<_>>>()
                .filter(|r| r.len() > 1);
            let answers = match remotes {
                Some(r) => {
                    let refs: Vec<&RemoteDrive> = r.iter().collect();
                    RemoteDrive::read_versions(&refs, key, inline).await
                }
                None => {
                    let mut out = Vec::with_capacity(drives.len());
                    for d in &drives {
                        out.push(d.read_version(key.clone(), inline).await);
                    }
                    out
                }
            };
            group.into_iter().zip(answers).collect()
        }) as BoxFuture<'static, GroupAnswers>);
    }
}

/// How long a read waits for the drives it asked first before it asks the others too.
const HEDGE_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// Splits `groups` into the ones a read asks first and the rest: every local drive, then
/// remote nodes believed online (starting at a rotating one, so reads spread over the
/// nodes) until at least `want` drives are asked.
fn first_asked(
    set: &ErasureSet,
    groups: Vec<Vec<usize>>,
    want: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let remote = |g: &Vec<usize>| set.drives[g[0]].as_remote();
    let (mut first, mut remotes): (Vec<_>, Vec<_>) =
        groups.into_iter().partition(|g| remote(g).is_none());
    if !remotes.is_empty() {
        let turn = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % remotes.len();
        remotes.rotate_left(turn);
    }
    // Nodes believed offline go last (a stable sort keeps the rotation otherwise).
    remotes.sort_by_key(|g| !remote(g).is_some_and(RemoteDrive::is_online));
    let mut asked: usize = first.iter().map(Vec::len).sum();
    let mut rest = Vec::new();
    for g in remotes {
        if asked < want {
            asked += g.len();
            first.push(g);
        } else {
            rest.push(g);
        }
    }
    (first, rest)
}

fn decode(
    v: Result<Option<StoredVersion>, DriveError>,
) -> Result<Option<VersionRecord>, DriveError> {
    match v? {
        Some(sv) => VersionRecord::decode(&sv.record).map(Some),
        None => Ok(None),
    }
}

/// Reads the key's version record from every drive of the set, concurrently (one request
/// per remote node).
pub(crate) async fn read_records(set: &ErasureSet, bucket: &str, key: &str) -> SlotRecords {
    let mut records: SlotRecords = (0..set.total())
        .map(|_| Err(DriveError::Offline("no answer".into())))
        .collect();
    let mut futs = start_reads(set, &object_key(bucket, key), false);
    while let Some(answers) = futs.next().await {
        for (slot, a) in answers {
            records[slot] = decode(a);
        }
    }
    records
}

/// The version a read quorum agrees on.
#[derive(Clone, Debug)]
pub(crate) struct Settled {
    /// The settled version as the first holding drive records it.
    pub record: VersionRecord,
    /// Per slot: whether that drive holds exactly this version.
    pub holders: Vec<bool>,
    /// Per slot: the inline shard bytes read with the record (holders only; may be absent).
    pub inline: Vec<Option<Arc<Vec<u8>>>>,
    /// Per slot: the drive had not answered when the read settled early, so it may hold
    /// this version too (a reader may try it when the holders fall short; every block is
    /// hash-checked and a version's data id is its own).
    pub unasked: Vec<bool>,
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
        let holders: Vec<bool> = records
            .iter()
            .map(|r| matches!(r, Ok(Some(v)) if v.version_id == vid))
            .collect();
        return Ok(Some(Settled {
            record: rec.clone(),
            inline: vec![None; holders.len()],
            unasked: vec![false; holders.len()],
            holders,
        }));
    }
    if absent >= quorum {
        return Ok(None);
    }
    let ok = groups.iter().map(|g| g.2).max().unwrap_or(0).max(absent);
    Err(StoreError::ReadQuorum { ok, need: quorum })
}

/// Whether the drives that answered so far settle the read without waiting for the rest:
/// at least a write quorum of them answered, every one without error, and all hold the same
/// version (inline with at least K of its shards read along, or in files with every data
/// shard's drive among them) or all hold nothing. Any
/// acknowledged write reached a write quorum, and two write quorums always share a drive
/// (`write_quorum` > n/2), so no acknowledged write newer than that version can exist; an
/// in-flight one on fewer drives would not settle in a full read either. Agreement of only
/// a read quorum is not enough (a write in flight on the other half could win a later read).
fn settled_early(
    answered: &[Option<Result<Option<VersionRecord>, DriveError>>],
    inline: &[Option<Arc<Vec<u8>>>],
    write_quorum: usize,
    data: usize,
) -> Option<Option<Settled>> {
    let n = answered.iter().filter(|a| a.is_some()).count();
    if n < write_quorum || n == answered.len() {
        return None;
    }
    let mut first: Option<&VersionRecord> = None;
    let mut absent = 0;
    for a in answered.iter().flatten() {
        match a {
            Err(_) => return None,
            Ok(None) => absent += 1,
            Ok(Some(v)) => match first {
                None => first = Some(v),
                Some(f) if f.version_id == v.version_id => {}
                Some(_) => return None,
            },
        }
    }
    match first {
        None => Some(None),
        Some(_) if absent > 0 => None,
        Some(v) => {
            let enough = match v.location {
                // The object's bytes came along: at least K shards of them.
                DataLocation::Inline(_) => inline.iter().filter(|i| i.is_some()).count() >= data,
                // Shard files: the answering drives hold every data shard (a healthy read
                // needs no decoding and no drive that was not asked).
                DataLocation::Files(_) => {
                    let mut held = vec![false; data];
                    for (slot, a) in answered.iter().enumerate() {
                        if a.is_some() {
                            if let Some(h) = held.get_mut(v.erasure.shard_of_slot(slot)) {
                                *h = true;
                            }
                        }
                    }
                    held.iter().all(|h| *h)
                }
            };
            if !enough {
                return None;
            }
            Some(Some(Settled {
                record: v.clone(),
                holders: answered.iter().map(Option::is_some).collect(),
                inline: inline.to_vec(),
                unasked: answered.iter().map(Option::is_none).collect(),
            }))
        }
    }
}

/// Reads and settles the current version for a GET or HEAD, with the inline shards of a
/// small object read along; returns as soon as the answers so far settle it
/// ([`settled_early`]), finishing the other requests in the background. `NoSuchKey` when the
/// key settles as absent.
pub(crate) async fn current_version(
    set: &ErasureSet,
    bucket: &str,
    key: &str,
) -> Result<Settled, StoreError> {
    let total = set.total();
    let mut answered: Vec<Option<Result<Option<VersionRecord>, DriveError>>> =
        (0..total).map(|_| None).collect();
    let mut inline: Vec<Option<Arc<Vec<u8>>>> = vec![None; total];
    let okey = object_key(bucket, key);
    // Ask only as many drives as can settle the read early (local ones and the nodes
    // believed online first); the others when that fails or takes longer than
    // `HEDGE_AFTER`.
    let (first, rest) = first_asked(set, node_groups(set), set.write_quorum());
    let futs = FuturesUnordered::new();
    push_reads(&futs, set, first, &okey, true);
    let mut futs = futs;
    let mut rest = (!rest.is_empty()).then_some(rest);
    let hedge = tokio::time::sleep(HEDGE_AFTER);
    tokio::pin!(hedge);
    loop {
        let next = tokio::select! {
            a = futs.next() => a,
            () = &mut hedge, if rest.is_some() => {
                if let Some(r) = rest.take() {
                    push_reads(&futs, set, r, &okey, true);
                }
                continue;
            }
        };
        let Some(answers) = next else {
            match rest.take() {
                Some(r) => {
                    push_reads(&futs, set, r, &okey, true);
                    continue;
                }
                None => break,
            }
        };
        for (slot, a) in answers {
            let shard = a
                .as_ref()
                .ok()
                .and_then(|o| o.as_ref())
                .and_then(|sv| sv.inline.clone());
            inline[slot] = shard.map(Arc::new);
            answered[slot] = Some(decode(a));
        }
        if let Some(early) =
            settled_early(&answered, &inline, set.write_quorum(), set.read_quorum())
        {
            if !futs.is_empty() {
                // Dropping them would cut their connections; let them end on their own.
                tokio::spawn(async move { while futs.next().await.is_some() {} });
            }
            return early.ok_or(StoreError::NoSuchKey);
        }
    }
    let records: SlotRecords = answered
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(DriveError::Offline("no answer".into()))))
        .collect();
    let mut settled = settle(&records, set.read_quorum())?.ok_or(StoreError::NoSuchKey)?;
    for (slot, shard) in inline.into_iter().enumerate() {
        if settled.holders[slot] {
            settled.inline[slot] = shard;
        }
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DataId;
    use crate::record::{ErasureInfo, PartRef};

    fn record(version: &str) -> VersionRecord {
        VersionRecord {
            version_id: version.into(),
            mod_time_ns: 1,
            size: 3,
            etag: "e".into(),
            meta: Default::default(),
            checksum: None,
            erasure: ErasureInfo {
                data: 4,
                parity: 4,
                block_size: 1 << 20,
                rotation: 0,
                shard_index: 0,
            },
            location: DataLocation::Inline(DataId::generate()),
            parts: vec![PartRef {
                number: 1,
                size: 3,
                etag: "e".into(),
                checksum: None,
                file: "part.1".into(),
            }],
            multipart: false,
        }
    }

    type Answers = Vec<Option<Result<Option<VersionRecord>, DriveError>>>;

    fn shards(answered: &Answers) -> Vec<Option<Arc<Vec<u8>>>> {
        answered
            .iter()
            .map(|a| matches!(a, Some(Ok(Some(_)))).then(|| Arc::new(vec![1])))
            .collect()
    }

    /// EC 4+4: write quorum 5. Five unanimous answers settle; four (a read quorum) never do,
    /// nor five with one disagreeing, one error or one absent, nor a version kept in files.
    #[test]
    fn a_read_settles_early_only_on_a_unanimous_write_quorum() {
        let v = record("v");
        let some = |r: &VersionRecord| Some(Ok(Some(r.clone())));
        let mut a: Answers = (0..8).map(|_| None).collect();
        for s in a.iter_mut().take(4) {
            *s = some(&v);
        }
        assert!(
            settled_early(&a, &shards(&a), 5, 4).is_none(),
            "4 of 8 is not enough"
        );
        a[6] = some(&v);
        let got = settled_early(&a, &shards(&a), 5, 4).and_then(|s| s);
        let got = got.expect("5 unanimous answers settle");
        assert_eq!(got.record.version_id, "v");
        assert_eq!(
            got.holders,
            vec![true, true, true, true, false, false, true, false]
        );

        let copy = |x: &Answers| -> Answers {
            x.iter()
                .map(|o| {
                    o.as_ref().map(|r| match r {
                        Ok(v) => Ok(v.clone()),
                        Err(_) => Err(DriveError::NotFound),
                    })
                })
                .collect()
        };
        let mut b = copy(&a);
        b[6] = some(&record("w"));
        assert!(
            settled_early(&b, &shards(&b), 5, 4).is_none(),
            "disagreement"
        );
        b[6] = Some(Err(DriveError::Offline("x".into())));
        assert!(settled_early(&b, &shards(&b), 5, 4).is_none(), "an error");
        b[6] = Some(Ok(None));
        assert!(settled_early(&b, &shards(&b), 5, 4).is_none(), "one absent");
        assert!(
            settled_early(&a, &vec![None; 8], 5, 4).is_none(),
            "without the inline shards"
        );
        let mut files = v.clone();
        files.location = DataLocation::Files(DataId::generate());
        let f: Answers = (0..8)
            .map(|i| (i >= 3).then(|| Ok(Some(files.clone()))))
            .collect();
        assert!(
            settled_early(&f, &vec![None; 8], 5, 4).is_none(),
            "files wait while a data shard's drive has not answered"
        );
        let f: Answers = (0..8)
            .map(|i| (i < 5).then(|| Ok(Some(files.clone()))))
            .collect();
        assert!(
            matches!(settled_early(&f, &vec![None; 8], 5, 4), Some(Some(_))),
            "files settle once every data shard's drive agrees"
        );

        let absent: Answers = (0..8).map(|i| (i < 5).then_some(Ok(None))).collect();
        assert!(matches!(
            settled_early(&absent, &shards(&absent), 5, 4),
            Some(None)
        ));
        let all: Answers = (0..8).map(|_| some(&v)).collect();
        assert!(
            settled_early(&all, &shards(&all), 5, 4).is_none(),
            "every drive answered: the full settle decides"
        );
    }
}
