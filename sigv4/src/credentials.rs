//! Where secrets come from: the [`CredentialsProvider`] trait (access key → secret + principal)
//! and [`StaticCredentials`], a fixed in-memory list. This module never logs or formats a
//! secret key (the `Debug` impl of [`Credential`] masks it).

use std::collections::HashMap;
use std::fmt;

/// One access key pair and the principal (user) it authenticates as.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The public access key id (`AKIA...`).
    pub access_key: String,
    /// The secret used to derive signing keys. Never logged.
    pub secret_key: String,
    /// Who this key belongs to (the name policies will refer to).
    pub principal: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("principal", &self.principal)
            .finish()
    }
}

/// Looks an access key up. Implementations must be cheap and must not block for long: the
/// verifier calls this once per authenticated request.
pub trait CredentialsProvider: Send + Sync {
    /// The credential for `access_key`, or `None` if unknown (→ `InvalidAccessKeyId`).
    fn lookup(&self, access_key: &str) -> Option<Credential>;
}

/// A fixed set of credentials, e.g. the root user from configuration.
#[derive(Clone, Default)]
pub struct StaticCredentials {
    by_key: HashMap<String, Credential>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.by_key.keys().collect();
        keys.sort();
        f.debug_struct("StaticCredentials")
            .field("access_keys", &keys)
            .finish()
    }
}

impl StaticCredentials {
    /// Builds the provider; a later entry with the same access key replaces an earlier one.
    pub fn new(creds: impl IntoIterator<Item = Credential>) -> Self {
        let by_key = creds
            .into_iter()
            .map(|c| (c.access_key.clone(), c))
            .collect();
        StaticCredentials { by_key }
    }

    /// Convenience: one key pair whose principal is the access key itself.
    pub fn single(access_key: &str, secret_key: &str) -> Self {
        Self::new([Credential {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            principal: access_key.to_string(),
        }])
    }
}

impl CredentialsProvider for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        self.by_key.get(access_key).cloned()
    }
}
