//! Engine throughput on 4 local drives (2 data + 2 parity), against a plain-file baseline
//! measured in the same run on the same disk:
//! - large: PUT and GET of 64 MiB objects (MB/s of object data) vs writing the same bytes to
//!   one file + fsync, and reading it back;
//! - small: 4 KiB PUT and GET ops/s with 16 concurrent requests vs 16 threads each writing
//!   a 4 KiB file + fsync, and reading it back.
//!
//! Run: `cargo bench -p cluster --bench engine`. Knobs: `ENGINE_BENCH_DIR` (default: the
//! system temp dir; must be a real disk for fsync to mean anything), `ENGINE_BENCH_LARGE`
//! (number of 64 MiB objects, default 6), `ENGINE_BENCH_SMALL` (small ops, default 2000).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{body::collect, BucketName, BytesBody, ObjectKey, PutOptions, Store, StoreConfig};

const LARGE: usize = 64 << 20;
const SMALL: usize = 4 << 10;
const CONCURRENCY: usize = 16;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = vec![0u8; len];
    for chunk in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    Bytes::from(v)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn write_fsync(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; ignore arguments.
    let base: PathBuf = std::env::var_os("ENGINE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;
    let n_large = env_usize("ENGINE_BENCH_LARGE", 6);
    let n_small = env_usize("ENGINE_BENCH_SMALL", 2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let large: Vec<Bytes> = (0..n_large)
        .map(|i| random_bytes(LARGE, i as u64))
        .collect();
    let small = random_bytes(SMALL, 99);

    // Baseline: plain files on the same disk.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain)?;
    let t = Instant::now();
    for (i, obj) in large.iter().enumerate() {
        write_fsync(&plain.join(format!("large{i}")), obj)?;
    }
    let base_put = mbps(LARGE * n_large, t.elapsed());
    let t = Instant::now();
    for i in 0..n_large {
        let back = std::fs::read(plain.join(format!("large{i}")))?;
        assert_eq!(back.len(), LARGE);
    }
    let base_get = mbps(LARGE * n_large, t.elapsed());
    let plain = Arc::new(plain);
    let t = Instant::now();
    let threads: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let (plain, small) = (plain.clone(), small.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                for i in (w..n_small).step_by(CONCURRENCY) {
                    write_fsync(&plain.join(format!("small{i}")), &small)?;
                }
                Ok(())
            })
        })
        .collect();
    for th in threads {
        th.join().map_err(|_| "baseline thread panicked")??;
    }
    let base_small_put = n_small as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..n_small {
        std::fs::read(plain.join(format!("small{i}")))?;
    }
    let base_small_get = n_small as f64 / t.elapsed().as_secs_f64();

    // The engine.
    let pattern = format!("{}/d{{1...4}}", dir.path().display());
    let (put_mbps, get_mbps, small_put, small_get) = rt.block_on(async {
        let store = Store::open(StoreConfig::new(vec![pattern])).await?;
        let b = BucketName::new("bench")?;
        store.make_bucket(&b).await?;
        let t = Instant::now();
        for (i, obj) in large.iter().enumerate() {
            let body = BytesBody::chunked(obj.clone(), 1 << 20);
            store
                .put_object(
                    &b,
                    &ObjectKey::new(&format!("large{i}"))?,
                    body,
                    PutOptions::default(),
                )
                .await?;
        }
        let put_mbps = mbps(LARGE * n_large, t.elapsed());
        let t = Instant::now();
        for (i, obj) in large.iter().enumerate() {
            let g = store
                .get_object(&b, &ObjectKey::new(&format!("large{i}"))?, None, None)
                .await?;
            let back = collect(g.body).await?;
            assert!(back == *obj, "GET returned different bytes");
        }
        let get_mbps = mbps(LARGE * n_large, t.elapsed());

        let t = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|w| {
                let (store, b, small) = (store.clone(), b.clone(), small.clone());
                tokio::spawn(async move {
                    for i in (w..n_small).step_by(CONCURRENCY) {
                        let k = ObjectKey::new(&format!("small{i}"))?;
                        store
                            .put_object(
                                &b,
                                &k,
                                BytesBody::new(small.clone()),
                                PutOptions::default(),
                            )
                            .await?;
                    }
                    Ok::<_, cluster::StoreError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let small_put = n_small as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|w| {
                let (store, b) = (store.clone(), b.clone());
                tokio::spawn(async move {
                    for i in (w..n_small).step_by(CONCURRENCY) {
                        let k = ObjectKey::new(&format!("small{i}"))?;
                        let g = store.get_object(&b, &k, None, None).await?;
                        let back = collect(g.body).await.map_err(cluster::StoreError::Body)?;
                        assert_eq!(back.len(), SMALL);
                    }
                    Ok::<_, cluster::StoreError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let small_get = n_small as f64 / t.elapsed().as_secs_f64();
        Ok::<_, Box<dyn std::error::Error>>((put_mbps, get_mbps, small_put, small_get))
    })?;

    println!("engine bench: 4 local drives, 2+2, 1 MiB blocks, same disk as the baseline");
    println!("| operation | engine | plain files (baseline) | engine / baseline |");
    println!("|---|---|---|---|");
    println!(
        "| PUT 64 MiB x{n_large} | {put_mbps:.0} MB/s | {base_put:.0} MB/s (write+fsync) | {:.2} |",
        put_mbps / base_put
    );
    println!(
        "| GET 64 MiB x{n_large} | {get_mbps:.0} MB/s | {base_get:.0} MB/s (read) | {:.2} |",
        get_mbps / base_get
    );
    println!(
        "| PUT 4 KiB x{n_small}, {CONCURRENCY} concurrent | {small_put:.0} ops/s | {base_small_put:.0} ops/s (write+fsync) | {:.2} |",
        small_put / base_small_put
    );
    println!(
        "| GET 4 KiB x{n_small}, {CONCURRENCY} concurrent | {small_get:.0} ops/s | {base_small_get:.0} ops/s (read, 1 thread) | {:.2} |",
        small_get / base_small_get
    );
    Ok(())
}
