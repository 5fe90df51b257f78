//! Parsing of SigV4 credentials as they arrive: the `Authorization: AWS4-HMAC-SHA256 ...`
//! header, the `X-Amz-*` presign query parameters, credential scopes and SigV4 timestamps.
//! Parsing only: nothing here computes or compares a signature, and every input is treated as
//! hostile (bounded, no panics; fuzzed by `fuzz/fuzz_targets/authorization.rs`).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The SigV4 algorithm name this crate verifies.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Longest `Authorization` header value accepted (S3 allows 8 KiB of headers per line).
pub const MAX_AUTHORIZATION_LEN: usize = 16 * 1024;

/// `<access key>/<YYYYMMDD>/<region>/<service>/aws4_request`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// The access key id (everything before the last four `/`-separated parts).
    pub access_key: &'a str,
    /// `YYYYMMDD`.
    pub date: &'a str,
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, `s3` for S3.
    pub service: &'a str,
}

impl<'a> CredentialScope<'a> {
    /// Parses a credential value; `None` when it does not have the five parts or does not end
    /// with `aws4_request`.
    pub fn parse(credential: &'a str) -> Option<Self> {
        let mut it = credential.rsplitn(5, '/');
        let terminator = it.next()?;
        let service = it.next()?;
        let region = it.next()?;
        let date = it.next()?;
        let access_key = it.next()?;
        if terminator != "aws4_request"
            || access_key.is_empty()
            || region.is_empty()
            || service.is_empty()
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(CredentialScope {
            access_key,
            date,
            region,
            service,
        })
    }

    /// `YYYYMMDD/region/service/aws4_request` (the scope line of the string to sign).
    pub fn scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    /// The credential scope.
    pub credential: CredentialScope<'a>,
    /// Signed header names, as listed (lower-case, `;`-separated on the wire).
    pub signed_headers: Vec<&'a str>,
    /// The signature, 32 bytes decoded from 64 hex digits.
    pub signature: [u8; 32],
}

/// Why an `Authorization` header (or presign query) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not `AWS4-HMAC-SHA256` (e.g. SigV4a or something unknown).
    #[error("unsupported authorization algorithm")]
    UnsupportedAlgorithm,
    /// Structurally wrong; the message says what.
    #[error("{0}")]
    Malformed(&'static str),
}

/// Parses a 64-hex-digit signature (either case).
pub fn parse_signature_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Parses a `;`-separated signed-headers list: non-empty, lower-case names, no duplicates.
pub fn parse_signed_headers(s: &str) -> Result<Vec<&str>, ParseError> {
    let names: Vec<&str> = s.split(';').collect();
    if names.len() > 256 {
        return Err(ParseError::Malformed("too many signed headers"));
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
        {
            return Err(ParseError::Malformed("invalid SignedHeaders entry"));
        }
        if names[..i].contains(n) {
            return Err(ParseError::Malformed("duplicate SignedHeaders entry"));
        }
    }
    Ok(names)
}

impl<'a> AuthorizationHeader<'a> {
    /// Parses the header value. Components may come in any order, separated by `,` and
    /// optional whitespace; each must appear exactly once.
    pub fn parse(value: &'a str) -> Result<Self, ParseError> {
        if value.len() > MAX_AUTHORIZATION_LEN {
            return Err(ParseError::Malformed("authorization header too long"));
        }
        let value = value.trim();
        let (algorithm, rest) = value
            .split_once([' ', '\t'])
            .ok_or(ParseError::Malformed("missing authorization components"))?;
        if algorithm != ALGORITHM {
            return Err(ParseError::UnsupportedAlgorithm);
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or(ParseError::Malformed("authorization component without '='"))?;
            let slot = match k.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return Err(ParseError::Malformed("unknown authorization component")),
            };
            if slot.replace(v.trim()).is_some() {
                return Err(ParseError::Malformed("repeated authorization component"));
            }
        }
        let credential = credential.ok_or(ParseError::Malformed("missing Credential"))?;
        let signed = signed.ok_or(ParseError::Malformed("missing SignedHeaders"))?;
        let signature = signature.ok_or(ParseError::Malformed("missing Signature"))?;
        Ok(AuthorizationHeader {
            credential: CredentialScope::parse(credential)
                .ok_or(ParseError::Malformed("malformed Credential"))?,
            signed_headers: parse_signed_headers(signed)?,
            signature: parse_signature_hex(signature)
                .ok_or(ParseError::Malformed("Signature must be 64 hex digits"))?,
        })
    }
}

/// Parses an ISO 8601 basic timestamp `YYYYMMDDTHHMMSSZ` (the `x-amz-date` format).
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
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

/// Parses an HTTP `Date` header (RFC 7231 IMF-fixdate, also RFC 850 / asctime via RFC 2822
/// leniency), e.g. `Fri, 24 May 2013 00:00:00 GMT`.
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822) {
        return Some(t);
    }
    // "GMT" is accepted by RFC 2822 parsing in `time`; fall back to an explicit format.
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_header() {
        let h = AuthorizationHeader::parse(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-date, \
             Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        )
        .unwrap();
        assert_eq!(h.credential.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            h.credential.scope_string(),
            "20130524/us-east-1/s3/aws4_request"
        );
        assert_eq!(h.signed_headers, vec!["host", "range", "x-amz-date"]);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=a/2013052/r/s/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/20130524/r/s/aws4_request, SignedHeaders=Host, Signature=00",
        ] {
            assert!(AuthorizationHeader::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AuthorizationHeader::parse("AWS4-ECDSA-P256-SHA256 Credential=x"),
            Err(ParseError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        assert!(parse_amz_date("20130532T000000Z").is_none());
        let d = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(d, t);
    }
}
