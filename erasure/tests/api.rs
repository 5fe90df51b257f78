//! Argument checking and buffer behaviour of the public API: geometry validation, oversized
//! blocks, wrong slot counts and block lengths, buffer reuse, M = 0 framing, and error
//! propagation from the streaming encoder's callback.

use erasure::{
    verify_framed, DecodeError, Decoder, Encoder, ErasureError, Geometry, StreamEncoder, HASH_LEN,
};

#[test]
fn geometry_rejects_impossible_parameters() {
    assert_eq!(Geometry::new(0, 1, 10), Err(ErasureError::NoDataShards));
    assert_eq!(Geometry::new(1, 0, 0), Err(ErasureError::ZeroBlockSize));
    assert!(matches!(
        Geometry::new(200, 57, 10),
        Err(ErasureError::TooManyShards { .. })
    ));
    assert!(matches!(
        Geometry::new(1, usize::MAX, 10),
        Err(ErasureError::TooManyShards { .. })
    ));
    let g = Geometry::new(200, 56, 10).unwrap();
    assert_eq!(
        (g.data(), g.parity(), g.total(), g.block_size()),
        (200, 56, 256, 10)
    );
}

#[test]
fn oversized_block_is_refused() {
    let encoder = Encoder::new(Geometry::new(2, 1, 8).unwrap());
    let mut out = Vec::new();
    assert_eq!(
        encoder.encode_block(&[0; 9], &mut out),
        Err(ErasureError::BlockTooLarge { len: 9, max: 8 })
    );
}

#[test]
fn empty_block_produces_no_shards() {
    let encoder = Encoder::new(Geometry::new(2, 1, 8).unwrap());
    let mut out = vec![vec![1u8; 3]; 5];
    encoder.encode_block(&[], &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn encoder_reuses_buffers_across_blocks_of_different_lengths() {
    let g = Geometry::new(3, 2, 1000).unwrap();
    let encoder = Encoder::new(g);
    let mut out = vec![vec![9u8; 5000]; 7]; // too many, too long: must be fixed up
    for len in [1000, 10, 999, 1] {
        let block: Vec<u8> = (0..len).map(|i| i as u8).collect();
        encoder.encode_block(&block, &mut out).unwrap();
        assert_eq!(out.len(), 5);
        for shard in &out {
            assert_eq!(shard.len(), HASH_LEN + g.shard_len(len));
            assert!(verify_framed(shard, g.shard_len(len)));
        }
        let mut fresh = Vec::new();
        encoder.encode_block(&block, &mut fresh).unwrap();
        assert_eq!(out, fresh, "reused buffers must give the same bytes");
    }
}

#[test]
fn last_data_shard_is_zero_padded() {
    let g = Geometry::new(4, 0, 100).unwrap();
    let mut out = Vec::new();
    Encoder::new(g).encode_block(&[0xff; 10], &mut out).unwrap();
    // shard_len = ceil(10 / 4) = 3: shards hold 3, 3, 3, 1 bytes of data, then zeros.
    assert_eq!(&out[2][HASH_LEN..], &[0xff; 3]);
    assert_eq!(&out[3][HASH_LEN..], &[0xff, 0, 0]);
    assert_eq!(&out[0][..HASH_LEN], blake3::hash(&[0xff; 3]).as_bytes());
}

#[test]
fn zero_parity_frames_and_detects_but_cannot_repair() {
    let g = Geometry::new(3, 0, 64).unwrap();
    let mut shards = Vec::new();
    Encoder::new(g).encode_block(&[7; 50], &mut shards).unwrap();
    let decoder = Decoder::new(g);
    let mut slots: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
    let mut out = Vec::new();
    let report = decoder.decode_block(&mut slots, 50, &mut out).unwrap();
    assert!(report.is_clean());
    assert_eq!(out, vec![7; 50]);

    let mut slots: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
    if let Some(s) = slots[1].as_mut() {
        s[HASH_LEN] ^= 1;
    }
    let err = decoder.decode_block(&mut slots, 50, &mut out).unwrap_err();
    assert_eq!(err, DecodeError::TooFewShards { good: 2, need: 3 });
    assert_eq!(out.len(), 50);
}

#[test]
fn decoder_checks_slot_count_and_block_len() {
    let g = Geometry::new(2, 2, 100).unwrap();
    let decoder = Decoder::new(g);
    let mut out = Vec::new();
    let mut three = vec![None, None, None];
    assert_eq!(
        decoder.decode_block(&mut three, 10, &mut out),
        Err(DecodeError::ShardCount {
            got: 3,
            expected: 4
        })
    );
    let mut four = vec![None, None, None, None];
    for len in [0, 101] {
        assert_eq!(
            decoder.decode_block(&mut four, len, &mut out),
            Err(DecodeError::InvalidBlockLen { len, max: 100 })
        );
    }
}

#[test]
fn report_separates_corrupt_from_missing_and_heal_reuses_lent_buffers() {
    let g = Geometry::new(2, 2, 100).unwrap();
    let mut shards = Vec::new();
    Encoder::new(g).encode_block(&[1; 77], &mut shards).unwrap();
    let mut slots: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
    slots[0] = Some(Vec::with_capacity(HASH_LEN + 39)); // a lent, empty buffer: missing
    slots[3] = None;
    let mut out = Vec::new();
    let report = Decoder::new(g)
        .decode_block(&mut slots, 77, &mut out)
        .unwrap();
    assert_eq!(report.damaged, vec![0, 3]);
    assert_eq!(report.corrupt, vec![0]);
    assert_eq!(out, vec![1; 77]);
    assert_eq!(
        (&slots[0], &slots[3]),
        (&None, &None),
        "damaged slots come back None"
    );
    assert_eq!(
        slots[1].as_ref(),
        Some(&shards[1]),
        "good slots are untouched"
    );

    // Healing rebuilds into a lent buffer: the wrong-length Vec is reused, not replaced.
    let mut slots: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
    slots[2] = Some(Vec::with_capacity(4096));
    Decoder::new(g).reconstruct_block(&mut slots, 77).unwrap();
    let healed = slots[2].as_ref().unwrap();
    assert_eq!(healed, &shards[2]);
    assert!(healed.capacity() >= 4096, "the lent allocation was reused");
}

#[test]
fn stream_encoder_propagates_emit_errors_and_counts() {
    let g = Geometry::new(2, 1, 10).unwrap();
    let mut enc = StreamEncoder::new(g);
    let mut seen = 0;
    enc.write(&[0; 25], |_| {
        seen += 1;
        Ok::<_, &str>(())
    })
    .unwrap();
    assert_eq!((seen, enc.bytes_in(), enc.blocks_out()), (2, 25, 2));
    assert_eq!(enc.write(&[0; 5], |_| Err("disk full")), Err("disk full"));
    let mut last = Vec::new();
    enc.finish(|shards| {
        last = shards.to_vec();
        Ok::<_, &str>(())
    })
    .unwrap();
    assert!(last.is_empty(), "the failed block was already emitted");
}

#[test]
fn one_encoder_and_decoder_serve_several_threads() {
    use std::sync::Arc;
    let g = Geometry::new(4, 2, 4096).unwrap();
    let encoder = Arc::new(Encoder::new(g));
    let decoder = Arc::new(Decoder::new(g));
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            let (encoder, decoder) = (Arc::clone(&encoder), Arc::clone(&decoder));
            std::thread::spawn(move || {
                for n in 0..50usize {
                    let block: Vec<u8> = (0..4096 - n).map(|i| (i as u8) ^ t).collect();
                    let mut shards = Vec::new();
                    encoder.encode_block(&block, &mut shards).unwrap();
                    let mut slots: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
                    slots[n % 6] = None;
                    slots[(n + 1) % 6] = None;
                    let mut out = Vec::new();
                    decoder
                        .decode_block(&mut slots, block.len(), &mut out)
                        .unwrap();
                    assert_eq!(out, block);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker thread panicked");
    }
}
