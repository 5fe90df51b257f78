//! `Store`: the engine's public face. Opens the drives named by the endpoints (formatting
//! fresh ones, refusing foreign ones, cleaning tmp/; with peers, after agreeing with them —
//! see `node`), groups them into erasure sets, routes
//! each object to its set, and implements the bucket operations (which touch every set).
//! Object operations live in `object/`, `list`, `multipart`, `copy` and `heal`. Knows
//! nothing of HTTP.

use std::sync::Arc;

use futures::future::join_all;

use crate::body::ObjectBody;
use crate::checksum::ChecksumAlgorithm;
use crate::dlock::{DistLocker, LockNode};
use crate::drive::liveness::{Liveness, NodeEvent};
use crate::drive::{Drive, LocalDrive, OfflineDrive, RemoteDrive};
use crate::endpoints::{expand_endpoints, Endpoint};
use crate::format::{plan_startup, Decision, Probe, Startup};
use crate::heal::HealQueue;
use crate::locks::KeyLocks;
use crate::metastore::{MetaOp, ScanRange, Table};
use crate::names::{BucketName, ObjectKey, UploadId};
use crate::node::{probe_remote, NodeConfig, NodeDrives};
use crate::record::{decode, encode, now_ns, to_system_time, BucketRecord};
use crate::rpc::RpcClient;
use crate::set::{set_for_key, ErasureSet, SetLayout};
use crate::types::*;
use crate::StoreError;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Endpoints as typed (ellipses allowed; an entry may hold several separated by spaces).
    pub endpoints: Vec<String>,
    /// Parity shards per set; `None` = the default for the set size.
    pub parity: Option<usize>,
    /// Bytes of object data per erasure block (default [`erasure::DEFAULT_BLOCK_SIZE`]).
    pub block_size: usize,
}

impl StoreConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        StoreConfig {
            endpoints,
            parity: None,
            block_size: erasure::DEFAULT_BLOCK_SIZE,
        }
    }
}

/// Runs a mutating operation to completion in its own task: a caller that stops waiting
/// (a client disconnect drops the request future) never leaves a commit half done or its
/// undo not run.
async fn detached<T: Send + 'static>(
    fut: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(fut).await.map_err(StoreError::internal)?
}

/// Shared state behind every `Store` clone.
#[derive(Debug)]
pub(crate) struct Inner {
    pub deployment_id: String,
    pub layout: SetLayout,
    pub block_size: usize,
    pub sets: Vec<Arc<ErasureSet>>,
    pub locks: KeyLocks,
    pub heal_queue: HealQueue,
    pub node: NodeDrives,
    /// The peer nodes' reachability (empty on a single node).
    pub liveness: Liveness,
    /// Scanner counters, bulk heals, drives replaced at open (see `heal::status`).
    pub heal: crate::heal::status::HealState,
}

/// The storage engine. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens (and on first start formats) the drives of a single node: every endpoint must
    /// be served by this process (see [`Store::open_on`] for several nodes). Errors name the
    /// drive refused.
    pub async fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        let node = NodeDrives::prepare(&cfg, NodeConfig::default())?;
        Store::open_on(cfg, node).await
    }

    /// Opens the store of one node of a deployment whose drives are spread over several
    /// nodes. `node` comes from [`NodeDrives::prepare`]; serve [`NodeDrives::served`] to the
    /// peers BEFORE calling this, since every node waits (up to
    /// [`NodeConfig::startup_wait`]) for the others to answer and to agree on the
    /// deployment (rules: [`crate::format::plan_startup`]). This node's drives are opened
    /// locally, the peers' reached through one shared [`RpcClient`].
    ///
    /// When it fails (a drive refused, no deployment to join), this node's drives stop
    /// offering themselves to the peers: they answer `online: false` from then on.
    pub async fn open_on(cfg: StoreConfig, node: NodeDrives) -> Result<Store, StoreError> {
        let served: Vec<_> = node.served.iter().flatten().cloned().collect();
        let opened = Store::start(cfg, node).await;
        if let Err(e) = &opened {
            for d in served {
                d.set_failed(format!("its node did not start: {e}"));
            }
        }
        opened
    }

    async fn start(cfg: StoreConfig, node: NodeDrives) -> Result<Store, StoreError> {
        let endpoints = expand_endpoints(&cfg.endpoints)?;
        let layout = SetLayout::new(endpoints.len(), cfg.parity)?;
        erasure::Geometry::new(layout.data, layout.parity, cfg.block_size)
            .map_err(|e| StoreError::Config(format!("block size {}: {e}", cfg.block_size)))?;
        let names: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        if node.served.len() != names.len() {
            return Err(StoreError::Config(
                "the node's drives were prepared for other endpoints".into(),
            ));
        }
        let local: Vec<bool> = node.served.iter().map(Option::is_some).collect();
        let client = if local.iter().all(|l| *l) {
            None
        } else {
            let key = node.config.internode_key.clone().ok_or_else(|| {
                StoreError::Config(
                    "endpoints on other nodes need the internode key (root credentials)".into(),
                )
            })?;
            Some(RpcClient::with_options(key, node.config.rpc_options()))
        };
        let locks = match &client {
            None => KeyLocks::new(),
            Some(c) => KeyLocks::distributed(DistLocker::new(
                lock_nodes(&endpoints, &local, &node, c),
                node.config.locks.clone(),
            )),
        };
        let mut remotes: Vec<Option<RemoteDrive>> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            remotes.push(match (&client, local[i]) {
                (Some(c), false) => Some(
                    RemoteDrive::new(name, c.clone())
                        .map_err(|e| StoreError::Config(format!("endpoint {name}: {e}")))?,
                ),
                _ => None,
            });
        }

        let liveness = Liveness::new(remotes.iter().flatten().map(|r| r.liveness()).collect());
        let deadline = tokio::time::Instant::now() + node.config.startup_wait;
        let mut replaced: Vec<usize> = Vec::new();
        // This node's fresh drives whose format write failed: offline from then on.
        let mut unformattable: Vec<(usize, String)> = Vec::new();
        let (deployment_id, decisions) = loop {
            let mut probes: Vec<Probe> = join_all((0..names.len()).map(|i| {
                let served = node.served[i].clone();
                let remote = remotes[i].clone();
                async move {
                    match (served, remote) {
                        (Some(d), _) => {
                            let root = d.root().to_path_buf();
                            tokio::task::spawn_blocking(move || LocalDrive::probe(&root))
                                .await
                                .unwrap_or_else(|e| Probe::Offline(e.to_string()))
                        }
                        (None, Some(r)) => probe_remote(&r).await,
                        (None, None) => Probe::Offline("no way to reach it".into()),
                    }
                }
            }))
            .await;
            for (i, why) in &unformattable {
                probes[*i] = Probe::Offline(format!("could not be formatted: {why}"));
            }
            let gave_up = tokio::time::Instant::now() >= deadline;
            let existing = probes.iter().any(|p| matches!(p, Probe::Formatted(_)));
            match plan_startup(&names, &probes, &local, &layout, gave_up)? {
                Startup::Open {
                    deployment_id,
                    decisions,
                } => {
                    if gave_up {
                        let missing: Vec<&str> = (0..names.len())
                            .filter(|&i| !local[i] && !matches!(probes[i], Probe::Formatted(_)))
                            .map(|i| names[i].as_str())
                            .collect();
                        if !missing.is_empty() {
                            tracing::warn!(
                                drives = ?missing,
                                "startup: proceeding without peer drives that did not answer \
                                 or were not formatted in time; they are used when they answer"
                            );
                        }
                    }
                    if existing {
                        replaced.extend(decisions.iter().enumerate().filter_map(|(i, d)| {
                            (local[i] && matches!(d, Decision::Format(_))).then_some(i)
                        }));
                    }
                    break (deployment_id, decisions);
                }
                Startup::Wait { reason, format_now } => {
                    tracing::info!(%reason, "startup: waiting");
                    let formatted_some = !format_now.is_empty();
                    for (i, f) in format_now {
                        let Some(d) = node.served[i].clone() else {
                            continue;
                        };
                        let all = node.served.clone();
                        let verdict = tokio::task::spawn_blocking(move || {
                            crate::format::mount::check_blank(&all, i)
                        })
                        .await;
                        if let Ok(crate::format::mount::BlankDrive::Unmounted(reason)) = verdict {
                            tracing::error!(%reason, "refusing to format a blank drive directory");
                            unformattable.push((i, reason));
                            continue;
                        }
                        let root = d.root().to_path_buf();
                        let res = tokio::task::spawn_blocking(move || {
                            LocalDrive::write_format(&root, &f)
                        })
                        .await;
                        let failure = match res {
                            Ok(Ok(())) => {
                                if existing {
                                    replaced.push(i);
                                }
                                continue;
                            }
                            Ok(Err(e)) => e.to_string(),
                            Err(e) => e.to_string(),
                        };
                        tracing::warn!(drive = %names[i], error = %failure, "format failed; drive offline");
                        unformattable.push((i, failure));
                    }
                    if !formatted_some {
                        tokio::time::sleep(node.config.startup_poll).await;
                    }
                }
            }
        };

        let opened = join_all(decisions.into_iter().enumerate().map(|(i, d)| {
            let name = names[i].clone();
            let served = node.served[i].clone();
            let remote = remotes[i].clone();
            let all = node.served.clone();
            async move {
                let Some(served) = served else {
                    return match remote {
                        Some(r) => Arc::new(r) as Arc<dyn Drive>,
                        None => Arc::new(OfflineDrive::new(name, "unreachable".into()))
                            as Arc<dyn Drive>,
                    };
                };
                let path = served.root().to_path_buf();
                let label = name.clone();
                let res = tokio::task::spawn_blocking(move || -> Result<Arc<dyn Drive>, String> {
                    let format = match d {
                        Decision::Use(f) => f,
                        Decision::Format(f) => {
                            use crate::format::mount::{check_blank, BlankDrive};
                            if let BlankDrive::Unmounted(r) = check_blank(&all, i) {
                                return Err(format!("not formatted: {r}"));
                            }
                            LocalDrive::write_format(&path, &f).map_err(|e| e.to_string())?;
                            f
                        }
                        Decision::Offline => return Err("unreachable at start".into()),
                    };
                    let drive = LocalDrive::open(&path, name, format).map_err(|e| e.to_string())?;
                    Ok(Arc::new(drive) as Arc<dyn Drive>)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match res {
                    Ok(d) => {
                        // The set holds the served handle, so a blank replacement can be
                        // re-formatted and swapped in at runtime (`heal::worker`).
                        served.set_open(d);
                        served as Arc<dyn Drive>
                    }
                    Err(reason) => {
                        tracing::warn!(drive = %label, %reason, "drive offline");
                        served.set_failed(reason);
                        served as Arc<dyn Drive>
                    }
                }
            }
        }))
        .await;
        let mut drives = opened.into_iter();
        let sets = (0..layout.sets)
            .map(|index| {
                Arc::new(ErasureSet {
                    index,
                    drives: drives.by_ref().take(layout.drives_per_set).collect(),
                    data: layout.data,
                    parity: layout.parity,
                    block_size: cfg.block_size,
                })
            })
            .collect();
        let store = Store {
            inner: Arc::new(Inner {
                deployment_id,
                layout,
                block_size: cfg.block_size,
                sets,
                locks,
                heal_queue: HealQueue::default(),
                node,
                liveness,
                heal: Default::default(),
            }),
        };
        if !replaced.is_empty() {
            store.restore_buckets(&replaced).await;
        }
        store.remember_mounts().await;
        store.open_heal_queue(&replaced).await;
        Ok(store)
    }

    /// Gives replacement drives (by global index) the bucket records a quorum knows, so
    /// empty buckets survive a drive swap; objects follow by healing.
    pub(crate) async fn restore_buckets(&self, drives: &[usize]) {
        let Ok(buckets) = self.list_buckets().await else {
            return;
        };
        let per_set = self.inner.layout.drives_per_set;
        for &i in drives {
            let drive = &self.inner.sets[i / per_set].drives[i % per_set];
            let ops: Vec<MetaOp> = buckets
                .iter()
                .map(|b| MetaOp::Put {
                    table: Table::Buckets,
                    key: b.name.as_bytes().to_vec(),
                    value: encode(&BucketRecord {
                        created_ns: b
                            .created
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_nanos() as u64)
                            .unwrap_or(0),
                    }),
                })
                .collect();
            if !ops.is_empty() {
                if let Err(e) = drive.meta_apply(ops).await {
                    tracing::warn!(drive = %drive.endpoint(), error = %e, "could not restore bucket records");
                }
            }
        }
    }

    /// Sets, drives per set, K+M, for banners and the admin API.
    pub fn layout(&self) -> LayoutSummary {
        let l = &self.inner.layout;
        LayoutSummary {
            deployment_id: self.inner.deployment_id.clone(),
            sets: l.sets,
            drives_per_set: l.drives_per_set,
            data_shards: l.data,
            parity_shards: l.parity,
            block_size: self.inner.block_size,
            drives: self
                .inner
                .sets
                .iter()
                .flat_map(|s| s.drives.iter().map(|d| d.endpoint().to_owned()))
                .collect(),
        }
    }

    /// Endpoints of the drives that are offline right now (unreachable at open, or their
    /// format record vanished since, or silent for a heartbeat probe's limit: a health check
    /// answers within about a probe interval, even while a node is cut off).
    pub async fn offline_drives(&self) -> Vec<String> {
        let all: Vec<&Arc<dyn Drive>> = self
            .inner
            .sets
            .iter()
            .flat_map(|s| s.drives.iter())
            .collect();
        use crate::drive::liveness::{heartbeat_timeout, probe_max};
        let limit = heartbeat_timeout(probe_max());
        let infos = join_all(all.iter().map(|d| async move {
            let silent = || crate::DriveError::Offline(format!("no answer within {limit:?}"));
            tokio::time::timeout(limit, d.info())
                .await
                .unwrap_or_else(|_| Err(silent()))
        }))
        .await;
        all.iter()
            .zip(infos)
            .filter(|(_, i)| !matches!(i, Ok(info) if info.online))
            .map(|(d, _)| d.endpoint().to_owned())
            .collect()
    }

    /// `(endpoint, drive)` for every drive this node serves (what an
    /// [`crate::rpc::RpcService`] offers the peers); the same as [`NodeDrives::served`].
    pub fn local_drives(&self) -> Vec<(String, Arc<dyn Drive>)> {
        self.inner.node.served()
    }

    /// The reachability of the peer nodes (see [`crate::drive::liveness`]).
    pub fn liveness(&self) -> &Liveness {
        &self.inner.liveness
    }

    /// Peer nodes going offline and coming back (`host:port` as the endpoint list names
    /// them), from now on. A node that comes back has missed the writes made while it was
    /// offline: `Online` is the cue to heal them. Never sends on a single node.
    pub fn node_events(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.inner.liveness.subscribe()
    }

    /// The objects queued for healing (found damaged on read, or written below full width).
    pub fn heal_queue(&self) -> &HealQueue {
        &self.inner.heal_queue
    }

    pub(crate) fn set_for(&self, b: &BucketName, k: &ObjectKey) -> &Arc<ErasureSet> {
        &self.inner.sets[set_for_key(b.as_str(), k.as_str(), self.inner.sets.len())]
    }

    // ---- buckets -------------------------------------------------------------------

    /// Creates a bucket on every drive. `BucketExists` if it is there already.
    pub async fn make_bucket(&self, b: &BucketName) -> Result<(), StoreError> {
        let (this, b) = (self.clone(), b.clone());
        detached(async move { this.make_bucket_now(&b).await }).await
    }

    async fn make_bucket_now(&self, b: &BucketName) -> Result<(), StoreError> {
        let _guard = self.inner.locks.lock(format!("bucket\0{b}")).await?;
        match self.bucket_info(b).await {
            Ok(_) => return Err(StoreError::BucketExists),
            Err(StoreError::NoSuchBucket) => {}
            Err(e) => return Err(e),
        }
        let record = encode(&BucketRecord {
            created_ns: now_ns(),
        });
        let op = MetaOp::Put {
            table: Table::Buckets,
            key: b.as_str().as_bytes().to_vec(),
            value: record,
        };
        self.apply_on_every_set(op).await
    }

    /// The bucket's info; `NoSuchBucket` when it settles as absent.
    pub async fn bucket_info(&self, b: &BucketName) -> Result<BucketInfo, StoreError> {
        let set = &self.inner.sets[0];
        let results = join_all(
            set.drives
                .iter()
                .map(|d| d.meta_get(Table::Buckets, b.as_str().as_bytes().to_vec())),
        )
        .await;
        let mut present: Option<BucketRecord> = None;
        let (mut yes, mut no) = (0, 0);
        for r in results {
            match r {
                Ok(Some(bytes)) => {
                    if let Ok(rec) = decode::<BucketRecord>(&bytes) {
                        yes += 1;
                        present = Some(match present {
                            Some(p) if p.created_ns <= rec.created_ns => p,
                            _ => rec,
                        });
                    }
                }
                Ok(None) => no += 1,
                Err(_) => {}
            }
        }
        let q = set.read_quorum();
        match present {
            Some(rec) if yes >= q => Ok(BucketInfo {
                name: b.as_str().to_owned(),
                created: to_system_time(rec.created_ns),
            }),
            _ if no >= q => Err(StoreError::NoSuchBucket),
            _ => Err(StoreError::ReadQuorum {
                ok: yes.max(no),
                need: q,
            }),
        }
    }

    /// Removes an empty bucket (objects only count; pending uploads are aborted with it).
    pub async fn delete_bucket(&self, b: &BucketName) -> Result<(), StoreError> {
        let (this, b) = (self.clone(), b.clone());
        detached(async move { this.delete_bucket_now(&b).await }).await
    }

    async fn delete_bucket_now(&self, b: &BucketName) -> Result<(), StoreError> {
        let _guard = self.inner.locks.lock(format!("bucket\0{b}")).await?;
        self.bucket_info(b).await?;
        let page = self
            .list_objects(
                b,
                &ListQuery {
                    max_keys: 1,
                    ..Default::default()
                },
            )
            .await?;
        if !page.objects.is_empty() {
            return Err(StoreError::BucketNotEmpty);
        }
        crate::uploads::abort_all_uploads(self, b).await?;
        self.apply_on_every_set(MetaOp::Delete {
            table: Table::Buckets,
            key: b.as_str().as_bytes().to_vec(),
        })
        .await
    }

    /// Every bucket a read quorum of the first set knows, sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        let set = &self.inner.sets[0];
        let range = ScanRange {
            start: std::ops::Bound::Unbounded,
            end: std::ops::Bound::Unbounded,
            limit: usize::MAX,
        };
        let results = set.scan_quorum(Table::Buckets, range).await?;
        let mut counts: std::collections::BTreeMap<Vec<u8>, (usize, u64)> = Default::default();
        for (k, v) in results.into_iter().flatten().flatten() {
            let created = decode::<BucketRecord>(&v)
                .map(|r| r.created_ns)
                .unwrap_or(0);
            let e = counts.entry(k).or_insert((0, u64::MAX));
            e.0 += 1;
            e.1 = e.1.min(created);
        }
        Ok(counts
            .into_iter()
            .filter(|(_, (n, _))| *n >= set.read_quorum())
            .map(|(k, (_, c))| BucketInfo {
                name: String::from_utf8_lossy(&k).into_owned(),
                created: to_system_time(c),
            })
            .collect())
    }

    /// Applies one op on every drive of every set; each set needs write quorum.
    async fn apply_on_every_set(&self, op: MetaOp) -> Result<(), StoreError> {
        for set in &self.inner.sets {
            let ok = join_all(set.drives.iter().map(|d| d.meta_apply(vec![op.clone()])))
                .await
                .iter()
                .filter(|r| r.is_ok())
                .count();
            if ok < set.write_quorum() {
                return Err(StoreError::WriteQuorum {
                    ok,
                    need: set.write_quorum(),
                });
            }
        }
        Ok(())
    }

    pub(crate) async fn require_bucket(&self, b: &BucketName) -> Result<(), StoreError> {
        self.bucket_info(b).await.map(|_| ())
    }

    // ---- objects -------------------------------------------------------------------

    /// Stores an object (streamed; a few blocks in memory). See [`PutOptions`].
    pub async fn put_object(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        body: impl ObjectBody + 'static,
        opts: PutOptions,
    ) -> Result<ObjectInfo, StoreError> {
        let (this, b, k) = (self.clone(), b.clone(), k.clone());
        detached(async move {
            this.require_bucket(&b).await?;
            let r = crate::object::put::put_object(&this, &b, &k, body, opts).await;
            this.inner.heal_queue.persist().await;
            r
        })
        .await
    }

    /// The object's info; `NoSuchKey` when absent.
    pub async fn head_object(
        &self,
        b: &BucketName,
        k: &ObjectKey,
    ) -> Result<ObjectInfo, StoreError> {
        let set = self.set_for(b, k);
        match crate::object::current_version(set, b.as_str(), k.as_str()).await {
            Ok(settled) => Ok(settled.record.info(b.as_str(), k.as_str())),
            Err(e) => Err(self.explain_miss(b, e).await),
        }
    }

    /// A key that settles as absent may be absent because its bucket is: the bucket is only
    /// checked then, so hits cost no bucket lookup.
    async fn explain_miss(&self, b: &BucketName, e: StoreError) -> StoreError {
        match e {
            StoreError::NoSuchKey => match self.bucket_info(b).await {
                Err(StoreError::NoSuchBucket) => StoreError::NoSuchBucket,
                _ => StoreError::NoSuchKey,
            },
            other => other,
        }
    }

    /// Reads an object or a range of it (`InvalidRange` when unsatisfiable), or one part of
    /// a multipart object (`part_number`, S3's `?partNumber=N`).
    pub async fn get_object(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        range: Option<ByteRange>,
        part_number: Option<u32>,
    ) -> Result<GetObject, StoreError> {
        // A found record proves the bucket (a bucket is deleted only when empty), so only a
        // miss asks a quorum whether the bucket exists: a hit costs one metadata quorum read.
        let set = self.set_for(b, k);
        match crate::object::get::get_object(
            &self.inner,
            set,
            b.as_str(),
            k.as_str(),
            range,
            part_number,
        )
        .await
        {
            Err(e) => Err(self.explain_miss(b, e).await),
            found => found,
        }
    }

    /// Deletes an object; `Ok` when it is absent.
    pub async fn delete_object(&self, b: &BucketName, k: &ObjectKey) -> Result<(), StoreError> {
        let (this, b, k) = (self.clone(), b.clone(), k.clone());
        detached(async move {
            this.require_bucket(&b).await?;
            let set = this.set_for(&b, &k);
            let r = crate::object::delete::delete_object(&this.inner, set, b.as_str(), k.as_str())
                .await;
            this.inner.heal_queue.persist().await;
            r
        })
        .await
    }

    /// Copies `src` to `dst` (streaming re-encode). Copying an object onto itself needs
    /// `replace_meta` (S3's REPLACE directive) and rewrites it with the new metadata.
    pub async fn copy_object(
        &self,
        src: (&BucketName, &ObjectKey),
        dst: (&BucketName, &ObjectKey),
        opts: CopyOptions,
    ) -> Result<ObjectInfo, StoreError> {
        let this = self.clone();
        let (sb, sk, db, dk) = (src.0.clone(), src.1.clone(), dst.0.clone(), dst.1.clone());
        detached(async move {
            let r = crate::copy::copy_object(&this, (&sb, &sk), (&db, &dk), opts).await;
            this.inner.heal_queue.persist().await;
            r
        })
        .await
    }

    /// One page of a listing, merged across drives and sets.
    pub async fn list_objects(
        &self,
        b: &BucketName,
        q: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        self.require_bucket(b).await?;
        crate::list::list_objects(self, b, q).await
    }

    // ---- multipart -----------------------------------------------------------------

    pub async fn create_multipart(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        meta: ObjectMeta,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<UploadId, StoreError> {
        let (this, b, k) = (self.clone(), b.clone(), k.clone());
        detached(async move {
            this.require_bucket(&b).await?;
            crate::multipart::create_multipart(&this, &b, &k, meta, checksum_algorithm).await
        })
        .await
    }

    pub async fn upload_part(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        id: &UploadId,
        part_number: u32,
        body: impl ObjectBody + 'static,
        opts: PartOptions,
    ) -> Result<PartInfo, StoreError> {
        let (this, b, k, id) = (self.clone(), b.clone(), k.clone(), id.clone());
        detached(async move {
            crate::multipart::upload_part(&this, &b, &k, &id, part_number, body, opts).await
        })
        .await
    }

    pub async fn list_parts(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        id: &UploadId,
        part_marker: u32,
        max_parts: usize,
    ) -> Result<PartsPage, StoreError> {
        crate::multipart::list_parts(self, b, k, id, part_marker, max_parts).await
    }

    /// Completes an upload without copying data. Validates ascending order
    /// (`InvalidPartOrder`), each part's existence and ETag (`InvalidPart`), and that all but
    /// the last part are at least 5 MiB (`EntityTooSmall`).
    pub async fn complete_multipart(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        id: &UploadId,
        parts: &[CompletedPart],
        precondition: Option<WritePrecondition>,
    ) -> Result<ObjectInfo, StoreError> {
        let (this, b, k, id, parts) = (
            self.clone(),
            b.clone(),
            k.clone(),
            id.clone(),
            parts.to_vec(),
        );
        detached(async move {
            let r = crate::multipart::complete_multipart(&this, &b, &k, &id, &parts, precondition)
                .await;
            if r.is_ok() {
                this.check_completed_parts(&b, &k).await;
            }
            this.inner.heal_queue.persist().await;
            r
        })
        .await
    }

    pub async fn abort_multipart(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        id: &UploadId,
    ) -> Result<(), StoreError> {
        let (this, b, k, id) = (self.clone(), b.clone(), k.clone(), id.clone());
        detached(async move { crate::multipart::abort_multipart(&this, &b, &k, &id).await }).await
    }

    pub async fn list_uploads(
        &self,
        b: &BucketName,
        q: &UploadsQuery,
    ) -> Result<UploadsPage, StoreError> {
        self.require_bucket(b).await?;
        crate::uploads::list_uploads(self, b, q).await
    }

    // ---- healing -------------------------------------------------------------------

    /// Rebuilds missing or rotten shards and stale records of one object on every drive.
    pub async fn heal_object(
        &self,
        b: &BucketName,
        k: &ObjectKey,
    ) -> Result<HealReport, StoreError> {
        let (this, b, k) = (self.clone(), b.clone(), k.clone());
        detached(async move { crate::heal::heal_object(&this, &b, &k).await }).await
    }
}

/// The nodes that vote on locks: one vote per distinct `host:port` among the URL endpoints,
/// exactly as every node counts them. Names served here vote with this node's own table
/// (in-process); a node named twice votes twice on every node's count, so any two
/// majorities still share a table. A node serving no endpoint (a gateway) has no vote.
fn lock_nodes(
    endpoints: &[Endpoint],
    local: &[bool],
    node: &NodeDrives,
    client: &RpcClient,
) -> Vec<LockNode> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (e, here) in endpoints.iter().zip(local) {
        let base = match e {
            Endpoint::Url {
                scheme, host, port, ..
            } => {
                let default = if scheme == "https" { 443 } else { 80 };
                format!("{scheme}://{host}:{}", port.unwrap_or(default))
            }
            Endpoint::Local(_) => "local".to_owned(),
        };
        if !seen.insert(base.clone()) {
            continue;
        }
        out.push(if *here {
            LockNode::Local(node.lock_table.clone())
        } else {
            LockNode::Remote {
                base,
                client: client.clone(),
            }
        });
    }
    out
}
