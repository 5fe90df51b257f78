//! One measured phase: `concurrency` workers, each keeping exactly one operation in flight,
//! until the duration passes or the operation cap is reached; their tallies merge into a
//! [`Row`]. With `progress`, a line on stderr once a second shows the phase so far (the
//! caller decides whether stderr is a terminal). This module never decides what an operation
//! is and never prints to stdout.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::RequestError;
use super::report::{human_size, Row, Tally};

/// What a phase runs.
#[derive(Debug, Clone)]
pub struct Phase {
    /// The row's `op`.
    pub name: String,
    /// Object size, bytes (for the row).
    pub size: u64,
    /// Workers, each with one operation in flight.
    pub concurrency: usize,
    /// Wall time after which no operation starts.
    pub duration: Duration,
    /// At most this many operations start.
    pub max_ops: u64,
    /// Print a progress line to stderr once a second.
    pub progress: bool,
}

/// Counters the workers bump as they go, read by the progress line.
#[derive(Debug, Default)]
struct Live {
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl Phase {
    /// A phase without a progress line.
    pub fn new(
        name: &str,
        size: u64,
        concurrency: usize,
        duration: Duration,
        max_ops: u64,
    ) -> Self {
        Phase {
            name: name.to_string(),
            size,
            concurrency,
            duration,
            max_ops,
            progress: false,
        }
    }

    /// Runs the workers; `op(i)` performs operation `i` (0, 1, 2, ... across all workers)
    /// and returns the payload bytes it moved. Operations started before the deadline finish
    /// and count; the phase's time runs until the last one ends.
    pub async fn run<F, Fut>(&self, op: F) -> Row
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
    {
        let op = Arc::new(op);
        let next = Arc::new(AtomicU64::new(0));
        let live = Arc::new(Live::default());
        let start = Instant::now();
        let deadline = start + self.duration;
        let max_ops = self.max_ops;
        let ticker = self
            .progress
            .then(|| tokio::spawn(progress_line(self.clone(), live.clone(), start)));
        let mut workers = Vec::with_capacity(self.concurrency);
        for _ in 0..self.concurrency.max(1) {
            let (op, next, live) = (op.clone(), next.clone(), live.clone());
            workers.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= max_ops {
                        break;
                    }
                    let t0 = Instant::now();
                    match op(i).await {
                        Ok(bytes) => {
                            tally.ok(bytes, t0.elapsed());
                            live.ops.fetch_add(1, Ordering::Relaxed);
                            live.bytes.fetch_add(bytes, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tally.error(&e.code(), || e.to_string());
                            live.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tally
            }));
        }
        let mut total = Tally::default();
        for w in workers {
            match w.await {
                Ok(t) => total.merge(t),
                Err(e) => total.error("WorkerFailed", || format!("worker failed: {e}")),
            }
        }
        let elapsed = start.elapsed();
        if let Some(t) = ticker {
            t.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        Row::from_tally(&self.name, self.size, self.concurrency, total, elapsed)
    }
}

/// Runs `concurrency` workers until `duration` passes or `max_ops` operations started (see
/// [`Phase::run`]), without a progress line.
pub async fn run_phase<F, Fut>(
    name: &str,
    size: u64,
    concurrency: usize,
    duration: Duration,
    max_ops: u64,
    op: F,
) -> Row
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
{
    Phase::new(name, size, concurrency, duration, max_ops)
        .run(op)
        .await
}

/// Once a second: `\r<op> <size> c<N>  12s  3456 ops  789.0 MB/s  288.0 ops/s  0 errors`.
async fn progress_line(phase: Phase, live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let ops = live.ops.load(Ordering::Relaxed);
        let bytes = live.bytes.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{} {} c{}  {:.0}s  {} ops  {:.1} MB/s  {:.1} ops/s  {} errors",
            phase.name,
            human_size(phase.size),
            phase.concurrency,
            secs,
            ops,
            bytes as f64 / secs / 1e6,
            ops as f64 / secs,
            errors
        );
        let _ = err.flush();
    }
}
