//! Multipart uploads: completion without data copy, validation, listing, abort.

mod common;

use cluster::{
    body::collect, BytesBody, ChecksumAlgorithm, CompletedPart, ObjectMeta, PartOptions,
    StoreError, UploadsQuery,
};
use common::*;

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn complete_references_parts_without_copy_and_reads_back() {
    let t = TestStore::new(4).await;
    let b = bucket("mpu");
    t.store.make_bucket(&b).await.expect("bucket");
    let k = key("big/object");
    let meta = ObjectMeta {
        content_type: Some("application/x-test".into()),
        ..Default::default()
    };
    let id = t
        .store
        .create_multipart(&b, &k, meta, Some(ChecksumAlgorithm::Crc32c))
        .await
        .expect("create");
    let p1 = data(5 * MIB, 1);
    let p2 = data(5 * MIB + 3, 2);
    let p3 = data(1000, 3);
    let mut infos = Vec::new();
    // Upload part 2 twice: the second one wins.
    for (n, bytes) in [(1u32, &p1), (2, &p3), (2, &p2), (3, &p3)] {
        let info = t
            .store
            .upload_part(
                &b,
                &k,
                &id,
                n,
                BytesBody::chunked(bytes.clone(), 100_000),
                PartOptions::default(),
            )
            .await
            .expect("part");
        infos.push(info);
    }
    let files_before: usize = t.drives.iter().map(|d| shard_files(d).len()).sum();
    let parts = t
        .store
        .list_parts(&b, &k, &id, 0, 1000)
        .await
        .expect("list parts");
    assert_eq!(
        parts
            .parts
            .iter()
            .map(|p| p.part_number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(parts.parts[1].size, p2.len() as u64);
    let page = t.store.list_parts(&b, &k, &id, 1, 1).await.expect("page");
    assert_eq!(page.parts.len(), 1);
    assert!(page.is_truncated);
    assert_eq!(page.next_part_marker, 2);

    let uploads = t
        .store
        .list_uploads(
            &b,
            &UploadsQuery {
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .expect("uploads");
    assert_eq!(uploads.uploads.len(), 1);
    assert_eq!(uploads.uploads[0].upload_id, id.as_str());

    let done: Vec<CompletedPart> = [(1, &infos[0]), (2, &infos[2]), (3, &infos[3])]
        .iter()
        .map(|(n, i)| CompletedPart {
            part_number: *n,
            etag: format!("\"{}\"", i.etag),
        })
        .collect();
    let info = t
        .store
        .complete_multipart(&b, &k, &id, &done, None)
        .await
        .expect("complete");
    assert!(info.etag.ends_with("-3"), "{}", info.etag);
    assert_eq!(info.parts.len(), 3);
    assert!(info
        .checksum
        .as_ref()
        .is_some_and(|c| c.value.ends_with("-3")));
    // No copy: the same shard files, minus the replaced part 2.
    let files_after: usize = t.drives.iter().map(|d| shard_files(d).len()).sum();
    assert_eq!(files_after, files_before);

    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    whole.extend_from_slice(&p3);
    assert_eq!(get(&t.store, &b, "big/object").await.expect("get"), whole);
    let head = t.store.head_object(&b, &k).await.expect("head");
    assert_eq!(
        head.meta.content_type.as_deref(),
        Some("application/x-test")
    );
    let g = t
        .store
        .get_object(&b, &k, None, Some(2))
        .await
        .expect("part 2");
    assert_eq!(g.range, Some(p1.len() as u64..(p1.len() + p2.len()) as u64));
    assert_eq!(collect(g.body).await.expect("body"), p2);
    let r = t
        .store
        .get_object(
            &b,
            &k,
            Some(cluster::ByteRange::FromTo(
                5 * MIB as u64 - 10,
                5 * MIB as u64 + 9,
            )),
            None,
        )
        .await
        .expect("range across parts");
    assert_eq!(
        collect(r.body).await.expect("body"),
        whole[5 * MIB - 10..5 * MIB + 10]
    );
    assert!(matches!(
        t.store
            .upload_part(
                &b,
                &k,
                &id,
                4,
                BytesBody::new(&b"x"[..]),
                PartOptions::default()
            )
            .await,
        Err(StoreError::NoSuchUpload)
    ));
    // Deleting the object removes the parts' files.
    t.store.delete_object(&b, &k).await.expect("delete");
    assert_eq!(
        t.drives.iter().map(|d| shard_files(d).len()).sum::<usize>(),
        0
    );
}

#[tokio::test]
async fn completion_is_validated() {
    let t = TestStore::new(2).await;
    let b = bucket("mpv");
    t.store.make_bucket(&b).await.expect("bucket");
    let k = key("k");
    let id = t
        .store
        .create_multipart(&b, &k, Default::default(), None)
        .await
        .expect("create");
    let small = t
        .store
        .upload_part(
            &b,
            &k,
            &id,
            1,
            BytesBody::new(data(1000, 1)),
            PartOptions::default(),
        )
        .await
        .expect("part 1");
    let last = t
        .store
        .upload_part(
            &b,
            &k,
            &id,
            2,
            BytesBody::new(data(10, 2)),
            PartOptions::default(),
        )
        .await
        .expect("part 2");
    let cp = |n, e: &str| CompletedPart {
        part_number: n,
        etag: e.to_owned(),
    };
    let r = t
        .store
        .complete_multipart(&b, &k, &id, &[cp(2, &last.etag), cp(1, &small.etag)], None)
        .await;
    assert!(matches!(r, Err(StoreError::InvalidPartOrder)));
    let r = t
        .store
        .complete_multipart(&b, &k, &id, &[cp(1, "deadbeef"), cp(2, &last.etag)], None)
        .await;
    assert!(matches!(r, Err(StoreError::InvalidPart)));
    let r = t
        .store
        .complete_multipart(&b, &k, &id, &[cp(1, &small.etag), cp(3, &last.etag)], None)
        .await;
    assert!(matches!(r, Err(StoreError::InvalidPart)));
    let r = t
        .store
        .complete_multipart(&b, &k, &id, &[cp(1, &small.etag), cp(2, &last.etag)], None)
        .await;
    assert!(matches!(r, Err(StoreError::EntityTooSmall)));
    // A single small part is fine (it is the last).
    let info = t
        .store
        .complete_multipart(&b, &k, &id, &[cp(1, &small.etag)], None)
        .await
        .expect("complete");
    assert_eq!(info.size, 1000);
    assert_eq!(get(&t.store, &b, "k").await.expect("get"), data(1000, 1));
    assert!(matches!(
        t.store
            .complete_multipart(&b, &k, &id, &[cp(1, &small.etag)], None)
            .await,
        Err(StoreError::NoSuchUpload)
    ));
}

#[tokio::test]
async fn abort_removes_upload_and_data() {
    let t = TestStore::new(4).await;
    let b = bucket("mpa");
    t.store.make_bucket(&b).await.expect("bucket");
    let k = key("k");
    let id = t
        .store
        .create_multipart(&b, &k, Default::default(), None)
        .await
        .expect("create");
    t.store
        .upload_part(
            &b,
            &k,
            &id,
            1,
            BytesBody::new(data(200_000, 1)),
            PartOptions::default(),
        )
        .await
        .expect("part");
    assert!(t.drives.iter().all(|d| !shard_files(d).is_empty()));
    t.store.abort_multipart(&b, &k, &id).await.expect("abort");
    assert!(t.drives.iter().all(|d| shard_files(d).is_empty()));
    assert!(matches!(
        t.store.abort_multipart(&b, &k, &id).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        t.store.list_parts(&b, &k, &id, 0, 10).await,
        Err(StoreError::NoSuchUpload)
    ));
    let bogus = cluster::UploadId::new("not-an-upload").err();
    assert!(matches!(bogus, Some(StoreError::NoSuchUpload)));
    let up = t
        .store
        .list_uploads(&b, &UploadsQuery::default())
        .await
        .expect("uploads");
    assert!(up.uploads.is_empty());
}

#[tokio::test]
async fn list_uploads_pages_and_groups() {
    let t = TestStore::new(2).await;
    let b = bucket("mpl");
    t.store.make_bucket(&b).await.expect("bucket");
    let mut ids = Vec::new();
    for k in ["a/1", "a/2", "b", "b", "c"] {
        ids.push((
            k,
            t.store
                .create_multipart(&b, &key(k), Default::default(), None)
                .await
                .expect("create"),
        ));
    }
    let q = UploadsQuery {
        max_uploads: 2,
        ..Default::default()
    };
    let p1 = t.store.list_uploads(&b, &q).await.expect("page 1");
    assert_eq!(p1.uploads.len(), 2);
    assert!(p1.is_truncated);
    let p2 = t
        .store
        .list_uploads(
            &b,
            &UploadsQuery {
                key_marker: p1.next_key_marker.clone(),
                upload_id_marker: p1.next_upload_id_marker.clone(),
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .expect("page 2");
    assert_eq!(p2.uploads.len(), 3);
    assert!(!p2.is_truncated);
    let grouped = t
        .store
        .list_uploads(
            &b,
            &UploadsQuery {
                delimiter: Some("/".into()),
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .expect("grouped");
    assert_eq!(grouped.common_prefixes, ["a/"]);
    assert_eq!(grouped.uploads.len(), 3);
}
