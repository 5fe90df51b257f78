//! The records each drive keeps in its metadata store, and how their keys are built:
//! `VersionRecord` (one object version as seen by one drive: its shard index, the erasure
//! parameters, size, ETag, checksums, headers, parts and where the shard bytes live),
//! `UploadRecord`, `PartRecord`, `BucketRecord`. Serialization lives here and nowhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::names::DataId;
use crate::types::{ObjectInfo, ObjectMeta, PartSummary};
use crate::DriveError;

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn to_system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Erasure parameters of one object (or upload), plus which shard this drive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureInfo {
    pub data: usize,
    pub parity: usize,
    pub block_size: usize,
    /// Shard index of slot s is `(s + rotation) % total` (spreads parity over drives).
    pub rotation: usize,
    /// The shard index this drive holds.
    pub shard_index: usize,
}

impl ErasureInfo {
    pub fn total(&self) -> usize {
        self.data + self.parity
    }

    pub fn shard_of_slot(&self, slot: usize) -> usize {
        (slot + self.rotation) % self.total()
    }

    pub fn for_slot(&self, slot: usize) -> ErasureInfo {
        ErasureInfo {
            shard_index: self.shard_of_slot(slot),
            ..*self
        }
    }

    pub fn geometry(&self) -> Result<erasure::Geometry, DriveError> {
        erasure::Geometry::new(self.data, self.parity, self.block_size)
            .map_err(|e| DriveError::Corrupt(format!("bad erasure parameters in a record: {e}")))
    }
}

/// One erasure-coded byte stream of an object: a whole simple object, or one part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<Checksum>,
    /// The shard file name inside the data dir (`part.N`).
    pub file: String,
}

/// Where the shard bytes of a version live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLocation {
    /// In the `Inline` table under this data id (small objects; one part).
    Inline(DataId),
    /// In files data/<bucket>/<prefix>/<data id>/<part.file>.
    Files(DataId),
}

impl DataLocation {
    pub fn data_id(&self) -> &DataId {
        match self {
            DataLocation::Inline(d) | DataLocation::Files(d) => d,
        }
    }
}

/// One object version as one drive records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Same on every drive for one write; records settle by it.
    pub version_id: String,
    pub mod_time_ns: u64,
    pub size: u64,
    pub etag: String,
    pub meta: ObjectMeta,
    pub checksum: Option<Checksum>,
    pub erasure: ErasureInfo,
    pub location: DataLocation,
    /// Byte streams in object order (a simple object has one, numbered 1).
    pub parts: Vec<PartRef>,
    pub multipart: bool,
}

impl VersionRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DriveError> {
        serde_json::from_slice(bytes)
            .map_err(|e| DriveError::Corrupt(format!("version record: {e}")))
    }

    pub fn info(&self, bucket: &str, key: &str) -> ObjectInfo {
        ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: to_system_time(self.mod_time_ns),
            meta: self.meta.clone(),
            checksum: self.checksum.clone(),
            parts: if self.multipart {
                self.parts
                    .iter()
                    .map(|p| PartSummary {
                        part_number: p.number,
                        size: p.size,
                        etag: p.etag.clone(),
                        checksum: p.checksum.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The same version as the drive in `slot` must record it.
    pub fn for_slot(&self, slot: usize) -> VersionRecord {
        VersionRecord {
            erasure: self.erasure.for_slot(slot),
            ..self.clone()
        }
    }
}

/// The `Inline` table key of the shard bytes an encoded version record keeps inline, if it
/// does (reads only the record's location).
pub fn inline_key(record: &[u8]) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    struct LocationOnly {
        location: DataLocation,
    }
    match serde_json::from_slice::<LocationOnly>(record)
        .ok()?
        .location
    {
        DataLocation::Inline(id) => Some(id.as_str().as_bytes().to_vec()),
        DataLocation::Files(_) => None,
    }
}

/// A multipart upload in progress, as one drive records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub key: String,
    pub initiated_ns: u64,
    pub meta: ObjectMeta,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub erasure: ErasureInfo,
    /// The data dir that receives every part (and becomes the object's at completion).
    pub data_id: DataId,
}

/// One uploaded part, as one drive records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part: PartRef,
    pub version_id: String,
    pub mod_time_ns: u64,
}

/// A bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ns: u64,
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records always serialize")
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DriveError> {
    serde_json::from_slice(bytes).map_err(|e| DriveError::Corrupt(format!("record: {e}")))
}

/// `bucket/key` — bucket names cannot contain `/`, so one bucket's keys are one prefix.
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(b'/');
    k.extend_from_slice(key.as_bytes());
    k
}

/// The prefix of every object key of `bucket` starting with `prefix`.
pub fn object_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    object_key(bucket, prefix)
}

/// `bucket/key\0upload-id` (keys cannot hold NUL).
pub fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// `upload-id/NNNNN`: parts sort by number.
pub fn part_key(upload_id: &str, number: u32) -> Vec<u8> {
    format!("{upload_id}/{number:05}").into_bytes()
}

pub fn parts_prefix(upload_id: &str) -> Vec<u8> {
    format!("{upload_id}/").into_bytes()
}

/// The name of a part's shard file.
pub fn part_file(number: u32) -> String {
    format!("part.{number}")
}
