//! Listing objects: ListObjectsV2 (prefix, delimiter, start-after, opaque continuation
//! tokens, max-keys, fetch-owner, encoding-type=url), ListObjects v1 (marker; NextMarker only
//! with a delimiter, as AWS), and ListObjectVersions on unversioned buckets (every object is
//! its own `null` version, latest). One engine range scan per page; this module only shapes
//! parameters and XML.

use base64::Engine as _;
use cluster::{ListPage, ListQuery, ObjectInfo};
use http::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::bucket::owner;
use super::error::S3Error;
use super::response::{self, iso8601, ResBody};
use super::router::Query;
use super::xml::XmlWriter;
use super::{S3Request, S3Service};

/// Upper bound (and default) of max-keys, as AWS.
pub const MAX_KEYS: usize = 1000;

/// Characters kept as-is under `encoding-type=url`: unreserved ones and `/`.
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Enc(bool);

impl Enc {
    fn apply(&self, s: &str) -> String {
        if self.0 {
            utf8_percent_encode(s, URL_KEEP).to_string()
        } else {
            s.to_string()
        }
    }
}

fn encoding(q: &Query) -> Result<Enc, S3Error> {
    match q.get("encoding-type") {
        None => Ok(Enc(false)),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(Enc(true)),
        Some(_) => Err(S3Error::invalid_argument(
            "Invalid Encoding Method specified in Request",
        )),
    }
}

/// Parses a max-keys style parameter: default/cap `cap`, negative or non-numeric refused.
pub fn max_param(q: &Query, name: &str, cap: usize) -> Result<usize, S3Error> {
    match q.get(name) {
        None => Ok(cap),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(cap))
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "Provided {name} not an integer or within integer range"
                ))
            }),
    }
}

fn delimiter(q: &Query) -> Option<String> {
    q.get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

async fn page(svc: &S3Service, req: &S3Request, query: ListQuery) -> Result<ListPage, S3Error> {
    let bucket = req.bucket()?;
    if query.max_keys == 0 {
        svc.store.bucket_info(&bucket).await?;
        return Ok(ListPage::default());
    }
    Ok(svc.store.list_objects(&bucket, &query).await?)
}

fn storage_class(o: &ObjectInfo) -> &str {
    o.meta.storage_class.as_deref().unwrap_or("STANDARD")
}

fn contents(w: &mut XmlWriter, svc: &S3Service, o: &ObjectInfo, enc: &Enc, with_owner: bool) {
    w.open("Contents")
        .elem("Key", &enc.apply(&o.key))
        .elem("LastModified", &iso8601(o.last_modified))
        .elem("ETag", &format!("\"{}\"", o.etag));
    if let Some(c) = &o.checksum {
        w.elem("ChecksumAlgorithm", c.algorithm.as_str());
    }
    w.elem("Size", &o.size.to_string());
    if with_owner {
        owner(w, svc);
    }
    w.elem("StorageClass", storage_class(o)).close("Contents");
}

fn common_prefixes(w: &mut XmlWriter, prefixes: &[String], enc: &Enc) {
    for p in prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.apply(p))
            .close("CommonPrefixes");
    }
}

fn encode_token(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

fn decode_token(t: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.trim().as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

/// `GET /bucket?list-type=2`
pub async fn list_objects_v2(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let q = &req.query;
    let enc = encoding(q)?;
    let max_keys = max_param(q, "max-keys", MAX_KEYS)?;
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(q);
    let token = q.get("continuation-token").map(str::to_string);
    let start_after = q
        .get("start-after")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let from = match &token {
        Some(t) => Some(decode_token(t)?),
        None => start_after.clone(),
    };
    let fetch_owner = q
        .get("fetch-owner")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let p = page(
        svc,
        req,
        ListQuery {
            prefix: prefix.clone(),
            delimiter: delim.clone(),
            start_after: from,
            max_keys,
        },
    )
    .await?;
    let bucket = req.target.bucket.as_deref().unwrap_or_default();
    let mut w = XmlWriter::new();
    w.root("ListBucketResult")
        .elem("Name", bucket)
        .elem("Prefix", &enc.apply(&prefix));
    if let Some(s) = &start_after {
        w.elem("StartAfter", &enc.apply(s));
    }
    if let Some(t) = &token {
        w.elem("ContinuationToken", t);
    }
    w.elem(
        "KeyCount",
        &(p.objects.len() + p.common_prefixes.len()).to_string(),
    )
    .elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delim {
        w.elem("Delimiter", &enc.apply(d));
    }
    if enc.0 {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", bool_str(p.is_truncated));
    if p.is_truncated {
        if let Some(n) = &p.next_start_after {
            w.elem("NextContinuationToken", &encode_token(n));
        }
    }
    for o in &p.objects {
        contents(&mut w, svc, o, &enc, fetch_owner);
    }
    common_prefixes(&mut w, &p.common_prefixes, &enc);
    w.close("ListBucketResult");
    Ok(response::xml(w.finish()))
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `GET /bucket`
pub async fn list_objects_v1(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let q = &req.query;
    let enc = encoding(q)?;
    let max_keys = max_param(q, "max-keys", MAX_KEYS)?;
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(q);
    let marker = q.get("marker").unwrap_or("").to_string();
    let p = page(
        svc,
        req,
        ListQuery {
            prefix: prefix.clone(),
            delimiter: delim.clone(),
            start_after: (!marker.is_empty()).then(|| marker.clone()),
            max_keys,
        },
    )
    .await?;
    let bucket = req.target.bucket.as_deref().unwrap_or_default();
    let mut w = XmlWriter::new();
    w.root("ListBucketResult")
        .elem("Name", bucket)
        .elem("Prefix", &enc.apply(&prefix))
        .elem("Marker", &enc.apply(&marker));
    if p.is_truncated && delim.is_some() {
        if let Some(n) = &p.next_start_after {
            w.elem("NextMarker", &enc.apply(n));
        }
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delim {
        w.elem("Delimiter", &enc.apply(d));
    }
    if enc.0 {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", bool_str(p.is_truncated));
    for o in &p.objects {
        contents(&mut w, svc, o, &enc, true);
    }
    common_prefixes(&mut w, &p.common_prefixes, &enc);
    w.close("ListBucketResult");
    Ok(response::xml(w.finish()))
}

/// `GET /bucket?versions`: each object as its `null` version.
pub async fn list_object_versions(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let q = &req.query;
    let enc = encoding(q)?;
    let max_keys = max_param(q, "max-keys", MAX_KEYS)?;
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(q);
    let key_marker = q.get("key-marker").unwrap_or("").to_string();
    let version_marker = q.get("version-id-marker").unwrap_or("").to_string();
    if !version_marker.is_empty() && key_marker.is_empty() {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let p = page(
        svc,
        req,
        ListQuery {
            prefix: prefix.clone(),
            delimiter: delim.clone(),
            start_after: (!key_marker.is_empty()).then(|| key_marker.clone()),
            max_keys,
        },
    )
    .await?;
    let bucket = req.target.bucket.as_deref().unwrap_or_default();
    let mut w = XmlWriter::new();
    w.root("ListVersionsResult")
        .elem("Name", bucket)
        .elem("Prefix", &enc.apply(&prefix))
        .elem("KeyMarker", &enc.apply(&key_marker))
        .elem("VersionIdMarker", &version_marker);
    if p.is_truncated {
        if let Some(n) = &p.next_start_after {
            w.elem("NextKeyMarker", &enc.apply(n))
                .elem("NextVersionIdMarker", "null");
        }
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delim {
        w.elem("Delimiter", &enc.apply(d));
    }
    if enc.0 {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", bool_str(p.is_truncated));
    for o in &p.objects {
        w.open("Version")
            .elem("Key", &enc.apply(&o.key))
            .elem("VersionId", "null")
            .elem("IsLatest", "true")
            .elem("LastModified", &iso8601(o.last_modified))
            .elem("ETag", &format!("\"{}\"", o.etag))
            .elem("Size", &o.size.to_string());
        owner(&mut w, svc);
        w.elem("StorageClass", storage_class(o)).close("Version");
    }
    common_prefixes(&mut w, &p.common_prefixes, &enc);
    w.close("ListVersionsResult");
    Ok(response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip_any_key() {
        for k in ["a", "dir/sub dir/ü+x", "%2F"] {
            assert_eq!(decode_token(&encode_token(k)).unwrap(), k);
        }
        assert!(decode_token("***").is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes_and_encodes_plus_and_space() {
        assert_eq!(Enc(true).apply("a b+c/d~e"), "a%20b%2Bc/d~e");
        assert_eq!(Enc(false).apply("a b"), "a b");
    }

    #[test]
    fn max_keys_is_capped_and_validated() {
        assert_eq!(
            max_param(&Query::parse(""), "max-keys", 1000).unwrap(),
            1000
        );
        assert_eq!(
            max_param(&Query::parse("max-keys=5000"), "max-keys", 1000).unwrap(),
            1000
        );
        assert_eq!(
            max_param(&Query::parse("max-keys=7"), "max-keys", 1000).unwrap(),
            7
        );
        assert!(max_param(&Query::parse("max-keys=-1"), "max-keys", 1000).is_err());
        assert!(max_param(&Query::parse("max-keys=x"), "max-keys", 1000).is_err());
    }
}
