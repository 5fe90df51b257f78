//! The aws-chunked examples of the AWS S3 documentation ("Signature Calculations for the
//! Authorization Header: Transferring Payload in Multiple Chunks" and the trailing-headers
//! variant): 66560 bytes of 'a' in a 64 KiB chunk, a 1 KiB chunk and the final empty chunk.
//! The seed signature is verified through `Verifier::verify`, every chunk signature through
//! the decoder it returns; tampering, truncation and lying lengths must fail.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sigv4::{
    AuthError, ChunkedDecoder, PayloadCheck, RequestParts, StaticCredentials, Trailers, Verifier,
};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGS: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGS: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";
const CRC32C_B64: &str = "sOO8/Q==";

fn now() -> SystemTime {
    // 20130524T000000Z
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

fn verifier() -> Verifier {
    Verifier::new(
        "us-east-1",
        Arc::new(StaticCredentials::single(ACCESS_KEY, SECRET)),
    )
}

/// The documented body: 0x10000 and 0x400 bytes of 'a', then the final chunk (and trailer).
fn documented_body(sigs: [&str; 3], trailer: Option<String>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(format!("10000;chunk-signature={}\r\n", sigs[0]).as_bytes());
    b.extend(std::iter::repeat_n(b'a', 65536));
    b.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).as_bytes());
    b.extend(std::iter::repeat_n(b'a', 1024));
    b.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", sigs[2]).as_bytes());
    match trailer {
        None => b.extend_from_slice(b"\r\n"),
        Some(t) => {
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
    }
    b
}

fn documented_trailer(value: &str, sig: &str) -> String {
    format!("x-amz-checksum-crc32c:{value}\r\nx-amz-trailer-signature:{sig}\r\n")
}

/// Verifies the documented request headers and returns its decoder.
fn decoder_for(trailer: bool) -> ChunkedDecoder {
    let (mode, seed, signed_headers) = if trailer {
        (
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            TRAILER_SEED,
            "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
        )
    } else {
        (
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            SEED,
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        )
    };
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={seed}"
    );
    let headers: Vec<(&str, &[u8])> = vec![
        ("Host", b"s3.amazonaws.com"),
        ("x-amz-date", b"20130524T000000Z"),
        ("x-amz-storage-class", b"REDUCED_REDUNDANCY"),
        ("Authorization", authorization.as_bytes()),
        ("x-amz-content-sha256", mode.as_bytes()),
        ("Content-Encoding", b"aws-chunked"),
        ("x-amz-decoded-content-length", b"66560"),
        ("x-amz-trailer", b"x-amz-checksum-crc32c"),
        ("Content-Length", b"66824"),
    ];
    let headers: Vec<(&str, &[u8])> = headers
        .into_iter()
        .filter(|(n, _)| trailer || *n != "x-amz-trailer")
        .collect();
    let req = RequestParts {
        method: "PUT",
        raw_path: "/examplebucket/chunkObject.txt",
        raw_query: "",
        headers: &headers,
    };
    let auth = verifier()
        .verify(&req, now())
        .expect("documented seed signature verifies");
    match auth.payload {
        PayloadCheck::Chunked(d) => d,
        other => panic!("expected a chunked payload check, got {other:?}"),
    }
}

fn run(mut d: ChunkedDecoder, body: &[u8], step: usize) -> Result<(Vec<u8>, Trailers), AuthError> {
    let mut out = Vec::new();
    for piece in body.chunks(step) {
        d.decode(piece, &mut out)?;
    }
    Ok((out, d.finish()?))
}

#[test]
fn documented_chunked_upload_verifies_byte_for_byte() {
    let body = documented_body(CHUNK_SIGS, None);
    assert_eq!(
        body.len(),
        66824,
        "Content-Length of the documented example"
    );
    for step in [1, 7, 88, 4096, 65536, 65626, body.len()] {
        let (out, trailers) =
            run(decoder_for(false), &body, step).expect("documented body verifies");
        assert_eq!(out.len(), 66560);
        assert!(out.iter().all(|&b| b == b'a'));
        assert!(trailers.fields.is_empty());
    }
}

#[test]
fn chunk_bytes_are_released_only_after_their_signature_verifies() {
    let body = documented_body(CHUNK_SIGS, None);
    let mut d = decoder_for(false);
    let mut out = Vec::new();
    // Header and all data of chunk 1, but not its CRLF: nothing may be released yet.
    let header_len = "10000;chunk-signature=".len() + 64 + 2;
    d.decode(&body[..header_len + 65536], &mut out).unwrap();
    assert!(out.is_empty(), "unverified bytes were released");
    d.decode(&body[header_len + 65536..header_len + 65538], &mut out)
        .unwrap();
    assert_eq!(out.len(), 65536);
}

#[test]
fn tampered_documented_body_is_rejected() {
    let body = documented_body(CHUNK_SIGS, None);
    // Positions: in the first signature, first data byte, data of chunk 2, the final signature,
    // the size field, and a CRLF.
    let positions = [25, 90, 66000, 65700, body.len() - 10, 0, 65624];
    for &pos in &positions {
        let mut bad = body.clone();
        bad[pos] ^= 0x01;
        assert!(
            run(decoder_for(false), &bad, 8192).is_err(),
            "flip at {pos} accepted"
        );
    }
    // Every byte of chunk 2's signature and data region start.
    for pos in (65626..65626 + 86).step_by(5) {
        let mut bad = body.clone();
        bad[pos] = if bad[pos] == b'0' { b'1' } else { b'0' };
        assert!(
            run(decoder_for(false), &bad, 1000).is_err(),
            "change at {pos} accepted"
        );
    }
}

#[test]
fn truncated_documented_body_is_rejected() {
    let body = documented_body(CHUNK_SIGS, None);
    for cut in (0..body.len())
        .step_by(997)
        .chain([body.len() - 1, body.len() - 2, 65626])
    {
        let r = run(decoder_for(false), &body[..cut], 4096);
        assert!(r.is_err(), "truncation at {cut} accepted");
    }
}

#[test]
fn lying_decoded_length_is_rejected() {
    let body = documented_body(CHUNK_SIGS, None);
    // Same signatures, but a decoder told a different decoded length (as if the header lied;
    // the header is signed, so the decoder is the last line of defence).
    for len in [0u64, 1024, 66559, 66561, 1 << 40] {
        let key = sigv4::canonical::signing_key(SECRET, "20130524", "us-east-1", "s3");
        let d = ChunkedDecoder::signed(
            sigv4::ChunkSigning {
                signing_key: key,
                amz_date: "20130524T000000Z".into(),
                scope: "20130524/us-east-1/s3/aws4_request".into(),
                seed_signature: SEED.into(),
            },
            Some(len),
            false,
        );
        assert!(
            run(d, &body, 4096).is_err(),
            "decoded length {len} accepted"
        );
    }
}

#[test]
fn documented_trailer_upload_verifies_byte_for_byte() {
    let body = documented_body(
        TRAILER_CHUNK_SIGS,
        Some(documented_trailer(CRC32C_B64, TRAILER_SIG)),
    );
    for step in [1, 13, 4096, body.len()] {
        let (out, trailers) =
            run(decoder_for(true), &body, step).expect("documented trailer body verifies");
        assert_eq!(out.len(), 66560);
        assert_eq!(
            trailers.checksum(),
            Some(("x-amz-checksum-crc32c", CRC32C_B64))
        );
        // The caller's check: the trailer checksum matches the decoded bytes.
        let crc = crc32c::crc32c(&out).to_be_bytes();
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(crc),
            CRC32C_B64
        );
    }
    // Without the final empty line (some clients) it still verifies at finish().
    let short = &body[..body.len() - 2];
    assert!(run(decoder_for(true), short, 4096).is_ok());
}

#[test]
fn tampered_or_missing_trailer_is_rejected() {
    let bad_value = documented_body(
        TRAILER_CHUNK_SIGS,
        Some(documented_trailer("AAAAAA==", TRAILER_SIG)),
    );
    assert_eq!(
        run(decoder_for(true), &bad_value, 4096).err(),
        Some(AuthError::ChunkSignatureDoesNotMatch)
    );
    let mut wrong_sig = TRAILER_SIG.to_string();
    wrong_sig.replace_range(0..1, "e");
    let bad_sig = documented_body(
        TRAILER_CHUNK_SIGS,
        Some(documented_trailer(CRC32C_B64, &wrong_sig)),
    );
    assert_eq!(
        run(decoder_for(true), &bad_sig, 4096).err(),
        Some(AuthError::ChunkSignatureDoesNotMatch)
    );
    let unsigned = documented_body(
        TRAILER_CHUNK_SIGS,
        Some(format!("x-amz-checksum-crc32c:{CRC32C_B64}\r\n")),
    );
    assert!(
        run(decoder_for(true), &unsigned, 4096).is_err(),
        "missing trailer signature accepted"
    );
    let no_trailer = documented_body(TRAILER_CHUNK_SIGS, Some(String::new()));
    assert!(
        run(decoder_for(true), &no_trailer, 4096).is_err(),
        "missing declared trailer accepted"
    );
}

#[test]
fn oversized_chunk_header_is_rejected() {
    let mut body = b"10000;chunk-signature=".to_vec();
    body.extend(std::iter::repeat_n(b'f', 10_000));
    let mut d = decoder_for(false);
    let mut out = Vec::new();
    let mut failed = false;
    for piece in body.chunks(100) {
        if d.decode(piece, &mut out).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "10 KB chunk header accepted");
    // A signed chunk larger than the 16 MiB cap is refused at its header.
    let sig = "0".repeat(64);
    let mut d = decoder_for(false);
    assert!(d
        .decode(
            format!("1000001;chunk-signature={sig}\r\n").as_bytes(),
            &mut out
        )
        .is_err());
}
