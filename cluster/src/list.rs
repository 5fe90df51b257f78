//! ListObjects: an ordered scan of the metadata stores, merged across the drives of each set
//! (a key is listed when a read quorum of drives agrees on a present version — exactly the
//! objects a GET would return) and across sets, with prefix, delimiter (common prefixes,
//! skipped over in one seek), start-after and max-keys. Reads only; never touches shards.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use futures::future::join_all;

use crate::metastore::{prefix_successor, ScanRange, Table};
use crate::names::BucketName;
use crate::object::{settle, SlotRecords};
use crate::record::{object_prefix, VersionRecord};
use crate::set::ErasureSet;
use crate::types::{ListPage, ListQuery};
use crate::{DriveError, Store, StoreError};

const SCAN_BATCH: usize = 1000;

/// Settled entries of one set, in key order, from a movable cursor.
struct SetScanner {
    set: Arc<ErasureSet>,
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
        let bound: Option<Vec<u8>> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|entries| entries.len() >= self.batch)
            .filter_map(|entries| entries.last().map(|(k, _)| k.clone()))
            .min();
        let mut keys: Vec<Vec<u8>> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flat_map(|entries| entries.iter().map(|(k, _)| k.clone()))
            .filter(|k| bound.as_ref().is_none_or(|b| k <= b))
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let votes: SlotRecords = results
                .iter()
                .map(|r| match r {
                    Ok(entries) => {
                        match entries.binary_search_by(|(k, _)| k.as_slice().cmp(&key)) {
                            Ok(i) => VersionRecord::decode(&entries[i].1).map(Some),
                            Err(_) => Ok(None),
                        }
                    }
                    Err(_) => Err(DriveError::Offline(String::new())),
                })
                .collect();
            // A key without quorum either way is not listed (a GET would fail on it).
            if let Ok(Some(s)) = settle(&votes, quorum) {
                self.buffer.push_back((key, s.record));
            }
        }
        match bound {
            Some(b) => self.cursor = Bound::Excluded(b),
            None => self.exhausted = true,
        }
        Ok(())
    }
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
    let batch = (q.max_keys + 1).clamp(16, SCAN_BATCH);
    let mut scanners: Vec<SetScanner> = store
        .inner
        .sets
        .iter()
        .map(|set| SetScanner {
            set: set.clone(),
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
