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
//! (seconds per commit case and round, default 3), `METASTORE_WRITERS` (default 16),
//! `METASTORE_CACHE_MB` (cache given to every store, default 256), `METASTORE_DIR` (parent of the
//! temporary directories, default the system temp dir), `METASTORE_SLICE_MS` (length of the time
//! slices in which the stores take turns, default 500), `METASTORE_STORES` (comma-separated subset
//! of redb,redb+qr,sled,sled+fsync,fjall), `METASTORE_SKIP_LISTING=1` (commit cases only).

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
    /// sled 0.34 as documented: `flush()` after the batch. On Linux that is `sync_file_range`,
    /// which neither flushes the drive's write cache nor the file's metadata: not a real fsync.
    Sled,
    /// sled with an added `fsync` of its data file after `flush()`, to compare at equal durability.
    SledFsync,
    Fjall,
}

const ALL_KINDS: [Kind; 5] = [
    Kind::Redb,
    Kind::RedbQr,
    Kind::Sled,
    Kind::SledFsync,
    Kind::Fjall,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redb => "redb",
            Kind::RedbQr => "redb+qr",
            Kind::Sled => "sled",
            Kind::SledFsync => "sled+fsync",
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
    /// sled's single data file, opened again to `fsync` it (fsync acts on the inode).
    fsync_file: Option<fs::File>,
}

impl SledStore {
    fn open(dir: &Path, cache: usize, fsync: bool) -> Res<Self> {
        let path = dir.join("sled");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(cache as u64)
            .open()?;
        let fsync_file = if fsync {
            Some(fs::File::open(path.join("db"))?)
        } else {
            None
        };
        Ok(Self { db, fsync_file })
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
        if let Some(f) = &self.fsync_file {
            f.sync_all()?;
        }
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
        // Both counters are fjall's hidden "experimental" API; the queue count was seen to stay
        // above zero with no work running, hence the short deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0 {
            if Instant::now() > deadline {
                eprintln!(
                    "fjall: still {} queued flushes, {} compactions after 10 s; going on",
                    self.db.outstanding_flushes(),
                    self.db.active_compactions()
                );
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn open_store(kind: Kind, dir: &Path, cache: usize) -> Res<Box<dyn Store>> {
    Ok(match kind {
        Kind::Redb => Box::new(RedbStore::open(dir, cache, false)?),
        Kind::RedbQr => Box::new(RedbStore::open(dir, cache, true)?),
        Kind::Sled => Box::new(SledStore::open(dir, cache, false)?),
        Kind::SledFsync => Box::new(SledStore::open(dir, cache, true)?),
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

/// Closes that hung, as "store name" strings, reported under the tables.
static CLOSE_HANGS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Closes (drops) a store, giving up after 60 s: sled 0.34 was seen to hang forever in the
/// flush its `Drop` runs (waiting in `make_stable` with its I/O threads idle). A hung close is
/// recorded and its thread left behind; the process exit ends it.
fn close_bounded<T: Send + 'static>(name: &'static str, store: T) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(store);
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        eprintln!("{name}: closing the store hung for 60 s; left behind");
        if let Ok(mut hangs) = CLOSE_HANGS.lock() {
            hangs.push(name);
        }
    }
}

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

/// Commit figures of one store in one round, summed over its time slices.
#[derive(Default)]
struct CommitStats {
    commits: u64,
    bytes: u64,
    secs: f64,
    lat: Vec<Duration>,
    batches: u64,
}

impl CommitStats {
    fn rate(&self) -> f64 {
        self.commits as f64 / self.secs.max(1e-9)
    }

    fn p99_ms(&mut self) -> f64 {
        if self.lat.is_empty() {
            return 0.0;
        }
        self.lat.sort();
        let i = (self.lat.len() * 99 / 100).min(self.lat.len() - 1);
        self.lat[i].as_secs_f64() * 1e3
    }

    fn mean_batch(&self) -> f64 {
        self.commits as f64 / self.batches.max(1) as f64
    }
}

/// Sequence number that makes every written key new across all stores, slices and writers.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The next write of the commit workload: a pooled record (values are generated once, so no
/// writer spends measured time generating data) under a key never written before.
fn next_item(pool: &[Kv]) -> Kv {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let (key, value) = &pool[n as usize % pool.len()];
    (unique_key(key, n), value.clone())
}

/// (i): one writer, one durable commit per write, for `secs` seconds.
fn bench_single(store: &dyn Store, secs: f64, pool: &[Kv], stats: &mut CommitStats) -> Res<()> {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        let item = next_item(pool);
        let t = Instant::now();
        store.commit_durable(std::slice::from_ref(&item))?;
        stats.lat.push(t.elapsed());
        stats.commits += 1;
        stats.batches += 1;
        stats.bytes += (item.0.len() + item.1.len()) as u64;
    }
    stats.secs += start.elapsed().as_secs_f64();
    Ok(())
}

/// A pending write handed to the group-commit batcher, with the channel that acknowledges it.
struct Pending {
    kv: Kv,
    ack: mpsc::SyncSender<Result<(), String>>,
}

/// The tiny group-commit batcher: takes every pending write queued so far (up to `max_batch`),
/// commits them in one durable batch, then acknowledges all of them. Returns the batch count.
fn batcher(store: Arc<dyn Store>, rx: mpsc::Receiver<Pending>, max_batch: usize) -> u64 {
    let mut batches = 0;
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
        batches += 1;
        for p in pending {
            let _ = p.ack.send(res.clone());
        }
    }
    batches
}

/// (ii): `writers` concurrent writers, each waiting for its own durable ack, through the batcher.
fn bench_group(
    store: &Arc<dyn Store>,
    secs: f64,
    writers: usize,
    pool: &Arc<Vec<Kv>>,
    stats: &mut CommitStats,
) -> Res<()> {
    let (tx, rx) = mpsc::channel::<Pending>();
    let committer = {
        let store = Arc::clone(store);
        thread::spawn(move || batcher(store, rx, 256))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..writers {
        let tx = tx.clone();
        let (stop, pool) = (Arc::clone(&stop), Arc::clone(pool));
        handles.push(thread::spawn(
            move || -> Result<(u64, u64, Vec<Duration>), String> {
                let (mut commits, mut bytes, mut lat) = (0, 0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let kv = next_item(&pool);
                    let n = (kv.0.len() + kv.1.len()) as u64;
                    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
                    let t = Instant::now();
                    tx.send(Pending { kv, ack: ack_tx })
                        .map_err(|e| e.to_string())?;
                    ack_rx.recv().map_err(|e| e.to_string())??;
                    lat.push(t.elapsed());
                    commits += 1;
                    bytes += n;
                }
                Ok((commits, bytes, lat))
            },
        ));
    }
    drop(tx);
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let (commits, bytes, lat) = h.join().map_err(|_| "writer panicked")??;
        stats.commits += commits;
        stats.bytes += bytes;
        stats.lat.extend(lat);
    }
    stats.secs += start.elapsed().as_secs_f64();
    stats.batches += committer.join().map_err(|_| "batcher panicked")?;
    Ok(())
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
    let secs = env_num("METASTORE_COMMIT_SECS", 3) as f64;
    let writers = env_num("METASTORE_WRITERS", 16) as usize;
    let cache = env_num("METASTORE_CACHE_MB", 256) as usize * 1024 * 1024;
    let parent: PathBuf = std::env::var_os("METASTORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let only = std::env::var("METASTORE_STORES").unwrap_or_default();
    let kinds: Vec<Kind> = ALL_KINDS
        .into_iter()
        .filter(|k| only.is_empty() || only.split(',').any(|n| n == k.name()))
        .collect();
    let skip_listing = env_num("METASTORE_SKIP_LISTING", 0) != 0;
    let mut rows: Vec<Row> = kinds.iter().map(|_| Row::default()).collect();
    let total = Instant::now();
    eprintln!(
        "metastore: keys={keys_n} commit_secs={secs} writers={writers} cache={}MiB dir={}",
        cache >> 20,
        parent.display()
    );

    // (a) commits. The disk is shared and its fsync latency swings by an order of magnitude
    // within seconds, so the stores take turns in short time slices (each store gets the same
    // mix of good and bad moments), and the whole thing runs twice (two rounds).
    let slice = env_num("METASTORE_SLICE_MS", 500) as f64 / 1e3;
    let slices = (secs / slice).ceil().max(1.0) as usize;
    let pool: Arc<Vec<Kv>> = {
        let mut rng = StdRng::seed_from_u64(1);
        Arc::new((0..2000).map(|_| commit_item(&mut rng)).collect())
    };
    let mut single_stores = Vec::new();
    let mut group_stores = Vec::new();
    for &kind in &kinds {
        let d1 = tempfile::Builder::new()
            .prefix("metastore-")
            .tempdir_in(&parent)?;
        let s1 = open_store(kind, d1.path(), cache)?;
        single_stores.push((d1, s1));
        let d2 = tempfile::Builder::new()
            .prefix("metastore-")
            .tempdir_in(&parent)?;
        let s2: Arc<dyn Store> = Arc::from(open_store(kind, d2.path(), cache)?);
        group_stores.push((d2, s2));
    }
    let mut group_logical = vec![0u64; kinds.len()];
    for round in 0..2 {
        let mut single: Vec<CommitStats> = kinds.iter().map(|_| CommitStats::default()).collect();
        let mut group: Vec<CommitStats> = kinds.iter().map(|_| CommitStats::default()).collect();
        for _ in 0..slices {
            for (i, (_, store)) in single_stores.iter().enumerate() {
                bench_single(store.as_ref(), slice, &pool, &mut single[i])?;
            }
        }
        for _ in 0..slices {
            for (i, (_, store)) in group_stores.iter().enumerate() {
                bench_group(store, slice, writers, &pool, &mut group[i])?;
            }
        }
        for (i, &kind) in kinds.iter().enumerate() {
            eprintln!(
                "{:10} round {round}: single {:.0} commits/s, group {:.0} commits/s (mean batch {:.1})",
                kind.name(),
                single[i].rate(),
                group[i].rate(),
                group[i].mean_batch()
            );
            rows[i].single.push(single[i].rate());
            rows[i].single_p99.push(single[i].p99_ms());
            rows[i].group.push(group[i].rate());
            rows[i].group_p99.push(group[i].p99_ms());
            rows[i].group_batch.push(group[i].mean_batch());
            group_logical[i] += group[i].bytes;
        }
    }
    for (i, (dir, store)) in group_stores.iter().enumerate() {
        store.quiesce();
        rows[i]
            .commit_disk
            .push((group_logical[i], disk_usage(dir.path())));
    }
    for (&kind, ((d1, s1), (d2, s2))) in kinds
        .iter()
        .zip(single_stores.into_iter().zip(group_stores))
    {
        close_bounded(kind.name(), s1);
        close_bounded(kind.name(), s2);
        drop((d1, d2));
    }

    // (b) listing: load each store once, then measure scans in two interleaved rounds.
    let (keys, expected) = listing_keys(if skip_listing { 0 } else { keys_n });
    let mut dirs = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        if kind == Kind::SledFsync || kind == Kind::RedbQr || skip_listing {
            // Same file format and read path as sled / redb; redb+qr's crash image is taken
            // from redb's loaded file below.
            dirs.push(None);
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
        close_bounded(kind.name(), store);
        let t = Instant::now();
        let recovered = open_store(kind, crash.path(), cache)?;
        rows[i].open_crash_ms = t.elapsed().as_secs_f64() * 1e3;
        rows[i].crash_ok = recovered.scan_prefix(PREFIX)?.0 == expected;
        close_bounded(kind.name(), recovered);
        drop(crash);
        eprintln!(
            "{:8} loaded {} keys in {:.1}s, {} MiB on disk, crash-image open {:.0} ms",
            kind.name(),
            keys.len(),
            rows[i].load_secs,
            rows[i].disk_after_load >> 20,
            rows[i].open_crash_ms
        );
        if let (Kind::Redb, Some(qr)) = (kind, kinds.iter().position(|k| *k == Kind::RedbQr)) {
            // One more commit with quick-repair on the same loaded file saves the allocator
            // state and uses 2-phase commit; a crash image after it shows redb+qr's recovery.
            let store = RedbStore::open(dir.path(), cache, true)?;
            store.commit_durable(&[(b"bucket\0zz-quick-repair".to_vec(), b"1".to_vec())])?;
            let crash = tempfile::Builder::new()
                .prefix("metastore-crash-")
                .tempdir_in(&parent)?;
            copy_dir(dir.path(), crash.path())?;
            drop(store);
            let t = Instant::now();
            let recovered = RedbStore::open(crash.path(), cache, true)?;
            rows[qr].open_crash_ms = t.elapsed().as_secs_f64() * 1e3;
            rows[qr].crash_ok = recovered.scan_prefix(PREFIX)?.0 == expected;
            eprintln!("redb+qr  crash-image open {:.0} ms", rows[qr].open_crash_ms);
        }
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
            close_bounded(kind.name(), store);
        }
    }
    drop(dirs);

    // Table: absolute figures (round1/round2) and the ratio of the means against redb.
    let base = &rows[kinds.iter().position(|k| *k == Kind::Redb).unwrap_or(0)];
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
            if r.open_crash_ms > 0.0 {
                println!(
                    "| {} | (redb's file, last commit with quick-repair) | | | | | {:.0} | {} |",
                    kind.name(),
                    r.open_crash_ms,
                    if r.crash_ok { "yes" } else { "NO" },
                );
            }
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
    if let Ok(hangs) = CLOSE_HANGS.lock() {
        if !hangs.is_empty() {
            println!();
            println!("closes that hung (>60 s, abandoned): {}", hangs.join(", "));
        }
    }
    println!();
    println!("total bench time {:.0}s", total.elapsed().as_secs_f64());
    Ok(())
}
