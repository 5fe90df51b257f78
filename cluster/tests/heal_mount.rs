//! The unmounted-mount-point guard on real directories (a real mount is not possible in
//! tests, so "this slot's drive was a mount point" comes from the node's mount record, as
//! it would after a disk was mounted there): a wiped plain directory is still re-formatted
//! into its slot at restart, while a blank directory in a slot recorded as a mount point is
//! refused — left unformatted, reported `unmounted`, reads served by the others — and is
//! taken once a record says it was a plain directory.

mod common;

use cluster::format::mount::{read_record, write_record, RECORD_FILE};
use common::*;

fn format_file(drive: &std::path::Path) -> std::path::PathBuf {
    drive.join(".tessera.sys").join("format.json")
}

#[tokio::test]
async fn a_wiped_plain_directory_is_still_reformatted_at_restart() {
    let t = TestStore::new(4).await;
    let b = bucket("plain");
    t.store.make_bucket(&b).await.expect("bucket");
    put(&t.store, &b, "k", &data(300_000, 1)).await;
    // The open store recorded each drive as a plain directory, on every drive.
    let rec = read_record(&t.drives);
    assert_eq!(rec.len(), 4, "{rec:?}");
    assert!(rec.values().all(|m| !m), "{rec:?}");
    assert!(t.drives[0].join(".tessera.sys").join(RECORD_FILE).is_file());

    std::fs::remove_dir_all(&t.drives[2]).expect("wipe");
    std::fs::create_dir(&t.drives[2]).expect("empty directory");
    let t = t.reopen().await;
    assert!(format_file(&t.drives[2]).is_file(), "re-formatted");
    let status = t.store.heal_status().await;
    assert_eq!(status.drives[2].state, "ok", "{:?}", status.drives);
    assert_eq!(
        get(&t.store, &b, "k").await.expect("read"),
        data(300_000, 1)
    );
}

#[tokio::test]
async fn a_blank_directory_where_a_disk_was_mounted_is_refused_and_reported() {
    let t = TestStore::new(4).await;
    let b = bucket("mounted");
    t.store.make_bucket(&b).await.expect("bucket");
    put(&t.store, &b, "k", &data(300_000, 2)).await;
    // History: drive 3's directory was the mount point of its own disk.
    let mut rec = read_record(&t.drives);
    let slot = rec.keys().nth(2).cloned().expect("a record per drive");
    assert!(slot.ends_with("d3"), "{rec:?}");
    rec.insert(slot.clone(), true);
    for d in &t.drives {
        write_record(d, &rec).expect("write record");
    }
    // The disk failed to mount: the mount point shows as an empty directory.
    std::fs::remove_dir_all(&t.drives[2]).expect("wipe");
    std::fs::create_dir(&t.drives[2]).expect("empty mount point");
    let t = t.reopen().await;
    assert!(!format_file(&t.drives[2]).exists(), "must not be formatted");
    assert_eq!(
        std::fs::read_dir(&t.drives[2]).expect("dir").count(),
        0,
        "nothing written into the mount point"
    );
    let status = t.store.heal_status().await;
    assert_eq!(status.drives[2].state, "unmounted", "{:?}", status.drives);
    assert!(!status.redundancy_ok);
    // The others serve reads; the record still says the slot was a mount point.
    assert_eq!(
        get(&t.store, &b, "k").await.expect("read"),
        data(300_000, 2)
    );
    assert_eq!(read_record(&t.drives).get(&slot), Some(&true));

    // The operator says it was a plain directory after all (as the override would): the
    // next start formats it.
    rec.insert(slot.clone(), false);
    for d in &t.drives {
        write_record(d, &rec).expect("write record");
    }
    let t = t.reopen().await;
    assert!(format_file(&t.drives[2]).is_file(), "formatted now");
    let status = t.store.heal_status().await;
    assert_eq!(status.drives[2].state, "ok", "{:?}", status.drives);
}

#[tokio::test]
async fn a_disk_unmounted_while_running_is_taken_offline_not_formatted() {
    let t = TestStore::new(4).await;
    let b = bucket("runtime");
    t.store.make_bucket(&b).await.expect("bucket");
    put(&t.store, &b, "k", &data(200_000, 3)).await;
    let mut rec = read_record(&t.drives);
    let slot = rec.keys().nth(1).cloned().expect("a record per drive");
    rec.insert(slot, true);
    for d in &t.drives {
        write_record(d, &rec).expect("write record");
    }
    t.store.spawn_healing();
    std::fs::remove_dir_all(&t.drives[1]).expect("wipe");
    std::fs::create_dir(&t.drives[1]).expect("empty mount point");
    // The drive watcher looks every few seconds; it must refuse, not format.
    let started = std::time::Instant::now();
    loop {
        let status = t.store.heal_status().await;
        if status.drives[1].state == "unmounted" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(40),
            "never reported unmounted: {:?}",
            status.drives
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // One more watcher round (every 10 s): still not formatted, reads go on.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert!(!format_file(&t.drives[1]).exists(), "must not be formatted");
    assert_eq!(t.store.heal_status().await.drives[1].state, "unmounted");
    assert_eq!(
        get(&t.store, &b, "k").await.expect("read"),
        data(200_000, 3)
    );
}
