//! Conditional requests as AWS evaluates them: `If-Match`, `If-None-Match`,
//! `If-Modified-Since`, `If-Unmodified-Since` on GET/HEAD (→ 412 or 304), and the
//! `x-amz-copy-source-if-*` family on copies (→ 412). Precedence follows RFC 7232 §6 as S3
//! documents it: a true `If-Match` overrides a false `If-Unmodified-Since`; a false
//! `If-None-Match` (the ETag matches) gives 304 whatever `If-Modified-Since` says. Dates are
//! compared at whole-second resolution. Pure functions; invalid dates are ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::error::S3Error;
use super::headers::{get, unquote};
use super::response::parse_http_date;

/// The result of evaluating conditional headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the request.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || unquote(t) == etag)
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

struct Conditions<'a> {
    if_match: Option<&'a str>,
    if_none_match: Option<&'a str>,
    if_modified_since: Option<SystemTime>,
    if_unmodified_since: Option<SystemTime>,
}

impl Conditions<'_> {
    /// Returns the outcome; `not_modified` is what a failed "none match / modified since"
    /// produces (304 for GET/HEAD, 412 for copy sources).
    fn evaluate(&self, etag: &str, last_modified: SystemTime, not_modified: Outcome) -> Outcome {
        let lm = seconds(last_modified);
        match self.if_match {
            Some(m) => {
                if !etag_matches(m, etag) {
                    return Outcome::PreconditionFailed;
                }
            }
            None => {
                if let Some(t) = self.if_unmodified_since {
                    if lm > seconds(t) {
                        return Outcome::PreconditionFailed;
                    }
                }
            }
        }
        match self.if_none_match {
            Some(m) => {
                if etag_matches(m, etag) {
                    return not_modified;
                }
            }
            None => {
                if let Some(t) = self.if_modified_since {
                    if lm <= seconds(t) {
                        return not_modified;
                    }
                }
            }
        }
        Outcome::Proceed
    }
}

/// Evaluates GET/HEAD conditionals against the object's ETag (unquoted) and Last-Modified.
pub fn evaluate(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> Outcome {
    Conditions {
        if_match: get(headers, "if-match"),
        if_none_match: get(headers, "if-none-match"),
        if_modified_since: get(headers, "if-modified-since").and_then(parse_http_date),
        if_unmodified_since: get(headers, "if-unmodified-since").and_then(parse_http_date),
    }
    .evaluate(etag, last_modified, Outcome::NotModified)
}

/// Whether any GET/HEAD conditional header is present.
pub fn any_present(headers: &HeaderMap) -> bool {
    [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    ]
    .iter()
    .any(|h| headers.contains_key(*h))
}

/// Evaluates `x-amz-copy-source-if-*` against the copy source: `Err(PreconditionFailed)`
/// when the copy must not happen.
pub fn check_copy_source(
    headers: &HeaderMap,
    etag: &str,
    last_modified: SystemTime,
) -> Result<(), S3Error> {
    let c = Conditions {
        if_match: get(headers, "x-amz-copy-source-if-match"),
        if_none_match: get(headers, "x-amz-copy-source-if-none-match"),
        if_modified_since: get(headers, "x-amz-copy-source-if-modified-since")
            .and_then(parse_http_date),
        if_unmodified_since: get(headers, "x-amz-copy-source-if-unmodified-since")
            .and_then(parse_http_date),
    };
    match c.evaluate(etag, last_modified, Outcome::PreconditionFailed) {
        Outcome::Proceed => Ok(()),
        _ => Err(S3Error::precondition_failed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    const ETAG: &str = "abc";

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn hm(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(t(secs))
    }

    #[test]
    fn if_match_and_if_none_match() {
        let lm = t(1_000_000);
        assert_eq!(
            evaluate(&hm(&[("if-match", "\"abc\"".into())]), ETAG, lm),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&hm(&[("if-match", "\"zzz\"".into())]), ETAG, lm),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&hm(&[("if-none-match", "\"abc\"".into())]), ETAG, lm),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&hm(&[("if-none-match", "*".into())]), ETAG, lm),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&hm(&[("if-none-match", "\"x\", \"abc\"".into())]), ETAG, lm),
            Outcome::NotModified
        );
    }

    #[test]
    fn dates_compare_at_second_resolution() {
        let lm = t(1_000_000) + Duration::from_millis(700);
        assert_eq!(
            evaluate(&hm(&[("if-modified-since", date(1_000_000))]), ETAG, lm),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&hm(&[("if-modified-since", date(999_999))]), ETAG, lm),
            Outcome::Proceed
        );
        assert_eq!(
            evaluate(&hm(&[("if-unmodified-since", date(999_999))]), ETAG, lm),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            evaluate(&hm(&[("if-unmodified-since", "garbage".into())]), ETAG, lm),
            Outcome::Proceed
        );
    }

    #[test]
    fn aws_precedence_rules() {
        let lm = t(1_000_000);
        // If-Match true + If-Unmodified-Since false → 200.
        assert_eq!(
            evaluate(
                &hm(&[
                    ("if-match", "\"abc\"".into()),
                    ("if-unmodified-since", date(1))
                ]),
                ETAG,
                lm
            ),
            Outcome::Proceed
        );
        // If-None-Match false + If-Modified-Since true → 304.
        assert_eq!(
            evaluate(
                &hm(&[
                    ("if-none-match", "\"abc\"".into()),
                    ("if-modified-since", date(1))
                ]),
                ETAG,
                lm
            ),
            Outcome::NotModified
        );
        // If-None-Match true + If-Modified-Since false → 200.
        assert_eq!(
            evaluate(
                &hm(&[
                    ("if-none-match", "\"x\"".into()),
                    ("if-modified-since", date(2_000_000))
                ]),
                ETAG,
                lm
            ),
            Outcome::Proceed
        );
        // 412 wins over 304.
        assert_eq!(
            evaluate(
                &hm(&[
                    ("if-match", "\"x\"".into()),
                    ("if-none-match", "\"abc\"".into())
                ]),
                ETAG,
                lm
            ),
            Outcome::PreconditionFailed
        );
    }

    #[test]
    fn copy_source_conditions_fail_with_412() {
        let lm = t(1_000_000);
        assert!(check_copy_source(&hm(&[]), ETAG, lm).is_ok());
        assert!(check_copy_source(
            &hm(&[("x-amz-copy-source-if-match", "\"abc\"".into())]),
            ETAG,
            lm
        )
        .is_ok());
        let e = check_copy_source(
            &hm(&[("x-amz-copy-source-if-none-match", "\"abc\"".into())]),
            ETAG,
            lm,
        )
        .unwrap_err();
        assert_eq!(e.code, "PreconditionFailed");
        assert!(check_copy_source(
            &hm(&[("x-amz-copy-source-if-modified-since", date(2_000_000))]),
            ETAG,
            lm
        )
        .is_err());
    }
}
