//! Bulk-heal throughput (ignored by default; a measurement, not a check of behaviour):
//! fills 4 drives (EC 2+2) with 64 MiB objects, wipes one drive while a reader and a writer
//! keep loading the store, and reports how fast the bulk heal rebuilds it. Run in release:
//!
//! ```sh
//! HEAL_BENCH_GIB=2 cargo test --release -p cluster --test heal_throughput -- --ignored --nocapture
//! ```
//!
//! `HEAL_BENCH_DIR` puts the drives on a chosen disk (default: the system temp dir).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::body::collect;
use cluster::scanner::ScannerConfig;
use cluster::{BytesBody, PutOptions, StoreConfig};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run with --ignored --release"]
async fn bulk_heal_throughput_under_load() {
    let gib: u64 = std::env::var("HEAL_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = match std::env::var_os("HEAL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    };
    let pattern = format!("{}/d{{1...4}}", dir.path().display());
    let store = cluster::Store::open(StoreConfig::new(vec![pattern]))
        .await
        .expect("open");
    let b = bucket("bench");
    store.make_bucket(&b).await.expect("bucket");
    let obj = 64usize << 20;
    let n = (gib << 30) / obj as u64;
    let payload = data(obj, 7);
    let t0 = Instant::now();
    for i in 0..n {
        store
            .put_object(
                &b,
                &key(&format!("big{i}")),
                BytesBody::chunked(payload.clone(), 1 << 20),
                PutOptions::default(),
            )
            .await
            .expect("put");
    }
    let fill = t0.elapsed().as_secs_f64();
    println!(
        "fill: {n} x 64 MiB in {fill:.1} s = {:.0} MB/s (PUT, same disk)",
        (n * obj as u64) as f64 / fill / 1e6
    );

    // Load while healing: one reader and one writer of 4 MiB objects.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for w in 0..2u64 {
        let (store, b, stop, served) = (store.clone(), b.clone(), stop.clone(), served.clone());
        let small = data(4 << 20, 100 + w);
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if w == 0 {
                    let g = store
                        .get_object(&b, &key(&format!("big{}", i % n)), None, None)
                        .await
                        .expect("get under heal");
                    let got = collect(g.body).await.expect("body");
                    served.fetch_add(got.len() as u64, Ordering::Relaxed);
                } else {
                    let r = store
                        .put_object(
                            &b,
                            &key(&format!("load{}", i % 16)),
                            BytesBody::chunked(small.clone(), 1 << 20),
                            PutOptions::default(),
                        )
                        .await;
                    match r {
                        Ok(_) => {
                            served.fetch_add(small.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => panic!("put under heal: {e:?}"),
                    }
                }
                i += 1;
            }
        }));
    }
    let quiet = ScannerConfig {
        interval: Duration::from_secs(3600),
        ..ScannerConfig::default()
    };
    store.spawn_healing_with(quiet);
    // Writes keep creating files on the drive while it is removed: retry like `rm -rf`.
    let mut tries = 0;
    while let Err(e) = std::fs::remove_dir_all(dir.path().join("d3")) {
        tries += 1;
        assert!(tries < 100, "wipe: {e}");
    }
    let start = Instant::now();
    let job = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = store.heal_status().await;
        if let Some(j) = s.bulk.iter().find(|j| j.state != "running") {
            break j.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "bulk heal too slow"
        );
    };
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load task");
    }
    assert_eq!(job.state, "done");
    assert_eq!(job.progress.objects_failed, 0);
    let secs = job.elapsed_seconds;
    let bytes = job.progress.bytes_healed;
    println!(
        "bulk heal: {} objects, {:.0} MB of objects restored in {secs:.1} s = {:.0} MB/s of objects, {:.0} MB/s of shards written to the new drive; load served {:.0} MB/s meanwhile",
        job.progress.objects_healed,
        bytes as f64 / 1e6,
        bytes as f64 / secs / 1e6,
        bytes as f64 / 2.0 / secs / 1e6,
        served.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64() / 1e6,
    );
}
