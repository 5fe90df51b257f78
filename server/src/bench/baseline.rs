//! Same-run baselines, so figures from a noisy shared machine can be read as ratios: the
//! health probe's round-trip rate on the bench's own connection pool (the ceiling for small
//! object ops/s: HTTP, signing and scheduling with no storage work) and a loopback TCP sink
//! inside the bench (the ceiling for MB/s: the same bytes through the kernel's loopback with no
//! server at all). Every baseline stops by itself at its deadline and only ever talks to
//! 127.0.0.1 or the bench's own endpoint.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::client::{RequestError, S3Client};
use super::phase::run_phase;
use super::report::Row;

/// Health probe round trips at `concurrency` for `duration` on `client`'s pool.
pub async fn health(client: &S3Client, concurrency: usize, duration: Duration) -> Row {
    let client = client.clone();
    run_phase(
        "baseline-health",
        0,
        concurrency,
        duration,
        u64::MAX,
        move |_| {
            let client = client.clone();
            async move { client.health().await.map(|()| 0) }
        },
    )
    .await
}

/// Writes `chunk` repeatedly over `concurrency` loopback TCP connections to a sink that reads
/// and discards, for `duration`; one write of the whole chunk is one operation.
pub async fn loopback_sink(chunk: Bytes, concurrency: usize, duration: Duration) -> Row {
    let size = chunk.len() as u64;
    let listener = match TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => return failed_row(size, concurrency, format!("binding the sink: {e}")),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return failed_row(size, concurrency, format!("sink address: {e}")),
    };
    let sink = tokio::spawn(async move {
        let mut readers = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = listener.accept().await {
            readers.spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let pool: Vec<tokio::sync::Mutex<Option<TcpStream>>> = (0..concurrency.max(1))
        .map(|_| tokio::sync::Mutex::new(None))
        .collect();
    let pool = std::sync::Arc::new(pool);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let row = run_phase(
        "baseline-sink",
        size,
        concurrency,
        duration,
        u64::MAX,
        move |_| {
            let chunk = chunk.clone();
            let pool = pool.clone();
            let next = next.clone();
            async move {
                // Each in-flight operation holds one connection of the pool.
                let n = pool.len();
                let mut start = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut guard = loop {
                    if let Ok(g) = pool[start % n].try_lock() {
                        break g;
                    }
                    start += 1;
                    tokio::task::yield_now().await;
                };
                if guard.is_none() {
                    let s = TcpStream::connect(addr)
                        .await
                        .map_err(|e| RequestError::Transport(e.to_string()))?;
                    s.set_nodelay(true)
                        .map_err(|e| RequestError::Transport(e.to_string()))?;
                    *guard = Some(s);
                }
                let s = guard.as_mut().expect("connected just above");
                s.write_all(&chunk)
                    .await
                    .map_err(|e| RequestError::Transport(e.to_string()))?;
                Ok(size)
            }
        },
    )
    .await;
    sink.abort();
    row
}

fn failed_row(size: u64, concurrency: usize, error: String) -> Row {
    let mut tally = super::report::Tally::default();
    tally.error("Baseline", || error);
    Row::from_tally("baseline-sink", size, concurrency, tally, Duration::ZERO)
}
