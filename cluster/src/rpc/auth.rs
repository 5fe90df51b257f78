//! Internode authentication: the key every node derives from the root credentials, and the
//! MAC each internode request carries (`x-tessera-date` + `x-tessera-auth`). The MAC is
//! hex HMAC-SHA256(key, method \n path \n query \n date \n content-length-or-"stream"); the
//! service refuses a missing or wrong MAC, or a date more than [`MAX_SKEW_SECS`] away from its
//! clock. Non-streaming requests also put the blake3 of their body in the query (see
//! `wire`), so the MAC covers their bodies too.
//!
//! What this does and does not protect: it authenticates the sender (it holds the root
//! secret) and bounds replay to the skew window. It does not encrypt, and it does not cover
//! the bytes of a streamed shard upload: on an untrusted network, TLS (mTLS between nodes) is
//! the transport protection when enabled. This module must never log or print the key.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Unix seconds at which the request was signed.
pub const DATE_HEADER: &str = "x-tessera-date";
/// Hex HMAC-SHA256 over the request line (see the module docs).
pub const AUTH_HEADER: &str = "x-tessera-auth";
/// How far a request's date may be from the receiver's clock, either way.
pub const MAX_SKEW_SECS: u64 = 300;

/// The 32-byte internode key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct InternodeKey([u8; 32]);

impl std::fmt::Debug for InternodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternodeKey(..)")
    }
}

impl InternodeKey {
    /// `blake3::derive_key("tessera internode v1", access_key + "\0" + secret_key)`: every
    /// node started with the same root credentials derives the same key.
    pub fn derive(access_key: &str, secret_key: &str) -> Self {
        let mut material = Vec::with_capacity(access_key.len() + 1 + secret_key.len());
        material.extend_from_slice(access_key.as_bytes());
        material.push(0);
        material.extend_from_slice(secret_key.as_bytes());
        InternodeKey(blake3::derive_key("tessera internode v1", &material))
    }

    /// A key given directly (tests, or a key distributed out of band).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        InternodeKey(key)
    }

    fn raw_mac(
        &self,
        method: &str,
        path: &str,
        query: &str,
        date: u64,
        length: Option<u64>,
    ) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        let length = length.map_or_else(|| "stream".to_owned(), |n| n.to_string());
        for (i, part) in [method, path, query, &date.to_string(), &length]
            .iter()
            .enumerate()
        {
            if i > 0 {
                mac.update(b"\n");
            }
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The `x-tessera-auth` value for a request. `length` is the body's content length, or
    /// `None` for a streamed body (sent without one).
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        query: &str,
        date: u64,
        length: Option<u64>,
    ) -> String {
        hex::encode(self.raw_mac(method, path, query, date, length))
    }

    /// Checks a received MAC in constant time.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        date: u64,
        length: Option<u64>,
        given_hex: &str,
    ) -> bool {
        let Ok(given) = hex::decode(given_hex) else {
            return false;
        };
        let want = self.raw_mac(method, path, query, date, length);
        want.len() == given.len() && bool::from(want.ct_eq(&given))
    }
}

/// Seconds since the Unix epoch on this machine's clock.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a request dated `date` is fresh enough at `now`.
pub fn date_is_fresh(date: u64, now: u64) -> bool {
    date.abs_diff(now) <= MAX_SKEW_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signed_field_changes_the_mac() {
        let k = InternodeKey::derive("root", "secret");
        let base = k.sign("POST", "/p", "a=1", 100, Some(5));
        assert!(k.verify("POST", "/p", "a=1", 100, Some(5), &base));
        for other in [
            k.sign("GET", "/p", "a=1", 100, Some(5)),
            k.sign("POST", "/q", "a=1", 100, Some(5)),
            k.sign("POST", "/p", "a=2", 100, Some(5)),
            k.sign("POST", "/p", "a=1", 101, Some(5)),
            k.sign("POST", "/p", "a=1", 100, Some(6)),
            k.sign("POST", "/p", "a=1", 100, None),
            InternodeKey::derive("root", "secreT").sign("POST", "/p", "a=1", 100, Some(5)),
        ] {
            assert_ne!(other, base);
            assert!(!k.verify("POST", "/p", "a=1", 100, Some(5), &other));
        }
        assert!(!k.verify("POST", "/p", "a=1", 100, Some(5), "zz"));
        assert!(!k.verify("POST", "/p", "a=1", 100, Some(5), ""));
    }

    #[test]
    fn key_derivation_separates_access_key_and_secret() {
        let a = InternodeKey::derive("ab", "c").sign("GET", "/", "", 0, Some(0));
        let b = InternodeKey::derive("a", "bc").sign("GET", "/", "", 0, Some(0));
        assert_ne!(a, b);
        assert_eq!(
            format!("{:?}", InternodeKey::derive("a", "b")),
            "InternodeKey(..)"
        );
    }

    #[test]
    fn dates_outside_the_window_are_stale() {
        assert!(date_is_fresh(1000, 1000 + MAX_SKEW_SECS));
        assert!(date_is_fresh(1000 + MAX_SKEW_SECS, 1000));
        assert!(!date_is_fresh(1000, 1001 + MAX_SKEW_SECS));
        assert!(!date_is_fresh(1001 + MAX_SKEW_SECS, 1000));
    }
}
