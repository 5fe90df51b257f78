//! The internode side of an in-process "node" for multi-node tests: the shared internode key
//! and an RPC listener serving `rpc::serve` on a real socket until it is dropped.

use std::convert::Infallible;
use std::sync::Arc;

use cluster::rpc::{self, InternodeKey, RpcService};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The key every test node derives from the same root credentials.
pub fn internode_key() -> InternodeKey {
    InternodeKey::derive("root-access", "root-secret")
}

/// A node's RPC listener: `rpc::serve` over its drives. Dropping it stops the node from
/// answering (listener and open connections closed).
pub struct RpcServer {
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `service` on `listener` until the returned handle is dropped.
pub fn serve(listener: tokio::net::TcpListener, service: RpcService) -> RpcServer {
    serve_slowly(listener, service, std::time::Duration::ZERO)
}

/// Serves like [`serve`], but every request waits `delay` before it is handled (a slow or
/// overloaded node).
pub fn serve_slowly(
    listener: tokio::net::TcpListener,
    service: RpcService,
    delay: std::time::Duration,
) -> RpcServer {
    let service = Arc::new(service);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let s = service.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move {
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        Ok::<_, Infallible>(rpc::serve(&s, req).await)
                    }
                });
                let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    RpcServer { task }
}

/// `n` listeners on 127.0.0.1 (port 0, so parallel tests never collide) and their ports.
pub async fn listeners(n: usize) -> (Vec<tokio::net::TcpListener>, Vec<u16>) {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect();
    (listeners, ports)
}
