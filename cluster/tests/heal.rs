//! Healing: missing shard files, rotten bytes, a wiped drive — reads survive, heal rebuilds,
//! and a second pass finds every shard intact.

mod common;

use cluster::{BucketName, Store};
use common::*;

/// Objects of mixed sizes (inline, one block, several blocks, multipart).
async fn fill(store: &Store, b: &BucketName) -> Vec<(String, Vec<u8>)> {
    let mut objs = Vec::new();
    for (i, size) in [0usize, 5000, 100_000, 200_000, 1_000_000]
        .into_iter()
        .enumerate()
    {
        let k = format!("obj{i}");
        let bytes = data(size, i as u64 + 40);
        put(store, b, &k, &bytes).await;
        objs.push((k, bytes));
    }
    objs
}

async fn check_all(store: &Store, b: &BucketName, objs: &[(String, Vec<u8>)]) {
    for (k, bytes) in objs {
        assert_eq!(&get(store, b, k).await.expect("get"), bytes, "{k}");
    }
}

async fn heal_all_and_verify_clean(
    store: &Store,
    b: &BucketName,
    objs: &[(String, Vec<u8>)],
) -> usize {
    let mut healed = 0;
    for (k, _) in objs {
        let r = store.heal_object(b, &key(k)).await.expect("heal");
        healed += r.healed_drives.len();
        assert_eq!(r.damaged_drives.len(), r.healed_drives.len(), "{k}: {r:?}");
    }
    for (k, _) in objs {
        let r = store.heal_object(b, &key(k)).await.expect("second heal");
        assert!(
            r.was_clean() && r.damaged_blocks == 0,
            "{k} still damaged: {r:?}"
        );
    }
    healed
}

#[tokio::test]
async fn deleted_shard_files_are_rebuilt() {
    let t = TestStore::new(4).await;
    let b = bucket("heal-del");
    t.store.make_bucket(&b).await.expect("bucket");
    let objs = fill(&t.store, &b).await;
    let before = shard_files(&t.drives[1]);
    assert!(!before.is_empty());
    for f in &before {
        std::fs::remove_file(f).expect("remove shard");
    }
    check_all(&t.store, &b, &objs).await;
    let healed = heal_all_and_verify_clean(&t.store, &b, &objs).await;
    assert!(healed >= before.len());
    assert_eq!(shard_files(&t.drives[1]).len(), before.len());
    // The rebuilt shards are right: lose two other drives' shards and read again.
    for d in [&t.drives[0], &t.drives[3]] {
        for f in shard_files(d) {
            std::fs::remove_file(f).expect("remove shard");
        }
    }
    check_all(&t.store, &b, &objs).await;
}

#[tokio::test]
async fn rotten_bytes_are_detected_served_around_and_healed() {
    let t = TestStore::new(4).await;
    let b = bucket("heal-rot");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut objs = fill(&t.store, &b).await;
    // More multi-block objects: each has a random shard rotation, so some of them keep data
    // shards on the rotten drives and their reads must notice (all missing has odds 4^-10).
    for i in 0..8 {
        let (k, v) = (format!("more{i}"), data(150_000, 90 + i));
        put(&t.store, &b, &k, &v).await;
        objs.push((k, v));
    }
    let mut flipped = 0;
    for d in &t.drives[..2] {
        for f in shard_files(d) {
            let mut bytes = std::fs::read(&f).expect("read shard");
            let n = bytes.len();
            for pos in [40, n / 2, n - 1] {
                bytes[pos] ^= 0x5A;
            }
            std::fs::write(&f, bytes).expect("write shard");
            flipped += 1;
        }
    }
    assert!(flipped > 0);
    // Two rotten drives of 2+2: every read still returns exact bytes, and queues healing.
    check_all(&t.store, &b, &objs).await;
    let queued = t.store.heal_queue().len();
    assert!(queued >= 1);
    assert_eq!(t.store.heal_queued().await, queued);
    assert!(t.store.heal_queue().is_empty());
    heal_all_and_verify_clean(&t.store, &b, &objs).await;
    for d in [&t.drives[2], &t.drives[3]] {
        for f in shard_files(d) {
            std::fs::remove_file(f).expect("remove shard");
        }
    }
    check_all(&t.store, &b, &objs).await;
}

#[tokio::test]
async fn a_wiped_drive_is_formatted_fresh_and_healed() {
    let t = TestStore::new(4).await;
    let b = bucket("heal-wipe");
    t.store.make_bucket(&b).await.expect("bucket");
    t.store
        .make_bucket(&bucket("empty-one"))
        .await
        .expect("bucket");
    let mut objs = fill(&t.store, &b).await;
    // A multipart object too.
    let k = key("multi");
    let id = t
        .store
        .create_multipart(&b, &k, Default::default(), None)
        .await
        .expect("create");
    let p1 = data(5 << 20, 77);
    let p2 = data(70_000, 78);
    let mut done = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        let info = t
            .store
            .upload_part(
                &b,
                &k,
                &id,
                n,
                cluster::BytesBody::new(p.clone()),
                Default::default(),
            )
            .await
            .expect("part");
        done.push(cluster::CompletedPart {
            part_number: n,
            etag: info.etag,
        });
    }
    t.store
        .complete_multipart(&b, &k, &id, &done, None)
        .await
        .expect("complete");
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    objs.push(("multi".to_string(), whole));
    let deployment = t.store.layout().deployment_id;
    std::fs::remove_dir_all(&t.drives[2]).expect("wipe");
    // While open, the wiped drive counts as offline.
    check_all(&t.store, &b, &objs).await;
    let t = t.reopen().await;
    assert_eq!(t.store.layout().deployment_id, deployment);
    // The fresh drive got the bucket records at once (empty buckets survive a swap).
    let fresh = std::fs::read_dir(t.drives[2].join("data"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(fresh, 0);
    check_all(&t.store, &b, &objs).await;
    let healed = heal_all_and_verify_clean(&t.store, &b, &objs).await;
    assert_eq!(healed, objs.len());
    let listed = t
        .store
        .list_objects(
            &b,
            &cluster::ListQuery {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.objects.len(), objs.len());
    // The healed drive now carries real data and every bucket: lose two others and read.
    let names: Vec<String> = t
        .store
        .list_buckets()
        .await
        .expect("buckets")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["empty-one", "heal-wipe"]);
    std::fs::remove_dir_all(&t.drives[0]).expect("wipe");
    std::fs::remove_dir_all(&t.drives[1]).expect("wipe");
    check_all(&t.store, &b, &objs).await;
    let names: Vec<String> = t
        .store
        .list_buckets()
        .await
        .expect("buckets")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["empty-one", "heal-wipe"]);
}

/// Takes a drive offline (its format record vanishes) and back, without restarting.
fn set_offline(drive: &std::path::Path, offline: bool) {
    let (fmt, hidden) = (
        drive.join(".tessera.sys/format.json"),
        drive.join(".tessera.sys/format.json.away"),
    );
    if offline {
        std::fs::rename(fmt, hidden).expect("hide format");
    } else {
        std::fs::rename(hidden, fmt).expect("restore format");
    }
}

#[tokio::test]
async fn a_drive_that_missed_writes_and_deletes_is_brought_up_to_date() {
    let t = TestStore::new(4).await;
    let b = bucket("heal-missed");
    t.store.make_bucket(&b).await.expect("bucket");
    let v1 = data(300_000, 1);
    let v2 = data(250_000, 2);
    put(&t.store, &b, "over", &v1).await;
    put(&t.store, &b, "gone", &v1).await;
    set_offline(&t.drives[3], true);
    put(&t.store, &b, "over", &v2).await;
    t.store
        .delete_object(&b, &key("gone"))
        .await
        .expect("delete with 3 of 4 drives");
    assert!(t.store.heal_queue().contains("heal-missed", "over"));
    assert!(t.store.heal_queue().contains("heal-missed", "gone"));
    set_offline(&t.drives[3], false);
    // The stale drive is outvoted.
    assert_eq!(get(&t.store, &b, "over").await.expect("get"), v2);
    assert!(matches!(
        t.store.head_object(&b, &key("gone")).await,
        Err(cluster::StoreError::NoSuchKey)
    ));
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
    assert_eq!(
        listed
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["over"]
    );
    assert_eq!(t.store.heal_queued().await, 2);
    assert_eq!(
        shard_files(&t.drives[3]).len(),
        1,
        "stale data removed, new data written"
    );
    // Drive 3 now holds v2: read it with two other drives gone.
    set_offline(&t.drives[0], true);
    set_offline(&t.drives[1], true);
    assert_eq!(get(&t.store, &b, "over").await.expect("get"), v2);
    assert!(matches!(
        t.store.head_object(&b, &key("gone")).await,
        Err(cluster::StoreError::NoSuchKey)
    ));
}
