//! The bench's HTTP side: one keep-alive HTTP/1.1 connection pool (hyper-util's legacy
//! client, `TCP_NODELAY`) shared by every worker, and the few S3 requests the bench sends
//! (PUT, GET with a streaming body check, DELETE, create bucket, the health probe), each
//! signed by [`Signer`] and bounded by a timeout. Nothing here measures or prints.

use std::time::Duration;

use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use time::OffsetDateTime;

use super::payload::{BodyCheck, ObjectBody, VerifyError};
use super::signer::Signer;

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Connecting, sending or receiving failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered with an unexpected status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body (an S3 error document).
        body: String,
    },
    /// The request took longer than [`REQUEST_TIMEOUT`].
    #[error("timed out")]
    Timeout,
    /// The GET body was not what had been written.
    #[error("wrong data: {0}")]
    Corrupt(#[from] VerifyError),
}

/// Why the endpoint is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not an absolute `http://host:port` URL.
    #[error(
        "endpoint {0:?} is not an http://HOST[:PORT] URL (https is not supported by the bench)"
    )]
    Invalid(String),
}

/// A signed S3 client over one keep-alive pool.
#[derive(Debug, Clone)]
pub struct S3Client {
    http: Client<HttpConnector, ObjectBody>,
    signer: Signer,
    /// `host[:port]` as sent in `Host` (and signed).
    host: String,
    /// `http://host[:port]`.
    base: String,
}

impl S3Client {
    /// A client for `endpoint` keeping up to `pool` idle connections.
    pub fn new(endpoint: &str, signer: Signer, pool: usize) -> Result<Self, EndpointError> {
        let uri: Uri = endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|_| EndpointError::Invalid(endpoint.to_string()))?;
        if uri.scheme_str() != Some("http") || uri.path().len() > 1 {
            return Err(EndpointError::Invalid(endpoint.to_string()));
        }
        let host = uri
            .authority()
            .ok_or_else(|| EndpointError::Invalid(endpoint.to_string()))?
            .to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(S3Client {
            http,
            signer,
            base: format!("http://{host}"),
            host,
        })
    }

    fn request(&self, method: Method, path: &str, body: ObjectBody) -> Request<ObjectBody> {
        let signed = self.signer.sign(
            method.as_str(),
            &self.host,
            path,
            "",
            OffsetDateTime::now_utc(),
        );
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(http::header::HOST, &self.host)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.content_sha256)
            .header(http::header::AUTHORIZATION, signed.authorization);
        if let Some(len) = http_body::Body::size_hint(&body).exact() {
            if len > 0 {
                builder = builder.header(http::header::CONTENT_LENGTH, len);
            }
        }
        builder
            .body(body)
            .expect("method, URI and header values are valid by construction")
    }

    /// Sends a request and reads the whole response; the body goes to `sink` when the status
    /// is one of `ok`, else into the error.
    async fn send(
        &self,
        req: Request<ObjectBody>,
        ok: &[StatusCode],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<StatusCode, RequestError> {
        let fut = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|e| RequestError::Transport(error_chain(&e)))?;
            let status = res.status();
            let mut body = res.into_body();
            if !ok.contains(&status) {
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                return Err(RequestError::Status { status, body: text });
            }
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| RequestError::Transport(error_chain(&e)))?;
                if let Some(data) = frame.data_ref() {
                    sink(data);
                }
            }
            Ok(status)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| RequestError::Timeout)?
    }

    /// `PUT /bucket/key` with `body`.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: ObjectBody,
    ) -> Result<(), RequestError> {
        let req = self.request(Method::PUT, &format!("/{bucket}/{key}"), body);
        self.send(req, &[StatusCode::OK], |_| {}).await.map(|_| ())
    }

    /// `GET /bucket/key`, streaming the body through `check`; returns the bytes received.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        mut check: BodyCheck,
    ) -> Result<u64, RequestError> {
        let req = self.request(
            Method::GET,
            &format!("/{bucket}/{key}"),
            ObjectBody::empty(),
        );
        self.send(req, &[StatusCode::OK], |b| check.update(b))
            .await?;
        let n = check.len();
        check.finish()?;
        Ok(n)
    }

    /// `DELETE /bucket/key`.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), RequestError> {
        let req = self.request(
            Method::DELETE,
            &format!("/{bucket}/{key}"),
            ObjectBody::empty(),
        );
        self.send(req, &[StatusCode::NO_CONTENT, StatusCode::OK], |_| {})
            .await
            .map(|_| ())
    }

    /// Creates `bucket`; returns `false` when it already existed (and is ours).
    pub async fn create_bucket(&self, bucket: &str) -> Result<bool, RequestError> {
        let req = self.request(Method::PUT, &format!("/{bucket}"), ObjectBody::empty());
        match self.send(req, &[StatusCode::OK], |_| {}).await {
            Ok(_) => Ok(true),
            Err(RequestError::Status { status, body })
                if status == StatusCode::CONFLICT && body.contains("BucketAlreadyOwnedByYou") =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `DELETE /bucket` (must be empty).
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), RequestError> {
        let req = self.request(Method::DELETE, &format!("/{bucket}"), ObjectBody::empty());
        self.send(req, &[StatusCode::NO_CONTENT, StatusCode::OK], |_| {})
            .await
            .map(|_| ())
    }

    /// `GET /health/live` (unsigned on the server side, signed anyway: same cost per request
    /// as an S3 call on the client side).
    pub async fn health(&self) -> Result<(), RequestError> {
        let req = self.request(Method::GET, "/health/live", ObjectBody::empty());
        self.send(req, &[StatusCode::OK], |_| {}).await.map(|_| ())
    }
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
