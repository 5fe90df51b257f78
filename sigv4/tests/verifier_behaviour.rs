//! Policy behaviour of `Verifier::verify`: clock skew, presign expiry bounds, scope checks,
//! missing/unsigned headers, payload modes, credential rotation, anonymous requests, and the
//! SigV2 examples of the S3 documentation (query and header auth).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::OwnedRequest;
use sigv4::canonical::{
    canonical_query, canonical_request, canonical_uri, hmac_sha256, sha256_hex, signing_key,
    string_to_sign, uri_encode, PathMode, EMPTY_SHA256_HEX,
};
use sigv4::{
    AuthError, Credential, CredentialsProvider, PayloadCheck, PayloadHasher, StaticCredentials,
    Verifier,
};

const AK: &str = "AKIDTEST";
const SK: &str = "test-secret";
const DATE: &str = "20240102T030405Z";

fn t0() -> SystemTime {
    // 2024-01-02T03:04:05Z
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645)
}

fn verifier() -> Verifier {
    Verifier::new("us-east-1", Arc::new(StaticCredentials::single(AK, SK)))
}

/// Signs a request in the header with this crate's canonical functions (validated separately
/// against the AWS suite and aws-sigv4). `signed` must be sorted and include `host`.
fn sign_header(
    req: &mut OwnedRequest,
    signed: &[&str],
    payload_hash: &str,
    region: &str,
    secret: &str,
) {
    let scope = format!("{}/{region}/s3/aws4_request", &DATE[..8]);
    let creq = req.with_parts(|p| {
        canonical_request(
            p,
            &canonical_uri(&req.path, PathMode::S3),
            &canonical_query(&req.query, |_| false),
            signed,
            payload_hash,
        )
        .expect("signed headers present")
    });
    let key = signing_key(secret, &DATE[..8], region, "s3");
    let sig = hex::encode(hmac_sha256(
        &key,
        string_to_sign(DATE, &scope, &creq).as_bytes(),
    ));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={}, Signature={sig}",
        signed.join(";")
    );
    req.headers
        .push(("Authorization".into(), auth.into_bytes()));
}

fn base_request(payload_hash: &str) -> OwnedRequest {
    OwnedRequest {
        method: "PUT".into(),
        path: "/bucket/some%20key".into(),
        query: "x-id=PutObject".into(),
        headers: vec![
            ("Host".into(), b"localhost:9000".to_vec()),
            ("X-Amz-Date".into(), DATE.as_bytes().to_vec()),
            (
                "X-Amz-Content-Sha256".into(),
                payload_hash.as_bytes().to_vec(),
            ),
        ],
        body: Vec::new(),
    }
}

fn signed_request(payload_hash: &str) -> OwnedRequest {
    let mut r = base_request(payload_hash);
    sign_header(
        &mut r,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        payload_hash,
        "us-east-1",
        SK,
    );
    r
}

fn verify(r: &OwnedRequest, now: SystemTime) -> Result<sigv4::Authenticated, AuthError> {
    r.with_parts(|p| verifier().verify(p, now))
}

#[test]
fn clock_skew_beyond_15_minutes_is_request_time_too_skewed() {
    let r = signed_request("UNSIGNED-PAYLOAD");
    assert!(verify(&r, t0() + Duration::from_secs(14 * 60)).is_ok());
    assert!(verify(&r, t0() - Duration::from_secs(14 * 60)).is_ok());
    assert_eq!(
        verify(&r, t0() + Duration::from_secs(16 * 60)).err(),
        Some(AuthError::RequestTimeTooSkewed)
    );
    assert_eq!(
        verify(&r, t0() - Duration::from_secs(16 * 60)).err(),
        Some(AuthError::RequestTimeTooSkewed)
    );
    assert_eq!(
        AuthError::RequestTimeTooSkewed.s3_code(),
        "RequestTimeTooSkewed"
    );
}

#[test]
fn date_header_is_used_when_x_amz_date_is_absent() {
    let mut r = base_request("UNSIGNED-PAYLOAD");
    r.headers.retain(|(n, _)| n != "X-Amz-Date");
    r.headers
        .push(("Date".into(), b"Tue, 02 Jan 2024 03:04:05 GMT".to_vec()));
    sign_header(
        &mut r,
        &["date", "host", "x-amz-content-sha256"],
        "UNSIGNED-PAYLOAD",
        "us-east-1",
        SK,
    );
    assert!(verify(&r, t0()).is_ok());
    let mut none = base_request("UNSIGNED-PAYLOAD");
    none.headers.retain(|(n, _)| n != "X-Amz-Date");
    sign_header(&mut none, &["host"], "UNSIGNED-PAYLOAD", "us-east-1", SK);
    assert_eq!(
        verify(&none, t0()).err(),
        Some(AuthError::MissingSecurityHeader)
    );
}

#[test]
fn signed_header_absent_from_request_is_rejected() {
    let mut r = base_request("UNSIGNED-PAYLOAD");
    r.headers.push(("x-amz-meta-a".into(), b"1".to_vec()));
    sign_header(
        &mut r,
        &["host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-a"],
        "UNSIGNED-PAYLOAD",
        "us-east-1",
        SK,
    );
    assert!(verify(&r, t0()).is_ok());
    r.headers.retain(|(n, _)| n != "x-amz-meta-a");
    assert!(
        matches!(verify(&r, t0()), Err(AuthError::AuthorizationHeaderMalformed(m)) if m.contains("x-amz-meta-a"))
    );
}

#[test]
fn signed_headers_must_include_host() {
    let mut r = base_request("UNSIGNED-PAYLOAD");
    sign_header(
        &mut r,
        &["x-amz-content-sha256", "x-amz-date"],
        "UNSIGNED-PAYLOAD",
        "us-east-1",
        SK,
    );
    assert!(matches!(
        verify(&r, t0()),
        Err(AuthError::AuthorizationHeaderMalformed(_))
    ));
}

#[test]
fn wrong_region_and_unknown_key_are_rejected() {
    let mut r = base_request("UNSIGNED-PAYLOAD");
    sign_header(
        &mut r,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "UNSIGNED-PAYLOAD",
        "eu-west-1",
        SK,
    );
    assert!(
        matches!(verify(&r, t0()), Err(AuthError::AuthorizationHeaderMalformed(m)) if m.contains("region"))
    );
    let r = signed_request("UNSIGNED-PAYLOAD");
    let other = Verifier::new(
        "us-east-1",
        Arc::new(StaticCredentials::single("SOMEONEELSE", SK)),
    );
    assert_eq!(
        r.with_parts(|p| other.verify(p, t0())).err(),
        Some(AuthError::InvalidAccessKeyId)
    );
    let mut wrong_secret = base_request("UNSIGNED-PAYLOAD");
    sign_header(
        &mut wrong_secret,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "UNSIGNED-PAYLOAD",
        "us-east-1",
        "nope",
    );
    assert_eq!(
        verify(&wrong_secret, t0()).err(),
        Some(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn anonymous_and_mixed_auth_are_told_apart() {
    let anon = base_request("UNSIGNED-PAYLOAD");
    assert_eq!(verify(&anon, t0()).err(), Some(AuthError::Missing));
    let mut mixed = signed_request("UNSIGNED-PAYLOAD");
    mixed.query.push_str("&X-Amz-Signature=00");
    assert!(matches!(
        verify(&mixed, t0()),
        Err(AuthError::InvalidRequest(_))
    ));
    let mut sigv4a = base_request("UNSIGNED-PAYLOAD");
    sigv4a.headers.push((
        "Authorization".into(),
        b"AWS4-ECDSA-P256-SHA256 Credential=x".to_vec(),
    ));
    assert!(matches!(
        verify(&sigv4a, t0()),
        Err(AuthError::InvalidRequest(_))
    ));
}

#[test]
fn payload_modes_map_to_payload_checks() {
    let body = b"hello world";
    let h = sha256_hex(body);
    match verify(&signed_request(&h), t0())
        .expect("signed payload")
        .payload
    {
        PayloadCheck::Sha256(d) => {
            let mut ok = PayloadHasher::new(d);
            ok.update(body);
            assert!(ok.finish().is_ok());
            let mut bad = PayloadHasher::new(d);
            bad.update(b"hello world!");
            assert_eq!(bad.finish(), Err(AuthError::XAmzContentSHA256Mismatch));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        verify(&signed_request("UNSIGNED-PAYLOAD"), t0())
            .unwrap()
            .payload,
        PayloadCheck::Unsigned
    ));
    for mode in [
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    ] {
        assert!(
            matches!(
                verify(&signed_request(mode), t0()).unwrap().payload,
                PayloadCheck::Chunked(_)
            ),
            "{mode}"
        );
    }
    assert_eq!(
        verify(&signed_request("not-a-hash"), t0()).err(),
        Some(AuthError::InvalidContentSha256)
    );
    // A header-signed request without x-amz-content-sha256 signs the empty body.
    let mut r = base_request(EMPTY_SHA256_HEX);
    r.headers.retain(|(n, _)| n != "X-Amz-Content-Sha256");
    sign_header(
        &mut r,
        &["host", "x-amz-date"],
        EMPTY_SHA256_HEX,
        "us-east-1",
        SK,
    );
    match verify(&r, t0()).unwrap().payload {
        PayloadCheck::Sha256(d) => assert_eq!(hex::encode(d), EMPTY_SHA256_HEX),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsigned_trailer_upload_flows_through_verify() {
    let mut r = base_request("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    r.headers
        .push(("x-amz-decoded-content-length".into(), b"11".to_vec()));
    r.headers
        .push(("x-amz-trailer".into(), b"x-amz-checksum-crc32".to_vec()));
    sign_header(
        &mut r,
        &[
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-decoded-content-length",
            "x-amz-trailer",
        ],
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "us-east-1",
        SK,
    );
    let PayloadCheck::Chunked(mut d) = verify(&r, t0()).unwrap().payload else {
        panic!("chunked")
    };
    let mut out = Vec::new();
    d.decode(
        b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
        &mut out,
    )
    .unwrap();
    let t = d.finish().unwrap();
    assert_eq!(out, b"hello world");
    assert_eq!(t.checksum(), Some(("x-amz-checksum-crc32", "DUoRhQ==")));
}

/// Presigns GET /bucket/key with our canonical functions.
fn presigned(expires: &str, extra_query: &str) -> OwnedRequest {
    let scope = format!("{}/us-east-1/s3/aws4_request", &DATE[..8]);
    let mut cred = String::new();
    uri_encode(format!("{AK}/{scope}").as_bytes(), false, &mut cred);
    let mut query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred}&X-Amz-Date={DATE}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
    );
    query.push_str(extra_query);
    let mut r = OwnedRequest {
        method: "GET".into(),
        path: "/bucket/key".into(),
        query,
        headers: vec![("host".into(), b"localhost:9000".to_vec())],
        body: Vec::new(),
    };
    let creq = r.with_parts(|p| {
        canonical_request(
            p,
            "/bucket/key",
            &canonical_query(&r.query, |_| false),
            &["host"],
            "UNSIGNED-PAYLOAD",
        )
        .unwrap()
    });
    let key = signing_key(SK, &DATE[..8], "us-east-1", "s3");
    let sig = hex::encode(hmac_sha256(
        &key,
        string_to_sign(DATE, &scope, &creq).as_bytes(),
    ));
    r.query.push_str(&format!("&X-Amz-Signature={sig}"));
    r
}

#[test]
fn presign_expiry_is_enforced_and_bounded() {
    let r = presigned("3600", "");
    assert!(matches!(
        verify(&r, t0() + Duration::from_secs(3599))
            .unwrap()
            .payload,
        PayloadCheck::Unsigned
    ));
    let expired = verify(&r, t0() + Duration::from_secs(3601)).err();
    assert_eq!(expired, Some(AuthError::ExpiredPresign));
    assert_eq!(AuthError::ExpiredPresign.s3_code(), "AccessDenied");
    assert!(matches!(
        verify(&r, t0() - Duration::from_secs(3600)),
        Err(AuthError::AccessDenied(_))
    ));
    assert!(verify(
        &presigned("604800", ""),
        t0() + Duration::from_secs(604_000)
    )
    .is_ok());
    for bad in ["0", "604801", "-5", "abc"] {
        assert!(
            matches!(
                verify(&presigned(bad, ""), t0()),
                Err(AuthError::AuthorizationQueryParametersError(_))
            ),
            "X-Amz-Expires={bad}"
        );
    }
    // Query parameters are signed too: an added parameter breaks the signature.
    let mut r = presigned("3600", "&response-content-type=text%2Fplain");
    assert!(verify(&r, t0()).is_ok());
    r.query = r.query.replace("text%2Fplain", "text%2Fhtml");
    assert_eq!(
        verify(&r, t0()).err(),
        Some(AuthError::SignatureDoesNotMatch)
    );
}

/// A provider whose secret can be rotated, to check the signing-key cache never serves a key
/// derived from an old secret.
struct Rotating(Mutex<String>);
impl CredentialsProvider for Rotating {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        (access_key == AK).then(|| Credential {
            access_key: AK.into(),
            secret_key: self.0.lock().unwrap().clone(),
            principal: "rotating".into(),
        })
    }
}

#[test]
fn signing_key_cache_follows_secret_rotation() {
    let provider = Arc::new(Rotating(Mutex::new(SK.into())));
    let v = Verifier::new("us-east-1", provider.clone());
    let r = signed_request("UNSIGNED-PAYLOAD");
    let ok = r.with_parts(|p| v.verify(p, t0())).unwrap();
    assert_eq!(ok.principal, "rotating");
    assert!(
        r.with_parts(|p| v.verify(p, t0())).is_ok(),
        "cached key works"
    );
    *provider.0.lock().unwrap() = "rotated".into();
    assert_eq!(
        r.with_parts(|p| v.verify(p, t0())).err(),
        Some(AuthError::SignatureDoesNotMatch)
    );
}

// ---- SigV2: the examples of the S3 REST authentication documentation ----

const DOC_AK: &str = "AKIAIOSFODNN7EXAMPLE";
const DOC_SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn doc_verifier() -> Verifier {
    Verifier::new(
        "us-east-1",
        Arc::new(StaticCredentials::single(DOC_AK, DOC_SK)),
    )
}

fn v2_header_request(
    method: &str,
    path: &str,
    date: &str,
    sig: &str,
    extra: &[(&str, &str)],
) -> OwnedRequest {
    let mut headers = vec![
        ("Host".to_string(), b"s3.amazonaws.com".to_vec()),
        ("Date".to_string(), date.as_bytes().to_vec()),
        (
            "Authorization".to_string(),
            format!("AWS {DOC_AK}:{sig}").into_bytes(),
        ),
    ];
    for (n, v) in extra {
        headers.push((n.to_string(), v.as_bytes().to_vec()));
    }
    OwnedRequest {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: Vec::new(),
    }
}

#[test]
fn sigv2_documented_header_examples_verify() {
    let v = doc_verifier();
    let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    // Tue, 27 Mar 2007 19:36:42 +0000 = 1175024202
    let get = v2_header_request(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        "Tue, 27 Mar 2007 19:36:42 +0000",
        "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
        &[],
    );
    let a = get
        .with_parts(|p| v.verify(p, at(1_175_024_202)))
        .expect("documented GET");
    assert!(matches!(a.payload, PayloadCheck::Unsigned));
    let put = v2_header_request(
        "PUT",
        "/johnsmith/photos/puppy.jpg",
        "Tue, 27 Mar 2007 21:15:45 +0000",
        "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
        &[("Content-Type", "image/jpeg"), ("Content-Length", "94328")],
    );
    assert!(
        put.with_parts(|p| v.verify(p, at(1_175_030_145))).is_ok(),
        "documented PUT"
    );
    // Raw path kept as sent (lower-case escapes).
    let uni = v2_header_request(
        "GET",
        "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
        "Wed, 28 Mar 2007 01:49:49 +0000",
        "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
        &[],
    );
    assert!(
        uni.with_parts(|p| v.verify(p, at(1_175_046_589))).is_ok(),
        "documented unicode GET"
    );
    // Tampering and skew.
    let mut bad = get.clone();
    bad.path = "/johnsmith/photos/kitten.jpg".into();
    assert_eq!(
        bad.with_parts(|p| v.verify(p, at(1_175_024_202))).err(),
        Some(AuthError::SignatureDoesNotMatch)
    );
    assert_eq!(
        get.with_parts(|p| v.verify(p, at(1_175_024_202 + 3600)))
            .err(),
        Some(AuthError::RequestTimeTooSkewed)
    );
}

#[test]
fn sigv2_documented_presigned_url_verifies_until_it_expires() {
    let v = doc_verifier();
    let r = OwnedRequest {
        method: "GET".into(),
        path: "/johnsmith/photos/puppy.jpg".into(),
        query: "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D".into(),
        headers: vec![("Host".into(), b"s3.amazonaws.com".to_vec())],
        body: Vec::new(),
    };
    let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_000);
    let a = r
        .with_parts(|p| v.verify(p, before))
        .expect("documented presigned URL");
    assert_eq!(a.access_key, DOC_AK);
    let after = SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_621);
    assert_eq!(
        r.with_parts(|p| v.verify(p, after)).err(),
        Some(AuthError::ExpiredPresign)
    );
    let mut tampered = r.clone();
    tampered.query = tampered
        .query
        .replace("Expires=1175139620", "Expires=1175139629");
    assert_eq!(
        tampered.with_parts(|p| v.verify(p, before)).err(),
        Some(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn every_error_has_an_s3_code() {
    let all = [
        AuthError::Missing,
        AuthError::SignatureDoesNotMatch,
        AuthError::AccessDenied(String::new()),
        AuthError::AuthorizationHeaderMalformed(String::new()),
        AuthError::AuthorizationQueryParametersError(String::new()),
        AuthError::InvalidAccessKeyId,
        AuthError::RequestTimeTooSkewed,
        AuthError::ExpiredPresign,
        AuthError::MissingSecurityHeader,
        AuthError::XAmzContentSHA256Mismatch,
        AuthError::InvalidContentSha256,
        AuthError::InvalidChunk(String::new()),
        AuthError::ChunkSignatureDoesNotMatch,
        AuthError::IncompleteBody,
        AuthError::InvalidDigest,
        AuthError::InvalidRequest(String::new()),
    ];
    for e in all {
        let code = e.s3_code();
        assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()),
            "{e:?}"
        );
    }
}
