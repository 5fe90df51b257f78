//! Listings through the SDK and raw XML: V2 pagination with continuation tokens, prefixes and
//! delimiters, start-after, fetch-owner, encoding-type=url; V1 markers; versions listing.

use aws_sdk_s3::types::EncodingType;

use super::common::{raw, TestServer};
use super::sign::signed_request;

async fn fill(t: &TestServer) {
    t.create_bucket("lst").await;
    for k in ["a/1", "a/2", "a/b/3", "b/4", "c", "d e/5"] {
        t.put("lst", k, k.as_bytes().to_vec()).await;
    }
}

#[tokio::test]
async fn v2_paginates_with_continuation_tokens() {
    let t = TestServer::start().await;
    fill(&t).await;
    let mut token: Option<String> = None;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let mut req = t.client.list_objects_v2().bucket("lst").max_keys(2);
        if let Some(tok) = &token {
            req = req.continuation_token(tok);
        }
        let out = req.send().await.unwrap();
        pages += 1;
        assert!(out.key_count().unwrap() <= 2);
        all.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
        if out.is_truncated() == Some(true) {
            token = out.next_continuation_token().map(str::to_string);
            assert!(token.is_some());
        } else {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all, ["a/1", "a/2", "a/b/3", "b/4", "c", "d e/5"]);
}

#[tokio::test]
async fn v2_prefix_delimiter_and_start_after() {
    let t = TestServer::start().await;
    fill(&t).await;
    let out = t
        .client
        .list_objects_v2()
        .bucket("lst")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["c"]);
    assert_eq!(prefixes, ["a/", "b/", "d e/"]);
    assert_eq!(out.key_count(), Some(4));
    let out = t
        .client
        .list_objects_v2()
        .bucket("lst")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(out.common_prefixes()[0].prefix(), Some("a/b/"));
    let out = t
        .client
        .list_objects_v2()
        .bucket("lst")
        .start_after("b/4")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["c", "d e/5"]);
    let first = &t
        .client
        .list_objects_v2()
        .bucket("lst")
        .send()
        .await
        .unwrap()
        .contents()[0]
        .clone();
    assert!(first.owner().is_none());
    assert_eq!(first.size(), Some(3));
    assert!(first.e_tag().unwrap().starts_with('"'));
    let out = t
        .client
        .list_objects_v2()
        .bucket("lst")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    assert!(out.contents()[0].owner().is_some());
}

#[tokio::test]
async fn v2_encoding_type_url_encodes_keys() {
    let t = TestServer::start().await;
    fill(&t).await;
    let out = t
        .client
        .list_objects_v2()
        .bucket("lst")
        .prefix("d ")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["d%20e/5"]);
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "GET",
            "/lst",
            &[
                ("list-type", "2"),
                ("encoding-type", "url"),
                ("prefix", "d "),
            ],
            &[],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("<EncodingType>url</EncodingType>"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("<Prefix>d%20</Prefix>"));
}

#[tokio::test]
async fn v1_markers_and_next_marker_only_with_delimiter() {
    let t = TestServer::start().await;
    fill(&t).await;
    let out = t
        .client
        .list_objects()
        .bucket("lst")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(out.is_truncated(), Some(true));
    assert!(out.next_marker().is_none());
    let last = out.contents().last().unwrap().key().unwrap().to_string();
    assert_eq!(last, "a/2");
    let out = t
        .client
        .list_objects()
        .bucket("lst")
        .marker(&last)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a/b/3", "b/4", "c", "d e/5"]);
    assert!(out.contents()[0].owner().is_some());
    let out = t
        .client
        .list_objects()
        .bucket("lst")
        .delimiter("/")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.is_truncated(), Some(true));
    assert_eq!(out.next_marker(), Some("a/"));
}

#[tokio::test]
async fn versions_listing_shows_null_latest_versions() {
    let t = TestServer::start().await;
    fill(&t).await;
    let out = t
        .client
        .list_object_versions()
        .bucket("lst")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    let v = out.versions();
    assert_eq!(v.len(), 3);
    for ver in v {
        assert_eq!(ver.version_id(), Some("null"));
        assert_eq!(ver.is_latest(), Some(true));
    }
    assert!(out.delete_markers().is_empty());
    let out = t
        .client
        .list_object_versions()
        .bucket("lst")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(out.is_truncated(), Some(true));
    assert_eq!(out.next_key_marker(), Some("a/2"));
    assert_eq!(out.next_version_id_marker(), Some("null"));
    let out = t
        .client
        .list_object_versions()
        .bucket("lst")
        .key_marker("a/2")
        .version_id_marker("null")
        .send()
        .await
        .unwrap();
    assert_eq!(out.versions()[0].key(), Some("a/b/3"));
}

#[tokio::test]
async fn list_of_missing_bucket_and_bad_parameters() {
    let t = TestServer::start().await;
    fill(&t).await;
    let e = t
        .client
        .list_objects_v2()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(super::common::code(&e).as_deref(), Some("NoSuchBucket"));
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "GET",
            "/lst",
            &[("list-type", "2"), ("continuation-token", "!!!")],
            &[],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code().as_deref(), Some("InvalidArgument"));
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "GET",
            "/lst",
            &[("list-type", "2"), ("max-keys", "0")],
            &[],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<KeyCount>0</KeyCount>"));
}

#[tokio::test]
async fn paging_with_a_delimiter_returns_each_prefix_once() {
    let t = TestServer::start().await;
    fill(&t).await;
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut req = t
            .client
            .list_objects_v2()
            .bucket("lst")
            .delimiter("/")
            .max_keys(1);
        if let Some(tok) = &token {
            req = req.continuation_token(tok);
        }
        let out = req.send().await.unwrap();
        seen.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(str::to_string),
        );
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
        if out.is_truncated() != Some(true) {
            token = None;
            break;
        }
        token = out.next_continuation_token().map(str::to_string);
    }
    assert!(token.is_none(), "listing did not finish: {seen:?}");
    assert_eq!(seen, ["a/", "b/", "c", "d e/"]);
    let mut marker: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut req = t
            .client
            .list_objects()
            .bucket("lst")
            .delimiter("/")
            .max_keys(1);
        if let Some(m) = &marker {
            req = req.marker(m);
        }
        let out = req.send().await.unwrap();
        seen.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(str::to_string),
        );
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
        if out.is_truncated() != Some(true) {
            marker = None;
            break;
        }
        marker = out.next_marker().map(str::to_string);
    }
    assert!(marker.is_none());
    assert_eq!(seen, ["a/", "b/", "c", "d e/"]);
}
