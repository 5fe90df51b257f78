//! Background healing: the durable missed-write queue survives a restart, the scanner
//! repairs rot and removes orphaned data directories, and a drive wiped while the store runs
//! is re-formatted into its slot and bulk-healed with progress.

mod common;

use std::time::{Duration, Instant};

use cluster::scanner::ScannerConfig;
use cluster::{BucketName, Store};
use common::*;

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

/// Polls `check` every 100 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_clean(store: &Store, b: &BucketName, keys: &[String]) -> bool {
    for k in keys {
        match store.heal_object(b, &key(k)).await {
            Ok(r) if r.was_clean() && r.damaged_blocks == 0 => {}
            _ => return false,
        }
    }
    true
}

fn quiet_scanner() -> ScannerConfig {
    ScannerConfig {
        rate: 0,
        interval: Duration::from_secs(3600),
        ..ScannerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_writes_are_healed_after_a_restart() {
    let t = TestStore::new(4).await;
    let b = bucket("missed");
    t.store.make_bucket(&b).await.expect("bucket");
    let v1 = data(300_000, 1);
    let v2 = data(200_000, 2);
    put(&t.store, &b, "gone", &v1).await;
    set_offline(&t.drives[3], true);
    put(&t.store, &b, "new", &v2).await;
    t.store
        .delete_object(&b, &key("gone"))
        .await
        .expect("delete with 3 of 4 drives");
    // Acknowledged means recorded on disk: no background worker runs in this store.
    assert_eq!(t.store.heal_status().await.queue_pending, 2);
    assert!(!t.store.heal_status().await.redundancy_ok);
    let on_drive3 = shard_files(&t.drives[3]);
    assert_eq!(
        on_drive3.len(),
        1,
        "only the old object's shard: {on_drive3:?}"
    );
    set_offline(&t.drives[3], false);

    // Restart: the in-memory queue is gone, the durable one is not.
    let t = t.reopen().await;
    assert_eq!(t.store.heal_queue().len(), 2, "queue restored from disk");
    t.store.spawn_healing_with(quiet_scanner());
    eventually(Duration::from_secs(20), "missed writes healed", || async {
        t.store.heal_status().await.queue_pending == 0
    })
    .await;
    assert!(t.store.heal_status().await.redundancy_ok);
    let now = shard_files(&t.drives[3]);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, on_drive3, "stale shard removed, new one written");
    // Drive 3 holds the new state: read with two other drives gone.
    set_offline(&t.drives[0], true);
    set_offline(&t.drives[1], true);
    assert_eq!(get(&t.store, &b, "new").await.expect("get"), v2);
    assert!(matches!(
        t.store.head_object(&b, &key("gone")).await,
        Err(cluster::StoreError::NoSuchKey)
    ));
    set_offline(&t.drives[0], false);
    set_offline(&t.drives[1], false);
    // Healed entries are forgotten on disk too.
    let t = t.reopen().await;
    assert_eq!(t.store.heal_queue().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_repairs_rot_and_removes_orphans() {
    let t = TestStore::new(4).await;
    let b = bucket("scan");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut keys = Vec::new();
    for i in 0..6 {
        let k = format!("o{i}");
        put(&t.store, &b, &k, &data(150_000 + i * 1000, i as u64)).await;
        keys.push(k);
    }
    // Rot every shard of drive 0.
    let rotten = shard_files(&t.drives[0]);
    assert_eq!(rotten.len(), keys.len());
    for f in &rotten {
        let mut bytes = std::fs::read(f).expect("read");
        let n = bytes.len();
        bytes[n / 2] ^= 0xA5;
        std::fs::write(f, bytes).expect("write");
    }
    // An old orphan (an aborted write's data) and a young one.
    let orphan = |name: &str| t.drives[1].join("data/scan").join(&name[..2]).join(name);
    let (old, young) = (
        orphan("aa00000000000000000000000000000a"),
        orphan("aa00000000000000000000000000000b"),
    );
    for d in [&old, &young] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::write(d.join("part.1"), b"junk").expect("write");
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::open(&old)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("age the orphan");

    t.store.spawn_healing_with(quiet_scanner());
    t.store.scan_now();
    eventually(Duration::from_secs(30), "a scanner cycle", || async {
        t.store.heal_status().await.scanner.cycles >= 1
    })
    .await;
    let s = t.store.heal_status().await.scanner;
    assert_eq!(s.progress.objects_scanned, keys.len() as u64, "{s:?}");
    assert_eq!(s.progress.objects_healed, keys.len() as u64, "{s:?}");
    assert_eq!(s.progress.objects_failed, 0, "{s:?}");
    assert_eq!(s.orphans_removed, 1, "{s:?}");
    assert_eq!(s.sets_scanned_here, vec![0]);
    assert!(s.last_cycle_seconds.is_some());
    assert!(!old.exists(), "old orphan removed");
    assert!(young.exists(), "a young directory may be a write in flight");
    assert!(all_clean(&t.store, &b, &keys).await);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            get(&t.store, &b, k).await.expect("get"),
            data(150_000 + i * 1000, i as u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_wiped_at_runtime_is_reformatted_and_bulk_healed() {
    let t = TestStore::new(4).await;
    let b = bucket("bulk");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut objs = Vec::new();
    for i in 0..12u64 {
        let k = format!("k{i}");
        let v = data(if i % 3 == 0 { 1000 } else { 250_000 }, i);
        put(&t.store, &b, &k, &v).await;
        objs.push((k, v));
    }
    let deployment = t.store.layout().deployment_id;
    t.store.spawn_healing_with(quiet_scanner());
    std::fs::remove_dir_all(&t.drives[2]).expect("wipe");
    eventually(Duration::from_secs(30), "bulk heal done", || async {
        let s = t.store.heal_status().await;
        s.bulk
            .iter()
            .any(|j| j.state == "done" && j.drive.ends_with("d3"))
    })
    .await;
    let s = t.store.heal_status().await;
    let job = s
        .bulk
        .iter()
        .find(|j| j.drive.ends_with("d3"))
        .expect("job");
    assert_eq!(job.total_objects, objs.len() as u64);
    assert_eq!(job.progress.objects_scanned, objs.len() as u64);
    assert_eq!(job.progress.objects_healed, objs.len() as u64);
    assert_eq!(job.progress.objects_failed, 0);
    assert!(s.redundancy_ok, "{s:?}");
    let fmt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.drives[2].join(".tessera.sys/format.json")).expect("format"),
    )
    .expect("json");
    assert_eq!(fmt["deployment_id"], deployment.as_str());
    assert_eq!(fmt["slot"], 2);
    // The healed drive carries real data: lose two others and read everything.
    set_offline(&t.drives[0], true);
    set_offline(&t.drives[1], true);
    for (k, v) in &objs {
        assert_eq!(&get(&t.store, &b, k).await.expect("get"), v, "{k}");
    }
}

#[tokio::test]
async fn a_foreign_drive_is_never_reformatted() {
    let t = TestStore::new(4).await;
    let other = tempfile::tempdir().expect("tmp");
    let foreign = open_with(&other, 4, 64 * 1024)
        .await
        .expect("other deployment");
    drop(foreign);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Swap a drive of another deployment into slot 1 while running.
    std::fs::remove_dir_all(&t.drives[1]).expect("wipe");
    let other_drive = other.path().join("d2");
    std::fs::rename(&other_drive, &t.drives[1]).expect("swap in");
    let before = std::fs::read(t.drives[1].join(".tessera.sys/format.json")).expect("fmt");
    t.store.spawn_healing_with(quiet_scanner());
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = std::fs::read(t.drives[1].join(".tessera.sys/format.json")).expect("fmt");
    assert_eq!(before, after, "the foreign format is untouched");
    let s = t.store.heal_status().await;
    assert!(s.bulk.is_empty());
    assert_eq!(s.drives[1].state, "offline", "{s:?}");
    assert!(!s.redundancy_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_blank_at_start_is_bulk_healed() {
    let t = TestStore::new(4).await;
    let b = bucket("bulk-start");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut objs = Vec::new();
    for i in 0..5u64 {
        let (k, v) = (format!("s{i}"), data(200_000, 50 + i));
        put(&t.store, &b, &k, &v).await;
        objs.push((k, v));
    }
    // Closed, the drive replaced by an empty one, opened again.
    let TestStore {
        dir, drives, store, ..
    } = t;
    drop(store);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let wiped = drives[0].clone();
    std::fs::remove_dir_all(&wiped).expect("wipe");
    let store = open_with(&dir, 4, 64 * 1024).await.expect("reopens");
    let t = TestStore {
        dir,
        drives,
        store,
        block_size: 64 * 1024,
    };
    t.store.spawn_healing_with(quiet_scanner());
    eventually(Duration::from_secs(20), "bulk heal at start", || async {
        let s = t.store.heal_status().await;
        s.bulk.iter().any(|j| j.state == "done") && s.redundancy_ok
    })
    .await;
    let s = t.store.heal_status().await;
    assert_eq!(
        s.bulk[0].progress.objects_healed,
        objs.len() as u64,
        "{s:?}"
    );
    assert_eq!(shard_files(&wiped).len(), objs.len());
    set_offline(&t.drives[1], true);
    set_offline(&t.drives[2], true);
    for (k, v) in &objs {
        assert_eq!(&get(&t.store, &b, k).await.expect("get"), v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_missed_by_a_drive_is_healed_after_completion() {
    let t = TestStore::new(4).await;
    let b = bucket("mpu-missed");
    t.store.make_bucket(&b).await.expect("bucket");
    let k = key("big");
    let id = t
        .store
        .create_multipart(&b, &k, Default::default(), None)
        .await
        .expect("create");
    let (p1, p2) = (data(5 << 20, 61), data(300_000, 62));
    let mut done = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        // Drive 3 misses part 1 only; it is back for part 2 and the completion.
        if n == 1 {
            set_offline(&t.drives[3], true);
        }
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
        if n == 1 {
            set_offline(&t.drives[3], false);
        }
        done.push(cluster::CompletedPart {
            part_number: n,
            etag: info.etag,
        });
    }
    t.store
        .complete_multipart(&b, &k, &id, &done, None)
        .await
        .expect("complete");
    assert!(t.store.heal_queue().contains("mpu-missed", "big"));
    assert_eq!(t.store.heal_queued().await, 1);
    assert_eq!(t.store.heal_status().await.queue_pending, 0);
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    set_offline(&t.drives[0], true);
    set_offline(&t.drives[1], true);
    assert_eq!(get(&t.store, &b, "big").await.expect("get"), whole);
}
