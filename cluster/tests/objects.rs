//! Behaviour of buckets and whole-object operations on real temporary drives.

mod common;

use cluster::{
    body::collect, ByteRange, BytesBody, ListQuery, PutOptions, StoreError, WritePrecondition,
};
use common::*;

#[tokio::test]
async fn put_get_roundtrip_for_inline_and_streamed_sizes() {
    let t = TestStore::new(4).await;
    let b = bucket("photos");
    t.store.make_bucket(&b).await.expect("bucket");
    let bs = t.block_size;
    for (i, size) in [
        0usize,
        1,
        100,
        128 * 1024,
        128 * 1024 + 1,
        bs - 1,
        bs,
        bs + 1,
        5 * bs + 7,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = data(size, i as u64);
        let k = format!("obj-{size}");
        let info = put(&t.store, &b, &k, &bytes).await;
        assert_eq!(info.size, size as u64);
        assert_eq!(info.etag, hex_md5(&bytes));
        assert_eq!(
            get(&t.store, &b, &k).await.expect("get"),
            bytes,
            "size {size}"
        );
        let head = t.store.head_object(&b, &key(&k)).await.expect("head");
        assert_eq!(head.etag, info.etag);
    }
}

fn hex_md5(b: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(b))
}

#[tokio::test]
async fn range_reads_return_exact_slices() {
    let t = TestStore::new(4).await;
    let b = bucket("ranges");
    t.store.make_bucket(&b).await.expect("bucket");
    let bytes = data(3 * t.block_size + 1234, 7);
    put(&t.store, &b, "big", &bytes).await;
    let small = data(5000, 8);
    put(&t.store, &b, "small", &small).await;
    let n = bytes.len() as u64;
    let bs = t.block_size as u64;
    for (r, want) in [
        (ByteRange::FromTo(0, 0), 0..1),
        (ByteRange::FromTo(bs - 1, bs), (bs - 1)..(bs + 1)),
        (ByteRange::FromTo(10, n + 100), 10..n),
        (ByteRange::From(2 * bs + 5), (2 * bs + 5)..n),
        (ByteRange::Suffix(100), (n - 100)..n),
        (ByteRange::Suffix(n + 100), 0..n),
    ] {
        let g = t
            .store
            .get_object(&b, &key("big"), Some(r), None)
            .await
            .expect("range get");
        assert_eq!(g.range, Some(want.clone()));
        let got = collect(g.body).await.expect("body");
        assert_eq!(got, bytes[want.start as usize..want.end as usize], "{r:?}");
    }
    let g = t
        .store
        .get_object(&b, &key("small"), Some(ByteRange::FromTo(10, 19)), None)
        .await
        .expect("get");
    assert_eq!(collect(g.body).await.expect("body"), small[10..20]);
    let err = t
        .store
        .get_object(&b, &key("big"), Some(ByteRange::From(n)), None)
        .await
        .err();
    assert!(matches!(err, Some(StoreError::InvalidRange { size }) if size == n));
}

#[tokio::test]
async fn buckets_create_list_delete_rules() {
    let t = TestStore::new(2).await;
    let a = bucket("alpha");
    let z = bucket("zulu");
    t.store.make_bucket(&z).await.expect("zulu");
    t.store.make_bucket(&a).await.expect("alpha");
    assert!(matches!(
        t.store.make_bucket(&a).await,
        Err(StoreError::BucketExists)
    ));
    let names: Vec<_> = t
        .store
        .list_buckets()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["alpha", "zulu"]);
    put(&t.store, &a, "k", b"v").await;
    assert!(matches!(
        t.store.delete_bucket(&a).await,
        Err(StoreError::BucketNotEmpty)
    ));
    t.store.delete_object(&a, &key("k")).await.expect("delete");
    t.store.delete_bucket(&a).await.expect("delete bucket");
    assert!(matches!(
        t.store.bucket_info(&a).await,
        Err(StoreError::NoSuchBucket)
    ));
    let missing = bucket("missing");
    let err = t
        .store
        .put_object(
            &missing,
            &key("k"),
            BytesBody::new(&b"x"[..]),
            PutOptions::default(),
        )
        .await
        .err();
    assert!(matches!(err, Some(StoreError::NoSuchBucket)));
}

#[tokio::test]
async fn overwrite_and_delete_leave_no_old_shards() {
    let t = TestStore::new(4).await;
    let b = bucket("over");
    t.store.make_bucket(&b).await.expect("bucket");
    let v1 = data(300_000, 1);
    let v2 = data(400_000, 2);
    put(&t.store, &b, "k", &v1).await;
    put(&t.store, &b, "k", &v2).await;
    assert_eq!(get(&t.store, &b, "k").await.expect("get"), v2);
    for d in &t.drives {
        assert_eq!(
            shard_files(d).len(),
            1,
            "one shard file per drive on {}",
            d.display()
        );
    }
    t.store.delete_object(&b, &key("k")).await.expect("delete");
    assert!(matches!(
        t.store.head_object(&b, &key("k")).await,
        Err(StoreError::NoSuchKey)
    ));
    for d in &t.drives {
        assert!(shard_files(d).is_empty());
    }
    t.store
        .delete_object(&b, &key("k"))
        .await
        .expect("deleting an absent key is fine");
}

#[tokio::test]
async fn preconditions_are_checked_at_commit() {
    let t = TestStore::new(4).await;
    let b = bucket("pre");
    t.store.make_bucket(&b).await.expect("bucket");
    let opts = |p| PutOptions {
        precondition: Some(p),
        ..Default::default()
    };
    let first = t
        .store
        .put_object(
            &b,
            &key("k"),
            BytesBody::new(&b"one"[..]),
            opts(WritePrecondition::IfNoneMatchAny),
        )
        .await
        .expect("first create");
    let again = t
        .store
        .put_object(
            &b,
            &key("k"),
            BytesBody::new(&b"two"[..]),
            opts(WritePrecondition::IfNoneMatchAny),
        )
        .await;
    assert!(matches!(again, Err(StoreError::PreconditionFailed)));
    let wrong = t
        .store
        .put_object(
            &b,
            &key("k"),
            BytesBody::new(&b"two"[..]),
            opts(WritePrecondition::IfMatch("00".into())),
        )
        .await;
    assert!(matches!(wrong, Err(StoreError::PreconditionFailed)));
    t.store
        .put_object(
            &b,
            &key("k"),
            BytesBody::new(&b"two"[..]),
            opts(WritePrecondition::IfMatch(first.etag)),
        )
        .await
        .expect("matching etag");
    assert_eq!(get(&t.store, &b, "k").await.expect("get"), b"two");
}

#[tokio::test]
async fn listing_with_prefix_delimiter_and_pages() {
    let t = TestStore::new(4).await;
    let b = bucket("list");
    t.store.make_bucket(&b).await.expect("bucket");
    let keys = ["a", "a/b", "a/c/d", "b/x", "b/y", "c", "c/z/1", "d"];
    for k in keys {
        put(&t.store, &b, k, k.as_bytes()).await;
    }
    let all = t
        .store
        .list_objects(
            &b,
            &ListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        all.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        keys
    );
    assert!(!all.is_truncated);

    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let top = t.store.list_objects(&b, &q).await.expect("list");
    assert_eq!(
        top.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["a", "c", "d"]
    );
    assert_eq!(top.common_prefixes, ["a/", "b/", "c/"]);

    // Page through with max_keys 2 and the delimiter: every entry exactly once.
    let mut seen = Vec::new();
    let mut start_after = None;
    loop {
        let page = t
            .store
            .list_objects(
                &b,
                &ListQuery {
                    max_keys: 2,
                    start_after: start_after.clone(),
                    ..q.clone()
                },
            )
            .await
            .expect("page");
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        seen.extend(page.common_prefixes.iter().cloned());
        if !page.is_truncated {
            break;
        }
        start_after = page.next_start_after.clone();
    }
    seen.sort();
    assert_eq!(seen, ["a", "a/", "b/", "c", "c/", "d"]);

    let sub = t
        .store
        .list_objects(
            &b,
            &ListQuery {
                prefix: "a/".into(),
                ..q.clone()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        sub.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["a/b"]
    );
    assert_eq!(sub.common_prefixes, ["a/c/"]);
}

#[tokio::test]
async fn odd_keys_are_stored_safely_and_never_become_paths() {
    let t = TestStore::new(2).await;
    let b = bucket("odd");
    t.store.make_bucket(&b).await.expect("bucket");
    let long = "k".repeat(1024);
    for k in [
        "../../escape",
        "a//b",
        "/abs",
        "ctl\u{1}\u{7f}",
        "..",
        ".",
        long.as_str(),
    ] {
        put(&t.store, &b, k, k.as_bytes()).await;
        assert_eq!(get(&t.store, &b, k).await.expect("get"), k.as_bytes());
    }
    assert!(t
        .dir
        .path()
        .parent()
        .map(|p| !p.join("escape").exists())
        .unwrap_or(true));
    assert!(cluster::ObjectKey::new("nul\0").is_err());
    assert!(cluster::ObjectKey::new(&"k".repeat(1025)).is_err());
    assert!(cluster::BucketName::new("../etc").is_err());
}

#[tokio::test]
async fn random_ranges_match_the_bytes_for_simple_and_multipart_objects() {
    let t = TestStore::new(3).await; // 2+1
    let b = bucket("rand-ranges");
    t.store.make_bucket(&b).await.expect("bucket");
    let simple = data(5 * t.block_size + 321, 11);
    put(&t.store, &b, "simple", &simple).await;
    let k = key("multi");
    let id = t
        .store
        .create_multipart(&b, &k, Default::default(), None)
        .await
        .expect("create");
    let p1 = data(5 << 20, 12);
    let p2 = data(3 * t.block_size + 5, 13);
    let mut parts = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        let info = t
            .store
            .upload_part(
                &b,
                &k,
                &id,
                n,
                BytesBody::new(p.clone()),
                Default::default(),
            )
            .await
            .expect("part");
        parts.push(cluster::CompletedPart {
            part_number: n,
            etag: info.etag,
        });
    }
    t.store
        .complete_multipart(&b, &k, &id, &parts, None)
        .await
        .expect("complete");
    let mut multi = p1.clone();
    multi.extend_from_slice(&p2);

    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for (name, bytes) in [("simple", &simple), ("multi", &multi)] {
        let n = bytes.len() as u64;
        for _ in 0..40 {
            let a = next(n);
            let len = match next(3) {
                0 => next(10) + 1,
                1 => next(t.block_size as u64 * 2) + 1,
                _ => next(n - a) + 1,
            };
            let e = (a + len - 1).min(n - 1);
            let g = t
                .store
                .get_object(&b, &key(name), Some(ByteRange::FromTo(a, e)), None)
                .await
                .expect("range get");
            let got = collect(g.body).await.expect("body");
            assert_eq!(got, bytes[a as usize..=e as usize], "{name} {a}-{e}");
        }
    }
}

#[tokio::test]
async fn a_single_drive_deployment_works_without_parity() {
    let t = TestStore::new(1).await;
    let l = t.store.layout();
    assert_eq!(
        (l.sets, l.drives_per_set, l.data_shards, l.parity_shards),
        (1, 1, 1, 0)
    );
    let b = bucket("single");
    t.store.make_bucket(&b).await.expect("bucket");
    for (i, n) in [0usize, 10, 200_000].into_iter().enumerate() {
        let v = data(n, i as u64);
        put(&t.store, &b, &format!("k{i}"), &v).await;
        assert_eq!(get(&t.store, &b, &format!("k{i}")).await.expect("get"), v);
    }
    let r = t.store.heal_object(&b, &key("k2")).await.expect("heal");
    assert!(r.was_clean());
    // With no parity, rot cannot be repaired, but it is detected, never served.
    for f in shard_files(&t.drives[0]) {
        let mut bytes = std::fs::read(&f).expect("read");
        bytes[100] ^= 1;
        std::fs::write(&f, bytes).expect("write");
    }
    assert!(get(&t.store, &b, "k2").await.is_err());
}
