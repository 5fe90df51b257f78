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
//! How the cluster is expected to use it:
//! - Write: one [`StreamEncoder`] per object; `write` the body as it arrives; each `emit`
//!   gets the `total()` framed shard blocks of one block, to append to shard files `0..K+M`;
//!   `finish` emits the short last block. An empty object emits nothing (shard files empty).
//! - Read a byte range: for `b in geometry.blocks_for_range(size, range)`, read
//!   `geometry.framed_block_range(size, b)` from the shard files, call
//!   [`Decoder::decode_block`] with `geometry.block_len(size, b)`, and cut the range out of
//!   the block (`geometry.block_offset(b)` is the block's first object byte). Reading only
//!   the K data shards is the cheap path; on `TooFewShards` read parity into the `None`
//!   slots and retry. Queue a heal when the report's `corrupt` is non-empty or a read failed.
//! - Heal: read every shard block that is still there, call [`Decoder::reconstruct_block`],
//!   write back the slots listed in `damaged`.
//! - Cost: blake3 framing, not Reed-Solomon, bounds throughput (about 1–2 GB/s per core
//!   for encode or verify-and-decode on the reference VM; docs/decisions/0001). Run it off the
//!   async I/O threads; several blocks can be coded in parallel with one shared
//!   `Encoder`/`Decoder` (both are `Send + Sync`).
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
