//! The `list` workload: prepares `--objects` small objects (default 100,000) under one flat
//! prefix, unmeasured and at `--prepare-concurrency`, then measures full listings of that
//! prefix with ListObjectsV2 at 1000 keys per page, without a delimiter (`list`) and with
//! delimiter `/` (`list-delim`: the same keys come back, every one checked for the
//! delimiter). One operation is one full listing (its latency is the full listing time); a
//! listing that does not return exactly the prepared count is an error. Rows carry pages and
//! keys, hence pages/s and keys/s. Nothing here prints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::args::{DEFAULT_LIST_OBJECTS, LIST_PAGE};
use super::client::RequestError;
use super::workload::{cleanup, prepare};
use super::{BenchError, Ctx};

/// Runs the `list` workload at every size and concurrency.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<(), BenchError> {
    for (si, &size) in ctx.opts.sizes.iter().enumerate() {
        let payload = ctx.payload(size, 0x1157 + si as u64)?;
        let n = ctx.opts.objects.unwrap_or(DEFAULT_LIST_OBJECTS);
        let prefix = format!("{}/list/{size}", ctx.run_id);
        let prepared = prepare(ctx, &payload, &prefix, 0..n).await;
        if prepared.is_ok() {
            for &conc in &ctx.opts.concurrency {
                for delimiter in [None, Some("/")] {
                    let row = listing_phase(ctx, size, &prefix, conc, n, delimiter).await;
                    ctx.emit(row);
                }
            }
        }
        if !ctx.opts.keep {
            let ids: Vec<u64> = (0..n).collect();
            let failed = cleanup(ctx, &prefix, &ids).await;
            ctx.cleanup_failed(failed);
        }
        prepared?;
    }
    Ok(())
}

async fn listing_phase(
    ctx: &Ctx<'_>,
    size: u64,
    prefix: &str,
    conc: usize,
    expected: u64,
    delimiter: Option<&'static str>,
) -> super::Row {
    let name = if delimiter.is_some() {
        "list-delim"
    } else {
        "list"
    };
    let (client, bucket) = (ctx.client.clone(), ctx.opts.bucket.clone());
    // Objects are `<prefix>/<n>`: list everything under `<prefix>/`.
    let prefix = format!("{prefix}/");
    let pages = Arc::new(AtomicU64::new(0));
    let keys = Arc::new(AtomicU64::new(0));
    let (pages2, keys2) = (pages.clone(), keys.clone());
    let mut row = ctx
        .phase(name, size, conc, u64::MAX)
        .run(move |_| {
            let (client, bucket, prefix) = (client.clone(), bucket.clone(), prefix.clone());
            let (pages, keys) = (pages2.clone(), keys2.clone());
            async move {
                let mut token: Option<String> = None;
                let mut got = 0u64;
                loop {
                    let page = client
                        .list_page(&bucket, &prefix, delimiter, token.as_deref(), LIST_PAGE)
                        .await?;
                    pages.fetch_add(1, Ordering::Relaxed);
                    got += page.keys + page.prefixes;
                    match page.next {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
                if got != expected {
                    return Err(RequestError::ListCount { got, expected });
                }
                keys.fetch_add(got, Ordering::Relaxed);
                Ok(0)
            }
        })
        .await;
    row.pages = pages.load(Ordering::Relaxed);
    row.keys = keys.load(Ordering::Relaxed);
    row
}
