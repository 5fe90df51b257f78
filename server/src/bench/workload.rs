//! The `put`, `get` and `delete` workloads, the PUT-then-GET sweep without a workload, and the
//! two unmeasured helpers every workload shares: [`prepare`] (write N objects fast at
//! `--prepare-concurrency`) and [`cleanup`] (DeleteObjects in batches of 1000, single deletes
//! where a batch fails). Keys are `<run id>/<workload>/<size>/<n>`, so a run only ever
//! touches its own objects. Nothing here prints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::RequestError;
use super::payload::Payload;
use super::phase::Phase;
use super::report::{Row, Tally};
use super::{baseline, BenchError, Ctx, MAX_PHASE};

/// Seed of the payload of the `i`th size.
fn seed(i: usize) -> u64 {
    0x7e55_e7a0 + i as u64
}

/// Key of object `id` under `prefix` (zero-padded, so listings come back in id order).
pub fn key(prefix: &str, id: u64) -> String {
    format!("{prefix}/{id:08}")
}

/// Objects `get` and `mixed` prepare without `--objects`: enough that `max_conc` workers
/// rarely read the same one, at most 1000 and at most about 2 GiB.
pub fn default_read_objects(size: u64, max_conc: usize) -> u64 {
    let by_bytes = (2u64 << 30) / size.max(1);
    by_bytes.min(1000).max(2 * max_conc as u64).max(1)
}

/// Writes objects `ids` under `prefix` (multipart above `--multipart-size`), unmeasured, at
/// `--prepare-concurrency`. Fails when any upload fails.
pub async fn prepare(
    ctx: &Ctx<'_>,
    payload: &Payload,
    prefix: &str,
    ids: std::ops::Range<u64>,
) -> Result<(), BenchError> {
    let wanted = ids.end - ids.start;
    if wanted == 0 {
        return Ok(());
    }
    let (client, payload) = (ctx.client.clone(), payload.clone());
    let (bucket, prefix) = (ctx.opts.bucket.clone(), prefix.to_string());
    let part = ctx.opts.multipart_size;
    let first = ids.start;
    let phase = Phase {
        duration: MAX_PHASE,
        max_ops: wanted,
        ..ctx.phase(
            "prepare",
            payload.size() as u64,
            ctx.opts.prepare_concurrency,
            wanted,
        )
    };
    let row = phase
        .run(move |i| {
            let (client, bucket) = (client.clone(), bucket.clone());
            let (key, object) = (key(&prefix, first + i), payload.object(first + i));
            async move {
                client.upload(&bucket, &key, &object, part).await?;
                Ok(object.len())
            }
        })
        .await;
    if row.errors > 0 || row.ops < wanted {
        return Err(BenchError::Prepare {
            failed: wanted - row.ops,
            wanted,
            first: row.first_error.unwrap_or_else(|| "ran out of time".into()),
        });
    }
    Ok(())
}

/// Deletes objects `ids` under `prefix` (missing ones are fine); returns how many could not
/// be deleted. Unmeasured.
pub async fn cleanup(ctx: &Ctx<'_>, prefix: &str, ids: &[u64]) -> u64 {
    if ids.is_empty() {
        return 0;
    }
    let keys: Arc<Vec<String>> = Arc::new(ids.iter().map(|&i| key(prefix, i)).collect());
    let batches = keys.len().div_ceil(1000) as u64;
    let (client, bucket) = (ctx.client.clone(), ctx.opts.bucket.clone());
    let failed = Arc::new(AtomicU64::new(0));
    let failed2 = failed.clone();
    let conc = ctx.opts.prepare_concurrency.min(8);
    let row = Phase::new("cleanup", 0, conc, MAX_PHASE, batches)
        .run(move |b| {
            let (client, bucket, keys) = (client.clone(), bucket.clone(), keys.clone());
            let failed = failed2.clone();
            async move {
                let start = b as usize * 1000;
                let batch = &keys[start..(start + 1000).min(keys.len())];
                match client.delete_objects(&bucket, batch).await {
                    Ok(n) => failed.fetch_add(n, Ordering::Relaxed),
                    Err(_) => {
                        // A store without DeleteObjects: one key at a time.
                        for k in batch {
                            if client.delete_object(&bucket, k).await.is_err() {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        0
                    }
                };
                Ok(0)
            }
        })
        .await;
    failed.load(Ordering::Relaxed) + 1000 * row.errors
}

/// `put`: PutObject (or multipart) of fresh keys for the duration (or `--objects` PUTs) at
/// every size and concurrency.
pub async fn put(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, seed(si))?;
        for &conc in &ctx.opts.concurrency {
            let ratios = baselines(ctx, &payload, conc).await;
            let prefix = format!("{}/put/{size}/c{conc}", ctx.run_id);
            let written = Arc::new(Mutex::new(Vec::new()));
            let row = put_phase(ctx, &payload, &prefix, conc, ctx.opts.max_ops(), &written).await;
            ctx.emit(ratios.apply(row));
            if !ctx.opts.keep {
                let ids = written.lock().map(|g| g.clone()).unwrap_or_default();
                let n = cleanup(ctx, &prefix, &ids).await;
                ctx.cleanup_failed(n);
            }
        }
    }
    Ok(())
}

/// `get`: prepares `--objects` objects per size, then GETs them round-robin for the duration
/// at every concurrency.
pub async fn get(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    let max_conc = ctx.opts.concurrency.iter().copied().max().unwrap_or(1);
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, seed(si))?;
        let n = ctx
            .opts
            .objects
            .unwrap_or_else(|| default_read_objects(size, max_conc));
        let prefix = format!("{}/get/{size}", ctx.run_id);
        let result = prepare(ctx, &payload, &prefix, 0..n).await;
        if result.is_ok() {
            let ids: Arc<Vec<u64>> = Arc::new((0..n).collect());
            for &conc in &ctx.opts.concurrency {
                let ratios = baselines(ctx, &payload, conc).await;
                let row = get_phase(ctx, &payload, &prefix, conc, u64::MAX, &ids).await;
                ctx.emit(ratios.apply(row));
            }
        }
        if !ctx.opts.keep {
            let ids: Vec<u64> = (0..n).collect();
            let failed = cleanup(ctx, &prefix, &ids).await;
            ctx.cleanup_failed(failed);
        }
        result?;
    }
    Ok(())
}

/// `delete`: prepares `--objects` objects and deletes them one DeleteObject each (until all
/// are gone or the duration passes); with `--batch B`, prepares them again and deletes them
/// with DeleteObjects of B keys.
pub async fn delete(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, seed(si))?;
        for &conc in &ctx.opts.concurrency {
            let n = ctx.opts.objects.unwrap_or_else(|| {
                let by_bytes = (2u64 << 30) / size.max(1);
                by_bytes
                    .min(super::args::DEFAULT_DELETE_OBJECTS)
                    .max(2 * conc as u64)
            });
            let mut batches = vec![1];
            if ctx.opts.batch > 1 {
                batches.push(ctx.opts.batch);
            }
            for batch in batches {
                let name = if batch == 1 { "delete" } else { "delete-batch" };
                let prefix = format!("{}/{name}/{size}/c{conc}", ctx.run_id);
                let prepared = prepare(ctx, &payload, &prefix, 0..n).await;
                if prepared.is_ok() {
                    let row = delete_phase(ctx, name, size, &prefix, conc, n, batch).await;
                    ctx.emit(row);
                }
                if !ctx.opts.keep {
                    let ids: Vec<u64> = (0..n).collect();
                    let failed = cleanup(ctx, &prefix, &ids).await;
                    ctx.cleanup_failed(failed);
                }
                prepared?;
            }
        }
    }
    Ok(())
}

async fn delete_phase(
    ctx: &Ctx<'_>,
    name: &str,
    size: u64,
    prefix: &str,
    conc: usize,
    n: u64,
    batch: usize,
) -> Row {
    let (client, bucket, prefix) = (
        ctx.client.clone(),
        ctx.opts.bucket.clone(),
        prefix.to_string(),
    );
    let batch = batch as u64;
    let deleted = Arc::new(AtomicU64::new(0));
    let deleted2 = deleted.clone();
    let mut row = ctx
        .phase(name, size, conc, n.div_ceil(batch))
        .run(move |i| {
            let (client, bucket, deleted) = (client.clone(), bucket.clone(), deleted2.clone());
            let keys: Vec<String> = (i * batch..((i + 1) * batch).min(n))
                .map(|id| key(&prefix, id))
                .collect();
            async move {
                if keys.len() == 1 {
                    client.delete_object(&bucket, &keys[0]).await?;
                } else {
                    let failed = client.delete_objects(&bucket, &keys).await?;
                    if failed > 0 {
                        return Err(RequestError::Partial(failed));
                    }
                }
                deleted.fetch_add(keys.len() as u64, Ordering::Relaxed);
                Ok(0)
            }
        })
        .await;
    if batch > 1 {
        row.keys = deleted.load(Ordering::Relaxed);
    }
    row
}

/// Without a workload: for every size and concurrency, optional baselines, a PUT phase, a GET
/// phase over what the PUT phase wrote (a GET-only sweep writes a few objects unmeasured
/// first), and the cleanup. `--objects` caps every phase.
pub async fn sweep(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    use super::args::BenchOp;
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, seed(si))?;
        for &conc in &ctx.opts.concurrency {
            let ratios = baselines(ctx, &payload, conc).await;
            let prefix = format!("{}/{size}/c{conc}", ctx.run_id);
            let written = Arc::new(Mutex::new(Vec::new()));
            let measure_put = ctx.opts.ops.contains(&BenchOp::Put);
            let cap = if measure_put {
                ctx.opts.max_ops()
            } else {
                ctx.opts.max_ops().min(2 * conc as u64)
            };
            let row = put_phase(ctx, &payload, &prefix, conc, cap, &written).await;
            if measure_put {
                ctx.emit(ratios.apply(row));
            }
            let ids: Arc<Vec<u64>> = {
                let mut ids = written.lock().map(|g| g.clone()).unwrap_or_default();
                ids.sort_unstable();
                Arc::new(ids)
            };
            if ctx.opts.ops.contains(&BenchOp::Get) {
                let row = get_phase(ctx, &payload, &prefix, conc, ctx.opts.max_ops(), &ids).await;
                ctx.emit(ratios.apply(row));
            }
            if !ctx.opts.keep {
                let n = cleanup(ctx, &prefix, &ids).await;
                ctx.cleanup_failed(n);
            }
        }
    }
    Ok(())
}

/// Same-run baseline rates a row is divided by.
#[derive(Debug, Clone, Copy, Default)]
struct Ratios {
    sink_mb: Option<f64>,
    health_ops: Option<f64>,
}

impl Ratios {
    fn apply(self, mut row: Row) -> Row {
        row.mb_ratio = self.sink_mb.filter(|&b| b > 0.0).map(|b| row.mb_per_s / b);
        row.ops_ratio = self
            .health_ops
            .filter(|&b| b > 0.0)
            .map(|b| row.ops_per_s / b);
        row
    }
}

/// With `--baseline`: measures and emits the health probe and loopback sink rows.
async fn baselines(ctx: &mut Ctx<'_>, payload: &Payload, conc: usize) -> Ratios {
    let Some(bd) = ctx.opts.baseline else {
        return Ratios::default();
    };
    let h = baseline::health(&ctx.client, conc, bd).await;
    let health_ops = Some(h.ops_per_s);
    ctx.emit(h);
    let s = baseline::loopback_sink(payload.object_bytes(u64::MAX), conc, bd).await;
    let sink_mb = Some(s.mb_per_s);
    ctx.emit(s);
    Ratios {
        sink_mb,
        health_ops,
    }
}

async fn put_phase(
    ctx: &Ctx<'_>,
    payload: &Payload,
    prefix: &str,
    conc: usize,
    cap: u64,
    written: &Arc<Mutex<Vec<u64>>>,
) -> Row {
    let (client, payload, bucket) = (ctx.client.clone(), payload.clone(), ctx.opts.bucket.clone());
    let (prefix, written) = (prefix.to_string(), written.clone());
    let size = payload.size() as u64;
    let part = ctx.opts.multipart_size;
    ctx.phase("put", size, conc, cap)
        .run(move |i| {
            let (client, object, bucket) = (client.clone(), payload.object(i), bucket.clone());
            let (key, written) = (key(&prefix, i), written.clone());
            async move {
                client.upload(&bucket, &key, &object, part).await?;
                if let Ok(mut w) = written.lock() {
                    w.push(i);
                }
                Ok(size)
            }
        })
        .await
}

/// GETs objects `ids` under `prefix` round-robin, checking each body.
pub async fn get_phase(
    ctx: &Ctx<'_>,
    payload: &Payload,
    prefix: &str,
    conc: usize,
    cap: u64,
    ids: &Arc<Vec<u64>>,
) -> Row {
    let size = payload.size() as u64;
    if ids.is_empty() {
        let mut t = Tally::default();
        t.error("NothingWritten", || {
            "no object was written, nothing to GET".to_string()
        });
        return Row::from_tally("get", size, conc, t, Duration::ZERO);
    }
    let (client, payload, bucket) = (ctx.client.clone(), payload.clone(), ctx.opts.bucket.clone());
    let (prefix, ids, verify) = (prefix.to_string(), ids.clone(), ctx.opts.verify);
    ctx.phase("get", size, conc, cap)
        .run(move |i| {
            let id = ids[(i % ids.len() as u64) as usize];
            let check = if verify {
                payload.checker(id)
            } else {
                payload.length_checker()
            };
            let (client, bucket, key) = (client.clone(), bucket.clone(), key(&prefix, id));
            async move { client.get_object(&bucket, &key, check).await }
        })
        .await
}
