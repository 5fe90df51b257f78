//! ListObjects: an ordered scan of the metadata stores, merged across the drives of each set
//! (a key is listed when a read quorum of drives agrees on a present version — exactly the
//! objects a GET would return) and across sets, with prefix, delimiter (common prefixes,
//! skipped over in one seek), start-after and max-keys. Reads only; never touches shards.
//! A listing must never silently omit a key it cannot settle: a key whose votes reach no
//! quorum either way is dropped only when the drives that answered prove no acknowledged
//! write can hold it (quorum intersection); otherwise it is read again on its own, and
//! still unsettled, the page fails with `ReadQuorum` (503 SlowDown), as a GET would.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use futures::future::join_all;

use crate::metastore::{prefix_successor, Entries, ScanRange, Table};
use crate::names::BucketName;
use crate::object::{read_records, settle};
use crate::record::{object_prefix, VersionRecord};
use crate::set::ErasureSet;
use crate::types::{ListPage, ListQuery};
use crate::{Store, StoreError};

const SCAN_BATCH: usize = 1000;

/// Settled entries of one set, in key order, from a movable cursor.
struct SetScanner {
    set: Arc<ErasureSet>,
    /// The bucket listed (scan keys are `bucket/key`).
    bucket: String,
    cursor: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buffer: VecDeque<(Vec<u8>, VersionRecord)>,
    exhausted: bool,
    batch: usize,
}

impl SetScanner {
    /// The next settled entry without consuming it.
    async fn peek(&mut self) -> Result<Option<&(Vec<u8>, VersionRecord)>, StoreError> {
        while self.buffer.is_empty() && !self.exhausted {
            self.fill().await?;
        }
        Ok(self.buffer.front())
    }

    /// Skips every entry below `target`.
    fn seek(&mut self, target: Vec<u8>) {
        while self.buffer.front().is_some_and(|(k, _)| *k < target) {
            self.buffer.pop_front();
        }
        if self.buffer.is_empty() {
            let behind = match &self.cursor {
                Bound::Included(c) | Bound::Excluded(c) => *c < target,
                Bound::Unbounded => true,
            };
            if behind {
                self.cursor = Bound::Included(target);
            }
        }
    }

    async fn fill(&mut self) -> Result<(), StoreError> {
        let range = ScanRange {
            start: self.cursor.clone(),
            end: self.end.clone(),
            limit: self.batch,
        };
        let results = join_all(
            self.set
                .drives
                .iter()
                .map(|d| d.meta_scan(Table::Objects, range.clone())),
        )
        .await;
        let answered = results.iter().filter(|r| r.is_ok()).count();
        let quorum = self.set.read_quorum();
        if answered < quorum {
            return Err(StoreError::ReadQuorum {
                ok: answered,
                need: quorum,
            });
        }
        // Only keys up to the smallest last key of a full batch are complete on every drive.
        let bound: Option<&[u8]> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|entries| entries.len() >= self.batch)
            .filter_map(|entries| entries.last().map(|(k, _)| k.as_slice()))
            .min();
        // A k-way merge of the drives' sorted answers: each key once, its entry per drive.
        let answers: Vec<Option<&Entries>> = results.iter().map(|r| r.as_ref().ok()).collect();
        let mut pos = vec![0usize; answers.len()];
        let mut here: Vec<Option<&[u8]>> = vec![None; answers.len()];
        loop {
            let key: Option<&[u8]> = answers
                .iter()
                .zip(&pos)
                .filter_map(|(a, &i)| a.and_then(|e| e.get(i)).map(|(k, _)| k.as_slice()))
                .min();
            let Some(key) = key.filter(|k| bound.is_none_or(|b| *k <= b)) else {
                break;
            };
            for ((a, i), h) in answers.iter().zip(pos.iter_mut()).zip(here.iter_mut()) {
                *h = None;
                if let Some((k, v)) = a.and_then(|e| e.get(*i)) {
                    if k.as_slice() == key {
                        *h = Some(v.as_slice());
                        *i += 1;
                    }
                }
            }
            match settle_light(&answers, &here, quorum, self.set.write_quorum()) {
                Light::Present(record) => self.buffer.push_back((key.to_vec(), *record)),
                Light::Absent => {}
                Light::Unsettled => {
                    if let Some(record) = self.settle_alone(key).await? {
                        self.buffer.push_back((key.to_vec(), record));
                    }
                }
            }
        }
        let bound = bound.map(<[u8]>::to_vec);
        match bound {
            Some(b) => self.cursor = Bound::Excluded(b),
            None => self.exhausted = true,
        }
        Ok(())
    }
}

impl SetScanner {
    /// Reads one key the scan could not settle again, from every drive (as a GET does):
    /// its settled version, `None` when it settles as absent, `ReadQuorum` when it still
    /// cannot be settled and an acknowledged write could hold it.
    async fn settle_alone(&self, full_key: &[u8]) -> Result<Option<VersionRecord>, StoreError> {
        let key = full_key
            .get(self.bucket.len() + 1..)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let records = read_records(&self.set, &self.bucket, &key).await;
        match settle(&records, self.set.read_quorum()) {
            Ok(settled) => Ok(settled.map(|s| s.record)),
            Err(e) => {
                let mut counts: Vec<(&str, usize)> = Vec::new();
                for v in records
                    .iter()
                    .filter_map(|r| r.as_ref().ok().and_then(Option::as_ref))
                {
                    match counts.iter_mut().find(|c| c.0 == v.version_id) {
                        Some(c) => c.1 += 1,
                        None => counts.push((&v.version_id, 1)),
                    }
                }
                let silent = records.iter().filter(|r| r.is_err()).count();
                let best = counts.iter().map(|c| c.1).max().unwrap_or(0);
                if best + silent >= self.set.write_quorum() {
                    tracing::warn!(key = %key, error = %e, "list: a key the drives disagree on cannot be settled; failing the page");
                    Err(e)
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// What the votes of one key of a scan settle.
enum Light {
    /// A version with a read quorum (the newest such), decoded.
    Present(Box<VersionRecord>),
    /// Absent, or a version no acknowledged write can hold: not listed.
    Absent,
    /// No quorum either way, and a version held by too few of the answering drives could
    /// still be an acknowledged write (its other holders did not answer): cannot be told.
    Unsettled,
}

/// The fields of a version record that settle it (see `object::settle`), read without decoding
/// the rest.
#[derive(serde::Deserialize)]
struct Vote<'a> {
    #[serde(borrow)]
    version_id: std::borrow::Cow<'a, str>,
    mod_time_ns: u64,
}

/// `object::settle` for one key of a scan, from each drive's raw record (`None`: absent on an
/// answering drive; a slot whose drive failed, `answers[i] == None`, does not vote). Only the
/// version id and time of each vote are decoded; the whole record is decoded once, from the
/// first holder of the settled version (the record `settle` would return). Without a
/// quorum for any version, the key is [`Light::Absent`] only when no version's votes plus
/// the silent slots (failed drives, undecodable records) reach `write_quorum`: an
/// acknowledged write is on at least `write_quorum` drives, so it would show.
fn settle_light(
    answers: &[Option<&Entries>],
    raw: &[Option<&[u8]>],
    quorum: usize,
    write_quorum: usize,
) -> Light {
    // Absent and failed slots never reach a quorum for a version; either way the key is
    // not listed unless one version has a quorum.
    let votes: Vec<Option<Vote<'_>>> = answers
        .iter()
        .zip(raw)
        .map(|(a, r)| {
            a.and(*r)
                .and_then(|bytes| serde_json::from_slice::<Vote<'_>>(bytes).ok())
        })
        .collect();
    // (version_id, mod_time, count)
    let mut groups: Vec<(&str, u64, usize)> = Vec::new();
    for v in votes.iter().flatten() {
        match groups.iter_mut().find(|g| g.0 == v.version_id) {
            Some(g) => g.2 += 1,
            None => groups.push((&v.version_id, v.mod_time_ns, 1)),
        }
    }
    let winner = groups
        .iter()
        .filter(|g| g.2 >= quorum)
        .max_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let Some((vid, _, _)) = winner else {
        let absent = answers
            .iter()
            .zip(raw)
            .filter(|(a, r)| a.is_some() && r.is_none())
            .count();
        let voted = groups.iter().map(|g| g.2).sum::<usize>();
        let silent = answers.len() - absent - voted;
        let best = groups.iter().map(|g| g.2).max().unwrap_or(0);
        return if best + silent >= write_quorum {
            Light::Unsettled
        } else {
            Light::Absent
        };
    };
    votes
        .iter()
        .zip(raw)
        .filter(|(v, _)| v.as_ref().is_some_and(|v| v.version_id == *vid))
        .find_map(|(_, r)| r.and_then(|b| VersionRecord::decode(b).ok()))
        // The winner's record does not decode anywhere: read the key on its own.
        .map_or(Light::Unsettled, |r| Light::Present(Box::new(r)))
}

/// The common prefix of `key` (relative to the bucket) under `prefix`/`delimiter`, if any.
pub(crate) fn common_prefix<'a>(
    key: &'a str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

/// ListObjects / ListObjectsV2 (one page).
pub(crate) async fn list_objects(
    store: &Store,
    b: &BucketName,
    q: &ListQuery,
) -> Result<ListPage, StoreError> {
    let mut page = ListPage::default();
    if q.max_keys == 0 {
        return Ok(page);
    }
    let bucket = b.as_str();
    let base = object_prefix(bucket, "");
    let full_prefix = object_prefix(bucket, &q.prefix);
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut start = Bound::Included(full_prefix.clone());
    if let Some(sa) = &q.start_after {
        let sa_full = object_prefix(bucket, sa);
        if sa_full >= full_prefix {
            start = Bound::Excluded(sa_full);
            // A start-after inside a common prefix already returned skips the whole prefix.
            if let Some(cp) =
                common_prefix(sa, &q.prefix, delimiter).filter(|_| sa.starts_with(&q.prefix))
            {
                if let Some(next) = prefix_successor(&object_prefix(bucket, cp)) {
                    start = Bound::Included(next);
                }
            }
        }
    }
    let end = match prefix_successor(&full_prefix) {
        Some(e) => Bound::Excluded(e),
        None => Bound::Unbounded,
    };
    // One more than a page, so a full page also learns whether it is truncated in one scan.
    let batch = (q.max_keys + 1).clamp(16, SCAN_BATCH + 1);
    let mut scanners: Vec<SetScanner> = store
        .inner
        .sets
        .iter()
        .map(|set| SetScanner {
            set: set.clone(),
            bucket: bucket.to_owned(),
            cursor: start.clone(),
            end: end.clone(),
            buffer: VecDeque::new(),
            exhausted: false,
            batch,
        })
        .collect();

    let mut emitted = 0usize;
    loop {
        // The smallest head across sets.
        let mut best: Option<(usize, Vec<u8>)> = None;
        for (i, s) in scanners.iter_mut().enumerate() {
            if let Some((k, _)) = s.peek().await? {
                if best.as_ref().is_none_or(|(_, bk)| k < bk) {
                    best = Some((i, k.clone()));
                }
            }
        }
        let Some((i, full_key)) = best else { break };
        if emitted == q.max_keys {
            page.is_truncated = true;
            break;
        }
        let key = String::from_utf8_lossy(&full_key[base.len()..]).into_owned();
        if let Some(cp) = common_prefix(&key, &q.prefix, delimiter) {
            let cp = cp.to_owned();
            let skip_to = prefix_successor(&object_prefix(bucket, &cp));
            page.next_start_after = Some(cp.clone());
            page.common_prefixes.push(cp);
            emitted += 1;
            match skip_to {
                Some(t) => scanners.iter_mut().for_each(|s| s.seek(t.clone())),
                None => break,
            }
            continue;
        }
        let (_, record) = scanners[i]
            .buffer
            .pop_front()
            .expect("peeked entry is present");
        page.objects.push(record.info(bucket, &key));
        page.next_start_after = Some(key);
        emitted += 1;
    }
    if !page.is_truncated {
        page.next_start_after = None;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", None), None);
        assert_eq!(common_prefix("abc", "", Some("/")), None);
        assert_eq!(common_prefix("a--b--c", "a", Some("--")), Some("a--"));
    }
}
