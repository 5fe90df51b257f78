//! The accept loop: binds nothing itself (it receives a bound listener), sets TCP_NODELAY on
//! every accepted socket, optionally completes a TLS handshake, and serves each connection
//! with hyper-util's auto builder (through [`Front`]) (HTTP/1.1 with keep-alive, HTTP/2 when the client speaks it,
//! e.g. via ALPN over TLS). Stops accepting when told to shut down. Knows nothing about S3.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::front::Front;

/// hyper's read buffer; request heads larger than this get 431 from hyper itself. Smaller
/// oversized heads reach the S3 layer, which answers `RequestHeaderSectionTooLarge`.
const MAX_BUF: usize = 128 * 1024;

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .keep_alive(true)
        .max_buf_size(MAX_BUF)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60));
    b.http2()
        .timer(TokioTimer::new())
        .adaptive_window(true)
        .max_concurrent_streams(256)
        .max_header_list_size(MAX_BUF as u32);
    b
}

/// How long in-flight requests may run after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// Accepts connections until `shutdown` turns true, then lets open connections finish their
/// in-flight requests (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Arc<Front>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = builder();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let builder = builder.clone();
        let tls = tls.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let service = service.clone();
                async move { Ok::<_, std::convert::Infallible>(service.handle(req).await) }
            });
            let result = match tls {
                None => {
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), svc)
                        .into_owned();
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(s)) => {
                            let conn = builder.serve_connection(TokioIo::new(s), svc).into_owned();
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                if tls_error(e.as_ref()).is_some() {
                    tracing::info!(%peer, error = %e, "connection ended with a TLS error");
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still busy after the drain timeout; closing them");
    }
}

/// The rustls error somewhere in `err`'s source chain, if the connection failed at the TLS layer
/// (worth an info line: a peer sending bad records), as opposed to an idle timeout or a reset.
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(t);
            }
        }
        cur = e.source();
    }
    None
}
