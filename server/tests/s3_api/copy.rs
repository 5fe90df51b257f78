//! CopyObject through the SDK: COPY and REPLACE directives, self-copy rules, URL-encoded
//! sources with `?versionId=null`, and `x-amz-copy-source-if-*` conditions.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;

use super::common::{bytes, code, status, TestServer};

#[tokio::test]
async fn copy_keeps_or_replaces_metadata() {
    let t = TestServer::start().await;
    t.create_bucket("src").await;
    t.create_bucket("dst").await;
    let data = bytes(200_000, 7);
    t.client
        .put_object()
        .bucket("src")
        .key("dir/a b")
        .content_type("text/plain")
        .metadata("origin", "src")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let out = t
        .client
        .copy_object()
        .bucket("dst")
        .key("copy1")
        .copy_source("src/dir/a%20b")
        .send()
        .await
        .unwrap();
    assert!(out.copy_object_result().unwrap().e_tag().is_some());
    let h = t
        .client
        .head_object()
        .bucket("dst")
        .key("copy1")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("src")
    );
    assert_eq!(t.get_bytes("dst", "copy1").await, data);

    t.client
        .copy_object()
        .bucket("dst")
        .key("copy2")
        .copy_source("/src/dir/a%20b?versionId=null")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/json")
        .metadata("origin", "replaced")
        .send()
        .await
        .unwrap();
    let h = t
        .client
        .head_object()
        .bucket("dst")
        .key("copy2")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/json"));
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("replaced")
    );
}

#[tokio::test]
async fn self_copy_needs_replace() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    t.put("bkt", "me", b"self".to_vec()).await;
    let e = t
        .client
        .copy_object()
        .bucket("bkt")
        .key("me")
        .copy_source("bkt/me")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequest"));
    t.client
        .copy_object()
        .bucket("bkt")
        .key("me")
        .copy_source("bkt/me")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("new", "yes")
        .send()
        .await
        .unwrap();
    let h = t
        .client
        .head_object()
        .bucket("bkt")
        .key("me")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().unwrap().get("new").map(String::as_str),
        Some("yes")
    );
    assert_eq!(t.get_bytes("bkt", "me").await, b"self");
}

#[tokio::test]
async fn copy_source_conditions_and_missing_sources() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let etag = t.put("bkt", "s", b"source".to_vec()).await;
    let e = t
        .client
        .copy_object()
        .bucket("bkt")
        .key("d")
        .copy_source("bkt/s")
        .copy_source_if_match("\"other\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    let e = t
        .client
        .copy_object()
        .bucket("bkt")
        .key("d")
        .copy_source("bkt/s")
        .copy_source_if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(412));
    t.client
        .copy_object()
        .bucket("bkt")
        .key("d")
        .copy_source("bkt/s")
        .copy_source_if_match(&etag)
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .copy_object()
        .bucket("bkt")
        .key("d2")
        .copy_source("bkt/nothing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchKey"));
    let mut keys = t.keys("bkt").await;
    keys.sort();
    assert_eq!(keys, ["d", "s"]);
}
