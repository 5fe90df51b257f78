//! Range reads: `Geometry::blocks_for_range` + `framed_block_range` select exactly the blocks
//! a byte range touches, and decoding only those (with up to M damaged shards) returns the
//! exact bytes at every block boundary. Blocks outside the range are destroyed before the
//! read to prove they are never needed.

#[path = "support/object.rs"]
mod object;

use erasure::Geometry;
use object::{encode_object, payload, read_range, Damage, Encoded};
use proptest::prelude::*;

/// A copy of `enc` whose framed blocks outside `keep` are overwritten with garbage.
fn destroy_other_blocks(enc: &Encoded, keep: std::ops::Range<u64>) -> Encoded {
    let mut files = enc.files.clone();
    for b in 0..enc.geometry.block_count(enc.size) {
        if keep.contains(&b) {
            continue;
        }
        let r = enc.geometry.framed_block_range(enc.size, b);
        for file in &mut files {
            file[r.start as usize..r.end as usize].fill(0xa5);
        }
    }
    Encoded {
        geometry: enc.geometry,
        size: enc.size,
        files,
    }
}

fn boundary_points(block_size: u64, size: u64) -> Vec<u64> {
    let mut points = vec![0, 1, size.saturating_sub(1), size, size + 1];
    let mut edge = block_size;
    while edge <= size + block_size {
        points.extend([edge - 1, edge, edge + 1]);
        edge += block_size;
    }
    points.sort_unstable();
    points.dedup();
    points
}

#[test]
fn range_reads_at_every_block_boundary_return_exact_bytes() {
    for (k, m, block_size, size) in [
        (1, 0, 4096, 3 * 4096 + 17),
        (3, 2, 4096, 3 * 4096),
        (4, 2, 5000, 2 * 5000 + 1),
        (5, 5, 777, 4 * 777 - 1),
    ] {
        let geometry = Geometry::new(k, m, block_size).unwrap();
        let bytes = payload(size, 5);
        let enc = encode_object(geometry, &bytes, &[1234]);
        let points = boundary_points(block_size as u64, size as u64);
        let plan = |b: u64| -> Vec<(usize, Damage)> {
            (0..m)
                .map(|j| {
                    (
                        (j + b as usize) % (k + m),
                        if j % 2 == 0 {
                            Damage::Missing
                        } else {
                            Damage::Flip(j)
                        },
                    )
                })
                .collect()
        };
        for &start in &points {
            for &end in points.iter().filter(|&&e| e >= start) {
                let blocks = geometry.blocks_for_range(size as u64, start..end);
                let clamped_end = end.min(size as u64);
                if start < clamped_end {
                    // Minimal: the first block holds `start`, the last holds `end - 1`.
                    assert!(geometry.block_offset(blocks.start) <= start);
                    assert!(start < geometry.block_offset(blocks.start + 1));
                    assert!(geometry.block_offset(blocks.end - 1) < clamped_end);
                    assert!(clamped_end <= geometry.block_offset(blocks.end));
                } else {
                    assert!(blocks.is_empty(), "{start}..{end} of {size}: {blocks:?}");
                }
                let only_needed = destroy_other_blocks(&enc, blocks.clone());
                let got = read_range(&only_needed, start..end, &plan)
                    .unwrap_or_else(|e| panic!("{k}+{m} {start}..{end}: {e}"));
                let s = (start as usize).min(size);
                let want = &bytes[s..(clamped_end as usize).max(s)];
                assert!(got == want, "{k}+{m} range {start}..{end} of {size}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_range_reads_return_exact_bytes(
        (k, m) in (1usize..=12).prop_flat_map(|k| (Just(k), 0..=k)),
        block_size in 64usize..=4096,
        blocks in 0.0f64..4.0,
        a in 0.0f64..1.1,
        b in 0.0f64..1.1,
        seed in any::<u64>(),
    ) {
        let size = (blocks * block_size as f64) as u64;
        let geometry = Geometry::new(k, m, block_size).unwrap();
        let bytes = payload(size as usize, seed);
        let enc = encode_object(geometry, &bytes, &[block_size / 3 + 1]);
        let (x, y) = ((a * size as f64) as u64, (b * size as f64) as u64);
        let (start, end) = (x.min(y), x.max(y));
        let range_blocks = geometry.blocks_for_range(size, start..end);
        let only_needed = destroy_other_blocks(&enc, range_blocks);
        let plan = |blk: u64| -> Vec<(usize, Damage)> {
            (0..m).map(|j| ((j * 5 + blk as usize + seed as usize % 7) % (k + m), Damage::Missing)).collect()
        };
        let got = read_range(&only_needed, start..end, &plan).unwrap();
        let s = (start.min(size)) as usize;
        let e = (end.min(size)).max(start.min(size)) as usize;
        prop_assert!(got == bytes[s..e]);
    }
}
