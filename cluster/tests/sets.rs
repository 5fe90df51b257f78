//! Several erasure sets: objects spread over them by a stable hash, and listings merge the
//! sets into one ordered, paginated view.

mod common;

use cluster::ListQuery;
use common::*;

#[tokio::test]
async fn objects_spread_over_sets_and_list_as_one_namespace() {
    let t = TestStore::new(18).await; // 2 sets of 9 drives, 5+4
    let layout = t.store.layout();
    assert_eq!(
        (
            layout.sets,
            layout.drives_per_set,
            layout.data_shards,
            layout.parity_shards
        ),
        (2, 9, 5, 4)
    );
    let b = bucket("multi-set");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut keys: Vec<String> = (0..60)
        .map(|i| format!("dir{}/file{i:03}", i % 3))
        .collect();
    keys.extend((0..10).map(|i| format!("top{i}")));
    for (i, k) in keys.iter().enumerate() {
        put(
            &t.store,
            &b,
            k,
            &data(if i % 7 == 0 { 200_000 } else { 100 }, i as u64),
        )
        .await;
    }
    // Both sets hold objects (each drive's metadata store has some of them).
    let first_set_has_data = t.drives[..9].iter().any(|d| !shard_files(d).is_empty());
    let second_set_has_data = t.drives[9..].iter().any(|d| !shard_files(d).is_empty());
    assert!(first_set_has_data && second_set_has_data);

    keys.sort();
    let mut listed = Vec::new();
    let mut start_after = None;
    loop {
        let page = t
            .store
            .list_objects(
                &b,
                &ListQuery {
                    max_keys: 7,
                    start_after: start_after.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("page");
        listed.extend(page.objects.iter().map(|o| o.key.clone()));
        if !page.is_truncated {
            break;
        }
        start_after = page.next_start_after;
    }
    assert_eq!(listed, keys);

    let grouped = t
        .store
        .list_objects(
            &b,
            &ListQuery {
                delimiter: Some("/".into()),
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .expect("grouped");
    assert_eq!(grouped.common_prefixes, ["dir0/", "dir1/", "dir2/"]);
    assert_eq!(grouped.objects.len(), 10);
    for k in keys.iter().step_by(9) {
        assert!(get(&t.store, &b, k).await.is_ok());
    }
}
