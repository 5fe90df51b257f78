//! Typed errors of the erasure crate. Owns the error vocabulary only; it must never carry
//! shard bytes or decide policy (the cluster maps these onto its own quorum errors).

use thiserror::Error;

/// Invalid parameters given to [`crate::Geometry`] or [`crate::Encoder`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErasureError {
    /// At least one data shard is required.
    #[error("erasure geometry needs at least one data shard")]
    NoDataShards,
    /// Data plus parity shards exceed what the GF(2^8) code supports.
    #[error("erasure geometry {data}+{parity} exceeds {max} shards in total")]
    TooManyShards {
        /// Requested data shards.
        data: usize,
        /// Requested parity shards.
        parity: usize,
        /// Largest supported total.
        max: usize,
    },
    /// The block size must be at least one byte.
    #[error("erasure block size must be at least 1 byte")]
    ZeroBlockSize,
    /// A block handed to the encoder is longer than the geometry's block size.
    #[error("block of {len} bytes exceeds the block size of {max} bytes")]
    BlockTooLarge {
        /// Length of the offending block.
        len: usize,
        /// The geometry's block size.
        max: usize,
    },
    /// The Reed-Solomon library rejected an operation (a bug in this crate if it ever happens).
    #[error("reed-solomon codec error: {0}")]
    Codec(String),
}

/// Why a block could not be decoded or reconstructed. None of these ever comes with data:
/// when a decode fails, nothing has been appended to the caller's output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer than K shard blocks were present with a valid hash.
    #[error("only {good} good shards, {need} needed to decode the block")]
    TooFewShards {
        /// Shards present with a matching hash.
        good: usize,
        /// Data shards K required.
        need: usize,
    },
    /// The caller passed a slice whose length is not `Geometry::total()`.
    #[error("expected {expected} shard slots, got {got}")]
    ShardCount {
        /// Slots passed.
        got: usize,
        /// `Geometry::total()`.
        expected: usize,
    },
    /// `block_len` was 0 or larger than the geometry's block size.
    #[error("block length {len} is outside 1..={max}")]
    InvalidBlockLen {
        /// Requested block length.
        len: usize,
        /// The geometry's block size.
        max: usize,
    },
    /// The Reed-Solomon library rejected an operation (a bug in this crate if it ever happens).
    #[error("reed-solomon codec error: {0}")]
    Codec(String),
}
