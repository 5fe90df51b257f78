//! Object checksums (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256) and the MD5 that makes an
//! ETag: computed while a body streams, compared with what the client sent, and rendered as
//! S3 returns them (base64 of the big-endian digest; multipart composites end in `-N`).
//! Pure computation: never I/O, never called on an async worker thread with large inputs
//! (the write path runs it inside `spawn_blocking`).

use base64::Engine as _;
use md5::Digest as _;

use crate::StoreError;

/// The additional checksum algorithms S3 supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Parses `CRC32`, `crc32c`, `x-amz-checksum-sha256`, ... (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let bare = lower.strip_prefix("x-amz-checksum-").unwrap_or(&lower);
        Some(match bare {
            "crc32" => ChecksumAlgorithm::Crc32,
            "crc32c" => ChecksumAlgorithm::Crc32c,
            "crc64nvme" => ChecksumAlgorithm::Crc64Nvme,
            "sha1" => ChecksumAlgorithm::Sha1,
            "sha256" => ChecksumAlgorithm::Sha256,
            _ => return None,
        })
    }

    /// The S3 name (`CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The response/request header carrying this checksum, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(&self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn digest_len(&self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

impl std::fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checksum value as S3 shows it: base64 of the digest; a multipart composite ends `-N`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

impl Checksum {
    /// The raw digest bytes (without a `-N` suffix), or `InvalidChecksum` if the value is not
    /// valid base64 of the right length.
    pub fn digest(&self) -> Result<Vec<u8>, StoreError> {
        let b64 = self.value.split('-').next().unwrap_or_default();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| StoreError::InvalidChecksum(format!("{} is not base64", self.value)))?;
        if raw.len() != self.algorithm.digest_len() {
            return Err(StoreError::InvalidChecksum(format!(
                "{} value has {} bytes, expected {}",
                self.algorithm,
                raw.len(),
                self.algorithm.digest_len()
            )));
        }
        Ok(raw)
    }
}

/// Incremental state of one checksum algorithm.
#[derive(Clone)]
pub enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl std::fmt::Debug for ChecksumHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChecksumHasher({})", self.algorithm())
    }
}

impl ChecksumHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => ChecksumHasher::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => ChecksumHasher::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => {
                ChecksumHasher::Crc64Nvme(crc64fast_nvme::Digest::new())
            }
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            ChecksumHasher::Crc32(_) => ChecksumAlgorithm::Crc32,
            ChecksumHasher::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            ChecksumHasher::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            ChecksumHasher::Sha1(_) => ChecksumAlgorithm::Sha1,
            ChecksumHasher::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ChecksumHasher::Crc32(h) => h.update(bytes),
            ChecksumHasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, bytes),
            ChecksumHasher::Crc64Nvme(h) => h.write(bytes),
            ChecksumHasher::Sha1(h) => sha1::Digest::update(h, bytes),
            ChecksumHasher::Sha256(h) => sha2::Digest::update(h, bytes),
        }
    }

    pub fn finish_raw(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            ChecksumHasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            ChecksumHasher::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
            ChecksumHasher::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            ChecksumHasher::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }

    pub fn finish(self) -> Checksum {
        let algorithm = self.algorithm();
        Checksum {
            algorithm,
            value: base64::engine::general_purpose::STANDARD.encode(self.finish_raw()),
        }
    }
}

/// Everything computed over a body while it streams: MD5 (for the ETag) and the checksums
/// to verify or store.
#[derive(Clone, Debug)]
pub struct BodyHashes {
    md5: md5::Md5,
    checksums: Vec<ChecksumHasher>,
}

/// Final values of [`BodyHashes`].
#[derive(Clone, Debug)]
pub struct BodyDigests {
    pub md5: [u8; 16],
    pub checksums: Vec<Checksum>,
}

impl BodyHashes {
    /// Hashes MD5 plus every distinct algorithm in `algorithms`.
    pub fn new(algorithms: impl IntoIterator<Item = ChecksumAlgorithm>) -> Self {
        let mut checksums: Vec<ChecksumHasher> = Vec::new();
        for a in algorithms {
            if !checksums.iter().any(|h| h.algorithm() == a) {
                checksums.push(ChecksumHasher::new(a));
            }
        }
        BodyHashes {
            md5: md5::Md5::new(),
            checksums,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        for c in &mut self.checksums {
            c.update(bytes);
        }
    }

    pub fn finish(self) -> BodyDigests {
        BodyDigests {
            md5: self.md5.finalize().into(),
            checksums: self
                .checksums
                .into_iter()
                .map(ChecksumHasher::finish)
                .collect(),
        }
    }
}

impl BodyDigests {
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&Checksum> {
        self.checksums.iter().find(|c| c.algorithm == algorithm)
    }
}

/// Checks what the client claimed against what was computed. `BadDigest` for Content-MD5,
/// `ChecksumMismatch` for any `x-amz-checksum-*` (header or trailer).
pub fn verify_claims(
    digests: &BodyDigests,
    content_md5: Option<[u8; 16]>,
    claimed: &[Checksum],
) -> Result<(), StoreError> {
    if let Some(md5) = content_md5 {
        if md5 != digests.md5 {
            return Err(StoreError::BadDigest);
        }
    }
    for c in claimed {
        let want = c.digest()?;
        let got = digests
            .get(c.algorithm)
            .ok_or_else(|| StoreError::internal("checksum was not computed"))?;
        if got.digest()? != want {
            return Err(StoreError::ChecksumMismatch {
                algorithm: c.algorithm.to_string(),
            });
        }
    }
    Ok(())
}

/// The ETag of a multipart object: hex(md5(concatenated binary part MD5s)) + "-N".
pub fn multipart_etag(part_etags: &[String]) -> String {
    let mut md5 = md5::Md5::new();
    for e in part_etags {
        if let Ok(raw) = hex::decode(e) {
            md5.update(&raw);
        }
    }
    format!("{}-{}", hex::encode(md5.finalize()), part_etags.len())
}

/// The composite checksum of a multipart object: checksum of the concatenated binary part
/// checksums, base64, + "-N". `None` if any part lacks a checksum of `algorithm`.
pub fn composite_checksum(
    algorithm: ChecksumAlgorithm,
    parts: &[Option<Checksum>],
) -> Option<Checksum> {
    let mut h = ChecksumHasher::new(algorithm);
    for p in parts {
        let p = p.as_ref().filter(|c| c.algorithm == algorithm)?;
        h.update(&p.digest().ok()?);
    }
    let mut c = h.finish();
    c.value = format!("{}-{}", c.value, parts.len());
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(a: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = ChecksumHasher::new(a);
        h.update(data);
        h.finish().value
    }

    #[test]
    fn known_vectors() {
        // Values as S3 reports them for the body "hello".
        assert_eq!(one(ChecksumAlgorithm::Crc32, b"hello"), "NhCmhg==");
        assert_eq!(one(ChecksumAlgorithm::Crc32c, b"hello"), "mnG7TA==");
        assert_eq!(
            one(ChecksumAlgorithm::Sha1, b"hello"),
            "qvTGHdzF6KLavt4PO0gs2a6pQ00="
        );
        assert_eq!(
            one(ChecksumAlgorithm::Sha256, b"hello"),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        assert_eq!(one(ChecksumAlgorithm::Crc64Nvme, b"").len(), 12);
    }

    #[test]
    fn mismatches_are_typed() {
        let mut h = BodyHashes::new([ChecksumAlgorithm::Crc32]);
        h.update(b"hello");
        let d = h.finish();
        assert!(verify_claims(&d, Some([0; 16]), &[]).is_err());
        let good = Checksum {
            algorithm: ChecksumAlgorithm::Crc32,
            value: "NhCmhg==".into(),
        };
        assert!(verify_claims(&d, Some(d.md5), &[good]).is_ok());
        let bad = Checksum {
            algorithm: ChecksumAlgorithm::Crc32,
            value: "AAAAAA==".into(),
        };
        assert!(matches!(
            verify_claims(&d, None, &[bad]),
            Err(StoreError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn multipart_etag_matches_s3_formula() {
        let a = hex::encode(md5::Md5::digest(b"a"));
        let b = hex::encode(md5::Md5::digest(b"b"));
        let mut cat = hex::decode(&a).unwrap_or_default();
        cat.extend(hex::decode(&b).unwrap_or_default());
        let want = format!("{}-2", hex::encode(md5::Md5::digest(&cat)));
        assert_eq!(multipart_etag(&[a, b]), want);
    }
}
