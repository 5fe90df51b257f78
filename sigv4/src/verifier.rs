//! [`Verifier`]: decides whether a request is authentic. (stub: real implementation follows)

use std::sync::Arc;
use std::time::SystemTime;

use crate::{AuthError, ChunkedDecoder, CredentialsProvider, RequestParts};

/// What the body of an authenticated request must still be checked against.
#[derive(Debug)]
pub enum PayloadCheck {
    /// `UNSIGNED-PAYLOAD`, presigned URLs, SigV2: the body is not covered by the signature.
    Unsigned,
    /// Signed payload: run the body through [`crate::PayloadHasher::new`] with this digest.
    Sha256([u8; 32]),
    /// aws-chunked body (any `STREAMING-*` mode): the raw body must be run through this decoder
    /// and only its output is the object's data.
    Chunked(ChunkedDecoder),
}

/// A request whose signature verified.
#[derive(Debug)]
pub struct Authenticated {
    /// The access key that signed the request.
    pub access_key: String,
    /// The principal that key belongs to.
    pub principal: String,
    /// How the body must be checked before it may be committed.
    pub payload: PayloadCheck,
}

/// Verifies request signatures for one region.
pub struct Verifier {
    region: String,
    provider: Arc<dyn CredentialsProvider>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting signatures scoped to `region` and service `s3`.
    pub fn new(region: &str, provider: Arc<dyn CredentialsProvider>) -> Self {
        Verifier {
            region: region.to_string(),
            provider,
        }
    }

    /// Header auth (AWS4-HMAC-SHA256), query auth (X-Amz-* presign), SigV2 query presign.
    /// Returns `Err(AuthError::Missing)` when the request carries no auth at all (anonymous).
    pub fn verify(&self, req: &RequestParts, now: SystemTime) -> Result<Authenticated, AuthError> {
        let _ = (req, now, &self.provider);
        Err(AuthError::Missing)
    }
}
