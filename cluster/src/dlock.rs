//! Distributed per-key write locks: a lock is held when a majority of the deployment's nodes
//! (the distinct `host:port`s of the endpoint list) granted it. Each node keeps a
//! [`LockTable`] of leases (served to peers over internode RPC, used in-process by its own
//! store); a holder ([`DistLocker::lock`]) asks a majority of the nodes it believes reachable
//! (its own table and the peers the key prefers; a node that liveness marked offline is
//! skipped without a request, see [`crate::drive::liveness`]), and the others too once one of
//! those says no, fails, or is slow (`HEDGE`); it keeps the lock as soon as a majority
//! granted (a silent node never delays it for long), otherwise
//! gives back what it got and retries with jittered backoff until its deadline
//! ([`StoreError::LockTimeout`]); a grant that arrives after its round was decided is given
//! back with the round's others, or on arrival when they are already given back. While the
//! [`DistGuard`] lives it refreshes the lease, and dropping it releases the lock on the nodes
//! its round asked (best effort: at once in its own table; to a peer riding on the next
//! request this node sends there, or on its own a few milliseconds later, so a write costs
//! no release round). The guard knows whether
//! its lease is still held ([`Lease`]): it is lost for good when a refresh reaches no
//! majority, or when the time a majority last confirmed it (grant or refresh, counted from
//! when that round was sent) plus nine tenths of the lease has passed; a holder must check
//! it right before it commits (fencing: a writer that lost its lock never commits). A holder that dies stops
//! refreshing, so its lease expires and the key is never blocked longer than the lease.
//! Every acquisition has its own uuid, so a late release or refresh from an old holder never
//! touches a newer one. This module must never read or write drives, nor decide data quorum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt as _};

use crate::drive::liveness::{node_probe, NodeLiveness};
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

/// A lock node with the liveness state it shares with that node's drives (`None` for this
/// node's own table).
#[derive(Clone, Debug)]
struct Voter {
    node: LockNode,
    live: Option<Arc<NodeLiveness>>,
}

impl Voter {
    fn new(node: LockNode) -> Voter {
        let live = match &node {
            LockNode::Local(_) => None,
            LockNode::Remote { base, .. } => Some(NodeLiveness::for_node(base)),
        };
        Voter { node, live }
    }

    /// Where this node comes in the order a grant round asks the nodes for `resource`: this
    /// node's own table first, then the peers by a hash of the resource and the peer.
    fn preference(&self, resource: &str) -> (bool, u64) {
        use std::hash::{Hash, Hasher};
        match &self.node {
            LockNode::Local(_) => (false, 0),
            LockNode::Remote { base, .. } => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (resource, base.as_str()).hash(&mut h);
                (true, h.finish())
            }
        }
    }

    /// Whether liveness knows the node to be unreachable right now (then it is not asked).
    fn known_offline(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.is_online())
    }

    /// Whether the node said yes; an unreachable node says no.
    async fn ask(&self, op: LockOp, resource: &str, uid: &str, lease: Duration) -> bool {
        self.answer(op, resource, uid, lease).await.unwrap_or(false)
    }

    /// The node's answer, or `None` when it could not be reached (or is known offline). A
    /// transport failure marks the node offline for every user of its liveness.
    async fn answer(&self, op: LockOp, resource: &str, uid: &str, lease: Duration) -> Option<bool> {
        match &self.node {
            LockNode::Local(t) => Some(match op {
                LockOp::Grant => t.grant(resource, uid, lease),
                LockOp::Refresh => t.refresh(resource, uid, lease),
                LockOp::Release => t.release(resource, uid),
            }),
            LockNode::Remote { base, client } => {
                if self.known_offline() {
                    return None;
                }
                let r = client.lock_call(base, op, resource, uid, lease).await;
                if let Some(live) = &self.live {
                    live.observe(&r, || {
                        node_probe(base, client, client.timeouts().connect * 2)
                    });
                }
                match r {
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

/// One node's part in a grant round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vote {
    Granted,
    Refused,
    /// Known offline (not asked), or no answer within the request timeout.
    Unreachable,
    /// Still in flight when the round was decided (see [`LateGrants`]).
    Undecided,
    /// Not asked: a majority of the others decided the round first.
    NotAsked,
}

/// How long a grant round waits for the majority it asked first before it asks the other
/// nodes too.
const HEDGE: Duration = Duration::from_millis(100);

/// Grants of a round that arrive after the round was decided. Until the round's grants
/// are given back they are recorded (and given back with the others); afterwards each is
/// released as it arrives.
#[derive(Debug, Default)]
struct LateGrants {
    state: Mutex<(bool, Vec<usize>)>,
}

impl LateGrants {
    /// Records a late grant by node `i`; `true` when the round was already given back (the
    /// caller releases it then).
    fn arrived(&self, i: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.0 {
            s.1.push(i);
        }
        s.0
    }

    /// Marks the round given back; returns the late grants recorded so far.
    fn give_back(&self) -> Vec<usize> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = true;
        std::mem::take(&mut s.1)
    }
}

/// What one grant round got, per node.
struct GrantRound {
    votes: Vec<Vote>,
    late: Arc<LateGrants>,
}

/// Takes locks on a majority of `nodes`. See the module docs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DistLocker {
    nodes: Arc<Vec<Voter>>,
    cfg: LockConfig,
}

/// Whether a holder still holds its lock (see the module docs). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Lease {
    inner: Arc<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    /// Past this instant the lease may have run out on the nodes that granted it.
    valid_until: Mutex<Instant>,
    /// Set when a refresh reached no majority; never cleared.
    lost: std::sync::atomic::AtomicBool,
}

impl Lease {
    /// A lease a majority confirmed in a round sent at `sent`.
    fn new(sent: Instant, lease: Duration) -> Lease {
        Lease {
            inner: Arc::new(LeaseState {
                valid_until: Mutex::new(sent + safe_part(lease)),
                lost: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Whether the lock is still held: no refresh failed and the lease has not run out.
    pub fn is_held(&self) -> bool {
        !self.inner.lost.load(std::sync::atomic::Ordering::SeqCst)
            && Instant::now()
                < *self
                    .inner
                    .valid_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
    }

    /// A majority confirmed the lease in a round sent at `sent`.
    fn renewed(&self, sent: Instant, lease: Duration) {
        let mut v = self
            .inner
            .valid_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *v = (*v).max(sent + safe_part(lease));
    }

    fn lose(&self) {
        self.inner
            .lost
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The part of a lease a holder counts on: nine tenths (a margin for timer and clock-rate
/// differences between the nodes).
fn safe_part(lease: Duration) -> Duration {
    lease * 9 / 10
}

/// Holds a distributed lock: refreshed while it lives, released when dropped.
#[derive(Debug)]
pub struct DistGuard {
    lease: Lease,
    locker: DistLocker,
    resource: String,
    uid: String,
    refresher: Option<tokio::task::JoinHandle<()>>,
    /// The acquiring round's grants still in flight (see [`LateGrants`]).
    late: Arc<LateGrants>,
    /// The nodes the acquiring round asked (the only ones a release goes to).
    asked: Vec<bool>,
}

impl DistLocker {
    pub fn new(nodes: Vec<LockNode>, cfg: LockConfig) -> Self {
        DistLocker {
            nodes: Arc::new(nodes.into_iter().map(Voter::new).collect()),
            cfg,
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

    /// Asks a majority of the nodes not known offline for a grant (none when too few are
    /// left to make a majority): this node's own table first, then the peers in an order
    /// the resource decides (rendezvous hashing, so holders of one key prefer the same
    /// peers); the others only once one of those refuses or fails, or after [`HEDGE`]
    /// without a decision. Decides as soon as a majority granted or can no longer grant
    /// (each request bounded by the request timeout). Late answers: see [`LateGrants`].
    async fn grant_round(&self, resource: &str, uid: &str) -> GrantRound {
        let need = self.quorum();
        let late = Arc::new(LateGrants::default());
        let mut votes = vec![Vote::Unreachable; self.nodes.len()];
        let mut first: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].known_offline())
            .collect();
        if first.len() < need {
            return GrantRound { votes, late };
        }
        first.sort_by_cached_key(|&i| self.nodes[i].preference(resource));
        let mut reserve = first.split_off(need);
        for &i in &reserve {
            votes[i] = Vote::NotAsked;
        }
        let (limit, lease) = (self.cfg.request_timeout, self.cfg.lease);
        let ask = |i: usize| {
            let (v, resource, uid) = (self.nodes[i].clone(), resource.to_owned(), uid.to_owned());
            async move {
                let a =
                    tokio::time::timeout(limit, v.answer(LockOp::Grant, &resource, &uid, lease))
                        .await
                        .unwrap_or(None);
                (i, a)
            }
        };
        let mut pending = FuturesUnordered::new();
        for i in first {
            votes[i] = Vote::Undecided;
            pending.push(ask(i));
        }
        let hedge = tokio::time::sleep(HEDGE);
        tokio::pin!(hedge);
        let mut granted = 0;
        while granted < need && granted + pending.len() + reserve.len() >= need {
            let widen = tokio::select! {
                next = pending.next() => {
                    let Some((i, a)) = next else {
                        break;
                    };
                    votes[i] = match a {
                        Some(true) => Vote::Granted,
                        Some(false) => Vote::Refused,
                        None => Vote::Unreachable,
                    };
                    granted += usize::from(a == Some(true));
                    a != Some(true)
                }
                () = &mut hedge, if !reserve.is_empty() => true,
            };
            if widen {
                for i in reserve.drain(..) {
                    votes[i] = Vote::Undecided;
                    pending.push(ask(i));
                }
            }
        }
        if !pending.is_empty() {
            let (nodes, late) = (self.nodes.clone(), late.clone());
            let (resource, uid) = (resource.to_owned(), uid.to_owned());
            // Polled to the end in the background (spawned: it must outlive this call).
            tokio::spawn(async move {
                while let Some((i, a)) = pending.next().await {
                    if a == Some(true) && late.arrived(i) {
                        let release = nodes[i].ask(LockOp::Release, &resource, &uid, lease);
                        let _ = tokio::time::timeout(limit, release).await;
                    }
                }
            });
        }
        GrantRound { votes, late }
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
    /// at once (so the next local writer finds it free); to each peer it rides on the next
    /// request this node sends there, or goes on its own shortly after
    /// ([`RpcClient::defer_release`]). A later grant of the resource to that peer from this
    /// node carries it ahead of itself, so this node's next writer never collides with it.
    fn release_in_background(&self, resource: &str, uid: &str, on: Option<Vec<bool>>) {
        let wanted = |i: usize| on.as_ref().is_none_or(|on| on[i]);
        for (i, v) in self.nodes.iter().enumerate() {
            if !wanted(i) {
                continue;
            }
            match &v.node {
                LockNode::Local(t) => {
                    t.release(resource, uid);
                }
                LockNode::Remote { base, client } => client.defer_release(base, resource, uid),
            }
        }
    }

    /// Waits for `resource`'s lock on a majority of the nodes, until the acquire timeout
    /// (then `LockTimeout` with the most grants seen, so the client is told to slow down).
    /// Gives up early, after a few rounds, when fewer than a majority of the nodes can be
    /// reached at all (known offline, or not answering).
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
            let uid = uuid::Uuid::new_v4().to_string();
            let sent = Instant::now();
            let round = self.grant_round(resource, &uid).await;
            let mut granted: Vec<bool> = round.votes.iter().map(|v| *v == Vote::Granted).collect();
            let ok = granted.iter().filter(|g| **g).count();
            if ok >= need {
                let asked = round.votes.iter().map(|v| *v != Vote::NotAsked).collect();
                return Ok(self.guard(resource, uid, round.late, sent, asked));
            }
            best = best.max(ok);
            for i in round.late.give_back() {
                granted[i] = true;
            }
            if granted.iter().any(|g| *g) {
                self.release_in_background(resource, &uid, Some(granted));
            }
            // A node still deciding answered nothing yet; it is not counted as out of reach.
            let reachable = round
                .votes
                .iter()
                .filter(|v| **v != Vote::Unreachable)
                .count();
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
                return Err(StoreError::LockTimeout {
                    granted: best,
                    need,
                });
            }
            // Full jitter: contenders spread out instead of colliding again.
            let jitter = Duration::from_micros(rand_below(backoff.as_micros() as u64 + 1));
            tokio::time::sleep((backoff / 2 + jitter).min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_millis(250));
        }
    }

    fn guard(
        &self,
        resource: &str,
        uid: String,
        late: Arc<LateGrants>,
        sent: Instant,
        asked: Vec<bool>,
    ) -> DistGuard {
        let me = self.clone();
        let (res, id) = (resource.to_owned(), uid.clone());
        let lease = Lease::new(sent, self.cfg.lease);
        let held = lease.clone();
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.refresh);
            tick.tick().await;
            loop {
                tick.tick().await;
                let sent = Instant::now();
                let ok = me
                    .round(LockOp::Refresh, &res, &id)
                    .await
                    .iter()
                    .filter(|g| **g)
                    .count();
                if ok < me.quorum() {
                    // Lost for good: the holder's commit is refused from now on.
                    held.lose();
                    tracing::warn!(resource = %res, refreshed = ok, need = me.quorum(), "lock lease refresh reached no majority: the lock is lost");
                    return;
                }
                held.renewed(sent, me.cfg.lease);
            }
        });
        DistGuard {
            lease,
            locker: self.clone(),
            resource: resource.to_owned(),
            uid,
            refresher: Some(refresher),
            late,
            asked,
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

    /// Whether the lock is still held (see [`Lease`]).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// `Err(LockLost)` once the lock is no longer held: what a holder checks right before
    /// it commits.
    pub fn ensure_held(&self) -> Result<(), StoreError> {
        if self.lease.is_held() {
            Ok(())
        } else {
            Err(StoreError::LockLost {
                resource: self.resource.clone(),
            })
        }
    }
}

impl Drop for DistGuard {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        if !self.uid.is_empty() {
            // Releases go to every node asked anyway; later late grants release themselves.
            self.late.give_back();
            self.locker
                .release_in_background(&self.resource, &self.uid, Some(self.asked.clone()));
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
            Err(StoreError::LockTimeout {
                granted: 0,
                need: 1
            })
        ));
        drop(g);
        assert_eq!(t.held(), 0, "the local grant is released at once");
        let _g = l.lock("k").await.expect("locked again");
    }
}
