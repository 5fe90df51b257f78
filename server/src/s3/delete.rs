//! Deleting objects: DeleteObject (204 whether or not the key existed; `?versionId=null`
//! accepted) and DeleteObjects (Quiet mode; integrity by Content-MD5 or any
//! `x-amz-checksum-*` header or trailer, verified here over the small XML body; entries with
//! VersionId `null` delete the object; per-key errors reported in the result).

use base64::Engine as _;
use cluster::{ChecksumAlgorithm, ObjectBody as _};
use futures::StreamExt as _;
use http::{Response, StatusCode};
use md5::Digest as _;

use super::error::S3Error;
use super::get::check_version_id;
use super::headers;
use super::response::{self, ResBody};
use super::xml::{self, XmlWriter};
use super::{validate_key, S3Request, S3Service};

/// AWS's limit on keys per DeleteObjects request.
pub const MAX_DELETE_KEYS: usize = 1000;

/// `DELETE /bucket/key`
pub async fn delete_object(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    check_version_id(req)?;
    svc.store.delete_object(&bucket, &key).await?;
    Ok(response::status(StatusCode::NO_CONTENT))
}

/// Base64 digest of `data` with `alg` (big-endian for CRCs, as S3 writes them).
pub fn digest_b64(alg: ChecksumAlgorithm, data: &[u8]) -> String {
    let raw: Vec<u8> = match alg {
        ChecksumAlgorithm::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc32c => crc32c::crc32c(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc64Nvme => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(data);
            d.sum64().to_be_bytes().to_vec()
        }
        ChecksumAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        ChecksumAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
    };
    base64::engine::general_purpose::STANDARD.encode(raw)
}

struct Entry {
    key: String,
    version_id: Option<String>,
}

fn parse_delete(body: &[u8]) -> Result<(bool, Vec<Entry>), S3Error> {
    let doc = xml::parse(body)?;
    if doc.name != "Delete" {
        return Err(S3Error::malformed_xml());
    }
    let quiet = doc
        .child_text("Quiet")
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let mut entries = Vec::new();
    for o in doc.children_named("Object") {
        let key = o.child_text("Key").ok_or_else(S3Error::malformed_xml)?;
        entries.push(Entry {
            key: key.to_string(),
            version_id: o.child_text("VersionId").map(|v| v.trim().to_string()),
        });
    }
    if entries.is_empty() || entries.len() > MAX_DELETE_KEYS {
        return Err(S3Error::malformed_xml());
    }
    Ok((quiet, entries))
}

/// `POST /bucket?delete`
pub async fn delete_objects(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let md5 = headers::content_md5(req.headers())?;
    let cs = headers::checksum_request(req.headers())?;
    let mut body = req.take_body()?;
    let mut data = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => data.extend_from_slice(&c),
            Err(e) => {
                return Err(match super::auth::BodyError::from_io(&e) {
                    Some(super::auth::BodyError::TooLarge { .. }) => S3Error::malformed_xml(),
                    Some(b) => b.clone().into(),
                    None => S3Error::internal(),
                })
            }
        }
    }
    if let Some(m) = md5 {
        let got: [u8; 16] = md5::Md5::digest(&data).into();
        if got != m {
            return Err(S3Error::new(
                "BadDigest",
                StatusCode::BAD_REQUEST,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let mut claimed: Vec<cluster::Checksum> = body.trailing_checksums();
    claimed.extend(cs.expected);
    for c in &claimed {
        if digest_b64(c.algorithm, &data) != c.value {
            return Err(S3Error::new(
                "BadDigest",
                StatusCode::BAD_REQUEST,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    c.algorithm
                ),
            ));
        }
    }
    let (quiet, entries) = parse_delete(&data)?;
    svc.store.bucket_info(&bucket).await?;

    let jobs: Vec<(Option<String>, String)> = entries
        .iter()
        .map(|e| (e.version_id.clone(), e.key.clone()))
        .collect();
    let store = svc.store.clone();
    let results: Vec<Result<(), S3Error>> = futures::stream::iter(jobs)
        .map(move |(version_id, key)| {
            let store = store.clone();
            let bucket = bucket.clone();
            async move { delete_one(&store, &bucket, version_id.as_deref(), &key).await }
        })
        .buffered(16)
        .collect()
        .await;

    let mut w = XmlWriter::new();
    w.root("DeleteResult");
    for (e, r) in entries.iter().zip(results) {
        match r {
            Ok(()) => {
                if !quiet {
                    w.open("Deleted").elem("Key", &e.key);
                    w.elem_opt("VersionId", e.version_id.as_deref());
                    w.close("Deleted");
                }
            }
            Err(err) => {
                w.open("Error").elem("Key", &e.key);
                w.elem_opt("VersionId", e.version_id.as_deref());
                w.elem("Code", err.code)
                    .elem("Message", &err.message)
                    .close("Error");
            }
        }
    }
    w.close("DeleteResult");
    Ok(response::xml(w.finish()))
}

async fn delete_one(
    store: &cluster::Store,
    bucket: &cluster::BucketName,
    version_id: Option<&str>,
    key: &str,
) -> Result<(), S3Error> {
    if version_id.is_some_and(|v| v != "null") {
        return Err(S3Error::new(
            "NoSuchVersion",
            StatusCode::NOT_FOUND,
            "The specified version does not exist.",
        ));
    }
    let key = validate_key(key)?;
    store
        .delete_object(bucket, &key)
        .await
        .map_err(S3Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_checksum_values() {
        // Values S3 documents / SDKs produce for "hello world".
        assert_eq!(
            digest_b64(ChecksumAlgorithm::Crc32, b"hello world"),
            "DUoRhQ=="
        );
        assert_eq!(
            digest_b64(ChecksumAlgorithm::Crc32c, b"hello world"),
            "yZRlqg=="
        );
        assert_eq!(
            digest_b64(ChecksumAlgorithm::Sha256, b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn delete_documents() {
        let (q, e) = parse_delete(
            b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>",
        )
        .unwrap();
        assert!(q);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].version_id.as_deref(), Some("null"));
        assert!(parse_delete(b"<Delete></Delete>").is_err());
        assert!(
            parse_delete(b"<Delete><Object><VersionId>x</VersionId></Object></Delete>").is_err()
        );
        assert!(parse_delete(b"<Other><Object><Key>a</Key></Object></Other>").is_err());
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(1001)
        );
        assert!(parse_delete(many.as_bytes()).is_err());
    }
}
