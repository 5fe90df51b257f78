//! Measures reed-solomon-erasure without `simd-accel` and reed-solomon-simd on 1 MiB blocks
//! (best of 5 x 40 iterations, one thread) next to memcpy and blake3 of the same bytes, for
//! docs/decisions/0001. A measuring tool only: it must never be a dependency of anything.

use std::hint::black_box;
use std::time::Instant;

const MIB: usize = 1 << 20;

/// Runs `f` and prints its throughput in GB/s (10^9 bytes per second of 1 MiB per call).
fn rate(label: &str, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let n = 40;
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(n));
    }
    let gbs = MIB as f64 / best / 1e9;
    println!("{label:40} {gbs:8.2} GB/s");
    gbs
}

fn main() {
    let src: Vec<u8> = (0..MIB)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut dst = vec![0u8; MIB];
    let memcpy = rate("memcpy", || {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    });
    rate("blake3", || {
        black_box(blake3::hash(black_box(&src)));
    });
    for (k, m) in [(2usize, 2usize), (4, 2), (8, 4), (12, 4)] {
        // reed-solomon-simd wants shard sizes that are multiples of 64 bytes; use the same
        // padded shards for both codecs.
        let shard_len = MIB.div_ceil(k).div_ceil(64) * 64;
        let data: Vec<Vec<u8>> = src
            .chunks(MIB.div_ceil(k))
            .map(|c| {
                let mut v = c.to_vec();
                v.resize(shard_len, 0);
                v
            })
            .collect();
        let mut parity = vec![vec![0u8; shard_len]; m];
        let rs = reed_solomon_erasure::galois_8::ReedSolomon::new(k, m).expect("valid");
        let enc = rate(&format!("rse no-simd encode {k}+{m}"), || {
            rs.encode_sep(black_box(&data), &mut parity).expect("encodes");
        });
        let simd_enc = rate(&format!("reed-solomon-simd encode {k}+{m}"), || {
            black_box(reed_solomon_simd::encode(k, m, black_box(&data)).expect("encodes"));
        });
        // Reconstruct with the first M data shards lost (M <= K here).
        let mut shards: Vec<(Vec<u8>, bool)> = data
            .iter()
            .chain(parity.iter())
            .map(|s| (s.clone(), true))
            .collect();
        let rec = rate(&format!("rse no-simd reconstruct {k}+{m}"), || {
            for s in shards.iter_mut().take(m) {
                s.1 = false;
            }
            rs.reconstruct_data(&mut shards).expect("reconstructs");
        });
        let simd_parity = reed_solomon_simd::encode(k, m, &data).expect("encodes");
        let simd_rec = rate(&format!("reed-solomon-simd reconstruct {k}+{m}"), || {
            let originals = data.iter().enumerate().skip(m);
            let recovery = simd_parity.iter().enumerate();
            black_box(reed_solomon_simd::decode(k, m, originals, recovery).expect("decodes"));
        });
        println!(
            "  ratio to memcpy: rse no-simd encode {:.3} reconstruct {:.3}; \
             reed-solomon-simd encode {:.3} reconstruct {:.3}",
            enc / memcpy,
            rec / memcpy,
            simd_enc / memcpy,
            simd_rec / memcpy
        );
    }
}
