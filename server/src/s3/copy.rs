//! Server-side copies: CopyObject (COPY/REPLACE metadata directive, URL-encoded
//! `x-amz-copy-source` with optional `?versionId=null`, copying an object onto itself only to
//! replace its metadata, `x-amz-copy-source-if-*` conditions) and UploadPartCopy (with
//! `x-amz-copy-source-range`), which streams the source range into the part without
//! buffering it.

use cluster::{BucketName, ByteRange, CopyOptions, ObjectKey, PartOptions};
use http::{Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::conditions::check_copy_source;
use super::error::S3Error;
use super::get::part_number;
use super::headers;
use super::response::{self, iso8601, ResBody};
use super::xml::XmlWriter;
use super::{validate_key, S3Request, S3Service, MAX_OBJECT_SIZE};

/// A parsed `x-amz-copy-source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// Source bucket.
    pub bucket: String,
    /// Source key (decoded).
    pub key: String,
}

/// Parses `[/]bucket/key[?versionId=null]` (the key URL-encoded).
pub fn parse_copy_source(raw: &str) -> Result<CopySource, S3Error> {
    let bad = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let raw = raw.trim();
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "versionId" && v != "null" {
                return Err(S3Error::invalid_argument("Invalid version id specified"));
            }
        }
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| bad())?
        .into_owned();
    let (bucket, key) = decoded.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

fn source(req: &S3Request) -> Result<(BucketName, ObjectKey), S3Error> {
    let raw = headers::get(req.headers(), "x-amz-copy-source")
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source is required"))?;
    let src = parse_copy_source(raw)?;
    Ok((BucketName::new(&src.bucket)?, validate_key(&src.key)?))
}

/// `PUT /bucket/key` with `x-amz-copy-source`
pub async fn copy_object(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let (src_bucket, src_key) = source(req)?;
    let h = req.headers();
    let replace = match headers::get(h, "x-amz-metadata-directive") {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_argument("Unknown metadata directive.")),
    };
    if !replace && src_bucket == bucket && src_key == key {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let replace_meta = if replace {
        Some(headers::object_meta(h)?)
    } else {
        None
    };
    let precondition = headers::write_precondition(h)?;
    headers::refuse_unsupported_write_options(h)?;
    let src_info = svc.store.head_object(&src_bucket, &src_key).await?;
    check_copy_source(h, &src_info.etag, src_info.last_modified)?;
    if src_info.size > MAX_OBJECT_SIZE {
        return Err(S3Error::invalid_request(format!(
            "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_OBJECT_SIZE}"
        )));
    }
    let info = svc
        .store
        .copy_object(
            (&src_bucket, &src_key),
            (&bucket, &key),
            CopyOptions {
                replace_meta,
                precondition,
            },
        )
        .await?;
    let mut w = XmlWriter::new();
    w.root("CopyObjectResult")
        .elem("LastModified", &iso8601(info.last_modified))
        .elem("ETag", &format!("\"{}\"", info.etag));
    if let Some(c) = &info.checksum {
        w.elem(&format!("Checksum{}", c.algorithm.as_str()), &c.value);
    }
    w.close("CopyObjectResult");
    Ok(response::xml(w.finish()))
}

fn copy_range(v: &str) -> Result<ByteRange, S3Error> {
    let bad = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(ByteRange::FromTo(a, b))
}

/// `PUT /bucket/key?partNumber=N&uploadId=U` with `x-amz-copy-source`
pub async fn upload_part_copy(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let n = part_number(req)?.ok_or_else(|| S3Error::invalid_argument("partNumber is required"))?;
    let id = cluster::UploadId::new(req.query.get("uploadId").unwrap_or(""))?;
    let (src_bucket, src_key) = source(req)?;
    let h = req.headers();
    let range = headers::get(h, "x-amz-copy-source-range")
        .map(copy_range)
        .transpose()?;
    let src_info = svc.store.head_object(&src_bucket, &src_key).await?;
    check_copy_source(h, &src_info.etag, src_info.last_modified)?;
    if let Some(ByteRange::FromTo(_, b)) = range {
        if b >= src_info.size {
            return Err(S3Error::invalid_argument(format!(
                "Range specified is not valid for source object of size: {}",
                src_info.size
            )));
        }
    }
    let len = match range {
        Some(ByteRange::FromTo(a, b)) => b - a + 1,
        _ => src_info.size,
    };
    if len > MAX_OBJECT_SIZE {
        return Err(S3Error::entity_too_large(MAX_OBJECT_SIZE));
    }
    // An empty source has no satisfiable range; copy it as an empty part.
    let body: cluster::ByteStream = if src_info.size == 0 {
        Box::pin(futures::stream::empty())
    } else {
        let got = svc
            .store
            .get_object(&src_bucket, &src_key, range, None)
            .await?;
        if got.info.etag != src_info.etag {
            // The source changed between the checks and the read: re-check on the new version.
            check_copy_source(h, &got.info.etag, got.info.last_modified)?;
        }
        got.body
    };
    let part = svc
        .store
        .upload_part(&bucket, &key, &id, n, body, PartOptions::default())
        .await?;
    let mut w = XmlWriter::new();
    w.root("CopyPartResult")
        .elem("LastModified", &iso8601(part.last_modified))
        .elem("ETag", &format!("\"{}\"", part.etag))
        .close("CopyPartResult");
    let mut r = response::xml(w.finish());
    *r.status_mut() = StatusCode::OK;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        let s = parse_copy_source("/bkt/dir/a%20b%2Bc").unwrap();
        assert_eq!(
            s,
            CopySource {
                bucket: "bkt".into(),
                key: "dir/a b+c".into()
            }
        );
        let s = parse_copy_source("bkt/k?versionId=null").unwrap();
        assert_eq!(s.key, "k");
        assert!(parse_copy_source("bkt/k?versionId=abc").is_err());
        assert!(parse_copy_source("bkt").is_err());
        assert!(parse_copy_source("/bkt/").is_err());
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_range("bytes=0-9").unwrap(), ByteRange::FromTo(0, 9));
        assert!(copy_range("bytes=9-0").is_err());
        assert!(copy_range("bytes=5-").is_err());
        assert!(copy_range("0-9").is_err());
    }
}
