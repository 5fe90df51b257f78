//! Encoding: one block of object bytes → K data + M parity framed shard blocks, and the
//! streaming wrapper that cuts an arbitrary byte stream into blocks. Owns striping, parity and
//! sealing; it must never do I/O or buffer more than one block.

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::frame::seal;
use crate::{ErasureError, Geometry, HASH_LEN};

/// Encodes blocks of one [`Geometry`]. Cheap to share (`Send + Sync`); build one per geometry
/// and reuse it, the Reed-Solomon matrix is computed once in [`Encoder::new`].
#[derive(Debug)]
pub struct Encoder {
    geometry: Geometry,
    /// `None` when M = 0: the code degenerates to framing only.
    rs: Option<ReedSolomon>,
}

/// Builds the Reed-Solomon codec for a geometry, `None` when it has no parity.
pub(crate) fn codec_for(geometry: &Geometry) -> Option<ReedSolomon> {
    if geometry.parity() == 0 {
        return None;
    }
    Some(
        ReedSolomon::new(geometry.data(), geometry.parity())
            .expect("Geometry::new validated 1 <= K, 1 <= M, K + M <= 256"),
    )
}

impl Encoder {
    /// An encoder for `geometry` (any valid geometry, including M = 0).
    pub fn new(geometry: Geometry) -> Self {
        Self {
            rs: codec_for(&geometry),
            geometry,
        }
    }

    /// The geometry this encoder was built for.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Encodes one block. `block.len() <= block_size`; only an object's last block may be
    /// shorter. On success `out` holds exactly `total()` framed shard blocks of
    /// `HASH_LEN + shard_len(block.len())` bytes each: indices `0..K` data (the last one
    /// zero-padded), `K..K+M` parity. The vectors already in `out` are reused, so passing the
    /// same `out` for every block of an object allocates only on the first block.
    ///
    /// An empty `block` produces no shard blocks: `out` is emptied (an empty object has none).
    pub fn encode_block(&self, block: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), ErasureError> {
        let g = &self.geometry;
        if block.len() > g.block_size() {
            return Err(ErasureError::BlockTooLarge {
                len: block.len(),
                max: g.block_size(),
            });
        }
        if block.is_empty() {
            out.clear();
            return Ok(());
        }
        let shard_len = g.shard_len(block.len());
        let framed_len = HASH_LEN + shard_len;
        out.resize_with(g.total(), Vec::new);

        let (data, parity) = out.split_at_mut(g.data());
        let mut chunks = block.chunks(shard_len);
        for shard in data.iter_mut() {
            let chunk = chunks.next().unwrap_or(&[]);
            shard.clear();
            shard.reserve(framed_len);
            shard.extend_from_slice(&[0u8; HASH_LEN]);
            shard.extend_from_slice(chunk);
            shard.resize(framed_len, 0);
        }
        if let Some(rs) = &self.rs {
            for shard in parity.iter_mut() {
                // Reed-Solomon overwrites the whole body, so a reused buffer of the right
                // length needs no zeroing; `resize` only touches the difference.
                shard.resize(framed_len, 0);
            }
            let data_bodies: Vec<&[u8]> = data.iter().map(|s| &s[HASH_LEN..]).collect();
            let mut parity_bodies: Vec<&mut [u8]> =
                parity.iter_mut().map(|s| &mut s[HASH_LEN..]).collect();
            rs.encode_sep(&data_bodies, &mut parity_bodies)
                .map_err(|e| ErasureError::Codec(format!("{e:?}")))?;
        }
        for shard in out.iter_mut() {
            seal(shard);
        }
        Ok(())
    }
}

/// Streaming encoder: accepts writes of any size and hands whole encoded blocks (all
/// `total()` framed shard blocks of one block) to a callback, in block order. It buffers at
/// most one block; a write that covers whole blocks is encoded straight from the caller's
/// slice without copying into the buffer.
#[derive(Debug)]
pub struct StreamEncoder {
    encoder: Encoder,
    pending: Vec<u8>,
    shards: Vec<Vec<u8>>,
    bytes_in: u64,
    blocks_out: u64,
}

impl StreamEncoder {
    /// A streaming encoder for `geometry`.
    pub fn new(geometry: Geometry) -> Self {
        Self {
            encoder: Encoder::new(geometry),
            pending: Vec::new(),
            shards: Vec::new(),
            bytes_in: 0,
            blocks_out: 0,
        }
    }

    /// The geometry this encoder was built for.
    pub fn geometry(&self) -> Geometry {
        self.encoder.geometry()
    }

    /// Object bytes accepted so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Blocks handed to `emit` so far (the next emitted block has this index).
    pub fn blocks_out(&self) -> u64 {
        self.blocks_out
    }

    /// Feeds `bytes`; calls `emit` once per completed block with its `total()` framed shard
    /// blocks (shard index order). An error from `emit` is returned at once; the encoder
    /// should then be dropped (the object write is aborted); the failed block is not retried.
    pub fn write<E>(
        &mut self,
        mut bytes: &[u8],
        mut emit: impl FnMut(&[Vec<u8>]) -> Result<(), E>,
    ) -> Result<(), E> {
        let block_size = self.encoder.geometry().block_size();
        self.bytes_in += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (block_size - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < block_size {
                return Ok(());
            }
            self.encode_pending();
            emit(&self.shards)?;
        }
        while bytes.len() >= block_size {
            let (block, rest) = bytes.split_at(block_size);
            self.encode(block);
            emit(&self.shards)?;
            bytes = rest;
        }
        if !bytes.is_empty() {
            if self.pending.capacity() < block_size {
                self.pending.reserve_exact(block_size);
            }
            self.pending.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Ends the stream: emits the last, possibly short, block if any bytes are pending.
    /// An empty stream emits nothing.
    pub fn finish<E>(mut self, mut emit: impl FnMut(&[Vec<u8>]) -> Result<(), E>) -> Result<(), E> {
        if !self.pending.is_empty() {
            self.encode_pending();
            emit(&self.shards)?;
        }
        Ok(())
    }

    /// Encodes the pending bytes into `self.shards` and empties the buffer, so a block is
    /// handed to `emit` exactly once even if `emit` fails.
    fn encode_pending(&mut self) {
        self.encoder
            .encode_block(&self.pending, &mut self.shards)
            .expect("the pending buffer never exceeds block_size");
        self.blocks_out += 1;
        self.pending.clear();
    }

    /// Encodes one whole block from the caller's slice into `self.shards`.
    fn encode(&mut self, block: &[u8]) {
        self.encoder
            .encode_block(block, &mut self.shards)
            .expect("write() only passes slices of exactly block_size");
        self.blocks_out += 1;
    }
}
