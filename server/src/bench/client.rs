//! The bench's HTTP side: one keep-alive HTTP/1.1 connection pool (hyper-util's legacy
//! client, `TCP_NODELAY`, TLS by [`super::tls`] for `https://` endpoints) shared by every worker, and the few S3 requests the bench sends
//! (PUT, multipart upload, GET with a streaming body check, DELETE, DeleteObjects, a
//! ListObjectsV2 page, create/delete bucket, the health probe), each signed by [`Signer`] and
//! bounded by a timeout. Nothing here measures or prints.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use md5::Digest as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::OffsetDateTime;

use super::payload::{BodyCheck, ObjectBody, ObjectData, VerifyError};
use super::signer::Signer;
use super::tls::{ClientTlsError, ClientTrust};

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
    /// DeleteObjects answered 200 but reported this many keys it did not delete.
    #[error("DeleteObjects did not delete {0} keys")]
    Partial(u64),
    /// A full listing returned a different number of keys than were prepared.
    #[error("listing returned {got} keys, expected {expected}")]
    ListCount {
        /// Keys (and common prefixes) returned.
        got: u64,
        /// Keys prepared.
        expected: u64,
    },
}

impl RequestError {
    /// The S3 error code (`NoSuchKey`, `SlowDown`, ...) when the server sent one, else
    /// `HTTP <status>`, `Transport`, `Timeout` or `Corrupt`.
    pub fn code(&self) -> String {
        match self {
            RequestError::Transport(_) => "Transport".to_string(),
            RequestError::Timeout => "Timeout".to_string(),
            RequestError::Corrupt(_) => super::report::CORRUPT.to_string(),
            RequestError::Partial(_) => "PartialDelete".to_string(),
            RequestError::ListCount { .. } => "ListCount".to_string(),
            RequestError::Status { status, body } => xml_text(body, "Code")
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
        }
    }
}

/// One page of a ListObjectsV2 listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// `<Contents>` entries.
    pub keys: u64,
    /// `<CommonPrefixes>` entries.
    pub prefixes: u64,
    /// The token of the next page, when truncated.
    pub next: Option<String>,
}

/// Characters left alone in a query value (S3's unreserved set).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters left alone in a key in the path (unreserved and `/`).
const KEY_PATH: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// `value` percent-encoded for a query string.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Why the endpoint is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not an absolute `http(s)://host:port` URL.
    #[error("endpoint {0:?} is not an http://HOST[:PORT] or https://HOST[:PORT] URL")]
    Invalid(String),
    /// The TLS trust (`--ca-bundle`, `AWS_CA_BUNDLE`) is unusable.
    #[error(transparent)]
    Tls(#[from] ClientTlsError),
}

/// A signed S3 client over one keep-alive pool.
#[derive(Debug, Clone)]
pub struct S3Client {
    http: Client<HttpsConnector<HttpConnector>, ObjectBody>,
    signer: Signer,
    /// `host[:port]` as sent in `Host` (and signed).
    host: String,
    /// `http(s)://host[:port]`.
    base: String,
}

impl S3Client {
    /// A client for `endpoint` keeping up to `pool` idle connections; `https://` endpoints
    /// are verified against the system's root certificates.
    pub fn new(endpoint: &str, signer: Signer, pool: usize) -> Result<Self, EndpointError> {
        Self::with_trust(endpoint, signer, pool, &ClientTrust::default())
    }

    /// As [`S3Client::new`], trusting `trust` over `https://`.
    pub fn with_trust(
        endpoint: &str,
        signer: Signer,
        pool: usize,
        trust: &ClientTrust,
    ) -> Result<Self, EndpointError> {
        let uri: Uri = endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|_| EndpointError::Invalid(endpoint.to_string()))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(EndpointError::Invalid(endpoint.to_string())),
        };
        if uri.path().len() > 1 {
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
            .build(super::tls::connector(connector, scheme == "https", trust)?);
        Ok(S3Client {
            http,
            signer,
            base: format!("{scheme}://{host}"),
            host,
        })
    }

    fn request(&self, method: Method, path: &str, body: ObjectBody) -> Request<ObjectBody> {
        self.request_q(method, path, "", body, &[])
    }

    /// A signed request; `path` and `query` exactly as they go on the wire.
    fn request_q(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: ObjectBody,
        extra: &[(&'static str, String)],
    ) -> Request<ObjectBody> {
        let signed = self.signer.sign(
            method.as_str(),
            &self.host,
            path,
            query,
            OffsetDateTime::now_utc(),
        );
        let uri = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, &self.host)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.content_sha256)
            .header(http::header::AUTHORIZATION, signed.authorization);
        for (name, value) in extra {
            builder = builder.header(*name, value);
        }
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
    /// is one of `ok`, else into the error. Returns the response headers.
    async fn send(
        &self,
        req: Request<ObjectBody>,
        ok: &[StatusCode],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<HeaderMap, RequestError> {
        let fut = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|e| RequestError::Transport(error_chain(&e)))?;
            let status = res.status();
            let (parts, mut body) = res.into_parts();
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
            Ok(parts.headers)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| RequestError::Timeout)?
    }

    /// Sends a request whose 200 answer is an XML document; returns it. A 200 carrying an
    /// `<Error>` document (as CompleteMultipartUpload may) is an error.
    async fn send_xml(&self, req: Request<ObjectBody>) -> Result<String, RequestError> {
        let mut buf = Vec::new();
        self.send(req, &[StatusCode::OK], |b| buf.extend_from_slice(b))
            .await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        if text.contains("<Error>") {
            return Err(RequestError::Status {
                status: StatusCode::OK,
                body: text.chars().take(300).collect(),
            });
        }
        Ok(text)
    }

    fn object_path(bucket: &str, key: &str) -> String {
        format!("/{bucket}/{}", utf8_percent_encode(key, KEY_PATH))
    }

    /// Uploads `object` to `bucket/key`: one PutObject, or, when `part_size` is given and the
    /// object is larger, a multipart upload with parts of `part_size` bytes sent one after
    /// the other (aborted if a part fails). Returns the number of parts (0 for PutObject).
    pub async fn upload(
        &self,
        bucket: &str,
        key: &str,
        object: &ObjectData,
        part_size: Option<u64>,
    ) -> Result<u32, RequestError> {
        match part_size {
            Some(ps) if object.len() > ps => {
                let upload_id = self.create_multipart(bucket, key).await?;
                let mut etags = Vec::new();
                let mut start = 0u64;
                while start < object.len() {
                    let end = (start + ps).min(object.len());
                    let n = etags.len() as u32 + 1;
                    match self
                        .upload_part(bucket, key, &upload_id, n, object.range(start, end))
                        .await
                    {
                        Ok(etag) => etags.push(etag),
                        Err(e) => {
                            let _ = self.abort_multipart(bucket, key, &upload_id).await;
                            return Err(e);
                        }
                    }
                    start = end;
                }
                if let Err(e) = self
                    .complete_multipart(bucket, key, &upload_id, &etags)
                    .await
                {
                    let _ = self.abort_multipart(bucket, key, &upload_id).await;
                    return Err(e);
                }
                Ok(etags.len() as u32)
            }
            _ => self
                .put_object(bucket, key, object.body())
                .await
                .map(|()| 0),
        }
    }

    /// `POST /bucket/key?uploads`: the new upload id.
    pub async fn create_multipart(&self, bucket: &str, key: &str) -> Result<String, RequestError> {
        let path = Self::object_path(bucket, key);
        let req = self.request_q(Method::POST, &path, "uploads=", ObjectBody::empty(), &[]);
        let xml = self.send_xml(req).await?;
        xml_text(&xml, "UploadId").ok_or_else(|| RequestError::Status {
            status: StatusCode::OK,
            body: "no UploadId in the CreateMultipartUpload answer".into(),
        })
    }

    /// `PUT /bucket/key?partNumber=N&uploadId=ID`: the part's ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: u32,
        body: ObjectBody,
    ) -> Result<String, RequestError> {
        let path = Self::object_path(bucket, key);
        let query = format!(
            "partNumber={part}&uploadId={}",
            encode_query_value(upload_id)
        );
        let req = self.request_q(Method::PUT, &path, &query, body, &[]);
        let headers = self.send(req, &[StatusCode::OK], |_| {}).await?;
        headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RequestError::Status {
                status: StatusCode::OK,
                body: "no ETag in the UploadPart answer".into(),
            })
    }

    /// `POST /bucket/key?uploadId=ID` with parts `1..=etags.len()`.
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), RequestError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                quick_xml::escape::escape(etag.as_str())
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let path = Self::object_path(bucket, key);
        let query = format!("uploadId={}", encode_query_value(upload_id));
        let body = ObjectBody::from_bytes(Bytes::from(xml));
        let req = self.request_q(Method::POST, &path, &query, body, &[]);
        self.send_xml(req).await.map(|_| ())
    }

    /// `DELETE /bucket/key?uploadId=ID`.
    pub async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), RequestError> {
        let path = Self::object_path(bucket, key);
        let query = format!("uploadId={}", encode_query_value(upload_id));
        let req = self.request_q(Method::DELETE, &path, &query, ObjectBody::empty(), &[]);
        self.send(req, &[StatusCode::NO_CONTENT, StatusCode::OK], |_| {})
            .await
            .map(|_| ())
    }

    /// One ListObjectsV2 page of `bucket` under `prefix` (`max-keys` = `max_keys`).
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, RequestError> {
        // Query parameters in the canonical (sorted) order.
        let mut query = String::new();
        if let Some(t) = token {
            query.push_str(&format!("continuation-token={}&", encode_query_value(t)));
        }
        if let Some(d) = delimiter {
            query.push_str(&format!("delimiter={}&", encode_query_value(d)));
        }
        query.push_str(&format!(
            "list-type=2&max-keys={max_keys}&prefix={}",
            encode_query_value(prefix)
        ));
        let req = self.request_q(
            Method::GET,
            &format!("/{bucket}"),
            &query,
            ObjectBody::empty(),
            &[],
        );
        let xml = self.send_xml(req).await?;
        let truncated = xml_text(&xml, "IsTruncated").is_some_and(|t| t == "true");
        let next = xml_text(&xml, "NextContinuationToken").filter(|_| truncated);
        if truncated && next.is_none() {
            return Err(RequestError::Status {
                status: StatusCode::OK,
                body: "truncated listing without NextContinuationToken".into(),
            });
        }
        Ok(ListPage {
            keys: xml.matches("<Contents>").count() as u64,
            prefixes: xml.matches("<CommonPrefixes>").count() as u64,
            next,
        })
    }

    /// `POST /bucket?delete` (quiet) of `keys`: the keys the server reported it could not
    /// delete.
    pub async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<u64, RequestError> {
        let mut xml = String::from("<Delete><Quiet>true</Quiet>");
        for k in keys {
            xml.push_str(&format!(
                "<Object><Key>{}</Key></Object>",
                quick_xml::escape::escape(k.as_str())
            ));
        }
        xml.push_str("</Delete>");
        let md5 =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(xml.as_bytes()));
        let body = ObjectBody::from_bytes(Bytes::from(xml));
        let req = self.request_q(
            Method::POST,
            &format!("/{bucket}"),
            "delete=",
            body,
            &[("content-md5", md5)],
        );
        let mut buf = Vec::new();
        self.send(req, &[StatusCode::OK], |b| buf.extend_from_slice(b))
            .await?;
        let text = String::from_utf8_lossy(&buf);
        Ok(text.matches("<Error>").count() as u64)
    }

    /// `PUT /bucket/key` with `body`.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: ObjectBody,
    ) -> Result<(), RequestError> {
        let req = self.request(Method::PUT, &Self::object_path(bucket, key), body);
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
            &Self::object_path(bucket, key),
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
            &Self::object_path(bucket, key),
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

/// The unescaped text of the first `<tag>...</tag>` in `xml`.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    let raw = &xml[start..end];
    Some(
        quick_xml::escape::unescape(raw)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| raw.to_string()),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_come_from_the_s3_error_document() {
        let e = RequestError::Status {
            status: StatusCode::NOT_FOUND,
            body:
                "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>"
                    .into(),
        };
        assert_eq!(e.code(), "NoSuchKey");
        let e = RequestError::Status {
            status: StatusCode::BAD_GATEWAY,
            body: String::new(),
        };
        assert_eq!(e.code(), "HTTP 502");
        assert_eq!(RequestError::Timeout.code(), "Timeout");
        assert_eq!(
            xml_text("<a><T>x&amp;y</T></a>", "T").as_deref(),
            Some("x&y")
        );
        assert_eq!(encode_query_value("a/b c~"), "a%2Fb%20c~");
    }
}
