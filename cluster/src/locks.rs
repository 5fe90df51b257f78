//! Per-key write locks inside this process (`KeyLocks`): the commit of a write, its
//! precondition check and its undo happen under the key's lock, so two writers of one key
//! never interleave. Drive-independent; the multi-node issue replaces it with distributed
//! locks. Never held across a client's body upload, only around a commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct KeyLocks {
    map: Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>,
}

/// Holds one key's lock until dropped.
#[derive(Debug)]
pub struct KeyGuard {
    key: String,
    lock: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>,
}

impl KeyLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for and takes the lock of `key`.
    pub async fn lock(&self, key: String) -> KeyGuard {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyGuard {
            key,
            lock,
            guard: Some(guard),
            map: self.map.clone(),
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

impl Drop for KeyGuard {
    fn drop(&mut self) {
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
        let g = locks.lock("a".into()).await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.lock("a".into()).await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        let _other = locks.lock("b".into()).await;
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("waiter got the lock")
            .expect("waiter ran");
        drop(_other);
        assert!(locks.is_empty());
    }
}
