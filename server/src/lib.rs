//! tessera-server: the S3 HTTP API on top of the `cluster` engine, plus the pieces the binary
//! wires together — typed configuration (`config`), TLS (`tls`), the accept loop
//! (`listener`), health probes (`health`), the startup banner and CLI (`cli`) — and the
//! `tessera bench` load generator (`bench`). [`start`] opens the store, binds the listener and
//! serves in the background; tests use it to run the real server on a real socket. This crate
//! owns the S3 protocol only; storage semantics are the engine's and signature math is
//! `sigv4`'s.

pub mod bench;
pub mod cli;
pub mod config;
pub mod health;
pub mod listener;
pub mod s3;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
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
}

/// A server running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// `true` when serving HTTPS.
    pub tls: bool,
    /// The engine (tests inspect it to check that failed requests changed nothing).
    pub store: Store,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
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

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Opens the store, binds the listener and starts serving in the background.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let store = Store::open(StoreConfig {
        endpoints: config.endpoints.clone(),
        parity: config.parity,
        block_size: config.block_size,
    })
    .await?;
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
    let service = Arc::new(S3Service::new(
        store.clone(),
        &config.region,
        config.domains.clone(),
        &config.credentials.access_key,
        &config.credentials.secret_key,
    ));
    let (shutdown, rx) = watch::channel(false);
    let is_tls = tls.is_some();
    let task = tokio::spawn(listener::serve(listener, tls, service, rx));
    Ok(RunningServer {
        local_addr,
        tls: is_tls,
        store,
        shutdown,
        task,
    })
}
