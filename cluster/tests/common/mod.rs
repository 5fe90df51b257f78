//! Shared helpers for the engine's behaviour tests: a store on N real temporary directories.
#![allow(dead_code)]

pub mod rpc_node;

use std::path::PathBuf;

use cluster::{body::collect, BucketName, BytesBody, ObjectKey, PutOptions, Store, StoreConfig};

pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub drives: Vec<PathBuf>,
    pub store: Store,
    pub block_size: usize,
}

pub fn drive_paths(dir: &tempfile::TempDir, n: usize) -> Vec<PathBuf> {
    (1..=n).map(|i| dir.path().join(format!("d{i}"))).collect()
}

pub async fn open_with(
    dir: &tempfile::TempDir,
    n: usize,
    block_size: usize,
) -> Result<Store, cluster::StoreError> {
    let pattern = format!("{}/d{{1...{n}}}", dir.path().display());
    let mut cfg = StoreConfig::new(vec![pattern]);
    cfg.block_size = block_size;
    Store::open(cfg).await
}

impl TestStore {
    pub async fn new(n: usize) -> TestStore {
        Self::with_block(n, 64 * 1024).await
    }

    pub async fn with_block(n: usize, block_size: usize) -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open_with(&dir, n, block_size).await.expect("store opens");
        let drives = drive_paths(&dir, n);
        TestStore {
            dir,
            drives,
            store,
            block_size,
        }
    }

    /// Closes the store (its metadata databases) and opens it again on the same drives.
    pub async fn reopen(self) -> TestStore {
        let TestStore {
            dir,
            drives,
            store,
            block_size,
        } = self;
        drop(store);
        // Background tasks of the old store (GET streams) may still hold it for a moment.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let store = open_with(&dir, drives.len(), block_size)
            .await
            .expect("store reopens");
        TestStore {
            dir,
            drives,
            store,
            block_size,
        }
    }
}

pub fn bucket(name: &str) -> BucketName {
    BucketName::new(name).expect("valid bucket")
}

pub fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).expect("valid key")
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub async fn put(store: &Store, b: &BucketName, k: &str, bytes: &[u8]) -> cluster::ObjectInfo {
    store
        .put_object(
            b,
            &key(k),
            BytesBody::chunked(bytes.to_vec(), 10_000),
            PutOptions::default(),
        )
        .await
        .expect("put succeeds")
}

pub async fn get(store: &Store, b: &BucketName, k: &str) -> Result<Vec<u8>, String> {
    let g = store
        .get_object(b, &key(k), None, None)
        .await
        .map_err(|e| e.to_string())?;
    collect(g.body).await.map_err(|e| e.to_string())
}

/// Every shard file under a drive's data directory.
pub fn shard_files(drive: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![drive.join("data")];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}
