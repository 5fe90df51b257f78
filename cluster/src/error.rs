//! The engine's error types: `StoreError` is what callers of [`crate::Store`] see (the server
//! maps each variant onto an S3 code in one table), `DriveError` is what one drive reports.
//! This module must never know HTTP status codes or S3 XML.

use std::path::PathBuf;

/// Errors of the storage engine's public API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the bucket already exists")]
    BucketExists,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("the key does not exist")]
    NoSuchKey,
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error("a listed part was not found or its ETag does not match")]
    InvalidPart,
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("a part other than the last is smaller than the minimum part size")]
    EntityTooSmall,
    #[error("the part number is out of range for this object")]
    InvalidPartNumber,
    #[error("a write precondition failed")]
    PreconditionFailed,
    #[error("the Content-MD5 does not match the body")]
    BadDigest,
    #[error("the {algorithm} checksum does not match the body")]
    ChecksumMismatch { algorithm: String },
    #[error("invalid checksum argument: {0}")]
    InvalidChecksum(String),
    #[error("the range is not satisfiable for an object of {size} bytes")]
    InvalidRange { size: u64 },
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("write quorum not reached: {ok} drives committed, {need} needed")]
    WriteQuorum { ok: usize, need: usize },
    #[error("read quorum not reached: {ok} drives answered consistently, {need} needed")]
    ReadQuorum { ok: usize, need: usize },
    /// The key's write lock was not granted by a majority of nodes in time (contention
    /// outlasting the acquire timeout, or too few nodes reachable): nothing was written;
    /// the client should retry later.
    #[error("lock not acquired: {granted} of the {need} nodes needed granted it in time")]
    LockTimeout { granted: usize, need: usize },
    /// A write's key lock was lost before its commit (its lease was not refreshed on a
    /// majority of nodes in time): nothing was committed; the client should retry later.
    #[error(
        "lock lost before the commit: the lease on {resource} was not kept on a majority of nodes"
    )]
    LockLost { resource: String },
    #[error("the request body failed: {0}")]
    Body(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("drive {drive} refused: {reason}")]
    DriveRefused { drive: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
    /// A write reached fewer than `need` drives for sure, but `unknown` more drives took the
    /// call and never answered (a timeout, a cut connection): it may have taken effect on a
    /// quorum. Never a refusal (`WriteQuorum`): the client must not assume it did not happen.
    #[error("write outcome unknown: {ok} drives wrote, {unknown} did not answer, {need} needed")]
    WriteOutcomeUnknown {
        ok: usize,
        unknown: usize,
        need: usize,
    },
}

impl StoreError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        StoreError::Internal(e.to_string())
    }

    /// A write that only `ok` drives confirmed, fewer than `need`: outcome-unknown when the
    /// `unknown` drives that took the call and never answered could complete the quorum
    /// (it may stand once they answer), else a refusal.
    pub(crate) fn below_write_quorum(ok: usize, unknown: usize, need: usize) -> Self {
        if ok + unknown >= need {
            StoreError::WriteOutcomeUnknown { ok, unknown, need }
        } else {
            StoreError::WriteQuorum { ok, need }
        }
    }
}

/// What one drive reports. The object layer turns these into quorum decisions; they never
/// reach a client directly.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("drive is offline: {0}")]
    Offline(String),
    /// The drive's node took the call and did not answer (timeout, cut connection): what the
    /// call changed is unknown. Counts as offline for reads.
    #[error("no answer from the drive (the call may have taken effect): {0}")]
    NoAnswer(String),
    #[error("not found")]
    NotFound,
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store error: {0}")]
    Meta(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid request to drive: {0}")]
    Invalid(String),
}

impl DriveError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            return DriveError::NotFound;
        }
        DriveError::Io {
            path: path.into(),
            source,
        }
    }
}
