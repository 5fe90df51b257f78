//! Tessera's erasure codec: Reed-Solomon striping of object bytes into K data + M parity
//! shards per block, each shard block framed with its blake3 hash so that bitrot is detected
//! per block and a range read verifies only the blocks it touches. Pure and synchronous: it
//! takes bytes and returns bytes or errors; it must never do I/O, spawn threads or decide
//! quorum policy (that is the cluster's job).
//!
//! Layout (see [`Geometry`]): an object is cut into blocks of `block_size` bytes (1 MiB by
//! default, the last block shorter); block `b` becomes `total()` framed shard blocks
//! `[blake3(shard): 32][shard: ceil(len / K) bytes]`; shard file `i` is the concatenation of
//! framed shard block `i` of every block. [`Geometry::framed_block_range`] and
//! [`Geometry::blocks_for_range`] give the offsets a range read needs.
//!
//! Entry points: [`Encoder::encode_block`] and [`StreamEncoder`] to write,
//! [`Decoder::decode_block`] to read, [`Decoder::reconstruct_block`] to heal.
//!
//! Small additions to the agreed contract: [`BlockReport::corrupt`] (damaged shards that were
//! present but failed their hash, as opposed to not supplied), `Geometry::framed_len`,
//! `Geometry::block_offset`, [`verify_framed`], and the slot-state guarantees documented on
//! [`Decoder::decode_block`]. M = 0 (framing only) is supported.

mod decode;
mod encode;
mod error;
mod frame;
mod geometry;

pub use decode::{BlockReport, Decoder};
pub use encode::{Encoder, StreamEncoder};
pub use error::{DecodeError, ErasureError};
pub use frame::verify_framed;
pub use geometry::{Geometry, MAX_TOTAL_SHARDS};

/// Length of the blake3 digest that prefixes every shard block.
pub const HASH_LEN: usize = 32;

/// Default bytes of object data per block.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
