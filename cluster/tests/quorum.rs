//! Quorum: with K+M drives, losing M keeps reads working; losing M+1 is an error and never
//! partial data; a write below write quorum is undone where it landed.

mod common;

use cluster::{body::collect, BytesBody, PutOptions, StoreError};
use common::*;

#[tokio::test]
async fn reads_survive_m_lost_drives_and_fail_cleanly_beyond() {
    let t = TestStore::new(6).await; // 3+3
    let b = bucket("quorum");
    t.store.make_bucket(&b).await.expect("bucket");
    let objs: Vec<(String, Vec<u8>)> = [10usize, 150_000, 700_000]
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("k{i}"), data(*n, i as u64)))
        .collect();
    for (k, v) in &objs {
        put(&t.store, &b, k, v).await;
    }
    for d in &t.drives[..3] {
        std::fs::remove_dir_all(d).expect("remove drive");
    }
    for (k, v) in &objs {
        assert_eq!(
            &get(&t.store, &b, k).await.expect("read with M drives lost"),
            v
        );
    }
    let listed = t
        .store
        .list_objects(
            &b,
            &cluster::ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.objects.len(), objs.len());
    std::fs::remove_dir_all(&t.drives[3]).expect("remove drive");
    for (k, _) in &objs {
        match t.store.get_object(&b, &key(k), None, None).await {
            Err(e) => assert!(
                matches!(e, StoreError::ReadQuorum { .. } | StoreError::NoSuchBucket),
                "{e:?}"
            ),
            Ok(g) => assert!(
                collect(g.body).await.is_err(),
                "partial data must not be returned"
            ),
        }
    }
}

#[tokio::test]
async fn writes_below_quorum_are_undone() {
    let t = TestStore::new(4).await; // 2+2, write quorum 3
    let b = bucket("undo");
    t.store.make_bucket(&b).await.expect("bucket");
    let old_small = data(100, 1);
    let old_big = data(300_000, 2);
    put(&t.store, &b, "small", &old_small).await;
    put(&t.store, &b, "big", &old_big).await;
    std::fs::remove_dir_all(&t.drives[0]).expect("remove drive");
    std::fs::remove_dir_all(&t.drives[3]).expect("remove drive");
    for (k, size) in [
        ("small", 50usize),
        ("big", 400_000),
        ("new", 200_000),
        ("new-small", 10),
    ] {
        let r = t
            .store
            .put_object(
                &b,
                &key(k),
                BytesBody::new(data(size, 9)),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::WriteQuorum { ok: 2, need: 3 })),
            "{k}: {r:?}"
        );
    }
    // The surviving drives still hold exactly the old versions.
    assert_eq!(
        get(&t.store, &b, "small").await.expect("old small"),
        old_small
    );
    assert_eq!(get(&t.store, &b, "big").await.expect("old big"), old_big);
    assert!(matches!(
        t.store.head_object(&b, &key("new")).await,
        Err(StoreError::NoSuchKey)
    ));
    for d in &t.drives[1..3] {
        assert_eq!(
            shard_files(d).len(),
            1,
            "only the old big object's shard remains"
        );
        let tmp = d.join(".tessera.sys/tmp");
        assert_eq!(std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0), 0);
    }
    let r = t.store.delete_object(&b, &key("big")).await;
    assert!(matches!(r, Err(StoreError::WriteQuorum { .. })), "{r:?}");
    assert_eq!(
        get(&t.store, &b, "big").await.expect("delete was undone"),
        old_big
    );
}

#[tokio::test]
async fn foreign_and_unformatted_drives_are_refused_by_name() {
    let a = TestStore::new(2).await;
    let other = TestStore::new(2).await;
    drop(a.store);
    drop(other.store);
    // Swap in a drive from another deployment.
    std::fs::remove_dir_all(&a.drives[1]).expect("remove");
    std::fs::rename(&other.drives[1], &a.drives[1]).expect("move foreign drive in");
    let err = open_with(&a.dir, 2, 65536).await.expect_err("refused");
    assert!(
        err.to_string().contains(&a.drives[1].display().to_string()),
        "{err}"
    );
    // A drive that holds files but no format record.
    std::fs::remove_dir_all(&a.drives[1]).expect("remove");
    std::fs::create_dir_all(&a.drives[1]).expect("mkdir");
    std::fs::write(a.drives[1].join("precious.txt"), b"data").expect("write");
    let err = open_with(&a.dir, 2, 65536).await.expect_err("refused");
    assert!(err.to_string().contains("d2"), "{err}");
    assert!(a.drives[1].join("precious.txt").exists());
}
