//! TLS with rustls (ring provider): loads `public.crt` (chain) and `private.key` (PEM, any of
//! PKCS#8 / PKCS#1 / SEC1) and builds an acceptor offering ALPN `h2` and `http/1.1`. Never
//! logs key material.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing or unreadable.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the acceptor from PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read_err = |p: &Path, e: &dyn std::fmt::Display| TlsError::Read {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read_err(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(cert, &e))?;
    if certs.is_empty() {
        return Err(read_err(cert, &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_err(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
