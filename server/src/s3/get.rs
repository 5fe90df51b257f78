//! GetObject and HeadObject: `?versionId=null`, `?partNumber=N`, single byte ranges
//! (`bytes=a-b`, `a-`, `-n`; syntactically invalid ranges are ignored as S3 does,
//! unsatisfiable ones answer 416), conditional headers (304/412), `response-*` overrides,
//! stored content headers and metadata, and checksums with `x-amz-checksum-mode: ENABLED`.
//! The body streams from the engine to the socket; nothing is buffered here.

use std::ops::Range;

use cluster::{ByteRange, ObjectInfo, StoreError};
use http::{HeaderValue, Response, StatusCode};

use super::conditions::{self, Outcome};
use super::error::S3Error;
use super::headers;
use super::response::{self, header_value, ResBody};
use super::xml::XmlWriter;
use super::{S3Request, S3Service};

/// Parses a `Range` header. `None` means "ignore the header" (absent, not `bytes=`, several
/// ranges, or a reversed range), which S3 answers with the whole object.
pub fn parse_range(v: &str) -> Option<ByteRange> {
    let spec = v.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => None,
        (true, false) => Some(ByteRange::Suffix(num(b)?)),
        (false, true) => Some(ByteRange::From(num(a)?)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some(ByteRange::FromTo(a, b))
        }
    }
}

/// `?partNumber=N` validated to 1..=10000.
pub fn part_number(req: &S3Request) -> Result<Option<u32>, S3Error> {
    match req.query.get("partNumber") {
        None => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
            _ => Err(S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )),
        },
    }
}

/// `?versionId`: only `null` exists on unversioned buckets.
pub fn check_version_id(req: &S3Request) -> Result<(), S3Error> {
    match req.query.get("versionId") {
        None | Some("null") => Ok(()),
        Some(_) => Err(S3Error::invalid_argument("Invalid version id specified")),
    }
}

fn invalid_part_number() -> S3Error {
    S3Error::new(
        "InvalidPartNumber",
        StatusCode::RANGE_NOT_SATISFIABLE,
        "The requested partnumber is not satisfiable",
    )
}

/// The byte range of part `n` of `info` (HEAD computes it without reading data).
fn part_range(info: &ObjectInfo, n: u32) -> Result<Range<u64>, S3Error> {
    if info.parts.is_empty() {
        return if n == 1 {
            Ok(0..info.size)
        } else {
            Err(invalid_part_number())
        };
    }
    let mut start = 0u64;
    for p in &info.parts {
        if p.part_number == n {
            return Ok(start..start + p.size);
        }
        start += p.size;
    }
    Err(invalid_part_number())
}

fn not_modified(info: &ObjectInfo) -> Response<ResBody> {
    let mut r = response::status(StatusCode::NOT_MODIFIED);
    r.headers_mut()
        .insert(http::header::ETAG, response::etag_value(&info.etag));
    r.headers_mut().insert(
        http::header::LAST_MODIFIED,
        header_value(&response::http_date(info.last_modified)),
    );
    r
}

fn check_conditions(
    req: &S3Request,
    info: &ObjectInfo,
) -> Result<Option<Response<ResBody>>, S3Error> {
    match conditions::evaluate(req.headers(), &info.etag, info.last_modified) {
        Outcome::Proceed => Ok(None),
        Outcome::NotModified => Ok(Some(not_modified(info))),
        Outcome::PreconditionFailed => Err(S3Error::precondition_failed()),
    }
}

/// `GET|HEAD /bucket/key`
pub async fn get_object(
    svc: &S3Service,
    req: &mut S3Request,
    head: bool,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    check_version_id(req)?;
    let part = part_number(req)?;
    let range = headers::get(req.headers(), "range").and_then(parse_range);
    if part.is_some() && range.is_some() {
        return Err(S3Error::invalid_request(
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    let (info, resolved, body) = if head {
        let info = svc.store.head_object(&bucket, &key).await?;
        if let Some(r) = check_conditions(req, &info)? {
            return Ok(r);
        }
        let resolved = match (part, range) {
            (Some(n), _) if !info.parts.is_empty() => Some(part_range(&info, n)?),
            (Some(n), _) => {
                part_range(&info, n)?;
                None
            }
            (None, Some(r)) => Some(
                r.resolve(info.size)
                    .ok_or_else(|| S3Error::invalid_range(info.size))?,
            ),
            (None, None) => None,
        };
        (info, resolved, None)
    } else {
        let got = match svc.store.get_object(&bucket, &key, range, part).await {
            Ok(g) => g,
            Err(e @ (StoreError::InvalidRange { .. } | StoreError::InvalidPartNumber))
                if conditions::any_present(req.headers()) =>
            {
                // Preconditions outrank an unsatisfiable range.
                let info = svc.store.head_object(&bucket, &key).await?;
                if let Some(r) = check_conditions(req, &info)? {
                    return Ok(r);
                }
                return Err(map_get_error(e));
            }
            Err(e) => return Err(map_get_error(e)),
        };
        if let Some(r) = check_conditions(req, &got.info)? {
            return Ok(r);
        }
        let resolved = match part {
            Some(_) if got.info.parts.is_empty() => None,
            _ => got.range.clone(),
        };
        (got.info, resolved, Some(got.body))
    };

    let mut r = match body {
        Some(b) => Response::new(response::stream(b)),
        None => Response::new(response::empty()),
    };
    let h = r.headers_mut();
    headers::object_headers(h, &info);
    let len = match &resolved {
        Some(rg) => {
            h.insert(
                http::header::CONTENT_RANGE,
                header_value(&format!(
                    "bytes {}-{}/{}",
                    rg.start,
                    rg.end.saturating_sub(1),
                    info.size
                )),
            );
            rg.end - rg.start
        }
        None => info.size,
    };
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    if part.is_some() && !info.parts.is_empty() {
        h.insert("x-amz-mp-parts-count", HeaderValue::from(info.parts.len()));
    }
    let checksum_mode = headers::get(req.headers(), "x-amz-checksum-mode")
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    if checksum_mode {
        if resolved.is_none() {
            if let Some(c) = &info.checksum {
                headers::checksum_headers(h, c);
            }
        } else if let Some(n) = part {
            if let Some(c) = info
                .parts
                .iter()
                .find(|p| p.part_number == n)
                .and_then(|p| p.checksum.as_ref())
            {
                headers::checksum_headers(h, c);
            }
        }
    }
    headers::response_overrides(h, &req.query);
    *r.status_mut() = if resolved.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok(r)
}

fn map_get_error(e: StoreError) -> S3Error {
    match e {
        StoreError::InvalidPartNumber => invalid_part_number(),
        other => other.into(),
    }
}

/// `GET /bucket/key?tagging`: objects carry no tags here; the empty set.
pub async fn get_object_tagging(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    check_version_id(req)?;
    svc.store.head_object(&bucket, &key).await?;
    let mut w = XmlWriter::new();
    w.root("Tagging").raw("<TagSet></TagSet>").close("Tagging");
    Ok(response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_forms() {
        assert_eq!(parse_range("bytes=0-9"), Some(ByteRange::FromTo(0, 9)));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(parse_range("bytes=-3"), Some(ByteRange::Suffix(3)));
        assert_eq!(parse_range("bytes=9-5"), None);
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=-"), None);
        assert_eq!(parse_range("bytes=a-b"), None);
        assert_eq!(parse_range("bytes=99999999999999999999999-"), None);
    }
}
