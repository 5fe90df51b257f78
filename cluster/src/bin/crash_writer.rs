//! Test helper for the crash-safety test (tests/crash.rs): opens a store on the drives given
//! as the first argument and writes objects of mixed sizes forever — plain PUTs, multipart
//! uploads, copies and deletes.
//! Before each operation it prints `B <key> <blake3-hex | ->`, after it returns `A <key>`,
//! flushed, so the test knows exactly which writes were acknowledged when it SIGKILLs us.
//! Not part of the server; never used outside tests.

use std::io::Write as _;

use std::collections::BTreeMap;

use cluster::{
    BucketName, BytesBody, CompletedPart, CopyOptions, ObjectKey, PutOptions, Store, StoreConfig,
    StoreError,
};

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
    // What this process wrote (copy sources must have known content).
    let mut mine: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let key = format!("k{:02}", next(&mut x) % 16);
        let k = ObjectKey::new(&key)?;
        let op = next(&mut x) % 16;
        if op < 2 {
            writeln!(out, "B {key} -")?;
            out.flush()?;
            store.delete_object(&bucket, &k).await?;
            mine.remove(&key);
        } else if op == 2 && !mine.is_empty() {
            let n = (next(&mut x) % mine.len() as u64) as usize;
            let (src, hash) = mine
                .iter()
                .nth(n)
                .map(|(a, b)| (a.clone(), b.clone()))
                .ok_or("empty")?;
            writeln!(out, "B {key} {hash}")?;
            out.flush()?;
            if src != key {
                let src_k = ObjectKey::new(&src)?;
                store
                    .copy_object((&bucket, &src_k), (&bucket, &k), CopyOptions::default())
                    .await?;
            }
            mine.insert(key.clone(), hash);
        } else if op == 3 {
            let mut body = vec![0u8; (5 << 20) + (next(&mut x) % 100_000) as usize];
            for chunk in body.chunks_mut(8) {
                let v = next(&mut x).to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            let hash = blake3::hash(&body).to_hex().to_string();
            writeln!(out, "B {key} {hash}")?;
            out.flush()?;
            let id = store
                .create_multipart(&bucket, &k, Default::default(), None)
                .await?;
            let last = body.split_off(5 << 20);
            let mut parts = Vec::new();
            for (n, p) in [(1u32, body), (2, last)] {
                let info = store
                    .upload_part(
                        &bucket,
                        &k,
                        &id,
                        n,
                        BytesBody::chunked(p, 50_000),
                        Default::default(),
                    )
                    .await?;
                parts.push(CompletedPart {
                    part_number: n,
                    etag: info.etag,
                });
            }
            store
                .complete_multipart(&bucket, &k, &id, &parts, None)
                .await?;
            mine.insert(key.clone(), hash);
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
            let hash = blake3::hash(&body).to_hex().to_string();
            writeln!(out, "B {key} {hash}")?;
            out.flush()?;
            store
                .put_object(
                    &bucket,
                    &k,
                    BytesBody::chunked(body, 50_000),
                    PutOptions::default(),
                )
                .await?;
            mine.insert(key.clone(), hash);
        }
        writeln!(out, "A {key}")?;
        out.flush()?;
    }
}
