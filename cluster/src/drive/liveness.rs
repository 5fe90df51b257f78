//! Liveness of the peer nodes behind remote drives: one shared state per node (base URL),
//! because the drives of one node fail together. A call that fails with a transport error
//! (`RpcError::Transport`: connection refused, reset, timeout) marks the node offline, and so
//! does the heartbeat: while a node is online, one background task per node probes it every
//! probe interval ([`probe_max`]) under a short limit ([`heartbeat_timeout`]), and
//! [`HEARTBEAT_FAILURES`] unanswered probes in a row mark it offline (a frozen node is found
//! within a few intervals, not after a call's own timeout); a probe counts as answered when
//! the node answered any call meanwhile, so a slow but answering node never flaps. Going offline also fails every call still in flight to the node at once
//! (`NodeLiveness::went_offline`, raced against each call by the RPC client). While it is
//! offline every call to any of its drives fails at once with `DriveError::Offline` (no
//! network, no per-request timeout), and one background task probes the node with jittered
//! exponential backoff until it answers, then marks it online again. Application errors
//! (NotFound, Corrupt, ...) never change the state. Every transition is announced as a
//! [`NodeEvent`] to the subscribers of each [`Liveness`] (one per store) that includes the
//! node. This module only keeps, changes and announces the state; it must never retry a
//! caller's call or decide quorum.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use crate::dlock::LockOp;
use crate::rpc::client::RpcError;
use crate::rpc::RpcClient;
use crate::DriveError;

/// The first wait before probing an offline node.
pub const PROBE_FIRST: Duration = Duration::from_millis(250);
/// The heartbeat interval of an online node and the longest wait between probes of an
/// offline one, unless [`set_probe_max`] changed it. 2 s finds a frozen node within about
/// 2 s + 2 × 3 s (two unanswered probes), at one tiny call per peer node every 2 s.
pub const PROBE_MAX: Duration = Duration::from_secs(2);

static PROBE_MAX_MS: AtomicU64 = AtomicU64::new(PROBE_MAX.as_millis() as u64);

/// Sets the longest wait between probes of an offline node, for this whole process (the
/// server's `TESSERA_PROBE_INTERVAL_MS`). Probing starts at [`PROBE_FIRST`] (or `max`, if
/// shorter) and doubles up to it.
pub fn set_probe_max(max: Duration) {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    PROBE_MAX_MS.store(ms, Ordering::Relaxed);
}

/// The current longest wait between probes (see [`set_probe_max`]).
pub fn probe_max() -> Duration {
    Duration::from_millis(PROBE_MAX_MS.load(Ordering::Relaxed))
}

/// Heartbeat probes in a row that must go unanswered before an online node is marked
/// offline (one late answer under load is not enough).
pub const HEARTBEAT_FAILURES: u32 = 2;

/// How long one heartbeat probe may take: one and a half probe intervals, at least 1 s (far
/// above an answering node's latency, even on a loaded machine) and at most 3 s.
pub fn heartbeat_timeout(interval: Duration) -> Duration {
    (interval * 3 / 2).clamp(Duration::from_secs(1), Duration::from_secs(3))
}

/// A probe: resolves to `true` when the node answered (with anything at all).
pub(crate) type Probe = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What is known of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Offline {
        /// When it was marked offline.
        since: Instant,
        /// When the next probe is due.
        next_probe: Instant,
    },
}

/// A change of a peer node's reachability as this process sees it. The payload is the
/// node's `host:port` exactly as the endpoint list names it (`127.0.0.2:9000`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeEvent {
    /// A call found the node silent or refusing: its drives now fail at once with `Offline`
    /// and writes to them are missed until it returns.
    Offline(String),
    /// The node answers again (a probe, or a health check's info call, saw it): what it
    /// missed while offline should be healed now.
    Online(String),
}

impl NodeEvent {
    /// The node (`host:port`) the event is about.
    pub fn node(&self) -> &str {
        match self {
            NodeEvent::Offline(n) | NodeEvent::Online(n) => n,
        }
    }
}

/// Events buffered per subscriber; a subscriber that falls further behind gets
/// `RecvError::Lagged` and should treat every node as possibly changed.
pub const EVENT_BUFFER: usize = 256;

/// See the module docs. Shared by every remote drive of one node in this process.
#[derive(Debug)]
pub struct NodeLiveness {
    base: String,
    /// `host:port`, the name events carry.
    name: String,
    state: Mutex<NodeState>,
    /// Bumped at every online → offline transition; a probe task of an older spell stops.
    epoch: AtomicU64,
    /// The event channels of every [`Liveness`] that includes this node (dropped ones are
    /// pruned when the next event is sent).
    listeners: Mutex<Vec<Weak<broadcast::Sender<NodeEvent>>>>,
    /// Bumped (with `epoch`) at every online → offline transition: calls in flight watch it.
    offline_at: watch::Sender<u64>,
    /// Whether the heartbeat task was started.
    heartbeat: std::sync::atomic::AtomicBool,
    /// When the node last answered a call (any answer it sent itself), in [`clock_ms`].
    last_answer: AtomicU64,
}

/// Milliseconds since this process first asked (a monotonic clock for atomics).
fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One store's view of the liveness of its peer nodes: their states, and a subscription
/// to their transitions ([`Liveness::subscribe`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Liveness {
    nodes: Arc<Vec<Arc<NodeLiveness>>>,
    events: Arc<broadcast::Sender<NodeEvent>>,
}

impl Liveness {
    /// A view over `nodes` (duplicates are kept once). Transitions of any of them after
    /// this call reach this view's subscribers.
    pub fn new(nodes: Vec<Arc<NodeLiveness>>) -> Liveness {
        let mut unique: Vec<Arc<NodeLiveness>> = Vec::new();
        for n in nodes {
            if !unique.iter().any(|u| Arc::ptr_eq(u, &n)) {
                unique.push(n);
            }
        }
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        let events = Arc::new(tx);
        for n in &unique {
            n.listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::downgrade(&events));
        }
        Liveness {
            nodes: Arc::new(unique),
            events,
        }
    }

    /// Every transition (offline, online) of a peer node from now on, in the order they
    /// happen per node. A single node (no peers) never sends anything. A receiver that
    /// lags more than [`EVENT_BUFFER`] events behind gets `Lagged` and should rescan.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// `(host:port, state)` of every peer node, in endpoint order.
    pub fn nodes(&self) -> Vec<(String, NodeState)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.state()))
            .collect()
    }

    /// Whether the peer `node` (`host:port`) is believed reachable; `None` when it is not
    /// a peer of this store (this node itself, or unknown).
    pub fn is_online(&self, node: &str) -> Option<bool> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.is_online())
    }

    /// The shared state of the peer `node` (`host:port`), if it is one.
    pub fn node(&self, node: &str) -> Option<Arc<NodeLiveness>> {
        self.nodes.iter().find(|n| n.name == node).cloned()
    }
}

fn registry() -> &'static Mutex<HashMap<String, Weak<NodeLiveness>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<NodeLiveness>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A probe of the node at `base` through `client` that needs no drive: a release of a lock
/// nobody holds, within `limit`. Any answer the node itself sent (even an error) counts as
/// alive.
pub(crate) fn node_probe(base: &str, client: &RpcClient, limit: Duration) -> Probe {
    let (base, client) = (base.to_owned(), client.clone());
    Box::new(move || {
        let (base, client) = (base.clone(), client.clone());
        Box::pin(async move {
            let call = client.lock_call(&base, LockOp::Release, "\0probe", "\0probe", limit);
            match tokio::time::timeout(limit, call).await {
                Err(_) => false,
                Ok(r) => r.map_or_else(|e| !e.is_transport(), |_| true),
            }
        })
    })
}

/// Jittered backoff: `d` scaled by a random factor in [0.75, 1.25).
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh random hasher key per call is enough randomness to spread probes.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(0.75 + unit * 0.5)
}

impl NodeLiveness {
    /// The shared state of the node at `base` (`http://host:port`), created online.
    pub fn for_node(base: &str) -> Arc<NodeLiveness> {
        let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(base).and_then(Weak::upgrade) {
            return l;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let name = base.split_once("://").map_or(base, |(_, rest)| rest);
        let l = Arc::new(NodeLiveness {
            base: base.to_owned(),
            name: name.trim_end_matches('/').to_owned(),
            state: Mutex::new(NodeState::Online),
            epoch: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            offline_at: watch::Sender::new(0),
            heartbeat: std::sync::atomic::AtomicBool::new(false),
            last_answer: AtomicU64::new(0),
        });
        map.insert(base.to_owned(), Arc::downgrade(&l));
        l
    }

    /// The node's `host:port`, as events name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `event` to every live subscriber view; forgets views that are gone.
    fn announce(&self, event: NodeEvent) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|w| match w.upgrade() {
            Some(tx) => {
                // No receiver yet is not an error: nobody is listening.
                let _ = tx.send(event.clone());
                true
            }
            None => false,
        });
    }

    pub fn state(&self) -> NodeState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_online(&self) -> bool {
        self.state() == NodeState::Online
    }

    /// `Err(Offline)` at once while the node is offline.
    pub(crate) fn check(&self, endpoint: &str) -> Result<(), DriveError> {
        match self.state() {
            NodeState::Online => Ok(()),
            NodeState::Offline { since, .. } => Err(DriveError::Offline(format!(
                "{endpoint}: node {} marked offline {:?} ago (probing)",
                self.base,
                since.elapsed()
            ))),
        }
    }

    /// Resolves when this node is next marked offline (a transition after this call; never,
    /// while it stays online). The RPC client races every call against it, so a call to a
    /// node that froze fails as soon as the node is found out, not at its own timeout.
    pub(crate) fn went_offline(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.offline_at.subscribe();
        async move {
            if rx.changed().await.is_err() {
                // The node's state is gone (nobody can mark it offline any more).
                std::future::pending::<()>().await;
            }
        }
    }

    /// Records that the node answered a call (success or an error it sent itself).
    pub(crate) fn answered(&self) {
        self.last_answer.fetch_max(clock_ms(), Ordering::Relaxed);
    }

    /// Starts this node's heartbeat (once per node and process; needs a tokio runtime):
    /// while the node is online, a lock-table call nobody holds a lock for goes to it every
    /// probe interval, and [`HEARTBEAT_FAILURES`] unanswered ones in a row (each within
    /// [`heartbeat_timeout`], and no other call answered meanwhile) mark it offline. Any
    /// answer at all counts as alive.
    pub(crate) fn ensure_heartbeat(self: &Arc<Self>, client: &RpcClient) {
        if self.heartbeat.load(Ordering::Relaxed) || self.heartbeat.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.heartbeat.store(false, Ordering::SeqCst);
            return;
        };
        // Each probe is bounded by the heartbeat's limit (the probe interval may change).
        let probe: Arc<Probe> = Arc::new(node_probe(&self.base, client, Duration::MAX));
        let weak = Arc::downgrade(self);
        rt.spawn(async move {
            let mut failures = 0u32;
            loop {
                let interval = probe_max();
                if failures == 0 {
                    tokio::time::sleep(jitter(interval)).await;
                }
                let epoch = match weak.upgrade() {
                    None => return,
                    // The backoff prober owns an offline node.
                    Some(l) if !l.is_online() => {
                        failures = 0;
                        continue;
                    }
                    Some(l) => l.epoch.load(Ordering::SeqCst),
                };
                let limit = heartbeat_timeout(interval);
                let started = clock_ms();
                let answered = tokio::time::timeout(limit, probe()).await.unwrap_or(false);
                let Some(l) = weak.upgrade() else { return };
                // A node that answered any call meanwhile is alive, however late the probe.
                let answered = answered || l.last_answer.load(Ordering::Relaxed) >= started;
                if answered || !l.is_online() || l.epoch.load(Ordering::SeqCst) != epoch {
                    failures = 0;
                    continue;
                }
                failures += 1;
                if failures >= HEARTBEAT_FAILURES {
                    failures = 0;
                    let why = RpcError::Transport(format!(
                        "{}: no answer to {HEARTBEAT_FAILURES} liveness probes in a row ({limit:?} each)",
                        l.base
                    ));
                    let p = probe.clone();
                    l.mark_offline(
                        &why,
                        Box::new(move || {
                            let answered = p();
                            Box::pin(async move {
                                let limit = heartbeat_timeout(probe_max());
                                tokio::time::timeout(limit, answered).await.unwrap_or(false)
                            })
                        }),
                    );
                }
            }
        });
    }

    /// Records the outcome of a call: a transport-class error marks the node offline and
    /// starts the probe task (`probe` is only called then).
    pub(crate) fn observe<T>(
        self: &Arc<Self>,
        r: &Result<T, RpcError>,
        probe: impl FnOnce() -> Probe,
    ) {
        if let Err(e) = r {
            if e.is_transport() {
                self.mark_offline(e, probe());
            }
        }
    }

    fn mark_offline(self: &Arc<Self>, why: &RpcError, probe: Probe) {
        let now = Instant::now();
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if *s != NodeState::Online {
                return;
            }
            *s = NodeState::Offline {
                since: now,
                next_probe: now + PROBE_FIRST.min(probe_max()),
            };
            // Announced under the state lock, so events of one node keep their order.
            self.announce(NodeEvent::Offline(self.name.clone()));
            // Calls in flight to the node give up now.
            self.offline_at.send_modify(|n| *n += 1);
        }
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::warn!(node = %self.base, error = %why, "peer node marked offline; probing with backoff");
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime to probe from: come back online on the next call instead.
            self.set_online();
            return;
        };
        let weak = Arc::downgrade(self);
        rt.spawn(async move {
            let mut wait = PROBE_FIRST.min(probe_max());
            loop {
                let pause = jitter(wait);
                match weak.upgrade() {
                    Some(l) if l.epoch.load(Ordering::SeqCst) == epoch => {
                        let mut s = l.state.lock().unwrap_or_else(|p| p.into_inner());
                        if let NodeState::Offline { since, .. } = *s {
                            *s = NodeState::Offline {
                                since,
                                next_probe: Instant::now() + pause,
                            };
                        }
                    }
                    _ => return,
                }
                tokio::time::sleep(pause).await;
                if weak.strong_count() == 0 {
                    return;
                }
                if probe().await {
                    if let Some(l) = weak.upgrade() {
                        l.set_online();
                    }
                    return;
                }
                wait = (wait * 2).min(probe_max());
            }
        });
    }

    /// Records that the node answered (a probe made outside the background task).
    pub(crate) fn set_online(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let NodeState::Offline { since, .. } = *s {
            *s = NodeState::Online;
            self.announce(NodeEvent::Online(self.name.clone()));
            drop(s);
            tracing::info!(node = %self.base, offline_for = ?since.elapsed(), "peer node answers again; marked online");
        }
    }
}
