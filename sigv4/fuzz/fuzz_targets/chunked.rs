//! Fuzzes the aws-chunked decoder in all four modes with arbitrary split points. Must never
//! panic, never output more bytes than it was given, and never buffer without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigv4::{ChunkSigning, ChunkedDecoder};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (mode, step, body) = (data[0], data[1] as usize + 1, &data[2..]);
    let signing = || ChunkSigning {
        signing_key: sigv4::canonical::signing_key("secret", "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    };
    let declared = if mode & 4 != 0 {
        Some(u64::from(mode >> 3))
    } else {
        None
    };
    let mut d = match mode & 3 {
        0 => ChunkedDecoder::unsigned(declared, false),
        1 => ChunkedDecoder::unsigned(declared, true).expect_trailer("x-amz-checksum-crc32"),
        2 => ChunkedDecoder::signed(signing(), declared, false),
        _ => ChunkedDecoder::signed(signing(), declared, true),
    };
    let mut out = Vec::new();
    for piece in body.chunks(step) {
        if d.decode(piece, &mut out).is_err() {
            return;
        }
        assert!(
            out.len() <= body.len(),
            "decoder produced more than it was given"
        );
    }
    if let Ok(t) = d.finish() {
        assert!(t.fields.len() <= sigv4::MAX_TRAILER_FIELDS);
        if let Some(n) = declared {
            assert_eq!(
                out.len() as u64,
                n,
                "finish accepted a wrong decoded length"
            );
        }
    }
});
