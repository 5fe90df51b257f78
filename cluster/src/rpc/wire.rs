//! The internode wire format, shared by client and service: the URL scheme
//! (`/_tessera/rpc/v1/<drive>/<method>?<query>`), the method names, query encoding, the
//! framing of streamed shard uploads, the JSON mirrors of the `Drive` arguments and results
//! (byte strings as base64), and how a [`DriveError`] travels so the other side rebuilds the
//! same variant. Pure encoding: it must never do I/O.
//!
//! Upload framing: the body of `create_staged` is a sequence of frames, each a 4-byte
//! big-endian length then that many bytes (one `ShardWriter::write` each); a zero length is
//! the end marker (`finish`). A body that ends without the marker is an aborted upload.

use std::ops::{Bound, Range};
use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::drive::{DataMove, DriveInfo};
use crate::format::FormatRecord;
use crate::metastore::{Entries, MetaOp, ScanRange, Table};
use crate::names::DataId;
use crate::DriveError;

/// Every internode path starts with this.
pub const PREFIX: &str = "/_tessera/rpc/v1/";
/// Marks an error response whose JSON body is a [`WireError`].
pub const ERROR_HEADER: &str = "x-tessera-error";
/// Query parameter carrying the hex blake3 of a non-streamed request body.
pub const BODY_HASH_PARAM: &str = "b3";
/// Largest upload frame accepted (a shard block is far smaller).
pub const MAX_FRAME: usize = 64 << 20;
/// Largest non-streamed request body accepted (metadata batches, a healed shard file).
pub const MAX_UNARY_BODY: usize = 1 << 30;

/// Query parameters of a lock release riding on another request (see
/// `RpcClient::defer_release`): pairs of a resource and then its lock id, in order.
pub const RIDER_RESOURCE_PARAM: &str = "rr";
pub const RIDER_UID_PARAM: &str = "ru";

/// The path segment naming a drive: its endpoint (exactly as in the shared endpoint list),
/// base64url without padding.
pub fn drive_segment(endpoint: &str) -> String {
    URL_SAFE_NO_PAD.encode(endpoint.as_bytes())
}

/// The path segment of the node's lock table (in place of a drive's): `~` is not in the
/// base64url alphabet, so it never names a drive.
pub const LOCK_SEGMENT: &str = "~locks";

/// The path segment of calls that carry work for several of the node's drives at once
/// (`read_versions`, `commit_versions`); like [`LOCK_SEGMENT`], never a drive's.
pub const NODE_SEGMENT: &str = "~node";

/// The remote operations, one per `Drive` call (plus the reader handle life cycle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Info,
    CreateStaged,
    Commit,
    RemoveStaged,
    ReadShard,
    OpenShard,
    ReadAt,
    ReadRanges,
    CloseShard,
    WriteShardFile,
    DeleteData,
    DeleteDataFile,
    MetaGet,
    MetaScan,
    MetaApply,
    LockGrant,
    LockRefresh,
    LockRelease,
    ReadVersions,
    CommitVersions,
}

impl Method {
    const ALL: [Method; 20] = [
        Method::Info,
        Method::CreateStaged,
        Method::Commit,
        Method::RemoveStaged,
        Method::ReadShard,
        Method::OpenShard,
        Method::ReadAt,
        Method::ReadRanges,
        Method::CloseShard,
        Method::WriteShardFile,
        Method::DeleteData,
        Method::DeleteDataFile,
        Method::MetaGet,
        Method::MetaScan,
        Method::MetaApply,
        Method::LockGrant,
        Method::LockRefresh,
        Method::LockRelease,
        Method::ReadVersions,
        Method::CommitVersions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Info => "info",
            Method::CreateStaged => "create_staged",
            Method::Commit => "commit",
            Method::RemoveStaged => "remove_staged",
            Method::ReadShard => "read_shard",
            Method::OpenShard => "open_shard",
            Method::ReadAt => "read_at",
            Method::ReadRanges => "read_ranges",
            Method::CloseShard => "close_shard",
            Method::WriteShardFile => "write_shard_file",
            Method::DeleteData => "delete_data",
            Method::DeleteDataFile => "delete_data_file",
            Method::MetaGet => "meta_get",
            Method::MetaScan => "meta_scan",
            Method::MetaApply => "meta_apply",
            Method::LockGrant => "lock_grant",
            Method::LockRefresh => "lock_refresh",
            Method::LockRelease => "lock_release",
            Method::ReadVersions => "read_versions",
            Method::CommitVersions => "commit_versions",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Sent as GET (no body) or POST.
    pub fn http_method(self) -> http::Method {
        match self {
            Method::Info | Method::ReadShard | Method::ReadAt | Method::ReadRanges => {
                http::Method::GET
            }
            _ => http::Method::POST,
        }
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `k=v&k=v` with every byte outside RFC 3986's unreserved set percent-encoded.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, s) in [k, v.as_str()].into_iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in s.bytes() {
                if unreserved(b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

fn decode_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded pairs of a query string (what [`encode_query`] wrote).
pub fn decode_query(query: &str) -> Result<Vec<(String, String)>, DriveError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match (decode_component(k), decode_component(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(DriveError::Invalid(format!("bad query component {p:?}"))),
            }
        })
        .collect()
}

/// Byte ranges as `a-b,c-d` (half-open), for `read_ranges`.
pub fn encode_ranges(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end))
        .collect();
    parts.join(",")
}

/// The ranges [`encode_ranges`] wrote; each must have `start <= end`.
pub fn decode_ranges(s: &str) -> Result<Vec<Range<u64>>, DriveError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let bad = || DriveError::Invalid(format!("bad byte range {p:?}"));
            let (a, b) = p.split_once('-').ok_or_else(bad)?;
            let (a, b) = (
                a.parse::<u64>().map_err(|_| bad())?,
                b.parse::<u64>().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            Ok(a..b)
        })
        .collect()
}

/// The frame header of one upload block; `len == 0` is the end marker.
pub fn frame_header(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

/// Bytes as base64 inside JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(B64)
            .map_err(serde::de::Error::custom)
    }
}

/// [`DriveInfo`] on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireInfo {
    pub endpoint: String,
    pub online: bool,
    pub format: Option<FormatRecord>,
}

impl From<DriveInfo> for WireInfo {
    fn from(i: DriveInfo) -> Self {
        WireInfo {
            endpoint: i.endpoint,
            online: i.online,
            format: i.format,
        }
    }
}

impl From<WireInfo> for DriveInfo {
    fn from(i: WireInfo) -> Self {
        DriveInfo {
            endpoint: i.endpoint,
            online: i.online,
            format: i.format,
        }
    }
}

/// [`MetaOp`] on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireMetaOp {
    Put { table: Table, key: B64, value: B64 },
    Delete { table: Table, key: B64 },
}

impl From<MetaOp> for WireMetaOp {
    fn from(op: MetaOp) -> Self {
        match op {
            MetaOp::Put { table, key, value } => WireMetaOp::Put {
                table,
                key: B64(key),
                value: B64(value),
            },
            MetaOp::Delete { table, key } => WireMetaOp::Delete {
                table,
                key: B64(key),
            },
        }
    }
}

impl From<WireMetaOp> for MetaOp {
    fn from(op: WireMetaOp) -> Self {
        match op {
            WireMetaOp::Put { table, key, value } => MetaOp::Put {
                table,
                key: key.0,
                value: value.0,
            },
            WireMetaOp::Delete { table, key } => MetaOp::Delete { table, key: key.0 },
        }
    }
}

/// A scan bound on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireBound {
    Included(B64),
    Excluded(B64),
    Unbounded,
}

impl From<Bound<Vec<u8>>> for WireBound {
    fn from(b: Bound<Vec<u8>>) -> Self {
        match b {
            Bound::Included(v) => WireBound::Included(B64(v)),
            Bound::Excluded(v) => WireBound::Excluded(B64(v)),
            Bound::Unbounded => WireBound::Unbounded,
        }
    }
}

impl From<WireBound> for Bound<Vec<u8>> {
    fn from(b: WireBound) -> Self {
        match b {
            WireBound::Included(v) => Bound::Included(v.0),
            WireBound::Excluded(v) => Bound::Excluded(v.0),
            WireBound::Unbounded => Bound::Unbounded,
        }
    }
}

/// `meta_scan` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanRequest {
    pub table: Table,
    pub start: WireBound,
    pub end: WireBound,
    pub limit: u64,
}

impl ScanRequest {
    pub fn new(table: Table, r: ScanRange) -> Self {
        ScanRequest {
            table,
            start: r.start.into(),
            end: r.end.into(),
            limit: u64::try_from(r.limit).unwrap_or(u64::MAX),
        }
    }

    pub fn range(self) -> ScanRange {
        ScanRange {
            start: self.start.into(),
            end: self.end.into(),
            limit: usize::try_from(self.limit).unwrap_or(usize::MAX),
        }
    }
}

/// `meta_scan` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanResponse {
    pub entries: Vec<(B64, B64)>,
}

impl ScanResponse {
    pub fn new(e: Entries) -> Self {
        ScanResponse {
            entries: e.into_iter().map(|(k, v)| (B64(k), B64(v))).collect(),
        }
    }

    pub fn entries(self) -> Entries {
        self.entries.into_iter().map(|(k, v)| (k.0, v.0)).collect()
    }
}

/// `meta_get` request and response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetRequest {
    pub table: Table,
    pub key: B64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetResponse {
    pub value: Option<B64>,
}

/// `meta_apply` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub ops: Vec<WireMetaOp>,
}

/// [`DataMove`] on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireDataMove {
    pub tmp: String,
    pub bucket: String,
    pub data_id: String,
}

impl From<DataMove> for WireDataMove {
    fn from(m: DataMove) -> Self {
        WireDataMove {
            tmp: m.tmp.to_string(),
            bucket: m.bucket,
            data_id: m.data_id.to_string(),
        }
    }
}

impl TryFrom<WireDataMove> for DataMove {
    type Error = DriveError;
    fn try_from(m: WireDataMove) -> Result<Self, DriveError> {
        Ok(DataMove {
            tmp: parse_data_id(&m.tmp)?,
            bucket: m.bucket,
            data_id: parse_data_id(&m.data_id)?,
        })
    }
}

/// `commit` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitRequest {
    pub data: Option<WireDataMove>,
    pub meta: Vec<WireMetaOp>,
}

/// `open_shard` response: the service's handle for the open file.
/// `read_versions`: `Drive::read_version` of one key on several drives of the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadVersionsRequest {
    /// Drive path segments ([`drive_segment`]).
    pub drives: Vec<String>,
    pub key: B64,
    pub inline: bool,
}

/// One drive's part of a `commit_versions` call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriveCommit {
    pub drive: String,
    pub data: Option<WireDataMove>,
    pub meta: Vec<WireMetaOp>,
}

/// `commit_versions`: `Drive::commit_version` on several drives of the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitVersionsRequest {
    pub key: B64,
    pub drives: Vec<DriveCommit>,
}

/// One drive's answer in a node call: absent, a value (with an optional second value), or
/// the drive's error.
pub type SlotAnswer = Result<Option<(Vec<u8>, Option<Vec<u8>>)>, DriveError>;

/// The binary answer of `read_versions` / `commit_versions`, one item per drive in request
/// order: a tag byte (0 absent, 1 value, 2 value and second value, 3 error as JSON
/// [`WireError`]), then each byte string as a 4-byte big-endian length and its bytes.
pub fn encode_answers(answers: &[SlotAnswer]) -> Vec<u8> {
    let mut out = Vec::new();
    let blob = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    for a in answers {
        match a {
            Ok(None) => out.push(0),
            Ok(Some((v, None))) => {
                out.push(1);
                blob(&mut out, v);
            }
            Ok(Some((v, Some(w)))) => {
                out.push(2);
                blob(&mut out, v);
                blob(&mut out, w);
            }
            Err(e) => {
                out.push(3);
                let j = serde_json::to_vec(&WireError::from(e)).unwrap_or_default();
                blob(&mut out, &j);
            }
        }
    }
    out
}

/// What [`encode_answers`] wrote; exactly `n` items.
pub fn decode_answers(mut b: &[u8], n: usize) -> Result<Vec<SlotAnswer>, DriveError> {
    let bad = || DriveError::Invalid("malformed node answer".into());
    fn blob<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let v = b.get(4..4 + len)?;
        *b = &b[4 + len..];
        Some(v)
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        b = rest;
        out.push(match tag {
            0 => Ok(None),
            1 => Ok(Some((blob(&mut b).ok_or_else(bad)?.to_vec(), None))),
            2 => {
                let v = blob(&mut b).ok_or_else(bad)?.to_vec();
                let w = blob(&mut b).ok_or_else(bad)?.to_vec();
                Ok(Some((v, Some(w))))
            }
            3 => {
                let j = blob(&mut b).ok_or_else(bad)?;
                let e: WireError = serde_json::from_slice(j).map_err(|_| bad())?;
                Err(e.into_drive_error())
            }
            _ => return Err(bad()),
        });
    }
    if !b.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpenResponse {
    pub handle: u64,
}

pub fn parse_data_id(s: &str) -> Result<DataId, DriveError> {
    DataId::parse(s).ok_or_else(|| DriveError::Invalid(format!("invalid data id {s:?}")))
}

/// Which [`DriveError`] variant (plus `StaleHandle`, which only the RPC layer knows: the
/// service no longer holds the reader a handle named).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    Offline,
    NotFound,
    Io,
    Meta,
    Corrupt,
    Invalid,
    StaleHandle,
}

/// An error response body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default)]
    pub path: Option<String>,
    /// `std::io::ErrorKind` by its Debug name, for `Io`.
    #[serde(default)]
    pub io_kind: Option<String>,
}

impl WireError {
    pub fn stale_handle(handle: u64) -> Self {
        WireError {
            kind: ErrorKind::StaleHandle,
            message: format!("no open shard reader {handle}"),
            path: None,
            io_kind: None,
        }
    }
}

impl From<&DriveError> for WireError {
    fn from(e: &DriveError) -> Self {
        let plain = |kind, message: &str| WireError {
            kind,
            message: message.to_owned(),
            path: None,
            io_kind: None,
        };
        match e {
            DriveError::Offline(m) | DriveError::NoAnswer(m) => plain(ErrorKind::Offline, m),
            DriveError::NotFound => plain(ErrorKind::NotFound, ""),
            DriveError::Io { path, source } => WireError {
                kind: ErrorKind::Io,
                message: source.to_string(),
                path: Some(path.to_string_lossy().into_owned()),
                io_kind: Some(format!("{:?}", source.kind())),
            },
            DriveError::Meta(m) => plain(ErrorKind::Meta, m),
            DriveError::Corrupt(m) => plain(ErrorKind::Corrupt, m),
            DriveError::Invalid(m) => plain(ErrorKind::Invalid, m),
        }
    }
}

impl WireError {
    /// The drive error this stands for; `StaleHandle` becomes `Invalid` (callers that can
    /// recover from it look at `kind` first).
    pub fn into_drive_error(self) -> DriveError {
        match self.kind {
            ErrorKind::Offline => DriveError::Offline(self.message),
            ErrorKind::NotFound => DriveError::NotFound,
            ErrorKind::Io => DriveError::Io {
                path: PathBuf::from(self.path.unwrap_or_default()),
                source: std::io::Error::new(
                    io_kind_from_name(self.io_kind.as_deref().unwrap_or("Other")),
                    self.message,
                ),
            },
            ErrorKind::Meta => DriveError::Meta(self.message),
            ErrorKind::Corrupt => DriveError::Corrupt(self.message),
            ErrorKind::Invalid | ErrorKind::StaleHandle => DriveError::Invalid(self.message),
        }
    }
}

fn io_kind_from_name(name: &str) -> std::io::ErrorKind {
    use std::io::ErrorKind as K;
    const KINDS: [K; 27] = [
        K::NotFound,
        K::PermissionDenied,
        K::ConnectionRefused,
        K::ConnectionReset,
        K::ConnectionAborted,
        K::NotConnected,
        K::AddrInUse,
        K::AddrNotAvailable,
        K::BrokenPipe,
        K::AlreadyExists,
        K::WouldBlock,
        K::InvalidInput,
        K::InvalidData,
        K::TimedOut,
        K::WriteZero,
        K::Interrupted,
        K::Unsupported,
        K::UnexpectedEof,
        K::OutOfMemory,
        K::NotADirectory,
        K::IsADirectory,
        K::DirectoryNotEmpty,
        K::ReadOnlyFilesystem,
        K::StorageFull,
        K::FileTooLarge,
        K::ResourceBusy,
        K::CrossesDevices,
    ];
    KINDS
        .into_iter()
        .find(|k| format!("{k:?}") == name)
        .unwrap_or(K::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_answers_round_trip_and_reject_garbage() {
        let answers: Vec<SlotAnswer> = vec![
            Ok(None),
            Ok(Some((b"rec".to_vec(), None))),
            Ok(Some((Vec::new(), Some(vec![0, 1, 255])))),
            Err(DriveError::Corrupt("bad".into())),
        ];
        let b = encode_answers(&answers);
        let back = decode_answers(&b, 4).expect("decodes");
        assert_eq!(back.len(), 4);
        assert!(matches!(&back[0], Ok(None)));
        assert!(matches!(&back[1], Ok(Some((r, None))) if r == b"rec"));
        assert!(matches!(&back[2], Ok(Some((r, Some(w)))) if r.is_empty() && w == &[0, 1, 255]));
        assert!(matches!(&back[3], Err(DriveError::Corrupt(m)) if m == "bad"));
        assert!(decode_answers(&b, 5).is_err(), "too few items");
        assert!(decode_answers(&b, 3).is_err(), "trailing bytes");
        assert!(decode_answers(&b[..b.len() - 1], 4).is_err(), "truncated");
        assert!(decode_answers(&[9], 1).is_err(), "unknown tag");
    }

    #[test]
    fn query_round_trips_any_text() {
        let pairs = [
            ("a", "plain".to_owned()),
            ("b", "sp ace&=%/+ü".to_owned()),
            ("c", String::new()),
        ];
        let q = encode_query(&pairs);
        assert!(!q.contains(' ') && !q.contains('+') && !q.contains('/'));
        let back = decode_query(&q).expect("decodes");
        let want: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(back, want);
        assert!(decode_query("a=%4").is_err());
        assert!(decode_query("a=%zz").is_err());
    }

    #[test]
    fn drive_errors_keep_their_variant_across_the_wire() {
        let io = DriveError::Io {
            path: PathBuf::from("x/part.1"),
            source: std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"),
        };
        let errors = [
            DriveError::Offline("o".into()),
            DriveError::NotFound,
            io,
            DriveError::Meta("m".into()),
            DriveError::Corrupt("c".into()),
            DriveError::Invalid("i".into()),
        ];
        for e in errors {
            let json = serde_json::to_vec(&WireError::from(&e)).expect("serialises");
            let back: WireError = serde_json::from_slice(&json).expect("parses");
            let back = back.into_drive_error();
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{e}"
            );
            if let DriveError::Io { source, .. } = back {
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
            }
        }
    }

    #[test]
    fn ranges_round_trip() {
        let r = vec![0..10, 10..10, 5..1 << 40];
        assert_eq!(decode_ranges(&encode_ranges(&r)).expect("decodes"), r);
        assert!(decode_ranges("5-1").is_err());
        assert!(decode_ranges("x-1").is_err());
        assert_eq!(decode_ranges("").expect("empty"), Vec::<Range<u64>>::new());
    }

    #[test]
    fn methods_parse_back() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        assert_eq!(Method::parse("nope"), None);
    }
}
