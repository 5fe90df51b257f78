//! PutObject: validates the request (key, size limit, metadata, Content-MD5, checksum headers
//! and trailer declaration, `If-None-Match: *` / `If-Match`) and streams the authenticated body
//! into the engine, which computes the ETag and checksums as the bytes pass. Never buffers
//! the body; never commits anything itself.

use cluster::PutOptions;
use http::{HeaderMap, Response, StatusCode};

use super::error::S3Error;
use super::headers;
use super::response::{self, etag_value, ResBody};
use super::{S3Request, S3Service, MAX_OBJECT_SIZE};

/// Rejects a request whose declared payload size exceeds `limit` before reading it.
pub fn check_declared_size(h: &HeaderMap, limit: u64) -> Result<(), S3Error> {
    let num = |name: &str| headers::get(h, name).and_then(|v| v.trim().parse::<u64>().ok());
    let declared = num("x-amz-decoded-content-length").or_else(|| num("content-length"));
    if let Some(n) = declared {
        if n > limit {
            return Err(S3Error::entity_too_large(limit));
        }
    }
    Ok(())
}

/// `PUT /bucket/key`
pub async fn put_object(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let h = req.headers();
    check_declared_size(h, MAX_OBJECT_SIZE)?;
    headers::refuse_unsupported_write_options(h)?;
    let meta = headers::object_meta(h)?;
    let precondition = headers::write_precondition(h)?;
    let content_md5 = headers::content_md5(h)?;
    let cs = headers::checksum_request(h)?;
    let body = req.take_body()?;
    if cs.trailer.is_some() && !body.is_chunked() {
        return Err(S3Error::invalid_request(
            "x-amz-trailer requires an aws-chunked (STREAMING-*) payload",
        ));
    }
    let opts = PutOptions {
        meta,
        precondition,
        content_md5,
        checksum_algorithm: cs.algorithm,
        expected_checksum: cs.expected,
    };
    let info = svc.store.put_object(&bucket, &key, body, opts).await?;
    let mut r = response::status(StatusCode::OK);
    r.headers_mut()
        .insert(http::header::ETAG, etag_value(&info.etag));
    if let Some(c) = &info.checksum {
        headers::checksum_headers(r.headers_mut(), c);
    }
    Ok(r)
}
