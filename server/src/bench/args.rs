//! The bench's command line and the validated settings of one run: the workload (`put`, `get`,
//! `mixed`, `list`, `delete`, or none for the older PUT-then-GET sweep), sizes, concurrency,
//! duration, credentials (flags, then `TESSERA_ROOT_*`, `AWS_*`, `MINIO_ROOT_*`), the `mixed`
//! ratio and the size/duration parsers. This module never sends a request.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Bucket used when `--bucket` is not given.
pub const DEFAULT_BUCKET: &str = "tessera-bench";
/// Longest phase accepted.
pub const MAX_PHASE: Duration = Duration::from_secs(600);
/// Keys per listing page (`max-keys`), as S3's maximum.
pub const LIST_PAGE: usize = 1000;
/// Objects `list` prepares when `--objects` is not given.
pub const DEFAULT_LIST_OBJECTS: u64 = 100_000;
/// Objects `delete` prepares when `--objects` is not given.
pub const DEFAULT_DELETE_OBJECTS: u64 = 10_000;

/// Flags of `tessera bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure: put, get, mixed, list or delete. Without it: the PUT-then-GET sweep
    /// selected by --ops (the form of earlier versions).
    #[arg(value_enum)]
    pub workload: Option<Workload>,
    /// S3 endpoint, `http://HOST:PORT` or `https://HOST:PORT`.
    #[arg(long)]
    pub endpoint: String,
    /// https: a PEM file of CA certificates trusted besides the system's roots (default:
    /// AWS_CA_BUNDLE).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// https: do not verify the server's certificate at all (warns on stderr).
    #[arg(long)]
    pub insecure: bool,
    /// Access key (default: TESSERA_ROOT_USER, then AWS_ACCESS_KEY_ID, then MINIO_ROOT_USER,
    /// then the development key).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (default: TESSERA_ROOT_PASSWORD, then AWS_SECRET_ACCESS_KEY, then
    /// MINIO_ROOT_PASSWORD, then the development key).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to write into (created if missing; removed at the end if the bench created it).
    #[arg(long, default_value = DEFAULT_BUCKET)]
    pub bucket: String,
    /// Object size(s), comma separated: `64MiB,4KiB`, `1MB`, `4096` (default: 64MiB for
    /// put/get, 1MiB for mixed, 1KiB for list/delete).
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub size: Option<Vec<u64>>,
    /// put: stop after N PUTs per phase; get/mixed/delete/list: objects prepared (list
    /// default 100000, delete 10000); no workload: at most N operations per phase.
    #[arg(long)]
    pub objects: Option<u64>,
    /// Stop every measured phase after N operations even before --duration (for runs whose
    /// operation count must not depend on the machine's speed).
    #[arg(long)]
    pub max_ops: Option<u64>,
    /// Concurrency level(s), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
    /// Wall time of each measured phase (`30s`, `500ms`, `1m`); capped at 10 minutes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// PUT objects larger than this as multipart uploads with parts of this size (S3, and
    /// Tessera, refuse parts below 5MiB except the last).
    #[arg(long, value_parser = parse_size)]
    pub multipart_size: Option<u64>,
    /// mixed: operation weights, e.g. `get=60,put=30,delete=5,list=5`.
    #[arg(long, default_value = "get=60,put=30,delete=5,list=5", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Fresh random bytes for every object (costs client CPU) instead of one shared payload
    /// with a distinct 16-byte prefix per object.
    #[arg(long)]
    pub random: bool,
    /// Verify every GET body's length and CRC-32 (`--verify=false` checks the length only).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub verify: bool,
    /// delete: also measure DeleteObjects with this many keys per request (0: not measured).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Requests in flight while preparing (unmeasured) and cleaning up.
    #[arg(long, default_value_t = 32)]
    pub prepare_concurrency: usize,
    /// No workload only: operations to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "put,get")]
    pub ops: Vec<BenchOp>,
    /// Also measure same-run baselines (health probe rate, loopback TCP sink) and print ratios
    /// (put, get and the sweep).
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
    /// No live progress line (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

/// What `tessera bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// PutObject (multipart above --multipart-size).
    Put,
    /// GetObject of prepared objects.
    Get,
    /// GET, PUT, DELETE and LIST by the --mix weights.
    Mixed,
    /// Full listings (ListObjectsV2, 1000 per page) of prepared objects, with and without a
    /// delimiter.
    List,
    /// DeleteObject (and DeleteObjects with --batch) of prepared objects.
    Delete,
}

/// An operation of the sweep without a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchOp {
    /// PutObject.
    Put,
    /// GetObject (objects written by the PUT phase, or written unmeasured first).
    Get,
}

/// Weights of the operations of `mixed` (any scale; 0 leaves an operation out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// GetObject weight.
    pub get: u32,
    /// PutObject weight.
    pub put: u32,
    /// DeleteObject weight.
    pub delete: u32,
    /// ListObjectsV2 (one page) weight.
    pub list: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            get: 60,
            put: 30,
            delete: 5,
            list: 5,
        }
    }
}

impl Mix {
    /// Parses `get=60,put=30,delete=5,list=5` (operations left out weigh 0).
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut m = Mix {
            get: 0,
            put: 0,
            delete: 0,
            list: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("bad mix entry {part:?} (want op=weight)"))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("bad weight in {part:?}"))?;
            match k.trim() {
                "get" => m.get = v,
                "put" => m.put = v,
                "delete" => m.delete = v,
                "list" => m.list = v,
                other => return Err(format!("unknown mix operation {other:?}")),
            }
        }
        if m.total() == 0 || m.total() > 1_000_000 {
            return Err("mix weights must add up to between 1 and 1000000".into());
        }
        Ok(m)
    }

    /// Sum of the weights.
    pub fn total(&self) -> u32 {
        self.get + self.put + self.delete + self.list
    }
}

/// The settings of one bench run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub endpoint: String,
    /// Whom to trust over https (`--ca-bundle`, `AWS_CA_BUNDLE`, `--insecure`).
    pub trust: super::tls::ClientTrust,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// The workload; `None` is the PUT-then-GET sweep selected by `ops`.
    pub workload: Option<Workload>,
    /// Object sizes, bytes.
    pub sizes: Vec<u64>,
    /// `--objects`: see [`BenchArgs::objects`].
    pub objects: Option<u64>,
    /// `--max-ops`: operation cap of every measured phase.
    pub op_cap: Option<u64>,
    /// Concurrency levels.
    pub concurrency: Vec<usize>,
    /// Phase duration.
    pub duration: Duration,
    /// Multipart part size; objects larger than it are uploaded in parts.
    pub multipart_size: Option<u64>,
    /// `mixed` weights.
    pub mix: Mix,
    /// Random bytes per object.
    pub random: bool,
    /// Verify GET bodies' CRC-32.
    pub verify: bool,
    /// DeleteObjects batch size (0: single deletes only).
    pub batch: usize,
    /// Requests in flight while preparing and cleaning up.
    pub prepare_concurrency: usize,
    /// Operations of the sweep without a workload.
    pub ops: Vec<BenchOp>,
    /// Baseline phase duration, when baselines are measured.
    pub baseline: Option<Duration>,
    /// Leave objects in place.
    pub keep: bool,
    /// Print a live progress line to stderr once a second.
    pub progress: bool,
}

/// A flag out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFlag(pub String);

impl BenchOptions {
    /// Defaults for `endpoint` with the given credentials: the put/get sweep of 64 MiB at
    /// concurrency 1 and 16 for 10 s (what the flags default to).
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str) -> Self {
        BenchOptions {
            endpoint: endpoint.to_string(),
            trust: super::tls::ClientTrust::default(),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            region: "us-east-1".to_string(),
            bucket: DEFAULT_BUCKET.to_string(),
            workload: None,
            sizes: vec![64 << 20],
            objects: None,
            op_cap: None,
            concurrency: vec![1, 16],
            duration: Duration::from_secs(10),
            multipart_size: None,
            mix: Mix::default(),
            random: false,
            verify: true,
            batch: 0,
            prepare_concurrency: 32,
            ops: vec![BenchOp::Put, BenchOp::Get],
            baseline: None,
            keep: false,
            progress: false,
        }
    }

    /// Options from flags, with credentials defaulted from `env` (a lookup like
    /// `std::env::var`).
    pub fn from_args(
        args: &BenchArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, InvalidFlag> {
        let trust =
            super::tls::ClientTrust::from_flags(args.ca_bundle.clone(), args.insecure, &env);
        let (access_key, secret_key) =
            credentials(args.access_key.clone(), args.secret_key.clone(), env);
        let default_size = match args.workload {
            None | Some(Workload::Put) | Some(Workload::Get) => 64 << 20,
            Some(Workload::Mixed) => 1 << 20,
            Some(Workload::List) | Some(Workload::Delete) => 1 << 10,
        };
        let opts = BenchOptions {
            endpoint: args.endpoint.clone(),
            trust,
            access_key,
            secret_key,
            region: args.region.clone(),
            bucket: args.bucket.clone(),
            workload: args.workload,
            sizes: args.size.clone().unwrap_or_else(|| vec![default_size]),
            objects: args.objects,
            op_cap: args.max_ops,
            concurrency: args.concurrency.clone(),
            duration: args.duration,
            multipart_size: args.multipart_size,
            mix: args.mix,
            random: args.random,
            verify: args.verify,
            batch: args.batch,
            prepare_concurrency: args.prepare_concurrency,
            ops: args.ops.clone(),
            baseline: args.baseline.then(|| {
                args.baseline_duration
                    .unwrap_or_else(|| args.duration.min(Duration::from_secs(5)))
            }),
            keep: args.keep,
            progress: false,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), InvalidFlag> {
        let bad = |m: &str| Err(InvalidFlag(m.to_string()));
        if self.sizes.is_empty() || self.sizes.iter().any(|&s| s > 5 << 30) {
            return bad("--size must be between 0 and 5GiB");
        }
        if self.concurrency.is_empty() || self.concurrency.iter().any(|&c| c == 0 || c > 1024) {
            return bad("--concurrency must be between 1 and 1024");
        }
        if self.prepare_concurrency == 0 || self.prepare_concurrency > 1024 {
            return bad("--prepare-concurrency must be between 1 and 1024");
        }
        if self.duration.is_zero() || self.duration > MAX_PHASE {
            return bad("--duration must be above 0 and at most 10m");
        }
        if matches!(self.baseline, Some(d) if d.is_zero() || d > MAX_PHASE) {
            return bad("--baseline-duration must be above 0 and at most 10m");
        }
        if self.workload.is_none() && self.ops.is_empty() {
            return bad("--ops needs put and/or get");
        }
        if self.objects == Some(0) {
            return bad("--objects must be at least 1");
        }
        if self.op_cap == Some(0) {
            return bad("--max-ops must be at least 1");
        }
        if matches!(self.objects, Some(n) if n > 100_000_000) {
            return bad("--objects must be at most 100000000");
        }
        if matches!(self.multipart_size, Some(p) if p == 0 || p > 5 << 30) {
            return bad("--multipart-size must be between 1 byte and 5GiB");
        }
        if let Some(p) = self.multipart_size {
            if self.sizes.iter().any(|&s| s.div_ceil(p) > 10_000) {
                return bad("--multipart-size would need more than 10000 parts");
            }
        }
        if self.batch > 1000 {
            return bad("--batch must be at most 1000 (the DeleteObjects limit)");
        }
        if self.mix.total() == 0 {
            return bad("--mix needs a weight above 0");
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

    /// Operation cap of a `put` phase or a sweep phase.
    pub fn max_ops(&self) -> u64 {
        self.objects.unwrap_or(u64::MAX)
    }
}

/// Key and secret: each flag wins; otherwise the first of `TESSERA_ROOT_*`, `AWS_*`,
/// `MINIO_ROOT_*` that sets both; otherwise each from the first source that sets it; otherwise
/// the development key.
fn credentials(
    access: Option<String>,
    secret: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> (String, String) {
    const SOURCES: [(&str, &str); 3] = [
        ("TESSERA_ROOT_USER", "TESSERA_ROOT_PASSWORD"),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
    ];
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let pair = SOURCES.iter().find_map(|(a, s)| Some((get(a)?, get(s)?)));
    let (pa, ps) = match pair {
        Some((a, s)) => (Some(a), Some(s)),
        None => (
            SOURCES.iter().find_map(|(a, _)| get(a)),
            SOURCES.iter().find_map(|(_, s)| get(s)),
        ),
    };
    (
        access
            .or(pa)
            .unwrap_or_else(|| crate::config::DEV_ACCESS_KEY.to_string()),
        secret
            .or(ps)
            .unwrap_or_else(|| crate::config::DEV_SECRET_KEY.to_string()),
    )
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

    fn parse(args: &[&str]) -> BenchArgs {
        use clap::Parser as _;
        let mut argv = vec!["tessera", "bench"];
        argv.extend_from_slice(args);
        let cli = crate::config::Cli::try_parse_from(argv).expect("parses");
        let crate::config::Command::Bench(args) = cli.command else {
            panic!("not the bench subcommand");
        };
        args
    }

    #[test]
    fn sizes_durations_and_mixes_parse() {
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
        assert_eq!(
            Mix::parse("get=60,put=30,delete=5,list=5"),
            Ok(Mix::default())
        );
        let m = Mix::parse("put=1").expect("valid");
        assert_eq!((m.get, m.put, m.delete, m.list), (0, 1, 0, 0));
        assert!(Mix::parse("get=0").is_err());
        assert!(Mix::parse("stat=5").is_err());
        assert!(Mix::parse("get").is_err());
    }

    #[test]
    fn the_older_flag_set_still_parses_with_minio_credentials() {
        let args = parse(&[
            "--endpoint",
            "http://127.0.0.1:9000",
            "--size",
            "4KiB,1MiB",
            "--concurrency",
            "2",
        ]);
        let env = |k: &str| (k == "MINIO_ROOT_USER").then(|| "minio-user".to_string());
        let opts = BenchOptions::from_args(&args, env).expect("valid");
        assert_eq!(opts.workload, None);
        assert_eq!(opts.access_key, "minio-user");
        assert_eq!(opts.secret_key, crate::config::DEV_SECRET_KEY);
        assert_eq!(opts.sizes, vec![4096, 1 << 20]);
        assert_eq!(opts.concurrency, vec![2]);
        assert_eq!(opts.ops, vec![BenchOp::Put, BenchOp::Get]);
        assert_eq!(opts.bucket, DEFAULT_BUCKET);
        assert!(opts.baseline.is_none() && opts.verify);
        let mut bad = args.clone();
        bad.concurrency = vec![0];
        assert!(BenchOptions::from_args(&bad, |_| None).is_err());
    }

    #[test]
    fn workloads_take_their_flags_and_aws_credentials() {
        let args = parse(&[
            "mixed",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--concurrency",
            "8",
            "--duration",
            "30s",
            "--mix",
            "get=50,put=50",
            "--multipart-size",
            "16MiB",
            "--verify=false",
            "--random",
        ]);
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("aws-key".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("aws-secret".to_string()),
            "TESSERA_ROOT_USER" => Some("half-set".to_string()),
            _ => None,
        };
        let opts = BenchOptions::from_args(&args, env).expect("valid");
        assert_eq!(opts.workload, Some(Workload::Mixed));
        assert_eq!(
            (opts.access_key.as_str(), opts.secret_key.as_str()),
            ("aws-key", "aws-secret")
        );
        assert_eq!(opts.sizes, vec![1 << 20]);
        assert_eq!(opts.duration, Duration::from_secs(30));
        assert_eq!(opts.multipart_size, Some(16 << 20));
        assert_eq!((opts.mix.get, opts.mix.put, opts.mix.delete), (50, 50, 0));
        assert!(!opts.verify && opts.random);
        let list = parse(&["list", "--endpoint", "http://h:1", "--access-key", "k"]);
        let opts = BenchOptions::from_args(&list, |_| None).expect("valid");
        assert_eq!(opts.workload, Some(Workload::List));
        assert_eq!(opts.sizes, vec![1024]);
        assert_eq!(opts.access_key, "k");
        let verify = parse(&["get", "--endpoint", "http://h:1", "--verify"]);
        assert!(verify.verify);
    }
}
