//! Request headers → engine options, and engine values → response headers: content headers
//! and `x-amz-meta-*` (with AWS's 2 KB user-metadata limit), storage class, Content-MD5,
//! `x-amz-checksum-*` headers/algorithms/trailer declarations, write preconditions
//! (`If-None-Match: *`, `If-Match`), and the object headers of GET/HEAD. Pure functions: no
//! I/O, no store calls.

use std::collections::BTreeMap;

use base64::Engine as _;
use cluster::{Checksum, ChecksumAlgorithm, ObjectInfo, ObjectMeta, WritePrecondition};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::error::S3Error;
use super::response::{etag_value, header_value, http_date};

/// AWS's limit on user metadata (sum of key and value bytes).
pub const MAX_USER_METADATA: usize = 2 * 1024;
/// Content type S3 reports when none was stored.
pub const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// A header as text (`None` if absent or not visible ASCII/UTF-8).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// Content headers, storage class and user metadata from a PUT/POST/COPY(REPLACE) request.
pub fn object_meta(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    let text = |n: &str| get(headers, n).map(str::to_string);
    let content_encoding = get(headers, "content-encoding").and_then(|v| {
        let rest: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!rest.is_empty()).then(|| rest.join(","))
    });
    let storage_class = match get(headers, "x-amz-storage-class") {
        None => None,
        Some(sc) if STORAGE_CLASSES.contains(&sc) => Some(sc.to_string()),
        Some(sc) => {
            return Err(S3Error::new(
                "InvalidStorageClass",
                StatusCode::BAD_REQUEST,
                format!("The storage class you specified is not valid: {sc}"),
            ))
        }
    };
    let mut user = BTreeMap::new();
    let mut size = 0usize;
    for (name, value) in headers {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            size += k.len() + v.len();
            user.insert(k.to_string(), v);
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::new(
            "MetadataTooLarge",
            StatusCode::BAD_REQUEST,
            format!("Your metadata headers exceed the maximum allowed metadata size ({MAX_USER_METADATA} bytes)"),
        ));
    }
    Ok(ObjectMeta {
        content_type: text("content-type"),
        cache_control: text("cache-control"),
        content_disposition: text("content-disposition"),
        content_encoding,
        content_language: text("content-language"),
        expires: text("expires"),
        storage_class,
        user,
    })
}

/// `Content-MD5` as 16 bytes; `InvalidDigest` if present but not base64 of 16 bytes.
pub fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| S3Error::invalid_digest("The Content-MD5 you specified was invalid."))
}

/// What a request says about additional checksums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChecksumRequest {
    /// The algorithm the engine must compute (and store) while streaming.
    pub algorithm: Option<ChecksumAlgorithm>,
    /// A value sent as a header, to verify against the bytes.
    pub expected: Option<Checksum>,
    /// The checksum trailer the body will end with (`x-amz-trailer`).
    pub trailer: Option<ChecksumAlgorithm>,
}

/// Parses `x-amz-checksum-<alg>`, `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`
/// and `x-amz-trailer`.
pub fn checksum_request(headers: &HeaderMap) -> Result<ChecksumRequest, S3Error> {
    let mut expected = None;
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = headers.get(alg.header_name()) {
            if expected.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            let value = std::str::from_utf8(v.as_bytes())
                .unwrap_or("")
                .trim()
                .to_string();
            let c = Checksum {
                algorithm: alg,
                value,
            };
            if c.digest().is_err() {
                return Err(S3Error::invalid_request(format!(
                    "Value for {} header is invalid.",
                    alg.header_name()
                )));
            }
            expected = Some(c);
        }
    }
    let declared = match get(headers, "x-amz-sdk-checksum-algorithm")
        .or_else(|| get(headers, "x-amz-checksum-algorithm"))
    {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::invalid_request(format!("Checksum algorithm {name:?} is not supported"))
        })?),
    };
    let trailer = match get(headers, "x-amz-trailer") {
        None => None,
        Some(t) => {
            let t = t.trim();
            match ChecksumAlgorithm::from_name(t) {
                Some(a) if t.to_ascii_lowercase().starts_with("x-amz-checksum-") => Some(a),
                _ => {
                    return Err(S3Error::invalid_request(format!(
                        "The trailer {t:?} is not supported"
                    )))
                }
            }
        }
    };
    if let (Some(d), Some(e)) = (declared, &expected) {
        if d != e.algorithm {
            return Err(S3Error::invalid_request(
                "The x-amz-sdk-checksum-algorithm does not match the x-amz-checksum- header",
            ));
        }
    }
    let algorithm = expected
        .as_ref()
        .map(|c| c.algorithm)
        .or(trailer)
        .or(declared);
    Ok(ChecksumRequest {
        algorithm,
        expected,
        trailer,
    })
}

/// `If-None-Match: *` / `If-Match: "etag"` on a write.
pub fn write_precondition(headers: &HeaderMap) -> Result<Option<WritePrecondition>, S3Error> {
    let none_match = get(headers, "if-none-match").map(str::trim);
    let if_match = get(headers, "if-match").map(str::trim);
    match (none_match, if_match) {
        (None, None) => Ok(None),
        (Some("*"), None) => Ok(Some(WritePrecondition::IfNoneMatchAny)),
        (None, Some(m)) => Ok(Some(WritePrecondition::IfMatch(unquote(m).to_string()))),
        (Some(_), None) => Err(S3Error::not_implemented(
            "If-None-Match with a value other than * on a write",
        )),
        (Some(_), Some(_)) => Err(S3Error::not_implemented(
            "If-Match together with If-None-Match on a write",
        )),
    }
}

/// Refuses write options this server cannot honour rather than silently ignoring them:
/// SSE-C, SSE-KMS and Object Lock headers (501). `x-amz-server-side-encryption: AES256` is
/// accepted, as a no-op.
pub fn refuse_unsupported_write_options(h: &HeaderMap) -> Result<(), S3Error> {
    if h.keys().any(|n| {
        n.as_str()
            .starts_with("x-amz-server-side-encryption-customer-")
    }) {
        return Err(S3Error::not_implemented(
            "Server-side encryption with customer keys (SSE-C)",
        ));
    }
    if let Some(sse) = get(h, "x-amz-server-side-encryption") {
        if !sse.eq_ignore_ascii_case("AES256") {
            return Err(S3Error::not_implemented(&format!(
                "Server-side encryption {sse:?}"
            )));
        }
    }
    if h.keys()
        .any(|n| n.as_str().starts_with("x-amz-object-lock-"))
    {
        return Err(S3Error::not_implemented("Object Lock"));
    }
    Ok(())
}

/// Strips surrounding quotes and a weak prefix from an entity tag.
pub fn unquote(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(e)
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    h.insert(HeaderName::from_static(name), header_value(value));
}

/// The stored headers of an object: ETag, Last-Modified, content headers (with
/// `response-*` overrides applied by the caller afterwards), user metadata, storage class.
pub fn object_headers(h: &mut HeaderMap, info: &ObjectInfo) {
    h.insert(http::header::ETAG, etag_value(&info.etag));
    put(h, "last-modified", &http_date(info.last_modified));
    put(h, "accept-ranges", "bytes");
    let m = &info.meta;
    put(
        h,
        "content-type",
        m.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE),
    );
    for (name, v) in [
        ("cache-control", &m.cache_control),
        ("content-disposition", &m.content_disposition),
        ("content-encoding", &m.content_encoding),
        ("content-language", &m.content_language),
        ("expires", &m.expires),
    ] {
        if let Some(v) = v {
            put(h, name, v);
        }
    }
    if let Some(sc) = m.storage_class.as_deref().filter(|s| *s != "STANDARD") {
        put(h, "x-amz-storage-class", sc);
    }
    for (k, v) in &m.user {
        if let Ok(name) = HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()) {
            h.insert(name, header_value(v));
        }
    }
}

/// `x-amz-checksum-<alg>` (+ `x-amz-checksum-type`) for a stored checksum.
pub fn checksum_headers(h: &mut HeaderMap, c: &Checksum) {
    if let Ok(name) = HeaderName::from_bytes(c.algorithm.header_name().as_bytes()) {
        h.insert(name, header_value(&c.value));
    }
    let kind = if c.value.contains('-') {
        "COMPOSITE"
    } else {
        "FULL_OBJECT"
    };
    h.insert(
        HeaderName::from_static("x-amz-checksum-type"),
        HeaderValue::from_static(kind),
    );
}

/// Applies `response-content-type` & co. from the query of a GET.
pub fn response_overrides(h: &mut HeaderMap, q: &super::router::Query) {
    for (param, name) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = q.get(param) {
            h.insert(HeaderName::from_static(name), header_value(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn metadata_is_collected_and_aws_chunked_is_not_a_content_encoding() {
        let m = object_meta(&hm(&[
            ("content-type", "text/plain"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-meta-color", "blue"),
            ("x-amz-storage-class", "STANDARD_IA"),
        ]))
        .unwrap();
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.content_encoding, None);
        assert_eq!(m.user.get("color").map(String::as_str), Some("blue"));
        assert_eq!(m.storage_class.as_deref(), Some("STANDARD_IA"));
        let m = object_meta(&hm(&[("content-encoding", "aws-chunked,gzip")])).unwrap();
        assert_eq!(m.content_encoding.as_deref(), Some("gzip"));
    }

    #[test]
    fn oversized_metadata_and_bad_storage_class_are_refused() {
        let big = "x".repeat(2100);
        let e = object_meta(&hm(&[("x-amz-meta-big", &big)])).unwrap_err();
        assert_eq!(e.code, "MetadataTooLarge");
        let e = object_meta(&hm(&[("x-amz-storage-class", "FAST")])).unwrap_err();
        assert_eq!(e.code, "InvalidStorageClass");
    }

    #[test]
    fn content_md5_must_be_16_bytes_of_base64() {
        assert!(content_md5(&hm(&[])).unwrap().is_none());
        assert!(
            content_md5(&hm(&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")]))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            content_md5(&hm(&[("content-md5", "nope")]))
                .unwrap_err()
                .code,
            "InvalidDigest"
        );
    }

    #[test]
    fn checksum_headers_and_trailers() {
        let r = checksum_request(&hm(&[("x-amz-checksum-crc32", "AAAAAA==")])).unwrap();
        assert_eq!(r.algorithm, Some(ChecksumAlgorithm::Crc32));
        assert!(r.expected.is_some());
        let r = checksum_request(&hm(&[
            ("x-amz-trailer", "x-amz-checksum-crc64nvme"),
            ("x-amz-sdk-checksum-algorithm", "CRC64NVME"),
        ]))
        .unwrap();
        assert_eq!(r.trailer, Some(ChecksumAlgorithm::Crc64Nvme));
        assert_eq!(r.algorithm, Some(ChecksumAlgorithm::Crc64Nvme));
        assert!(checksum_request(&hm(&[("x-amz-checksum-crc32", "zz")])).is_err());
        assert!(checksum_request(&hm(&[("x-amz-sdk-checksum-algorithm", "MD4")])).is_err());
    }

    #[test]
    fn unsupported_write_options_are_refused() {
        assert!(refuse_unsupported_write_options(&hm(&[(
            "x-amz-server-side-encryption",
            "AES256"
        )]))
        .is_ok());
        for (k, v) in [
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ("x-amz-object-lock-mode", "GOVERNANCE"),
        ] {
            let e = refuse_unsupported_write_options(&hm(&[(k, v)])).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_IMPLEMENTED, "{k}");
        }
    }

    #[test]
    fn write_preconditions() {
        assert_eq!(
            write_precondition(&hm(&[("if-none-match", "*")])).unwrap(),
            Some(WritePrecondition::IfNoneMatchAny)
        );
        assert_eq!(
            write_precondition(&hm(&[("if-match", "\"abc\"")])).unwrap(),
            Some(WritePrecondition::IfMatch("abc".into()))
        );
        assert_eq!(
            write_precondition(&hm(&[("if-none-match", "\"abc\"")]))
                .unwrap_err()
                .status,
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
