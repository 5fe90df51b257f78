//! `RemoteDrive`: a drive on another node, reached over internode RPC (`crate::rpc`). Each
//! `Drive` call becomes one request to the node serving the drive, except the node calls
//! ([`RemoteDrive::read_versions`], [`RemoteDrive::commit_versions`]) that carry one key's
//! record read or commit for several drives of one node in one request; staged shard files are
//! uploaded as one streamed request body per file (a bounded queue of framed blocks, the
//! remote fsync reported by `finish`), shard reads stream back, and an open shard reader is
//! a handle on the remote node (reopened transparently if the node forgot it). Errors come
//! back as the same `DriveError` variant the remote drive returned; an unreachable or silent
//! node is `DriveError::NoAnswer` (the call may have taken effect there). Liveness is shared per node ([`super::liveness`]): a call
//! that finds the node silent marks it offline, and from then on every call to its drives
//! fails at once with `Offline` (`info` first makes one brief probe) until a background probe
//! sees it answer again. It must never retry a call that changes state.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::liveness::{NodeLiveness, Probe};
use super::{check_file_name, DataMove, Drive, DriveInfo, ShardReader, ShardWriter, StoredVersion};
use crate::endpoints::Endpoint;
use crate::metastore::{Entries, MetaOp, ScanRange, Table};
use crate::names::DataId;
use crate::rpc::client::{RpcError, Target};
use crate::rpc::wire::{self, Method};
use crate::rpc::RpcClient;
use crate::DriveError;

/// Ranges sent in one `read_ranges` request (keeps the query string short).
const RANGES_PER_REQUEST: usize = 256;

/// See the module docs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteDrive {
    inner: Arc<Remote>,
}

#[derive(Debug)]
struct Remote {
    target: Target,
    client: RpcClient,
    live: Arc<NodeLiveness>,
}

fn decode<T: serde::de::DeserializeOwned>(t: &Target, body: &[u8]) -> Result<T, DriveError> {
    serde_json::from_slice(body)
        .map_err(|e| DriveError::Offline(format!("{}: unreadable answer: {e}", t.endpoint)))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Bytes, DriveError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| DriveError::Invalid(format!("request encoding: {e}")))
}

impl RemoteDrive {
    /// A drive named by a URL endpoint (`http://host:port/path`, exactly as in the shared
    /// endpoint list; `https://` when `client` has TLS), reached through `client`. No
    /// request is made here.
    pub fn new(endpoint: &str, client: RpcClient) -> Result<Self, DriveError> {
        let Endpoint::Url {
            scheme, host, port, ..
        } = Endpoint::parse(endpoint).map_err(|e| DriveError::Invalid(e.to_string()))?
        else {
            return Err(DriveError::Invalid(format!(
                "{endpoint} is a local path, not a remote drive"
            )));
        };
        let port = match scheme.as_str() {
            "http" => port.unwrap_or(80),
            "https" if client.has_tls() => port.unwrap_or(443),
            "https" => {
                return Err(DriveError::Invalid(format!(
                    "{endpoint}: an https endpoint needs TLS between nodes (start the server with --certs-dir)"
                )))
            }
            other => {
                return Err(DriveError::Invalid(format!(
                    "{endpoint}: internode RPC over {other} is not supported"
                )))
            }
        };
        let base = format!("{scheme}://{host}:{port}");
        Ok(RemoteDrive {
            inner: Arc::new(Remote {
                live: NodeLiveness::for_node(&base),
                target: Target {
                    base,
                    drive: wire::drive_segment(endpoint),
                    endpoint: endpoint.to_owned(),
                },
                client,
            }),
        })
    }

    /// Whether this drive's node is believed reachable (see [`super::liveness`]).
    pub fn is_online(&self) -> bool {
        self.inner.live.is_online()
    }

    /// The liveness state shared by every remote drive of this drive's node.
    pub fn liveness(&self) -> Arc<NodeLiveness> {
        self.inner.live.clone()
    }

    /// Runs one call unless the node is offline, and records what its outcome says of the
    /// node's liveness.
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RpcError>>,
    ) -> Result<T, DriveError> {
        self.inner.live.check(&self.inner.target.endpoint)?;
        let r = call.await;
        self.observe(&r);
        r.map_err(DriveError::from)
    }

    fn observe<T>(&self, r: &Result<T, RpcError>) {
        self.inner.live.observe(r, || self.probe());
    }

    /// The probe of this drive's node: an `info` call under a short limit; any answer the
    /// node itself sent (success or a drive error) counts as alive.
    fn probe(&self) -> Probe {
        let client = self.inner.client.clone();
        let target = self.inner.target.clone();
        let t = client.timeouts();
        let limit = (t.connect * 2).min(t.unary).max(Duration::from_millis(100));
        Box::new(move || {
            let client = client.clone();
            let target = target.clone();
            Box::pin(async move {
                let call = client.unary(&target, Method::Info, &[], None);
                match tokio::time::timeout(limit, call).await {
                    Err(_) => false,
                    Ok(Ok(_)) => true,
                    Ok(Err(e)) => !e.is_transport(),
                }
            })
        })
    }

    async fn call(
        &self,
        method: Method,
        params: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<Vec<u8>, DriveError> {
        self.guarded(
            self.inner
                .client
                .unary(&self.inner.target, method, params, body),
        )
        .await
    }

    /// The node serving this drive (`http://host:port`): drives with the same base share
    /// node calls.
    pub fn node_base(&self) -> &str {
        &self.inner.target.base
    }

    /// One call to the node of `drives` (all on one node, see [`Self::node_base`]) carrying
    /// work for each: the answers in the same order, or one error for all of them when the
    /// call itself failed.
    async fn node_call(
        drives: &[&RemoteDrive],
        method: Method,
        body: Bytes,
    ) -> Vec<wire::SlotAnswer> {
        let Some(first) = drives.first() else {
            return Vec::new();
        };
        let r = &first.inner;
        let target = Target {
            base: r.target.base.clone(),
            drive: wire::NODE_SEGMENT.to_owned(),
            endpoint: format!("{} (node)", r.target.base),
        };
        let answer = first
            .guarded(r.client.unary(&target, method, &[], Some(body)))
            .await
            .and_then(|b| wire::decode_answers(&b, drives.len()));
        match answer {
            Ok(a) => a,
            Err(e) => drives.iter().map(|_| Err(clone_error(&e))).collect(),
        }
    }

    /// [`Drive::read_version`] of `key` on several drives of one node, in one request.
    pub async fn read_versions(
        drives: &[&RemoteDrive],
        key: Vec<u8>,
        inline: bool,
    ) -> Vec<Result<Option<StoredVersion>, DriveError>> {
        let body = encode(&wire::ReadVersionsRequest {
            drives: drives
                .iter()
                .map(|d| d.inner.target.drive.clone())
                .collect(),
            key: wire::B64(key),
            inline,
        });
        let answers = match body {
            Ok(body) => Self::node_call(drives, Method::ReadVersions, body).await,
            Err(e) => drives.iter().map(|_| Err(clone_error(&e))).collect(),
        };
        answers
            .into_iter()
            .map(|a| a.map(|o| o.map(|(record, inline)| StoredVersion { record, inline })))
            .collect()
    }

    /// [`Drive::commit_version`] on several drives of one node (each with its own data
    /// move and ops), in one request.
    pub async fn commit_versions(
        drives: &[&RemoteDrive],
        work: Vec<(Option<DataMove>, Vec<MetaOp>)>,
        key: Vec<u8>,
    ) -> Vec<Result<Option<Vec<u8>>, DriveError>> {
        let body = encode(&wire::CommitVersionsRequest {
            key: wire::B64(key),
            drives: drives
                .iter()
                .zip(work)
                .map(|(d, (data, meta))| wire::DriveCommit {
                    drive: d.inner.target.drive.clone(),
                    data: data.map(Into::into),
                    meta: meta.into_iter().map(Into::into).collect(),
                })
                .collect(),
        });
        let answers = match body {
            Ok(body) => Self::node_call(drives, Method::CommitVersions, body).await,
            Err(e) => drives.iter().map(|_| Err(clone_error(&e))).collect(),
        };
        answers
            .into_iter()
            .map(|a| a.map(|o| o.map(|(previous, _)| previous)))
            .collect()
    }

    async fn open_handle(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<u64, DriveError> {
        let body = self
            .call(
                Method::OpenShard,
                &[
                    ("bucket", bucket.to_owned()),
                    ("data_id", data_id.to_string()),
                    ("file", file.to_owned()),
                ],
                None,
            )
            .await?;
        Ok(decode::<wire::OpenResponse>(&self.inner.target, &body)?.handle)
    }
}

/// The upload of one staged file; see the module docs.
struct RemoteShardWriter {
    drive: RemoteDrive,
    endpoint: String,
    idle: std::time::Duration,
    tx: Option<mpsc::Sender<Bytes>>,
    answer: Option<crate::rpc::client::UploadAnswer>,
}

impl RemoteShardWriter {
    /// The service's answer (it ends the upload, successfully or not).
    async fn answer(&mut self) -> Result<(), DriveError> {
        let r = self.answer_inner().await;
        self.drive.observe(&r);
        r.map_err(DriveError::from)
    }

    async fn answer_inner(&mut self) -> Result<(), RpcError> {
        let Some(task) = self.answer.as_mut() else {
            return Err(DriveError::Invalid("writer used after a failure".into()).into());
        };
        let r = match tokio::time::timeout(self.idle, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(RpcError::Transport(format!("{}: {e}", self.endpoint))),
            Err(_) => Err(RpcError::Transport(format!(
                "{}: no answer to the upload within {:?}",
                self.endpoint, self.idle
            ))),
        };
        if let Some(task) = self.answer.take() {
            task.abort();
        }
        r
    }

    async fn send(&mut self, b: Bytes) -> Result<(), DriveError> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(DriveError::Invalid("writer used after a failure".into()));
        };
        match tokio::time::timeout(self.idle, tx.send(b)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                // The request ended early: the service refused or the connection broke.
                self.tx = None;
                let r = match self.answer_inner().await {
                    Err(e) => Err(e),
                    Ok(()) => Err(RpcError::Transport(format!(
                        "{}: the upload ended before it was finished",
                        self.endpoint
                    ))),
                };
                self.drive.observe(&r);
                r.map_err(DriveError::from)
            }
            Err(_) => {
                self.tx = None;
                if let Some(task) = self.answer.take() {
                    task.abort();
                }
                let r: Result<(), RpcError> = Err(RpcError::Transport(format!(
                    "{}: upload stalled for {:?}",
                    self.endpoint, self.idle
                )));
                self.drive.observe(&r);
                r.map_err(DriveError::from)
            }
        }
    }
}

impl Drop for RemoteShardWriter {
    fn drop(&mut self) {
        // Unfinished: cut the request so the service drops its staged file unsynced.
        if let Some(task) = self.answer.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl ShardWriter for RemoteShardWriter {
    async fn write(&mut self, framed: Bytes) -> Result<(), DriveError> {
        if framed.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(framed.len())
            .map_err(|_| DriveError::Invalid(format!("block of {} bytes", framed.len())))?;
        self.send(Bytes::copy_from_slice(&wire::frame_header(len)))
            .await?;
        self.send(framed).await
    }

    async fn finish(mut self: Box<Self>) -> Result<(), DriveError> {
        self.send(Bytes::copy_from_slice(&wire::frame_header(0)))
            .await?;
        self.tx = None;
        self.answer().await
    }
}

/// A shard file held open on the remote node.
struct RemoteShardReader {
    drive: RemoteDrive,
    bucket: String,
    data_id: DataId,
    file: String,
    handle: AtomicU64,
}

impl RemoteShardReader {
    async fn read_once(&self, handle: u64, offset: u64, len: usize) -> Result<Vec<u8>, RpcError> {
        let r = &self.drive.inner;
        r.client
            .read(
                &r.target,
                Method::ReadAt,
                &[
                    ("handle", handle.to_string()),
                    ("offset", offset.to_string()),
                    ("len", len.to_string()),
                ],
                len,
            )
            .await
    }
}

#[async_trait]
impl ShardReader for RemoteShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DriveError> {
        self.drive.guarded(self.read_at_inner(offset, len)).await
    }

    async fn read_ranges(&self, ranges: Vec<Range<u64>>) -> Result<Vec<Vec<u8>>, DriveError> {
        self.drive.guarded(self.read_ranges_inner(ranges)).await
    }
}

impl RemoteShardReader {
    async fn read_at_inner(&self, offset: u64, len: usize) -> Result<Vec<u8>, RpcError> {
        let handle = self.handle.load(Ordering::Relaxed);
        match self.read_once(handle, offset, len).await {
            Err(RpcError::StaleHandle) => {
                // The node restarted or expired the handle: data ids are never reused, so
                // reopening the same file reads the same bytes (or finds it gone).
                let h = self
                    .drive
                    .open_handle(&self.bucket, &self.data_id, &self.file)
                    .await?;
                self.handle.store(h, Ordering::Relaxed);
                self.read_once(h, offset, len).await
            }
            r => r,
        }
    }

    async fn read_ranges_inner(&self, ranges: Vec<Range<u64>>) -> Result<Vec<Vec<u8>>, RpcError> {
        if let Some(bad) = ranges.iter().find(|r| r.start > r.end) {
            return Err(DriveError::Invalid(format!("bad byte range {bad:?}")).into());
        }
        let mut out = Vec::with_capacity(ranges.len());
        for batch in ranges.chunks(RANGES_PER_REQUEST) {
            let handle = self.handle.load(Ordering::Relaxed);
            let got = match self.ranges_once(handle, batch).await {
                Err(RpcError::StaleHandle) => {
                    let h = self
                        .drive
                        .open_handle(&self.bucket, &self.data_id, &self.file)
                        .await?;
                    self.handle.store(h, Ordering::Relaxed);
                    self.ranges_once(h, batch).await?
                }
                r => r?,
            };
            out.extend(got);
        }
        Ok(out)
    }
}

impl RemoteShardReader {
    /// One batch of ranges in one request; the answer is their bytes back to back.
    async fn ranges_once(
        &self,
        handle: u64,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>, RpcError> {
        let r = &self.drive.inner;
        let total = ranges
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .sum::<u64>();
        let total = usize::try_from(total)
            .map_err(|_| DriveError::Invalid(format!("read of {total} bytes")))?;
        let all = r
            .client
            .read(
                &r.target,
                Method::ReadRanges,
                &[
                    ("handle", handle.to_string()),
                    ("ranges", wire::encode_ranges(ranges)),
                ],
                total,
            )
            .await?;
        let mut out = Vec::with_capacity(ranges.len());
        let mut at = 0usize;
        for range in ranges {
            let n = (range.end - range.start) as usize;
            out.push(all[at..at + n].to_vec());
            at += n;
        }
        Ok(out)
    }
}

impl Drop for RemoteShardReader {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let drive = self.drive.clone();
        let handle = self.handle.load(Ordering::Relaxed);
        // Best effort: an unclosed handle expires on the node anyway.
        rt.spawn(async move {
            let _ = drive
                .call(Method::CloseShard, &[("handle", handle.to_string())], None)
                .await;
        });
    }
}

#[async_trait]
impl Drive for RemoteDrive {
    fn endpoint(&self) -> &str {
        &self.inner.target.endpoint
    }

    async fn info(&self) -> Result<DriveInfo, DriveError> {
        if !self.is_online() {
            // Health checks ask for this: probe now (briefly) rather than report a state
            // up to one backoff interval old.
            let t = self.inner.client.timeouts();
            let limit = t.connect.min(Duration::from_millis(500));
            if tokio::time::timeout(limit, (self.probe())())
                .await
                .unwrap_or(false)
            {
                self.inner.live.set_online();
            }
        }
        // Still offline: `Offline` at once (what a dead node's drive has always answered;
        // `Store::offline_drives` counts it as not online).
        self.inner.live.check(&self.inner.target.endpoint)?;
        let body = self.call(Method::Info, &[], None).await?;
        Ok(decode::<wire::WireInfo>(&self.inner.target, &body)?.into())
    }

    async fn create_staged(
        &self,
        tmp: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardWriter>, DriveError> {
        check_file_name(file)?;
        self.inner.live.check(&self.inner.target.endpoint)?;
        let (tx, answer) = self.inner.client.upload(
            &self.inner.target,
            Method::CreateStaged,
            &[("tmp", tmp.to_string()), ("file", file.to_owned())],
        )?;
        Ok(Box::new(RemoteShardWriter {
            drive: self.clone(),
            endpoint: self.inner.target.endpoint.clone(),
            idle: self.inner.client.timeouts().stream_idle,
            tx: Some(tx),
            answer: Some(answer),
        }))
    }

    async fn commit(&self, data: Option<DataMove>, meta: Vec<MetaOp>) -> Result<(), DriveError> {
        let body = encode(&wire::CommitRequest {
            data: data.map(Into::into),
            meta: meta.into_iter().map(Into::into).collect(),
        })?;
        self.call(Method::Commit, &[], Some(body)).await.map(drop)
    }

    async fn remove_staged(&self, tmp: &DataId) -> Result<(), DriveError> {
        self.call(Method::RemoveStaged, &[("tmp", tmp.to_string())], None)
            .await
            .map(drop)
    }

    async fn read_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DriveError> {
        let r = &self.inner;
        self.guarded(r.client.read(
            &r.target,
            Method::ReadShard,
            &[
                ("bucket", bucket.to_owned()),
                ("data_id", data_id.to_string()),
                ("file", file.to_owned()),
                ("offset", offset.to_string()),
                ("len", len.to_string()),
            ],
            len,
        ))
        .await
    }

    async fn open_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardReader>, DriveError> {
        let handle = self.open_handle(bucket, data_id, file).await?;
        Ok(Box::new(RemoteShardReader {
            drive: self.clone(),
            bucket: bucket.to_owned(),
            data_id: data_id.clone(),
            file: file.to_owned(),
            handle: AtomicU64::new(handle),
        }))
    }

    async fn write_shard_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        bytes: Bytes,
    ) -> Result<(), DriveError> {
        // One request: the timeout grows with the size (see `RpcClient::unary`).
        self.call(
            Method::WriteShardFile,
            &[
                ("bucket", bucket.to_owned()),
                ("data_id", data_id.to_string()),
                ("file", file.to_owned()),
            ],
            Some(bytes),
        )
        .await
        .map(drop)
    }

    async fn delete_data(&self, bucket: &str, data_id: &DataId) -> Result<(), DriveError> {
        self.call(
            Method::DeleteData,
            &[
                ("bucket", bucket.to_owned()),
                ("data_id", data_id.to_string()),
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn delete_data_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<(), DriveError> {
        self.call(
            Method::DeleteDataFile,
            &[
                ("bucket", bucket.to_owned()),
                ("data_id", data_id.to_string()),
                ("file", file.to_owned()),
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn meta_get(&self, table: Table, key: Vec<u8>) -> Result<Option<Vec<u8>>, DriveError> {
        let body = encode(&wire::GetRequest {
            table,
            key: wire::B64(key),
        })?;
        let answer = self.call(Method::MetaGet, &[], Some(body)).await?;
        Ok(decode::<wire::GetResponse>(&self.inner.target, &answer)?
            .value
            .map(|v| v.0))
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> Result<Entries, DriveError> {
        let body = encode(&wire::ScanRequest::new(table, range))?;
        let answer = self.call(Method::MetaScan, &[], Some(body)).await?;
        Ok(decode::<wire::ScanResponse>(&self.inner.target, &answer)?.entries())
    }

    async fn meta_apply(&self, ops: Vec<MetaOp>) -> Result<(), DriveError> {
        let body = encode(&wire::ApplyRequest {
            ops: ops.into_iter().map(Into::into).collect(),
        })?;
        self.call(Method::MetaApply, &[], Some(body))
            .await
            .map(drop)
    }
    async fn read_version(
        &self,
        key: Vec<u8>,
        inline: bool,
    ) -> Result<Option<StoredVersion>, DriveError> {
        let mut got = RemoteDrive::read_versions(&[self], key, inline).await;
        got.pop()
            .unwrap_or_else(|| Err(DriveError::Invalid("no answer".into())))
    }

    async fn commit_version(
        &self,
        data: Option<DataMove>,
        meta: Vec<MetaOp>,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, DriveError> {
        let mut got = RemoteDrive::commit_versions(&[self], vec![(data, meta)], key).await;
        got.pop()
            .unwrap_or_else(|| Err(DriveError::Invalid("no answer".into())))
    }

    fn as_remote(&self) -> Option<&RemoteDrive> {
        Some(self)
    }
}

/// The same error again, for every drive of a node call that failed as a whole.
fn clone_error(e: &DriveError) -> DriveError {
    match e {
        // Not a wire kind (a node never sends it): kept as is, so a batched call that got
        // no answer still tells every drive of it that the call may have taken effect.
        DriveError::NoAnswer(m) => DriveError::NoAnswer(m.clone()),
        _ => wire::WireError::from(e).into_drive_error(),
    }
}
