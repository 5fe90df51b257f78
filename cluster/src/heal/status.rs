//! What this node knows of healing, for the admin API: scanner counters, bulk heals in
//! progress (per replaced drive), the state of every drive, and the nodes of the deployment
//! with their reachability as this node sees it ([`crate::Store::nodes`]). Plain counters and
//! snapshots; it must never start or stop healing itself.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

/// Counters of one healing walk (scanner cycle or bulk heal).
#[derive(Debug, Default)]
pub(crate) struct WalkCounters {
    pub objects_scanned: AtomicU64,
    pub objects_healed: AtomicU64,
    pub objects_failed: AtomicU64,
    pub bytes_scanned: AtomicU64,
    pub bytes_healed: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl WalkCounters {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for c in [
            &self.objects_scanned,
            &self.objects_healed,
            &self.objects_failed,
            &self.bytes_scanned,
            &self.bytes_healed,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// The background scanner's state.
#[derive(Debug, Default)]
pub(crate) struct ScannerState {
    pub counters: WalkCounters,
    pub inner: Mutex<ScannerTimes>,
}

#[derive(Debug, Default)]
pub(crate) struct ScannerTimes {
    pub rate: u64,
    pub interval_seconds: u64,
    pub running: bool,
    pub cycles: u64,
    pub cycle_started: Option<SystemTime>,
    pub last_cycle_seconds: Option<f64>,
    pub last_cycle_ended: Option<SystemTime>,
    pub orphans_removed: u64,
    pub sets_scanned_here: Vec<usize>,
}

/// One bulk heal onto a replaced drive.
#[derive(Debug)]
pub(crate) struct BulkJob {
    pub drive: String,
    pub set: usize,
    pub started: SystemTime,
    pub started_at: Instant,
    /// Objects of the set counted before the walk (for the ETA); 0 while counting.
    pub total_objects: AtomicU64,
    /// 0 running, 1 done, 2 failed.
    pub state: AtomicU8,
    pub counters: WalkCounters,
}

/// Everything healing-related the store keeps besides the queue.
#[derive(Debug, Default)]
pub(crate) struct HealState {
    pub scanner: ScannerState,
    pub bulk: Mutex<Vec<Arc<BulkJob>>>,
    /// Wakes the scanner for a cycle now.
    pub scan_now: tokio::sync::Notify,
    /// Local drives (global index) formatted at open while the deployment existed:
    /// bulk-healed once the background work starts.
    pub replaced_at_open: Mutex<Vec<usize>>,
    /// Local drives (global index) refused as an unmounted disk, logged once until cleared
    /// (see [`crate::format::mount`]).
    pub unmounted: Mutex<std::collections::BTreeSet<usize>>,
}

/// Counters of a walk as the admin API shows them.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WalkProgress {
    pub objects_scanned: u64,
    pub objects_healed: u64,
    pub objects_failed: u64,
    pub bytes_scanned: u64,
    pub bytes_healed: u64,
}

impl From<&WalkCounters> for WalkProgress {
    fn from(c: &WalkCounters) -> Self {
        WalkProgress {
            objects_scanned: WalkCounters::get(&c.objects_scanned),
            objects_healed: WalkCounters::get(&c.objects_healed),
            objects_failed: WalkCounters::get(&c.objects_failed),
            bytes_scanned: WalkCounters::get(&c.bytes_scanned),
            bytes_healed: WalkCounters::get(&c.bytes_healed),
        }
    }
}

/// The scanner, as [`crate::Store::heal_status`] reports it. Times are seconds since the
/// Unix epoch.
#[derive(Clone, Debug, Serialize)]
pub struct ScannerStatus {
    /// A cycle is running now.
    pub running: bool,
    /// Cycles completed since the store opened.
    pub cycles: u64,
    /// Counters of the current cycle (or the last one, once it ended).
    #[serde(flatten)]
    pub progress: WalkProgress,
    pub cycle_started_unix: Option<f64>,
    pub last_cycle_seconds: Option<f64>,
    pub last_cycle_ended_unix: Option<f64>,
    /// Orphaned data directories removed since the store opened.
    pub orphans_removed: u64,
    /// The sets this node scans (it owns their first online drive).
    pub sets_scanned_here: Vec<usize>,
    /// Objects per second (0 = unlimited) and seconds between cycles.
    pub rate: u64,
    pub interval_seconds: u64,
}

/// A bulk heal, as [`crate::Store::heal_status`] reports it.
#[derive(Clone, Debug, Serialize)]
pub struct BulkStatus {
    pub drive: String,
    pub set: usize,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    #[serde(flatten)]
    pub progress: WalkProgress,
    pub total_objects: u64,
    pub started_unix: f64,
    pub elapsed_seconds: f64,
    /// From the rate so far; `None` until it can be estimated or once finished.
    pub eta_seconds: Option<u64>,
}

/// One drive, as [`crate::Store::heal_status`] reports it.
#[derive(Clone, Debug, Serialize)]
pub struct DriveStatus {
    pub endpoint: String,
    /// `ok`, `offline`, `healing` (a bulk heal runs onto it), `blank` (no format yet) or
    /// `unmounted` (a blank directory where a disk of its own was mounted: refused, see
    /// [`crate::format::mount`]; this node's drives only).
    pub state: &'static str,
    /// `set/index`.
    pub slot: String,
    /// Served by this node.
    pub local: bool,
}

/// One node of the deployment, as [`crate::Store::nodes`] reports it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeView {
    /// `scheme://host:port` as the endpoint list names the node; `None` for a single node
    /// whose drives are plain paths.
    pub endpoint: Option<String>,
    /// This node itself.
    pub local: bool,
    /// `online` (this node, or a peer that answers) or `offline` (a peer the liveness
    /// probes mark unreachable).
    pub state: &'static str,
    /// How long a peer has been marked offline.
    pub offline_seconds: Option<f64>,
    /// Its drives in the endpoint list.
    pub drives: usize,
}

/// `scheme://host:port` of a drive endpoint URL (`http://h:9000/data1` → `http://h:9000`);
/// `None` for a plain path.
pub fn node_base(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// What this node knows of healing. See the admin API contract.
#[derive(Clone, Debug, Serialize)]
pub struct HealStatus {
    pub scanner: ScannerStatus,
    /// Objects queued (in memory or durably) for healing.
    pub queue_pending: usize,
    pub drives: Vec<DriveStatus>,
    pub bulk: Vec<BulkStatus>,
    /// No object known to miss a shard: queue empty, no bulk heal running, every drive ok.
    pub redundancy_ok: bool,
}

pub(crate) fn unix(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl BulkJob {
    pub fn status(&self) -> BulkStatus {
        let progress = WalkProgress::from(&self.counters);
        let state = match self.state.load(Ordering::Relaxed) {
            0 => "running",
            1 => "done",
            _ => "failed",
        };
        let elapsed = self.started_at.elapsed().as_secs_f64();
        let total = self.total_objects.load(Ordering::Relaxed);
        let eta = (state == "running" && progress.objects_scanned > 0 && total > 0).then(|| {
            let rate = progress.objects_scanned as f64 / elapsed.max(0.001);
            (total.saturating_sub(progress.objects_scanned) as f64 / rate).ceil() as u64
        });
        BulkStatus {
            drive: self.drive.clone(),
            set: self.set,
            state,
            progress,
            total_objects: total,
            started_unix: unix(self.started),
            elapsed_seconds: elapsed,
            eta_seconds: eta,
        }
    }

    pub fn running(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 0
    }
}

impl crate::Store {
    /// What this node knows of healing right now (see [`HealStatus`]).
    pub async fn heal_status(&self) -> HealStatus {
        let heal = &self.inner.heal;
        let scanner = {
            let t = heal.scanner.inner.lock().unwrap_or_else(|p| p.into_inner());
            ScannerStatus {
                running: t.running,
                cycles: t.cycles,
                progress: WalkProgress::from(&heal.scanner.counters),
                cycle_started_unix: t.cycle_started.map(unix),
                last_cycle_seconds: t.last_cycle_seconds,
                last_cycle_ended_unix: t.last_cycle_ended.map(unix),
                orphans_removed: t.orphans_removed,
                sets_scanned_here: t.sets_scanned_here.clone(),
                rate: t.rate,
                interval_seconds: t.interval_seconds,
            }
        };
        let jobs: Vec<Arc<BulkJob>> = heal.bulk.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let bulk: Vec<BulkStatus> = jobs.iter().map(|j| j.status()).collect();
        let per_set = self.inner.layout.drives_per_set;
        let all: Vec<(usize, Arc<dyn crate::drive::Drive>)> = self
            .inner
            .sets
            .iter()
            .flat_map(|s| s.drives.iter().cloned())
            .enumerate()
            .collect();
        let infos = futures::future::join_all(all.iter().map(|(_, d)| d.info())).await;
        let mut drives = Vec::with_capacity(all.len());
        for ((i, d), info) in all.iter().zip(infos) {
            let endpoint = d.endpoint().to_owned();
            let local = self.inner.node.served.get(*i).is_some_and(Option::is_some);
            let healing = jobs.iter().any(|j| j.running() && j.drive == endpoint);
            let state = match info {
                _ if healing => "healing",
                Ok(info) if info.online && info.format.is_some() => "ok",
                _ if local && self.local_drive_blank(*i).await => {
                    if self.drive_unmounted(*i).await {
                        "unmounted"
                    } else {
                        "blank"
                    }
                }
                _ if local => "offline",
                // A peer's drive that answers without a format: its node formats it.
                Ok(info) if info.online => "blank",
                _ => "offline",
            };
            drives.push(DriveStatus {
                endpoint,
                state,
                slot: format!("{}/{}", i / per_set, i % per_set),
                local,
            });
        }
        let queue_pending = self.inner.heal_queue.pending().await;
        let redundancy_ok = queue_pending == 0
            && !bulk.iter().any(|b| b.state == "running")
            && drives.iter().all(|d| d.state == "ok");
        HealStatus {
            scanner,
            queue_pending,
            drives,
            bulk,
            redundancy_ok,
        }
    }

    async fn local_drive_blank(&self, global: usize) -> bool {
        let Some(Some(served)) = self.inner.node.served.get(global) else {
            return false;
        };
        let root = served.root().to_path_buf();
        tokio::task::spawn_blocking(move || {
            matches!(
                crate::drive::LocalDrive::probe(&root),
                crate::format::Probe::Fresh
            )
        })
        .await
        .unwrap_or(false)
    }

    /// Every node of the deployment in endpoint order (first appearance), with its
    /// reachability as this node sees it. Cheap: no drive is asked.
    pub fn nodes(&self) -> Vec<NodeView> {
        let mut out: Vec<NodeView> = Vec::new();
        let served = &self.inner.node.served;
        let drives = self.inner.sets.iter().flat_map(|s| s.drives.iter());
        for (i, d) in drives.enumerate() {
            let base = node_base(d.endpoint());
            let local = served.get(i).is_some_and(Option::is_some);
            if let Some(n) = out.iter_mut().find(|n| n.endpoint == base) {
                n.drives += 1;
                n.local |= local;
                continue;
            }
            out.push(NodeView {
                endpoint: base,
                local,
                state: "online",
                offline_seconds: None,
                drives: 1,
            });
        }
        for n in out.iter_mut().filter(|n| !n.local) {
            let name = n
                .endpoint
                .as_deref()
                .and_then(|e| e.split_once("://"))
                .map(|(_, a)| a.to_owned());
            let state = name.and_then(|a| self.inner.liveness.node(&a).map(|l| l.state()));
            if let Some(crate::drive::liveness::NodeState::Offline { since, .. }) = state {
                n.state = "offline";
                n.offline_seconds = Some(since.elapsed().as_secs_f64());
            }
        }
        out
    }

    /// Asks the scanner for a full cycle now (after the one running, if any).
    pub fn scan_now(&self) {
        self.inner.heal.scan_now.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::node_base;

    #[test]
    fn node_base_is_scheme_and_authority() {
        assert_eq!(
            node_base("http://127.0.0.1:9000/tmp/n1/d1").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            node_base("https://node2.tessera:9000").as_deref(),
            Some("https://node2.tessera:9000")
        );
        assert_eq!(node_base("/data/d1"), None);
    }
}
