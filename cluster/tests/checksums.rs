//! Checksums and Content-MD5: computed while streaming, verified, stored, returned.

mod common;

use base64::Engine as _;
use cluster::{BytesBody, Checksum, ChecksumAlgorithm, PutOptions, StoreError};
use common::*;

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[tokio::test]
async fn every_algorithm_is_computed_stored_and_verified() {
    let t = TestStore::new(4).await;
    let b = bucket("sums");
    t.store.make_bucket(&b).await.expect("bucket");
    let body = data(300_000, 5);
    let expected = [
        (
            ChecksumAlgorithm::Crc32,
            b64(&crc32fast::hash(&body).to_be_bytes()),
        ),
        (
            ChecksumAlgorithm::Crc32c,
            b64(&crc32c::crc32c(&body).to_be_bytes()),
        ),
        (
            ChecksumAlgorithm::Sha256,
            b64(&<sha2::Sha256 as sha2::Digest>::digest(&body)),
        ),
        (
            ChecksumAlgorithm::Sha1,
            b64(&<sha1::Sha1 as sha1::Digest>::digest(&body)),
        ),
    ];
    for (alg, value) in expected {
        let k = format!("k-{alg}");
        let info = t
            .store
            .put_object(
                &b,
                &key(&k),
                BytesBody::chunked(body.clone(), 7777),
                PutOptions {
                    checksum_algorithm: Some(alg),
                    expected_checksum: Some(Checksum {
                        algorithm: alg,
                        value: value.clone(),
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect("put with a correct checksum");
        assert_eq!(
            info.checksum.as_ref().map(|c| c.value.as_str()),
            Some(value.as_str())
        );
        let head = t.store.head_object(&b, &key(&k)).await.expect("head");
        assert_eq!(head.checksum, info.checksum);
    }
    // CRC64NVME: computed and returned (8 bytes).
    let info = t
        .store
        .put_object(
            &b,
            &key("nvme"),
            BytesBody::new(body.clone()),
            PutOptions {
                checksum_algorithm: Some(ChecksumAlgorithm::Crc64Nvme),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let c = info.checksum.expect("checksum stored");
    assert_eq!(c.digest().expect("base64").len(), 8);
}

#[tokio::test]
async fn mismatches_store_nothing() {
    let t = TestStore::new(4).await;
    let b = bucket("bad");
    t.store.make_bucket(&b).await.expect("bucket");
    for size in [10usize, 500_000] {
        let body = data(size, 9);
        let r = t
            .store
            .put_object(
                &b,
                &key("k"),
                BytesBody::new(body.clone()),
                PutOptions {
                    content_md5: Some([0; 16]),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(r, Err(StoreError::BadDigest)), "{r:?}");
        let wrong = Checksum {
            algorithm: ChecksumAlgorithm::Crc32,
            value: b64(&[1, 2, 3, 4]),
        };
        let r = t
            .store
            .put_object(
                &b,
                &key("k"),
                BytesBody::new(body.clone()),
                PutOptions {
                    expected_checksum: Some(wrong.clone()),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::ChecksumMismatch { .. })),
            "{r:?}"
        );
        // Trailing checksum (aws-chunked trailer) that does not match.
        let r = t
            .store
            .put_object(
                &b,
                &key("k"),
                BytesBody::new(body.clone()).with_trailers(vec![wrong]),
                PutOptions {
                    checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::ChecksumMismatch { .. })),
            "{r:?}"
        );
        assert!(matches!(
            t.store.head_object(&b, &key("k")).await,
            Err(StoreError::NoSuchKey)
        ));
        for d in &t.drives {
            assert!(shard_files(d).is_empty());
            let tmp = d.join(".tessera.sys/tmp");
            assert_eq!(
                std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0),
                0,
                "tmp is clean"
            );
        }
    }
    // A matching trailer and Content-MD5 are accepted.
    let body = data(1000, 1);
    let good = Checksum {
        algorithm: ChecksumAlgorithm::Crc32,
        value: b64(&crc32fast::hash(&body).to_be_bytes()),
    };
    use md5::Digest as _;
    let md5: [u8; 16] = md5::Md5::digest(&body).into();
    t.store
        .put_object(
            &b,
            &key("ok"),
            BytesBody::new(body).with_trailers(vec![good]),
            PutOptions {
                checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
                content_md5: Some(md5),
                ..Default::default()
            },
        )
        .await
        .expect("matching trailer");
}

#[tokio::test]
async fn a_failing_body_stream_aborts_the_write() {
    let t = TestStore::new(4).await;
    let b = bucket("abort");
    t.store.make_bucket(&b).await.expect("bucket");
    let chunks: Vec<std::io::Result<bytes::Bytes>> = vec![
        Ok(bytes::Bytes::from(data(200_000, 1))),
        Ok(bytes::Bytes::from(data(200_000, 2))),
        Err(std::io::Error::other("client went away")),
    ];
    let body: cluster::ByteStream = Box::pin(futures::stream::iter(chunks));
    let r = t
        .store
        .put_object(&b, &key("k"), body, PutOptions::default())
        .await;
    assert!(matches!(r, Err(StoreError::Body(_))), "{r:?}");
    assert!(matches!(
        t.store.head_object(&b, &key("k")).await,
        Err(StoreError::NoSuchKey)
    ));
    for d in &t.drives {
        assert!(shard_files(d).is_empty());
    }
}
