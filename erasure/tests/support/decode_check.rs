//! The decoder's robustness oracle, shared by the cargo-fuzz target and a plain test: an
//! input drives a geometry, a payload and a sequence of damage operations on the encoded
//! shard blocks; decoding must then be exact when at least K shard blocks are intact, and a
//! `TooFewShards` error (with nothing appended) otherwise. It must never panic. It owns the
//! oracle only and must never depend on anything but the `erasure` crate.

use erasure::{DecodeError, Decoder, Encoder, Geometry, HASH_LEN};

/// Reads little pieces from the fuzz input; yields zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u8(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | (u16::from(self.u8()) << 8)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// Runs the oracle on one input. Panics (with a message) only when the decoder misbehaves.
pub fn check_decoder(data: &[u8]) {
    let mut input = Input(data);
    let k = 1 + usize::from(input.u8()) % 12;
    let m = usize::from(input.u8()) % (k + 1);
    let block_size = 1 + usize::from(input.u16()) % 700;
    let size = usize::from(input.u16()) % (3 * block_size + 1);
    let seed = input.u8();
    let geometry = Geometry::new(k, m, block_size).expect("valid geometry by construction");
    let total = geometry.total();
    let encoder = Encoder::new(geometry);
    let decoder = Decoder::new(geometry);

    let mut state = u32::from(seed) | 1;
    let payload: Vec<u8> = (0..size)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect();

    let originals: Vec<Vec<Vec<u8>>> = payload
        .chunks(block_size)
        .map(|block| {
            let mut out = Vec::new();
            encoder.encode_block(block, &mut out).expect("block fits");
            assert_eq!(out.len(), total);
            out
        })
        .collect();

    if originals.is_empty() {
        // No object bytes: hand the decoder shard blocks made purely of input bytes. It cannot
        // forge a blake3 hash, so it must refuse.
        let block_len = 1 + usize::from(input.u16()) % block_size;
        let mut slots: Vec<Option<Vec<u8>>> = (0..total)
            .map(|_| {
                let n = usize::from(input.u8());
                (n % 4 != 0).then(|| input.take(n).to_vec())
            })
            .collect();
        let mut out = vec![7u8; 3];
        let result = decoder.decode_block(&mut slots, block_len, &mut out);
        assert!(
            matches!(result, Err(DecodeError::TooFewShards { .. })),
            "forged shards decoded: {result:?}"
        );
        assert_eq!(out, vec![7u8; 3], "a failed decode appended bytes");
        return;
    }

    let mut received: Vec<Vec<Option<Vec<u8>>>> = originals
        .iter()
        .map(|block| block.iter().cloned().map(Some).collect())
        .collect();
    while let Some(op) = input.byte() {
        let b = usize::from(input.u8()) % received.len();
        let s = usize::from(input.u8()) % total;
        let slot = &mut received[b][s];
        match op % 6 {
            0 => *slot = None,
            1 => {
                if let Some(v) = slot.as_mut().filter(|v| !v.is_empty()) {
                    let pos = usize::from(input.u16()) % v.len();
                    v[pos] ^= input.u8() | 1;
                }
            }
            2 => {
                if let Some(v) = slot.as_mut() {
                    let keep = usize::from(input.u16()) % (v.len() + 1);
                    v.truncate(keep);
                }
            }
            3 => {
                let n = usize::from(input.u16()) % (2 * HASH_LEN + block_size);
                *slot = Some(input.take(n).to_vec());
            }
            4 => {
                let extra = input.u8();
                slot.get_or_insert_with(Vec::new).push(extra);
            }
            _ => *slot = Some(originals[b][s].clone()),
        }
    }

    let mut decoded = Vec::new();
    let mut object_ok = true;
    for (b, (slots, original)) in received.iter().zip(&originals).enumerate() {
        let block_len = geometry.block_len(size as u64, b as u64);
        let intact: Vec<usize> = (0..total)
            .filter(|&i| slots[i].as_ref() == Some(&original[i]))
            .collect();
        let damaged: Vec<usize> = (0..total).filter(|i| !intact.contains(i)).collect();

        let mut for_decode = slots.clone();
        let before = decoded.len();
        match decoder.decode_block(&mut for_decode, block_len, &mut decoded) {
            Ok(report) => {
                assert!(
                    intact.len() >= k,
                    "decoded with only {} intact",
                    intact.len()
                );
                assert_eq!(report.damaged, damaged, "block {b}: wrong damage report");
                let start = b * block_size;
                assert!(
                    decoded[before..] == payload[start..start + block_len],
                    "block {b}: decoded bytes differ"
                );
                for (i, slot) in for_decode.iter().enumerate() {
                    if let Some(v) = slot {
                        assert_eq!(v, &original[i], "block {b}: slot {i} left wrong bytes");
                    }
                }
            }
            Err(DecodeError::TooFewShards { good, need }) => {
                assert!(
                    intact.len() < k,
                    "refused with {} intact of {k}",
                    intact.len()
                );
                assert_eq!((good, need), (intact.len(), k));
                assert_eq!(decoded.len(), before, "a failed decode appended bytes");
                object_ok = false;
            }
            Err(other) => panic!("block {b}: unexpected error {other:?}"),
        }

        let mut for_heal = slots.clone();
        match decoder.reconstruct_block(&mut for_heal, block_len) {
            Ok(report) => {
                assert_eq!(report.damaged, damaged);
                for (i, slot) in for_heal.iter().enumerate() {
                    assert_eq!(slot.as_ref(), Some(&original[i]), "block {b}: heal of {i}");
                }
            }
            Err(DecodeError::TooFewShards { .. }) => assert!(intact.len() < k),
            Err(other) => panic!("block {b}: unexpected heal error {other:?}"),
        }
    }
    if object_ok {
        assert!(decoded == payload, "object bytes differ");
    }
}
