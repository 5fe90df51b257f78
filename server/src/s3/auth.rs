//! Auth glue between HTTP and the `sigv4` crate: hands the verifier the raw path, raw query
//! and headers exactly as received, and wraps the request body in [`RequestBody`], which runs
//! every byte through the check the signature demands ([`PayloadHasher`] for signed payloads,
//! [`ChunkedDecoder`] for aws-chunked ones) and surfaces aws-chunked trailer checksums as
//! [`ObjectBody::trailing_checksums`]. A failed hash, chunk signature or chunk framing makes
//! the stream yield `Err` instead of ending, so the engine commits nothing. This module never
//! decides what an authenticated principal may do and never buffers a whole body.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use cluster::{Checksum, ChecksumAlgorithm, ObjectBody};
use futures::Stream;
use http::request::Parts;
use http_body::Body as _;
use http_body_util::combinators::BoxBody;
use sigv4::{
    AuthError, Authenticated, ChunkedDecoder, PayloadCheck, PayloadHasher, RequestParts, Verifier,
};

/// A raw request body as the HTTP layer delivers it.
pub type RawBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Verifies the request's signature (header, presigned query or SigV2 presign).
pub fn authenticate(verifier: &Verifier, parts: &Parts) -> Result<Authenticated, AuthError> {
    let mut headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    // HTTP/2 carries the host as :authority, which hyper keeps in the URI, not in the headers.
    let authority = parts.uri.authority().map(|a| a.as_str().to_string());
    if !parts.headers.contains_key(http::header::HOST) {
        if let Some(a) = authority.as_deref() {
            headers.push(("host", a.as_bytes()));
        }
    }
    let req = RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
    };
    verifier.verify(&req, SystemTime::now())
}

/// Why a request body stream failed. Travels inside an `io::Error` through the engine and is
/// also recorded in the request's [`BodyWatch`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
    /// Payload hash, chunk signature, chunk framing or trailer problem.
    #[error("{0}")]
    Auth(AuthError),
    /// More bytes than the operation allows.
    #[error("the body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The connection failed or the client stopped sending.
    #[error("{0}")]
    Transport(String),
}

impl BodyError {
    /// Wraps this error for a `Stream<Item = io::Result<_>>`.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// Recovers a `BodyError` from an `io::Error` made by [`BodyError::into_io`].
    pub fn from_io(e: &io::Error) -> Option<&BodyError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyError>())
    }
}

/// Shared slot recording the first failure of a [`RequestBody`], so the handler reports the
/// body's own error however the engine wrapped it.
#[derive(Debug, Clone, Default)]
pub struct BodyWatch(Arc<Mutex<Option<BodyError>>>);

impl BodyWatch {
    fn set(&self, e: BodyError) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
    }

    /// The body's failure, if it failed.
    pub fn failure(&self) -> Option<BodyError> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

enum Check {
    None,
    Sha256(Option<PayloadHasher>),
    Chunked(Option<Box<ChunkedDecoder>>),
}

/// A request body after authentication: yields the object's bytes (aws-chunked framing
/// removed) and fails instead of ending if the bytes are not what was signed.
pub struct RequestBody {
    inner: RawBody,
    check: Check,
    limit: u64,
    seen: u64,
    trailers: Vec<Checksum>,
    watch: BodyWatch,
    done: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("limit", &self.limit)
            .field("seen", &self.seen)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    /// Wraps `inner`, enforcing `payload` and at most `limit` decoded bytes.
    pub fn new(inner: RawBody, payload: PayloadCheck, limit: u64) -> Self {
        let check = match payload {
            PayloadCheck::Unsigned => Check::None,
            PayloadCheck::Sha256(d) => Check::Sha256(Some(PayloadHasher::new(d))),
            PayloadCheck::Chunked(dec) => Check::Chunked(Some(Box::new(dec))),
        };
        RequestBody {
            inner,
            check,
            limit,
            seen: 0,
            trailers: Vec::new(),
            watch: BodyWatch::default(),
            done: false,
        }
    }

    /// The raw body, for draining after an error.
    pub fn into_raw(self) -> RawBody {
        self.inner
    }

    /// The failure slot shared with this body.
    pub fn watch(&self) -> BodyWatch {
        self.watch.clone()
    }

    /// Whether the payload arrives aws-chunked (checksum trailers possible).
    pub fn is_chunked(&self) -> bool {
        matches!(self.check, Check::Chunked(_))
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<io::Result<Bytes>>> {
        self.watch.set(e.clone());
        self.done = true;
        Poll::Ready(Some(Err(e.into_io())))
    }

    fn count(&mut self, n: usize) -> Result<(), BodyError> {
        self.seen = self.seen.saturating_add(n as u64);
        if self.seen > self.limit {
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), BodyError> {
        match &mut self.check {
            Check::None => Ok(()),
            Check::Sha256(h) => match h.take() {
                Some(h) => h.finish().map_err(BodyError::Auth),
                None => Ok(()),
            },
            Check::Chunked(d) => {
                let Some(d) = d.take() else { return Ok(()) };
                let trailers = d.finish().map_err(BodyError::Auth)?;
                if let Some((name, value)) = trailers.checksum() {
                    if let Some(algorithm) = ChecksumAlgorithm::from_name(name) {
                        self.trailers.push(Checksum {
                            algorithm,
                            value: value.to_string(),
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Reads the whole body into memory, failing with `TooLarge` past the body's limit. For
    /// small XML request documents only.
    pub async fn collect(&mut self) -> Result<Bytes, BodyError> {
        use futures::StreamExt as _;
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c),
                Err(e) => {
                    return Err(BodyError::from_io(&e)
                        .cloned()
                        .unwrap_or_else(|| BodyError::Transport(e.to_string())))
                }
            }
        }
        Ok(out.into())
    }
}

impl Stream for RequestBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(f) => f,
            };
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // HTTP trailers: not used by S3 clients
                    };
                    let out = match &mut this.check {
                        Check::None => data,
                        Check::Sha256(h) => {
                            if let Some(h) = h.as_mut() {
                                h.update(&data);
                            }
                            data
                        }
                        Check::Chunked(d) => {
                            let Some(d) = d.as_mut() else { continue };
                            let mut out = Vec::new();
                            if let Err(e) = d.decode(&data, &mut out) {
                                return this.fail(BodyError::Auth(e));
                            }
                            Bytes::from(out)
                        }
                    };
                    if out.is_empty() {
                        continue;
                    }
                    if let Err(e) = this.count(out.len()) {
                        return this.fail(e);
                    }
                    return Poll::Ready(Some(Ok(out)));
                }
                Some(Err(e)) => return this.fail(BodyError::Transport(e.to_string())),
                None => {
                    if let Err(e) = this.finish() {
                        return this.fail(e);
                    }
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl ObjectBody for RequestBody {
    fn trailing_checksums(&mut self) -> Vec<Checksum> {
        std::mem::take(&mut self.trailers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use http_body_util::{BodyExt as _, Full};
    use sha2::{Digest, Sha256};

    fn raw(data: &'static [u8]) -> RawBody {
        Full::new(Bytes::from_static(data))
            .map_err(|never| match never {})
            .boxed()
    }

    async fn drain(mut b: RequestBody) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        while let Some(c) = b.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn signed_payload_passes_when_the_hash_matches() {
        let d: [u8; 32] = Sha256::digest(b"hello").into();
        let b = RequestBody::new(raw(b"hello"), PayloadCheck::Sha256(d), 100);
        assert_eq!(drain(b).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn signed_payload_fails_instead_of_ending_when_the_hash_differs() {
        let d: [u8; 32] = Sha256::digest(b"other").into();
        let b = RequestBody::new(raw(b"hello"), PayloadCheck::Sha256(d), 100);
        let watch = b.watch();
        let err = drain(b).await.unwrap_err();
        assert!(matches!(
            BodyError::from_io(&err),
            Some(BodyError::Auth(AuthError::XAmzContentSHA256Mismatch))
        ));
        assert!(watch.failure().is_some());
    }

    #[tokio::test]
    async fn bodies_over_the_limit_fail() {
        let b = RequestBody::new(raw(b"0123456789"), PayloadCheck::Unsigned, 5);
        let err = drain(b).await.unwrap_err();
        assert!(matches!(
            BodyError::from_io(&err),
            Some(BodyError::TooLarge { limit: 5 })
        ));
    }
}
