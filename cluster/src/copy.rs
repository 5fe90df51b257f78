//! CopyObject: streams the source version through a GET and re-encodes it as a new version
//! of the destination (so versions never share data directories and deleting one can never
//! hurt another). COPY keeps the source's metadata, REPLACE takes the new one; copying an
//! object onto itself requires REPLACE.

use futures::StreamExt as _;

use crate::body::{ByteStream, ObjectBody};
use crate::names::DataId;
use crate::names::{BucketName, ObjectKey};
use crate::object::put::{commit_staged, discard_staged, new_erasure, stage_body, Claims};
use crate::types::{CopyOptions, ObjectInfo};
use crate::{Store, StoreError};

struct CopyBody(ByteStream);

impl futures::Stream for CopyBody {
    type Item = std::io::Result<bytes::Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx)
    }
}

impl ObjectBody for CopyBody {}

pub(crate) async fn copy_object(
    store: &Store,
    src: (&BucketName, &ObjectKey),
    dst: (&BucketName, &ObjectKey),
    opts: CopyOptions,
) -> Result<ObjectInfo, StoreError> {
    if src == dst && opts.replace_meta.is_none() {
        return Err(StoreError::InvalidArgument(
            "copying an object onto itself needs the REPLACE metadata directive".into(),
        ));
    }
    store.require_bucket(dst.0).await?;
    let source = store.get_object(src.0, src.1, None, None).await?;
    let meta = opts
        .replace_meta
        .clone()
        .unwrap_or_else(|| source.info.meta.clone());
    let algorithm = source.info.checksum.as_ref().map(|c| c.algorithm);
    let set = store.set_for(dst.0, dst.1).clone();
    let erasure = new_erasure(&set, &DataId::generate());
    let claims = Claims {
        content_md5: None,
        algorithm,
        expected: None,
    };
    let staged = stage_body(
        &set,
        &erasure,
        CopyBody(source.body),
        &crate::record::part_file(1),
        &claims,
        true,
    )
    .await
    .map_err(|e| match e {
        StoreError::Body(io) => {
            StoreError::Internal(format!("reading the copy source failed: {io}"))
        }
        other => other,
    })?;
    let result = commit_staged(
        store,
        &set,
        dst.0.as_str(),
        dst.1.as_str(),
        &erasure,
        &staged,
        meta,
        &opts.precondition,
    )
    .await;
    if result.is_err() && staged.inline.is_none() {
        discard_staged(&set, &staged.tmp).await;
    }
    result
}
