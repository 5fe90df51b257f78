//! Bad and unusual input over raw HTTP: malformed XML, absurd ranges, oversized headers, keys
//! with `../`, unimplemented operations (501 at once, never a hang), health probes, request
//! ids, `Expect: 100-continue`, virtual-hosted style, and keep-alive latency (TCP_NODELAY).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::{bytes, parse_response, raw, TestServer};
use super::sign::{self, sha256_hex, signed_request, Req};

#[tokio::test]
async fn malformed_delete_xml_deletes_nothing() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    t.put("xxx", "keep", b"1".to_vec()).await;
    for body in [
        &b"<Delete><Object><Key>keep</Key></Object>"[..],
        b"not xml at all",
        b"<Delete></Delete>",
        b"<Wrong><Object><Key>keep</Key></Object></Wrong>",
    ] {
        let r = raw(
            t.addr(),
            &signed_request(&t.host(), "POST", "/xxx", &[("delete", "")], &[], body),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.code().as_deref(), Some("MalformedXML"));
    }
    // A wrong Content-MD5 on a well-formed document is BadDigest.
    let doc = b"<Delete><Object><Key>keep</Key></Object></Delete>";
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "POST",
            "/xxx",
            &[("delete", "")],
            &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
            doc,
        ),
    )
    .await;
    assert_eq!(r.code().as_deref(), Some("BadDigest"));
    assert_eq!(t.keys("xxx").await, vec!["keep".to_string()]);
}

#[tokio::test]
async fn absurd_ranges() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    t.put("xxx", "r", bytes(100, 1)).await;
    let get =
        |range: &str| signed_request(&t.host(), "GET", "/xxx/r", &[], &[("range", range)], b"");
    let r = raw(t.addr(), &get("bytes=99999999999-")).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.code().as_deref(), Some("InvalidRange"));
    assert_eq!(r.header("content-range"), Some("bytes */100"));
    let r = raw(t.addr(), &get("bytes=-0")).await;
    assert_eq!(r.status, 416);
    for ignored in [
        "bytes=50-10",
        "bytes=0-1,5-6",
        "pages=1-2",
        "bytes=x-y",
        "bytes=18446744073709551616-",
    ] {
        let r = raw(t.addr(), &get(ignored)).await;
        assert_eq!(r.status, 200, "{ignored}");
        assert_eq!(r.body.len(), 100, "{ignored}");
    }
    let r = raw(t.addr(), &get("bytes=0-18446744073709551615")).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 100);
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    let big = "v".repeat(20_000);
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "PUT",
            "/xxx/k",
            &[],
            &[("x-amz-meta-big", &big)],
            b"1",
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code().as_deref(), Some("RequestHeaderSectionTooLarge"));
    // Beyond the HTTP layer's buffer: refused there (431) without reaching the store.
    let huge = "v".repeat(200_000);
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "PUT",
            "/xxx/k",
            &[],
            &[("x-amz-meta-huge", &huge)],
            b"1",
        ),
    )
    .await;
    assert!(r.status == 431 || r.status == 400, "{}", r.status);
    assert!(t.keys("xxx").await.is_empty());
}

#[tokio::test]
async fn dot_dot_keys_are_refused() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    for path in [
        "/xxx/../etc/passwd",
        "/xxx/a/../../b",
        "/xxx/%2E%2E/secret",
        "/xxx/a/./b",
    ] {
        let r = raw(
            t.addr(),
            &signed_request(&t.host(), "PUT", path, &[], &[], b"data"),
        )
        .await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.code().is_some(), "{path}");
    }
    assert!(t.keys("xxx").await.is_empty());
    assert_eq!(
        t.client
            .list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .len(),
        1
    );
}

#[tokio::test]
async fn unimplemented_operations_answer_501_at_once() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    let form = b"Action=AssumeRole&Version=2011-06-15&RoleArn=x";
    let req = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        t.host(),
        form.len()
    );
    let mut full = req.into_bytes();
    full.extend_from_slice(form);
    let r = raw(t.addr(), &full).await;
    assert_eq!(r.status, 501);
    assert_eq!(r.code().as_deref(), Some("NotImplemented"));
    for (m, path, q) in [
        ("PUT", "/xxx", "policy"),
        ("GET", "/xxx", "website"),
        ("GET", "/xxx/k", "attributes"),
        ("PUT", "/xxx", "object-lock"),
    ] {
        let r = raw(
            t.addr(),
            &signed_request(&t.host(), m, path, &[(q, "")], &[], b"{}"),
        )
        .await;
        assert_eq!(r.status, 501, "{m} {path}?{q}");
        assert_eq!(r.code().as_deref(), Some("NotImplemented"));
    }
    // A large body that is never read: the answer still arrives promptly.
    let started = Instant::now();
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let head = format!(
        "POST /x/k?restore HTTP/1.1\r\nhost: {}\r\ncontent-length: 50000000\r\nexpect: 100-continue\r\n\r\n",
        t.host()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let r = parse_response(&buf[..n]);
    assert_eq!(r.status, 501);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn health_probes_and_request_ids() {
    let t = TestServer::start().await;
    for p in [
        "/health/live",
        "/minio/health/live",
        "/health/ready",
        "/minio/health/ready",
    ] {
        let r = raw(
            t.addr(),
            format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{p}");
        assert!(r.header("x-amz-request-id").is_some());
    }
    let r = raw(
        t.addr(),
        &signed_request(&t.host(), "GET", "/", &[], &[], b""),
    )
    .await;
    assert_eq!(r.status, 200);
    let a = r.header("x-amz-request-id").unwrap().to_string();
    let r = raw(
        t.addr(),
        &signed_request(&t.host(), "HEAD", "/nobucket/k", &[], &[], b""),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "HEAD errors carry no body");
    assert!(r.header("x-amz-id-2").is_some());
    assert_ne!(r.header("x-amz-request-id").unwrap(), a);
}

#[tokio::test]
async fn expect_100_continue_is_honoured() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    let body = b"after the continue";
    let headers = vec![
        ("host".to_string(), t.host()),
        ("content-length".to_string(), body.len().to_string()),
        ("expect".to_string(), "100-continue".to_string()),
    ];
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/xxx/e",
            query: vec![],
            headers,
        },
        &sha256_hex(body),
        super::common::SECRET_KEY,
        0,
    );
    let mut req = sign::to_bytes("PUT", "/xxx/e", &[], &signed.headers, b"");
    req.truncate(req.len()); // head only
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(&req).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(body).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parse_response(&rest).status, 200);
    assert_eq!(t.get_bytes("xxx", "e").await, body);
}

#[tokio::test]
async fn virtual_hosted_style_with_a_domain() {
    let t = TestServer::start_with(|c, _| c.domains = vec!["s3.test.local".into()]).await;
    t.create_bucket("vhb").await;
    let host = format!("vhb.s3.test.local:{}", t.addr().port());
    let r = raw(
        t.addr(),
        &signed_request(&host, "PUT", "/dir/file", &[], &[], b"virtual"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(t.get_bytes("vhb", "dir/file").await, b"virtual");
    let r = raw(
        t.addr(),
        &signed_request(&host, "GET", "/", &[("list-type", "2")], &[], b""),
    )
    .await;
    assert!(r.text().contains("<Key>dir/file</Key>"), "{}", r.text());
}

#[tokio::test]
async fn small_gets_on_one_keep_alive_connection_are_fast() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    t.put("xxx", "small", bytes(4096, 3)).await;
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let n = 100;
    let mut each = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut req = signed_request(&t.host(), "GET", "/xxx/small", &[], &[], b"");
        // Keep the connection open: drop the trailing "connection: close".
        let text = String::from_utf8(req.clone())
            .unwrap()
            .replace("connection: close\r\n", "");
        req = text.into_bytes();
        s.write_all(&req).await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let k = s.read(&mut buf).await.unwrap();
            assert!(k > 0, "connection closed");
            got.extend_from_slice(&buf[..k]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let r = parse_response(&got);
                if got.len() >= end + 4 + 4096 {
                    assert_eq!(r.status, 200);
                    break;
                }
            }
        }
        each.push(started.elapsed());
    }
    each.sort();
    let median = each[n / 2];
    eprintln!("keep-alive 4 KiB GET: median {median:?} per request");
    // With Nagle + delayed ACKs every request waits ~40 ms for the ACK of its first segment;
    // with TCP_NODELAY a request takes a few ms at most. The median ignores scheduling spikes
    // of a loaded machine, which the mean would not.
    assert!(
        median < Duration::from_millis(25),
        "median {median:?} per GET"
    );
}

#[tokio::test]
async fn declared_sizes_over_five_gib_are_refused_before_reading() {
    let t = TestServer::start().await;
    t.create_bucket("xxx").await;
    let headers = vec![
        ("host".to_string(), t.host()),
        ("content-length".to_string(), (6u64 << 30).to_string()),
    ];
    let signed = sign::sign_headers(
        &Req {
            method: "PUT",
            path: "/xxx/huge",
            query: vec![],
            headers,
        },
        "UNSIGNED-PAYLOAD",
        super::common::SECRET_KEY,
        0,
    );
    let head = sign::to_bytes("PUT", "/xxx/huge", &[], &signed.headers, b"");
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(&head).await.unwrap();
    s.write_all(&[0u8; 1000]).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let r = parse_response(&buf[..n]);
    assert_eq!(r.status, 400);
    assert_eq!(r.code().as_deref(), Some("EntityTooLarge"));
    assert!(t.keys("xxx").await.is_empty());
}

#[tokio::test]
async fn writes_to_missing_buckets_create_nothing() {
    let t = TestServer::start().await;
    let r = raw(
        t.addr(),
        &signed_request(&t.host(), "PUT", "/ghost/k", &[], &[], &bytes(200_000, 1)),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code().as_deref(), Some("NoSuchBucket"));
    assert!(r.text().contains("<Resource>/ghost/k</Resource>"));
    assert!(r.text().contains("<RequestId>"));
    assert!(t
        .client
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());
}
