//! Multipart uploads: create, upload part, list parts, complete (no data copy: parts are
//! written straight into the upload's data directory, and the completed object's record
//! references them), abort, list uploads.

use crate::body::ObjectBody;
use crate::checksum::ChecksumAlgorithm;
use crate::names::{BucketName, ObjectKey, UploadId};
use crate::types::*;
use crate::{Store, StoreError};

fn todo_err() -> StoreError {
    StoreError::Internal("multipart uploads are not implemented yet".into())
}

pub(crate) async fn create_multipart(
    _s: &Store,
    _b: &BucketName,
    _k: &ObjectKey,
    _meta: ObjectMeta,
    _alg: Option<ChecksumAlgorithm>,
) -> Result<UploadId, StoreError> {
    Err(todo_err())
}

pub(crate) async fn upload_part(
    _s: &Store,
    _b: &BucketName,
    _k: &ObjectKey,
    _id: &UploadId,
    _n: u32,
    _body: impl ObjectBody + 'static,
    _opts: PartOptions,
) -> Result<PartInfo, StoreError> {
    Err(todo_err())
}

pub(crate) async fn list_parts(
    _s: &Store,
    _b: &BucketName,
    _k: &ObjectKey,
    _id: &UploadId,
    _marker: u32,
    _max: usize,
) -> Result<PartsPage, StoreError> {
    Err(todo_err())
}

pub(crate) async fn complete_multipart(
    _s: &Store,
    _b: &BucketName,
    _k: &ObjectKey,
    _id: &UploadId,
    _parts: &[CompletedPart],
    _p: Option<WritePrecondition>,
) -> Result<ObjectInfo, StoreError> {
    Err(todo_err())
}

pub(crate) async fn abort_multipart(_s: &Store, _b: &BucketName, _k: &ObjectKey, _id: &UploadId) -> Result<(), StoreError> {
    Err(todo_err())
}

pub(crate) async fn list_uploads(_s: &Store, _b: &BucketName, _q: &UploadsQuery) -> Result<UploadsPage, StoreError> {
    Ok(UploadsPage::default())
}

pub(crate) async fn abort_all_uploads(_s: &Store, _b: &BucketName) -> Result<(), StoreError> {
    Ok(())
}
