//! The `mixed` workload: prepares objects, then each operation is a GET, PUT, DELETE or LIST
//! (one ListObjectsV2 page of the run's prefix) drawn by the `--mix` weights from a hash of
//! the operation's number, so the ratio holds closely even in short runs. A pool of objects
//! that exist makes every operation valid: a GET reads a pooled object (and pins it), a
//! DELETE takes an unpinned one out of the pool first, a PUT adds a fresh object once it is
//! written; with nothing to read or delete, the operation becomes a PUT. Emits a `mixed` row
//! (all operations) and a `mixed-<op>` row per operation. Nothing here prints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::args::{Mix, LIST_PAGE};
use super::payload::Payload;
use super::report::{Row, Tally};
use super::workload::{cleanup, default_read_objects, key, prepare};
use super::{BenchError, Ctx};

/// The operations of `mixed`, in row order.
const KINDS: [&str; 4] = ["get", "put", "delete", "list"];

/// splitmix64: a well-spread hash of `x`.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The operation (index into [`KINDS`]) of operation number `i`.
pub fn pick(mix: &Mix, i: u64) -> usize {
    let weights = [mix.get, mix.put, mix.delete, mix.list];
    let mut r = mix64(i) % u64::from(mix.total().max(1));
    for (k, &w) in weights.iter().enumerate() {
        if r < u64::from(w) {
            return k;
        }
        r -= u64::from(w);
    }
    1
}

/// Objects that exist and may be read or deleted, with their readers.
#[derive(Debug, Default)]
struct Pool {
    ready: Vec<u64>,
    readers: HashMap<u64, u32>,
    next_id: u64,
}

impl Pool {
    fn take_for_read(&mut self, r: u64) -> Option<u64> {
        if self.ready.is_empty() {
            return None;
        }
        let id = self.ready[(r % self.ready.len() as u64) as usize];
        *self.readers.entry(id).or_default() += 1;
        Some(id)
    }

    fn done_reading(&mut self, id: u64) {
        if let Some(n) = self.readers.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.readers.remove(&id);
            }
        }
    }

    fn take_for_delete(&mut self, r: u64) -> Option<u64> {
        for attempt in 0..8u64 {
            if self.ready.is_empty() {
                return None;
            }
            let at = (mix64(r + attempt) % self.ready.len() as u64) as usize;
            if !self.readers.contains_key(&self.ready[at]) {
                return Some(self.ready.swap_remove(at));
            }
        }
        None
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }
}

/// Runs `mixed` at every size and concurrency.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    let max_conc = ctx.opts.concurrency.iter().copied().max().unwrap_or(1);
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, 0x3113 + si as u64)?;
        let n = ctx
            .opts
            .objects
            .unwrap_or_else(|| default_read_objects(size, max_conc));
        let prefix = format!("{}/mixed/{size}", ctx.run_id);
        let pool = Arc::new(Mutex::new(Pool {
            ready: (0..n).collect(),
            readers: HashMap::new(),
            next_id: n,
        }));
        let prepared = prepare(ctx, &payload, &prefix, 0..n).await;
        if prepared.is_ok() {
            for &conc in &ctx.opts.concurrency {
                for row in mixed_phase(ctx, &payload, &prefix, conc, &pool).await {
                    ctx.emit(row);
                }
            }
        }
        if !ctx.opts.keep {
            let last = pool.lock().map(|p| p.next_id).unwrap_or(n);
            let ids: Vec<u64> = (0..last).collect();
            let failed = cleanup(ctx, &prefix, &ids).await;
            ctx.cleanup_failed(failed);
        }
        prepared?;
    }
    Ok(())
}

async fn mixed_phase(
    ctx: &Ctx<'_>,
    payload: &Payload,
    prefix: &str,
    conc: usize,
    pool: &Arc<Mutex<Pool>>,
) -> Vec<Row> {
    let size = payload.size() as u64;
    let tallies: Arc<[Mutex<Tally>; 4]> = Arc::new(Default::default());
    let (client, bucket) = (ctx.client.clone(), ctx.opts.bucket.clone());
    let (payload, prefix, pool2, tallies2) = (
        payload.clone(),
        prefix.to_string(),
        pool.clone(),
        tallies.clone(),
    );
    let (mix, verify, part) = (ctx.opts.mix, ctx.opts.verify, ctx.opts.multipart_size);
    let total = ctx
        .phase("mixed", size, conc, u64::MAX)
        .run(move |i| {
            let (client, bucket, payload) = (client.clone(), bucket.clone(), payload.clone());
            let (prefix, pool, tallies) = (prefix.clone(), pool2.clone(), tallies2.clone());
            async move {
                let r = mix64(i ^ 0x5eed);
                let mut kind = pick(&mix, i);
                let mut target = None;
                if let Ok(mut p) = pool.lock() {
                    target = match kind {
                        0 => p.take_for_read(r),
                        2 => p.take_for_delete(r),
                        _ => None,
                    };
                    if target.is_none() && kind != 3 {
                        kind = 1;
                        target = Some(p.new_id());
                    }
                }
                let t0 = Instant::now();
                let result = match (kind, target) {
                    (0, Some(id)) => {
                        let check = if verify {
                            payload.checker(id)
                        } else {
                            payload.length_checker()
                        };
                        let res = client.get_object(&bucket, &key(&prefix, id), check).await;
                        if let Ok(mut p) = pool.lock() {
                            p.done_reading(id);
                        }
                        res
                    }
                    (1, Some(id)) => {
                        let object = payload.object(id);
                        let res = client
                            .upload(&bucket, &key(&prefix, id), &object, part)
                            .await
                            .map(|_| object.len());
                        if res.is_ok() {
                            if let Ok(mut p) = pool.lock() {
                                p.ready.push(id);
                            }
                        }
                        res
                    }
                    (2, Some(id)) => client
                        .delete_object(&bucket, &key(&prefix, id))
                        .await
                        .map(|()| 0),
                    _ => client
                        .list_page(&bucket, &format!("{prefix}/"), None, None, LIST_PAGE)
                        .await
                        .map(|_| 0),
                };
                if let Ok(mut t) = tallies[kind].lock() {
                    match &result {
                        Ok(bytes) => t.ok(*bytes, t0.elapsed()),
                        Err(e) => t.error(&e.code(), || e.to_string()),
                    }
                }
                result
            }
        })
        .await;
    let elapsed = Duration::from_secs_f64(total.secs);
    let mut rows = vec![total];
    for (k, name) in KINDS.iter().enumerate() {
        let t = tallies[k].lock().map(|t| t.clone()).unwrap_or_default();
        rows.push(Row::from_tally(
            &format!("mixed-{name}"),
            size,
            conc,
            t,
            elapsed,
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_weights() {
        let mix = Mix::default();
        let mut counts = [0u32; 4];
        for i in 0..20_000 {
            counts[pick(&mix, i)] += 1;
        }
        let share = |k: usize| f64::from(counts[k]) / 20_000.0;
        assert!((share(0) - 0.60).abs() < 0.02, "{counts:?}");
        assert!((share(1) - 0.30).abs() < 0.02, "{counts:?}");
        assert!((share(2) - 0.05).abs() < 0.01, "{counts:?}");
        assert!((share(3) - 0.05).abs() < 0.01, "{counts:?}");
        let only_put = Mix::parse("put=1").expect("valid");
        assert!((0..100).all(|i| pick(&only_put, i) == 1));
    }

    #[test]
    fn a_read_object_is_never_deleted_under_its_reader() {
        let mut p = Pool {
            ready: vec![7],
            readers: HashMap::new(),
            next_id: 8,
        };
        assert_eq!(p.take_for_read(3), Some(7));
        assert_eq!(p.take_for_delete(3), None);
        p.done_reading(7);
        assert_eq!(p.take_for_delete(3), Some(7));
        assert_eq!(p.take_for_read(1), None);
        assert_eq!(p.new_id(), 8);
    }
}
