//! The value types of the engine's public API: what callers pass in (options, queries,
//! ranges) and get back (object info, pages). Plain data; no I/O, no HTTP or XML shapes.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::SystemTime;

use crate::body::ByteStream;
use crate::checksum::{Checksum, ChecksumAlgorithm};

/// Content headers and user metadata stored with an object.
#[derive(Default, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
    pub storage_class: Option<String>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub user: BTreeMap<String, String>,
}

/// What a HEAD (or a listing) knows about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Unquoted: `hex` or `hex-N` for multipart.
    pub etag: String,
    pub last_modified: SystemTime,
    pub meta: ObjectMeta,
    pub checksum: Option<Checksum>,
    /// Empty unless the object was completed from a multipart upload.
    pub parts: Vec<PartSummary>,
}

/// One part of a multipart object, in object order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartSummary {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<Checksum>,
}

/// A byte range as requested (not yet resolved against the object size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`, both inclusive.
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves against an object of `size` bytes: `None` when unsatisfiable. A `FromTo` whose
    /// end lies past the object is clipped, as S3 does.
    pub fn resolve(&self, size: u64) -> Option<Range<u64>> {
        match *self {
            ByteRange::FromTo(a, b) if a <= b && a < size => {
                Some(a..(b.saturating_add(1)).min(size))
            }
            ByteRange::From(a) if a < size => Some(a..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// A GET's answer: the object's info, the resolved range (for Content-Range) and the bytes.
/// An error inside `body` (e.g. quorum lost mid-read) arrives as an `io::Error`, never as
/// wrong bytes.
pub struct GetObject {
    pub info: ObjectInfo,
    pub range: Option<Range<u64>>,
    pub body: ByteStream,
}

impl std::fmt::Debug for GetObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetObject")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// A condition checked atomically with the write, under the key's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WritePrecondition {
    /// `If-None-Match: *`: only if the key does not exist.
    IfNoneMatchAny,
    /// `If-Match: etag` (unquoted): only if the current version has this ETag.
    IfMatch(String),
}

/// Options of a PUT. The engine computes MD5 (ETag) and the requested checksum while it
/// streams; a mismatch with `content_md5` is `BadDigest`, with `expected_checksum` or a
/// trailing checksum `ChecksumMismatch`; nothing is stored then.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub meta: ObjectMeta,
    pub precondition: Option<WritePrecondition>,
    pub content_md5: Option<[u8; 16]>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub expected_checksum: Option<Checksum>,
}

/// Options of an UploadPart.
#[derive(Clone, Debug, Default)]
pub struct PartOptions {
    pub content_md5: Option<[u8; 16]>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub expected_checksum: Option<Checksum>,
}

/// Options of a CopyObject.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// `None` = COPY directive (keep the source's metadata); `Some` = REPLACE.
    pub replace_meta: Option<ObjectMeta>,
    pub precondition: Option<WritePrecondition>,
}

/// ListObjects(V2) parameters.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive; also serves as marker / continuation token.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned (pass as `start_after` for the next page).
    pub next_start_after: Option<String>,
}

/// A part as named by CompleteMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Unquoted.
    pub etag: String,
}

/// A stored part of an upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: SystemTime,
    pub checksum: Option<Checksum>,
}

/// One page of ListParts.
#[derive(Clone, Debug, Default)]
pub struct PartsPage {
    pub parts: Vec<PartInfo>,
    pub is_truncated: bool,
    pub next_part_marker: u32,
}

/// ListMultipartUploads parameters.
#[derive(Clone, Debug, Default)]
pub struct UploadsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

/// One multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// One page of ListMultipartUploads.
#[derive(Clone, Debug, Default)]
pub struct UploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// A bucket as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
}

/// The shape of the deployment, for banners and the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutSummary {
    pub deployment_id: String,
    pub sets: usize,
    pub drives_per_set: usize,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub block_size: usize,
    /// Every drive endpoint, set by set.
    pub drives: Vec<String>,
}

/// What [`crate::Store::heal_object`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    /// Drives (endpoints) whose copy was missing, stale or damaged before the heal.
    pub damaged_drives: Vec<String>,
    /// Drives whose shards and record were rewritten.
    pub healed_drives: Vec<String>,
    /// Shard blocks found missing or rotten, summed over drives.
    pub damaged_blocks: u64,
}

impl HealReport {
    pub fn was_clean(&self) -> bool {
        self.damaged_drives.is_empty()
    }
}
