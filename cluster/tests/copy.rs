//! CopyObject: COPY and REPLACE directives, copy onto itself, across buckets.

mod common;

use cluster::{CopyOptions, ObjectMeta, StoreError, WritePrecondition};
use common::*;

#[tokio::test]
async fn copy_keeps_or_replaces_metadata() {
    let t = TestStore::new(4).await;
    let a = bucket("src-bucket");
    let z = bucket("dst-bucket");
    t.store.make_bucket(&a).await.expect("bucket");
    t.store.make_bucket(&z).await.expect("bucket");
    let body = data(700_000, 3);
    let meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        user: [("color".to_string(), "blue".to_string())].into(),
        ..Default::default()
    };
    t.store
        .put_object(
            &a,
            &key("src"),
            cluster::BytesBody::new(body.clone()),
            cluster::PutOptions {
                meta: meta.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let copied = t
        .store
        .copy_object((&a, &key("src")), (&z, &key("dst")), CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(copied.meta, meta);
    assert_eq!(get(&t.store, &z, "dst").await.expect("get"), body);

    // Onto itself: needs REPLACE.
    let r = t
        .store
        .copy_object((&a, &key("src")), (&a, &key("src")), CopyOptions::default())
        .await;
    assert!(matches!(r, Err(StoreError::InvalidArgument(_))));
    let new_meta = ObjectMeta {
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    let replaced = t
        .store
        .copy_object(
            (&a, &key("src")),
            (&a, &key("src")),
            CopyOptions {
                replace_meta: Some(new_meta.clone()),
                precondition: None,
            },
        )
        .await
        .expect("self copy with REPLACE");
    assert_eq!(replaced.meta, new_meta);
    assert_eq!(
        t.store
            .head_object(&a, &key("src"))
            .await
            .expect("head")
            .meta,
        new_meta
    );
    assert_eq!(get(&t.store, &a, "src").await.expect("get"), body);

    let r = t
        .store
        .copy_object(
            (&a, &key("src")),
            (&z, &key("dst")),
            CopyOptions {
                replace_meta: None,
                precondition: Some(WritePrecondition::IfNoneMatchAny),
            },
        )
        .await;
    assert!(matches!(r, Err(StoreError::PreconditionFailed)));
    let r = t
        .store
        .copy_object(
            (&a, &key("missing")),
            (&z, &key("x")),
            CopyOptions::default(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::NoSuchKey)));
}
