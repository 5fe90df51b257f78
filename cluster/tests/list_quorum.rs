//! LIST over drives that disagree: an object acknowledged with write quorum is never left out
//! of a listing that returns; when the drives that answer cannot settle it, the listing fails
//! with `ReadQuorum` (503 SlowDown), as a GET of it does. A key the answering drives prove
//! absent is left out without failing.

mod common;

use std::path::PathBuf;

use cluster::{ListQuery, StoreError};
use common::*;

/// Takes local drives offline (their format records moved away) or back, then waits out the
/// moment a drive may trust its last look at its format record.
async fn set_online(drives: &[PathBuf], online: bool) {
    for drive in drives {
        let fmt = drive.join(".tessera.sys/format.json");
        let away = drive.join(".tessera.sys/format.json.away");
        let (from, to) = if online { (away, fmt) } else { (fmt, away) };
        std::fs::rename(&from, &to).expect("move the format record");
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
}

async fn listed(t: &TestStore, b: &cluster::BucketName) -> Result<Vec<String>, StoreError> {
    let q = ListQuery {
        max_keys: 100,
        ..Default::default()
    };
    let page = t.store.list_objects(b, &q).await?;
    Ok(page.objects.into_iter().map(|o| o.key).collect())
}

#[tokio::test]
async fn a_key_with_write_quorum_is_listed_or_the_listing_fails() {
    let t = TestStore::new(8).await; // 4+4: write quorum 5, read quorum 4
    let b = bucket("listq");
    t.store.make_bucket(&b).await.expect("bucket");
    put(&t.store, &b, "a", &data(100, 1)).await;
    put(&t.store, &b, "gone", &data(100, 2)).await;

    // Drives 6-8 miss a write (acknowledged on exactly 5 drives) and a delete.
    set_online(&t.drives[5..], false).await;
    let new = data(70_000, 3);
    put(&t.store, &b, "new", &new).await;
    t.store
        .delete_object(&b, &key("gone"))
        .await
        .expect("delete with 5 of 8 drives");
    set_online(&t.drives[5..], true).await;

    // All 8 answer, then 7: the write settles present, the delete absent.
    assert_eq!(listed(&t, &b).await.expect("list"), ["a", "new"]);
    set_online(&t.drives[..1], false).await;
    assert_eq!(listed(&t, &b).await.expect("list, 7 drives"), ["a", "new"]);

    // Two holders of "new" silent: 3 hold it, 3 answer without it. A GET cannot settle it
    // either; the listing must not leave it out and say nothing.
    set_online(&t.drives[1..2], false).await;
    match listed(&t, &b).await {
        Ok(keys) => assert!(keys.contains(&"new".to_owned()), "{keys:?}"),
        Err(e) => assert!(matches!(e, StoreError::ReadQuorum { .. }), "{e:?}"),
    }
    assert!(matches!(
        t.store.get_object(&b, &key("new"), None, None).await.err(),
        Some(StoreError::ReadQuorum { .. })
    ));

    // Back: listed, and it reads.
    set_online(&t.drives[..2], true).await;
    assert_eq!(listed(&t, &b).await.expect("list"), ["a", "new"]);
    assert_eq!(get(&t.store, &b, "new").await.expect("get"), new);
}
