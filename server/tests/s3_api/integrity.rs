//! Conditional requests and integrity through the SDK: conditional GET/HEAD (304/412 with
//! AWS's precedence), conditional PUT (`If-None-Match: *`, `If-Match`), every checksum
//! algorithm stored and returned, wrong checksums and Content-MD5 storing nothing, and the
//! payload modes the SDK produces (signed, UNSIGNED-PAYLOAD, aws-chunked with a trailer).

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine as _;

use super::common::{bytes, code, status, TestServer};

#[tokio::test]
async fn conditional_get_and_head() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let etag = t.put("bkt", "c", b"data".to_vec()).await;
    let g = t
        .client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(g.e_tag(), Some(etag.as_str()));
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(304));
    let e = t
        .client
        .head_object()
        .bucket("bkt")
        .key("c")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(304));
    let future = DateTime::from_secs(4_000_000_000);
    let past = DateTime::from_secs(1_000_000_000);
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(304));
    t.client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_modified_since(past)
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .head_object()
        .bucket("bkt")
        .key("c")
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    // If-Match true outranks a failing If-Unmodified-Since.
    t.client
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_match(&etag)
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn conditional_put_if_none_match_and_if_match() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let first = t
        .client
        .put_object()
        .bucket("bkt")
        .key("once")
        .if_none_match("*")
        .body(ByteStream::from_static(b"first"))
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key("once")
        .if_none_match("*")
        .body(ByteStream::from_static(b"second"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    assert_eq!(code(&e).as_deref(), Some("PreconditionFailed"));
    assert_eq!(t.get_bytes("bkt", "once").await, b"first");
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key("once")
        .if_match("\"0000\"")
        .body(ByteStream::from_static(b"third"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    t.client
        .put_object()
        .bucket("bkt")
        .key("once")
        .if_match(first.e_tag().unwrap())
        .body(ByteStream::from_static(b"fourth"))
        .send()
        .await
        .unwrap();
    assert_eq!(t.get_bytes("bkt", "once").await, b"fourth");
}

#[tokio::test]
async fn checksums_are_verified_stored_and_returned() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    for alg in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("ck-{}", alg.as_str());
        let put = t
            .client
            .put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(bytes(70_000, 3)))
            .send()
            .await
            .unwrap();
        let h = t
            .client
            .head_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let (sent, got) = match alg {
            ChecksumAlgorithm::Crc32 => (put.checksum_crc32(), h.checksum_crc32()),
            ChecksumAlgorithm::Crc32C => (put.checksum_crc32_c(), h.checksum_crc32_c()),
            ChecksumAlgorithm::Crc64Nvme => (put.checksum_crc64_nvme(), h.checksum_crc64_nvme()),
            ChecksumAlgorithm::Sha1 => (put.checksum_sha1(), h.checksum_sha1()),
            _ => (put.checksum_sha256(), h.checksum_sha256()),
        };
        assert!(got.is_some(), "{alg:?}: no checksum on HEAD");
        assert_eq!(sent, got, "{alg:?}");
        // GET validates the returned checksum in the SDK.
        let g = t
            .client
            .get_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(g.body.collect().await.unwrap().into_bytes().len(), 70_000);
    }
}

#[tokio::test]
async fn wrong_checksum_or_md5_stores_nothing() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key("bad-crc")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"some bytes"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400), "{e:?}");
    assert!(matches!(
        code(&e).as_deref(),
        Some("BadDigest") | Some("XAmzContentChecksumMismatch")
    ));
    let wrong_md5 = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key("bad-md5")
        .content_md5(wrong_md5)
        .body(ByteStream::from_static(b"some bytes"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("BadDigest"));
    assert!(t.keys("bkt").await.is_empty());
    let right_md5 = {
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b"some bytes"))
    };
    t.client
        .put_object()
        .bucket("bkt")
        .key("good-md5")
        .content_md5(right_md5)
        .body(ByteStream::from_static(b"some bytes"))
        .send()
        .await
        .unwrap();
    assert_eq!(t.keys("bkt").await, vec!["good-md5".to_string()]);
}

#[tokio::test]
async fn sdk_unsigned_payload_and_streaming_file_bodies() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let data = bytes(1_500_000, 11);
    // UNSIGNED-PAYLOAD (payload signing disabled).
    t.client
        .put_object()
        .bucket("bkt")
        .key("unsigned")
        .body(ByteStream::from(data.clone()))
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .unwrap();
    assert_eq!(t.get_bytes("bkt", "unsigned").await, data);
    // A file body with a checksum and payload signing disabled: aws-chunked with a trailer.
    let path = t.dir.path().join("upload.bin");
    std::fs::write(&path, &data).unwrap();
    let put = t
        .client
        .put_object()
        .bucket("bkt")
        .key("streamed")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from_path(&path).await.unwrap())
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .unwrap();
    assert_eq!(t.get_bytes("bkt", "streamed").await, data);
    let h = t
        .client
        .head_object()
        .bucket("bkt")
        .key("streamed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(h.checksum_crc32_c().is_some());
    assert_eq!(h.checksum_crc32_c(), put.checksum_crc32_c());
    // A file body signed normally.
    t.client
        .put_object()
        .bucket("bkt")
        .key("file-signed")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(t.get_bytes("bkt", "file-signed").await, data);
}

/// Every shard file under the drives of `dir`, with its bytes, sorted by path.
fn shard_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    fn walk(p: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(p).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with(".tessera.sys") {
                    walk(&path, out);
                }
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part."))
            {
                out.push((path.clone(), std::fs::read(&path).expect("read shard")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn a_get_that_finds_a_rotten_shard_returns_good_bytes_and_the_shard_is_healed() {
    let t = TestServer::start().await;
    t.create_bucket("rot").await;
    let data = bytes(3 << 20, 11);
    t.put("rot", "obj", data.clone()).await;
    let before = shard_files(t.dir.path());
    assert_eq!(before.len(), 4, "one shard file per drive (2+2)");
    // Rot the shard that holds data shard 0 (a GET reads data shards first, so it must
    // notice): its first framed block is [blake3: 32 bytes][the object's first bytes ...].
    let (victim, good) = before
        .iter()
        .find(|(_, b)| b.len() > 64 && b[32..64] == data[..32])
        .expect("a shard file holding data shard 0");
    let mut rotten = good.clone();
    let mid = rotten.len() / 2;
    rotten[mid] ^= 0xff;
    rotten[40] ^= 0x01;
    std::fs::write(victim, &rotten).expect("rot the shard");

    assert_eq!(
        t.get_bytes("rot", "obj").await,
        data,
        "GET reads around rot"
    );

    // The read queued the object; the read-repair worker rewrites the shard.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = std::fs::read(victim).unwrap_or_default();
        if now == *good {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotten shard was not healed within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        shard_files(t.dir.path()),
        before,
        "every shard is whole again"
    );
    assert_eq!(t.get_bytes("rot", "obj").await, data);
}
