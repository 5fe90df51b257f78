//! Criterion benchmarks of the erasure codec on 1 MiB blocks: encode (split + parity +
//! blake3 framing), clean decode (verify + copy), degraded decode with M shards missing,
//! heal (rebuild every missing shard), against baselines measured in the same run: memcpy of
//! the same bytes, blake3 of the same bytes, and raw reed-solomon-erasure encode/reconstruct
//! without framing. Throughput is reported in object bytes (1 MiB per iteration). Every
//! timed call `expect`s success so an error path is never timed by mistake; correctness
//! itself is the tests' job.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use erasure::{Decoder, Encoder, Geometry, DEFAULT_BLOCK_SIZE};
use reed_solomon_erasure::galois_8::ReedSolomon;

const GEOMETRIES: [(usize, usize); 4] = [(2, 2), (4, 2), (8, 4), (12, 4)];

fn block() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..DEFAULT_BLOCK_SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn label(k: usize, m: usize) -> String {
    format!("{k}+{m}")
}

fn baselines(c: &mut Criterion) {
    let src = block();
    let mut dst = vec![0u8; src.len()];
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&src))));
    g.finish();
}

fn encode(c: &mut Criterion) {
    let src = block();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(src.len() as u64));
    for (k, m) in GEOMETRIES {
        let geometry = Geometry::new(k, m, DEFAULT_BLOCK_SIZE).expect("valid geometry");
        let encoder = Encoder::new(geometry);
        let mut out = Vec::new();
        g.bench_function(BenchmarkId::new("framed", label(k, m)), |b| {
            b.iter(|| {
                encoder
                    .encode_block(black_box(&src), &mut out)
                    .expect("encodes")
            })
        });

        // Raw Reed-Solomon on pre-split shards: no copy, no hash.
        let rs = ReedSolomon::new(k, m).expect("valid geometry");
        let shard_len = geometry.shard_len(src.len());
        let mut data: Vec<Vec<u8>> = src.chunks(shard_len).map(<[u8]>::to_vec).collect();
        data.last_mut().expect("k >= 1").resize(shard_len, 0);
        let mut parity = vec![vec![0u8; shard_len]; m];
        g.bench_function(BenchmarkId::new("rs_raw", label(k, m)), |b| {
            b.iter(|| {
                rs.encode_sep(black_box(&data), &mut parity)
                    .expect("encodes")
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let src = block();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(src.len() as u64));
    for (k, m) in GEOMETRIES {
        let geometry = Geometry::new(k, m, DEFAULT_BLOCK_SIZE).expect("valid geometry");
        let decoder = Decoder::new(geometry);
        let mut framed = Vec::new();
        Encoder::new(geometry)
            .encode_block(&src, &mut framed)
            .expect("1 MiB fits");
        let mut out = Vec::with_capacity(src.len());

        // All shards present: verify K+M hashes, copy K shards out.
        let mut slots: Vec<Option<Vec<u8>>> = framed.iter().cloned().map(Some).collect();
        g.bench_function(BenchmarkId::new("clean", label(k, m)), |b| {
            b.iter(|| {
                out.clear();
                decoder
                    .decode_block(&mut slots, src.len(), &mut out)
                    .expect("decodes")
            })
        });

        // Worst case: the first M data shards missing (lent as empty buffers, which the
        // decoder reuses for the rebuild, so nothing is allocated per iteration).
        g.bench_function(BenchmarkId::new("degraded_m_missing", label(k, m)), |b| {
            b.iter(|| {
                for slot in slots.iter_mut().take(m) {
                    if let Some(v) = slot.as_mut() {
                        v.clear();
                    }
                }
                out.clear();
                decoder
                    .decode_block(&mut slots, src.len(), &mut out)
                    .expect("decodes")
            })
        });

        // Heal: rebuild M shards (half data, half parity) and seal them. The cleared slots
        // lend their buffers, so nothing is allocated per iteration.
        let mut slots: Vec<Option<Vec<u8>>> = framed.iter().cloned().map(Some).collect();
        g.bench_function(BenchmarkId::new("heal_m_missing", label(k, m)), |b| {
            b.iter(|| {
                for i in (0..m / 2).chain(k..k + m - m / 2) {
                    if let Some(v) = slots[i].as_mut() {
                        v.clear();
                    }
                }
                decoder
                    .reconstruct_block(&mut slots, src.len())
                    .expect("heals")
            })
        });

        // Raw Reed-Solomon reconstruct of the same M data shards, buffers reused.
        let rs = ReedSolomon::new(k, m).expect("valid geometry");
        let mut raw: Vec<(Vec<u8>, bool)> = framed
            .iter()
            .map(|f| (f[erasure::HASH_LEN..].to_vec(), true))
            .collect();
        g.bench_function(
            BenchmarkId::new("rs_raw_reconstruct_data", label(k, m)),
            |b| {
                b.iter(|| {
                    for shard in raw.iter_mut().take(m) {
                        shard.1 = false;
                    }
                    rs.reconstruct_data(&mut raw).expect("reconstructs")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, baselines, encode, decode);
criterion_main!(benches);
