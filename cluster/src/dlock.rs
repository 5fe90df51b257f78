//! Distributed per-key write locks: a lock is held when a majority of the deployment's nodes
//! (the distinct `host:port`s of the endpoint list) granted it. Each node keeps a
//! [`LockTable`] of leases (served to peers over internode RPC, used in-process by its own
//! store); a holder ([`DistLocker::lock`]) asks every node, keeps the lock when a majority
//! granted within the request timeout, otherwise gives back what it got and retries with
//! jittered backoff until its deadline; while the [`DistGuard`] lives it refreshes the lease,
//! and dropping it releases the lock (best effort, in the background). A holder that dies
//! stops refreshing, so its lease expires and the key is never blocked longer than the lease.
//! Every acquisition has its own uuid, so a late release or refresh from an old holder never
//! touches a newer one. This module must never read or write drives, nor decide data quorum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::rpc::RpcClient;
use crate::StoreError;

/// Lease and retry timing of distributed locks.
#[derive(Clone, Debug)]
pub struct LockConfig {
    /// How long a grant lives on a node without a refresh.
    pub lease: Duration,
    /// How often a holder refreshes its lease (well under `lease`).
    pub refresh: Duration,
    /// How long `lock` keeps retrying before it gives up.
    pub acquire_timeout: Duration,
    /// How long one round of grant requests may take.
    pub request_timeout: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            lease: Duration::from_secs(30),
            refresh: Duration::from_secs(10),
            // Longer than a lease: a writer waiting on a dead holder's key gets it.
            acquire_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// One node's table of granted leases: resource -> (lock id, expiry).
#[derive(Debug, Default)]
pub struct LockTable {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

/// Expired entries are swept once the table holds this many.
const SWEEP_AT: usize = 1024;

impl LockTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants `resource` to `uid` for `lease` if it is free, expired, or already `uid`'s.
    pub fn grant(&self, resource: &str, uid: &str, lease: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, exp)| *exp > now);
        }
        match map.get(resource) {
            Some((holder, exp)) if holder != uid && *exp > now => false,
            _ => {
                map.insert(resource.to_owned(), (uid.to_owned(), now + lease));
                true
            }
        }
    }

    /// Extends `uid`'s lease; false when `uid` no longer holds it here (expired and taken,
    /// or never granted) — a refresh never takes a lock it lost.
    pub fn refresh(&self, resource: &str, uid: &str, lease: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(resource) {
            Some((holder, exp)) if holder == uid => {
                *exp = now + lease;
                true
            }
            _ => false,
        }
    }

    /// Frees `resource` if `uid` holds it; anyone else's grant is left alone.
    pub fn release(&self, resource: &str, uid: &str) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(resource).is_some_and(|(holder, _)| holder == uid) {
            map.remove(resource);
            true
        } else {
            false
        }
    }

    /// Live (unexpired) grants, for tests and diagnostics.
    pub fn held(&self) -> usize {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|(_, exp)| *exp > now).count()
    }
}

/// Consecutive rounds without a reachable majority after which `lock` gives up early.
const UNREACHABLE_ROUNDS: u32 = 3;

/// What a lock request asks of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOp {
    Grant,
    Refresh,
    Release,
}

/// One node's lock table as a holder reaches it.
#[derive(Clone, Debug)]
pub enum LockNode {
    /// This node's own table, in-process.
    Local(Arc<LockTable>),
    /// A peer, at `http://host:port`.
    Remote { base: String, client: RpcClient },
}

impl LockNode {
    /// Whether the node said yes; an unreachable node says no.
    async fn ask(&self, op: LockOp, resource: &str, uid: &str, lease: Duration) -> bool {
        self.answer(op, resource, uid, lease).await.unwrap_or(false)
    }

    /// The node's answer, or `None` when it could not be reached.
    async fn answer(&self, op: LockOp, resource: &str, uid: &str, lease: Duration) -> Option<bool> {
        match self {
            LockNode::Local(t) => Some(match op {
                LockOp::Grant => t.grant(resource, uid, lease),
                LockOp::Refresh => t.refresh(resource, uid, lease),
                LockOp::Release => t.release(resource, uid),
            }),
            LockNode::Remote { base, client } => {
                match client.lock_call(base, op, resource, uid, lease).await {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::debug!(node = %base, ?op, resource, error = %e, "lock request failed");
                        None
                    }
                }
            }
        }
    }
}

/// A release in flight: its number, and a channel closed when it is done.
type PendingRelease = (u64, tokio::sync::watch::Receiver<()>);

/// Takes locks on a majority of `nodes`. See the module docs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DistLocker {
    nodes: Arc<Vec<LockNode>>,
    cfg: LockConfig,
    /// Releases still in flight to peers, per resource: (their number, closed when done).
    /// A new `lock` of the resource waits for them instead of colliding with them.
    pending: Arc<Mutex<HashMap<String, PendingRelease>>>,
    next_release: Arc<std::sync::atomic::AtomicU64>,
}

/// Holds a distributed lock: refreshed while it lives, released when dropped.
#[derive(Debug)]
pub struct DistGuard {
    locker: DistLocker,
    resource: String,
    uid: String,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl DistLocker {
    pub fn new(nodes: Vec<LockNode>, cfg: LockConfig) -> Self {
        DistLocker {
            nodes: Arc::new(nodes),
            cfg,
            pending: Arc::default(),
            next_release: Arc::default(),
        }
    }

    /// Grants needed: a strict majority of the nodes.
    pub fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// Which nodes said yes to `op`, each within the request timeout.
    async fn round(&self, op: LockOp, resource: &str, uid: &str) -> Vec<bool> {
        let answers = self.answers(op, resource, uid).await;
        answers.into_iter().map(|a| a == Some(true)).collect()
    }

    /// Each node's answer to `op` within the request timeout; `None` when unreachable.
    async fn answers(&self, op: LockOp, resource: &str, uid: &str) -> Vec<Option<bool>> {
        let limit = self.cfg.request_timeout;
        let lease = self.cfg.lease;
        join_all(self.nodes.iter().map(|n| async move {
            tokio::time::timeout(limit, n.answer(op, resource, uid, lease))
                .await
                .unwrap_or(None)
        }))
        .await
    }

    /// Releases `uid` on the nodes flagged in `on` (all when `None`): this node's own table
    /// at once (so the next local writer finds it free), the peers in the background.
    fn release_in_background(&self, resource: &str, uid: &str, on: Option<Vec<bool>>) {
        let wanted = |i: usize| on.as_ref().is_none_or(|on| on[i]);
        for (i, n) in self.nodes.iter().enumerate() {
            if let (LockNode::Local(t), true) = (n, wanted(i)) {
                t.release(resource, uid);
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let remote: Vec<LockNode> = (self.nodes.iter().enumerate())
            .filter(|(i, n)| matches!(n, LockNode::Remote { .. }) && wanted(*i))
            .map(|(_, n)| n.clone())
            .collect();
        if remote.is_empty() {
            return;
        }
        let (resource, uid) = (resource.to_owned(), uid.to_owned());
        let (lease, limit) = (self.cfg.lease, self.cfg.request_timeout);
        let number = self
            .next_release
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, rx) = tokio::sync::watch::channel(());
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(resource.clone(), (number, rx));
        let pending = self.pending.clone();
        rt.spawn(async move {
            join_all(remote.iter().map(|n| {
                let (resource, uid) = (resource.as_str(), uid.as_str());
                async move {
                    let _ =
                        tokio::time::timeout(limit, n.ask(LockOp::Release, resource, uid, lease))
                            .await;
                }
            }))
            .await;
            let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
            if p.get(&resource).is_some_and(|(n, _)| *n == number) {
                p.remove(&resource);
            }
            drop(done);
        });
    }

    /// Waits (at most a request timeout) for this node's own releases of `resource` that
    /// are still on their way to the peers.
    async fn settle(&self, resource: &str) {
        let rx = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(resource)
            .map(|(_, rx)| rx.clone());
        if let Some(mut rx) = rx {
            // `changed` fails once the release task drops its sender.
            let _ = tokio::time::timeout(self.cfg.request_timeout, rx.changed()).await;
        }
    }

    /// Waits for `resource`'s lock on a majority of the nodes, until the acquire timeout
    /// (then `WriteQuorum` with the most grants seen, so the client is told to slow down).
    pub async fn lock(&self, resource: &str) -> Result<DistGuard, StoreError> {
        let deadline = tokio::time::Instant::now() + self.cfg.acquire_timeout;
        let need = self.quorum();
        let mut best = 0;
        let mut backoff = Duration::from_millis(5);
        // Rounds in a row in which fewer than a majority of the nodes could be reached at
        // all: then no wait can succeed until nodes come back, so the writer is told at once
        // (the client retries after SlowDown) instead of after the whole acquire timeout.
        let mut out_of_reach = 0;
        loop {
            self.settle(resource).await;
            let uid = uuid::Uuid::new_v4().to_string();
            let answers = self.answers(LockOp::Grant, resource, &uid).await;
            let granted: Vec<bool> = answers.iter().map(|a| *a == Some(true)).collect();
            let ok = granted.iter().filter(|g| **g).count();
            if ok >= need {
                return Ok(self.guard(resource, uid));
            }
            best = best.max(ok);
            if ok > 0 {
                self.release_in_background(resource, &uid, Some(granted));
            }
            let reachable = answers.iter().filter(|a| a.is_some()).count();
            out_of_reach = if reachable < need {
                out_of_reach + 1
            } else {
                0
            };
            let now = tokio::time::Instant::now();
            if now >= deadline || out_of_reach >= UNREACHABLE_ROUNDS {
                tracing::warn!(
                    resource,
                    granted = best,
                    need,
                    "lock timeout: no majority of nodes granted the lock in time"
                );
                return Err(StoreError::WriteQuorum { ok: best, need });
            }
            // Full jitter: contenders spread out instead of colliding again.
            let jitter = Duration::from_micros(rand_below(backoff.as_micros() as u64 + 1));
            tokio::time::sleep((backoff / 2 + jitter).min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_millis(250));
        }
    }

    fn guard(&self, resource: &str, uid: String) -> DistGuard {
        let me = self.clone();
        let (res, id) = (resource.to_owned(), uid.clone());
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.refresh);
            tick.tick().await;
            loop {
                tick.tick().await;
                let ok = me
                    .round(LockOp::Refresh, &res, &id)
                    .await
                    .iter()
                    .filter(|g| **g)
                    .count();
                if ok < me.quorum() {
                    tracing::warn!(resource = %res, refreshed = ok, need = me.quorum(), "lock lease refresh reached no majority");
                }
            }
        });
        DistGuard {
            locker: self.clone(),
            resource: resource.to_owned(),
            uid,
            refresher: Some(refresher),
        }
    }
}

impl DistGuard {
    /// Stops refreshing and never releases: what a crashed holder leaves behind (its lease
    /// runs out on every node). For tests and drills.
    pub fn abandon(mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        self.uid.clear();
    }

    /// This acquisition's unique id.
    pub fn id(&self) -> &str {
        &self.uid
    }
}

impl Drop for DistGuard {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        if !self.uid.is_empty() {
            self.locker
                .release_in_background(&self.resource, &self.uid, None);
        }
    }
}

/// A number in `0..n` from a fresh uuid's randomness (no extra dependency).
fn rand_below(n: u64) -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().1 % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_grants_one_holder_until_release_or_expiry() {
        let t = LockTable::new();
        let lease = Duration::from_millis(150);
        assert!(t.grant("k", "a", lease));
        assert!(!t.grant("k", "b", lease), "held by a");
        assert!(t.grant("k", "a", lease), "a's own grant is renewed");
        assert!(!t.refresh("k", "b", lease), "b holds nothing to refresh");
        assert!(!t.release("k", "b"), "b cannot free a's lock");
        assert!(t.release("k", "a"));
        assert!(t.grant("k", "b", lease), "free again");
        std::thread::sleep(lease + Duration::from_millis(50));
        assert_eq!(t.held(), 0, "expired");
        assert!(!t.refresh("k", "c", lease));
        assert!(t.grant("k", "c", lease), "an expired grant is taken over");
        assert!(!t.refresh("k", "b", lease), "b lost it for good");
        assert!(!t.release("k", "b"), "a late release frees nothing");
        assert_eq!(t.held(), 1);
    }

    #[tokio::test]
    async fn a_single_node_locker_is_its_own_majority() {
        let t = Arc::new(LockTable::new());
        let cfg = LockConfig {
            acquire_timeout: Duration::from_millis(200),
            ..LockConfig::default()
        };
        let l = DistLocker::new(vec![LockNode::Local(t.clone())], cfg);
        let g = l.lock("k").await.expect("locked");
        assert!(matches!(
            l.lock("k").await,
            Err(StoreError::WriteQuorum { ok: 0, need: 1 })
        ));
        drop(g);
        assert_eq!(t.held(), 0, "the local grant is released at once");
        let _g = l.lock("k").await.expect("locked again");
    }
}
