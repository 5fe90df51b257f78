//! Bulk heal onto a replaced (blank, freshly formatted) drive: counts the objects of the
//! drive's set, then heals every one of them ([`HealMode::Quick`]: only drives lacking the
//! version are rebuilt) at up to [`BULK_CONCURRENCY`] objects at a time, with progress and
//! an ETA in the heal status. It must never hold a whole object in memory (healing streams
//! block batches) and never run twice at once for one drive.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::heal::status::{BulkJob, WalkCounters};
use crate::heal::HealMode;
use crate::scanner::{count_objects, walk_set, WalkOptions};
use crate::Store;

/// Objects healed at once by one bulk heal.
pub const BULK_CONCURRENCY: usize = 4;

/// Starts the bulk heal of the drive at global index `global` (no-op if one runs for it).
pub(crate) fn spawn(store: &Store, global: usize) {
    let per_set = store.inner.layout.drives_per_set;
    let set = global / per_set;
    let drive = store.inner.sets[set].drives[global % per_set]
        .endpoint()
        .to_owned();
    let job = {
        let mut jobs = store
            .inner
            .heal
            .bulk
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if jobs.iter().any(|j| j.running() && j.drive == drive) {
            return;
        }
        // Finished jobs of the same drive give way to the new one.
        jobs.retain(|j| j.drive != drive);
        let job = Arc::new(BulkJob {
            drive: drive.clone(),
            set,
            started: SystemTime::now(),
            started_at: Instant::now(),
            total_objects: Default::default(),
            state: Default::default(),
            counters: WalkCounters::default(),
        });
        jobs.push(job.clone());
        job
    };
    let weak = Arc::downgrade(&store.inner);
    tokio::spawn(async move {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let store = Store { inner };
        tracing::info!(%drive, set, "bulk heal: counting the set's objects");
        match count_objects(&store, set).await {
            Ok(n) => job.total_objects.store(n, Ordering::Relaxed),
            Err(e) => tracing::warn!(%drive, error = %e, "bulk heal: could not count objects"),
        }
        drop(store);
        let opts = WalkOptions {
            mode: HealMode::Quick,
            rate: 0,
            concurrency: BULK_CONCURRENCY,
        };
        let outcome = walk_set(&weak, set, &opts, &job.counters).await;
        let s = job.status();
        match outcome {
            Ok(()) => {
                job.state.store(1, Ordering::Relaxed);
                tracing::info!(
                    %drive,
                    objects_healed = s.progress.objects_healed,
                    objects_failed = s.progress.objects_failed,
                    bytes_healed = s.progress.bytes_healed,
                    seconds = s.elapsed_seconds,
                    "bulk heal finished"
                );
            }
            Err(e) => {
                job.state.store(2, Ordering::Relaxed);
                tracing::warn!(%drive, error = %e, "bulk heal failed; the scanner will finish it");
            }
        }
    });
}
