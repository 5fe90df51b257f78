//! An independent, minimal SigV4 signer for raw-HTTP tests (header auth, presigned query,
//! and the aws-chunked modes: signed chunks, signed chunks + signed trailer, unsigned chunks
//! and trailer). Written from the AWS documentation with hmac/sha2 so the server's verifier
//! is checked against a second implementation, not against itself.

#![allow(dead_code)]

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::common::{ACCESS_KEY, REGION, SECRET_KEY};

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, REGION.as_bytes());
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

/// `YYYYMMDDTHHMMSSZ` for now (or `offset_secs` from now).
pub fn amz_date(offset_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// RFC 3986 encoding as SigV4 wants it (`/` kept when `keep_slash`).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-_.~".contains(c) || (keep_slash && c == '/') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &[(String, String)]) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    q.sort();
    q.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request to sign: `path` already URI-encoded as it will be sent, query unencoded.
pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub seed_signature: String,
    pub amz_date: String,
    pub scope: String,
    pub key: Vec<u8>,
}

/// Header-signs `req` with `payload_hash` (hex, or a STREAMING-*/UNSIGNED-PAYLOAD literal).
/// Adds x-amz-date, x-amz-content-sha256 and Authorization.
pub fn sign_headers(req: &Req, payload_hash: &str, secret: &str, date_offset: i64) -> Signed {
    let amz = amz_date(date_offset);
    let date = &amz[..8];
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let mut headers = req.headers.clone();
    headers.push(("x-amz-date".into(), amz.clone()));
    headers.push(("x-amz-content-sha256".into(), payload_hash.into()));
    let mut canon: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    canon.sort();
    let signed_names = canon
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(&req.query),
        canon
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect::<String>(),
        signed_names,
        payload_hash
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(secret, date);
    let sig = hex::encode(hmac(&key, sts.as_bytes()));
    headers.push((
        "authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed_names}, Signature={sig}"),
    ));
    Signed {
        headers,
        seed_signature: sig,
        amz_date: amz,
        scope,
        key,
    }
}

/// Serialises a request (HTTP/1.1, `Connection: close`).
pub fn to_bytes(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", canonical_query(query))
    };
    let mut s = format!("{method} {path}{q} HTTP/1.1\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("connection: close\r\n\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A complete signed request (payload signed with its SHA-256).
pub fn signed_request(
    host: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.into())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers.push(("content-length".into(), body.len().to_string()));
    let req = Req {
        method,
        path,
        query: query.clone(),
        headers,
    };
    let s = sign_headers(&req, &sha256_hex(body), SECRET_KEY, 0);
    to_bytes(method, path, &query, &s.headers, body)
}

fn chunk_signature(key: &[u8], amz: &str, scope: &str, prev: &str, data: &[u8]) -> String {
    let sts = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{}",
        sha256_hex(data)
    );
    hex::encode(hmac(key, sts.as_bytes()))
}

/// Body framing for the aws-chunked modes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Chunked {
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD
    Signed,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
    SignedTrailer,
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
    UnsignedTrailer,
}

/// A complete aws-chunked PUT of `data` in `chunk`-byte chunks; `trailer` = (header name,
/// base64 value) for the trailer modes. `tamper` flips one byte of the first chunk's data
/// after signing.
pub fn chunked_put(
    host: &str,
    path: &str,
    data: &[u8],
    chunk: usize,
    mode: Chunked,
    trailer: Option<(&str, &str)>,
    tamper: bool,
) -> Vec<u8> {
    let content_sha = match mode {
        Chunked::Signed => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        Chunked::SignedTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        Chunked::UnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    };
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.into()),
        ("content-encoding".into(), "aws-chunked".into()),
        (
            "x-amz-decoded-content-length".into(),
            data.len().to_string(),
        ),
    ];
    if let Some((name, _)) = trailer {
        headers.push(("x-amz-trailer".into(), name.into()));
    }
    // Body first (its length is signed as content-length).
    let req_for_sig = |body_len: usize| {
        let mut h = headers.clone();
        h.push(("content-length".into(), body_len.to_string()));
        Req {
            method: "PUT",
            path,
            query: vec![],
            headers: h,
        }
    };
    // Two passes: the body length does not depend on signatures (fixed 64 hex chars).
    let build = |signed: &Signed| -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = signed.seed_signature.clone();
        let signed_chunks = mode != Chunked::UnsignedTrailer;
        let mut pieces: Vec<&[u8]> = data.chunks(chunk.max(1)).collect();
        pieces.push(&[]);
        for (i, piece) in pieces.iter().enumerate() {
            if signed_chunks {
                let sig =
                    chunk_signature(&signed.key, &signed.amz_date, &signed.scope, &prev, piece);
                body.extend_from_slice(
                    format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes(),
                );
                prev = sig;
            } else {
                body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            }
            let mut p = piece.to_vec();
            if tamper && i == 0 && !p.is_empty() {
                p[0] ^= 1;
            }
            body.extend_from_slice(&p);
            if !piece.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        match (mode, trailer) {
            (Chunked::Signed, _) | (_, None) => body.extend_from_slice(b"\r\n"),
            (Chunked::UnsignedTrailer, Some((n, v))) => {
                body.extend_from_slice(format!("{n}:{v}\r\n\r\n").as_bytes());
            }
            (Chunked::SignedTrailer, Some((n, v))) => {
                let trailer_text = format!("{n}:{v}\n");
                let sts = format!(
                    "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
                    signed.amz_date,
                    signed.scope,
                    sha256_hex(trailer_text.as_bytes())
                );
                let sig = hex::encode(hmac(&signed.key, sts.as_bytes()));
                body.extend_from_slice(
                    format!("{n}:{v}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes(),
                );
            }
        }
        body
    };
    let probe = sign_headers(&req_for_sig(0), content_sha, SECRET_KEY, 0);
    let len = build(&probe).len();
    let signed = sign_headers(&req_for_sig(len), content_sha, SECRET_KEY, 0);
    let body = build(&signed);
    assert_eq!(body.len(), len);
    to_bytes("PUT", path, &[], &signed.headers, &body)
}

/// A presigned URL path+query (SigV4 query auth) valid for `expires` seconds from
/// `start_offset` seconds relative to now.
pub fn presign(host: &str, method: &str, path: &str, expires: u64, start_offset: i64) -> String {
    let amz = amz_date(start_offset);
    let date = &amz[..8];
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let query: Vec<(String, String)> = vec![
        ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
        ("X-Amz-Credential".into(), format!("{ACCESS_KEY}/{scope}")),
        ("X-Amz-Date".into(), amz.clone()),
        ("X-Amz-Expires".into(), expires.to_string()),
        ("X-Amz-SignedHeaders".into(), "host".into()),
    ];
    let canonical = format!(
        "{method}\n{path}\n{}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        canonical_query(&query)
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let sig = hex::encode(hmac(&signing_key(SECRET_KEY, date), sts.as_bytes()));
    format!("{path}?{}&X-Amz-Signature={sig}", canonical_query(&query))
}
