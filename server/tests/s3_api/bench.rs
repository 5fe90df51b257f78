//! `tessera bench` against the real server over real sockets: the PUT-then-GET sweep
//! completes with zero errors and removes what it wrote; its GET check counts wrong bytes as
//! corrupt. The workloads (put, get, delete, list, mixed) are in `bench_workloads.rs`.

use std::time::Duration;

use tessera_server::bench::{self, BenchOp, BenchOptions, Payload, VerifyError};

use crate::common::{TestServer, ACCESS_KEY, REGION, SECRET_KEY};

#[path = "bench_workloads.rs"]
mod workloads;

pub fn options(ts: &TestServer, bucket: &str) -> BenchOptions {
    BenchOptions {
        region: REGION.to_string(),
        bucket: bucket.to_string(),
        sizes: vec![4096, 300_000],
        objects: Some(200),
        concurrency: vec![1, 4],
        duration: Duration::from_millis(700),
        baseline: Some(Duration::from_millis(300)),
        prepare_concurrency: 8,
        ..BenchOptions::new(&ts.endpoint, ACCESS_KEY, SECRET_KEY)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_run_completes_without_errors_and_cleans_up() {
    let ts = TestServer::start().await;
    let opts = options(&ts, "bench-clean");
    let mut seen = 0;
    let report = tokio::time::timeout(Duration::from_secs(60), bench::run(&opts, |_| seen += 1))
        .await
        .expect("the bench stops by itself")
        .expect("the bench runs");
    assert_eq!(seen, report.rows.len());
    // Per size and concurrency: two baselines, put, get.
    assert_eq!(report.rows.len(), 2 * 2 * 4);
    for row in &report.rows {
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(row.ops > 0, "{row:?}");
        assert!(row.ops <= 200 || row.op.starts_with("baseline"), "{row:?}");
        if row.op == "put" || row.op == "get" {
            assert_eq!(row.bytes, row.ops * row.size, "{row:?}");
            assert!(row.mb_ratio.is_some() && row.ops_ratio.is_some(), "{row:?}");
            assert!(row.max_ms >= row.p99_ms, "{row:?}");
            assert!(
                row.p99_ms >= row.p90_ms && row.p90_ms >= row.p50_ms,
                "{row:?}"
            );
            assert!(row.errors_by_code.is_empty(), "{row:?}");
        }
    }
    assert_eq!(report.cleanup_errors, 0);
    // The bench created the bucket, so it emptied and removed it.
    let head = ts.client.head_bucket().bucket("bench-clean").send().await;
    assert!(head.is_err(), "bucket left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_keeps_objects_when_asked_and_uses_an_existing_bucket() {
    let ts = TestServer::start().await;
    ts.create_bucket("bench-keep").await;
    let mut opts = options(&ts, "bench-keep");
    opts.sizes = vec![1000];
    opts.concurrency = vec![2];
    opts.objects = Some(5);
    opts.baseline = None;
    opts.keep = true;
    let report = bench::run(&opts, |_| {}).await.expect("the bench runs");
    let put = report.rows.iter().find(|r| r.op == "put").expect("put row");
    assert_eq!((put.ops, put.errors), (5, 0));
    let get = report.rows.iter().find(|r| r.op == "get").expect("get row");
    assert_eq!((get.ops, get.errors), (5, 0));
    assert_eq!(ts.keys("bench-keep").await.len(), 5);

    // GET-only still has objects to read (written unmeasured first), and cleans them up.
    opts.ops = vec![BenchOp::Get];
    opts.keep = false;
    let report = bench::run(&opts, |_| {}).await.expect("the bench runs");
    assert_eq!(report.rows.len(), 1);
    assert_eq!(
        (report.rows[0].op.as_str(), report.rows[0].errors),
        ("get", 0)
    );
    assert!(report.rows[0].ops > 0);
    assert_eq!(
        ts.keys("bench-keep").await.len(),
        5,
        "only its own objects removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_from_the_server_count_as_corrupt() {
    let ts = TestServer::start().await;
    let payload = Payload::generate(4096, 9);
    // Object 1 stored under object 0's key: a GET of key 0 returns the wrong object.
    ts.create_bucket("bench-bad").await;
    ts.put("bench-bad", "k0", payload.object_bytes(1).to_vec())
        .await;
    let signer = bench::Signer::new(ACCESS_KEY, SECRET_KEY, REGION);
    let client = bench::S3Client::new(&ts.endpoint, signer, 2).expect("client");
    let err = client
        .get_object("bench-bad", "k0", payload.checker(0))
        .await
        .expect_err("wrong object detected");
    assert!(matches!(
        err,
        bench::RequestError::Corrupt(VerifyError::Checksum { .. })
    ));
    // The right object passes, a truncated one does not.
    client
        .get_object("bench-bad", "k0", payload.checker(1))
        .await
        .expect("right object verifies");
    let mut short = payload.object_bytes(1).to_vec();
    short.pop();
    assert!(matches!(
        payload.verify(1, &short),
        Err(VerifyError::Length { .. })
    ));
    // Counted as corrupt by a phase.
    let payload3 = payload.clone();
    let c2 = client.clone();
    let row = bench::run_phase("get", 4096, 2, Duration::from_secs(5), 6, move |_| {
        let (c, check) = (c2.clone(), payload.checker(0));
        async move { c.get_object("bench-bad", "k0", check).await }
    })
    .await;
    assert_eq!((row.ops, row.errors, row.corrupt), (0, 6, 6));
    assert_eq!(row.errors_by_code.get("Corrupt"), Some(&6));
    assert!(row.first_error.is_some());
    // Errors are counted by their S3 code.
    let c3 = client.clone();
    let row = bench::run_phase("get", 4096, 2, Duration::from_secs(5), 3, move |_| {
        let (c, check) = (c3.clone(), payload3.checker(0));
        async move { c.get_object("bench-bad", "missing", check).await }
    })
    .await;
    assert_eq!(row.errors_by_code.get("NoSuchKey"), Some(&3), "{row:?}");
}
