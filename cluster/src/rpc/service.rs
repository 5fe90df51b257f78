//! The receiving side of internode RPC: [`RpcService`] holds this node's drives and answers
//! `/_tessera/rpc/v1/<drive>/<method>` requests by calling the same `Drive` method on the
//! local drive (and `/_tessera/rpc/v1/~node/<method>` ones by calling it on each drive the
//! request names, concurrently). It authenticates every request before reading its body or touching a drive
//! (403 with an empty body otherwise), streams shard uploads into a `ShardWriter` frame by
//! frame (never the whole shard in memory), and keeps open shard readers in a handle table
//! with an idle expiry. Lock releases riding on any request are applied before it is
//! answered. It must never interpret object keys or decide quorum.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full};

use super::auth::{date_is_fresh, now_secs, InternodeKey, AUTH_HEADER, DATE_HEADER};
use super::wire::{self, Method, WireError};
use crate::dlock::{LockOp, LockTable};
use crate::drive::{Drive, ShardReader};
use crate::names::DataId;
use crate::DriveError;

/// The response body type of [`serve`].
pub type RpcResponseBody = Full<Bytes>;

/// How long an upload or request body may go without a byte before it is abandoned.
const BODY_IDLE: Duration = Duration::from_secs(60);
/// How long an open shard reader may go unused before its handle is dropped.
const READER_IDLE: Duration = Duration::from_secs(120);
/// Most shard readers held open at once; beyond it the least recently used is dropped
/// (its client transparently reopens).
const MAX_READERS: usize = 4096;
/// Upload frames received ahead of the drive's writer.
const UPLOAD_AHEAD: usize = 2;
/// Largest single read a request may ask for.
const MAX_READ: usize = 1 << 30;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// This node's drives, served to the other nodes. See the module docs.
pub struct RpcService {
    drives: HashMap<String, Arc<dyn Drive>>,
    key: InternodeKey,
    readers: Mutex<HashMap<u64, OpenReader>>,
    next_handle: AtomicU64,
    locks: Arc<LockTable>,
}

struct OpenReader {
    drive: String,
    reader: Arc<dyn ShardReader>,
    last_used: Instant,
}

impl std::fmt::Debug for RpcService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcService")
            .field(
                "drives",
                &self
                    .drives
                    .values()
                    .map(|d| d.endpoint())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RpcService {
    /// `drives`: (endpoint exactly as in the shared endpoint list, the local drive).
    pub fn new(drives: Vec<(String, Arc<dyn Drive>)>, key: InternodeKey) -> Self {
        // Handles start at a random point so a restarted node never mistakes an old handle
        // for one of its own.
        let start = uuid::Uuid::new_v4().as_u64_pair().0 >> 1;
        // The node's lock table is shared with its own store through its served drives.
        let locks = drives
            .iter()
            .find_map(|(_, d)| d.lock_table())
            .unwrap_or_default();
        RpcService {
            locks,
            drives: drives
                .into_iter()
                .map(|(e, d)| (wire::drive_segment(&e), d))
                .collect(),
            key,
            readers: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(start),
        }
    }

    /// The lock table this service grants from (the node's own, when its drives carry it).
    pub fn lock_table(&self) -> Arc<LockTable> {
        self.locks.clone()
    }

    /// Shard readers currently held open for clients.
    pub fn open_readers(&self) -> usize {
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn register_reader(&self, drive: &str, reader: Box<dyn ShardReader>) -> u64 {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        readers.retain(|_, r| now.duration_since(r.last_used) < READER_IDLE);
        if readers.len() >= MAX_READERS {
            if let Some(oldest) = readers
                .iter()
                .min_by_key(|(_, r)| r.last_used)
                .map(|(h, _)| *h)
            {
                readers.remove(&oldest);
            }
        }
        readers.insert(
            handle,
            OpenReader {
                drive: drive.to_owned(),
                reader: Arc::from(reader),
                last_used: now,
            },
        );
        handle
    }

    fn reader(&self, drive: &str, handle: u64) -> Option<Arc<dyn ShardReader>> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        let r = readers.get_mut(&handle).filter(|r| r.drive == drive)?;
        r.last_used = Instant::now();
        Some(r.reader.clone())
    }

    fn close_reader(&self, drive: &str, handle: u64) {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.get(&handle).is_some_and(|r| r.drive == drive) {
            readers.remove(&handle);
        }
    }
}

/// Whether a request path belongs to internode RPC (the S3 router never sees these).
pub fn is_rpc_path(path: &str) -> bool {
    path.starts_with("/_tessera/rpc/")
}

/// A request's named query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Result<&str, DriveError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| DriveError::Invalid(format!("missing parameter {name}")))
    }

    fn data_id(&self, name: &str) -> Result<DataId, DriveError> {
        wire::parse_data_id(self.get(name)?)
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, DriveError> {
        let v = self.get(name)?;
        v.parse()
            .map_err(|_| DriveError::Invalid(format!("parameter {name}={v:?} is not a number")))
    }
}

fn empty(status: StatusCode) -> Response<RpcResponseBody> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn ok_bytes(b: Bytes) -> Response<RpcResponseBody> {
    Response::new(Full::new(b))
}

fn ok_json<T: serde::Serialize>(v: &T) -> Response<RpcResponseBody> {
    match serde_json::to_vec(v) {
        Ok(b) => ok_bytes(Bytes::from(b)),
        Err(e) => error(&DriveError::Invalid(format!("response encoding: {e}"))),
    }
}

fn error_response(status: StatusCode, e: &WireError) -> Response<RpcResponseBody> {
    let body = serde_json::to_vec(e).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(wire::ERROR_HEADER, http::HeaderValue::from_static("1"));
    r
}

fn error(e: &DriveError) -> Response<RpcResponseBody> {
    let status = match e {
        DriveError::NotFound => StatusCode::NOT_FOUND,
        DriveError::Invalid(_) => StatusCode::BAD_REQUEST,
        DriveError::Offline(_) | DriveError::NoAnswer(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(status, &WireError::from(e))
}

fn reply<T>(
    r: Result<T, DriveError>,
    f: impl FnOnce(T) -> Response<RpcResponseBody>,
) -> Response<RpcResponseBody> {
    match r {
        Ok(v) => f(v),
        Err(e) => error(&e),
    }
}

fn done(r: Result<(), DriveError>) -> Response<RpcResponseBody> {
    reply(r, |()| empty(StatusCode::NO_CONTENT))
}

/// Checks the MAC and the date; `false` means 403 and nothing else.
fn authenticated<B>(key: &InternodeKey, req: &Request<B>) -> bool {
    let h = req.headers();
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let (Some(date), Some(mac)) = (text(DATE_HEADER), text(AUTH_HEADER)) else {
        return false;
    };
    let Ok(date) = date.parse::<u64>() else {
        return false;
    };
    let length = match text(http::header::CONTENT_LENGTH.as_str()) {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return false,
        },
    };
    if !date_is_fresh(date, now_secs()) {
        return false;
    }
    key.verify(
        req.method().as_str(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
        date,
        length,
        mac,
    )
}

/// Next data chunk of a body, or `None` at its end; an idle or failed body is an error.
async fn next_chunk<B>(body: &mut std::pin::Pin<&mut B>) -> Result<Option<Bytes>, DriveError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    loop {
        let frame = tokio::time::timeout(BODY_IDLE, body.frame())
            .await
            .map_err(|_| DriveError::Invalid("request body stalled".into()))?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => {
                let e: BoxError = e.into();
                return Err(DriveError::Invalid(format!("request body failed: {e}")));
            }
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A whole (non-streamed) body, checked against the blake3 the signed query names.
async fn read_body<B>(body: B, q: &Query) -> Result<Bytes, DriveError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        if buf.len() + chunk.len() > wire::MAX_UNARY_BODY {
            return Err(DriveError::Invalid("request body too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    let want = q.get(wire::BODY_HASH_PARAM)?;
    if blake3::hash(&buf).to_hex().as_str() != want {
        return Err(DriveError::Invalid(
            "request body does not match its hash".into(),
        ));
    }
    Ok(buf.freeze())
}

async fn read_json<B, T>(body: B, q: &Query) -> Result<T, DriveError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    T: serde::de::DeserializeOwned,
{
    let b = read_body(body, q).await?;
    serde_json::from_slice(&b).map_err(|e| DriveError::Invalid(format!("request body: {e}")))
}

/// Receives one staged shard file: frames into the drive's writer, `finish` on the end
/// marker. A body that ends or fails before the marker leaves only tmp/ garbage. The writer
/// runs in its own task, a couple of frames behind the network, so disk and socket overlap.
async fn receive_upload<B>(drive: &dyn Drive, q: &Query, body: B) -> Result<(), DriveError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut writer = drive
        .create_staged(&q.data_id("tmp")?, q.get("file")?)
        .await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(UPLOAD_AHEAD);
    let mut sink = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            writer.write(frame).await?;
        }
        Ok::<_, DriveError>(writer)
    });
    let received = receive_frames(body, &tx).await;
    drop(tx);
    let outcome = match received {
        // Every frame arrived: wait for the writer, then make the file durable.
        Ok(()) => match (&mut sink).await {
            Ok(Ok(writer)) => writer.finish().await,
            Ok(Err(e)) => Err(e),
            Err(e) => Err(DriveError::Offline(format!("upload writer failed: {e}"))),
        },
        // The writer stopped taking frames: its error is the answer.
        Err(None) => match (&mut sink).await {
            Ok(Err(e)) => Err(e),
            _ => Err(DriveError::Offline("upload writer stopped".into())),
        },
        Err(Some(e)) => Err(e),
    };
    // Unfinished: the writer is dropped without `finish`.
    sink.abort();
    outcome
}

/// Parses upload frames off `body` into `frames` until the end marker. `Err(None)`: the
/// receiving writer has gone (it failed).
async fn receive_frames<B>(
    body: B,
    frames: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), Option<DriveError>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    loop {
        // Hand every complete frame on.
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len == 0 {
                buf.advance(4);
                let trailing =
                    !buf.is_empty() || next_chunk(&mut body).await?.is_some_and(|c| !c.is_empty());
                if trailing {
                    return Err(Some(DriveError::Invalid(
                        "bytes after the end marker".into(),
                    )));
                }
                return Ok(());
            }
            if len > wire::MAX_FRAME {
                return Err(Some(DriveError::Invalid(format!(
                    "upload frame of {len} bytes"
                ))));
            }
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            buf.advance(4);
            frames
                .send(buf.split_to(len).freeze())
                .await
                .map_err(|_| None)?;
        }
        match next_chunk(&mut body).await? {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => {
                return Err(Some(DriveError::Invalid(
                    "upload ended before its end marker".into(),
                )))
            }
        }
    }
}

/// Answers one internode request (see the module docs). `req`'s path must satisfy
/// [`is_rpc_path`]. Never panics on client input.
pub async fn serve<B>(state: &RpcService, req: Request<B>) -> Response<RpcResponseBody>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if !authenticated(&state.key, &req) {
        tracing::debug!(path = %req.uri().path(), "internode request refused: bad or stale signature");
        return empty(StatusCode::FORBIDDEN);
    }
    release_riders(&state.locks, req.uri().query().unwrap_or(""));
    let path = req.uri().path().to_owned();
    let Some((segment, method)) = path
        .strip_prefix(wire::PREFIX)
        .and_then(|rest| rest.split_once('/'))
    else {
        return error(&DriveError::Invalid(format!("not an RPC path: {path}")));
    };
    let Some(method) = Method::parse(method) else {
        return error(&DriveError::Invalid(format!(
            "unknown RPC method {method:?}"
        )));
    };
    if req.method() != method.http_method() {
        return error(&DriveError::Invalid(format!(
            "{} must be sent as {}",
            method.as_str(),
            method.http_method()
        )));
    }
    let lock_op = match method {
        Method::LockGrant => Some(LockOp::Grant),
        Method::LockRefresh => Some(LockOp::Refresh),
        Method::LockRelease => Some(LockOp::Release),
        _ => None,
    };
    if (segment == wire::LOCK_SEGMENT) != lock_op.is_some() {
        return error(&DriveError::Invalid(format!(
            "{} is not served under {segment:?}",
            method.as_str()
        )));
    }
    if let Some(op) = lock_op {
        let q = match wire::decode_query(req.uri().query().unwrap_or("")) {
            Ok(q) => Query(q),
            Err(e) => return error(&e),
        };
        return reply(lock_request(&state.locks, op, &q), |granted| {
            ok_bytes(Bytes::from_static(if granted { b"1" } else { b"0" }))
        });
    }
    let node_call = matches!(method, Method::ReadVersions | Method::CommitVersions);
    if (segment == wire::NODE_SEGMENT) != node_call {
        return error(&DriveError::Invalid(format!(
            "{} is not served under {segment:?}",
            method.as_str()
        )));
    }
    if node_call {
        let q = match wire::decode_query(req.uri().query().unwrap_or("")) {
            Ok(q) => Query(q),
            Err(e) => return error(&e),
        };
        return match node_request(state, method, &q, req.into_body()).await {
            Ok(answers) => ok_bytes(Bytes::from(wire::encode_answers(&answers))),
            Err(e) => error(&e),
        };
    }
    let Some(drive) = state.drives.get(segment).cloned() else {
        return error(&DriveError::Offline(format!(
            "this node serves no drive {segment:?}"
        )));
    };
    let q = match wire::decode_query(req.uri().query().unwrap_or("")) {
        Ok(q) => Query(q),
        Err(e) => return error(&e),
    };
    let body = req.into_body();
    let drive = drive.as_ref();
    match method {
        Method::Info => reply(drive.info().await, |i| ok_json(&wire::WireInfo::from(i))),
        Method::CreateStaged => done(receive_upload(drive, &q, body).await),
        Method::Commit => {
            let r = async {
                let c: wire::CommitRequest = read_json(body, &q).await?;
                let data = c.data.map(TryInto::try_into).transpose()?;
                drive
                    .commit(data, c.meta.into_iter().map(Into::into).collect())
                    .await
            };
            done(r.await)
        }
        Method::RemoveStaged => {
            let r = async { drive.remove_staged(&q.data_id("tmp")?).await };
            done(r.await)
        }
        Method::ReadShard => {
            let r = async {
                let len: usize = q.number("len")?;
                if len > MAX_READ {
                    return Err(DriveError::Invalid(format!("read of {len} bytes")));
                }
                drive
                    .read_shard(
                        q.get("bucket")?,
                        &q.data_id("data_id")?,
                        q.get("file")?,
                        q.number("offset")?,
                        len,
                    )
                    .await
            };
            reply(r.await, |v| ok_bytes(Bytes::from(v)))
        }
        Method::OpenShard => {
            let r = async {
                drive
                    .open_shard(q.get("bucket")?, &q.data_id("data_id")?, q.get("file")?)
                    .await
            };
            reply(r.await, |reader| {
                ok_json(&wire::OpenResponse {
                    handle: state.register_reader(segment, reader),
                })
            })
        }
        Method::ReadAt => {
            let (handle, offset, len) = match (|| {
                Ok::<_, DriveError>((
                    q.number::<u64>("handle")?,
                    q.number::<u64>("offset")?,
                    q.number::<usize>("len")?,
                ))
            })() {
                Ok(v) => v,
                Err(e) => return error(&e),
            };
            if len > MAX_READ {
                return error(&DriveError::Invalid(format!("read of {len} bytes")));
            }
            match state.reader(segment, handle) {
                None => error_response(StatusCode::GONE, &WireError::stale_handle(handle)),
                Some(reader) => reply(reader.read_at(offset, len).await, |v| {
                    ok_bytes(Bytes::from(v))
                }),
            }
        }
        Method::ReadRanges => {
            let parsed = q.number::<u64>("handle").and_then(|h| {
                let ranges = wire::decode_ranges(q.get("ranges")?)?;
                let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                if total > MAX_READ as u64 {
                    return Err(DriveError::Invalid(format!("read of {total} bytes")));
                }
                Ok((h, ranges))
            });
            let (handle, ranges) = match parsed {
                Ok(v) => v,
                Err(e) => return error(&e),
            };
            match state.reader(segment, handle) {
                None => error_response(StatusCode::GONE, &WireError::stale_handle(handle)),
                Some(reader) => reply(reader.read_ranges(ranges).await, |parts| {
                    ok_bytes(Bytes::from(parts.concat()))
                }),
            }
        }
        Method::CloseShard => {
            let r = q
                .number::<u64>("handle")
                .map(|h| state.close_reader(segment, h));
            done(r)
        }
        Method::WriteShardFile => {
            let r = async {
                let bytes = read_body(body, &q).await?;
                drive
                    .write_shard_file(
                        q.get("bucket")?,
                        &q.data_id("data_id")?,
                        q.get("file")?,
                        bytes,
                    )
                    .await
            };
            done(r.await)
        }
        Method::DeleteData => {
            let r = async {
                drive
                    .delete_data(q.get("bucket")?, &q.data_id("data_id")?)
                    .await
            };
            done(r.await)
        }
        Method::DeleteDataFile => {
            let r = async {
                drive
                    .delete_data_file(q.get("bucket")?, &q.data_id("data_id")?, q.get("file")?)
                    .await
            };
            done(r.await)
        }
        Method::MetaGet => {
            let r = async {
                let g: wire::GetRequest = read_json(body, &q).await?;
                drive.meta_get(g.table, g.key.0).await
            };
            reply(r.await, |v| {
                ok_json(&wire::GetResponse {
                    value: v.map(wire::B64),
                })
            })
        }
        Method::MetaScan => {
            let r = async {
                let s: wire::ScanRequest = read_json(body, &q).await?;
                let table = s.table;
                drive.meta_scan(table, s.range()).await
            };
            reply(r.await, |e| ok_json(&wire::ScanResponse::new(e)))
        }
        Method::MetaApply => {
            let r = async {
                let a: wire::ApplyRequest = read_json(body, &q).await?;
                drive
                    .meta_apply(a.ops.into_iter().map(Into::into).collect())
                    .await
            };
            done(r.await)
        }
        Method::LockGrant | Method::LockRefresh | Method::LockRelease => error(
            &DriveError::Invalid("lock calls go to the lock table".into()),
        ),
        Method::ReadVersions | Method::CommitVersions => error(&DriveError::Invalid(
            "node calls go to the node segment".into(),
        )),
    }
}

/// Answers a call that carries work for several of this node's drives: each drive's part
/// runs concurrently, and each drive's outcome (or error) is its own.
async fn node_request<B>(
    state: &RpcService,
    method: Method,
    q: &Query,
    body: B,
) -> Result<Vec<wire::SlotAnswer>, DriveError>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let drive =
        |segment: &str| {
            state.drives.get(segment).cloned().ok_or_else(|| {
                DriveError::Offline(format!("this node serves no drive {segment:?}"))
            })
        };
    if method == Method::ReadVersions {
        let r: wire::ReadVersionsRequest = read_json(body, q).await?;
        let key = r.key.0;
        let calls = r.drives.iter().map(|segment| {
            let d = drive(segment);
            let key = key.clone();
            async move {
                let got = d?.read_version(key, r.inline).await?;
                Ok(got.map(|v| (v.record, v.inline)))
            }
        });
        return Ok(futures::future::join_all(calls).await);
    }
    let r: wire::CommitVersionsRequest = read_json(body, q).await?;
    let key = r.key.0;
    let calls = r.drives.into_iter().map(|c| {
        let d = drive(&c.drive);
        let key = key.clone();
        async move {
            let data = c.data.map(TryInto::try_into).transpose()?;
            let meta = c.meta.into_iter().map(Into::into).collect();
            let previous = d?.commit_version(data, meta, key).await?;
            Ok(previous.map(|p| (p, None)))
        }
    });
    Ok(futures::future::join_all(calls).await)
}

/// Applies the lock releases riding on a request (`rr`/`ru` pairs in its signed query, see
/// `RpcClient::defer_release`) before the request itself is answered, so a grant of the
/// same resource in that request finds the earlier holder gone.
pub(crate) fn release_riders(table: &LockTable, query: &str) {
    let marker = format!("{}=", wire::RIDER_RESOURCE_PARAM);
    if !query.contains(&marker) {
        return;
    }
    let Ok(pairs) = wire::decode_query(query) else {
        return;
    };
    let mut resource: Option<String> = None;
    for (k, v) in pairs {
        if k == wire::RIDER_RESOURCE_PARAM {
            resource = Some(v);
        } else if k == wire::RIDER_UID_PARAM {
            if let Some(r) = resource.take() {
                table.release(&r, &v);
            }
        }
    }
}

/// Answers one lock call from this node's table: whether it was granted / refreshed /
/// released.
fn lock_request(table: &LockTable, op: LockOp, q: &Query) -> Result<bool, DriveError> {
    let resource = q.get("resource")?;
    let uid = q.get("uid")?;
    let lease = Duration::from_millis(q.number::<u64>("lease_ms")?);
    Ok(match op {
        LockOp::Grant => table.grant(resource, uid, lease),
        LockOp::Refresh => table.refresh(resource, uid, lease),
        LockOp::Release => table.release(resource, uid),
    })
}
