//! Building responses: the response body type (buffered or streamed from the engine), XML and
//! empty responses, the S3 XML error document (none on HEAD), and the date formats S3 uses
//! (IMF-fixdate in headers, ISO 8601 with milliseconds in XML). Never reads a request.

use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt as _;
use http::{HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};

use super::error::S3Error;
use super::xml::XmlWriter;

/// Every response body: a buffered document or an object's byte stream.
pub type ResBody = UnsyncBoxBody<Bytes, io::Error>;

/// An empty body.
pub fn empty() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A buffered body.
pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streamed body: an `Err` from the stream aborts the connection (the client sees a
/// truncated body, never wrong bytes).
pub fn stream(s: cluster::ByteStream) -> ResBody {
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

/// `200` with an XML document.
pub fn xml(doc: String) -> Response<ResBody> {
    xml_status(StatusCode::OK, doc)
}

/// An XML document with the given status.
pub fn xml_status(status: StatusCode, doc: String) -> Response<ResBody> {
    let mut r = Response::new(full(doc));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// An empty response with the given status.
pub fn status(status: StatusCode) -> Response<ResBody> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// The S3 error document; `head` requests get the status and headers only.
pub fn error(err: &S3Error, resource: &str, request_id: &str, head: bool) -> Response<ResBody> {
    let mut r = if head {
        status(err.status)
    } else {
        let mut w = XmlWriter::new();
        w.open("Error")
            .elem("Code", err.code)
            .elem("Message", &err.message)
            .elem("Resource", resource)
            .elem("RequestId", request_id)
            .close("Error");
        xml_status(err.status, w.finish())
    };
    for (n, v) in &err.headers {
        r.headers_mut().insert(n.clone(), v.clone());
    }
    r
}

/// A header value from text that may contain bytes not allowed in headers (those are
/// percent-encoded rather than dropping the header).
pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| {
        let enc = percent_encoding::utf8_percent_encode(s, percent_encoding::CONTROLS).to_string();
        HeaderValue::from_str(&enc).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// A quoted ETag header value.
pub fn etag_value(etag: &str) -> HeaderValue {
    header_value(&format!("\"{etag}\""))
}

/// `Wed, 25 Nov 2026 14:00:00 GMT` (RFC 7231 IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// `2026-11-25T14:00:00.000Z` (what S3 writes in XML).
pub fn iso8601(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime); `None` when invalid (S3 then
/// ignores the conditional header).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_in_both_s3_formats() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_615_200_123);
        assert_eq!(iso8601(t), "2026-11-25T14:00:00.123Z");
        assert_eq!(http_date(t), "Wed, 25 Nov 2026 14:00:00 GMT");
        assert_eq!(
            parse_http_date("Wed, 25 Nov 2026 14:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_615_200))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn head_errors_have_no_body() {
        let e = S3Error::no_such_key();
        let r = error(&e, "/b/k", "RID", true);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(http_body::Body::size_hint(r.body()).exact(), Some(0));
        let r = error(&e, "/b/k", "RID", false);
        assert!(http_body::Body::size_hint(r.body()).exact().unwrap() > 0);
    }
}
