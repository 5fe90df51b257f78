//! [`Verifier`]: decides whether a request is authentic and tells the caller how the body
//! must still be checked ([`PayloadCheck`]). It owns the policy (clock skew, presign expiry,
//! region/service scope, which payload modes exist) and the signing-key cache. It never reads
//! a body, never sees an HTTP status, and compares signatures only in constant time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::authz::{
    format_amz_date, parse_amz_date, parse_http_date, parse_signature_hex, parse_signed_headers,
    AuthorizationHeader, CredentialScope, ParseError, ALGORITHM,
};
use crate::canonical::{
    canonical_query, canonical_request_folded, canonical_uri, folding_matters, hmac_sha256,
    parse_query, signing_key, string_to_sign, HeaderFolding, PathMode, EMPTY_SHA256_HEX,
};
use crate::{
    AuthError, ChunkSigning, ChunkedDecoder, Credential, CredentialsProvider, RequestParts,
};

/// Largest accepted difference between a header-signed request's time and the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Longest presigned-URL validity S3 accepts (`X-Amz-Expires`), 7 days.
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
/// Signing keys kept in the cache before it is emptied.
const KEY_CACHE_CAPACITY: usize = 4096;

/// What the body of an authenticated request must still be checked against.
// One value per request, moved once into the body adapter: the size difference (the decoder
// carries hash state) costs nothing, and the contract names `Chunked(ChunkedDecoder)` unboxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PayloadCheck {
    /// `UNSIGNED-PAYLOAD`, presigned URLs, SigV2: the body is not covered by the signature.
    Unsigned,
    /// Signed payload: run the body through [`crate::PayloadHasher::new`] with this digest and
    /// call `finish` before committing. (A header-signed request without
    /// `x-amz-content-sha256` gets the empty-body digest, so its body must be empty.)
    Sha256([u8; 32]),
    /// aws-chunked body (any `STREAMING-*` mode): the raw body must be run through this decoder
    /// and only its output is the object's data; `finish` before committing.
    Chunked(ChunkedDecoder),
}

/// A request whose signature verified.
#[derive(Debug)]
pub struct Authenticated {
    /// The access key that signed the request.
    pub access_key: String,
    /// The principal that key belongs to.
    pub principal: String,
    /// How the body must be checked before it may be committed.
    pub payload: PayloadCheck,
}

type CacheKey = (String, String, String, String);

/// Verifies request signatures for one region (service `s3` unless built with
/// [`Verifier::with_service`]). Cheap to share: `Send + Sync`, interior signing-key cache.
pub struct Verifier {
    region: String,
    service: String,
    path_mode: PathMode,
    provider: Arc<dyn CredentialsProvider>,
    key_cache: Mutex<HashMap<CacheKey, (String, [u8; 32])>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("path_mode", &self.path_mode)
            .finish_non_exhaustive()
    }
}

/// The payload hash line of the canonical request and what it means for the body.
enum PayloadMode {
    Unsigned,
    Sha256([u8; 32]),
    StreamingSigned { trailer: bool },
    StreamingUnsignedTrailer,
}

fn payload_mode(value: &str) -> Result<PayloadMode, AuthError> {
    Ok(match value {
        "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::StreamingSigned { trailer: false },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            PayloadMode::StreamingSigned { trailer: true }
        }
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsignedTrailer,
        hex_digest => PayloadMode::Sha256(
            parse_signature_hex(hex_digest).ok_or(AuthError::InvalidContentSha256)?,
        ),
    })
}

fn to_offset(now: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(now)
}

/// The value of a query parameter (decoded), first occurrence.
fn query_param<'q>(params: &'q [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'q [u8]> {
    params
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

impl Verifier {
    /// A verifier accepting SigV4 signatures scoped to `region` and service `s3`, with S3's
    /// canonicalization rules.
    pub fn new(region: &str, provider: Arc<dyn CredentialsProvider>) -> Self {
        Self::with_service(region, "s3", PathMode::S3, provider)
    }

    /// A verifier for another service name and path canonicalization (used to run the generic
    /// AWS signing test suite). For services other than `s3`, a presigned request without a
    /// payload hash is taken to sign the empty body, as the suite does.
    pub fn with_service(
        region: &str,
        service: &str,
        path_mode: PathMode,
        provider: Arc<dyn CredentialsProvider>,
    ) -> Self {
        Verifier {
            region: region.to_string(),
            service: service.to_string(),
            path_mode,
            provider,
            key_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Header auth (AWS4-HMAC-SHA256), query auth (X-Amz-* presign), SigV2 query presign and
    /// SigV2 header auth. Returns `Err(AuthError::Missing)` when the request carries no auth at
    /// all (anonymous). `now` is the server clock.
    ///
    /// The request's `host` header must be present (HTTP/2: pass `:authority` as `host`).
    pub fn verify(&self, req: &RequestParts, now: SystemTime) -> Result<Authenticated, AuthError> {
        self.verify_inner(req, now, None)
    }

    /// [`Verifier::verify`] for a virtual-hosted-style request (`<bucket>.<domain>/key`): the
    /// server passes the bucket it took from the `Host` header. Only SigV2 needs it (its
    /// canonical resource is `/<bucket>/<key>`); SigV4 signs the path as sent either way.
    pub fn verify_virtual_hosted(
        &self,
        req: &RequestParts,
        now: SystemTime,
        bucket: &str,
    ) -> Result<Authenticated, AuthError> {
        self.verify_inner(req, now, Some(bucket))
    }

    fn verify_inner(
        &self,
        req: &RequestParts,
        now: SystemTime,
        host_bucket: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let mut auth_headers = req.header_values("authorization");
        let authorization = auth_headers.next();
        if auth_headers.next().is_some() {
            return Err(AuthError::InvalidRequest(
                "more than one Authorization header".into(),
            ));
        }
        let params = parse_query(req.raw_query);
        let has = |n: &str| query_param(&params, n).is_some();
        let v4_query = has("X-Amz-Algorithm") || has("X-Amz-Signature") || has("X-Amz-Credential");
        let v2_query = has("AWSAccessKeyId") && has("Signature");
        match (authorization, v4_query, v2_query) {
            (None, false, false) => Err(AuthError::Missing),
            (Some(_), true, _) | (Some(_), _, true) | (None, true, true) => Err(
                AuthError::InvalidRequest("only one auth mechanism allowed".into()),
            ),
            (Some(value), false, false) => {
                let value = std::str::from_utf8(value)
                    .map_err(|_| AuthError::AuthorizationHeaderMalformed("not UTF-8".into()))?;
                if value.starts_with("AWS ") {
                    crate::sigv2::verify_header(
                        self,
                        req,
                        value,
                        &params,
                        host_bucket,
                        to_offset(now),
                    )
                } else {
                    self.verify_header_v4(req, value, to_offset(now))
                }
            }
            (None, true, false) => self.verify_query_v4(req, &params, to_offset(now)),
            (None, false, true) => {
                crate::sigv2::verify_query(self, req, &params, host_bucket, to_offset(now))
            }
        }
    }

    pub(crate) fn lookup(&self, access_key: &str) -> Result<Credential, AuthError> {
        self.provider
            .lookup(access_key)
            .ok_or(AuthError::InvalidAccessKeyId)
    }

    /// The signing key for (credential, date, region, service), cached. The cache entry also
    /// remembers the secret it was derived from, so a rotated secret never hits a stale key.
    fn signing_key(&self, cred: &Credential, date: &str) -> [u8; 32] {
        let key: CacheKey = (
            cred.access_key.clone(),
            date.to_string(),
            self.region.clone(),
            self.service.clone(),
        );
        let mut cache = match self.key_cache.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((secret, k)) = cache.get(&key) {
            if bool::from(secret.as_bytes().ct_eq(cred.secret_key.as_bytes())) {
                return *k;
            }
        }
        let k = signing_key(&cred.secret_key, date, &self.region, &self.service);
        if cache.len() >= KEY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, (cred.secret_key.clone(), k));
        k
    }

    /// Checks a credential scope against this verifier's region/service and the request date.
    fn check_scope(
        &self,
        scope: &CredentialScope,
        amz_date: &str,
        malformed: fn(String) -> AuthError,
    ) -> Result<(), AuthError> {
        if !amz_date.starts_with(scope.date) {
            return Err(malformed(format!(
                "credential date {} does not match the request date {}",
                scope.date, amz_date
            )));
        }
        if scope.region != self.region {
            return Err(malformed(format!(
                "the region '{}' is wrong; expecting '{}'",
                scope.region, self.region
            )));
        }
        if scope.service != self.service {
            return Err(malformed(format!(
                "the service '{}' is wrong; expecting '{}'",
                scope.service, self.service
            )));
        }
        Ok(())
    }

    /// Computes the signature over the canonical request and compares it in constant time.
    /// Clients disagree on two details, so when (and only when) they make a difference for
    /// this request, more than one canonical form is tried; each is a faithful rendering of
    /// exactly what was sent, so accepting any of them never accepts a different request:
    /// - the path: S3 canonical re-encoding, or the raw path verbatim (clients that sign their
    ///   already-encoded path as is, e.g. with `%2F`, `+` or `'` left alone);
    /// - header whitespace: spaces only (S3, AWS SDKs in Rust/Java/Go), or also tabs
    ///   (botocore, MinIO clients).
    #[allow(clippy::too_many_arguments)]
    fn check_signature(
        &self,
        req: &RequestParts,
        query: &str,
        signed_headers: &[&str],
        payload_hash: &str,
        amz_date: &str,
        scope: &str,
        key: &[u8; 32],
        provided: &[u8; 32],
        malformed: fn(String) -> AuthError,
    ) -> Result<(), AuthError> {
        let uri = canonical_uri(req.raw_path, self.path_mode);
        let mut candidates = vec![uri];
        if self.path_mode == PathMode::S3
            && !req.raw_path.is_empty()
            && candidates[0] != req.raw_path
            && req.raw_path.bytes().all(|b| b.is_ascii_graphic())
        {
            candidates.push(req.raw_path.to_string());
        }
        let mut foldings = vec![HeaderFolding::Spaces];
        if folding_matters(req, signed_headers) {
            foldings.push(HeaderFolding::Whitespace);
        }
        let mut ok = subtle::Choice::from(0);
        'outer: for &folding in &foldings {
            for uri in &candidates {
                let creq = canonical_request_folded(
                    req,
                    uri,
                    query,
                    signed_headers,
                    payload_hash,
                    folding,
                )
                .map_err(|name| {
                    malformed(format!(
                        "signed header '{name}' is missing from the request"
                    ))
                })?;
                let sts = string_to_sign(amz_date, scope, &creq);
                let computed = hmac_sha256(key, sts.as_bytes());
                ok |= computed.ct_eq(provided);
                if bool::from(ok) {
                    break 'outer;
                }
            }
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(AuthError::SignatureDoesNotMatch)
        }
    }

    fn verify_header_v4(
        &self,
        req: &RequestParts,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Authenticated, AuthError> {
        let malformed = AuthError::AuthorizationHeaderMalformed;
        let auth = AuthorizationHeader::parse(value).map_err(|e| match e {
            ParseError::UnsupportedAlgorithm => {
                AuthError::InvalidRequest("unsupported authorization algorithm".into())
            }
            ParseError::Malformed(m) => malformed(m.to_string()),
        })?;
        if !auth.signed_headers.contains(&"host") {
            return Err(malformed("SignedHeaders must include host".into()));
        }
        let when = match req.header_str("x-amz-date") {
            Some(d) => parse_amz_date(d.trim()),
            None => match req.header_str("date") {
                Some(d) => parse_http_date(d),
                None => return Err(AuthError::MissingSecurityHeader),
            },
        }
        .ok_or_else(|| {
            AuthError::AccessDenied(
                "AWS authentication requires a valid Date or x-amz-date header".into(),
            )
        })?;
        if (now - when).whole_seconds().abs() > MAX_CLOCK_SKEW_SECS {
            return Err(AuthError::RequestTimeTooSkewed);
        }
        let amz_date = format_amz_date(when);
        self.check_scope(&auth.credential, &amz_date, malformed)?;
        let cred = self.lookup(auth.credential.access_key)?;
        let payload_hash = req
            .header_str("x-amz-content-sha256")
            .map(str::trim)
            .unwrap_or(EMPTY_SHA256_HEX);
        let mode = payload_mode(payload_hash)?;
        let key = self.signing_key(&cred, auth.credential.date);
        let scope = auth.credential.scope_string();
        let query = canonical_query(req.raw_query, |_| false);
        self.check_signature(
            req,
            &query,
            &auth.signed_headers,
            payload_hash,
            &amz_date,
            &scope,
            &key,
            &auth.signature,
            malformed,
        )?;
        let decoded_length = match req.header_str("x-amz-decoded-content-length") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                AuthError::InvalidChunk("invalid x-amz-decoded-content-length".into())
            })?),
        };
        let trailer_name = req.header_str("x-amz-trailer");
        let with_trailer = |d: ChunkedDecoder| match trailer_name {
            Some(t) if !t.trim().is_empty() => d.expect_trailer(t),
            _ => d,
        };
        let payload = match mode {
            PayloadMode::Unsigned => PayloadCheck::Unsigned,
            PayloadMode::Sha256(h) => PayloadCheck::Sha256(h),
            PayloadMode::StreamingSigned { trailer } => {
                let signing = ChunkSigning {
                    signing_key: key,
                    amz_date,
                    scope,
                    seed_signature: hex::encode(auth.signature),
                };
                let d = ChunkedDecoder::signed(signing, decoded_length, trailer);
                PayloadCheck::Chunked(if trailer { with_trailer(d) } else { d })
            }
            PayloadMode::StreamingUnsignedTrailer => {
                PayloadCheck::Chunked(with_trailer(ChunkedDecoder::unsigned(decoded_length, true)))
            }
        };
        Ok(Authenticated {
            access_key: cred.access_key,
            principal: cred.principal,
            payload,
        })
    }

    fn verify_query_v4(
        &self,
        req: &RequestParts,
        params: &[(Vec<u8>, Vec<u8>)],
        now: OffsetDateTime,
    ) -> Result<Authenticated, AuthError> {
        let malformed = AuthError::AuthorizationQueryParametersError;
        let get = |name: &'static str| -> Result<&str, AuthError> {
            let v = query_param(params, name)
                .ok_or_else(|| malformed(format!("query-string authentication requires {name}")))?;
            std::str::from_utf8(v).map_err(|_| malformed(format!("{name} is not UTF-8")))
        };
        if get("X-Amz-Algorithm")? != ALGORITHM {
            return Err(malformed(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
            ));
        }
        let credential = CredentialScope::parse(get("X-Amz-Credential")?)
            .ok_or_else(|| malformed("error parsing the X-Amz-Credential parameter".into()))?;
        let amz_date = get("X-Amz-Date")?;
        let when = parse_amz_date(amz_date)
            .ok_or_else(|| malformed("X-Amz-Date must be in the ISO8601 Long Format".into()))?;
        let expires: i64 = get("X-Amz-Expires")?
            .parse()
            .map_err(|_| malformed("X-Amz-Expires should be a number".into()))?;
        if !(1..=MAX_PRESIGN_EXPIRES_SECS).contains(&expires) {
            return Err(malformed(
                "X-Amz-Expires must be between 1 and 604800 seconds".into(),
            ));
        }
        let signed_headers = parse_signed_headers(get("X-Amz-SignedHeaders")?)
            .map_err(|e| malformed(e.to_string()))?;
        if !signed_headers.contains(&"host") {
            return Err(malformed("X-Amz-SignedHeaders must include host".into()));
        }
        let signature = parse_signature_hex(get("X-Amz-Signature")?)
            .ok_or_else(|| malformed("X-Amz-Signature must be 64 hex digits".into()))?;
        let age = (now - when).whole_seconds();
        if age < -MAX_CLOCK_SKEW_SECS {
            return Err(AuthError::AccessDenied("request is not valid yet".into()));
        }
        if age > expires {
            return Err(AuthError::ExpiredPresign);
        }
        self.check_scope(&credential, amz_date, malformed)?;
        let cred = self.lookup(credential.access_key)?;
        let default_hash = if self.service == "s3" {
            "UNSIGNED-PAYLOAD"
        } else {
            EMPTY_SHA256_HEX
        };
        let payload_hash = match query_param(params, "X-Amz-Content-Sha256") {
            Some(v) => std::str::from_utf8(v).map_err(|_| AuthError::InvalidContentSha256)?,
            None => req
                .header_str("x-amz-content-sha256")
                .map(str::trim)
                .unwrap_or(default_hash),
        };
        let payload = match payload_mode(payload_hash)? {
            PayloadMode::Unsigned => PayloadCheck::Unsigned,
            PayloadMode::Sha256(h) => PayloadCheck::Sha256(h),
            _ => {
                return Err(AuthError::InvalidRequest(
                    "streaming payloads cannot be presigned".into(),
                ))
            }
        };
        let key = self.signing_key(&cred, credential.date);
        let scope = credential.scope_string();
        let query = canonical_query(req.raw_query, |k| k == b"X-Amz-Signature");
        self.check_signature(
            req,
            &query,
            &signed_headers,
            payload_hash,
            amz_date,
            &scope,
            &key,
            &signature,
            malformed,
        )?;
        Ok(Authenticated {
            access_key: cred.access_key,
            principal: cred.principal,
            payload,
        })
    }
}
