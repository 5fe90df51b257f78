//! Criterion benchmarks: cost of one `Verifier::verify` (header auth and presigned URL, warm
//! signing-key cache), the signing-key derivation a cold cache pays, and aws-chunked decode
//! throughput with chunk signatures checked — against a baseline measured in the same run:
//! plain SHA-256 of the same bytes (the floor for any signed-chunk verification).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use sigv4::canonical::{
    canonical_query, canonical_request, canonical_uri, hmac_sha256, signing_key, string_to_sign,
    uri_encode, PathMode, EMPTY_SHA256_HEX,
};
use sigv4::{ChunkSigning, ChunkedDecoder, RequestParts, StaticCredentials, Verifier};

const AK: &str = "AKIDBENCH";
const SK: &str = "bench-secret-key";
const DATE: &str = "20240102T030405Z";
const SCOPE: &str = "20240102/us-east-1/s3/aws4_request";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645)
}

type Headers = Vec<(String, Vec<u8>)>;

fn sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &Headers,
    signed: &[&str],
    payload: &str,
) -> String {
    let refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = RequestParts {
        method,
        raw_path: path,
        raw_query: query,
        headers: &refs,
    };
    let creq = canonical_request(
        &req,
        &canonical_uri(path, PathMode::S3),
        &canonical_query(query, |k| k == b"X-Amz-Signature"),
        signed,
        payload,
    )
    .expect("headers present");
    let key = signing_key(SK, &DATE[..8], "us-east-1", "s3");
    hex::encode(hmac_sha256(
        &key,
        string_to_sign(DATE, SCOPE, &creq).as_bytes(),
    ))
}

fn header_request() -> (String, Headers) {
    let path = "/photos/2024/holiday%20pictures/IMG_0001.jpg".to_string();
    let payload = "UNSIGNED-PAYLOAD";
    let mut headers: Headers = vec![
        ("host".into(), b"s3.example.test:9000".to_vec()),
        ("content-type".into(), b"image/jpeg".to_vec()),
        ("content-length".into(), b"1048576".to_vec()),
        ("x-amz-content-sha256".into(), payload.as_bytes().to_vec()),
        ("x-amz-date".into(), DATE.as_bytes().to_vec()),
        ("x-amz-meta-camera".into(), b"Some  Camera   Model".to_vec()),
        ("user-agent".into(), b"aws-sdk-rust/1.0".to_vec()),
    ];
    let signed = [
        "content-length",
        "content-type",
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-meta-camera",
    ];
    let sig = sign("PUT", &path, "", &headers, &signed, payload);
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={AK}/{SCOPE}, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        )
        .into_bytes(),
    ));
    (path, headers)
}

fn presigned_request() -> (String, String, Headers) {
    let path = "/photos/2024/IMG_0001.jpg".to_string();
    let mut cred = String::new();
    uri_encode(format!("{AK}/{SCOPE}").as_bytes(), false, &mut cred);
    let mut query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred}&X-Amz-Date={DATE}&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&response-content-type=image%2Fjpeg"
    );
    let headers: Headers = vec![("host".into(), b"s3.example.test:9000".to_vec())];
    let sig = sign(
        "GET",
        &path,
        &query,
        &headers,
        &["host"],
        "UNSIGNED-PAYLOAD",
    );
    query.push_str(&format!("&X-Amz-Signature={sig}"));
    (path, query, headers)
}

fn bench_verify(c: &mut Criterion) {
    let verifier = Verifier::new("us-east-1", Arc::new(StaticCredentials::single(AK, SK)));
    let mut g = c.benchmark_group("verify");
    let (path, headers) = header_request();
    let refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = RequestParts {
        method: "PUT",
        raw_path: &path,
        raw_query: "",
        headers: &refs,
    };
    verifier
        .verify(&req, now())
        .expect("bench header request verifies");
    g.bench_function("header_auth", |b| {
        b.iter(|| verifier.verify(black_box(&req), now()).expect("ok"))
    });
    let (ppath, pquery, pheaders) = presigned_request();
    let prefs: Vec<(&str, &[u8])> = pheaders
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let preq = RequestParts {
        method: "GET",
        raw_path: &ppath,
        raw_query: &pquery,
        headers: &prefs,
    };
    verifier
        .verify(&preq, now())
        .expect("bench presigned request verifies");
    g.bench_function("presigned_query", |b| {
        b.iter(|| verifier.verify(black_box(&preq), now()).expect("ok"))
    });
    g.bench_function("signing_key_derivation_cold_cache", |b| {
        b.iter(|| signing_key(black_box(SK), "20240102", "us-east-1", "s3"))
    });
    g.finish();
}

/// A signed aws-chunked body of `total` bytes in `chunk`-byte chunks, plus its decoder setup.
fn signed_chunked_body(total: usize, chunk: usize) -> (Vec<u8>, ChunkSigning) {
    let key = signing_key(SK, &DATE[..8], "us-east-1", "s3");
    let seed = "a".repeat(64);
    let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let mut body = Vec::with_capacity(total + total / chunk * 100 + 200);
    let mut prev = seed.clone();
    let mut emit = |piece: &[u8], body: &mut Vec<u8>| {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{DATE}\n{SCOPE}\n{prev}\n{EMPTY_SHA256_HEX}\n{}",
            hex::encode(Sha256::digest(piece))
        );
        let sig = hex::encode(hmac_sha256(&key, sts.as_bytes()));
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    };
    for piece in data.chunks(chunk) {
        emit(piece, &mut body);
    }
    emit(&[], &mut body);
    let signing = ChunkSigning {
        signing_key: key,
        amz_date: DATE.into(),
        scope: SCOPE.into(),
        seed_signature: seed,
    };
    (body, signing)
}

fn bench_chunked(c: &mut Criterion) {
    const TOTAL: usize = 16 << 20;
    let mut g = c.benchmark_group("chunked_16MiB");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(20);
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 31 % 251) as u8).collect();
    g.bench_function("baseline_sha256_same_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(&data)))
    });
    for chunk in [64 << 10, 1 << 20] {
        let (body, signing) = signed_chunked_body(TOTAL, chunk);
        let name = format!("signed_decode_{}KiB_chunks", chunk >> 10);
        g.bench_function(&name, |b| {
            let mut out = Vec::with_capacity(2 << 20);
            b.iter(|| {
                let mut d = ChunkedDecoder::signed(signing.clone(), Some(TOTAL as u64), false);
                for piece in body.chunks(256 << 10) {
                    d.decode(piece, &mut out).expect("verifies");
                    out.clear();
                }
                d.finish().expect("complete")
            })
        });
    }
    // Unsigned framing only (STREAMING-UNSIGNED-PAYLOAD-TRAILER without signatures to check).
    let mut unsigned = Vec::new();
    for piece in data.chunks(64 << 10) {
        unsigned.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        unsigned.extend_from_slice(piece);
        unsigned.extend_from_slice(b"\r\n");
    }
    unsigned.extend_from_slice(b"0\r\n\r\n");
    g.bench_function("unsigned_decode_64KiB_chunks", |b| {
        let mut out = Vec::with_capacity(2 << 20);
        b.iter(|| {
            let mut d = ChunkedDecoder::unsigned(Some(TOTAL as u64), true);
            for piece in unsigned.chunks(256 << 10) {
                d.decode(piece, &mut out).expect("decodes");
                out.clear();
            }
            d.finish().expect("complete")
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench_verify, bench_chunked
}
criterion_main!(benches);
