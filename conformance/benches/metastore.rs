//! Metadata-store shoot-out: redb vs sled vs fjall on Tessera's per-drive metadata workload.
//!
//! This bench owns nothing but its temporary directories: it measures (a) durable small-object
//! commits per second, one writer with one fsync per commit and 16 writers behind a group-commit
//! batcher, and (b) ordered listing of many keys under a prefix (full scan and paginated), plus
//! on-disk size, clean open time and open time of a crash image. It prints a table with absolute
//! figures and ratios against redb measured in the same run. It must never write outside the
//! temporary directories it creates, and it is not a correctness test of Tessera itself.
//!
//! Run: `cargo bench -p conformance --bench metastore`. Sizes via environment variables:
//! `METASTORE_KEYS` (keys under the listed prefix, default 1000000), `METASTORE_COMMIT_SECS`
//! (seconds per commit case and round, default 4), `METASTORE_WRITERS` (default 16),
//! `METASTORE_CACHE_MB` (cache given to every store, default 256), `METASTORE_DIR` (parent of the
//! temporary directories, default the system temp dir).

use std::fmt::Write as _;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redb::ReadableDatabase as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// One key/value pair to write.
type Kv = (Vec<u8>, Vec<u8>);

/// The operations the benchmark needs from every store.
trait Store: Send + Sync {
    /// Writes all pairs in one atomic batch and returns only once they are durable (fsync'd).
    fn commit_durable(&self, batch: &[Kv]) -> Res<()>;
    /// Ordered scan of every key starting with `prefix`: returns (count, key+value bytes).
    fn scan_prefix(&self, prefix: &[u8]) -> Res<(u64, u64)>;
    /// Up to `limit` keys after `marker` (exclusive) that start with `prefix`, in order.
    fn page(&self, prefix: &[u8], marker: Option<&[u8]>, limit: usize) -> Res<Vec<Vec<u8>>>;
    /// Waits until background work that rewrites files (flushes, compactions) is idle.
    fn quiesce(&self) {}
}

/// Which store implementation, and how it is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// redb defaults: 1-phase commit with checksums, full repair after a crash.
    Redb,
    /// redb with quick-repair (implies 2-phase commit): slower commits, instant crash recovery.
    RedbQr,
    Sled,
    Fjall,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redb => "redb",
            Kind::RedbQr => "redb+qr",
            Kind::Sled => "sled",
            Kind::Fjall => "fjall",
        }
    }
}

/// Exclusive upper bound of all keys starting with `prefix` (None: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn range_bounds(prefix: &[u8], marker: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match marker {
        Some(m) if m >= prefix => Bound::Excluded(m.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    let hi = match prefix_end(prefix) {
        Some(e) => Bound::Excluded(e),
        None => Bound::Unbounded,
    };
    (lo, hi)
}

fn borrow_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

// ---------------------------------------------------------------------------------------------
// redb

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("meta");

struct RedbStore {
    db: redb::Database,
    quick_repair: bool,
}

impl RedbStore {
    fn open(dir: &Path, cache: usize, quick_repair: bool) -> Res<Self> {
        let db = redb::Builder::new()
            .set_cache_size(cache)
            .create(dir.join("meta.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(Self { db, quick_repair })
    }
}

impl Store for RedbStore {
    fn commit_durable(&self, batch: &[Kv]) -> Res<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        tx.set_quick_repair(self.quick_repair);
        {
            let mut t = tx.open_table(TABLE)?;
            for (k, v) in batch {
                t.insert(k.as_slice(), v.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Res<(u64, u64)> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        let (lo, hi) = range_bounds(prefix, None);
        let (mut n, mut bytes) = (0u64, 0u64);
        for item in t.range::<&[u8]>((borrow_bound(&lo), borrow_bound(&hi)))? {
            let (k, v) = item?;
            n += 1;
            bytes += (k.value().len() + v.value().len()) as u64;
        }
        Ok((n, bytes))
    }

    fn page(&self, prefix: &[u8], marker: Option<&[u8]>, limit: usize) -> Res<Vec<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        let (lo, hi) = range_bounds(prefix, marker);
        let mut out = Vec::with_capacity(limit);
        for item in t.range::<&[u8]>((borrow_bound(&lo), borrow_bound(&hi)))? {
            let (k, v) = item?;
            std::hint::black_box(v.value());
            out.push(k.value().to_vec());
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// sled

struct SledStore {
    db: sled::Db,
}

impl SledStore {
    fn open(dir: &Path, cache: usize) -> Res<Self> {
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(cache as u64)
            .open()?;
        Ok(Self { db })
    }
}

impl Store for SledStore {
    fn commit_durable(&self, batch: &[Kv]) -> Res<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            b.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Res<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for item in self.db.scan_prefix(prefix) {
            let (k, v) = item?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((n, bytes))
    }

    fn page(&self, prefix: &[u8], marker: Option<&[u8]>, limit: usize) -> Res<Vec<Vec<u8>>> {
        let (lo, hi) = range_bounds(prefix, marker);
        let mut out = Vec::with_capacity(limit);
        for item in self
            .db
            .range::<&[u8], _>((borrow_bound(&lo), borrow_bound(&hi)))
        {
            let (k, v) = item?;
            std::hint::black_box(&v);
            out.push(k.to_vec());
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// fjall

struct FjallStore {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl FjallStore {
    fn open(dir: &Path, cache: usize) -> Res<Self> {
        let db = fjall::Database::builder(dir.join("fjall"))
            .cache_size(cache as u64)
            .open()?;
        let ks = db.keyspace("meta", fjall::KeyspaceCreateOptions::default)?;
        Ok(Self { db, ks })
    }
}

impl Store for FjallStore {
    fn commit_durable(&self, batch: &[Kv]) -> Res<()> {
        let mut b = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for (k, v) in batch {
            b.insert(&self.ks, k.as_slice(), v.as_slice());
        }
        b.commit()?;
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Res<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for guard in self.ks.prefix(prefix) {
            let (k, v) = guard.into_inner()?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((n, bytes))
    }

    fn page(&self, prefix: &[u8], marker: Option<&[u8]>, limit: usize) -> Res<Vec<Vec<u8>>> {
        let (lo, hi) = range_bounds(prefix, marker);
        let mut out = Vec::with_capacity(limit);
        for guard in self
            .ks
            .range::<&[u8], _>((borrow_bound(&lo), borrow_bound(&hi)))
        {
            let (k, v) = guard.into_inner()?;
            std::hint::black_box(&v);
            out.push(k.to_vec());
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn quiesce(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while (self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn open_store(kind: Kind, dir: &Path, cache: usize) -> Res<Box<dyn Store>> {
    Ok(match kind {
        Kind::Redb => Box::new(RedbStore::open(dir, cache, false)?),
        Kind::RedbQr => Box::new(RedbStore::open(dir, cache, true)?),
        Kind::Sled => Box::new(SledStore::open(dir, cache)?),
        Kind::Fjall => Box::new(FjallStore::open(dir, cache)?),
    })
}

// ---------------------------------------------------------------------------------------------
// workload generation

const DIRS: &[&str] = &[
    "photos", "backups", "logs", "datasets", "builds", "home", "media", "exports", "tmp",
    "projects", "invoices", "raw",
];

/// A realistic object key: a few prefix directories, sometimes long, up to a few hundred bytes.
fn object_key(rng: &mut StdRng) -> String {
    let mut k = String::new();
    k.push_str(DIRS[rng.gen_range(0..DIRS.len())]);
    for _ in 0..rng.gen_range(1..6) {
        let _ = write!(
            k,
            "/{}-{:x}",
            DIRS[rng.gen_range(0..DIRS.len())],
            rng.gen::<u32>()
        );
    }
    if rng.gen_bool(0.1) {
        k.push('/');
        for _ in 0..rng.gen_range(50..250) {
            k.push(char::from(b'a' + rng.gen_range(0..26u8)));
        }
    }
    let _ = write!(k, "/file-{:016x}.bin", rng.gen::<u64>());
    k
}

/// A serialized-version-record lookalike of 300-600 bytes: structured, partly compressible text
/// with random identifiers (etag, version id, checksums), like a real record.
fn record(rng: &mut StdRng, inline: usize) -> Vec<u8> {
    let target = rng.gen_range(300..=600);
    let mut s = format!(
        "{{\"v\":1,\"vid\":\"{:032x}\",\"mod\":{},\"size\":{},\"etag\":\"{:032x}\",\
         \"ct\":\"application/octet-stream\",\"ec\":{{\"k\":4,\"m\":2,\"bs\":1048576,\"idx\":{}}},\
         \"parts\":[{{\"n\":1,\"sz\":{}}}],\"meta\":{{",
        rng.gen::<u128>(),
        rng.gen::<u64>() >> 20,
        rng.gen::<u32>(),
        rng.gen::<u128>(),
        rng.gen_range(1..7),
        rng.gen::<u32>(),
    );
    while s.len() + 80 < target {
        let _ = write!(
            s,
            "\"x-amz-meta-k{}\":\"{:024x}\",",
            rng.gen::<u16>(),
            rng.gen::<u128>()
        );
    }
    s.push_str("\"bitrot\":\"blake3\"}}");
    let mut v = s.into_bytes();
    if inline > 0 {
        let start = v.len();
        v.resize(start + inline, 0);
        rng.fill(&mut v[start..]);
    }
    v
}

/// A write of the commit workload: 90% plain records, 10% records with 16-128 KiB inline data.
fn commit_item(rng: &mut StdRng) -> Kv {
    let mut key = b"bucket\0".to_vec();
    key.extend_from_slice(object_key(rng).as_bytes());
    let inline = if rng.gen_bool(0.1) {
        rng.gen_range(16 * 1024..=128 * 1024)
    } else {
        0
    };
    (key, record(rng, inline))
}

/// Makes every write a new key (values come from a pre-generated pool to keep the writer's CPU
/// out of the measurement), so that on-disk size compares with the logical bytes written.
fn unique_key(key: &[u8], n: u64) -> Vec<u8> {
    let mut k = key.to_vec();
    k.extend_from_slice(format!(".{n}").as_bytes());
    k
}

// ---------------------------------------------------------------------------------------------
// measurement helpers

/// Allocated bytes of all files under `p`.
fn disk_usage(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(md) = e.metadata() {
                if md.is_dir() {
                    total += disk_usage(&e.path());
                } else {
                    total += md.blocks() * 512;
                }
            }
        }
    }
    total
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct CommitResult {
    commits: u64,
    bytes: u64,
    secs: f64,
    p99_ms: f64,
}

impl CommitResult {
    fn rate(&self) -> f64 {
        self.commits as f64 / self.secs
    }
}

fn p99(mut lat: Vec<Duration>) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat.sort();
    lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3
}

/// (i): one writer, one durable commit per write, for `secs` seconds.
fn bench_single(store: &dyn Store, secs: f64, seed: u64) -> Res<CommitResult> {
    let mut rng = StdRng::seed_from_u64(seed);
    let items: Vec<Kv> = (0..2000).map(|_| commit_item(&mut rng)).collect();
    let start = Instant::now();
    let (mut commits, mut bytes, mut lat) = (0u64, 0u64, Vec::new());
    while start.elapsed().as_secs_f64() < secs {
        let (key, value) = &items[commits as usize % items.len()];
        let item = (unique_key(key, commits), value.clone());
        let t = Instant::now();
        store.commit_durable(std::slice::from_ref(&item))?;
        lat.push(t.elapsed());
        commits += 1;
        bytes += (item.0.len() + item.1.len()) as u64;
    }
    Ok(CommitResult {
        commits,
        bytes,
        secs: start.elapsed().as_secs_f64(),
        p99_ms: p99(lat),
    })
}

/// A pending write handed to the group-commit batcher, with the channel that acknowledges it.
struct Pending {
    kv: Kv,
    ack: mpsc::SyncSender<Result<(), String>>,
}

/// The tiny group-commit batcher: takes every pending write queued so far (up to `max_batch`),
/// commits them in one durable batch, then acknowledges all of them.
fn batcher(store: Arc<dyn Store>, rx: mpsc::Receiver<Pending>, max_batch: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while pending.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let kvs: Vec<Kv> = pending
            .iter_mut()
            .map(|p| std::mem::take(&mut p.kv))
            .collect();
        let res = store.commit_durable(&kvs).map_err(|e| e.to_string());
        sizes.push(kvs.len());
        for p in pending {
            let _ = p.ack.send(res.clone());
        }
    }
    sizes
}

/// (ii): `writers` concurrent writers, each waiting for its own durable ack, through the batcher.
fn bench_group(
    store: Arc<dyn Store>,
    secs: f64,
    writers: usize,
    seed: u64,
) -> Res<(CommitResult, f64)> {
    let (tx, rx) = mpsc::channel::<Pending>();
    let committer = {
        let store = Arc::clone(&store);
        thread::spawn(move || batcher(store, rx, 256))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let tx = tx.clone();
        let (stop, commits, bytes) = (Arc::clone(&stop), Arc::clone(&commits), Arc::clone(&bytes));
        handles.push(thread::spawn(move || -> Result<Vec<Duration>, String> {
            let mut rng = StdRng::seed_from_u64(seed * 1000 + w as u64);
            let items: Vec<Kv> = (0..200).map(|_| commit_item(&mut rng)).collect();
            let mut lat = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (key, value) = &items[i % items.len()];
                let kv = (unique_key(key, i as u64), value.clone());
                i += 1;
                let n = (kv.0.len() + kv.1.len()) as u64;
                let (ack_tx, ack_rx) = mpsc::sync_channel(1);
                let t = Instant::now();
                tx.send(Pending { kv, ack: ack_tx })
                    .map_err(|e| e.to_string())?;
                ack_rx.recv().map_err(|e| e.to_string())??;
                lat.push(t.elapsed());
                commits.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(n, Ordering::Relaxed);
            }
            Ok(lat)
        }));
    }
    drop(tx);
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().map_err(|_| "writer panicked")??);
    }
    let secs = start.elapsed().as_secs_f64();
    let sizes = committer.join().map_err(|_| "batcher panicked")?;
    let mean_batch = sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64;
    Ok((
        CommitResult {
            commits: commits.load(Ordering::Relaxed),
            bytes: bytes.load(Ordering::Relaxed),
            secs,
            p99_ms: p99(lat),
        },
        mean_batch,
    ))
}

/// The listing data set: `n` keys under "bucket\0logs/" in random insertion order, plus n/4 keys
/// around it that a correct prefix scan must skip ("logs-old/", "logs0", "logs", "bucket2\0...").
fn listing_keys(n: u64) -> (Vec<Vec<u8>>, u64) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut keys = Vec::with_capacity((n + n / 4) as usize);
    for i in 0..n {
        let k = format!(
            "bucket\0logs/2026/11/{:02}/host-{:03}/app-{}/{:08}-{:08x}.log.gz",
            1 + i % 28,
            rng.gen_range(0..200),
            rng.gen_range(0..5),
            i,
            rng.gen::<u32>()
        );
        keys.push(k.into_bytes());
    }
    let outside = [
        "bucket\0archive/",
        "bucket\0logs-old/",
        "bucket\0logs0/",
        "bucket2\0logs/",
    ];
    for i in 0..n / 4 {
        let k = format!(
            "{}{:08}/{:08x}",
            outside[(i % 4) as usize],
            i,
            rng.gen::<u32>()
        );
        keys.push(k.into_bytes());
    }
    // `a` and `a/b` coexist: an object named exactly like the prefix without its slash.
    keys.push(b"bucket\0logs".to_vec());
    keys.shuffle(&mut rng);
    (keys, n)
}

const PREFIX: &[u8] = b"bucket\0logs/";

fn load(store: &dyn Store, keys: &[Vec<u8>]) -> Res<f64> {
    let mut rng = StdRng::seed_from_u64(7);
    let start = Instant::now();
    for chunk in keys.chunks(10_000) {
        let batch: Vec<Kv> = chunk
            .iter()
            .map(|k| (k.clone(), record(&mut rng, 0)))
            .collect();
        store.commit_durable(&batch)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn paginate(store: &dyn Store, page: usize) -> Res<(u64, f64)> {
    let mut marker: Option<Vec<u8>> = None;
    let mut n = 0u64;
    let mut pages = 0u64;
    let start = Instant::now();
    loop {
        let keys = store.page(PREFIX, marker.as_deref(), page)?;
        pages += 1;
        n += keys.len() as u64;
        if keys.len() < page {
            break;
        }
        marker = keys.last().cloned();
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((n, secs / pages as f64 * 1e3))
}

// ---------------------------------------------------------------------------------------------

/// Results per store, each figure measured twice (rounds interleaved across stores).
#[derive(Default)]
struct Row {
    single: Vec<f64>,
    single_p99: Vec<f64>,
    group: Vec<f64>,
    group_p99: Vec<f64>,
    group_batch: Vec<f64>,
    commit_disk: Vec<(u64, u64)>,
    load_secs: f64,
    disk_after_load: u64,
    scan_keys_per_s: Vec<f64>,
    page_ms: Vec<f64>,
    open_clean_ms: Vec<f64>,
    open_crash_ms: f64,
    crash_ok: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn fmt_pair(v: &[f64], prec: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.prec$}"))
        .collect::<Vec<_>>()
        .join("/")
}

fn main() -> Res<()> {
    // `cargo bench` passes "--bench"; ignore all arguments.
    let keys_n = env_num("METASTORE_KEYS", 1_000_000);
    let secs = env_num("METASTORE_COMMIT_SECS", 4) as f64;
    let writers = env_num("METASTORE_WRITERS", 16) as usize;
    let cache = env_num("METASTORE_CACHE_MB", 256) as usize * 1024 * 1024;
    let parent: PathBuf = std::env::var_os("METASTORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let kinds = [Kind::Redb, Kind::RedbQr, Kind::Sled, Kind::Fjall];
    let mut rows: Vec<Row> = kinds.iter().map(|_| Row::default()).collect();
    let total = Instant::now();
    eprintln!(
        "metastore: keys={keys_n} commit_secs={secs} writers={writers} cache={}MiB dir={}",
        cache >> 20,
        parent.display()
    );

    // (a) commits, two interleaved rounds, a fresh store per case.
    for round in 0..2u64 {
        for (i, &kind) in kinds.iter().enumerate() {
            let dir = tempfile::Builder::new()
                .prefix("metastore-")
                .tempdir_in(&parent)?;
            let store = open_store(kind, dir.path(), cache)?;
            let r = bench_single(store.as_ref(), secs, 1 + round)?;
            eprintln!(
                "{:8} round {round} single: {:.0} commits/s",
                kind.name(),
                r.rate()
            );
            rows[i].single.push(r.rate());
            rows[i].single_p99.push(r.p99_ms);
            drop(store);

            let dir2 = tempfile::Builder::new()
                .prefix("metastore-")
                .tempdir_in(&parent)?;
            let store: Arc<dyn Store> = Arc::from(open_store(kind, dir2.path(), cache)?);
            let (g, batch) = bench_group(Arc::clone(&store), secs, writers, 10 + round)?;
            store.quiesce();
            rows[i].commit_disk.push((g.bytes, disk_usage(dir2.path())));
            eprintln!(
                "{:8} round {round} group: {:.0} commits/s, mean batch {batch:.1}",
                kind.name(),
                g.rate()
            );
            rows[i].group.push(g.rate());
            rows[i].group_p99.push(g.p99_ms);
            rows[i].group_batch.push(batch);
        }
    }

    // (b) listing: load each store once, then measure scans in two interleaved rounds.
    let (keys, expected) = listing_keys(keys_n);
    let mut dirs = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        if kind == Kind::RedbQr {
            dirs.push(None); // same file format and read path as redb
            continue;
        }
        let dir = tempfile::Builder::new()
            .prefix("metastore-")
            .tempdir_in(&parent)?;
        let store = open_store(kind, dir.path(), cache)?;
        rows[i].load_secs = load(store.as_ref(), &keys)?;
        store.quiesce();
        rows[i].disk_after_load = disk_usage(dir.path());
        // Crash image: a copy of the files taken while the store is open, after its last durable
        // commit and with no write in flight. Opening the copy runs the store's recovery path.
        let crash = tempfile::Builder::new()
            .prefix("metastore-crash-")
            .tempdir_in(&parent)?;
        copy_dir(dir.path(), crash.path())?;
        drop(store);
        let t = Instant::now();
        let recovered = open_store(kind, crash.path(), cache)?;
        rows[i].open_crash_ms = t.elapsed().as_secs_f64() * 1e3;
        rows[i].crash_ok = recovered.scan_prefix(PREFIX)?.0 == expected;
        drop(recovered);
        drop(crash);
        eprintln!(
            "{:8} loaded {} keys in {:.1}s, {} MiB on disk, crash-image open {:.0} ms",
            kind.name(),
            keys.len(),
            rows[i].load_secs,
            rows[i].disk_after_load >> 20,
            rows[i].open_crash_ms
        );
        dirs.push(Some(dir));
    }
    drop(keys);
    for round in 0..2 {
        for (i, &kind) in kinds.iter().enumerate() {
            let Some(dir) = &dirs[i] else { continue };
            let t = Instant::now();
            let store = open_store(kind, dir.path(), cache)?;
            rows[i].open_clean_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let (n, _bytes) = store.scan_prefix(PREFIX)?;
            let scan = t.elapsed().as_secs_f64();
            if n != expected {
                return Err(
                    format!("{}: scan found {n} keys, expected {expected}", kind.name()).into(),
                );
            }
            let (pn, page_ms) = paginate(store.as_ref(), 1000)?;
            if pn != expected {
                return Err(format!(
                    "{}: pages found {pn} keys, expected {expected}",
                    kind.name()
                )
                .into());
            }
            eprintln!(
                "{:8} round {round}: scan {:.0} keys/s, page {:.2} ms",
                kind.name(),
                n as f64 / scan,
                page_ms
            );
            rows[i].scan_keys_per_s.push(n as f64 / scan);
            rows[i].page_ms.push(page_ms);
        }
    }
    drop(dirs);

    // Table: absolute figures (round1/round2) and the ratio of the means against redb.
    let base = &rows[0];
    let (b_single, b_group) = (mean(&base.single), mean(&base.group));
    let (b_scan, b_page) = (mean(&base.scan_keys_per_s), mean(&base.page_ms));
    println!();
    println!("| store | 1 writer commits/s (x redb) | p99 ms | {writers} writers group commits/s (x redb) | p99 ms | mean batch | disk after commits / logical |");
    println!("|---|---|---|---|---|---|---|");
    for (i, &kind) in kinds.iter().enumerate() {
        let r = &rows[i];
        let amp: Vec<f64> = r
            .commit_disk
            .iter()
            .map(|(logical, disk)| *disk as f64 / (*logical).max(1) as f64)
            .collect();
        println!(
            "| {} | {} ({:.2}) | {} | {} ({:.2}) | {} | {} | {} |",
            kind.name(),
            fmt_pair(&r.single, 0),
            mean(&r.single) / b_single,
            fmt_pair(&r.single_p99, 1),
            fmt_pair(&r.group, 0),
            mean(&r.group) / b_group,
            fmt_pair(&r.group_p99, 1),
            fmt_pair(&r.group_batch, 1),
            fmt_pair(&amp, 2),
        );
    }
    println!();
    println!("| store | load {}+{} keys s | disk MiB | prefix scan keys/s (x redb) | page of 1000 ms (x redb) | open clean ms | open crash image ms | crash image intact |", keys_n, keys_n / 4 + 1);
    println!("|---|---|---|---|---|---|---|---|");
    for (i, &kind) in kinds.iter().enumerate() {
        let r = &rows[i];
        if r.scan_keys_per_s.is_empty() {
            continue;
        }
        println!(
            "| {} | {:.1} | {} | {} ({:.2}) | {} ({:.2}) | {} | {:.0} | {} |",
            kind.name(),
            r.load_secs,
            r.disk_after_load >> 20,
            fmt_pair(&r.scan_keys_per_s, 0),
            mean(&r.scan_keys_per_s) / b_scan,
            fmt_pair(&r.page_ms, 2),
            mean(&r.page_ms) / b_page,
            fmt_pair(&r.open_clean_ms, 1),
            r.open_crash_ms,
            if r.crash_ok { "yes" } else { "NO" },
        );
    }
    println!();
    println!("total bench time {:.0}s", total.elapsed().as_secs_f64());
    Ok(())
}
