//! The crate's one error type, [`AuthError`]. Each variant corresponds to exactly one S3 error
//! code (see [`AuthError::s3_code`]); HTTP statuses and XML bodies are the server's business and
//! must never be decided here.

/// Why a request is not authentic (or its body not what was signed).
///
/// Variants map one-to-one onto S3 error codes via [`AuthError::s3_code`]. The `String`
/// payloads are human-readable details suitable for the S3 `<Message>` element; they never
/// contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no authentication at all (anonymous request). Not an S3 error by
    /// itself: the server decides whether anonymous access is allowed (else `AccessDenied`).
    #[error("request carries no authentication")]
    Missing,
    /// The computed signature differs from the one the client sent.
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureDoesNotMatch,
    /// Authentication was understood but is not acceptable (e.g. a SigV2 presign that expired).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The `Authorization` header is malformed (bad algorithm, missing field, bad credential scope...).
    #[error("the authorization header is malformed: {0}")]
    AuthorizationHeaderMalformed(String),
    /// The `X-Amz-*` (or SigV2) query parameters of a presigned URL are malformed.
    #[error("error parsing the X-Amz-Credential parameter or others: {0}")]
    AuthorizationQueryParametersError(String),
    /// The access key is not known to the [`crate::CredentialsProvider`].
    #[error("the AWS access key id you provided does not exist in our records")]
    InvalidAccessKeyId,
    /// Header auth whose request time is more than 15 minutes away from the server clock.
    #[error("the difference between the request time and the current time is too large")]
    RequestTimeTooSkewed,
    /// A presigned URL whose validity window has passed (or has not started yet).
    /// S3 answers `AccessDenied` with message "Request has expired".
    #[error("request has expired")]
    ExpiredPresign,
    /// Neither `x-amz-date` nor `Date` is present on a header-signed request.
    #[error("the request is missing a date header")]
    MissingSecurityHeader,
    /// The body's SHA-256 differs from `x-amz-content-sha256`.
    #[error("the provided 'x-amz-content-sha256' header does not match what was computed")]
    XAmzContentSHA256Mismatch,
    /// `x-amz-content-sha256` holds something that is neither a hex digest nor a known mode.
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a hex SHA-256 digest")]
    InvalidContentSha256,
    /// An aws-chunked body is malformed (bad chunk header, oversized header, bad CRLF, bad
    /// trailer, decoded length mismatch ...).
    #[error("invalid aws-chunked body: {0}")]
    InvalidChunk(String),
    /// A chunk signature or trailer signature of an aws-chunked body does not verify.
    /// S3 answers `SignatureDoesNotMatch`; kept separate so logs can tell them apart.
    #[error("chunk signature does not match")]
    ChunkSignatureDoesNotMatch,
    /// The body ended before what the headers promised (truncated aws-chunked body).
    #[error("you did not provide the number of bytes specified by the Content-Length HTTP header")]
    IncompleteBody,
    /// A trailer checksum value is not valid base64 of the right length.
    #[error("the checksum in the trailer is not a valid digest")]
    InvalidDigest,
    /// A request mixes incompatible auth mechanisms (e.g. both an `Authorization` header and
    /// `X-Amz-Signature`), or uses an unsupported algorithm.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl AuthError {
    /// The S3 error code this error is reported as (the server owns the HTTP status).
    ///
    /// [`AuthError::Missing`] maps to `AccessDenied` (what S3 says to anonymous requests it
    /// refuses); [`AuthError::ExpiredPresign`] maps to `AccessDenied` ("Request has expired");
    /// [`AuthError::ChunkSignatureDoesNotMatch`] maps to `SignatureDoesNotMatch`.
    pub fn s3_code(&self) -> &'static str {
        match self {
            AuthError::Missing => "AccessDenied",
            AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthError::AccessDenied(_) => "AccessDenied",
            AuthError::AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            AuthError::AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            AuthError::InvalidAccessKeyId => "InvalidAccessKeyId",
            AuthError::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            AuthError::ExpiredPresign => "AccessDenied",
            AuthError::MissingSecurityHeader => "MissingSecurityHeader",
            AuthError::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            AuthError::InvalidContentSha256 => "InvalidArgument",
            AuthError::InvalidChunk(_) => "InvalidRequest",
            AuthError::ChunkSignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthError::IncompleteBody => "IncompleteBody",
            AuthError::InvalidDigest => "InvalidDigest",
            AuthError::InvalidRequest(_) => "InvalidRequest",
        }
    }
}
