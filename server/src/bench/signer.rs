//! SigV4 request signing for the load generator: builds the `Authorization`, `x-amz-date` and
//! `x-amz-content-sha256` headers of a header-signed request with `UNSIGNED-PAYLOAD`, so the
//! bench measures the store and not client-side body hashing. The math is the `sigv4` crate's
//! canonical helpers (the same ones the server verifies with); this module never sends anything
//! and never logs the secret.

use sigv4::canonical::{self, PathMode};
use sigv4::RequestParts;
use time::OffsetDateTime;

/// The payload hash sent with every bench request.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Signs requests for one key pair and region (service `s3`).
#[derive(Clone)]
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("secret_key", &"***")
            .field("region", &self.region)
            .finish()
    }
}

/// The headers to add to a request so that it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-amz-date` value (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    /// `x-amz-content-sha256` value (always [`UNSIGNED_PAYLOAD`]).
    pub content_sha256: &'static str,
    /// `Authorization` value.
    pub authorization: String,
}

impl Signer {
    /// A signer for `access_key`/`secret_key` scoped to `region`.
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        Signer {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            region: region.to_string(),
        }
    }

    /// Signs `method raw_path?raw_query` sent to `host` at time `now`. `raw_path` and
    /// `raw_query` must be exactly what goes on the wire (already percent-encoded). Signed
    /// headers: `host`, `x-amz-content-sha256`, `x-amz-date`.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        raw_path: &str,
        raw_query: &str,
        now: OffsetDateTime,
    ) -> SignedHeaders {
        let amz_date = sigv4::authz::format_amz_date(now);
        let date = &amz_date[..8];
        let headers: [(&str, &[u8]); 3] = [
            ("host", host.as_bytes()),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD.as_bytes()),
            ("x-amz-date", amz_date.as_bytes()),
        ];
        let parts = RequestParts {
            method,
            raw_path,
            raw_query,
            headers: &headers,
        };
        let signed = ["host", "x-amz-content-sha256", "x-amz-date"];
        let uri = canonical::canonical_uri(raw_path, PathMode::S3);
        let query = canonical::canonical_query(raw_query, |_| false);
        let creq = canonical::canonical_request(&parts, &uri, &query, &signed, UNSIGNED_PAYLOAD)
            .expect("every signed header is present: they are built just above");
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
        let key = canonical::signing_key(&self.secret_key, date, &self.region, "s3");
        let signature = hex::encode(canonical::hmac_sha256(&key, sts.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.access_key,
            signed.join(";")
        );
        SignedHeaders {
            amz_date,
            content_sha256: UNSIGNED_PAYLOAD,
            authorization,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_with_the_servers_verifier() {
        let signer = Signer::new("AKID", "secret/key", "us-east-1");
        let now = std::time::SystemTime::now();
        let h = signer.sign(
            "GET",
            "127.0.0.1:9000",
            "/b/k",
            "",
            OffsetDateTime::from(now),
        );
        let headers: [(&str, &[u8]); 4] = [
            ("host", b"127.0.0.1:9000"),
            ("x-amz-content-sha256", h.content_sha256.as_bytes()),
            ("x-amz-date", h.amz_date.as_bytes()),
            ("authorization", h.authorization.as_bytes()),
        ];
        let parts = RequestParts {
            method: "GET",
            raw_path: "/b/k",
            raw_query: "",
            headers: &headers,
        };
        let creds = sigv4::StaticCredentials::single("AKID", "secret/key");
        let verifier = sigv4::Verifier::new("us-east-1", std::sync::Arc::new(creds));
        assert!(verifier.verify(&parts, now).is_ok());
        // A different path must not verify with the same signature.
        let other = RequestParts {
            raw_path: "/b/other",
            ..parts
        };
        assert!(verifier.verify(&other, now).is_err());
    }
}
