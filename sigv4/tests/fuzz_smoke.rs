//! The fuzz targets' properties, exercised on every CI run: a few thousand mutated inputs
//! through the Authorization parser / `Verifier::verify` and through the aws-chunked decoder
//! in all modes. Nothing may panic; the decoder never outputs more than it was given, never
//! accepts a wrong decoded length, and a mutated signed body is never accepted with different
//! output.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sigv4::{ChunkSigning, ChunkedDecoder, RequestParts, StaticCredentials, Verifier};

const SEEDS_AUTH: &[&str] = &[
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
    "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
];

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        if v.is_empty() {
            v.push(rng.gen());
            continue;
        }
        let i = rng.gen_range(0..v.len());
        match rng.gen_range(0..6) {
            0 => v[i] ^= 1 << rng.gen_range(0..8),
            1 => v[i] = rng.gen(),
            2 => {
                v.remove(i);
            }
            3 => v.insert(
                i,
                *[b'\r', b'\n', b';', b'=', b',', b'/', b'%', b':', b'0', b'f']
                    .get(rng.gen_range(0..10))
                    .unwrap_or(&b'x'),
            ),
            4 => v.truncate(i),
            _ => {
                let j = rng.gen_range(0..v.len());
                let (a, b) = (i.min(j), i.max(j));
                let piece = v[a..b].to_vec();
                v.splice(i..i, piece);
            }
        }
    }
    v
}

#[test]
fn mutated_authorization_inputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xa17);
    let v = Verifier::new(
        "us-east-1",
        Arc::new(StaticCredentials::single("AKIAIOSFODNN7EXAMPLE", "secret")),
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    let mut parsed = 0;
    for i in 0..4000 {
        let seed = SEEDS_AUTH[i % SEEDS_AUTH.len()].as_bytes();
        let input = if i % 10 == 0 {
            (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()
        } else {
            mutate(&mut rng, seed)
        };
        if let Ok(s) = std::str::from_utf8(&input) {
            if sigv4::authz::AuthorizationHeader::parse(s).is_ok() {
                parsed += 1;
            }
            let _ = sigv4::canonical::canonical_uri(s, sigv4::canonical::PathMode::S3);
            let headers: &[(&str, &[u8])] = &[("host", b"h"), ("x-amz-date", b"20130524T000000Z")];
            let req = RequestParts {
                method: "GET",
                raw_path: "/b/k",
                raw_query: s,
                headers,
            };
            let r = v.verify(&req, now);
            assert!(r.is_err(), "mutated query authenticated: {s}");
        }
        let headers: &[(&str, &[u8])] = &[
            ("host", b"h"),
            ("x-amz-date", b"20130524T000000Z"),
            ("x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
            ("authorization", &input),
        ];
        let req = RequestParts {
            method: "PUT",
            raw_path: "/k",
            raw_query: "",
            headers,
        };
        assert!(v.verify(&req, now).is_err(), "mutated header authenticated");
    }
    println!("authorization smoke: 4000 inputs, {parsed} still parsed, none authenticated");
}

fn doc_signing() -> ChunkSigning {
    ChunkSigning {
        signing_key: sigv4::canonical::signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        ),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    }
}

/// The signed body of the AWS documentation's chunked-upload example (66560 bytes of 'a').
fn documented_body() -> Vec<u8> {
    let mut b = b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n".to_vec();
    b.extend(std::iter::repeat_n(b'a', 65536));
    b.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
    b.extend(std::iter::repeat_n(b'a', 1024));
    b.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    b
}

fn run(mut d: ChunkedDecoder, body: &[u8], step: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for piece in body.chunks(step.max(1)) {
        d.decode(piece, &mut out).ok()?;
        assert!(out.len() <= body.len());
    }
    d.finish().ok().map(|_| out)
}

#[test]
fn mutated_chunked_bodies_never_panic_or_verify() {
    let mut rng = StdRng::seed_from_u64(0xc4c);
    let signed = documented_body();
    let expected = vec![b'a'; 66560];
    assert_eq!(
        run(
            ChunkedDecoder::signed(doc_signing(), Some(66560), false),
            &signed,
            4096
        ),
        Some(expected.clone())
    );
    let unsigned_seeds: [&[u8]; 3] = [
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
        b"3;ext=1\r\nabc\r\n0\r\n\r\n",
        b"0\r\nx-amz-checksum-sha256:47DEQpj8HBSa+/TrmH+7bXuVpGI9ysjpyWQ3CSnKw2M=\r\n\r\n",
    ];
    let mut accepted_mutants = 0;
    for i in 0..3000 {
        if i % 6 == 0 {
            // Mutate the signed body (mostly its framing, which is where parsing happens).
            let mut body = signed.clone();
            let region = if rng.gen_bool(0.5) {
                0..90
            } else {
                65620..signed.len()
            };
            let pos = rng.gen_range(region);
            match rng.gen_range(0..3) {
                0 => body[pos] ^= 1 << rng.gen_range(0..8),
                1 => body.truncate(pos),
                _ => {
                    body.remove(pos);
                }
            }
            let out = run(
                ChunkedDecoder::signed(doc_signing(), Some(66560), false),
                &body,
                rng.gen_range(1..70000),
            );
            if let Some(out) = out {
                // Only a harmless change (e.g. a signature hex digit flipped to upper case) may
                // still verify, and then the output must be exactly the signed payload.
                assert_eq!(
                    out, expected,
                    "mutated signed body produced different output"
                );
                accepted_mutants += 1;
            }
        } else {
            let seed = unsigned_seeds[i % 3];
            let body = mutate(&mut rng, seed);
            let declared = if rng.gen_bool(0.5) {
                Some(rng.gen_range(0..16))
            } else {
                None
            };
            let trailer = rng.gen_bool(0.7);
            let d = ChunkedDecoder::unsigned(declared, trailer);
            if let (Some(out), Some(n)) = (run(d, &body, rng.gen_range(1..20)), declared) {
                assert_eq!(out.len() as u64, n, "wrong decoded length accepted");
            }
            let _ = run(
                ChunkedDecoder::signed(doc_signing(), declared, trailer),
                &body,
                3,
            );
        }
    }
    println!("chunked smoke: 3000 inputs, {accepted_mutants} harmless signed mutants accepted");
}
