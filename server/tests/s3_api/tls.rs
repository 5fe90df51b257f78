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
    let tls_config = Arc::new(cfg.clone());
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

    // A signed PUT and GET over HTTP/2: the host comes from :authority, not a Host header.
    let authority = format!("localhost:{}", t.addr().port());
    let body = vec![42u8; 70_000];
    let signed_req = |method: &'static str, payload: &[u8]| {
        let headers = vec![("host".to_string(), authority.clone())];
        let s = super::sign::sign_headers(
            &super::sign::Req {
                method,
                path: "/tls/h2key",
                query: vec![],
                headers,
            },
            &super::sign::sha256_hex(payload),
            super::common::SECRET_KEY,
            0,
        );
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("https://{authority}/tls/h2key"));
        for (k, v) in s.headers.iter().filter(|(k, _)| k != "host") {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(http_body_util::Full::new(bytes::Bytes::from(
            payload.to_vec(),
        )))
        .unwrap()
    };
    let tcp = TcpStream::connect(t.addr()).await.unwrap();
    let mut cfg2 = (*tls_config).clone();
    cfg2.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg2))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(signed_req("PUT", &body)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = send.send_request(signed_req("GET", b"")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.as_ref(), &body[..]);
}

use rustls::pki_types::pem::PemObject as _;
