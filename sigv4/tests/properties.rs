//! Property tests (proptest): the aws-chunked decoder's output does not depend on how the body
//! is split into reads, signed bodies built from arbitrary payloads and chunk sizes verify,
//! every truncation fails, and the canonical forms are order-independent and idempotent.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use sigv4::canonical::{
    canonical_query, canonical_uri, hmac_sha256, signing_key, PathMode, EMPTY_SHA256_HEX,
};
use sigv4::{ChunkSigning, ChunkedDecoder};

const DATE: &str = "20240102T030405Z";
const SCOPE: &str = "20240102/us-east-1/s3/aws4_request";

fn signing() -> ChunkSigning {
    ChunkSigning {
        signing_key: signing_key("prop-secret", "20240102", "us-east-1", "s3"),
        amz_date: DATE.into(),
        scope: SCOPE.into(),
        seed_signature: "b".repeat(64),
    }
}

/// Encodes `payload` as aws-chunked with the given chunk sizes, signed or not.
fn encode(payload: &[u8], sizes: &[usize], signed: bool) -> Vec<u8> {
    let key = signing().signing_key;
    let mut prev = "b".repeat(64);
    let mut body = Vec::new();
    let mut rest = payload;
    let mut i = 0;
    loop {
        let n = if rest.is_empty() {
            0
        } else {
            sizes[i % sizes.len()].clamp(1, rest.len())
        };
        let (piece, tail) = rest.split_at(n);
        if signed {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{DATE}\n{SCOPE}\n{prev}\n{EMPTY_SHA256_HEX}\n{}",
                hex::encode(Sha256::digest(piece))
            );
            prev = hex::encode(hmac_sha256(&key, sts.as_bytes()));
            body.extend_from_slice(format!("{n:x};chunk-signature={prev}\r\n").as_bytes());
        } else {
            body.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        }
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
        if n == 0 {
            return body;
        }
        rest = tail;
        i += 1;
    }
}

fn decode(mut d: ChunkedDecoder, body: &[u8], splits: &[usize]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = splits[i % splits.len()].clamp(1, rest.len());
        d.decode(&rest[..n], &mut out).ok()?;
        rest = &rest[n..];
        i += 1;
    }
    d.finish().ok().map(|_| out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunked_output_is_independent_of_read_splits(
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..700, 1..5),
        splits in proptest::collection::vec(1usize..400, 1..6),
        signed in any::<bool>(),
    ) {
        let body = encode(&payload, &sizes, signed);
        let len = Some(payload.len() as u64);
        let d = if signed { ChunkedDecoder::signed(signing(), len, false) } else { ChunkedDecoder::unsigned(len, false) };
        prop_assert_eq!(decode(d, &body, &splits), Some(payload.clone()));
    }

    #[test]
    fn every_truncation_of_a_chunked_body_fails(
        payload in proptest::collection::vec(any::<u8>(), 1..600),
        sizes in proptest::collection::vec(1usize..200, 1..3),
        cut_frac in 0.0f64..1.0,
        signed in any::<bool>(),
    ) {
        let body = encode(&payload, &sizes, signed);
        let cut = ((body.len() as f64) * cut_frac) as usize;
        prop_assume!(cut < body.len());
        let d = if signed { ChunkedDecoder::signed(signing(), None, false) } else { ChunkedDecoder::unsigned(None, false) };
        prop_assert_eq!(decode(d, &body[..cut], &[97]), None);
    }

    #[test]
    fn signed_chunk_data_change_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 1..600),
        pos_frac in 0.0f64..1.0,
        bit in 0u8..8,
    ) {
        let body = encode(&payload, &[128], true);
        // Flip a bit inside chunk data only (the framing is covered by the other tests).
        let header = 64 + ";chunk-signature=".len() + 2;
        let first_len = payload.len().min(128);
        let hex_len = format!("{first_len:x}").len();
        let pos = hex_len + header + ((first_len as f64) * pos_frac) as usize;
        prop_assume!(pos < hex_len + header + first_len);
        let mut bad = body.clone();
        bad[pos] ^= 1 << bit;
        prop_assert_eq!(decode(ChunkedDecoder::signed(signing(), None, false), &bad, &[50]), None);
    }

    #[test]
    fn canonical_query_ignores_parameter_order(params in proptest::collection::vec(("[a-zA-Z0-9%+ ._~=-]{0,8}", "[a-zA-Z0-9%+ ._~-]{0,8}"), 0..6)) {
        let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut rev = q.clone();
        rev.reverse();
        prop_assert_eq!(canonical_query(&q.join("&"), |_| false), canonical_query(&rev.join("&"), |_| false));
    }

    #[test]
    fn s3_canonical_uri_is_a_fixed_point(path in "/[ -~\u{e9}\u{65e5}]{0,40}") {
        let once = canonical_uri(&path, PathMode::S3);
        prop_assert_eq!(canonical_uri(&once, PathMode::S3), once.clone());
        prop_assert!(once.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)));
    }
}
