//! Per-key write locks (`KeyLocks`): the commit of a write, its precondition check and its
//! undo happen under the key's lock, so two writers of one key never interleave. Inside this
//! process a key's writers queue on an async mutex; with several nodes the holder then also
//! takes the key's distributed lock on a majority of nodes ([`crate::dlock`]), so writers
//! through different nodes exclude each other too. A single node never makes an RPC for a
//! lock. Never held across a client's body upload, only around a commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::dlock::{DistGuard, DistLocker};
use crate::StoreError;

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct KeyLocks {
    map: Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>,
    /// The majority lock across nodes; `None` on a single node.
    dist: Option<DistLocker>,
}

/// Holds one key's lock until dropped.
#[derive(Debug)]
pub struct KeyGuard {
    key: String,
    lock: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
    dist: Option<DistGuard>,
    map: Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>,
}

impl KeyLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks that also take each key on a majority of nodes through `dist`.
    pub fn distributed(dist: DistLocker) -> Self {
        KeyLocks {
            map: Arc::default(),
            dist: Some(dist),
        }
    }

    /// Waits for and takes the lock of `key`: in this process, then (several nodes) on a
    /// majority of nodes, which fails once the distributed lock's acquire timeout passes.
    pub async fn lock(&self, key: String) -> Result<KeyGuard, StoreError> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        let mut out = KeyGuard {
            key,
            lock,
            guard: Some(guard),
            dist: None,
            map: self.map.clone(),
        };
        if let Some(d) = &self.dist {
            out.dist = Some(d.lock(&out.key).await?);
        }
        Ok(out)
    }

    /// Number of keys with a live lock entry (for tests: entries are reclaimed).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        // The distributed lock goes first (its release is sent in the background).
        self.dist.take();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.guard.take();
        // The map and this guard hold the only references: nobody waits, reclaim the entry.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_entries_are_reclaimed() {
        let locks = KeyLocks::new();
        let g = locks.lock("a".into()).await.expect("locked");
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.lock("a".into()).await.expect("locked");
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        let _other = locks.lock("b".into()).await.expect("locked");
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("waiter got the lock")
            .expect("waiter ran");
        drop(_other);
        assert!(locks.is_empty());
    }
}
