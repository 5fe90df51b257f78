//! Test helpers that play the cluster's part: stream an object into shard files, read framed
//! shard blocks back by offset (optionally damaged), and decode byte ranges reading only the
//! blocks a range touches. Owns no codec logic; it must only use the crate's public API.

#![allow(dead_code)] // each test file uses a different subset

use std::ops::Range;

use erasure::{DecodeError, Decoder, Geometry, StreamEncoder};

/// An object encoded into its `total()` shard files.
pub struct Encoded {
    pub geometry: Geometry,
    pub size: u64,
    pub files: Vec<Vec<u8>>,
}

/// How one shard block is damaged before the decoder sees it.
#[derive(Clone, Copy, Debug)]
pub enum Damage {
    /// The shard block is not supplied.
    Missing,
    /// One byte at `pos % len` is flipped (hash or body).
    Flip(usize),
    /// Cut to `keep % len` bytes.
    Truncate(usize),
    /// One extra byte appended.
    Extend,
}

/// Deterministic pseudo-random payload.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Streams `bytes` through a [`StreamEncoder`] with writes cycling through `write_sizes`
/// (0 entries are skipped), appending each emitted block to the shard files.
pub fn encode_object(geometry: Geometry, bytes: &[u8], write_sizes: &[usize]) -> Encoded {
    let mut files = vec![Vec::new(); geometry.total()];
    let mut encoder = StreamEncoder::new(geometry);
    let mut emit = |blocks: &[Vec<u8>]| -> Result<(), ()> {
        assert_eq!(blocks.len(), geometry.total());
        for (file, block) in files.iter_mut().zip(blocks) {
            file.extend_from_slice(block);
        }
        Ok(())
    };
    let mut rest = bytes;
    let mut sizes = write_sizes.iter().copied().filter(|&n| n > 0).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (head, tail) = rest.split_at(n);
        encoder
            .write(head, &mut emit)
            .expect("emit never fails here");
        rest = tail;
    }
    encoder.finish(&mut emit).expect("emit never fails here");
    Encoded {
        geometry,
        size: bytes.len() as u64,
        files,
    }
}

/// Applies `damage` to one framed shard block.
pub fn damage(block: Vec<u8>, how: Damage) -> Option<Vec<u8>> {
    let mut block = block;
    match how {
        Damage::Missing => return None,
        Damage::Flip(pos) => {
            let len = block.len();
            block[pos % len] ^= 0x5a;
        }
        Damage::Truncate(keep) => {
            let len = block.len();
            block.truncate(keep % len);
        }
        Damage::Extend => block.push(0),
    }
    Some(block)
}

/// Reads framed shard block `b` of every shard file at the offset the geometry gives,
/// applying the damage listed for that block.
pub fn read_block(enc: &Encoded, b: u64, damaged: &[(usize, Damage)]) -> Vec<Option<Vec<u8>>> {
    let range = enc.geometry.framed_block_range(enc.size, b);
    let (start, end) = (range.start as usize, range.end as usize);
    enc.files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let block = file[start..end].to_vec();
            match damaged.iter().find(|(d, _)| *d == i) {
                Some(&(_, how)) => damage(block, how),
                None => Some(block),
            }
        })
        .collect()
}

/// Reads `range` of the object, decoding only the blocks it touches; `damage_for(b)` says
/// which shards of block `b` are damaged.
pub fn read_range(
    enc: &Encoded,
    range: Range<u64>,
    damage_for: &dyn Fn(u64) -> Vec<(usize, Damage)>,
) -> Result<Vec<u8>, DecodeError> {
    let decoder = Decoder::new(enc.geometry);
    let blocks = enc.geometry.blocks_for_range(enc.size, range.clone());
    let mut out = Vec::new();
    let mut block_bytes = Vec::new();
    for b in blocks {
        let mut shards = read_block(enc, b, &damage_for(b));
        block_bytes.clear();
        let block_len = enc.geometry.block_len(enc.size, b);
        decoder.decode_block(&mut shards, block_len, &mut block_bytes)?;
        assert_eq!(block_bytes.len(), block_len);
        let block_start = enc.geometry.block_offset(b);
        let from = range.start.max(block_start) - block_start;
        let to = range.end.min(block_start + block_len as u64) - block_start;
        out.extend_from_slice(&block_bytes[from as usize..to as usize]);
    }
    Ok(out)
}

/// All subsets of `0..n` with at most `max` elements, if there are at most `cap` of them;
/// otherwise `None`.
pub fn small_subsets(n: usize, max: usize, cap: usize) -> Option<Vec<Vec<usize>>> {
    fn go(
        start: usize,
        n: usize,
        left: usize,
        cur: &mut Vec<usize>,
        acc: &mut Vec<Vec<usize>>,
        cap: usize,
    ) -> bool {
        acc.push(cur.clone());
        if acc.len() > cap {
            return false;
        }
        if left == 0 {
            return true;
        }
        for i in start..n {
            cur.push(i);
            let ok = go(i + 1, n, left - 1, cur, acc, cap);
            cur.pop();
            if !ok {
                return false;
            }
        }
        true
    }
    let mut acc = Vec::new();
    go(0, n, max, &mut Vec::new(), &mut acc, cap).then_some(acc)
}
