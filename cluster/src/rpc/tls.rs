//! TLS for the calling side of internode RPC: which certificates a node trusts when it
//! connects to an `https://` peer. The trust store follows MinIO's layout of a certs
//! directory: the system's root certificates, every PEM certificate in `<certs-dir>/CAs/`,
//! and the node's own `public.crt` (so nodes sharing one self-signed certificate trust each
//! other). Peers are verified by name (the endpoint's host, a DNS name or an IP address
//! that must be in the certificate's subject alternative names); there is no client
//! certificate. This module builds configuration only; it never opens a connection, and
//! never reads or logs a private key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// The client side's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A certificate file or the CAs directory could not be read or parsed.
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// No certificate at all to trust (no system roots, no CAs, no own certificate).
    #[error("no trusted certificate found (system roots, {0}/CAs/*, public.crt)")]
    NoRoots(PathBuf),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How many certificates of each source went into a trust store (for the start banner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrustSummary {
    pub system: usize,
    pub cas: usize,
    pub own: usize,
}

/// The certificates in one PEM file.
fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read = |reason: String| TlsConfigError::Read {
        path: path.to_owned(),
        reason,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| read(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))
}

/// The client configuration for internode calls of a node whose certificate is `own_cert`
/// (`<certs-dir>/public.crt`), trusting what the module docs list from `cas_dir`
/// (`<certs-dir>/CAs`, optional). ALPN is left to the RPC client (it offers what its
/// transport speaks).
pub fn client_config(
    own_cert: &Path,
    cas_dir: &Path,
) -> Result<(Arc<rustls::ClientConfig>, TrustSummary), TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut summary = TrustSummary::default();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a system root certificate could not be loaded");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    summary.system = added;
    if cas_dir.is_dir() {
        let entries = std::fs::read_dir(cas_dir).map_err(|e| TlsConfigError::Read {
            path: cas_dir.to_owned(),
            reason: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            // Only PEM certificates count; other files (keys, READMEs) are skipped.
            let Ok(certs) = pem_certs(&f) else {
                tracing::warn!(file = %f.display(), "skipping a file in CAs/ that is not PEM certificates");
                continue;
            };
            let (added, _) = roots.add_parsable_certificates(certs);
            summary.cas += added;
        }
    }
    if own_cert.is_file() {
        // The whole chain: a self-signed leaf trusts itself; an intermediate helps too.
        let (added, _) = roots.add_parsable_certificates(pem_certs(own_cert)?);
        summary.own = added;
    }
    if roots.is_empty() {
        return Err(TlsConfigError::NoRoots(
            cas_dir.parent().unwrap_or(cas_dir).to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(config), summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusts_the_cas_directory_and_the_own_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).expect("ca");
        let own = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("own");
        std::fs::create_dir(dir.path().join("CAs")).expect("mkdir");
        std::fs::write(dir.path().join("CAs/ca.crt"), ca.cert.pem()).expect("write");
        std::fs::write(dir.path().join("CAs/notes.txt"), "not a certificate").expect("write");
        std::fs::write(dir.path().join("public.crt"), own.cert.pem()).expect("write");
        let (_, s) =
            client_config(&dir.path().join("public.crt"), &dir.path().join("CAs")).expect("config");
        assert_eq!((s.cas, s.own), (1, 1));
        // Without a CAs directory: still the own certificate.
        let (_, s) =
            client_config(&dir.path().join("public.crt"), &dir.path().join("no")).expect("config");
        assert_eq!((s.cas, s.own), (0, 1));
    }
}
