//! This node's place in a multi-node deployment: which endpoints it serves itself
//! ([`NodeConfig`]), its own drives as they are served to the peers from before the store
//! opens ([`NodeDrives`], [`ServedDrive`]), and how a peer's drive is probed at startup.
//! The startup rules themselves are the pure [`crate::format::plan_startup`]; `Store::open_on`
//! runs them. It must never decide quorum, and never write on a peer's drive.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::dlock::{LockConfig, LockTable};
use crate::drive::{DataMove, Drive, DriveInfo, LocalDrive, RemoteDrive, ShardReader, ShardWriter};
use crate::endpoints::expand_endpoints;
use crate::format::Probe;
use crate::metastore::{Entries, MetaOp, ScanRange, Table};
use crate::names::DataId;
use crate::rpc::{InternodeKey, RpcOptions, RpcTimeouts, Transport};
use crate::{DriveError, StoreConfig, StoreError};

/// How this node finds itself among the endpoints and reaches its peers. The default is a
/// single node: URLs on `localhost`/`127.0.0.1` are local, and no other node is expected.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The `(host, port)` names this node answers on (from the server's `--address` and
    /// the host names the operator used for it). A URL endpoint is this node's when host
    /// AND port match one of them. `None`: loopback URLs are local, whatever their port.
    pub local_addresses: Option<Vec<(String, u16)>>,
    /// Signs internode calls; needed as soon as one endpoint is another node's (derive it
    /// from the root credentials with [`InternodeKey::derive`]).
    pub internode_key: Option<InternodeKey>,
    pub transport: Transport,
    pub timeouts: RpcTimeouts,
    /// The source IP of this node's internode connections (see [`RpcOptions::source_ip`]);
    /// `None`: whatever the system picks.
    pub source_ip: Option<std::net::IpAddr>,
    /// Trust for `https://` peers ([`crate::rpc::tls::client_config`]); needed when the
    /// endpoints are `https://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How long startup waits for peers to answer and to format their drives before it
    /// proceeds without them (or, on a fresh deployment, gives up).
    pub startup_wait: Duration,
    /// How often startup probes the peers again while it waits.
    pub startup_poll: Duration,
    /// Lease and retry timing of the distributed key locks (several nodes only).
    pub locks: LockConfig,
}

impl NodeConfig {
    /// How this node's RPC client reaches the peers.
    pub fn rpc_options(&self) -> RpcOptions {
        RpcOptions {
            timeouts: self.timeouts.clone(),
            transport: self.transport,
            source_ip: self.source_ip,
            tls: self.tls.clone(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            local_addresses: None,
            internode_key: None,
            transport: Transport::default(),
            timeouts: RpcTimeouts::default(),
            source_ip: None,
            tls: None,
            startup_wait: Duration::from_secs(60),
            startup_poll: Duration::from_millis(250),
            locks: LockConfig::default(),
        }
    }
}

/// This node's drives, ready to be served to peers before (and while) the store opens.
#[derive(Clone, Debug)]
pub struct NodeDrives {
    pub(crate) config: NodeConfig,
    /// One per endpoint, in endpoint order: `Some` for this node's drives.
    pub(crate) served: Vec<Option<Arc<ServedDrive>>>,
    /// This node's lock table: granted to its own store in-process and to peers through
    /// its served drives (see [`Drive::lock_table`]).
    pub(crate) lock_table: Arc<LockTable>,
}

impl NodeDrives {
    /// Finds this node's drives among `cfg`'s endpoints. No I/O: a drive is probed when a
    /// peer or the store asks.
    pub fn prepare(cfg: &StoreConfig, node: NodeConfig) -> Result<NodeDrives, StoreError> {
        let endpoints = expand_endpoints(&cfg.endpoints)?;
        let lock_table = Arc::new(LockTable::new());
        let served = endpoints
            .iter()
            .map(|e| {
                e.served_here(node.local_addresses.as_deref()).map(|root| {
                    Arc::new(ServedDrive {
                        endpoint: e.to_string(),
                        root,
                        state: RwLock::new(Served::Starting),
                        locks: lock_table.clone(),
                    })
                })
            })
            .collect();
        Ok(NodeDrives {
            config: node,
            served,
            lock_table,
        })
    }

    /// This node's lock table (what it grants to itself and to its peers).
    pub fn lock_table(&self) -> Arc<LockTable> {
        self.lock_table.clone()
    }

    /// `(endpoint, drive)` for every drive this node serves, for [`crate::rpc::RpcService`].
    /// Until the store has opened a drive, peers may only ask for its `info` (its format
    /// record, or that it is fresh); every other call answers `Offline`.
    pub fn served(&self) -> Vec<(String, Arc<dyn Drive>)> {
        self.served
            .iter()
            .flatten()
            .map(|d| (d.endpoint.clone(), d.clone() as Arc<dyn Drive>))
            .collect()
    }
}

#[derive(Debug)]
enum Served {
    Starting,
    Open(Arc<dyn Drive>),
    Failed(String),
}

/// One of this node's drives as peers see it: probed live while the node starts, the
/// opened `LocalDrive` afterwards. See [`NodeDrives::served`].
#[derive(Debug)]
pub struct ServedDrive {
    endpoint: String,
    root: PathBuf,
    state: RwLock<Served>,
    locks: Arc<LockTable>,
}

impl ServedDrive {
    pub(crate) fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub(crate) fn set_open(&self, drive: Arc<dyn Drive>) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Served::Open(drive);
    }

    pub(crate) fn set_failed(&self, reason: String) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Served::Failed(reason);
    }

    fn drive(&self) -> Result<Arc<dyn Drive>, DriveError> {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            Served::Open(d) => Ok(d.clone()),
            Served::Starting => Err(DriveError::Offline(format!(
                "{}: its node is still starting",
                self.endpoint
            ))),
            Served::Failed(r) => Err(DriveError::Offline(format!("{}: {r}", self.endpoint))),
        }
    }
}

/// What a fresh, starting or failed drive looks like from outside.
fn starting_info(endpoint: &str, probe: Probe) -> Result<DriveInfo, DriveError> {
    match probe {
        Probe::Formatted(f) => Ok(DriveInfo {
            endpoint: endpoint.to_owned(),
            online: true,
            format: Some(f),
        }),
        Probe::Fresh => Ok(DriveInfo {
            endpoint: endpoint.to_owned(),
            online: true,
            format: None,
        }),
        Probe::Unformatted => Ok(DriveInfo {
            endpoint: endpoint.to_owned(),
            online: false,
            format: None,
        }),
        Probe::Offline(r) => Err(DriveError::Offline(format!("{endpoint}: {r}"))),
    }
}

/// A peer's drive as startup sees it: its format record, fresh (its node answers, nothing
/// written yet), or offline (no answer, or its node refuses to serve it).
pub(crate) async fn probe_remote(drive: &RemoteDrive) -> Probe {
    match drive.info().await {
        Ok(DriveInfo {
            format: Some(f), ..
        }) => Probe::Formatted(f),
        Ok(DriveInfo { online: true, .. }) => Probe::Fresh,
        Ok(_) => Probe::Offline("its node does not serve it".into()),
        Err(e) => Probe::Offline(e.to_string()),
    }
}

#[async_trait]
impl Drive for ServedDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn lock_table(&self) -> Option<Arc<LockTable>> {
        Some(self.locks.clone())
    }

    async fn info(&self) -> Result<DriveInfo, DriveError> {
        let open = match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            Served::Open(d) => Some(Ok(d.clone())),
            Served::Failed(r) => Some(Err(r.clone())),
            Served::Starting => None,
        };
        match open {
            Some(Ok(d)) => d.info().await,
            // Refused or unopenable: answers, but never offers itself as fresh.
            Some(Err(_)) => starting_info(&self.endpoint, Probe::Unformatted),
            None => {
                let root = self.root.clone();
                let probe = tokio::task::spawn_blocking(move || LocalDrive::probe(&root))
                    .await
                    .unwrap_or_else(|e| Probe::Offline(e.to_string()));
                starting_info(&self.endpoint, probe)
            }
        }
    }

    async fn create_staged(
        &self,
        tmp: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardWriter>, DriveError> {
        self.drive()?.create_staged(tmp, file).await
    }

    async fn commit(&self, data: Option<DataMove>, meta: Vec<MetaOp>) -> Result<(), DriveError> {
        self.drive()?.commit(data, meta).await
    }

    async fn remove_staged(&self, tmp: &DataId) -> Result<(), DriveError> {
        self.drive()?.remove_staged(tmp).await
    }

    async fn read_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DriveError> {
        self.drive()?
            .read_shard(bucket, data_id, file, offset, len)
            .await
    }

    async fn open_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardReader>, DriveError> {
        self.drive()?.open_shard(bucket, data_id, file).await
    }

    async fn write_shard_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        bytes: Bytes,
    ) -> Result<(), DriveError> {
        self.drive()?
            .write_shard_file(bucket, data_id, file, bytes)
            .await
    }

    async fn delete_data(&self, bucket: &str, data_id: &DataId) -> Result<(), DriveError> {
        self.drive()?.delete_data(bucket, data_id).await
    }

    async fn delete_data_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<(), DriveError> {
        self.drive()?.delete_data_file(bucket, data_id, file).await
    }

    async fn meta_get(&self, table: Table, key: Vec<u8>) -> Result<Option<Vec<u8>>, DriveError> {
        self.drive()?.meta_get(table, key).await
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> Result<Entries, DriveError> {
        self.drive()?.meta_scan(table, range).await
    }

    async fn meta_apply(&self, ops: Vec<MetaOp>) -> Result<(), DriveError> {
        self.drive()?.meta_apply(ops).await
    }

    async fn read_version(
        &self,
        key: Vec<u8>,
        inline: bool,
    ) -> Result<Option<crate::drive::StoredVersion>, DriveError> {
        self.drive()?.read_version(key, inline).await
    }

    async fn commit_version(
        &self,
        data: Option<DataMove>,
        meta: Vec<MetaOp>,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, DriveError> {
        self.drive()?.commit_version(data, meta, key).await
    }
}
