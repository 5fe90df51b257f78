//! `tessera bench`: a bounded S3 load generator for any S3 endpoint. Workloads: `put`, `get`,
//! `mixed` (weighted GET/PUT/DELETE/LIST), `list` (full listings of prepared objects, with and
//! without a delimiter) and `delete` (DeleteObject, optionally DeleteObjects batches); without
//! a workload, the PUT-then-GET sweep of earlier versions. Each reports MB/s, ops/s,
//! p50/p90/p99/max latency and errors by S3 code, optionally as ratios to same-run baselines
//! ([`baseline`]). Objects a workload needs are written first in an unmeasured prepare phase;
//! everything written is deleted at the end unless `--keep`. Every phase stops by itself.
//! This module owns the orchestration; [`run_cli`] prints the table (stdout) or JSON lines and
//! the progress line (stderr, terminals only) and is the only printer here. It never talks to
//! any host but the given endpoint and 127.0.0.1.

pub mod args;
pub mod baseline;
pub mod client;
pub mod list;
pub mod mixed;
pub mod payload;
pub mod phase;
pub mod report;
pub mod signer;
pub mod tls;
pub mod workload;

use std::io::{IsTerminal as _, Write as _};

pub use args::{
    parse_duration, parse_size, BenchArgs, BenchOp, BenchOptions, InvalidFlag, Mix, Workload,
    DEFAULT_BUCKET, MAX_PHASE,
};
pub use client::{EndpointError, ListPage, RequestError, S3Client};
pub use payload::{Payload, VerifyError};
pub use phase::{run_phase, Phase};
pub use report::{Row, Tally};
pub use signer::Signer;
pub use tls::{ClientTlsError, ClientTrust};

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The endpoint is unusable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The bucket could not be created.
    #[error("creating bucket {bucket}: {source}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What went wrong.
        source: RequestError,
    },
    /// The unmeasured prepare phase could not write the objects a workload needs.
    #[error("preparing objects: {failed} of {wanted} uploads failed; first error: {first}")]
    Prepare {
        /// Uploads that failed.
        failed: u64,
        /// Objects wanted.
        wanted: u64,
        /// The first error.
        first: String,
    },
    /// A flag is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl From<InvalidFlag> for BenchError {
    fn from(e: InvalidFlag) -> Self {
        BenchError::Invalid(e.0)
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    /// Every phase's figures, in run order.
    pub rows: Vec<Row>,
    /// Objects the cleanup could not delete.
    pub cleanup_errors: u64,
}

impl BenchReport {
    /// Failed operations over all measured phases.
    pub fn errors(&self) -> u64 {
        self.rows.iter().map(|r| r.errors).sum()
    }
}

/// What every workload runs with: the options, the client, the run's unique key prefix, and
/// where finished rows go.
pub struct Ctx<'a> {
    /// The options.
    pub opts: &'a BenchOptions,
    /// The client (pool sized for the largest concurrency).
    pub client: S3Client,
    /// Unique per run: `bench-<pid>-<nanos>`; every key starts with it.
    pub run_id: String,
    report: BenchReport,
    on_row: &'a mut dyn FnMut(&Row),
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("run_id", &self.run_id)
            .field("rows", &self.report.rows.len())
            .finish()
    }
}

impl Ctx<'_> {
    /// Hands a finished row to the caller and keeps it for the report.
    pub fn emit(&mut self, row: Row) {
        (self.on_row)(&row);
        self.report.rows.push(row);
    }

    /// Counts objects the cleanup could not delete.
    pub fn cleanup_failed(&mut self, n: u64) {
        self.report.cleanup_errors += n;
    }

    /// A measured phase: the run's duration, progress setting and `--max-ops` cap.
    pub fn phase(&self, name: &str, size: u64, concurrency: usize, max_ops: u64) -> Phase {
        let max_ops = max_ops.min(self.opts.op_cap.unwrap_or(u64::MAX));
        Phase {
            progress: self.opts.progress,
            ..Phase::new(name, size, concurrency, self.opts.duration, max_ops)
        }
    }

    /// The payload objects of `size` bytes are cut from (`--random`: fresh per object).
    pub fn payload(&self, size: u64, seed: u64) -> Result<Payload, BenchError> {
        let size = usize::try_from(size)
            .map_err(|_| BenchError::Invalid("--size does not fit in memory".into()))?;
        Ok(if self.opts.random {
            Payload::random(size, seed)
        } else {
            Payload::generate(size, seed)
        })
    }
}

/// Runs the bench, handing each phase's figures to `on_row` as soon as they exist.
pub async fn run(
    opts: &BenchOptions,
    mut on_row: impl FnMut(&Row),
) -> Result<BenchReport, BenchError> {
    opts.validate()?;
    let max_conc = opts.concurrency.iter().copied().max().unwrap_or(1);
    let signer = Signer::new(&opts.access_key, &opts.secret_key, &opts.region);
    let client = S3Client::with_trust(
        &opts.endpoint,
        signer,
        max_conc.max(opts.prepare_concurrency),
        &opts.trust,
    )?;
    let created =
        client
            .create_bucket(&opts.bucket)
            .await
            .map_err(|source| BenchError::Bucket {
                bucket: opts.bucket.clone(),
                source,
            })?;
    let run_id = format!(
        "bench-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000_000
    );
    let mut ctx = Ctx {
        opts,
        client: client.clone(),
        run_id,
        report: BenchReport::default(),
        on_row: &mut on_row,
    };
    match opts.workload {
        None => workload::sweep(&mut ctx).await?,
        Some(Workload::Put) => workload::put(&mut ctx).await?,
        Some(Workload::Get) => workload::get(&mut ctx).await?,
        Some(Workload::Delete) => workload::delete(&mut ctx).await?,
        Some(Workload::List) => list::run(&mut ctx).await?,
        Some(Workload::Mixed) => mixed::run(&mut ctx).await?,
    }
    let report = ctx.report;
    if created && !opts.keep && report.cleanup_errors == 0 {
        // Best effort: another writer may have put objects there meanwhile.
        let _ = client.delete_bucket(&opts.bucket).await;
    }
    Ok(report)
}

/// `tessera bench`: runs with the process environment and prints the table (or JSON lines)
/// to stdout, and a progress line to stderr when it is a terminal. Errors when the bench could
/// not run or any operation failed.
pub async fn run_cli(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = BenchOptions::from_args(&args, |k| std::env::var(k).ok())?;
    if opts.trust.insecure {
        eprintln!(
            "tessera bench: WARNING: --insecure: the server's TLS certificate is not verified"
        );
    }
    opts.progress = !args.quiet && std::io::stderr().is_terminal();
    let json = args.json;
    let mut header = !json;
    let report = run(&opts, |row| {
        let line = if json { row.json() } else { row.table_line() };
        let mut out = std::io::stdout().lock();
        if std::mem::take(&mut header) {
            let _ = writeln!(out, "{}", Row::table_header());
        }
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
    .await?;
    if !json {
        println!("(MB = 10^6 bytes; latency per operation, for list per full listing; xSink = MB/s over the loopback sink, xHealth = ops/s over the health probe, same concurrency)");
    }
    let mut first = report.rows.iter().filter_map(|r| r.first_error.as_deref());
    if let Some(e) = first.next() {
        eprintln!("tessera bench: first error: {e}");
    }
    if report.cleanup_errors > 0 {
        eprintln!(
            "tessera bench: {} objects could not be deleted",
            report.cleanup_errors
        );
    }
    match report.errors() {
        0 => Ok(()),
        n => Err(format!("{n} operations failed").into()),
    }
}
