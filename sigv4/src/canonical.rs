//! The SigV4 canonical forms: canonical URI, canonical query string, canonical headers, the
//! canonical request, the string to sign, and the HMAC signing-key derivation. Everything here
//! is a pure function of its inputs; this module never decides whether a request is accepted
//! (that is [`crate::Verifier`]'s job) and never looks at clocks or credentials stores.
//!
//! S3 rules (the default, [`PathMode::S3`]): the path is taken exactly as sent, its
//! percent-escapes are decoded once and the bytes re-encoded with the unreserved set
//! `A-Z a-z 0-9 - _ . ~` (plus `/`), uppercase hex; no dot-segment removal, no slash merging,
//! no double encoding. Query parameters are decoded (`+` counts as a space) and re-encoded with
//! the unreserved set, then sorted by encoded name and then encoded value.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::RequestParts;

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of the empty string, hex: the payload hash of an empty body.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How the canonical URI is derived from the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// Decode the raw path's escapes once, then encode once (S3 and the signing suite's
    /// `service`). With `normalize`, dot segments are removed and empty segments dropped first
    /// (every service except S3).
    Single {
        /// Remove `.`/`..` segments and merge repeated slashes (RFC 3986 style).
        normalize: bool,
    },
    /// Encode the raw path again as sent (`%` becomes `%25`): services other than S3 that
    /// double-encode (e.g. Lambda, API Gateway).
    Double {
        /// As for [`PathMode::Single`].
        normalize: bool,
    },
}

impl PathMode {
    /// S3's rules: single encoding, no normalization.
    pub const S3: PathMode = PathMode::Single { normalize: false };
}

/// True for the bytes SigV4 never percent-encodes.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `bytes` with SigV4's unreserved set, keeping `/` when `keep_slash`.
pub fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 15) as usize] as char);
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once. A `%` not followed by two hex digits stays literal.
/// With `plus_is_space`, `+` decodes to a space (query strings).
pub fn percent_decode(raw: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex_val(raw[i + 1]), hex_val(raw[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        if b == b'+' && plus_is_space {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Removes dot segments and empty segments from a path (the non-S3 normalization).
fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segs {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    let trailing = path.ends_with(b"/");
    if out.is_empty() || (trailing && !segs.is_empty()) {
        out.push(b'/');
    }
    out
}

/// The canonical URI of `raw_path` (as sent, still percent-encoded) under `mode`.
pub fn canonical_uri(raw_path: &str, mode: PathMode) -> String {
    let raw = if raw_path.is_empty() { "/" } else { raw_path };
    let mut out = String::with_capacity(raw.len() + 16);
    match mode {
        PathMode::Single { normalize } => {
            let decoded = percent_decode(raw.as_bytes(), false);
            let path = if normalize {
                normalize_path(&decoded)
            } else {
                decoded
            };
            uri_encode(&path, true, &mut out);
        }
        PathMode::Double { normalize } => {
            let path = if normalize {
                normalize_path(raw.as_bytes())
            } else {
                raw.as_bytes().to_vec()
            };
            uri_encode(&path, true, &mut out);
        }
    }
    out
}

/// Splits a raw query into decoded (name, value) pairs, skipping empty segments.
/// A parameter without `=` has an empty value.
pub fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = match pair.find('=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, ""),
            };
            (
                percent_decode(k.as_bytes(), true),
                percent_decode(v.as_bytes(), true),
            )
        })
        .collect()
}

/// The canonical query string: every parameter of `raw_query` except those for which
/// `skip(decoded_name)` is true, encoded and sorted by encoded name, then encoded value.
pub fn canonical_query(raw_query: &str, skip: impl Fn(&[u8]) -> bool) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .filter(|(k, _)| !skip(k))
        .map(|(k, v)| {
            let mut ek = String::with_capacity(k.len());
            uri_encode(&k, false, &mut ek);
            let mut ev = String::with_capacity(v.len());
            uri_encode(&v, false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Which bytes count as whitespace when header values are trimmed and folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFolding {
    /// Only spaces (what S3 and the Rust/Java/Go SDKs do).
    Spaces,
    /// Spaces, tabs, CR and LF (what botocore and MinIO do: `' '.join(value.split())`).
    Whitespace,
}

impl HeaderFolding {
    fn is_ws(self, b: u8) -> bool {
        match self {
            HeaderFolding::Spaces => b == b' ',
            HeaderFolding::Whitespace => matches!(b, b' ' | b'\t' | b'\r' | b'\n'),
        }
    }
}

/// Appends a header value trimmed, with each run of whitespace folded to one space.
fn push_folded(value: &[u8], folding: HeaderFolding, out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut any = false;
    for &b in value {
        if folding.is_ws(b) {
            pending_space = any;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            any = true;
        }
    }
}

/// True if any value of a signed header contains a byte the two foldings treat differently,
/// i.e. [`HeaderFolding::Whitespace`] would give a different canonical request.
pub fn folding_matters(req: &RequestParts, signed_headers: &[&str]) -> bool {
    signed_headers.iter().any(|name| {
        req.header_values(name)
            .any(|v| v.iter().any(|&b| matches!(b, b'\t' | b'\r' | b'\n')))
    })
}

/// Writes the canonical header block (`name:value\n` per signed header, in the order given).
/// Values of a repeated header are trimmed, folded and joined with `,`.
/// Returns the name of the first signed header the request lacks, as the error.
pub fn canonical_headers<'n>(
    req: &RequestParts,
    signed_headers: &[&'n str],
    folding: HeaderFolding,
    out: &mut Vec<u8>,
) -> Result<(), &'n str> {
    for &name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut n = 0;
        for v in req.header_values(name) {
            if n > 0 {
                out.push(b',');
            }
            push_folded(v, folding, out);
            n += 1;
        }
        if n == 0 {
            return Err(name);
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The full canonical request:
/// `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED;HEADERS\nPAYLOAD_HASH`.
/// Header values are folded with [`HeaderFolding::Spaces`] (S3).
/// Errors with the name of a signed header that is absent from the request.
pub fn canonical_request<'n>(
    req: &RequestParts,
    canonical_uri: &str,
    canonical_query: &str,
    signed_headers: &[&'n str],
    payload_hash: &str,
) -> Result<Vec<u8>, &'n str> {
    canonical_request_folded(
        req,
        canonical_uri,
        canonical_query,
        signed_headers,
        payload_hash,
        HeaderFolding::Spaces,
    )
}

/// [`canonical_request`] with an explicit header folding rule.
pub fn canonical_request_folded<'n>(
    req: &RequestParts,
    canonical_uri: &str,
    canonical_query: &str,
    signed_headers: &[&'n str],
    payload_hash: &str,
    folding: HeaderFolding,
) -> Result<Vec<u8>, &'n str> {
    let mut out = Vec::with_capacity(256 + canonical_uri.len() + canonical_query.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    canonical_headers(req, signed_headers, folding, &mut out)?;
    out.push(b'\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key: HMAC chain over `AWS4<secret>`, date (`YYYYMMDD`), region, service,
/// `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let k_date = hmac_sha256(&k, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_path_is_decoded_once_and_reencoded() {
        assert_eq!(canonical_uri("/b/a%20b+c", PathMode::S3), "/b/a%20b%2Bc");
        assert_eq!(canonical_uri("/b/%2F/x", PathMode::S3), "/b///x");
        assert_eq!(canonical_uri("/b//./../x", PathMode::S3), "/b//./../x");
        assert_eq!(canonical_uri("/b/100%", PathMode::S3), "/b/100%25");
        assert_eq!(canonical_uri("", PathMode::S3), "/");
        assert_eq!(canonical_uri("/%e1%88%b4", PathMode::S3), "/%E1%88%B4");
    }

    #[test]
    fn normalization_removes_dot_segments() {
        let n = PathMode::Single { normalize: true };
        assert_eq!(canonical_uri("/example/..", n), "/");
        assert_eq!(canonical_uri("//example//", n), "/example/");
        assert_eq!(canonical_uri("/./example", n), "/example");
        assert_eq!(canonical_uri("//", n), "/");
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        let q = canonical_query("b=2&a=&c&a=1&x=%7e+y&&", |_| false);
        assert_eq!(q, "a=&a=1&b=2&c=&x=~%20y");
    }

    #[test]
    fn header_values_are_folded_and_joined() {
        let headers: &[(&str, &[u8])] = &[("X-A", b"  a   b \t c "), ("x-a", b"d"), ("Host", b"h")];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers,
        };
        let mut out = Vec::new();
        canonical_headers(&req, &["host", "x-a"], HeaderFolding::Whitespace, &mut out).unwrap();
        assert_eq!(out, b"host:h\nx-a:a b c,d\n");
        out.clear();
        canonical_headers(&req, &["host", "x-a"], HeaderFolding::Spaces, &mut out).unwrap();
        assert_eq!(out, b"host:h\nx-a:a b \t c,d\n");
        assert!(folding_matters(&req, &["x-a"]));
        assert_eq!(
            canonical_headers(
                &req,
                &["host", "x-b"],
                HeaderFolding::Spaces,
                &mut Vec::new()
            ),
            Err("x-b")
        );
    }
}
