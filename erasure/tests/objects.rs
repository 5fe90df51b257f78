//! Whole objects through the streaming encoder and back: sizes 0, 1, block-1, block, block+1
//! and random up to several blocks, arbitrary write sizes, up to M damaged shards per block
//! (a different pattern in every block), plus a few objects with the default 1 MiB block.

#[path = "support/object.rs"]
mod object;

use erasure::{Encoder, Geometry, DEFAULT_BLOCK_SIZE};
use object::{encode_object, payload, read_range, Damage, Encoded};
use proptest::prelude::*;

/// Damage for block `b`: `count` shards chosen from `picks`, kinds from `kinds`.
fn damage_plan(
    total: usize,
    count: usize,
    picks: &[usize],
    kinds: &[u8],
    b: u64,
) -> Vec<(usize, Damage)> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut n = b as usize;
    while chosen.len() < count.min(total) {
        // Pseudo-random picks first; sequential once they have had their chance, so the
        // loop always ends.
        let i = if n < b as usize + 4 * total {
            (picks[n % picks.len()] + n) % total
        } else {
            n % total
        };
        if !chosen.contains(&i) {
            chosen.push(i);
        }
        n += 1;
    }
    chosen
        .into_iter()
        .enumerate()
        .map(|(j, i)| {
            let how = match kinds[(j + b as usize) % kinds.len()] % 4 {
                0 => Damage::Missing,
                1 => Damage::Flip(i * 7919 + b as usize),
                2 => Damage::Truncate(i + 1),
                _ => Damage::Extend,
            };
            (i, how)
        })
        .collect()
}

fn check_layout(enc: &Encoded) {
    let g = enc.geometry;
    for file in &enc.files {
        assert_eq!(file.len() as u64, g.shard_file_len(enc.size));
    }
    let blocks = g.block_count(enc.size);
    if blocks > 0 {
        assert_eq!(
            g.framed_block_range(enc.size, blocks - 1).end,
            g.shard_file_len(enc.size)
        );
    }
}

fn geometry_strategy() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=12).prop_flat_map(|k| (Just(k), 0..=k))
}

fn size_strategy(block_size: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(block_size - 1),
        Just(block_size),
        Just(block_size + 1),
        Just(3 * block_size),
        0..=4 * block_size,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streamed_objects_roundtrip_with_up_to_m_damaged_shards_per_block(
        (k, m) in geometry_strategy(),
        block_size in prop_oneof![Just(4096usize), 1000usize..=16_384],
        size_pick in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(0usize..40_000, 1..5),
        seed in any::<u64>(),
        damaged in any::<prop::sample::Index>(),
        picks in prop::collection::vec(0usize..64, 1..8),
        kinds in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let candidates = [0, 1, block_size - 1, block_size, block_size + 1, 3 * block_size,
            seed as usize % (4 * block_size + 1)];
        let size = candidates[size_pick.index(candidates.len())];
        let geometry = Geometry::new(k, m, block_size).unwrap();
        let bytes = payload(size, seed);
        let enc = encode_object(geometry, &bytes, &sizes);
        check_layout(&enc);
        let count = damaged.index(m + 1);
        let plan = |b: u64| damage_plan(k + m, count, &picks, &kinds, b);
        let back = read_range(&enc, 0..size as u64, &plan).unwrap();
        prop_assert!(back == bytes, "{}+{} size {} damaged {}", k, m, size, count);

        // The streaming encoder produces exactly what per-block encoding produces.
        let encoder = Encoder::new(geometry);
        let mut out = Vec::new();
        for (b, block) in bytes.chunks(block_size).enumerate() {
            encoder.encode_block(block, &mut out).unwrap();
            let r = geometry.framed_block_range(size as u64, b as u64);
            for (i, shard) in out.iter().enumerate() {
                prop_assert!(enc.files[i][r.start as usize..r.end as usize] == shard[..]);
            }
        }
    }

    #[test]
    fn one_loss_too_many_in_any_block_fails_the_read(
        (k, m) in geometry_strategy(),
        size in size_strategy(2048).prop_filter("non-empty", |s| *s > 0),
        bad_block in any::<prop::sample::Index>(),
        picks in prop::collection::vec(0usize..64, 1..8),
        kinds in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let geometry = Geometry::new(k, m, 2048).unwrap();
        let bytes = payload(size, size as u64);
        let enc = encode_object(geometry, &bytes, &[777]);
        let bad = bad_block.index(geometry.block_count(size as u64) as usize) as u64;
        let plan = |b: u64| {
            let count = if b == bad { m + 1 } else { m };
            damage_plan(k + m, count, &picks, &kinds, b)
        };
        let err = read_range(&enc, 0..size as u64, &plan).unwrap_err();
        prop_assert_eq!(err, erasure::DecodeError::TooFewShards { good: k - 1, need: k });
    }
}

#[test]
fn default_block_size_objects_roundtrip_with_m_shards_lost() {
    let mb = DEFAULT_BLOCK_SIZE;
    for (k, m, size) in [
        (4, 2, 2 * mb + 1),
        (12, 4, mb - 1),
        (2, 2, mb),
        (1, 0, mb + 1),
        (8, 4, 3 * mb),
    ] {
        let geometry = Geometry::new(k, m, mb).unwrap();
        let bytes = payload(size, k as u64);
        let enc = encode_object(geometry, &bytes, &[65_536, 1_000_003, 1]);
        check_layout(&enc);
        let plan = |b: u64| -> Vec<(usize, Damage)> {
            (0..m)
                .map(|j| {
                    let i = (j * 3 + b as usize) % (k + m);
                    let how = if j % 2 == 0 {
                        Damage::Missing
                    } else {
                        Damage::Flip(j * 100_003)
                    };
                    (i, how)
                })
                .collect()
        };
        let back = read_range(&enc, 0..size as u64, &plan).unwrap();
        assert!(back == bytes, "{k}+{m} size {size}");
    }
}

#[test]
fn empty_object_has_no_blocks_and_empty_shard_files() {
    let geometry = Geometry::new(4, 2, 4096).unwrap();
    let enc = encode_object(geometry, &[], &[10]);
    assert!(enc.files.iter().all(Vec::is_empty));
    assert_eq!(geometry.block_count(0), 0);
    assert_eq!(geometry.shard_file_len(0), 0);
    assert_eq!(
        read_range(&enc, 0..0, &|_| Vec::new()).unwrap(),
        Vec::<u8>::new()
    );
}
