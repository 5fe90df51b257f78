//! Concurrent writers to one key end with one whole version (last writer wins); concurrent
//! readers see a whole old or a whole new version, never a mix.

mod common;

use std::sync::Arc;

use cluster::{BytesBody, PutOptions, StoreError};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_never_mix_and_readers_see_whole_versions() {
    let t = TestStore::new(4).await;
    let b = bucket("race");
    t.store.make_bucket(&b).await.expect("bucket");
    // Versions of different sizes (inline and streamed), each recognisable as a whole.
    let versions: Arc<Vec<Vec<u8>>> = Arc::new(
        [
            1000usize, 150_000, 300_000, 70_000, 500_000, 10, 200_001, 90_000,
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| data(*n, 100 + i as u64))
        .collect(),
    );
    put(&t.store, &b, "k", &versions[0]).await;
    let mut tasks = Vec::new();
    for round in 0..3 {
        for (i, _) in versions.iter().enumerate() {
            let (store, b, versions) = (t.store.clone(), b.clone(), versions.clone());
            tasks.push(tokio::spawn(async move {
                let body = BytesBody::chunked(versions[i].clone(), 30_000 + round * 1000);
                store
                    .put_object(&b, &key("k"), body, PutOptions::default())
                    .await
                    .map(|_| ())
            }));
        }
        for _ in 0..4 {
            let (store, b, versions) = (t.store.clone(), b.clone(), versions.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let got = get(&store, &b, "k").await.map_err(StoreError::Internal)?;
                    assert!(
                        versions.contains(&got),
                        "a read saw a mix of versions ({} bytes)",
                        got.len()
                    );
                }
                Ok(())
            }));
        }
    }
    for task in tasks {
        task.await.expect("task ran").expect("operation succeeded");
    }
    let last = get(&t.store, &b, "k").await.expect("final read");
    assert!(versions.contains(&last));
    // Only the winning version's data remains: at most one data dir per drive.
    for d in &t.drives {
        assert!(shard_files(d).len() <= 1, "{:?}", shard_files(d));
    }
}
