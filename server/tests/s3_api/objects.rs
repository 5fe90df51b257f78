//! Object operations through the SDK: round trips with content headers and metadata, HEAD,
//! DELETE, ranges, response overrides, DeleteObjects, `versionId=null`, presigned URLs, keys
//! with unusual characters, size limits on keys and metadata.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::common::{bytes, code, md5_hex, status, TestServer};

#[tokio::test]
async fn put_get_head_round_trip_with_metadata() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let data = bytes(300_000, 1);
    let put = t
        .client
        .put_object()
        .bucket("bkt")
        .key("dir/obj.bin")
        .body(ByteStream::from(data.clone()))
        .content_type("application/x-test")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"x.bin\"")
        .content_language("de")
        .metadata("color", "blue")
        .metadata("Mixed-Case", "Value")
        .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );

    let get = t
        .client
        .get_object()
        .bucket("bkt")
        .key("dir/obj.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(get.content_type(), Some("application/x-test"));
    assert_eq!(get.cache_control(), Some("max-age=60"));
    assert_eq!(
        get.content_disposition(),
        Some("attachment; filename=\"x.bin\"")
    );
    assert_eq!(get.content_language(), Some("de"));
    assert_eq!(get.content_length(), Some(data.len() as i64));
    assert_eq!(get.storage_class().map(|s| s.as_str()), Some("STANDARD_IA"));
    let meta = get.metadata().unwrap();
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(meta.get("mixed-case").map(String::as_str), Some("Value"));
    assert!(get.last_modified().is_some());
    assert_eq!(
        get.body.collect().await.unwrap().into_bytes().as_ref(),
        &data[..]
    );

    let head = t
        .client
        .head_object()
        .bucket("bkt")
        .key("dir/obj.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), put.e_tag());
    assert_eq!(head.accept_ranges(), Some("bytes"));
}

#[tokio::test]
async fn empty_objects_and_default_content_type() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    // Raw PUT without Content-Type (the SDK would add one).
    let r = super::common::raw(
        t.addr(),
        &super::sign::signed_request(&t.host(), "PUT", "/bkt/empty", &[], &[], b""),
    )
    .await;
    assert_eq!(r.status, 200);
    let get = t
        .client
        .get_object()
        .bucket("bkt")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(get.content_length(), Some(0));
    assert_eq!(get.content_type(), Some("binary/octet-stream"));
    assert!(get.body.collect().await.unwrap().into_bytes().is_empty());
}

#[tokio::test]
async fn missing_objects_and_idempotent_delete() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchKey"));
    let e = t
        .client
        .head_object()
        .bucket("bkt")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(404));
    t.put("bkt", "k", b"x".to_vec()).await;
    t.client
        .delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    t.client
        .delete_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(t.keys("bkt").await.is_empty());
    let e = t
        .client
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchBucket"));
}

#[tokio::test]
async fn keys_with_unusual_characters_round_trip() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let keys = [
        "a b+c",
        "ü/ñ/日本語",
        "100%/x?y#z&w=v",
        "trailing/",
        "a//double",
        "quote\"'<>",
        "~tilde!$*(),;:@",
    ];
    for (i, k) in keys.iter().enumerate() {
        t.put("bkt", k, vec![i as u8; 10]).await;
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(t.get_bytes("bkt", k).await, vec![i as u8; 10], "{k}");
    }
    let list = t
        .client
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    let mut listed: Vec<&str> = list.contents().iter().filter_map(|o| o.key()).collect();
    listed.sort();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(listed, want);
}

#[tokio::test]
async fn long_keys_and_large_metadata_are_refused() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let long = "k".repeat(1025);
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key(&long)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("KeyTooLongError"));
    let e = t
        .client
        .put_object()
        .bucket("bkt")
        .key("meta")
        .metadata("big", "v".repeat(2100))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("MetadataTooLarge"));
    let ok = "k".repeat(1024);
    t.put("bkt", &ok, b"fits".to_vec()).await;
    assert_eq!(t.keys("bkt").await, vec![ok]);
}

#[tokio::test]
async fn ranges_and_unsatisfiable_ranges() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let data = bytes(10_000, 2);
    t.put("bkt", "r", data.clone()).await;
    for (range, want) in [
        ("bytes=0-9", &data[0..10]),
        ("bytes=9990-", &data[9990..]),
        ("bytes=-5", &data[9995..]),
        ("bytes=100-99999", &data[100..]),
    ] {
        let g = t
            .client
            .get_object()
            .bucket("bkt")
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap();
        let cr = g.content_range().unwrap().to_string();
        let body = g.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), want, "{range}");
        assert!(cr.ends_with("/10000"), "{cr}");
    }
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("r")
        .range("bytes=10000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(416));
    assert_eq!(code(&e).as_deref(), Some("InvalidRange"));
    let h = t
        .client
        .head_object()
        .bucket("bkt")
        .key("r")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(10));
    assert_eq!(h.content_range(), Some("bytes 10-19/10000"));
}

#[tokio::test]
async fn response_overrides_replace_stored_headers() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    t.put("bkt", "o", b"hello".to_vec()).await;
    let g = t
        .client
        .get_object()
        .bucket("bkt")
        .key("o")
        .response_content_type("text/x-override")
        .response_content_disposition("inline")
        .response_cache_control("no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(g.content_type(), Some("text/x-override"));
    assert_eq!(g.content_disposition(), Some("inline"));
    assert_eq!(g.cache_control(), Some("no-cache"));
}

#[tokio::test]
async fn version_id_null_is_accepted() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    t.put("bkt", "v", b"x".to_vec()).await;
    t.client
        .get_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    t.client
        .head_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .get_object()
        .bucket("bkt")
        .key("v")
        .version_id("abc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400));
    t.client
        .delete_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert!(t.keys("bkt").await.is_empty());
}

#[tokio::test]
async fn delete_objects_quiet_and_verbose_with_null_versions() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    for k in ["a", "b", "c", "d"] {
        t.put("bkt", k, b"x".to_vec()).await;
    }
    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("a").build().unwrap())
        .objects(
            ObjectIdentifier::builder()
                .key("b")
                .version_id("null")
                .build()
                .unwrap(),
        )
        .objects(ObjectIdentifier::builder().key("missing").build().unwrap())
        .build()
        .unwrap();
    let out = t
        .client
        .delete_objects()
        .bucket("bkt")
        .delete(del)
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 3);
    assert!(out.errors().is_empty());
    let del = Delete::builder()
        .quiet(true)
        .objects(ObjectIdentifier::builder().key("c").build().unwrap())
        .build()
        .unwrap();
    let out = t
        .client
        .delete_objects()
        .bucket("bkt")
        .delete(del)
        .send()
        .await
        .unwrap();
    assert!(out.deleted().is_empty());
    assert_eq!(t.keys("bkt").await, vec!["d".to_string()]);
}

#[tokio::test]
async fn presigned_get_and_put_through_the_sdk() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    let cfg = PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap();
    let put = t
        .client
        .put_object()
        .bucket("bkt")
        .key("p")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let uri: http::Uri = put.uri().parse().unwrap();
    let path = uri.path_and_query().unwrap().as_str();
    let req = format!(
        "PUT {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: 9\r\nconnection: close\r\n\r\npresigned",
        t.host()
    );
    let r = super::common::raw(t.addr(), req.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let get = t
        .client
        .get_object()
        .bucket("bkt")
        .key("p")
        .presigned(cfg)
        .await
        .unwrap();
    let uri: http::Uri = get.uri().parse().unwrap();
    let req = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        uri.path_and_query().unwrap().as_str(),
        t.host()
    );
    let r = super::common::raw(t.addr(), req.as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"presigned");
}

#[tokio::test]
async fn get_object_tagging_is_empty_and_acl_is_canned() {
    let t = TestServer::start().await;
    t.create_bucket("bkt").await;
    t.put("bkt", "t", b"x".to_vec()).await;
    let tags = t
        .client
        .get_object_tagging()
        .bucket("bkt")
        .key("t")
        .send()
        .await
        .unwrap();
    assert!(tags.tag_set().is_empty());
    let acl = t
        .client
        .get_object_acl()
        .bucket("bkt")
        .key("t")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 1);
}
