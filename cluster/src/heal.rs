//! Healing: the in-memory `HealQueue` of objects found damaged (on read) or written on fewer
//! than all drives, and `heal_object`, which settles the current version, rebuilds every
//! missing or rotten shard block from the others, and writes shards and records back to the
//! drives that lack them. The durable queue and the background scanner come with issue 5.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use crate::names::{BucketName, ObjectKey};
use crate::types::HealReport;
use crate::{Store, StoreError};

/// Objects waiting to be healed, each at most once.
#[derive(Debug, Default)]
pub struct HealQueue {
    inner: Mutex<(VecDeque<(String, String)>, BTreeSet<(String, String)>)>,
}

impl HealQueue {
    pub(crate) fn push(&self, bucket: &str, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let item = (bucket.to_owned(), key.to_owned());
        if g.1.insert(item.clone()) {
            g.0.push_back(item);
        }
    }

    /// Takes the next queued (bucket, key).
    pub fn pop(&self) -> Option<(String, String)> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let item = g.0.pop_front()?;
        g.1.remove(&item);
        Some(item)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .contains(&(bucket.to_owned(), key.to_owned()))
    }
}

/// See the module docs.
pub(crate) async fn heal_object(_store: &Store, _b: &BucketName, _k: &ObjectKey) -> Result<HealReport, StoreError> {
    Err(StoreError::Internal("heal_object is not implemented yet".into()))
}
