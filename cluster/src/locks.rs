//! Per-key write locks (`KeyLocks`): the commit of a write, its precondition check and its
//! undo happen under the key's lock, so two writers of one key never interleave. Inside this
//! process a key's writers queue on an async mutex; with several nodes the holder then also
//! takes the key's distributed lock on a majority of nodes ([`crate::dlock`]), so writers
//! through different nodes exclude each other too. A single node never makes an RPC for a
//! lock. Never held across a client's body upload, only around a commit. A holder whose
//! distributed lock was lost (its lease not kept on a majority, see [`crate::dlock::Lease`])
//! must not commit: the commit checks [`KeyGuard::ensure_held`] (or
//! [`KeyLocks::ensure_held`] by key, for code handed the lock by its caller) right before it
//! writes, and fails with `StoreError::LockLost`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::dlock::{DistGuard, DistLocker, Lease};
use crate::StoreError;

/// One key's lock in this process: the queue of its writers, and the lease of the holder's
/// distributed lock (if any).
#[derive(Debug, Default)]
struct Entry {
    queue: Arc<AsyncMutex<()>>,
    lease: Mutex<Option<Lease>>,
}

type Map = Arc<Mutex<HashMap<String, Arc<Entry>>>>;

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct KeyLocks {
    map: Map,
    /// The majority lock across nodes; `None` on a single node.
    dist: Option<DistLocker>,
}

/// Holds one key's lock until dropped.
#[derive(Debug)]
pub struct KeyGuard {
    key: String,
    lock: Arc<Entry>,
    guard: Option<OwnedMutexGuard<()>>,
    dist: Option<DistGuard>,
    map: Map,
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
        let guard = lock.queue.clone().lock_owned().await;
        let mut out = KeyGuard {
            key,
            lock,
            guard: Some(guard),
            dist: None,
            map: self.map.clone(),
        };
        if let Some(d) = &self.dist {
            let g = d.lock(&out.key).await?;
            *out.lock.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some(g.lease().clone());
            out.dist = Some(g);
        }
        Ok(out)
    }

    /// `Err(LockLost)` when `key`'s lock is held in this process by a holder whose
    /// distributed lock was lost; `Ok` otherwise (held and kept, or a single node). For a
    /// commit made under a lock its caller took.
    pub fn ensure_held(&self, key: &str) -> Result<(), StoreError> {
        let entry = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        let lease = entry.and_then(|e| e.lease.lock().unwrap_or_else(|p| p.into_inner()).clone());
        match lease {
            Some(l) if !l.is_held() => Err(StoreError::LockLost {
                resource: key.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Number of keys with a live lock entry (for tests: entries are reclaimed).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KeyGuard {
    /// `Err(LockLost)` once this key's distributed lock is no longer held (never on a
    /// single node): what the holder checks right before it commits.
    pub fn ensure_held(&self) -> Result<(), StoreError> {
        match &self.dist {
            Some(d) => d.ensure_held(),
            None => Ok(()),
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        // The distributed lock goes first (its release is sent in the background).
        self.lock
            .lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
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
