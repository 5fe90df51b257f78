//! Validated names: bucket names (S3 rules), object keys, upload ids and data ids. An
//! invalid one cannot exist. Object keys are stored in the metadata store and must never be
//! used to build a file path; only [`DataId`] (engine-generated hex) names files.

use std::fmt;

use crate::StoreError;

/// Maximum object key length in bytes (S3).
pub const MAX_KEY_LEN: usize = 1024;

/// A bucket name that follows S3's rules for new buckets: 3..=63 bytes of lowercase letters,
/// digits, `.` and `-`, starting and ending with a letter or digit, no `..`, not shaped like an
/// IPv4 address, none of the reserved prefixes/suffixes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

impl BucketName {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| Err(StoreError::InvalidBucketName(format!("{name:?}: {why}")));
        if name.len() < 3 || name.len() > 63 {
            return bad("must be 3 to 63 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return bad("only lowercase letters, digits, '.' and '-' are allowed");
        }
        let first = name.as_bytes()[0];
        let last = name.as_bytes()[name.len() - 1];
        if !(first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()) {
            return bad("must start and end with a letter or digit");
        }
        if name.contains("..") || name.contains(".-") || name.contains("-.") {
            return bad("must not contain '..', '.-' or '-.'");
        }
        if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
            return bad("must not be formatted as an IP address");
        }
        if name.starts_with("xn--") || name.starts_with("sthree-") {
            return bad("reserved prefix");
        }
        if name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
            return bad("reserved suffix");
        }
        Ok(BucketName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: valid UTF-8 of 1..=1024 bytes without NUL. Any other content (`..`, `//`,
/// leading `/`, control characters) is stored verbatim and safely, because keys are only
/// ever metadata-store keys, never file names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: &str) -> Result<Self, StoreError> {
        if key.is_empty() {
            return Err(StoreError::InvalidKey("the key is empty".into()));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(StoreError::InvalidKey(format!(
                "the key is {} bytes long, the maximum is {MAX_KEY_LEN}",
                key.len()
            )));
        }
        if key.contains('\0') {
            return Err(StoreError::InvalidKey("the key contains NUL".into()));
        }
        Ok(ObjectKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A multipart upload id as handed out by [`crate::Store::create_multipart`]. Constructing one
/// from client input that cannot be one of ours yields `NoSuchUpload`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn new(id: &str) -> Result<Self, StoreError> {
        if id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(UploadId(id.to_owned()))
        } else {
            Err(StoreError::NoSuchUpload)
        }
    }

    pub(crate) fn generate() -> Self {
        UploadId(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The engine-generated name of one object version's (or upload's) shard directory:
/// 32 lowercase hex digits. The only thing besides fixed names that becomes a path component.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct DataId(String);

impl DataId {
    pub fn generate() -> Self {
        DataId(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| DataId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Two hex digits spreading data directories over 256 subdirectories per bucket.
    pub fn prefix(&self) -> &str {
        &self.0[..2]
    }
}

impl TryFrom<String> for DataId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DataId::parse(&s).ok_or_else(|| format!("invalid data id {s:?}"))
    }
}

impl From<DataId> for String {
    fn from(d: DataId) -> String {
        d.0
    }
}

impl fmt::Display for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.1", "a1b", &"a".repeat(63)] {
            assert!(BucketName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "a/b",
            "..",
            &"a".repeat(64),
            "ab\0",
            "a b",
        ] {
            assert!(BucketName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_allow_odd_but_safe_content_and_reject_nul_and_length() {
        for ok in [
            "a",
            "../../etc/passwd",
            "a//b",
            "/leading",
            "tab\there",
            "ü/ñ",
        ] {
            assert!(ObjectKey::new(ok).is_ok(), "{ok}");
        }
        assert!(ObjectKey::new("").is_err());
        assert!(ObjectKey::new("a\0b").is_err());
        assert!(ObjectKey::new(&"k".repeat(1025)).is_err());
        assert!(ObjectKey::new(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn upload_and_data_ids_only_accept_generated_shapes() {
        let u = UploadId::generate();
        assert_eq!(UploadId::new(u.as_str()).ok(), Some(u));
        assert!(UploadId::new("../x").is_err());
        let d = DataId::generate();
        assert_eq!(DataId::parse(d.as_str()), Some(d));
        assert!(DataId::parse("../../aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_none());
    }
}
