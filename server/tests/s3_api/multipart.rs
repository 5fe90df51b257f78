//! Multipart uploads through the SDK: create, upload, list parts and uploads, complete (ETag
//! md5-of-md5s-N, GET/HEAD ?partNumber), completion errors, abort, UploadPartCopy with a range,
//! and `If-None-Match: *` on completion.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::Digest as _;

use super::common::{bytes, code, status, TestServer};

const MIB: usize = 1024 * 1024;

async fn upload(
    t: &TestServer,
    bucket: &str,
    key: &str,
    parts: &[Vec<u8>],
) -> (String, Vec<CompletedPart>) {
    let id = t
        .client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/x-mp")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = t
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    (id, done)
}

fn multipart_etag(parts: &[Vec<u8>]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&md5::Md5::digest(p));
    }
    format!(
        "\"{}-{}\"",
        hex::encode(md5::Md5::digest(&all)),
        parts.len()
    )
}

#[tokio::test]
async fn multipart_upload_round_trip() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let parts = vec![bytes(5 * MIB, 1), bytes(MIB + 123, 2)];
    let (id, done) = upload(&t, "mpu", "big", &parts).await;

    let lp = t
        .client
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(lp.parts().len(), 2);
    assert_eq!(lp.parts()[1].size(), Some((MIB + 123) as i64));
    let lu = t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert_eq!(lu.uploads().len(), 1);
    assert_eq!(lu.uploads()[0].upload_id(), Some(id.as_str()));

    let out = t
        .client
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.e_tag(), Some(multipart_etag(&parts).as_str()));
    let all: Vec<u8> = parts.concat();
    assert_eq!(t.get_bytes("mpu", "big").await, all);
    let h = t
        .client
        .head_object()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/x-mp"));
    assert_eq!(h.content_length(), Some(all.len() as i64));

    let p2 = t
        .client
        .get_object()
        .bucket("mpu")
        .key("big")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(p2.parts_count(), Some(2));
    assert_eq!(p2.content_length(), Some((MIB + 123) as i64));
    assert_eq!(
        p2.body.collect().await.unwrap().into_bytes().as_ref(),
        &parts[1][..]
    );
    let h1 = t
        .client
        .head_object()
        .bucket("mpu")
        .key("big")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(h1.content_length(), Some((5 * MIB) as i64));
    assert_eq!(h1.parts_count(), Some(2));
    let e = t
        .client
        .head_object()
        .bucket("mpu")
        .key("big")
        .part_number(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(416));
    assert!(t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap()
        .uploads()
        .is_empty());
}

#[tokio::test]
async fn completion_errors() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let parts = vec![bytes(1000, 1), bytes(1000, 2)];
    let (id, done) = upload(&t, "mpu", "small", &parts).await;
    let complete = |ps: Vec<CompletedPart>| {
        t.client
            .complete_multipart_upload()
            .bucket("mpu")
            .key("small")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(ps))
                    .build(),
            )
            .send()
    };
    let e = complete(done.clone()).await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("EntityTooSmall"));
    let e = complete(vec![done[1].clone(), done[0].clone()])
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidPartOrder"));
    let bad = CompletedPart::builder()
        .part_number(1)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let e = complete(vec![bad]).await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidPart"));
    // A single small part is fine (it is the last one).
    complete(vec![done[0].clone()]).await.unwrap();
    assert_eq!(t.get_bytes("mpu", "small").await, parts[0]);
}

#[tokio::test]
async fn abort_and_unknown_uploads() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let (id, _) = upload(&t, "mpu", "gone", &[bytes(100, 1)]).await;
    t.client
        .abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .list_parts()
        .bucket("mpu")
        .key("gone")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchUpload"));
    let e = t
        .client
        .upload_part()
        .bucket("mpu")
        .key("gone")
        .upload_id("not-an-upload-id")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchUpload"));
    let e = t
        .client
        .upload_part()
        .bucket("mpu")
        .key("gone")
        .upload_id(&id)
        .part_number(10001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidArgument"));
    assert!(t.keys("mpu").await.is_empty());
}

#[tokio::test]
async fn upload_part_copy_with_ranges() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let src = bytes(6 * MIB, 9);
    t.put("mpu", "src", src.clone()).await;
    let id = t
        .client
        .create_multipart_upload()
        .bucket("mpu")
        .key("dst")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let p1 = t
        .client
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/src")
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .unwrap();
    let p2 = t
        .client
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(2)
        .copy_source("mpu/src")
        .copy_source_range("bytes=100-199")
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(3)
        .copy_source("mpu/src")
        .copy_source_range(format!("bytes=0-{}", 7 * MIB))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidArgument"));
    let parts = vec![
        CompletedPart::builder()
            .part_number(1)
            .e_tag(p1.copy_part_result().unwrap().e_tag().unwrap())
            .build(),
        CompletedPart::builder()
            .part_number(2)
            .e_tag(p2.copy_part_result().unwrap().e_tag().unwrap())
            .build(),
    ];
    t.client
        .complete_multipart_upload()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut want = src[..5 * MIB].to_vec();
    want.extend_from_slice(&src[100..200]);
    assert_eq!(t.get_bytes("mpu", "dst").await, want);
}

#[tokio::test]
async fn complete_with_if_none_match_refuses_to_overwrite() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    t.put("mpu", "exists", b"old".to_vec()).await;
    let (id, done) = upload(&t, "mpu", "exists", &[bytes(10, 1)]).await;
    let e = t
        .client
        .complete_multipart_upload()
        .bucket("mpu")
        .key("exists")
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    assert_eq!(t.get_bytes("mpu", "exists").await, b"old");
}

#[tokio::test]
async fn malformed_complete_xml_is_refused() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let (id, _) = upload(&t, "mpu", "x", &[bytes(10, 1)]).await;
    for body in [
        &b"<CompleteMultipartUpload><Part>"[..],
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"garbage",
    ] {
        let req = super::sign::signed_request(
            &t.host(),
            "POST",
            "/mpu/x",
            &[("uploadId", &id)],
            &[],
            body,
        );
        let r = super::common::raw(t.addr(), &req).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.code().as_deref(), Some("MalformedXML"));
    }
    assert!(t.keys("mpu").await.is_empty());
}

#[tokio::test]
async fn list_multipart_uploads_pages_and_groups_by_delimiter() {
    let t = TestServer::start().await;
    t.create_bucket("mpu").await;
    let mut ids = Vec::new();
    for key in ["a/1", "a/2", "b", "c"] {
        let id = t
            .client
            .create_multipart_upload()
            .bucket("mpu")
            .key(key)
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_string();
        ids.push(id);
    }
    let out = t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .max_uploads(2)
        .send()
        .await
        .unwrap();
    assert_eq!(out.uploads().len(), 2);
    assert_eq!(out.is_truncated(), Some(true));
    let next = t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .key_marker(out.next_key_marker().unwrap())
        .upload_id_marker(out.next_upload_id_marker().unwrap())
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = next.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["b", "c"]);
    let grouped = t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(grouped.common_prefixes()[0].prefix(), Some("a/"));
    assert_eq!(grouped.uploads().len(), 2);
    let prefixed = t
        .client
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.uploads().len(), 2);
    assert!(prefixed.uploads()[0].initiated().is_some());
}
