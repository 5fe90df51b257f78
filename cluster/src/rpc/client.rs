//! The calling side of internode RPC: [`RpcClient`] owns one pooled HTTP/1.1 client
//! (keep-alive, TCP_NODELAY, connect timeout) shared by every remote drive of this node, signs
//! each request, applies the timeouts, and turns what comes back into `Drive` results:
//! error bodies into the same `DriveError` variant, and connection failures and timeouts into
//! the typed `RpcError::Transport` (which liveness acts on, and which becomes
//! `DriveError::NoAnswer`: a missing drive for reads, and for writes a drive whose call may
//! still have taken effect). Every call is
//! raced against its node being marked offline by liveness (then it fails at once with
//! `Transport`, instead of waiting out its timeout), and the first call to a node starts that
//! node's heartbeat. Lock releases ([`RpcClient::defer_release`]) do not get a request of their
//! own: they ride in the query of the next request to their node (any call, signed with it),
//! or in one flush request after [`RELEASE_FLUSH`] if no call went there meanwhile. It must
//! never buffer a whole shard upload: uploads go through a bounded channel.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::auth::{now_secs, InternodeKey, AUTH_HEADER, DATE_HEADER};
use super::wire::{self, ErrorKind, Method, WireError};
use crate::dlock::LockOp;
use crate::drive::liveness::NodeLiveness;
use crate::DriveError;

/// Bytes per second a working internode link sustains at the least; sizes the timeout of a
/// call carrying a large body (a healed shard file).
const SLOWEST_LINK: u64 = 4 << 20;

/// Upload blocks (and their frame headers) queued ahead of the connection.
const UPLOAD_QUEUE: usize = 8;

/// How long a deferred lock release waits for another request to its node to ride on
/// before it is sent on its own.
pub const RELEASE_FLUSH: Duration = Duration::from_millis(5);

/// Most deferred releases one request carries (the rest wait for the next one).
const RIDERS_PER_REQUEST: usize = 32;

/// Most query bytes the deferred releases of one request may take (see `take_riders`).
const RIDER_QUERY_BYTES: usize = 8 << 10;

/// The task that ends with the service's answer to a streamed upload.
pub(crate) type UploadAnswer = JoinHandle<Result<(), RpcError>>;

/// How long internode calls may take.
#[derive(Clone, Debug)]
pub struct RpcTimeouts {
    /// Establishing a TCP connection.
    pub connect: Duration,
    /// A whole non-streaming call (metadata, info, deletes, commit), and the wait for the
    /// first byte of a shard read's response.
    pub unary: Duration,
    /// Streams have no total limit, but fail after this long without progress.
    pub stream_idle: Duration,
}

impl Default for RpcTimeouts {
    fn default() -> Self {
        RpcTimeouts {
            connect: Duration::from_secs(2),
            unary: Duration::from_secs(10),
            stream_idle: Duration::from_secs(30),
        }
    }
}

/// How requests reach the other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// HTTP/1.1 with a pool of keep-alive connections (one per call in flight).
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge: calls multiplexed over one connection per node (the
    /// node's listener must accept h2c, as hyper's auto builder does).
    Http2,
}

/// How this node's client reaches the others. `Default` is plain HTTP/1.1 with the default
/// timeouts from whatever source address the system picks.
#[derive(Clone, Debug, Default)]
pub struct RpcOptions {
    pub timeouts: RpcTimeouts,
    pub transport: Transport,
    /// Binds the source address of every outgoing connection to this IP (the node's own
    /// listener IP, when it listens on one), so a peer or a proxy sees which node connects.
    /// Ignored for a destination of the other address family.
    pub source_ip: Option<std::net::IpAddr>,
    /// Trust for `https://` peers (see [`super::tls::client_config`]); without it, only
    /// `http://` peers can be reached.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// An RPC failure. Only [`RpcError::Transport`] says the node itself did not answer (what
/// liveness acts on); everything else is an answer the node sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpcError {
    /// The node answered with a drive error (or an answer that is unusable).
    #[error(transparent)]
    Drive(DriveError),
    /// The node no longer knows an open shard reader's handle (it restarted or expired it).
    #[error("stale shard reader handle")]
    StaleHandle,
    /// No answer from the node: connection refused or reset, a timeout, a broken stream.
    /// The message names the endpoint and what failed.
    #[error("{0}")]
    Transport(String),
}

impl RpcError {
    /// Whether the node itself did not answer (see the variant).
    pub(crate) fn is_transport(&self) -> bool {
        matches!(self, RpcError::Transport(_))
    }
}

impl From<RpcError> for DriveError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Drive(e) => e,
            RpcError::StaleHandle => DriveError::Invalid("stale shard reader handle".into()),
            RpcError::Transport(m) => DriveError::NoAnswer(m),
        }
    }
}

impl From<DriveError> for RpcError {
    fn from(e: DriveError) -> Self {
        RpcError::Drive(e)
    }
}

/// The request body of every internode call: whole bytes, or a channel of upload frames.
#[derive(Debug)]
pub(crate) enum RequestBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            RequestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RequestBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            RequestBody::Full(None) => SizeHint::with_exact(0),
            RequestBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Where a call goes: a node's base URL and the drive's path segment there.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `http://host:port`
    pub base: String,
    /// See [`wire::drive_segment`].
    pub drive: String,
    /// The drive's endpoint, for error messages.
    pub endpoint: String,
}

/// See the module docs. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

/// The pooled HTTP client: plain, or also speaking TLS to `https://` peers.
enum Http {
    Plain(Client<HttpConnector, RequestBody>),
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, RequestBody>),
}

impl Http {
    fn request(&self, req: Request<RequestBody>) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            Http::Plain(c) => c.request(req),
            Http::Tls(c) => c.request(req),
        }
    }
}

struct ClientInner {
    http: Http,
    key: InternodeKey,
    timeouts: RpcTimeouts,
    /// Per node base URL: lock releases (resource, lock id) waiting for a request to ride on.
    riders: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client with the default timeouts. Needs a tokio runtime when used.
    pub fn new(key: InternodeKey) -> Self {
        Self::with_timeouts(key, RpcTimeouts::default())
    }

    pub fn with_timeouts(key: InternodeKey, timeouts: RpcTimeouts) -> Self {
        Self::with_transport(key, timeouts, Transport::Http1)
    }

    pub fn with_transport(key: InternodeKey, timeouts: RpcTimeouts, transport: Transport) -> Self {
        Self::with_options(
            key,
            RpcOptions {
                timeouts,
                transport,
                ..RpcOptions::default()
            },
        )
    }

    /// A client as [`RpcOptions`] describe it.
    pub fn with_options(key: InternodeKey, options: RpcOptions) -> Self {
        let RpcOptions {
            timeouts,
            transport,
            source_ip,
            tls,
        } = options;
        let mut connector = HttpConnector::new();
        connector.set_local_address(source_ip);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64);
        if transport == Transport::Http2 {
            builder
                .http2_only(true)
                .http2_initial_stream_window_size(4 << 20)
                .http2_initial_connection_window_size(16 << 20)
                .http2_max_frame_size(1 << 20)
                .timer(TokioTimer::new())
                .http2_keep_alive_interval(Some(Duration::from_secs(10)))
                .http2_keep_alive_timeout(timeouts.unary);
        }
        let http = match tls {
            None => Http::Plain(builder.build(connector)),
            Some(config) => {
                // The TLS connector hands `https` URLs to rustls, `http` ones straight through.
                connector.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*config).clone())
                    .https_or_http();
                let https = if transport == Transport::Http2 {
                    https.enable_http2().wrap_connector(connector)
                } else {
                    https.enable_http1().wrap_connector(connector)
                };
                Http::Tls(builder.build(https))
            }
        };
        RpcClient {
            inner: Arc::new(ClientInner {
                http,
                key,
                timeouts,
                riders: Mutex::default(),
            }),
        }
    }

    /// Whether this client can reach `https://` peers.
    pub fn has_tls(&self) -> bool {
        matches!(self.inner.http, Http::Tls(_))
    }

    pub fn timeouts(&self) -> &RpcTimeouts {
        &self.inner.timeouts
    }

    /// A signed request. `body_hash` puts the blake3 of a whole body into the query.
    fn request(
        &self,
        t: &Target,
        method: Method,
        params: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Request<RequestBody>, RpcError> {
        let mut params = params.to_vec();
        for (resource, uid) in self.take_riders(&t.base) {
            params.push((wire::RIDER_RESOURCE_PARAM, resource));
            params.push((wire::RIDER_UID_PARAM, uid));
        }
        let length = match &body {
            RequestBody::Full(b) => {
                let b = b.as_ref().map(|b| b.as_ref()).unwrap_or_default();
                if method.http_method() == http::Method::POST {
                    params.push((wire::BODY_HASH_PARAM, blake3::hash(b).to_hex().to_string()));
                }
                Some(b.len() as u64)
            }
            RequestBody::Stream(_) => None,
        };
        let path = format!("{}{}/{}", wire::PREFIX, t.drive, method.as_str());
        let query = wire::encode_query(&params);
        let date = now_secs();
        let mac = self
            .inner
            .key
            .sign(method.http_method().as_str(), &path, &query, date, length);
        let mut b = Request::builder()
            .method(method.http_method())
            .uri(format!("{}{path}?{query}", t.base))
            .header(DATE_HEADER, date.to_string())
            .header(AUTH_HEADER, mac);
        if let Some(n) = length {
            b = b.header(http::header::CONTENT_LENGTH, n.to_string());
        }
        b.body(body)
            .map_err(|e| RpcError::Drive(DriveError::Invalid(format!("{}: {e}", t.endpoint))))
    }

    /// The node did not answer.
    fn offline(t: &Target, what: impl std::fmt::Display) -> RpcError {
        RpcError::Transport(format!("{}: {what}", t.endpoint))
    }

    /// The node answered with something unusable: `Offline` for the object layer, but the
    /// node is alive.
    fn unusable(t: &Target, what: impl std::fmt::Display) -> RpcError {
        RpcError::Drive(DriveError::Offline(format!("{}: {what}", t.endpoint)))
    }

    /// Runs `call` unless liveness marks `t`'s node offline meanwhile: then it fails at once
    /// with `Transport`. Starts the node's heartbeat (once), and tells it of every answer.
    async fn watched<T>(
        &self,
        t: &Target,
        call: impl std::future::Future<Output = Result<T, RpcError>>,
    ) -> Result<T, RpcError> {
        let live = NodeLiveness::for_node(&t.base);
        live.ensure_heartbeat(self);
        let cut = live.went_offline();
        let r = tokio::select! {
            biased;
            r = call => r,
            () = cut => Err(Self::offline(t, "node marked offline while the call was in flight")),
        };
        if !matches!(r, Err(RpcError::Transport(_))) {
            live.answered();
        }
        r
    }

    /// Reads a response body; each frame must come within `idle`. `expect` caps (and, for
    /// shard reads, fixes) the length.
    async fn body(
        t: &Target,
        resp: Response<Incoming>,
        idle: Duration,
        expect: Option<usize>,
    ) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), RpcError> {
        let (parts, body) = resp.into_parts();
        let mut body = body;
        let mut out = Vec::with_capacity(expect.unwrap_or(0));
        loop {
            let frame = tokio::time::timeout(idle, body.frame())
                .await
                .map_err(|_| Self::offline(t, format!("no response data for {idle:?}")))?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(Self::offline(t, format!("response failed: {e}"))),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
            }
            if parts.status.is_success() && expect.is_some_and(|n| out.len() > n) {
                return Err(Self::unusable(t, "response longer than asked for"));
            }
        }
        Ok((parts.status, parts.headers, out))
    }

    /// Turns a finished response into its body or the error it carries.
    fn outcome(
        t: &Target,
        (status, headers, body): (http::StatusCode, http::HeaderMap, Vec<u8>),
    ) -> Result<Vec<u8>, RpcError> {
        if status.is_success() {
            return Ok(body);
        }
        if headers.contains_key(wire::ERROR_HEADER) {
            if let Ok(e) = serde_json::from_slice::<WireError>(&body) {
                if e.kind == ErrorKind::StaleHandle {
                    return Err(RpcError::StaleHandle);
                }
                return Err(RpcError::Drive(e.into_drive_error()));
            }
        }
        if status == http::StatusCode::FORBIDDEN {
            return Err(Self::unusable(
                t,
                "the node refused internode authentication (do all nodes share the root credentials and a synchronised clock?)",
            ));
        }
        Err(Self::unusable(
            t,
            format!("unexpected HTTP status {status}"),
        ))
    }

    /// A non-streaming call under the unary timeout, stretched for a large body by the time
    /// it takes at [`SLOWEST_LINK`]; returns the response body.
    pub(crate) async fn unary(
        &self,
        t: &Target,
        method: Method,
        params: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<Vec<u8>, RpcError> {
        let sent = body.as_ref().map_or(0, |b| b.len() as u64);
        let limit = self.inner.timeouts.unary + Duration::from_secs(sent / SLOWEST_LINK);
        let req = self.request(
            t,
            method,
            params,
            RequestBody::Full(body.filter(|b| !b.is_empty())),
        )?;
        let call = async {
            let resp = self
                .inner
                .http
                .request(req)
                .await
                .map_err(|e| Self::offline(t, format!("{e:?}")))?;
            Self::body(t, resp, limit, None).await
        };
        let done = self
            .watched(t, async {
                tokio::time::timeout(limit, call)
                    .await
                    .map_err(|_| Self::offline(t, format!("no answer within {limit:?}")))?
            })
            .await?;
        Self::outcome(t, done)
    }

    /// One lock call to the node at `base` (`http://host:port`): whether it said yes.
    pub(crate) async fn lock_call(
        &self,
        base: &str,
        op: LockOp,
        resource: &str,
        uid: &str,
        lease: Duration,
    ) -> Result<bool, RpcError> {
        let t = Target {
            base: base.to_owned(),
            drive: wire::LOCK_SEGMENT.to_owned(),
            endpoint: format!("{base} (locks)"),
        };
        let method = match op {
            LockOp::Grant => Method::LockGrant,
            LockOp::Refresh => Method::LockRefresh,
            LockOp::Release => Method::LockRelease,
        };
        let params = [
            ("resource", resource.to_owned()),
            ("uid", uid.to_owned()),
            ("lease_ms", lease.as_millis().to_string()),
        ];
        let body = self.unary(&t, method, &params, None).await?;
        Ok(body == b"1")
    }

    /// Releases `uid`'s lock of `resource` on the node at `base` without a request of its
    /// own: it rides on the next request to that node, and is flushed on its own after
    /// [`RELEASE_FLUSH`] if none went there. Best effort, as any release: if the request
    /// carrying it fails, the grant runs out with its lease.
    pub(crate) fn defer_release(&self, base: &str, resource: &str, uid: &str) {
        let first = {
            let mut riders = self.inner.riders.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = riders.entry(base.to_owned()).or_default();
            waiting.push((resource.to_owned(), uid.to_owned()));
            waiting.len() == 1
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if first {
            let (client, base) = (self.clone(), base.to_owned());
            rt.spawn(async move {
                tokio::time::sleep(RELEASE_FLUSH).await;
                client.flush_releases(&base).await;
            });
        }
    }

    /// Sends the releases still waiting for the node at `base` (each request carries its
    /// share of them).
    pub(crate) async fn flush_releases(&self, base: &str) {
        loop {
            let first = {
                let mut riders = self.inner.riders.lock().unwrap_or_else(|p| p.into_inner());
                riders.get_mut(base).and_then(|w| w.pop())
            };
            let Some((resource, uid)) = first else {
                return;
            };
            let sent = self
                .lock_call(base, LockOp::Release, &resource, &uid, Duration::ZERO)
                .await;
            if let Err(e) = sent {
                tracing::debug!(node = %base, error = %e, "deferred lock releases not delivered (their leases run out)");
            }
        }
    }

    /// Releases waiting for `base`, taken for a request there: at most
    /// [`RIDERS_PER_REQUEST`], and no more than [`RIDER_QUERY_BYTES`] of query between them
    /// (a key is up to 1 KiB, tripled by percent-encoding; the URI must stay short).
    fn take_riders(&self, base: &str) -> Vec<(String, String)> {
        let mut riders = self.inner.riders.lock().unwrap_or_else(|p| p.into_inner());
        let Some(waiting) = riders.get_mut(base) else {
            return Vec::new();
        };
        let mut bytes = 0;
        let n = waiting
            .iter()
            .take(RIDERS_PER_REQUEST)
            .take_while(|(resource, uid)| {
                bytes += 3 * resource.len() + uid.len() + 8;
                bytes <= RIDER_QUERY_BYTES
            })
            .count();
        waiting.drain(..n).collect()
    }

    /// A call whose response is `len` shard bytes, streamed: the head must come within the
    /// unary timeout, then each chunk within the idle timeout.
    pub(crate) async fn read(
        &self,
        t: &Target,
        method: Method,
        params: &[(&str, String)],
        len: usize,
    ) -> Result<Vec<u8>, RpcError> {
        let req = self.request(t, method, params, RequestBody::Full(None))?;
        let limit = self.inner.timeouts.unary;
        let got = self
            .watched(t, async {
                let resp = tokio::time::timeout(limit, self.inner.http.request(req))
                    .await
                    .map_err(|_| Self::offline(t, format!("no answer within {limit:?}")))?
                    .map_err(|e| Self::offline(t, format!("{e:?}")))?;
                Self::body(t, resp, self.inner.timeouts.stream_idle, Some(len)).await
            })
            .await?;
        let bytes = Self::outcome(t, got)?;
        if bytes.len() != len {
            return Err(Self::unusable(
                t,
                format!("short response: {} of {len} bytes", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Starts a streamed upload: frames sent into the returned channel form the request
    /// body; dropping the sender ends it. The task ends with the service's answer.
    pub(crate) fn upload(
        &self,
        t: &Target,
        method: Method,
        params: &[(&str, String)],
    ) -> Result<(mpsc::Sender<Bytes>, UploadAnswer), DriveError> {
        let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
        let req = self
            .request(t, method, params, RequestBody::Stream(rx))
            .map_err(DriveError::from)?;
        let client = self.clone();
        let t = t.clone();
        let task = tokio::spawn(async move {
            let idle = client.inner.timeouts.stream_idle;
            let answer = async {
                let resp = client
                    .inner
                    .http
                    .request(req)
                    .await
                    .map_err(|e| Self::offline(&t, format!("{e:?}")))?;
                let got = Self::body(&t, resp, idle, None).await?;
                Self::outcome(&t, got).map(drop)
            };
            client.watched(&t, answer).await
        });
        Ok((tx, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_releases_ride_in_bounded_shares_and_the_service_applies_them() {
        let client = RpcClient::new(InternodeKey::from_bytes([7; 32]));
        let (a, b) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
        // No runtime here: nothing is flushed on its own, the releases only wait.
        let long = "k".repeat(1024);
        for i in 0..5 {
            client.defer_release(a, &format!("bucket/{long}{i}"), &format!("uid{i}"));
        }
        client.defer_release(b, "bucket/short", "uid-b");
        // Two long keys fit into one request's share (3 KiB each once percent-encoded).
        let first = client.take_riders(a);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0], (format!("bucket/{long}0"), "uid0".to_owned()));
        assert_eq!(client.take_riders(a).len(), 2);
        assert_eq!(client.take_riders(a).len(), 1);
        assert!(client.take_riders(a).is_empty());
        assert_eq!(client.take_riders(b).len(), 1, "each node has its own");

        // The receiving side frees exactly the grants named, pair by pair.
        let table = crate::dlock::LockTable::new();
        let lease = Duration::from_secs(30);
        assert!(table.grant(&first[0].0, &first[0].1, lease));
        assert!(table.grant(&first[1].0, "someone-else", lease));
        let mut params = vec![("method", "x".to_owned())];
        for (r, u) in &first {
            params.push((wire::RIDER_RESOURCE_PARAM, r.clone()));
            params.push((wire::RIDER_UID_PARAM, u.clone()));
        }
        crate::rpc::service::release_riders(&table, &wire::encode_query(&params));
        assert_eq!(table.held(), 1, "only the named holder's grant is freed");
        assert!(!table.grant(&first[1].0, &first[1].1, lease));
        assert!(table.grant(&first[0].0, "next", lease));
    }
}
