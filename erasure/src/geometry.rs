//! Erasure geometry: K data shards, M parity shards, block size, and all the arithmetic that
//! maps object bytes onto blocks and framed shard blocks onto offsets in a shard file. Owns
//! layout arithmetic only; it must never touch bytes or files.

use std::ops::Range;

use crate::{ErasureError, HASH_LEN};

/// Largest number of data + parity shards the GF(2^8) Reed-Solomon code supports.
pub const MAX_TOTAL_SHARDS: usize = 256;

/// How an object is striped: `data` (K) data shards and `parity` (M) parity shards per block
/// of at most `block_size` bytes.
///
/// Layout of one object of `object_size` bytes:
/// - it is cut into `block_count()` blocks of `block_size` bytes, the last one possibly shorter;
///   an empty object has no blocks;
/// - a block of `n` bytes becomes K data shards of `shard_len(n) = ceil(n / K)` bytes (the last
///   data shard zero-padded) and M parity shards of the same length;
/// - each shard is framed as `[blake3(shard): HASH_LEN][shard]`;
/// - shard file `i` is the concatenation of the framed shard blocks `i` of every block, block 0
///   first, so block `b` of every shard file starts at the same offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    data: usize,
    parity: usize,
    block_size: usize,
}

impl Geometry {
    /// Validates `data >= 1`, `data + parity <= 256`, `block_size >= 1`. `parity` may be 0
    /// (framing only). The cluster's policy (M <= K) is not enforced here.
    pub fn new(data: usize, parity: usize, block_size: usize) -> Result<Self, ErasureError> {
        if data == 0 {
            return Err(ErasureError::NoDataShards);
        }
        if data.saturating_add(parity) > MAX_TOTAL_SHARDS {
            return Err(ErasureError::TooManyShards {
                data,
                parity,
                max: MAX_TOTAL_SHARDS,
            });
        }
        if block_size == 0 {
            return Err(ErasureError::ZeroBlockSize);
        }
        Ok(Self {
            data,
            parity,
            block_size,
        })
    }

    /// K: data shards per block.
    pub fn data(&self) -> usize {
        self.data
    }

    /// M: parity shards per block.
    pub fn parity(&self) -> usize {
        self.parity
    }

    /// K + M: shard files per object.
    pub fn total(&self) -> usize {
        self.data + self.parity
    }

    /// Bytes of object data per block (the last block of an object may be shorter).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes of one shard (without its hash) for a block of `block_len` bytes: `ceil(block_len / K)`.
    pub fn shard_len(&self, block_len: usize) -> usize {
        block_len.div_ceil(self.data)
    }

    /// Bytes of one framed shard block (hash + shard) for a block of `block_len` bytes.
    pub fn framed_len(&self, block_len: usize) -> usize {
        HASH_LEN + self.shard_len(block_len)
    }

    /// Number of blocks of an object of `object_size` bytes (0 for an empty object).
    pub fn block_count(&self, object_size: u64) -> u64 {
        object_size.div_ceil(self.block_size as u64)
    }

    /// Offset in the object of the first byte of block `block_index`.
    pub fn block_offset(&self, block_index: u64) -> u64 {
        block_index.saturating_mul(self.block_size as u64)
    }

    /// Bytes of object data in block `block_index`; 0 when the block does not exist.
    pub fn block_len(&self, object_size: u64, block_index: u64) -> usize {
        let start = self.block_offset(block_index);
        if start >= object_size {
            return 0;
        }
        // Bounded by block_size, so the cast cannot truncate.
        (object_size - start).min(self.block_size as u64) as usize
    }

    /// Bytes of one shard file (every shard index has the same length).
    pub fn shard_file_len(&self, object_size: u64) -> u64 {
        let full_blocks = object_size / self.block_size as u64;
        let tail = (object_size % self.block_size as u64) as usize;
        let mut len = full_blocks * self.framed_len(self.block_size) as u64;
        if tail > 0 {
            len += self.framed_len(tail) as u64;
        }
        len
    }

    /// Byte range of framed shard block `block_index` inside any one shard file. Empty (at the
    /// end of the file) when the block does not exist.
    pub fn framed_block_range(&self, object_size: u64, block_index: u64) -> Range<u64> {
        let block_len = self.block_len(object_size, block_index);
        if block_len == 0 {
            let end = self.shard_file_len(object_size);
            return end..end;
        }
        let start = block_index * self.framed_len(self.block_size) as u64;
        start..start + self.framed_len(block_len) as u64
    }

    /// Indices of the blocks that hold any byte of `range` (clamped to the object). An empty or
    /// out-of-object range yields an empty range of blocks.
    pub fn blocks_for_range(&self, object_size: u64, range: Range<u64>) -> Range<u64> {
        let end = range.end.min(object_size);
        let bs = self.block_size as u64;
        if range.start >= end {
            let b = (range.start.min(object_size)).div_ceil(bs);
            return b..b;
        }
        range.start / bs..end.div_ceil(bs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_len_rounds_up_and_block_len_covers_the_tail() {
        let g = Geometry::new(4, 2, 10).unwrap();
        assert_eq!(
            [
                g.shard_len(1),
                g.shard_len(4),
                g.shard_len(5),
                g.shard_len(10)
            ],
            [1, 1, 2, 3]
        );
        assert_eq!(g.block_count(0), 0);
        assert_eq!(g.block_count(10), 1);
        assert_eq!(g.block_count(11), 2);
        assert_eq!(
            [g.block_len(25, 0), g.block_len(25, 2), g.block_len(25, 3)],
            [10, 5, 0]
        );
    }

    #[test]
    fn framed_blocks_tile_the_shard_file_exactly() {
        for (k, bs) in [(1, 1), (3, 7), (4, 10), (12, 1000)] {
            let g = Geometry::new(k, 1, bs).unwrap();
            for size in [
                0u64,
                1,
                bs as u64 - 1,
                bs as u64,
                bs as u64 + 1,
                5 * bs as u64 + 3,
            ] {
                let mut next = 0;
                for b in 0..g.block_count(size) {
                    let r = g.framed_block_range(size, b);
                    assert_eq!(r.start, next, "{k} {bs} {size} block {b}");
                    assert_eq!(r.end - r.start, g.framed_len(g.block_len(size, b)) as u64);
                    next = r.end;
                }
                assert_eq!(next, g.shard_file_len(size));
                let past = g.framed_block_range(size, g.block_count(size));
                assert!(past.is_empty());
            }
        }
    }

    #[test]
    fn blocks_for_range_clamps_and_handles_empty_ranges() {
        let g = Geometry::new(2, 0, 10).unwrap();
        assert_eq!(g.blocks_for_range(25, 0..25), 0..3);
        assert_eq!(g.blocks_for_range(25, 9..11), 0..2);
        assert_eq!(g.blocks_for_range(25, 10..20), 1..2);
        assert_eq!(g.blocks_for_range(25, 20..1000), 2..3);
        assert!(g.blocks_for_range(25, 5..5).is_empty());
        assert!(g.blocks_for_range(25, 25..30).is_empty());
        let (start, end) = (7, 3);
        assert!(g.blocks_for_range(25, start..end).is_empty());
        assert!(g.blocks_for_range(0, 0..10).is_empty());
    }
}
