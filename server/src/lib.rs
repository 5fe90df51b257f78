//! tessera-server: the S3 HTTP API on top of the `cluster` engine, plus the pieces the binary
//! wires together — typed configuration (`config`), TLS (`tls`), the accept loop
//! (`listener`), health probes (`health`), the startup banner and CLI (`cli`) — and the
//! `tessera bench` load generator (`bench`), the front door routing RPC / health / S3
//! (`front`) and this node's place among the endpoints (`node`). [`start`] runs the server in
//! the background (single node: opens the store, then binds; several nodes: binds, serves
//! the internode RPC, then opens the store); tests use it to run the real server on a real
//! socket. This crate
//! owns the S3 protocol only; storage semantics are the engine's and signature math is
//! `sigv4`'s.

pub mod admin;
pub mod bench;
pub mod cli;
pub mod config;
pub mod front;
pub mod health;
pub mod listener;
pub mod node;
pub mod s3;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::rpc::{InternodeKey, RpcService};
use cluster::{NodeDrives, Store, StoreConfig};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
pub use front::Front;
pub use s3::S3Service;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The drives could not be opened or formatted.
    #[error("opening the store: {0}")]
    Store(#[from] cluster::StoreError),
    /// The certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Several nodes, and none of the endpoints is this node's.
    #[error(
        "none of the endpoints is served by this node (bound on {0}): pass --address with the \
         host:port the endpoint URLs use for this node, or --self HOST:PORT when it listens \
         on another address than the one the list names it by"
    )]
    NotInEndpoints(SocketAddr),
}

/// A server running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// `true` when serving HTTPS.
    pub tls: bool,
    /// `true` when this node is one of several (the store opens in the background).
    pub multi_node: bool,
    /// How many drives this node serves itself, and how many nodes the endpoints name.
    pub drives_here: usize,
    front: Arc<Front>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    opener: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT` style base URL (loopback when bound to all interfaces).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let ip = match self.local_addr.ip() {
            ip if ip.is_unspecified() => match ip {
                std::net::IpAddr::V4(_) => "127.0.0.1".to_string(),
                std::net::IpAddr::V6(_) => "[::1]".to_string(),
            },
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        format!("{scheme}://{ip}:{}", self.local_addr.port())
    }

    /// The engine, once open (always, for a single node).
    pub fn store(&self) -> Option<Store> {
        self.front.s3().map(|s| s.store.clone())
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        if let Some(o) = &self.opener {
            o.abort();
        }
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        endpoints: config.endpoints.clone(),
        parity: config.parity,
        block_size: config.block_size,
    }
}

/// The S3 front end over an open store; also starts the store's background healing (the
/// heal queue: damage a GET found, missed writes; the scanner; blank-drive bulk heals).
fn s3_service(config: &Config, store: Store) -> Arc<S3Service> {
    store.spawn_healing();
    Arc::new(S3Service::new(
        store,
        &config.region,
        config.domains.clone(),
        &config.credentials.access_key,
        &config.credentials.secret_key,
    ))
}

/// The admin API over an open store (root credentials only).
fn admin_api(config: &Config, store: Store) -> Arc<admin::AdminApi> {
    Arc::new(admin::AdminApi::new(
        store,
        &config.region,
        &config.credentials.access_key,
        &config.credentials.secret_key,
    ))
}

/// Runs the server in the background. A single node (local paths, or URLs naming one
/// `host:port`) opens its store first and binds after. Several nodes bind first, serve the
/// internode RPC and health at once, answer S3 with `503 SlowDown` until the store opened
/// (in the background: it waits for the peers), then serve S3.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let endpoints = node::expand(&config.endpoints)?;
    let multi_node = node::is_multi_node(&endpoints);
    let store = if multi_node {
        None
    } else {
        Some(Store::open(store_config(&config)).await?)
    };
    let tls = match &config.tls {
        Some(paths) => Some(tls::acceptor(&paths.cert, &paths.key)?),
        None => None,
    };
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.address,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.address,
        source,
    })?;
    let (front, opening, drives_here) = match store {
        Some(store) => {
            let n = endpoints.len();
            let front = Front::ready(s3_service(&config, store.clone()));
            front.open_admin(admin_api(&config, store));
            (Arc::new(front), None, n)
        }
        None => {
            let key = InternodeKey::derive(
                &config.credentials.access_key,
                &config.credentials.secret_key,
            );
            let node_cfg = node::node_config(&config, local_addr, &endpoints, key.clone()).await?;
            let cfg = store_config(&config);
            let drives = NodeDrives::prepare(&cfg, node_cfg)?;
            let served = drives.served();
            if served.is_empty() {
                return Err(StartError::NotInEndpoints(local_addr));
            }
            let n = served.len();
            let front = Arc::new(Front::starting(RpcService::new(served, key)));
            (front, Some((cfg, drives)), n)
        }
    };
    let (shutdown, rx) = watch::channel(false);
    let is_tls = tls.is_some();
    let task = tokio::spawn(listener::serve(listener, tls, front.clone(), rx));
    let opener = opening.map(|(cfg, drives)| {
        let front = front.clone();
        let config = config.clone();
        tokio::spawn(async move {
            match Store::open_on(cfg, drives).await {
                Ok(store) => {
                    let l = store.layout();
                    tracing::info!(
                        sets = l.sets,
                        drives_per_set = l.drives_per_set,
                        data = l.data_shards,
                        parity = l.parity_shards,
                        "store open; serving S3"
                    );
                    front.open_admin(admin_api(&config, store.clone()));
                    front.open(s3_service(&config, store));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not open; S3 requests get 503");
                    front.fail(e.to_string());
                }
            }
        })
    });
    Ok(RunningServer {
        local_addr,
        tls: is_tls,
        multi_node,
        drives_here,
        front,
        shutdown,
        task,
        opener,
    })
}
