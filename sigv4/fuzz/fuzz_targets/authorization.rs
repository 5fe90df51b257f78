//! Fuzzes everything that parses client-controlled auth text: the Authorization header parser,
//! credential scopes, dates, canonical URI/query builders, and the full `Verifier::verify`
//! with the input as Authorization header and as query string. Must never panic or allocate
//! without bound.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sigv4::canonical::{canonical_query, canonical_uri, PathMode};
use sigv4::{RequestParts, StaticCredentials, Verifier};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        Verifier::new(
            "us-east-1",
            Arc::new(StaticCredentials::single("AKIAIOSFODNN7EXAMPLE", "secret")),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sigv4::authz::AuthorizationHeader::parse(s);
        let _ = sigv4::authz::CredentialScope::parse(s);
        let _ = sigv4::authz::parse_amz_date(s);
        let _ = sigv4::authz::parse_http_date(s);
        let _ = canonical_uri(s, PathMode::S3);
        let _ = canonical_uri(s, PathMode::Single { normalize: true });
        let _ = canonical_query(s, |_| false);
        let headers: &[(&str, &[u8])] = &[("host", b"h"), ("x-amz-date", b"20130524T000000Z")];
        let req = RequestParts {
            method: "GET",
            raw_path: s,
            raw_query: s,
            headers,
        };
        let _ = verifier().verify(&req, now);
    }
    let headers: &[(&str, &[u8])] = &[
        ("host", b"examplebucket.s3.amazonaws.com"),
        ("x-amz-date", b"20130524T000000Z"),
        ("x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
        ("authorization", data),
    ];
    let req = RequestParts {
        method: "PUT",
        raw_path: "/k",
        raw_query: "",
        headers,
    };
    let _ = verifier().verify(&req, now);
});
