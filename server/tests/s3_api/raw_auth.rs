//! Authentication and payload modes over raw HTTP: anonymous and wrongly signed requests,
//! expired and valid presigned URLs, signed payloads whose hash lies, and every aws-chunked
//! mode (signed chunks, signed chunks + signed trailer, unsigned chunks + trailer), including
//! tampered chunks and wrong trailer checksums. Every refused upload leaves the store unchanged.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{bytes, raw, TestServer};
use super::sign::{self, chunked_put, presign, sha256_hex, signed_request, Chunked, Req};

fn crc32_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(data).to_be_bytes())
}

#[tokio::test]
async fn anonymous_and_wrongly_signed_requests_are_refused() {
    let t = TestServer::start().await;
    t.create_bucket("aaa").await;
    let req = format!(
        "PUT /a/k HTTP/1.1\r\nhost: {}\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx",
        t.host()
    );
    let r = raw(t.addr(), req.as_bytes()).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    assert!(r.header("x-amz-request-id").is_some());

    let body = b"payload";
    let mut headers = vec![
        ("host".to_string(), t.host()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/aaa/k",
            query: vec![],
            headers: headers.clone(),
        },
        &sha256_hex(body),
        "wrong-secret-key",
        0,
    );
    let r = raw(
        t.addr(),
        &sign::to_bytes("PUT", "/aaa/k", &[], &signed.headers, body),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));

    // Correct key, but the request is older than the allowed skew.
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/aaa/k",
            query: vec![],
            headers: headers.clone(),
        },
        &sha256_hex(body),
        super::common::SECRET_KEY,
        -3600,
    );
    let r = raw(
        t.addr(),
        &sign::to_bytes("PUT", "/aaa/k", &[], &signed.headers, body),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code().as_deref(), Some("RequestTimeTooSkewed"));

    // Tampered after signing: another path.
    headers.push(("x-amz-meta-a".into(), "1".into()));
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/aaa/k",
            query: vec![],
            headers,
        },
        &sha256_hex(body),
        super::common::SECRET_KEY,
        0,
    );
    let r = raw(
        t.addr(),
        &sign::to_bytes("PUT", "/aaa/other", &[], &signed.headers, body),
    )
    .await;
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));
    assert!(t.keys("aaa").await.is_empty());
}

#[tokio::test]
async fn signed_payload_hash_mismatch_stores_nothing() {
    let t = TestServer::start().await;
    t.create_bucket("aaa").await;
    let body = b"the real body";
    let headers = vec![
        ("host".to_string(), t.host()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/aaa/k",
            query: vec![],
            headers,
        },
        &sha256_hex(b"another body!"),
        super::common::SECRET_KEY,
        0,
    );
    let r = raw(
        t.addr(),
        &sign::to_bytes("PUT", "/aaa/k", &[], &signed.headers, body),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert!(t.keys("aaa").await.is_empty());
    let r = raw(
        t.addr(),
        &signed_request(&t.host(), "PUT", "/aaa/k", &[], &[], body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(t.get_bytes("aaa", "k").await, body);
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let t = TestServer::start().await;
    t.create_bucket("aaa").await;
    t.put("aaa", "k", b"secret".to_vec()).await;
    let url = presign(&t.host(), "GET", "/aaa/k", 600, 0);
    let r = raw(
        t.addr(),
        format!(
            "GET {url} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            t.host()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"secret");
    let expired = presign(&t.host(), "GET", "/aaa/k", 60, -7200);
    let r = raw(
        t.addr(),
        format!(
            "GET {expired} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            t.host()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    assert!(r.text().contains("expired"), "{}", r.text());
    let put = presign(&t.host(), "PUT", "/aaa/k", 60, -7200);
    let r = raw(
        t.addr(),
        format!(
            "PUT {put} HTTP/1.1\r\nhost: {}\r\ncontent-length: 3\r\nconnection: close\r\n\r\nnew",
            t.host()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(t.get_bytes("aaa", "k").await, b"secret");
}

#[tokio::test]
async fn every_aws_chunked_mode_uploads() {
    let t = TestServer::start().await;
    t.create_bucket("ccc").await;
    let data = bytes(200_000, 5);
    let crc = crc32_b64(&data);
    for (i, mode) in [
        Chunked::Signed,
        Chunked::SignedTrailer,
        Chunked::UnsignedTrailer,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("/ccc/k{i}");
        let trailer = (mode != Chunked::Signed).then_some(("x-amz-checksum-crc32", crc.as_str()));
        let req = chunked_put(&t.host(), &key, &data, 65_536, mode, trailer, false);
        let r = raw(t.addr(), &req).await;
        assert_eq!(r.status, 200, "{mode:?}: {}", r.text());
        assert_eq!(t.get_bytes("ccc", &key[5..]).await, data, "{mode:?}");
        if trailer.is_some() {
            let h = t
                .client
                .head_object()
                .bucket("ccc")
                .key(&key[5..])
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(h.checksum_crc32(), Some(crc.as_str()), "{mode:?}");
        }
    }
}

#[tokio::test]
async fn tampered_chunks_and_wrong_trailers_store_nothing() {
    let t = TestServer::start().await;
    t.create_bucket("ccc").await;
    let data = bytes(150_000, 6);
    let crc = crc32_b64(&data);
    let wrong = crc32_b64(b"something else");
    let r = raw(
        t.addr(),
        &chunked_put(
            &t.host(),
            "/ccc/t1",
            &data,
            65_536,
            Chunked::Signed,
            None,
            true,
        ),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));
    let r = raw(
        t.addr(),
        &chunked_put(
            &t.host(),
            "/ccc/t2",
            &data,
            65_536,
            Chunked::UnsignedTrailer,
            Some(("x-amz-checksum-crc32", &wrong)),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        matches!(
            r.code().as_deref(),
            Some("BadDigest") | Some("XAmzContentChecksumMismatch")
        ),
        "{}",
        r.text()
    );
    let r = raw(
        t.addr(),
        &chunked_put(
            &t.host(),
            "/ccc/t3",
            &data,
            65_536,
            Chunked::SignedTrailer,
            Some(("x-amz-checksum-crc32", &wrong)),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = raw(
        t.addr(),
        &chunked_put(
            &t.host(),
            "/ccc/t4",
            &data,
            65_536,
            Chunked::UnsignedTrailer,
            Some(("x-amz-checksum-crc32", &crc)),
            true,
        ),
    )
    .await;
    // Unsigned chunks: the flipped byte is caught by the trailer checksum.
    assert_eq!(r.status, 400, "{}", r.text());
    // Truncated body: decoded length promised more than arrived.
    let mut req = chunked_put(
        &t.host(),
        "/ccc/t5",
        &data,
        65_536,
        Chunked::Signed,
        None,
        false,
    );
    let cut = req.len() - 200;
    req.truncate(cut);
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(&req).await.unwrap();
    s.shutdown().await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap();
    if !buf.is_empty() {
        assert!(super::common::parse_response(&buf).status >= 400);
    }
    assert!(t.keys("ccc").await.is_empty());
}
