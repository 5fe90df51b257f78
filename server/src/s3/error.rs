//! The one error mapping table: every failure a handler can meet ([`StoreError`] from the
//! engine, [`AuthError`] from signature checking, [`BodyError`] from the request body adapters,
//! and protocol errors found while parsing) becomes an [`S3Error`] carrying the S3 code, HTTP
//! status and message that AWS documents. Rendering to XML happens in `response.rs`; this module
//! never decides anything about storage or authentication itself.

use cluster::StoreError;
use http::{HeaderName, HeaderValue, StatusCode};
use sigv4::AuthError;

use super::auth::BodyError;

/// An S3 error response, ready to render.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// The S3 error code (`NoSuchKey`, `SignatureDoesNotMatch`, ...).
    pub code: &'static str,
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message for `<Message>`.
    pub message: String,
    /// Extra response headers (e.g. `Content-Range` on 416).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for S3Error {}

impl S3Error {
    /// Builds an error from its three parts.
    pub fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        S3Error {
            code,
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 501 for an operation this server does not implement.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            "NotImplemented",
            StatusCode::NOT_IMPLEMENTED,
            format!("{what} is not implemented by this server"),
        )
    }

    /// 400 MalformedXML (AWS's wording).
    pub fn malformed_xml() -> Self {
        Self::new(
            "MalformedXML",
            StatusCode::BAD_REQUEST,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    /// 400 InvalidArgument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new("InvalidArgument", StatusCode::BAD_REQUEST, message)
    }

    /// 400 InvalidRequest.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequest", StatusCode::BAD_REQUEST, message)
    }

    /// 400 InvalidDigest (a Content-MD5 / checksum header that is not a valid digest).
    pub fn invalid_digest(message: impl Into<String>) -> Self {
        Self::new("InvalidDigest", StatusCode::BAD_REQUEST, message)
    }

    /// 404 NoSuchBucket.
    pub fn no_such_bucket() -> Self {
        Self::new(
            "NoSuchBucket",
            StatusCode::NOT_FOUND,
            "The specified bucket does not exist",
        )
    }

    /// 404 NoSuchKey.
    pub fn no_such_key() -> Self {
        Self::new(
            "NoSuchKey",
            StatusCode::NOT_FOUND,
            "The specified key does not exist.",
        )
    }

    /// 412 PreconditionFailed.
    pub fn precondition_failed() -> Self {
        Self::new(
            "PreconditionFailed",
            StatusCode::PRECONDITION_FAILED,
            "At least one of the pre-conditions you specified did not hold",
        )
    }

    /// 400 EntityTooLarge.
    pub fn entity_too_large(limit: u64) -> Self {
        Self::new(
            "EntityTooLarge",
            StatusCode::BAD_REQUEST,
            format!("Your proposed upload exceeds the maximum allowed size ({limit} bytes)"),
        )
    }

    /// 416 InvalidRange with `Content-Range: bytes */size`.
    pub fn invalid_range(size: u64) -> Self {
        let e = Self::new(
            "InvalidRange",
            StatusCode::RANGE_NOT_SATISFIABLE,
            "The requested range is not satisfiable",
        );
        match HeaderValue::from_str(&format!("bytes */{size}")) {
            Ok(v) => e.with_header(http::header::CONTENT_RANGE, v),
            Err(_) => e,
        }
    }

    /// 500 InternalError (details go to the log, not to the client).
    pub fn internal() -> Self {
        Self::new(
            "InternalError",
            StatusCode::INTERNAL_SERVER_ERROR,
            "We encountered an internal error. Please try again.",
        )
    }

    /// 503 SlowDown (quorum lost or overloaded).
    pub fn slow_down() -> Self {
        Self::new(
            "SlowDown",
            StatusCode::SERVICE_UNAVAILABLE,
            "Please reduce your request rate. (The storage backend cannot reach quorum right now.)",
        )
    }
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        #[allow(unreachable_patterns)]
        match e {
            StoreError::NoSuchBucket => S3Error::no_such_bucket(),
            StoreError::BucketExists => S3Error::new(
                "BucketAlreadyOwnedByYou",
                S::CONFLICT,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            StoreError::BucketNotEmpty => S3Error::new(
                "BucketNotEmpty",
                S::CONFLICT,
                "The bucket you tried to delete is not empty",
            ),
            StoreError::NoSuchKey => S3Error::no_such_key(),
            StoreError::NoSuchUpload => S3Error::new(
                "NoSuchUpload",
                S::NOT_FOUND,
                "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            StoreError::InvalidPart => S3Error::new(
                "InvalidPart",
                S::BAD_REQUEST,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            ),
            StoreError::InvalidPartOrder => S3Error::new(
                "InvalidPartOrder",
                S::BAD_REQUEST,
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ),
            StoreError::EntityTooSmall => S3Error::new(
                "EntityTooSmall",
                S::BAD_REQUEST,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            StoreError::PreconditionFailed => S3Error::precondition_failed(),
            StoreError::BadDigest => S3Error::new(
                "BadDigest",
                S::BAD_REQUEST,
                "The Content-MD5 you specified did not match what we received.",
            ),
            StoreError::ChecksumMismatch { algorithm } => S3Error::new(
                "BadDigest",
                S::BAD_REQUEST,
                format!("The {algorithm} you specified did not match the calculated checksum."),
            ),
            StoreError::InvalidChecksum(m) => S3Error::invalid_request(m),
            StoreError::InvalidArgument(m) => S3Error::invalid_argument(m),
            StoreError::InvalidPartNumber => S3Error::new(
                "InvalidPartNumber",
                S::RANGE_NOT_SATISFIABLE,
                "The requested partnumber is not satisfiable",
            ),
            StoreError::InvalidRange { size } => S3Error::invalid_range(size),
            StoreError::InvalidBucketName(m) => S3Error::new(
                "InvalidBucketName",
                S::BAD_REQUEST,
                format!("The specified bucket is not valid: {m}"),
            ),
            StoreError::InvalidKey(m) => {
                S3Error::invalid_argument(format!("The specified key is not valid: {m}"))
            }
            StoreError::WriteQuorum { .. }
            | StoreError::ReadQuorum { .. }
            | StoreError::LockTimeout { .. }
            | StoreError::LockLost { .. } => S3Error::slow_down(),
            StoreError::Body(io) => match BodyError::from_io(&io) {
                Some(b) => b.clone().into(),
                None => S3Error::new(
                    "IncompleteBody",
                    S::BAD_REQUEST,
                    "The request body terminated unexpectedly",
                ),
            },
            other => {
                // The client sees only InternalError; the operator needs the cause.
                tracing::warn!(error = %other, "answered 500 InternalError");
                S3Error::internal()
            }
        }
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        #[allow(unreachable_patterns)]
        let status = match &e {
            AuthError::Missing
            | AuthError::SignatureDoesNotMatch
            | AuthError::ChunkSignatureDoesNotMatch
            | AuthError::AccessDenied(_)
            | AuthError::ExpiredPresign
            | AuthError::InvalidAccessKeyId
            | AuthError::RequestTimeTooSkewed => S::FORBIDDEN,
            AuthError::AuthorizationHeaderMalformed(_)
            | AuthError::AuthorizationQueryParametersError(_)
            | AuthError::MissingSecurityHeader
            | AuthError::XAmzContentSHA256Mismatch
            | AuthError::InvalidContentSha256
            | AuthError::InvalidChunk(_)
            | AuthError::IncompleteBody
            | AuthError::InvalidDigest
            | AuthError::InvalidRequest(_) => S::BAD_REQUEST,
            _ => S::BAD_REQUEST,
        };
        let message = match &e {
            AuthError::Missing => "Access Denied.".to_string(),
            AuthError::ExpiredPresign => "Request has expired".to_string(),
            _ => message,
        };
        S3Error::new(e.s3_code(), status, message)
    }
}

impl From<BodyError> for S3Error {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Auth(a) => a.into(),
            BodyError::TooLarge { limit } => S3Error::entity_too_large(limit),
            BodyError::Transport(m) => S3Error::new(
                "IncompleteBody",
                StatusCode::BAD_REQUEST,
                format!("The request body could not be read: {m}"),
            ),
        }
    }
}

impl From<super::xml::XmlError> for S3Error {
    fn from(_: super::xml::XmlError) -> Self {
        S3Error::malformed_xml()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_loss_is_slow_down_503() {
        let e: S3Error = StoreError::WriteQuorum { ok: 1, need: 3 }.into();
        assert_eq!(
            (e.code, e.status),
            ("SlowDown", StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[test]
    fn invalid_range_carries_the_size() {
        let e: S3Error = StoreError::InvalidRange { size: 42 }.into();
        assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(e.headers[0].1, "bytes */42");
    }

    #[test]
    fn auth_failures_are_403_and_malformed_auth_400() {
        let e: S3Error = AuthError::SignatureDoesNotMatch.into();
        assert_eq!(
            (e.code, e.status),
            ("SignatureDoesNotMatch", StatusCode::FORBIDDEN)
        );
        let e: S3Error = AuthError::ExpiredPresign.into();
        assert_eq!((e.code, e.status), ("AccessDenied", StatusCode::FORBIDDEN));
        assert_eq!(e.message, "Request has expired");
        let e: S3Error = AuthError::AuthorizationHeaderMalformed("x".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_failed_body_keeps_its_own_error() {
        let io = BodyError::Auth(AuthError::XAmzContentSHA256Mismatch).into_io();
        let e: S3Error = StoreError::Body(io).into();
        assert_eq!(e.code, "XAmzContentSHA256Mismatch");
    }
}
