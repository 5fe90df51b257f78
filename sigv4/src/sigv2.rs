//! AWS Signature Version 2 (HMAC-SHA1), the legacy scheme still produced by `aws s3 presign`
//! (aws-cli v1) and `s3cmd signurl`: query auth (`AWSAccessKeyId`, `Signature`, `Expires`) and
//! header auth (`Authorization: AWS <key>:<signature>`). The canonical resource is the
//! request path, prefixed with `/<bucket>` for virtual-hosted-style requests (the server passes
//! the bucket via [`Verifier::verify_virtual_hosted`]). Never used for anything but verification; no payload signing exists in SigV2.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::authz::{parse_amz_date, parse_http_date};
use crate::canonical::{canonical_uri, percent_decode, PathMode};
use crate::verifier::{Authenticated, PayloadCheck, Verifier, MAX_CLOCK_SKEW_SECS};
use crate::{AuthError, RequestParts};

/// Query parameters that are part of the SigV2 canonical resource (sorted).
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "encryption",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Builds the SigV2 string to sign with `path` as the start of the canonical resource.
fn string_to_sign(
    req: &RequestParts,
    params: &[(Vec<u8>, Vec<u8>)],
    expires_or_date: &str,
    path: &str,
) -> Vec<u8> {
    let mut s = Vec::with_capacity(256);
    s.extend_from_slice(req.method.as_bytes());
    s.push(b'\n');
    for name in ["content-md5", "content-type"] {
        if let Some(v) = req.header_values(name).next() {
            s.extend_from_slice(v.trim_ascii());
        }
        s.push(b'\n');
    }
    s.extend_from_slice(expires_or_date.as_bytes());
    s.push(b'\n');
    // CanonicalizedAmzHeaders: x-amz-* lower-cased, sorted, repeated values joined with ','.
    let mut amz: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in req.headers {
        let lname = name.to_ascii_lowercase();
        if !lname.starts_with("x-amz-") {
            continue;
        }
        match amz.iter_mut().find(|(n, _)| *n == lname) {
            Some((_, v)) => {
                v.push(b',');
                v.extend_from_slice(value.trim_ascii());
            }
            None => amz.push((lname, value.trim_ascii().to_vec())),
        }
    }
    amz.sort();
    for (n, v) in amz {
        s.extend_from_slice(n.as_bytes());
        s.push(b':');
        s.extend_from_slice(&v);
        s.push(b'\n');
    }
    s.extend_from_slice(path.as_bytes());
    let mut subs: Vec<(&str, &[u8])> = params
        .iter()
        .filter_map(|(k, v)| {
            let k = std::str::from_utf8(k).ok()?;
            SUB_RESOURCES
                .binary_search(&k)
                .ok()
                .map(|i| (SUB_RESOURCES[i], v.as_slice()))
        })
        .collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        s.push(if i == 0 { b'?' } else { b'&' });
        s.extend_from_slice(k.as_bytes());
        if !v.is_empty() {
            s.push(b'=');
            s.extend_from_slice(v);
        }
    }
    s
}

/// Checks `provided` (base64) against HMAC-SHA1 over the string to sign, trying the path as
/// sent and then its S3 canonical encoding.
fn check(
    secret: &str,
    req: &RequestParts,
    params: &[(Vec<u8>, Vec<u8>)],
    expires_or_date: &str,
    host_bucket: Option<&str>,
    provided_b64: &[u8],
) -> Result<(), AuthError> {
    let provided = base64::engine::general_purpose::STANDARD
        .decode(provided_b64.trim_ascii())
        .map_err(|_| AuthError::SignatureDoesNotMatch)?;
    let raw = if req.raw_path.is_empty() {
        "/"
    } else {
        req.raw_path
    };
    let prefix = host_bucket.map(|b| format!("/{b}")).unwrap_or_default();
    let as_sent = format!("{prefix}{raw}");
    let canonical = format!("{prefix}{}", canonical_uri(raw, PathMode::S3));
    let mut paths = vec![as_sent.as_str()];
    if canonical != as_sent {
        paths.push(&canonical);
    }
    for path in paths {
        let sts = string_to_sign(req, params, expires_or_date, path);
        let mut mac =
            Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
        mac.update(&sts);
        let computed = mac.finalize().into_bytes();
        if bool::from(computed.as_slice().ct_eq(&provided)) {
            return Ok(());
        }
    }
    Err(AuthError::SignatureDoesNotMatch)
}

/// SigV2 query auth: `?AWSAccessKeyId=..&Expires=<unix seconds>&Signature=<base64>`.
pub(crate) fn verify_query(
    verifier: &Verifier,
    req: &RequestParts,
    params: &[(Vec<u8>, Vec<u8>)],
    host_bucket: Option<&str>,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let malformed = AuthError::AuthorizationQueryParametersError;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    let access_key = std::str::from_utf8(get("AWSAccessKeyId").unwrap_or_default())
        .map_err(|_| malformed("AWSAccessKeyId is not UTF-8".into()))?;
    let expires_raw = std::str::from_utf8(
        get("Expires")
            .ok_or_else(|| malformed("query-string authentication requires Expires".into()))?,
    )
    .map_err(|_| malformed("Expires is not a number".into()))?;
    let expires: i64 = expires_raw
        .parse()
        .map_err(|_| malformed("Expires is not a number".into()))?;
    if now.unix_timestamp() > expires {
        return Err(AuthError::ExpiredPresign);
    }
    let cred = verifier.lookup(access_key)?;
    // The Signature value was form-decoded with '+' as space; base64 never contains spaces,
    // so a space stands for a '+' the client did not escape.
    let raw_sig: Vec<u8> = req
        .raw_query
        .split('&')
        .find_map(|p| p.strip_prefix("Signature="))
        .map(|v| percent_decode(v.as_bytes(), false))
        .unwrap_or_default();
    check(
        &cred.secret_key,
        req,
        params,
        expires_raw,
        host_bucket,
        &raw_sig,
    )?;
    Ok(Authenticated {
        access_key: cred.access_key,
        principal: cred.principal,
        payload: PayloadCheck::Unsigned,
    })
}

/// SigV2 header auth: `Authorization: AWS <access key>:<base64 signature>`.
pub(crate) fn verify_header(
    verifier: &Verifier,
    req: &RequestParts,
    value: &str,
    params: &[(Vec<u8>, Vec<u8>)],
    host_bucket: Option<&str>,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let malformed = AuthError::AuthorizationHeaderMalformed;
    let (access_key, signature) = value
        .strip_prefix("AWS ")
        .and_then(|v| v.trim().rsplit_once(':'))
        .ok_or_else(|| malformed("expected 'AWS <access key>:<signature>'".into()))?;
    let (date_field, when) = match req.header_str("x-amz-date") {
        Some(d) => (
            String::new(),
            parse_http_date(d).or_else(|| parse_amz_date(d.trim())),
        ),
        None => match req.header_str("date") {
            Some(d) => (d.trim().to_string(), parse_http_date(d)),
            None => return Err(AuthError::MissingSecurityHeader),
        },
    };
    let when = when.ok_or_else(|| {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        )
    })?;
    if (now - when).whole_seconds().abs() > MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    let cred = verifier.lookup(access_key)?;
    check(
        &cred.secret_key,
        req,
        params,
        &date_field,
        host_bucket,
        signature.as_bytes(),
    )?;
    Ok(Authenticated {
        access_key: cred.access_key,
        principal: cred.principal,
        payload: PayloadCheck::Unsigned,
    })
}
