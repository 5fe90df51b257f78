//! ListMultipartUploads: every upload in progress of a bucket, merged across the drives of
//! each set (listed when a read quorum knows it) and across sets, with prefix, delimiter and
//! key/upload-id markers. Also aborting all of a bucket's uploads when it is deleted. Reads
//! records only; uploads themselves live in `multipart`.

use std::collections::BTreeMap;

use crate::list::common_prefix;
use crate::metastore::{ScanRange, Table};
use crate::multipart::abort_multipart;
use crate::names::{BucketName, ObjectKey, UploadId};
use crate::record::{decode, object_prefix, to_system_time, UploadRecord};
use crate::types::{UploadInfo, UploadsPage, UploadsQuery};
use crate::{Store, StoreError};

/// Every upload of `bucket` under `prefix` that a read quorum of its set knows, sorted by
/// key then upload id.
async fn all_uploads(
    store: &Store,
    b: &BucketName,
    prefix: &str,
) -> Result<Vec<UploadRecord>, StoreError> {
    let range = ScanRange::prefix(&object_prefix(b.as_str(), prefix), usize::MAX);
    let mut out = Vec::new();
    for set in &store.inner.sets {
        let results = set.scan_quorum(Table::Uploads, range.clone()).await?;
        let mut counts: BTreeMap<Vec<u8>, (usize, Vec<u8>)> = BTreeMap::new();
        for (k, v) in results.into_iter().flatten().flatten() {
            counts.entry(k).or_insert((0, v)).0 += 1;
        }
        for (_, (n, v)) in counts {
            if n >= set.read_quorum() {
                if let Ok(u) = decode::<UploadRecord>(&v) {
                    out.push(u);
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    Ok(out)
}

pub(crate) async fn list_uploads(
    store: &Store,
    b: &BucketName,
    q: &UploadsQuery,
) -> Result<UploadsPage, StoreError> {
    let uploads = all_uploads(store, b, &q.prefix).await?;
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut page = UploadsPage::default();
    let max = if q.max_uploads == 0 {
        1000
    } else {
        q.max_uploads
    };
    let mut emitted = 0;
    let mut last_cp: Option<String> = None;
    for u in uploads {
        if let Some(km) = &q.key_marker {
            let after = match &q.upload_id_marker {
                Some(im) => (&u.key, &u.upload_id) > (km, im),
                None => u.key.as_str() > km.as_str(),
            };
            if !after {
                continue;
            }
        }
        let cp = common_prefix(&u.key, &q.prefix, delimiter).map(str::to_owned);
        if let Some(cp) = &cp {
            if last_cp.as_ref() == Some(cp) {
                continue;
            }
            if q.key_marker
                .as_ref()
                .is_some_and(|km| km.starts_with(cp.as_str()))
            {
                continue;
            }
        }
        if emitted == max {
            page.is_truncated = true;
            break;
        }
        emitted += 1;
        match cp {
            Some(cp) => {
                page.next_key_marker = Some(cp.clone());
                page.next_upload_id_marker = None;
                last_cp = Some(cp.clone());
                page.common_prefixes.push(cp);
            }
            None => {
                page.next_key_marker = Some(u.key.clone());
                page.next_upload_id_marker = Some(u.upload_id.clone());
                page.uploads.push(UploadInfo {
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated: to_system_time(u.initiated_ns),
                });
            }
        }
    }
    Ok(page)
}

/// Aborts every upload of a bucket (used when the bucket is deleted).
pub(crate) async fn abort_all_uploads(store: &Store, b: &BucketName) -> Result<(), StoreError> {
    for u in all_uploads(store, b, "").await? {
        let (Ok(k), Ok(id)) = (ObjectKey::new(&u.key), UploadId::new(&u.upload_id)) else {
            continue;
        };
        match abort_multipart(store, b, &k, &id).await {
            Ok(()) | Err(StoreError::NoSuchUpload) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
