//! The S3 front end. [`S3Service::handle`] is the whole request path: request id and tracing
//! span, health probes, addressing and routing (`router.rs`), authentication (`auth.rs`), the
//! body adapter, dispatch to one file per family of operations (`bucket.rs`, `put.rs`,
//! `get.rs`, `list.rs`, `multipart.rs`, `copy.rs`, `delete.rs`), and error rendering
//! (`error.rs`, `response.rs`). Storage semantics live in the `cluster` crate; this module
//! never touches drives and never holds a whole object in memory.

pub mod auth;
pub mod bucket;
pub mod conditions;
pub mod copy;
pub mod delete;
pub mod error;
pub mod get;
pub mod headers;
pub mod list;
pub mod multipart;
pub mod put;
pub mod response;
pub mod router;
pub mod xml;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cluster::{BucketName, ObjectKey, Store};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use sha2::Digest as _;
use sigv4::{StaticCredentials, Verifier};
use tracing::Instrument as _;

use self::auth::{BodyWatch, RawBody, RequestBody};
use self::error::S3Error;
use self::response::ResBody;
use self::router::{Endpoint, Query, Target};

/// Largest single PUT / part (AWS: 5 GiB).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Largest XML request document accepted (DeleteObjects, CompleteMultipartUpload, ...).
pub const MAX_XML_BODY: u64 = 4 * 1024 * 1024;
/// Largest request header section (AWS: 8 KiB, plus room for long keys and signatures).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The bucket owner shown in listings and ACLs.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Canonical id (64 hex characters).
    pub id: String,
    /// Display name (the root access key).
    pub display_name: String,
}

/// Shared state of the S3 front end.
pub struct S3Service {
    /// The storage engine.
    pub store: Store,
    verifier: Verifier,
    /// Region reported by GetBucketLocation and required in signatures.
    pub region: String,
    domains: Vec<String>,
    /// Owner of every bucket.
    pub owner: Owner,
}

impl std::fmt::Debug for S3Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Service")
            .field("region", &self.region)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// One authenticated request on its way through a handler.
#[derive(Debug)]
pub struct S3Request {
    /// Request id (also in `x-amz-request-id`).
    pub id: String,
    /// Method, URI, headers.
    pub parts: http::request::Parts,
    /// Bucket and key.
    pub target: Target,
    /// Decoded query.
    pub query: Query,
    /// Who signed the request.
    pub principal: String,
    body: Option<RequestBody>,
    /// Failure slot of the body (see [`auth::BodyWatch`]).
    pub watch: BodyWatch,
}

impl S3Request {
    /// Request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The bucket, validated.
    pub fn bucket(&self) -> Result<BucketName, S3Error> {
        let b = self
            .target
            .bucket
            .as_deref()
            .ok_or_else(|| S3Error::invalid_request("A bucket name is required"))?;
        Ok(BucketName::new(b)?)
    }

    /// The key, validated (length, and no `.`/`..` path segments).
    pub fn key(&self) -> Result<ObjectKey, S3Error> {
        let k = self
            .target
            .key
            .as_deref()
            .ok_or_else(|| S3Error::invalid_request("An object key is required"))?;
        validate_key(k)
    }

    /// Takes the request body (once).
    pub fn take_body(&mut self) -> Result<RequestBody, S3Error> {
        self.body.take().ok_or_else(S3Error::internal)
    }

    /// Reads a small XML document body.
    pub async fn xml_body(&mut self) -> Result<Bytes, S3Error> {
        let mut body = self.take_body()?;
        body.collect().await.map_err(|e| match e {
            auth::BodyError::TooLarge { .. } => S3Error::malformed_xml(),
            other => other.into(),
        })
    }
}

/// Validates an object key as this server accepts it: 1..=1024 bytes, and no `.` or `..`
/// path segment (such keys are refused so that no client can mistake them for paths).
pub fn validate_key(k: &str) -> Result<ObjectKey, S3Error> {
    if k.len() > cluster::names::MAX_KEY_LEN {
        return Err(S3Error::new(
            "KeyTooLongError",
            StatusCode::BAD_REQUEST,
            "Your key is too long",
        ));
    }
    if k.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(S3Error::new(
            "InvalidArgument",
            StatusCode::BAD_REQUEST,
            "Object keys with '.' or '..' path segments are not allowed",
        ));
    }
    Ok(ObjectKey::new(k)?)
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:016X}", t ^ n.rotate_left(40))
}

impl S3Service {
    /// Builds the front end for `store` with one root credential.
    pub fn new(
        store: Store,
        region: &str,
        domains: Vec<String>,
        access_key: &str,
        secret_key: &str,
    ) -> S3Service {
        let provider = Arc::new(StaticCredentials::single(access_key, secret_key));
        let id = hex::encode(sha2::Sha256::digest(format!("tessera-owner:{access_key}")));
        S3Service {
            store,
            verifier: Verifier::new(region, provider),
            region: region.to_string(),
            domains,
            owner: Owner {
                id,
                display_name: access_key.to_string(),
            },
        }
    }

    /// Serves one HTTP request; never fails (errors become S3 error responses).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<ResBody> {
        let (parts, body) = req.into_parts();
        let body: RawBody = body.map_err(Into::into).boxed();
        self.handle_parts(parts, body).await
    }

    /// As [`S3Service::handle`], for an already split request.
    pub async fn handle_parts(
        self: Arc<Self>,
        parts: http::request::Parts,
        body: RawBody,
    ) -> Response<ResBody> {
        let id = request_id();
        let span = tracing::info_span!(
            "request",
            id = %id,
            method = %parts.method,
            bucket = tracing::field::Empty,
            key = tracing::field::Empty,
            op = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut resp = async {
            let resp = self.serve(&id, parts, body).await;
            let status = resp.status().as_u16();
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::warn!(status, ms, "request failed");
            } else {
                tracing::info!(status, ms, "request done");
            }
            resp
        }
        .instrument(span)
        .await;
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("x-amz-request-id", v.clone());
            h.insert("x-amz-id-2", v);
        }
        h.insert(http::header::SERVER, HeaderValue::from_static("Tessera"));
        resp
    }

    async fn serve(
        &self,
        id: &str,
        parts: http::request::Parts,
        body: RawBody,
    ) -> Response<ResBody> {
        let path = parts.uri.path().to_string();
        let head = parts.method == Method::HEAD;
        let header_bytes: usize = parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            let e = S3Error::new(
                "RequestHeaderSectionTooLarge",
                StatusCode::BAD_REQUEST,
                format!("Your request header section exceeds the maximum allowed size ({MAX_HEADER_BYTES} bytes)."),
            );
            return self
                .fail(e, &path, id, head, Some(body), &parts.headers)
                .await;
        }
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()));
        let target = match router::target(parts.uri.path(), host.as_deref(), &self.domains) {
            Ok(t) => t,
            Err(e) => {
                return self
                    .fail(e, &path, id, head, Some(body), &parts.headers)
                    .await
            }
        };
        let span = tracing::Span::current();
        if let Some(b) = &target.bucket {
            span.record("bucket", b.as_str());
        }
        if let Some(k) = &target.key {
            span.record("key", k.as_str());
        }
        let query = Query::parse(parts.uri.query().unwrap_or(""));
        let endpoint = match router::route(&parts.method, &target, &query, &parts.headers) {
            Ok(e) => e,
            Err(e) => {
                return self
                    .fail(e, &path, id, head, Some(body), &parts.headers)
                    .await
            }
        };
        span.record("op", endpoint.name());
        if let Endpoint::NotImplemented(what) = &endpoint {
            let e = S3Error::not_implemented(what);
            return self
                .fail(e, &path, id, head, Some(body), &parts.headers)
                .await;
        }
        let auth = match auth::authenticate(&self.verifier, &parts) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(error = %e, "authentication failed");
                return self
                    .fail(e.into(), &path, id, head, Some(body), &parts.headers)
                    .await;
            }
        };
        tracing::debug!(
            principal = %auth.principal,
            payload = payload_mode(&auth.payload, &parts.headers),
            "authenticated"
        );
        let limit = match endpoint {
            Endpoint::PutObject | Endpoint::UploadPart => MAX_OBJECT_SIZE,
            _ => MAX_XML_BODY,
        };
        let body = RequestBody::new(body, auth.payload, limit);
        let watch = body.watch();
        let mut req = S3Request {
            id: id.to_string(),
            parts,
            target,
            query,
            principal: auth.principal,
            body: Some(body),
            watch: watch.clone(),
        };
        let result = self.dispatch(&endpoint, &mut req).await;
        match result {
            Ok(r) => r,
            Err(e) => {
                // A failed body explains the failure better than whatever the engine made of it.
                let e = match watch.failure() {
                    Some(b) => b.into(),
                    None => e,
                };
                if e.status.is_server_error() {
                    tracing::warn!(code = e.code, message = %e.message, "error");
                } else {
                    tracing::info!(code = e.code, message = %e.message, "client error");
                }
                let unread = req.body.take();
                let unread = unread.map(|b| b.into_raw());
                self.fail_logged(e, &path, id, head, unread, &req.parts.headers)
                    .await
            }
        }
    }

    async fn fail(
        &self,
        e: S3Error,
        path: &str,
        id: &str,
        head: bool,
        body: Option<RawBody>,
        headers: &HeaderMap,
    ) -> Response<ResBody> {
        if e.status.is_server_error() {
            tracing::warn!(code = e.code, message = %e.message, "error");
        } else {
            tracing::info!(code = e.code, message = %e.message, "client error");
        }
        self.fail_logged(e, path, id, head, body, headers).await
    }

    async fn fail_logged(
        &self,
        e: S3Error,
        path: &str,
        id: &str,
        head: bool,
        body: Option<RawBody>,
        headers: &HeaderMap,
    ) -> Response<ResBody> {
        let mut close = false;
        if let Some(body) = body {
            close = !drain(body, headers).await;
        }
        let mut r = response::error(&e, path, id, head);
        if close {
            r.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }

    async fn dispatch(
        &self,
        endpoint: &Endpoint,
        req: &mut S3Request,
    ) -> Result<Response<ResBody>, S3Error> {
        match endpoint {
            Endpoint::ListBuckets => bucket::list_buckets(self, req).await,
            Endpoint::CreateBucket => bucket::create_bucket(self, req).await,
            Endpoint::HeadBucket => bucket::head_bucket(self, req).await,
            Endpoint::DeleteBucket => bucket::delete_bucket(self, req).await,
            Endpoint::GetBucketLocation => bucket::get_location(self, req).await,
            Endpoint::GetBucketVersioning => bucket::get_versioning(self, req).await,
            Endpoint::GetBucketAcl | Endpoint::GetObjectAcl => bucket::get_acl(self, req).await,
            Endpoint::GetBucketConfig(c) => bucket::get_config(self, req, *c).await,
            Endpoint::DeleteBucketConfig(_) => bucket::delete_config(self, req).await,
            Endpoint::ListObjects => list::list_objects_v1(self, req).await,
            Endpoint::ListObjectsV2 => list::list_objects_v2(self, req).await,
            Endpoint::ListObjectVersions => list::list_object_versions(self, req).await,
            Endpoint::ListMultipartUploads => multipart::list_uploads(self, req).await,
            Endpoint::DeleteObjects => delete::delete_objects(self, req).await,
            Endpoint::PutObject => put::put_object(self, req).await,
            Endpoint::CopyObject => copy::copy_object(self, req).await,
            Endpoint::GetObject => get::get_object(self, req, false).await,
            Endpoint::HeadObject => get::get_object(self, req, true).await,
            Endpoint::DeleteObject => delete::delete_object(self, req).await,
            Endpoint::GetObjectTagging => get::get_object_tagging(self, req).await,
            Endpoint::CreateMultipartUpload => multipart::create(self, req).await,
            Endpoint::UploadPart => multipart::upload_part(self, req).await,
            Endpoint::UploadPartCopy => copy::upload_part_copy(self, req).await,
            Endpoint::CompleteMultipartUpload => multipart::complete(self, req).await,
            Endpoint::AbortMultipartUpload => multipart::abort(self, req).await,
            Endpoint::ListParts => multipart::list_parts(self, req).await,
            Endpoint::NotImplemented(what) => Err(S3Error::not_implemented(what)),
        }
    }
}

/// How the body is protected, for the request log.
fn payload_mode(p: &sigv4::PayloadCheck, h: &HeaderMap) -> &'static str {
    let presigned = h.get(http::header::AUTHORIZATION).is_none();
    match p {
        sigv4::PayloadCheck::Unsigned if presigned => "presigned",
        sigv4::PayloadCheck::Unsigned => "unsigned",
        sigv4::PayloadCheck::Sha256(_) => "signed-sha256",
        sigv4::PayloadCheck::Chunked(_) => {
            match h.get("x-amz-content-sha256").map(|v| v.as_bytes()) {
                Some(b"STREAMING-UNSIGNED-PAYLOAD-TRAILER") => "aws-chunked-unsigned-trailer",
                Some(b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => "aws-chunked-signed-trailer",
                _ => "aws-chunked-signed",
            }
        }
    }
}

/// Reads and discards a small unread request body so the error response reaches the client
/// before the connection is reused or closed. Returns `false` when the body was not drained
/// (too large, too slow, or the client waits for `100 Continue`): the connection must close.
async fn drain(mut body: RawBody, headers: &HeaderMap) -> bool {
    const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;
    if http_body::Body::is_end_stream(&body) {
        return true;
    }
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        return false;
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return false;
    }
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        seen += d.len() as u64;
                        if seen > DRAIN_LIMIT {
                            return false;
                        }
                    }
                }
                Err(_) => return false,
            }
        }
        true
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or(false)
}
