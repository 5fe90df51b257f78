//! The `tessera bench` workloads against the real server over real sockets, in short runs:
//! each completes with zero errors and exact counts (objects put, listed, deleted), `mixed`
//! honours its ratio, `put` above `--multipart-size` writes multipart objects (`-N` ETags),
//! and everything written is removed unless `--keep`.

use std::time::Duration;

use tessera_server::bench::{self, BenchOptions, BenchReport, Mix, Row, Workload};

use super::options;
use crate::common::TestServer;

async fn run(opts: &BenchOptions) -> BenchReport {
    let mut seen = 0;
    let report = tokio::time::timeout(Duration::from_secs(120), bench::run(opts, |_| seen += 1))
        .await
        .expect("the bench stops by itself")
        .expect("the bench runs");
    assert_eq!(seen, report.rows.len());
    assert_eq!(report.cleanup_errors, 0);
    for row in &report.rows {
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(row.errors_by_code.is_empty(), "{row:?}");
    }
    report
}

fn rows<'a>(report: &'a BenchReport, op: &str) -> Vec<&'a Row> {
    report.rows.iter().filter(|r| r.op == op).collect()
}

fn workload(ts: &TestServer, bucket: &str, w: Workload) -> BenchOptions {
    BenchOptions {
        workload: Some(w),
        sizes: vec![1000],
        objects: None,
        concurrency: vec![1, 4],
        baseline: None,
        ..options(ts, bucket)
    }
}

async fn bucket_gone(ts: &TestServer, bucket: &str) -> bool {
    ts.client.head_bucket().bucket(bucket).send().await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_above_the_multipart_size_writes_multipart_objects() {
    let ts = TestServer::start().await;
    ts.create_bucket("bench-mp").await;
    let opts = BenchOptions {
        sizes: vec![12 << 20, 1000],
        multipart_size: Some(5 << 20),
        objects: Some(3),
        concurrency: vec![2],
        duration: Duration::from_secs(60),
        keep: true,
        ..workload(&ts, "bench-mp", Workload::Put)
    };
    let report = run(&opts).await;
    let puts = rows(&report, "put");
    assert_eq!(puts.len(), 2);
    for row in puts {
        assert_eq!(row.ops, 3, "{row:?}");
        assert_eq!(row.bytes, 3 * row.size, "{row:?}");
    }
    let keys = ts.keys("bench-mp").await;
    assert_eq!(keys.len(), 6, "{keys:?}");
    let mut multipart = 0;
    for key in &keys {
        let head = ts
            .client
            .head_object()
            .bucket("bench-mp")
            .key(key)
            .send()
            .await
            .expect("head");
        let etag = head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        match head.content_length() {
            // 5 MiB + 5 MiB + 2 MiB.
            Some(12_582_912) => {
                assert!(etag.ends_with("-3"), "{key}: {etag}");
                multipart += 1;
            }
            Some(1000) => assert!(!etag.contains('-'), "{key}: {etag}"),
            other => panic!("{key}: unexpected length {other:?}"),
        }
    }
    assert_eq!(multipart, 3);
    // The bench's GET reads them back intact.
    let get = BenchOptions {
        sizes: vec![12 << 20],
        objects: Some(2),
        keep: false,
        duration: Duration::from_millis(300),
        ..opts.clone()
    };
    let get = BenchOptions {
        workload: Some(Workload::Get),
        ..get
    };
    let report = run(&get).await;
    assert!(rows(&report, "get")[0].ops > 0);
    assert_eq!(
        ts.keys("bench-mp").await.len(),
        6,
        "only its own objects removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_prepared_random_objects_and_cleans_up() {
    let ts = TestServer::start().await;
    let opts = BenchOptions {
        sizes: vec![5000],
        objects: Some(10),
        random: true,
        duration: Duration::from_secs(60),
        op_cap: Some(25),
        ..workload(&ts, "bench-get", Workload::Get)
    };
    let report = run(&opts).await;
    let gets = rows(&report, "get");
    assert_eq!(gets.len(), 2, "one per concurrency");
    for row in gets {
        assert_eq!(row.ops, 25, "{row:?}");
        assert_eq!(row.bytes, 25 * 5000);
        assert_eq!(row.corrupt, 0);
    }
    assert!(bucket_gone(&ts, "bench-get").await, "bucket left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_counts_every_prepared_key_with_and_without_a_delimiter() {
    let ts = TestServer::start().await;
    let opts = BenchOptions {
        sizes: vec![0],
        objects: Some(1_500),
        duration: Duration::from_millis(300),
        prepare_concurrency: 16,
        ..workload(&ts, "bench-list", Workload::List)
    };
    let report = run(&opts).await;
    assert_eq!(report.rows.len(), 4, "list and list-delim per concurrency");
    for op in ["list", "list-delim"] {
        for row in rows(&report, op) {
            assert!(row.ops >= 1, "{row:?}");
            // 1500 keys at 1000 per page: two pages per full listing, every key counted.
            assert_eq!(row.keys, row.ops * 1_500, "{row:?}");
            assert_eq!(row.pages, row.ops * 2, "{row:?}");
            assert!(row.keys_per_s() > 0.0 && row.pages_per_s() > 0.0);
        }
    }
    assert!(bucket_gone(&ts, "bench-list").await, "bucket left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_every_prepared_object_singly_and_in_batches() {
    let ts = TestServer::start().await;
    ts.create_bucket("bench-del").await;
    ts.put("bench-del", "not-mine", b"stays".to_vec()).await;
    let opts = BenchOptions {
        objects: Some(40),
        batch: 8,
        concurrency: vec![4],
        duration: Duration::from_secs(30),
        ..workload(&ts, "bench-del", Workload::Delete)
    };
    let report = run(&opts).await;
    let single = rows(&report, "delete");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].ops, 40, "{:?}", single[0]);
    let batch = rows(&report, "delete-batch");
    assert_eq!(batch.len(), 1);
    assert_eq!((batch[0].ops, batch[0].keys), (5, 40), "{:?}", batch[0]);
    assert_eq!(ts.keys("bench-del").await, vec!["not-mine".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_honours_the_ratio_without_errors() {
    let ts = TestServer::start().await;
    let opts = BenchOptions {
        sizes: vec![2000],
        objects: Some(30),
        concurrency: vec![4],
        // A fixed count, so the draws do not depend on the machine's speed.
        duration: Duration::from_secs(90),
        op_cap: Some(200),
        mix: Mix::default(),
        ..workload(&ts, "bench-mixed", Workload::Mixed)
    };
    let report = run(&opts).await;
    let total = rows(&report, "mixed")[0];
    assert!(
        total.ops >= 100,
        "too few operations to judge a ratio: {total:?}"
    );
    let count = |op: &str| rows(&report, op)[0].ops;
    let (get, put, delete, list) = (
        count("mixed-get"),
        count("mixed-put"),
        count("mixed-delete"),
        count("mixed-list"),
    );
    assert_eq!(get + put + delete + list, total.ops);
    let share = |n: u64| n as f64 / total.ops as f64;
    assert!(
        (share(get) - 0.60).abs() < 0.12,
        "get {get} of {}",
        total.ops
    );
    assert!(
        (share(put) - 0.30).abs() < 0.12,
        "put {put} of {}",
        total.ops
    );
    assert!(
        share(delete) < 0.15 && share(list) < 0.15,
        "{delete} {list}"
    );
    assert!(delete > 0 && list > 0, "{delete} {list}");
    assert!(bucket_gone(&ts, "bench-mixed").await, "bucket left behind");
}
