//! `tessera bench`: a bounded S3 load generator. For each object size and concurrency level it
//! PUTs objects cut from one shared in-memory payload, GETs them back verifying the length and
//! a CRC-32 of every response (wrong data counts as an error), and reports MB/s, ops/s, p50/p99
//! latency and errors, optionally as ratios to same-run baselines ([`baseline`]). Every phase
//! stops by itself at its duration (or object count), and the objects it wrote are deleted
//! unless `--keep`. This module owns the bench's flags and orchestration; [`run_cli`] prints
//! the table (stdout) and is the only printer here. It never talks to any host but the given
//! endpoint and 127.0.0.1.

pub mod baseline;
pub mod client;
pub mod payload;
pub mod report;
pub mod signer;

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

pub use client::{EndpointError, RequestError, S3Client};
pub use payload::{Payload, VerifyError};
pub use report::{Row, Tally};
pub use signer::Signer;

/// Bucket used when `--bucket` is not given.
pub const DEFAULT_BUCKET: &str = "tessera-bench";

/// Flags of `tessera bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// S3 endpoint, `http://HOST:PORT`.
    #[arg(long)]
    pub endpoint: String,
    /// Access key (default: TESSERA_ROOT_USER, then MINIO_ROOT_USER, then the development key).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (default: TESSERA_ROOT_PASSWORD, then MINIO_ROOT_PASSWORD, then the
    /// development key).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to write into (created if missing; removed at the end if the bench created it).
    #[arg(long, default_value = DEFAULT_BUCKET)]
    pub bucket: String,
    /// Object size(s), comma separated: `64MiB,4KiB`, `1MB`, `4096`.
    #[arg(long, value_delimiter = ',', default_value = "64MiB", value_parser = parse_size)]
    pub size: Vec<u64>,
    /// At most this many operations per phase (default: run for the whole duration).
    #[arg(long)]
    pub objects: Option<u64>,
    /// Concurrency level(s), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
    /// Wall time of each phase (`10s`, `500ms`, `1m`); capped at 10 minutes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Operations to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "put,get")]
    pub ops: Vec<BenchOp>,
    /// Also measure same-run baselines (health probe rate, loopback TCP sink) and print ratios.
    #[arg(long)]
    pub baseline: bool,
    /// Wall time of each baseline phase (default: the phase duration, at most 5 s).
    #[arg(long, value_parser = parse_duration)]
    pub baseline_duration: Option<Duration>,
    /// Leave the objects (and a created bucket) in place.
    #[arg(long)]
    pub keep: bool,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// An operation the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchOp {
    /// PutObject.
    Put,
    /// GetObject (objects written by the PUT phase, or written unmeasured first).
    Get,
}

/// Longest phase accepted.
pub const MAX_PHASE: Duration = Duration::from_secs(600);

/// The settings of one bench run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `http://HOST:PORT`.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Object sizes, bytes.
    pub sizes: Vec<u64>,
    /// Operation cap per phase.
    pub max_ops: u64,
    /// Concurrency levels.
    pub concurrency: Vec<usize>,
    /// Phase duration.
    pub duration: Duration,
    /// Operations.
    pub ops: Vec<BenchOp>,
    /// Baseline phase duration, when baselines are measured.
    pub baseline: Option<Duration>,
    /// Leave objects in place.
    pub keep: bool,
}

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
    /// A flag is out of range.
    #[error("{0}")]
    Invalid(String),
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

impl BenchOptions {
    /// Options from flags, with credentials defaulted from `env` (a lookup like
    /// `std::env::var`).
    pub fn from_args(
        args: &BenchArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BenchError> {
        let pick = |flag: &Option<String>, keys: [&str; 2]| {
            flag.clone()
                .or_else(|| keys.iter().find_map(|k| env(k).filter(|v| !v.is_empty())))
        };
        let access_key = pick(&args.access_key, ["TESSERA_ROOT_USER", "MINIO_ROOT_USER"])
            .unwrap_or_else(|| crate::config::DEV_ACCESS_KEY.to_string());
        let secret_key = pick(
            &args.secret_key,
            ["TESSERA_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD"],
        )
        .unwrap_or_else(|| crate::config::DEV_SECRET_KEY.to_string());
        let opts = BenchOptions {
            endpoint: args.endpoint.clone(),
            access_key,
            secret_key,
            region: args.region.clone(),
            bucket: args.bucket.clone(),
            sizes: args.size.clone(),
            max_ops: args.objects.unwrap_or(u64::MAX),
            concurrency: args.concurrency.clone(),
            duration: args.duration,
            ops: args.ops.clone(),
            baseline: args.baseline.then(|| {
                args.baseline_duration
                    .unwrap_or_else(|| args.duration.min(Duration::from_secs(5)))
            }),
            keep: args.keep,
        };
        opts.validate()?;
        Ok(opts)
    }

    fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Invalid(m.to_string()));
        if self.sizes.is_empty() || self.sizes.iter().any(|&s| s > 5 << 30) {
            return bad("--size must be between 0 and 5GiB");
        }
        if self.concurrency.is_empty() || self.concurrency.iter().any(|&c| c == 0 || c > 1024) {
            return bad("--concurrency must be between 1 and 1024");
        }
        if self.duration.is_zero() || self.duration > MAX_PHASE {
            return bad("--duration must be above 0 and at most 10m");
        }
        if matches!(self.baseline, Some(d) if d.is_zero() || d > MAX_PHASE) {
            return bad("--baseline-duration must be above 0 and at most 10m");
        }
        if self.ops.is_empty() {
            return bad("--ops needs put and/or get");
        }
        if self.max_ops == 0 {
            return bad("--objects must be at least 1");
        }
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        {
            return bad("--bucket must be a plain S3 bucket name (3-63 of a-z 0-9 - .)");
        }
        Ok(())
    }
}

/// Runs `concurrency` workers until `duration` passes or `max_ops` operations started; `op(i)`
/// performs operation `i` and returns the payload bytes it moved. Operations started before
/// the deadline finish and count; the phase's time runs until the last one ends.
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
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let op = op.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_ops {
                    break;
                }
                let t0 = Instant::now();
                match op(i).await {
                    Ok(bytes) => tally.ok(bytes, t0.elapsed()),
                    Err(e) => {
                        let corrupt = matches!(e, RequestError::Corrupt(_));
                        tally.error(corrupt, || e.to_string());
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
            Err(e) => total.error(false, || format!("worker failed: {e}")),
        }
    }
    Row::from_tally(name, size, concurrency, total, start.elapsed())
}

/// Runs the whole bench, handing each phase's figures to `on_row` as soon as they exist.
pub async fn run(
    opts: &BenchOptions,
    mut on_row: impl FnMut(&Row),
) -> Result<BenchReport, BenchError> {
    opts.validate()?;
    let max_conc = opts.concurrency.iter().copied().max().unwrap_or(1);
    let signer = Signer::new(&opts.access_key, &opts.secret_key, &opts.region);
    let client = S3Client::new(&opts.endpoint, signer, max_conc)?;
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
    let mut report = BenchReport::default();
    let mut emit = |row: Row, report: &mut BenchReport| {
        on_row(&row);
        report.rows.push(row);
    };
    for (si, &size) in opts.sizes.iter().enumerate() {
        let size_usize = usize::try_from(size)
            .map_err(|_| BenchError::Invalid("--size does not fit in memory".into()))?;
        let payload = Payload::generate(size_usize, 0x7e55_e7a0 + si as u64);
        for &conc in &opts.concurrency {
            let (mut sink_row, mut health_row) = (None, None);
            if let Some(bd) = opts.baseline {
                let h = baseline::health(&client, conc, bd).await;
                health_row = Some(h.ops_per_s);
                emit(h, &mut report);
                let s = baseline::loopback_sink(payload.object_bytes(0), conc, bd).await;
                sink_row = Some(s.mb_per_s);
                emit(s, &mut report);
            }
            let with_ratios = |mut row: Row| {
                row.mb_ratio = sink_row.filter(|&b| b > 0.0).map(|b| row.mb_per_s / b);
                row.ops_ratio = health_row.filter(|&b| b > 0.0).map(|b| row.ops_per_s / b);
                row
            };
            let prefix = format!("{run_id}/{size}/c{conc}");
            let written = Arc::new(Mutex::new(Vec::new()));
            let measure_put = opts.ops.contains(&BenchOp::Put);
            let put_cap = if measure_put {
                opts.max_ops
            } else {
                opts.max_ops.min(2 * conc as u64)
            };
            let row = put_phase(&client, opts, &payload, &prefix, conc, put_cap, &written).await;
            if measure_put {
                emit(with_ratios(row), &mut report);
            }
            let ids: Arc<Vec<u64>> = {
                let mut ids = written.lock().map(|g| g.clone()).unwrap_or_default();
                ids.sort_unstable();
                Arc::new(ids)
            };
            if opts.ops.contains(&BenchOp::Get) {
                let row = get_phase(&client, opts, &payload, &prefix, conc, &ids).await;
                emit(with_ratios(row), &mut report);
            }
            if !opts.keep {
                report.cleanup_errors += cleanup(&client, &opts.bucket, &prefix, &ids).await;
            }
        }
    }
    if created && !opts.keep && report.cleanup_errors == 0 {
        // Best effort: another writer may have put objects there meanwhile.
        let _ = client.delete_bucket(&opts.bucket).await;
    }
    Ok(report)
}

async fn put_phase(
    client: &S3Client,
    opts: &BenchOptions,
    payload: &Payload,
    prefix: &str,
    conc: usize,
    cap: u64,
    written: &Arc<Mutex<Vec<u64>>>,
) -> Row {
    let (client, payload, bucket) = (client.clone(), payload.clone(), opts.bucket.clone());
    let (prefix, written) = (prefix.to_string(), written.clone());
    let size = payload.size() as u64;
    run_phase("put", size, conc, opts.duration, cap, move |i| {
        let (client, body, bucket) = (client.clone(), payload.body(i), bucket.clone());
        let (key, written) = (format!("{prefix}/{i}"), written.clone());
        async move {
            client.put_object(&bucket, &key, body).await?;
            if let Ok(mut w) = written.lock() {
                w.push(i);
            }
            Ok(size)
        }
    })
    .await
}

async fn get_phase(
    client: &S3Client,
    opts: &BenchOptions,
    payload: &Payload,
    prefix: &str,
    conc: usize,
    ids: &Arc<Vec<u64>>,
) -> Row {
    let size = payload.size() as u64;
    if ids.is_empty() {
        let mut t = Tally::default();
        t.error(false, || {
            "no object was written, nothing to GET".to_string()
        });
        return Row::from_tally("get", size, conc, t, Duration::ZERO);
    }
    let (client, payload, bucket) = (client.clone(), payload.clone(), opts.bucket.clone());
    let (prefix, ids) = (prefix.to_string(), ids.clone());
    run_phase("get", size, conc, opts.duration, opts.max_ops, move |i| {
        let id = ids[(i % ids.len() as u64) as usize];
        let (client, check, bucket) = (client.clone(), payload.checker(id), bucket.clone());
        let key = format!("{prefix}/{id}");
        async move { client.get_object(&bucket, &key, check).await }
    })
    .await
}

/// Deletes the objects of one phase group (16 at a time); returns how many could not be.
async fn cleanup(client: &S3Client, bucket: &str, prefix: &str, ids: &Arc<Vec<u64>>) -> u64 {
    let (client, bucket, prefix, list) = (
        client.clone(),
        bucket.to_string(),
        prefix.to_string(),
        ids.clone(),
    );
    let row = run_phase("cleanup", 0, 16, MAX_PHASE, ids.len() as u64, move |i| {
        let (client, bucket) = (client.clone(), bucket.clone());
        let key = format!("{prefix}/{}", list[i as usize]);
        async move { client.delete_object(&bucket, &key).await.map(|()| 0) }
    })
    .await;
    row.errors + (ids.len() as u64).saturating_sub(row.ops + row.errors)
}

/// `tessera bench`: runs with the process environment and prints the table (or JSON lines)
/// to stdout. Errors when the bench could not run or any operation failed.
pub async fn run_cli(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = BenchOptions::from_args(&args, |k| std::env::var(k).ok())?;
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
        println!("(MB = 10^6 bytes; xSink = MB/s over the loopback sink, xHealth = ops/s over the health probe, same concurrency)");
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

/// Parses `64MiB`, `4KiB`, `1MB`, `10k`, `4096` (binary for `K/M/G`, `KiB/MiB/GiB`; decimal
/// for `KB/MB/GB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}

/// Parses `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("bad duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn credentials_default_from_the_environment() {
        use clap::Parser as _;
        let cli = crate::config::Cli::try_parse_from([
            "tessera",
            "bench",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--size",
            "4KiB,1MiB",
            "--concurrency",
            "2",
        ])
        .expect("parses");
        let crate::config::Command::Bench(args) = cli.command else {
            panic!("not the bench subcommand");
        };
        let env = |k: &str| (k == "MINIO_ROOT_USER").then(|| "minio-user".to_string());
        let opts = BenchOptions::from_args(&args, env).expect("valid");
        assert_eq!(opts.access_key, "minio-user");
        assert_eq!(opts.secret_key, crate::config::DEV_SECRET_KEY);
        assert_eq!(opts.sizes, vec![4096, 1 << 20]);
        assert_eq!(opts.concurrency, vec![2]);
        assert_eq!(opts.ops, vec![BenchOp::Put, BenchOp::Get]);
        assert_eq!(opts.bucket, DEFAULT_BUCKET);
        assert!(opts.baseline.is_none());
        let mut bad = args.clone();
        bad.concurrency = vec![0];
        assert!(BenchOptions::from_args(&bad, |_| None).is_err());
    }
}
