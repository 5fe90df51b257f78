//! A placeholder for a drive that could not be opened at start: every call fails with
//! `Offline`, so quorum logic simply counts it out. It must never pretend to hold data.

use async_trait::async_trait;
use bytes::Bytes;

use super::{DataMove, Drive, DriveInfo, ShardReader, ShardWriter};
use crate::metastore::{Entries, MetaOp, ScanRange, Table};
use crate::names::DataId;
use crate::DriveError;

/// See the module docs.
#[derive(Debug)]
pub struct OfflineDrive {
    endpoint: String,
    reason: String,
}

impl OfflineDrive {
    pub fn new(endpoint: String, reason: String) -> Self {
        OfflineDrive { endpoint, reason }
    }

    fn err(&self) -> DriveError {
        DriveError::Offline(format!("{}: {}", self.endpoint, self.reason))
    }
}

#[async_trait]
impl Drive for OfflineDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    async fn info(&self) -> Result<DriveInfo, DriveError> {
        Ok(DriveInfo {
            endpoint: self.endpoint.clone(),
            online: false,
            format: None,
        })
    }
    async fn create_staged(&self, _: &DataId, _: &str) -> Result<Box<dyn ShardWriter>, DriveError> {
        Err(self.err())
    }
    async fn commit(&self, _: Option<DataMove>, _: Vec<MetaOp>) -> Result<(), DriveError> {
        Err(self.err())
    }
    async fn remove_staged(&self, _: &DataId) -> Result<(), DriveError> {
        Err(self.err())
    }
    async fn read_shard(
        &self,
        _: &str,
        _: &DataId,
        _: &str,
        _: u64,
        _: usize,
    ) -> Result<Vec<u8>, DriveError> {
        Err(self.err())
    }
    async fn open_shard(
        &self,
        _: &str,
        _: &DataId,
        _: &str,
    ) -> Result<Box<dyn ShardReader>, DriveError> {
        Err(self.err())
    }
    async fn write_shard_file(
        &self,
        _: &str,
        _: &DataId,
        _: &str,
        _: Bytes,
    ) -> Result<(), DriveError> {
        Err(self.err())
    }
    async fn delete_data(&self, _: &str, _: &DataId) -> Result<(), DriveError> {
        Err(self.err())
    }
    async fn delete_data_file(&self, _: &str, _: &DataId, _: &str) -> Result<(), DriveError> {
        Err(self.err())
    }
    async fn meta_get(&self, _: Table, _: Vec<u8>) -> Result<Option<Vec<u8>>, DriveError> {
        Err(self.err())
    }
    async fn meta_scan(&self, _: Table, _: ScanRange) -> Result<Entries, DriveError> {
        Err(self.err())
    }
    async fn meta_apply(&self, _: Vec<MetaOp>) -> Result<(), DriveError> {
        Err(self.err())
    }
}
