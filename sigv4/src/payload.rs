//! Signed-payload verification: [`PayloadHasher`] hashes a body as it streams and compares the
//! SHA-256 with the value the client signed in `x-amz-content-sha256`. It never buffers the
//! body; the caller must not commit the data before [`PayloadHasher::finish`] returned `Ok`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AuthError;

/// Incremental SHA-256 check of a request body against the signed digest.
#[derive(Clone)]
pub struct PayloadHasher {
    expected: [u8; 32],
    hasher: Sha256,
}

impl std::fmt::Debug for PayloadHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadHasher")
            .field("expected", &hex::encode(self.expected))
            .finish_non_exhaustive()
    }
}

impl PayloadHasher {
    /// Starts a check against `expected` (the decoded `x-amz-content-sha256`).
    pub fn new(expected: [u8; 32]) -> Self {
        PayloadHasher {
            expected,
            hasher: Sha256::new(),
        }
    }

    /// Feeds the next bytes of the body, in order.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Ends the body: `Err(XAmzContentSHA256Mismatch)` when the digest differs.
    pub fn finish(self) -> Result<(), AuthError> {
        let got: [u8; 32] = self.hasher.finalize().into();
        if bool::from(got.ct_eq(&self.expected)) {
            Ok(())
        } else {
            Err(AuthError::XAmzContentSHA256Mismatch)
        }
    }
}
