//! Whom the client side of `tessera bench` and `tessera admin` trusts over `https://`, by
//! aws-cli's rules: the system's root certificates plus a PEM bundle given by `--ca-bundle`
//! (else `AWS_CA_BUNDLE`), or, with `--insecure`, nothing at all (no certificate check; the
//! caller warns on stderr). Builds the rustls configuration and the connector that speaks
//! both `http://` and `https://`; it never opens a connection, and never reads a private key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The environment variable aws-cli reads for an extra CA bundle.
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";

/// What the client trusts over `https://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTrust {
    /// A PEM file of certificates trusted besides the system's roots.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any server certificate (no verification at all).
    pub insecure: bool,
}

impl ClientTrust {
    /// From the flags, with `--ca-bundle` falling back to `AWS_CA_BUNDLE` in `env` (a lookup
    /// like `std::env::var`); an empty variable counts as unset.
    pub fn from_flags(
        ca_bundle: Option<PathBuf>,
        insecure: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let ca_bundle = ca_bundle.or_else(|| {
            env(CA_BUNDLE_ENV)
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        });
        ClientTrust {
            ca_bundle,
            insecure,
        }
    }
}

/// The trust configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    /// The CA bundle is missing, unreadable or holds no certificate.
    #[error("CA bundle {path}: {reason}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No certificate to trust at all (no system roots and no bundle).
    #[error("no trusted certificate: the system has no root certificates; pass --ca-bundle FILE (or set AWS_CA_BUNDLE), or --insecure")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn bundle_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientTlsError> {
    let err = |reason: String| ClientTlsError::Bundle {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The rustls client configuration for `trust` (ALPN is left to the connector: `http/1.1`,
/// as the bench and the admin CLI keep a pool of HTTP/1.1 connections).
pub fn client_config(trust: &ClientTrust) -> Result<rustls::ClientConfig, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system root certificate could not be loaded");
        }
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &trust.ca_bundle {
            let (added, _) = roots.add_parsable_certificates(bundle_certs(path)?);
            if added == 0 {
                return Err(ClientTlsError::Bundle {
                    path: path.clone(),
                    reason: "none of its certificates could be parsed".into(),
                });
            }
        }
        if roots.is_empty() {
            return Err(ClientTlsError::NoRoots);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// A connector for `http://` and `https://` URLs: `http` (TCP options already set) below,
/// TLS by `trust` on top. The TLS configuration is built only for `https` endpoints, so a
/// broken `AWS_CA_BUNDLE` does not stop a plain-HTTP run.
pub fn connector(
    mut http: HttpConnector,
    https: bool,
    trust: &ClientTrust,
) -> Result<HttpsConnector<HttpConnector>, ClientTlsError> {
    http.enforce_http(false);
    let config = if https {
        client_config(trust)?
    } else {
        // Never used for a handshake: the endpoint is plain HTTP.
        client_config(&ClientTrust {
            ca_bundle: None,
            insecure: true,
        })?
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// `--insecure`: any certificate, any name; handshake signatures are still checked (the
/// peer must hold the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_aws_ca_bundle_and_an_empty_variable_is_unset() {
        let env = |v: &'static str| move |k: &str| (k == CA_BUNDLE_ENV).then(|| v.to_string());
        let t = ClientTrust::from_flags(Some("/flag.pem".into()), false, env("/env.pem"));
        assert_eq!(t.ca_bundle.as_deref(), Some(Path::new("/flag.pem")));
        let t = ClientTrust::from_flags(None, true, env("/env.pem"));
        assert_eq!(t.ca_bundle.as_deref(), Some(Path::new("/env.pem")));
        assert!(t.insecure);
        let t = ClientTrust::from_flags(None, false, env(""));
        assert_eq!(t.ca_bundle, None);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let trust = ClientTrust {
            ca_bundle: Some(path.clone()),
            insecure: false,
        };
        let err = client_config(&trust).expect_err("no certificate");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let trust = ClientTrust {
            ca_bundle: Some(dir.path().join("missing.pem")),
            insecure: false,
        };
        let err = client_config(&trust).expect_err("missing file");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
