//! The background healing of a running store ([`Store::spawn_healing`]): drains the heal
//! queue (recording missed writes durably first), queues the durable records again when a
//! drive or a peer node comes back, watches this node's drives for a blank replacement
//! (re-formatted into its slot, then bulk-healed), and runs the scanner. Every task holds
//! the store weakly and ends once the store is dropped. It must never format a drive that
//! is not blank.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::drive::{Drive, LocalDrive};
use crate::format::{FormatRecord, Probe, FORMAT_VERSION};
use crate::heal::MissedWrites;
use crate::store::Inner;
use crate::Store;

/// How often the queue worker looks at the heal queue.
const QUEUE_INTERVAL: Duration = Duration::from_millis(500);
/// How often this node's drives are checked (blank replacement, offline → online).
pub const DRIVE_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How soon durable records that could not be healed yet are tried again (a drive or node
/// coming back requeues them at once; this is the safety net for what no event announces,
/// e.g. a peer's blank drive formatted into its slot, or a drive that answered errors
/// without going offline). The interval doubles from [`REQUEUE_MIN`] up to [`REQUEUE_MAX`]
/// while the records do not shrink, and starts over as soon as they do.
const REQUEUE_MIN: Duration = Duration::from_secs(5);
/// See [`REQUEUE_MIN`].
const REQUEUE_MAX: Duration = Duration::from_secs(60);

/// The next requeue interval after one that found `recorded` records, `last` the time before.
fn next_requeue(every: Duration, recorded: usize, last: usize) -> Duration {
    if recorded == 0 || recorded < last {
        REQUEUE_MIN
    } else {
        (every * 2).min(REQUEUE_MAX)
    }
}

impl Store {
    /// Opens the durable missed-write queue on this node's drives and queues what it holds;
    /// remembers the drives formatted at open as replacements (bulk-healed by
    /// [`Store::spawn_healing`]).
    pub(crate) async fn open_heal_queue(&self, replaced: &[usize]) {
        *self
            .inner
            .heal
            .replaced_at_open
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = replaced.to_vec();
        let roots: Vec<std::path::PathBuf> = self
            .inner
            .node
            .served
            .iter()
            .flatten()
            .map(|d| d.root().to_path_buf())
            .collect();
        if roots.is_empty() {
            return;
        }
        match tokio::task::spawn_blocking(move || MissedWrites::open(&roots)).await {
            Ok(missed) if missed.is_durable() => self.inner.heal_queue.attach_durable(missed),
            Ok(_) => tracing::warn!("no drive of this node can hold the missed-write queue"),
            Err(e) => tracing::warn!(error = %e, "opening the missed-write queue"),
        }
    }

    /// Starts healing in the background (see the module docs): the queue worker, the drive
    /// watcher, the liveness listener, bulk heals of drives replaced at open, and the
    /// scanner (`TESSERA_SCANNER_RATE`, `TESSERA_SCANNER_INTERVAL`). Needs a tokio
    /// runtime; the tasks end when the store is dropped.
    pub fn spawn_healing(&self) {
        self.spawn_healing_with(crate::scanner::ScannerConfig::from_env());
    }

    /// [`Store::spawn_healing`] with explicit scanner settings.
    pub fn spawn_healing_with(&self, scanner: crate::scanner::ScannerConfig) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(queue_worker(weak.clone()));
        tokio::spawn(drive_watcher(weak.clone()));
        tokio::spawn(liveness_listener(self.node_events(), weak.clone()));
        let replaced = std::mem::take(
            &mut *self
                .inner
                .heal
                .replaced_at_open
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for i in replaced {
            crate::heal::bulk::spawn(self, i);
        }
        crate::scanner::spawn(self, scanner);
    }
}

fn upgrade(weak: &Weak<Inner>) -> Option<Store> {
    weak.upgrade().map(|inner| Store { inner })
}

async fn queue_worker(weak: Weak<Inner>) {
    let mut since_requeue = Duration::ZERO;
    let mut every = REQUEUE_MIN;
    let mut last_recorded = usize::MAX;
    loop {
        tokio::time::sleep(QUEUE_INTERVAL).await;
        let Some(store) = upgrade(&weak) else {
            return;
        };
        store.inner.heal_queue.persist().await;
        since_requeue += QUEUE_INTERVAL;
        if since_requeue >= every {
            since_requeue = Duration::ZERO;
            let recorded = store.inner.heal_queue.requeue_recorded().await;
            every = next_requeue(every, recorded, last_recorded);
            last_recorded = recorded;
        }
        let healed = store.heal_queued().await;
        if healed > 0 {
            tracing::info!(
                healed,
                "heal queue: healed objects (missed writes, damage found on read)"
            );
        }
    }
}

async fn liveness_listener(
    mut events: tokio::sync::broadcast::Receiver<crate::drive::liveness::NodeEvent>,
    weak: Weak<Inner>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = events.recv().await;
        let Some(store) = upgrade(&weak) else {
            return;
        };
        match event {
            Ok(crate::drive::liveness::NodeEvent::Online(node)) => {
                let n = store.inner.heal_queue.requeue_recorded().await;
                tracing::info!(%node, recorded = n, "peer node back online; healing what it missed");
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {
                store.inner.heal_queue.requeue_recorded().await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Every [`DRIVE_CHECK_INTERVAL`]: re-formats a blank local drive into its slot (then
/// bulk-heals it) and queues the durable records again when a drive came back online.
async fn drive_watcher(weak: Weak<Inner>) {
    let mut offline_before: Vec<String> = Vec::new();
    loop {
        tokio::time::sleep(DRIVE_CHECK_INTERVAL).await;
        let Some(store) = upgrade(&weak) else {
            return;
        };
        store.check_local_drives().await;
        let offline = store.offline_drives().await;
        if offline_before.iter().any(|d| !offline.contains(d)) {
            let n = store.inner.heal_queue.requeue_recorded().await;
            tracing::info!(
                recorded = n,
                "a drive came back online; healing what it missed"
            );
        }
        offline_before = offline;
    }
}

impl Store {
    /// Looks at each of this node's drives; a blank one (no format record, nothing else in
    /// it) in a known slot is formatted with this deployment's id and its slot, opened, and
    /// bulk-healed. Drives holding anything else are left alone. Returns the re-formatted
    /// drives' global indexes.
    pub(crate) async fn check_local_drives(&self) -> Vec<usize> {
        let mut done = Vec::new();
        let per_set = self.inner.layout.drives_per_set;
        for (i, served) in self.inner.node.served.iter().enumerate() {
            let Some(served) = served.clone() else {
                continue;
            };
            if self.bulk_running_on(i) {
                continue;
            }
            let root = served.root().to_path_buf();
            let probe = {
                let r = root.clone();
                tokio::task::spawn_blocking(move || LocalDrive::probe(&r))
                    .await
                    .unwrap_or_else(|e| Probe::Offline(e.to_string()))
            };
            let probe = match probe {
                Probe::Fresh => probe,
                Probe::Formatted(f) => {
                    self.reconcile_formatted(i, &served, f).await;
                    continue;
                }
                _ => continue,
            };
            drop(probe);
            // A blank directory where a disk of its own was mounted is not formatted.
            if !self.blank_drive_may_be_formatted(i).await {
                continue;
            }
            let format = FormatRecord {
                version: FORMAT_VERSION,
                deployment_id: self.inner.deployment_id.clone(),
                drive_id: uuid::Uuid::new_v4().to_string(),
                set_index: i / per_set,
                slot: i % per_set,
                sets: self.inner.layout.sets,
                drives_per_set: per_set,
            };
            let endpoint = served.endpoint().to_owned();
            let opened = tokio::task::spawn_blocking(move || {
                // Look again right before writing: only a still-blank drive is formatted.
                if !matches!(LocalDrive::probe(&root), Probe::Fresh) {
                    return Err("no longer blank".to_owned());
                }
                LocalDrive::write_format(&root, &format).map_err(|e| e.to_string())?;
                LocalDrive::open(&root, endpoint, format).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match opened {
                Ok(drive) => {
                    tracing::warn!(
                        drive = %served.endpoint(),
                        set = i / per_set,
                        slot = i % per_set,
                        "blank drive found in a known slot: formatted into it; bulk heal starts"
                    );
                    served.set_open(Arc::new(drive));
                    self.restore_buckets(&[i]).await;
                    crate::heal::bulk::spawn(self, i);
                    done.push(i);
                }
                Err(e) => {
                    tracing::warn!(drive = %served.endpoint(), error = %e, "could not format a blank drive");
                }
            }
        }
        done
    }

    /// A formatted local drive: the one open here (nothing to do), one of this slot that
    /// was offline (opened again, its missed writes queued), or another drive mounted in
    /// its place (refused: taken offline, never written).
    async fn reconcile_formatted(
        &self,
        global: usize,
        served: &Arc<crate::node::ServedDrive>,
        found: FormatRecord,
    ) {
        let per_set = self.inner.layout.drives_per_set;
        let current = served.info().await.ok().and_then(|i| i.format);
        let fits = found.deployment_id == self.inner.deployment_id
            && found.set_index == global / per_set
            && found.slot == global % per_set
            && found.sets == self.inner.layout.sets
            && found.drives_per_set == per_set
            && found.version == FORMAT_VERSION;
        match current {
            Some(c) if c.drive_id == found.drive_id => {}
            Some(c) => {
                tracing::error!(
                    drive = %served.endpoint(),
                    expected_drive_id = %c.drive_id,
                    found_drive_id = %found.drive_id,
                    found_deployment = %found.deployment_id,
                    "another drive is mounted in this slot; refusing it (offline). Empty it to \
                     have it formatted into the slot, or put the right drive back"
                );
                served.set_failed(format!(
                    "another drive (id {} of deployment {}) is mounted here",
                    found.drive_id, found.deployment_id
                ));
            }
            None if fits => {
                let (root, endpoint) = (served.root().to_path_buf(), served.endpoint().to_owned());
                let opened = tokio::task::spawn_blocking(move || {
                    LocalDrive::open(&root, endpoint, found).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match opened {
                    Ok(d) => {
                        tracing::info!(drive = %served.endpoint(), "drive of this slot is back; opened");
                        served.set_open(Arc::new(d));
                        self.inner.heal_queue.requeue_recorded().await;
                    }
                    Err(e) => {
                        tracing::warn!(drive = %served.endpoint(), error = %e, "could not open a returning drive")
                    }
                }
            }
            None => {
                tracing::debug!(drive = %served.endpoint(), "a drive of another slot or deployment stays refused");
            }
        }
    }

    fn bulk_running_on(&self, global: usize) -> bool {
        let per_set = self.inner.layout.drives_per_set;
        let endpoint = self.inner.sets[global / per_set].drives[global % per_set]
            .endpoint()
            .to_owned();
        self.inner
            .heal
            .bulk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|j| j.running() && j.drive == endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_backs_off_while_stuck_and_starts_over_on_progress() {
        let mut every = REQUEUE_MIN;
        let mut last = usize::MAX;
        let mut seen = Vec::new();
        for recorded in [10, 12, 12, 12, 12, 12, 12, 12] {
            every = next_requeue(every, recorded, last);
            last = recorded;
            seen.push(every.as_secs());
        }
        assert_eq!(seen, vec![5, 10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(next_requeue(REQUEUE_MAX, 11, 12), REQUEUE_MIN);
        assert_eq!(next_requeue(REQUEUE_MAX, 0, 0), REQUEUE_MIN);
    }
}
