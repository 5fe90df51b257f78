//! Bucket operations through the SDK: create/list/head/delete, location constraints,
//! versioning, ACL, and the configuration subresources that answer "does not exist".

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use super::common::{code, raw, status, TestServer};
use super::sign::signed_request;

#[tokio::test]
async fn create_list_head_and_delete_buckets() {
    let t = TestServer::start().await;
    t.create_bucket("alpha").await;
    t.create_bucket("beta").await;
    let list = t.client.list_buckets().send().await.unwrap();
    let names: Vec<&str> = list.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(list.buckets()[0].creation_date().is_some());
    assert!(list.owner().and_then(|o| o.id()).is_some());
    t.client.head_bucket().bucket("alpha").send().await.unwrap();
    t.client
        .delete_bucket()
        .bucket("alpha")
        .send()
        .await
        .unwrap();
    let e = t
        .client
        .head_bucket()
        .bucket("alpha")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(404));
    let list = t.client.list_buckets().send().await.unwrap();
    assert_eq!(list.buckets().len(), 1);
}

#[tokio::test]
async fn creating_an_existing_bucket_says_already_owned() {
    let t = TestServer::start().await;
    t.create_bucket("dup").await;
    let e = t
        .client
        .create_bucket()
        .bucket("dup")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("BucketAlreadyOwnedByYou"));
    assert_eq!(status(&e), Some(409));
}

#[tokio::test]
async fn invalid_bucket_names_are_refused() {
    let t = TestServer::start().await;
    let e = t
        .client
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidBucketName"));
    assert!(t
        .client
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());
}

#[tokio::test]
async fn location_constraint_must_name_our_region() {
    let t = TestServer::start().await;
    let ok = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::from("us-east-1"))
        .build();
    t.client
        .create_bucket()
        .bucket("here")
        .create_bucket_configuration(ok)
        .send()
        .await
        .unwrap();
    let other = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::EuWest1)
        .build();
    let e = t
        .client
        .create_bucket()
        .bucket("there")
        .create_bucket_configuration(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e).as_deref(),
        Some("IllegalLocationConstraintException")
    );
    let loc = t
        .client
        .get_bucket_location()
        .bucket("here")
        .send()
        .await
        .unwrap();
    // us-east-1 is reported as the empty constraint, as AWS does.
    assert!(loc
        .location_constraint()
        .is_none_or(|c| c.as_str().is_empty()));
}

#[tokio::test]
async fn deleting_a_non_empty_bucket_fails() {
    let t = TestServer::start().await;
    t.create_bucket("full").await;
    t.put("full", "k", b"v".to_vec()).await;
    let e = t
        .client
        .delete_bucket()
        .bucket("full")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("BucketNotEmpty"));
    assert_eq!(status(&e), Some(409));
    let e = t
        .client
        .delete_bucket()
        .bucket("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchBucket"));
}

#[tokio::test]
async fn versioning_acl_and_missing_configurations() {
    let t = TestServer::start().await;
    t.create_bucket("cfg").await;
    let v = t
        .client
        .get_bucket_versioning()
        .bucket("cfg")
        .send()
        .await
        .unwrap();
    assert!(v.status().is_none());
    let acl = t
        .client
        .get_bucket_acl()
        .bucket("cfg")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(
        acl.grants()[0].permission().map(|p| p.as_str()),
        Some("FULL_CONTROL")
    );
    let e = t
        .client
        .get_bucket_policy()
        .bucket("cfg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchBucketPolicy"));
    let e = t
        .client
        .get_bucket_cors()
        .bucket("cfg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchCORSConfiguration"));
    let e = t
        .client
        .get_bucket_lifecycle_configuration()
        .bucket("cfg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchLifecycleConfiguration"));
    let e = t
        .client
        .get_bucket_versioning()
        .bucket("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("NoSuchBucket"));
}

#[tokio::test]
async fn malformed_create_bucket_xml_creates_nothing() {
    let t = TestServer::start().await;
    let req = signed_request(
        &t.host(),
        "PUT",
        "/newb",
        &[],
        &[],
        b"<CreateBucketConfiguration><LocationConstraint>",
    );
    let r = raw(t.addr(), &req).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("MalformedXML"));
    assert!(t
        .client
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());
}
