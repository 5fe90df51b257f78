//! Test helper for the crash-safety test (tests/crash.rs): opens a store on the drives given
//! as the first argument and writes (and sometimes deletes) objects of mixed sizes forever.
//! Before each operation it prints `B <key> <blake3-hex | ->`, after it returns `A <key>`,
//! flushed, so the test knows exactly which writes were acknowledged when it SIGKILLs us.
//! Not part of the server; never used outside tests.

use std::io::Write as _;

use cluster::{BucketName, BytesBody, ObjectKey, PutOptions, Store, StoreConfig, StoreError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(drives), Some(seed)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok()))
    else {
        return Err("usage: crash_writer <drive pattern> <seed>".into());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(drives.clone(), seed))
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

async fn run(drives: String, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = StoreConfig::new(vec![drives]);
    cfg.block_size = 64 * 1024;
    // The previous holder of the drives may still be closing them: wait until all are ours.
    let mut store = None;
    for _ in 0..200 {
        let s = Store::open(cfg.clone()).await?;
        if s.offline_drives().await.is_empty() {
            store = Some(s);
            break;
        }
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let store = store.ok_or("drives stayed busy")?;
    let bucket = BucketName::new("crash")?;
    match store.make_bucket(&bucket).await {
        Ok(()) | Err(StoreError::BucketExists) => {}
        Err(e) => return Err(e.into()),
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY")?;
    out.flush()?;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    loop {
        let key = format!("k{:02}", next(&mut x) % 16);
        let k = ObjectKey::new(&key)?;
        if next(&mut x) % 8 == 0 {
            writeln!(out, "B {key} -")?;
            out.flush()?;
            store.delete_object(&bucket, &k).await?;
        } else {
            let size = match next(&mut x) % 4 {
                0 => (next(&mut x) % 2000) as usize,
                1 => (next(&mut x) % 140_000) as usize,
                2 => 100_000 + (next(&mut x) % 300_000) as usize,
                _ => 400_000 + (next(&mut x) % 400_000) as usize,
            };
            let mut body = vec![0u8; size];
            for chunk in body.chunks_mut(8) {
                let v = next(&mut x).to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            writeln!(out, "B {key} {}", blake3::hash(&body).to_hex())?;
            out.flush()?;
            store
                .put_object(
                    &bucket,
                    &k,
                    BytesBody::chunked(body, 50_000),
                    PutOptions::default(),
                )
                .await?;
        }
        writeln!(out, "A {key}")?;
        out.flush()?;
    }
}
