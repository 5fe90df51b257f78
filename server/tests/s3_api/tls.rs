//! HTTPS: a self-signed certificate in `--certs-dir` (public.crt, private.key), the SDK over
//! TLS, and HTTP/2 negotiated by ALPN.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::common::{sdk_client, TestServer};

fn write_certs(dir: &std::path::Path) -> String {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("public.crt"), ck.cert.pem()).unwrap();
    std::fs::write(certs.join("private.key"), ck.key_pair.serialize_pem()).unwrap();
    ck.cert.pem()
}

#[tokio::test]
async fn https_with_the_sdk_and_http2_over_alpn() {
    let mut pem = String::new();
    let t = TestServer::start_with(|c, dir| {
        pem = write_certs(dir);
        c.tls = Some(tessera_server::config::TlsPaths {
            cert: dir.join("certs/public.crt"),
            key: dir.join("certs/private.key"),
        });
    })
    .await;
    assert!(t.endpoint.starts_with("https://"));
    let client = sdk_client(
        &format!("https://localhost:{}", t.addr().port()),
        Some(&pem),
    );
    client.create_bucket().bucket("tls").send().await.unwrap();
    client
        .put_object()
        .bucket("tls")
        .key("k")
        .body(ByteStream::from(vec![7u8; 100_000]))
        .send()
        .await
        .unwrap();
    let got = client
        .get_object()
        .bucket("tls")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().len(),
        100_000
    );

    // HTTP/2 via ALPN with a plain rustls client.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(t.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!(
        "https://localhost:{}/minio/health/live",
        t.addr().port()
    ))
    .body(Empty::<bytes::Bytes>::new())
    .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let _ = resp.into_body().collect().await.unwrap();
}

use rustls::pki_types::pem::PemObject as _;
