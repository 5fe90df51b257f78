//! Runs the AWS SigV4 signing test suite (shared/vectors/aws-signing-test-suite/v4): for every
//! case, the canonical request, string to sign and signature of both header and query signing
//! must match byte for byte, and the full `Verifier::verify` must accept the signed request
//! (and reject it with one signature digit changed).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{shared_vectors, OwnedRequest};
use sigv4::authz::{parse_amz_date, AuthorizationHeader};
use sigv4::canonical::{
    canonical_query, canonical_request, canonical_uri, hmac_sha256, sha256_hex, signing_key,
    string_to_sign, PathMode, EMPTY_SHA256_HEX,
};
use sigv4::{AuthError, PayloadCheck, PayloadHasher, StaticCredentials, Verifier};

struct Context {
    access_key: String,
    secret: String,
    region: String,
    service: String,
    normalize: bool,
    sign_body: bool,
    /// The signer appended X-Amz-Security-Token after signing (not part of the signature).
    omit_session_token: bool,
    amz_date: String,
}

fn load_context(dir: &Path) -> Option<Context> {
    let text = std::fs::read_to_string(dir.join("context.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).expect("context.json parses");
    let ts = v["timestamp"].as_str().expect("timestamp");
    // "2015-08-30T12:36:00Z" -> "20150830T123600Z"
    let amz_date: String = ts.chars().filter(|c| *c != '-' && *c != ':').collect();
    Some(Context {
        access_key: v["credentials"]["access_key_id"].as_str()?.to_string(),
        secret: v["credentials"]["secret_access_key"].as_str()?.to_string(),
        region: v["region"].as_str()?.to_string(),
        service: v["service"].as_str()?.to_string(),
        normalize: v["normalize"].as_bool().unwrap_or(true),
        sign_body: v["sign_body"].as_bool().unwrap_or(false),
        omit_session_token: v["omit_session_token"].as_bool().unwrap_or(false),
        amz_date,
    })
}

fn read(dir: &Path, f: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(f)).ok()
}

fn time_of(amz_date: &str) -> SystemTime {
    let t = parse_amz_date(amz_date).expect("timestamp");
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64)
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    checks_passed: usize,
    verify_passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, case: &str, what: &str, ok: bool) {
        if ok {
            self.checks_passed += 1;
        } else {
            self.failures.push(format!("{case}: {what}"));
        }
    }
}

/// Header-signing checks for one case with a context.json.
fn header_case(name: &str, dir: &Path, ctx: &Context, mode: PathMode, tally: &mut Tally) {
    let Some(signed_text) = read(dir, "header-signed-request.txt") else {
        return;
    };
    let signed = OwnedRequest::parse_http(&signed_text);
    let auth_value = signed
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| String::from_utf8(v.clone()).expect("utf8"))
        .expect("authorization header");
    let auth = AuthorizationHeader::parse(&auth_value).expect("suite header parses");
    let payload_hash = if ctx.sign_body {
        sha256_hex(&signed.body)
    } else {
        EMPTY_SHA256_HEX.to_string()
    };
    let creq = signed.with_parts(|p| {
        canonical_request(
            p,
            &canonical_uri(&signed.path, mode),
            &canonical_query(&signed.query, |_| false),
            &auth.signed_headers,
            &payload_hash,
        )
        .expect("signed headers present")
    });
    let want_creq = read(dir, "header-canonical-request.txt").expect("canonical request");
    tally.check(
        name,
        "header canonical request",
        creq == want_creq.as_bytes(),
    );
    let scope = auth.credential.scope_string();
    let sts = string_to_sign(&ctx.amz_date, &scope, &creq);
    if let Some(want) = read(dir, "header-string-to-sign.txt") {
        tally.check(name, "header string to sign", sts == want);
    }
    let key = signing_key(&ctx.secret, &ctx.amz_date[..8], &ctx.region, &ctx.service);
    let sig = hex::encode(hmac_sha256(&key, sts.as_bytes()));
    if let Some(want) = read(dir, "header-signature.txt") {
        tally.check(name, "header signature", sig == want.trim());
    }
    // Full verification of the signed request.
    let verifier = Verifier::with_service(
        &ctx.region,
        &ctx.service,
        mode,
        Arc::new(StaticCredentials::single(&ctx.access_key, &ctx.secret)),
    );
    let now = time_of(&ctx.amz_date);
    let result = signed.with_parts(|p| verifier.verify(p, now));
    let ok = match result {
        Ok(a) => match a.payload {
            PayloadCheck::Sha256(h) => {
                let mut hasher = PayloadHasher::new(h);
                hasher.update(&signed.body);
                hasher.finish().is_ok()
            }
            _ => false,
        },
        Err(e) => {
            eprintln!("{name}: header verify error {e:?}");
            false
        }
    };
    tally.check(name, "header verify()", ok);
    if ok {
        tally.verify_passed += 1;
    }
    // One flipped signature digit must be rejected.
    let mut tampered = signed.clone();
    for (n, v) in tampered.headers.iter_mut() {
        if n.eq_ignore_ascii_case("authorization") {
            let last = v.len() - 1;
            v[last] = if v[last] == b'0' { b'1' } else { b'0' };
        }
    }
    let rejected = matches!(
        tampered.with_parts(|p| verifier.verify(p, now)),
        Err(AuthError::SignatureDoesNotMatch)
    );
    tally.check(name, "header tamper rejected", rejected);
}

/// Query-signing (presign) checks for one case with a context.json.
fn query_case(name: &str, dir: &Path, ctx: &Context, mode: PathMode, tally: &mut Tally) {
    let Some(signed_text) = read(dir, "query-signed-request.txt") else {
        return;
    };
    let mut signed = OwnedRequest::parse_http(&signed_text);
    let payload_hash = if ctx.sign_body {
        sha256_hex(&signed.body)
    } else {
        EMPTY_SHA256_HEX.to_string()
    };
    let params = sigv4::canonical::parse_query(&signed.query);
    let signed_headers_raw = params
        .iter()
        .find(|(k, _)| k == b"X-Amz-SignedHeaders")
        .map(|(_, v)| String::from_utf8(v.clone()).expect("utf8"))
        .expect("X-Amz-SignedHeaders");
    let signed_headers: Vec<&str> = signed_headers_raw.split(';').collect();
    let creq = signed.with_parts(|p| {
        canonical_request(
            p,
            &canonical_uri(&signed.path, mode),
            &canonical_query(&signed.query, |k| {
                k == b"X-Amz-Signature" || (ctx.omit_session_token && k == b"X-Amz-Security-Token")
            }),
            &signed_headers,
            &payload_hash,
        )
        .expect("signed headers present")
    });
    let want_creq = read(dir, "query-canonical-request.txt").expect("canonical request");
    tally.check(
        name,
        "query canonical request",
        creq == want_creq.as_bytes(),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        &ctx.amz_date[..8],
        ctx.region,
        ctx.service
    );
    let sts = string_to_sign(&ctx.amz_date, &scope, &creq);
    if let Some(want) = read(dir, "query-string-to-sign.txt") {
        tally.check(name, "query string to sign", sts == want);
    }
    let key = signing_key(&ctx.secret, &ctx.amz_date[..8], &ctx.region, &ctx.service);
    let sig = hex::encode(hmac_sha256(&key, sts.as_bytes()));
    if let Some(want) = read(dir, "query-signature.txt") {
        tally.check(name, "query signature", sig == want.trim());
    }
    if ctx.sign_body {
        // A presigned request carries its payload hash in an (unsigned) header.
        signed.headers.push((
            "x-amz-content-sha256".into(),
            payload_hash.clone().into_bytes(),
        ));
    }
    let verifier = Verifier::with_service(
        &ctx.region,
        &ctx.service,
        mode,
        Arc::new(StaticCredentials::single(&ctx.access_key, &ctx.secret)),
    );
    let now = time_of(&ctx.amz_date) + Duration::from_secs(60);
    if ctx.omit_session_token {
        // The token query parameter was added after signing. S3 signs every query parameter
        // but X-Amz-Signature, so such a request is (correctly) rejected by a verifier.
        let r = signed.with_parts(|p| verifier.verify(p, now));
        tally.check(
            name,
            "query with unsigned token rejected",
            r.err() == Some(AuthError::SignatureDoesNotMatch),
        );
        return;
    }
    let ok = match signed.with_parts(|p| verifier.verify(p, now)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("{name}: query verify error {e:?}");
            false
        }
    };
    tally.check(name, "query verify()", ok);
    if ok {
        tally.verify_passed += 1;
    }
    let expired = signed.with_parts(|p| verifier.verify(p, now + Duration::from_secs(3600)));
    tally.check(
        name,
        "query expiry enforced",
        expired.err() == Some(AuthError::ExpiredPresign),
    );
    let mut tampered = signed.clone();
    let last = tampered.query.len() - 1;
    let b = tampered.query.as_bytes()[last];
    tampered
        .query
        .replace_range(last.., if b == b'0' { "1" } else { "0" });
    let rejected = matches!(
        tampered.with_parts(|p| verifier.verify(p, now)),
        Err(AuthError::SignatureDoesNotMatch)
    );
    tally.check(name, "query tamper rejected", rejected);
}

/// The two legacy cases without context.json: double-encoded paths (non-S3 services).
fn legacy_case(name: &str, dir: &Path, tally: &mut Tally) {
    let req = OwnedRequest::parse_http(&read(dir, "request.txt").expect("request"));
    let want = read(dir, "header-canonical-request.txt").expect("canonical");
    let want_uri = want.lines().nth(1).expect("uri line");
    let got = canonical_uri(&req.path, PathMode::Double { normalize: true });
    tally.check(name, "double-encoded canonical URI", got == want_uri);
    // S3 rules must NOT double-encode the same path.
    tally.check(
        name,
        "S3 single encoding differs",
        canonical_uri(&req.path, PathMode::S3) != want_uri,
    );
    if let Some(want_sts) = read(dir, "header-string-to-sign.txt") {
        let mut lines = want_sts.lines();
        let (_, date, scope) = (
            lines.next(),
            lines.next().expect("date"),
            lines.next().expect("scope"),
        );
        let sts = string_to_sign(date, scope, want.as_bytes());
        tally.check(name, "legacy string to sign", sts == want_sts.trim_end());
    }
}

#[test]
fn aws_signing_test_suite_passes() {
    let Some(root) = shared_vectors("aws-signing-test-suite/v4") else {
        return;
    };
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("suite dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut tally = Tally::default();
    for dir in &dirs {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        tally.cases += 1;
        match load_context(dir) {
            Some(ctx) => {
                // normalize=false is exactly S3's rule set.
                let mode = PathMode::Single {
                    normalize: ctx.normalize,
                };
                header_case(&name, dir, &ctx, mode, &mut tally);
                query_case(&name, dir, &ctx, mode, &mut tally);
            }
            None => legacy_case(&name, dir, &mut tally),
        }
    }
    println!(
        "signing suite: {} cases, {} byte-for-byte/behaviour checks passed, {} full verify() passed, {} failed",
        tally.cases,
        tally.checks_passed,
        tally.verify_passed,
        tally.failures.len()
    );
    assert!(tally.cases >= 40, "suite incomplete: {} cases", tally.cases);
    assert!(
        tally.failures.is_empty(),
        "failures:\n{}",
        tally.failures.join("\n")
    );
}
