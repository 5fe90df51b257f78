//! Liveness of the peer nodes behind remote drives: one shared state per node (base URL),
//! because the drives of one node fail together. A call that fails with a transport-class
//! error (connection refused, reset, timeout) marks the node offline; while it is offline
//! every call to any of its drives fails at once with `DriveError::Offline` (no network,
//! no per-request timeout), and one background task probes the node with jittered
//! exponential backoff until it answers, then marks it online again. Application errors
//! (NotFound, Corrupt, ...) never change the state. This module only keeps and changes the
//! state; it must never retry a caller's call or decide quorum.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::DriveError;

/// The first wait before probing an offline node.
pub const PROBE_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between probes.
pub const PROBE_MAX: Duration = Duration::from_secs(5);

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

/// See the module docs. Shared by every remote drive of one node in this process.
#[derive(Debug)]
pub struct NodeLiveness {
    base: String,
    state: Mutex<NodeState>,
    /// Bumped at every online → offline transition; a probe task of an older spell stops.
    epoch: AtomicU64,
}

fn registry() -> &'static Mutex<HashMap<String, Weak<NodeLiveness>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<NodeLiveness>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Whether an error means the node itself did not answer (as opposed to a drive error the
/// node sent back). The RPC client reports both as `Offline`; its own transport failures
/// carry the messages matched here.
pub(crate) fn is_transport_error(e: &DriveError) -> bool {
    const MARKS: [&str; 7] = [
        "no answer within",
        "no response data for",
        "response failed",
        "legacy::Error(",
        "upload stalled",
        "the upload ended before",
        "JoinError",
    ];
    match e {
        DriveError::Offline(m) => MARKS.iter().any(|k| m.contains(k)),
        _ => false,
    }
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
        let l = Arc::new(NodeLiveness {
            base: base.to_owned(),
            state: Mutex::new(NodeState::Online),
            epoch: AtomicU64::new(0),
        });
        map.insert(base.to_owned(), Arc::downgrade(&l));
        l
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

    /// Records the outcome of a call: a transport-class error marks the node offline and
    /// starts the probe task (`probe` is only called then).
    pub(crate) fn observe<T>(
        self: &Arc<Self>,
        r: &Result<T, DriveError>,
        probe: impl FnOnce() -> Probe,
    ) {
        if let Err(e) = r {
            if is_transport_error(e) {
                self.mark_offline(e, probe());
            }
        }
    }

    fn mark_offline(self: &Arc<Self>, why: &DriveError, probe: Probe) {
        let now = Instant::now();
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if *s != NodeState::Online {
                return;
            }
            *s = NodeState::Offline {
                since: now,
                next_probe: now + PROBE_FIRST,
            };
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
            let mut wait = PROBE_FIRST;
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
                wait = (wait * 2).min(PROBE_MAX);
            }
        });
    }

    /// Records that the node answered (a probe made outside the background task).
    pub(crate) fn set_online(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let NodeState::Offline { since, .. } = *s {
            *s = NodeState::Online;
            drop(s);
            tracing::info!(node = %self.base, offline_for = ?since.elapsed(), "peer node answers again; marked online");
        }
    }
}
