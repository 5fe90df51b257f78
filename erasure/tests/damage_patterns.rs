//! Every geometry K in 1..=12, M in 0..=K: every pattern (exhaustive where small, sampled
//! otherwise) of up to M missing or corrupt shards decodes and heals to the exact bytes, and
//! M + 1 losses are a clear `TooFewShards` error with nothing appended.

#[path = "support/object.rs"]
mod object;

use erasure::{DecodeError, Decoder, Encoder, Geometry};
use object::{damage, payload, small_subsets, Damage};
use rand::{seq::SliceRandom, Rng, SeedableRng};

/// A damage kind for shard `i` of pattern number `n`, cycling through all kinds.
fn kind(i: usize, n: usize) -> Damage {
    match (i + n) % 4 {
        0 => Damage::Missing,
        1 => Damage::Flip(i * 31 + n),
        2 => Damage::Truncate(i + n),
        _ => Damage::Extend,
    }
}

fn patterns(total: usize, max: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    small_subsets(total, max, 400).unwrap_or_else(|| {
        let all: Vec<usize> = (0..total).collect();
        let mut sampled: Vec<Vec<usize>> = (0..120)
            .map(|_| {
                let n = rng.gen_range(0..=max);
                let mut pick: Vec<usize> = all.choose_multiple(rng, n).copied().collect();
                pick.sort_unstable();
                pick
            })
            .collect();
        // Always include "all data shards lost" and "all parity shards lost".
        sampled.push((0..max.min(total)).collect());
        sampled.push((total - max..total).collect());
        sampled
    })
}

#[test]
fn up_to_m_damaged_shards_decode_and_heal_exactly_for_every_geometry() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for k in 1..=12 {
        for m in 0..=k {
            let block_size = 700;
            let geometry = Geometry::new(k, m, block_size).unwrap();
            let encoder = Encoder::new(geometry);
            let decoder = Decoder::new(geometry);
            for block_len in [1, k, 517, block_size] {
                let bytes = payload(block_len, (k * 100 + m) as u64);
                let mut original = Vec::new();
                encoder.encode_block(&bytes, &mut original).unwrap();
                for (n, pattern) in patterns(k + m, m, &mut rng).into_iter().enumerate() {
                    let slots: Vec<Option<Vec<u8>>> = original
                        .iter()
                        .enumerate()
                        .map(|(i, s)| match pattern.contains(&i) {
                            true => damage(s.clone(), kind(i, n)),
                            false => Some(s.clone()),
                        })
                        .collect();

                    let mut shards = slots.clone();
                    let mut out = vec![0xee];
                    let report = decoder
                        .decode_block(&mut shards, block_len, &mut out)
                        .unwrap_or_else(|e| panic!("{k}+{m} len {block_len} {pattern:?}: {e}"));
                    assert_eq!(report.damaged, pattern, "{k}+{m} {pattern:?}");
                    assert_eq!(out[0], 0xee, "decode must append, not overwrite");
                    assert!(out[1..] == bytes[..], "{k}+{m} len {block_len} {pattern:?}");
                    for (i, slot) in shards.iter().enumerate() {
                        let want = (!pattern.contains(&i)).then_some(&original[i]);
                        assert_eq!(slot.as_ref(), want, "slot {i} after decode");
                    }

                    let mut shards = slots;
                    let report = decoder.reconstruct_block(&mut shards, block_len).unwrap();
                    assert_eq!(report.damaged, pattern);
                    for (i, slot) in shards.iter().enumerate() {
                        assert_eq!(slot.as_ref(), Some(&original[i]), "{k}+{m} healed slot {i}");
                    }
                }
            }
        }
    }
}

#[test]
fn m_plus_one_damaged_shards_are_too_few_and_append_nothing() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for k in 1..=12 {
        for m in 0..=k {
            let geometry = Geometry::new(k, m, 1000).unwrap();
            let encoder = Encoder::new(geometry);
            let decoder = Decoder::new(geometry);
            let bytes = payload(999, k as u64);
            let mut original = Vec::new();
            encoder.encode_block(&bytes, &mut original).unwrap();
            let all: Vec<usize> = (0..k + m).collect();
            for n in 0..20 {
                let lost = rng.gen_range(m + 1..=k + m);
                let pattern: Vec<usize> = all.choose_multiple(&mut rng, lost).copied().collect();
                let mut shards: Vec<Option<Vec<u8>>> = original
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match pattern.contains(&i) {
                        true => damage(s.clone(), kind(i, n)),
                        false => Some(s.clone()),
                    })
                    .collect();
                let mut out = vec![1, 2, 3];
                let err = decoder
                    .decode_block(&mut shards, 999, &mut out)
                    .unwrap_err();
                assert_eq!(
                    err,
                    DecodeError::TooFewShards {
                        good: k + m - lost,
                        need: k
                    }
                );
                assert_eq!(out, vec![1, 2, 3]);
                for &i in &pattern {
                    assert!(shards[i].is_none(), "a rotten slot was left in place");
                }
                let err = decoder.reconstruct_block(&mut shards, 999).unwrap_err();
                assert!(matches!(err, DecodeError::TooFewShards { .. }));
            }
        }
    }
}

#[test]
fn largest_geometry_the_codec_allows_roundtrips() {
    let geometry = Geometry::new(200, 56, 64 * 1024).unwrap();
    let bytes = payload(64 * 1024 - 3, 9);
    let mut original = Vec::new();
    Encoder::new(geometry)
        .encode_block(&bytes, &mut original)
        .unwrap();
    let mut shards: Vec<Option<Vec<u8>>> = original.into_iter().map(Some).collect();
    for i in (0..256).step_by(5).take(56) {
        shards[i] = None;
    }
    let mut out = Vec::new();
    Decoder::new(geometry)
        .decode_block(&mut shards, bytes.len(), &mut out)
        .unwrap();
    assert!(out == bytes);
}
