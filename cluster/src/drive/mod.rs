//! The `Drive` interface: everything the object layer asks of one drive — staged shard
//! writes into tmp/, an atomic commit (data moved into place, then one metadata
//! transaction), ranged shard reads, metadata get/scan/apply, cleanup. Object-safe and async,
//! so a remote drive can implement it over RPC; the object layer never knows which it holds.
//! Drives never decide quorum and never interpret object keys.

pub mod liveness;
pub mod local;
pub mod offline;
pub mod remote;

use async_trait::async_trait;
use bytes::Bytes;

use crate::format::FormatRecord;
use crate::metastore::{Entries, MetaOp, ScanRange, Table};
use crate::names::DataId;
use crate::DriveError;

pub use local::LocalDrive;
pub use offline::OfflineDrive;
pub use remote::RemoteDrive;

/// Moves a staged data directory's files into place at commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataMove {
    /// The staging directory (tmp/<tmp>/) whose files are moved.
    pub tmp: DataId,
    /// Destination: data/<bucket>/<prefix>/<data_id>/ (created if needed; files with the same
    /// name are replaced atomically).
    pub bucket: String,
    pub data_id: DataId,
}

/// A version record as one drive holds it (`Objects` table), with the inline shard bytes it
/// points to when it keeps them inline and they were asked for (read in the same snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    pub record: Vec<u8>,
    pub inline: Option<Vec<u8>>,
}

/// A drive's identity and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveInfo {
    pub endpoint: String,
    pub online: bool,
    pub format: Option<FormatRecord>,
}

/// A streaming writer of one staged shard file. Every `write` appends; `finish` makes the
/// file durable (fsync). Dropping it unfinished leaves only tmp/ garbage.
#[async_trait]
pub trait ShardWriter: Send {
    async fn write(&mut self, framed: Bytes) -> Result<(), DriveError>;
    async fn finish(self: Box<Self>) -> Result<(), DriveError>;
}

/// An open shard file. Reads keep working after the file is replaced or removed (the
/// reader holds the old file), so a GET that started on a version finishes on it.
#[async_trait]
pub trait ShardReader: Send + Sync {
    /// Reads exactly `len` bytes at `offset`; a short file is `Corrupt`.
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DriveError>;

    /// Reads several ranges (one framed block each) in one go.
    async fn read_ranges(
        &self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> Result<Vec<Vec<u8>>, DriveError> {
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            out.push(self.read_at(r.start, (r.end - r.start) as usize).await?);
        }
        Ok(out)
    }
}

/// One drive. See the module docs.
#[async_trait]
pub trait Drive: Send + Sync + std::fmt::Debug {
    /// How the operator named it.
    fn endpoint(&self) -> &str;

    /// The lock table of the node serving this drive, when this process is that node and
    /// shares it (see [`crate::dlock`]); the RPC service grants peers' locks from it.
    fn lock_table(&self) -> Option<std::sync::Arc<crate::dlock::LockTable>> {
        None
    }

    async fn info(&self) -> Result<DriveInfo, DriveError>;

    /// Creates tmp/<tmp>/<file> for writing.
    async fn create_staged(
        &self,
        tmp: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardWriter>, DriveError>;

    /// Commits atomically from the reader's point of view: first moves `data` (if any) into
    /// place and makes it durable, then applies `meta` in one transaction. On error nothing
    /// of `meta` is applied (moved files may remain and are garbage).
    async fn commit(&self, data: Option<DataMove>, meta: Vec<MetaOp>) -> Result<(), DriveError>;

    /// Removes a staging directory (no error if absent).
    async fn remove_staged(&self, tmp: &DataId) -> Result<(), DriveError>;

    /// Reads exactly `len` bytes at `offset` of data/<bucket>/<prefix>/<data_id>/<file>.
    async fn read_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DriveError>;

    /// Opens data/<bucket>/<prefix>/<data_id>/<file> for ranged reads.
    async fn open_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardReader>, DriveError>;

    /// Writes a whole shard file in place (heal): staged, fsynced and renamed over the old one.
    async fn write_shard_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        bytes: Bytes,
    ) -> Result<(), DriveError>;

    /// Removes a data directory (no error if absent).
    async fn delete_data(&self, bucket: &str, data_id: &DataId) -> Result<(), DriveError>;

    /// Removes one file of a data directory (no error if absent).
    async fn delete_data_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<(), DriveError>;

    async fn meta_get(&self, table: Table, key: Vec<u8>) -> Result<Option<Vec<u8>>, DriveError>;

    async fn meta_scan(&self, table: Table, range: ScanRange) -> Result<Entries, DriveError>;

    /// Applies `ops` in one durable transaction.
    async fn meta_apply(&self, ops: Vec<MetaOp>) -> Result<(), DriveError>;

    /// Reads the version record under `key` of the `Objects` table and, with `inline`, the
    /// inline shard bytes that record points to (one round trip for a remote drive).
    async fn read_version(
        &self,
        key: Vec<u8>,
        inline: bool,
    ) -> Result<Option<StoredVersion>, DriveError> {
        let Some(record) = self.meta_get(Table::Objects, key).await? else {
            return Ok(None);
        };
        let inline = match crate::record::inline_key(&record).filter(|_| inline) {
            Some(k) => self.meta_get(Table::Inline, k).await?,
            None => None,
        };
        Ok(Some(StoredVersion { record, inline }))
    }

    /// [`Drive::commit`], returning what `key` of the `Objects` table held just before the
    /// metadata transaction (one round trip for a remote drive). Callers hold the key's lock.
    async fn commit_version(
        &self,
        data: Option<DataMove>,
        meta: Vec<MetaOp>,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, DriveError> {
        let previous = self.meta_get(Table::Objects, key).await?;
        self.commit(data, meta).await?;
        Ok(previous)
    }

    /// This drive as a remote drive, so the object layer can send one request per node for
    /// all of that node's drives ([`RemoteDrive::read_versions`]).
    fn as_remote(&self) -> Option<&RemoteDrive> {
        None
    }
}

/// Checks a file name the object layer hands to a drive: `part.N` style, no separators.
pub(crate) fn check_file_name(file: &str) -> Result<(), DriveError> {
    let ok = !file.is_empty()
        && file.len() <= 64
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && !file.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(DriveError::Invalid(format!("bad shard file name {file:?}")))
    }
}

/// Checks a bucket directory name (bucket names are validated already; belt and braces).
pub(crate) fn check_bucket_dir(bucket: &str) -> Result<(), DriveError> {
    if crate::names::BucketName::new(bucket).is_ok() {
        Ok(())
    } else {
        Err(DriveError::Invalid(format!(
            "bad bucket directory {bucket:?}"
        )))
    }
}
