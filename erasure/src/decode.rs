//! Decoding: K-of-(K+M) framed shard blocks → the exact bytes of the block, and rebuilding
//! of missing or rotten shard blocks for healing. Owns hash verification and Reed-Solomon
//! reconstruction; it must never return bytes from a shard whose hash failed, and never
//! append anything when it cannot decode.

use reed_solomon_erasure::galois_8::{Field, ReedSolomon};
use reed_solomon_erasure::ReconstructShard;

use crate::encode::codec_for;
use crate::frame::{seal, verify_framed};
use crate::{DecodeError, Geometry, HASH_LEN};

/// What a decode found wrong with one block's shards (for healing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockReport {
    /// Shard indices, ascending, that were missing (`None`) or corrupt. Note that a shard the
    /// caller deliberately did not read (passed as `None`) is listed here too.
    pub damaged: Vec<usize>,
    /// The subset of `damaged` that was present but had a wrong length or failed its hash:
    /// real bitrot or truncation, as opposed to a shard that was not supplied.
    pub corrupt: Vec<usize>,
}

impl BlockReport {
    /// True when every shard was present and intact.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Decodes blocks of one [`Geometry`]. Cheap to share (`Send + Sync`).
#[derive(Debug)]
pub struct Decoder {
    geometry: Geometry,
    rs: Option<ReedSolomon>,
}

/// One shard slot as the Reed-Solomon library sees it: the body after the hash, present only
/// when verified. A slot that is not present keeps its `Vec` (if any) so a rebuild can reuse
/// the allocation.
struct Slot<'a> {
    framed: &'a mut Option<Vec<u8>>,
    present: bool,
}

impl ReconstructShard<Field> for Slot<'_> {
    fn len(&self) -> Option<usize> {
        match (self.present, self.framed.as_ref()) {
            (true, Some(v)) => Some(v.len() - HASH_LEN),
            _ => None,
        }
    }

    fn get(&mut self) -> Option<&mut [u8]> {
        match (self.present, self.framed.as_mut()) {
            (true, Some(v)) => Some(&mut v[HASH_LEN..]),
            _ => None,
        }
    }

    fn get_or_initialize(
        &mut self,
        len: usize,
    ) -> Result<&mut [u8], Result<&mut [u8], reed_solomon_erasure::Error>> {
        let v = self.framed.get_or_insert_with(Vec::new);
        if self.present {
            return Ok(&mut v[HASH_LEN..]);
        }
        v.clear();
        v.resize(HASH_LEN + len, 0);
        Err(Ok(&mut v[HASH_LEN..]))
    }
}

impl Decoder {
    /// A decoder for `geometry` (any valid geometry, including M = 0).
    pub fn new(geometry: Geometry) -> Self {
        Self {
            rs: codec_for(&geometry),
            geometry,
        }
    }

    /// The geometry this decoder was built for.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Decodes one block. `shards[i]` is framed shard block `i` (`HASH_LEN + shard_len` bytes)
    /// or `None` if missing; `shards.len()` must be `total()`. Every present shard's hash is
    /// verified; a wrong-length or failing one counts as missing. If at least K are good,
    /// exactly `block_len` bytes are appended to `out` and the report lists the damaged
    /// indices; otherwise `Err(TooFewShards)` and `out` is untouched.
    ///
    /// On return (Ok or Err) every damaged slot is `None` and every other slot is untouched,
    /// so `shards` never holds a block that fails its hash. Use
    /// [`Decoder::reconstruct_block`] to get rebuilt shard blocks for healing.
    ///
    /// Fast path: if all K data shards are supplied and intact, no Reed-Solomon work is done.
    /// A caller may therefore supply only the K data shards (parity `None`); those parity
    /// indices then appear in `damaged` but not in `corrupt`. On `TooFewShards` it can read
    /// the parity shards into the `None` slots and call again.
    pub fn decode_block(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<BlockReport, DecodeError> {
        let (shard_len, report) = self.verify(shards, block_len)?;
        let k = self.geometry.data();
        if report.damaged.iter().any(|&i| i < k) {
            // Rebuilt data shards are copied out below and then dropped unsealed: a read does
            // not pay for hashing shards that only healing would keep.
            self.rebuild(shards, &report, true)?;
        }
        out.reserve(block_len);
        let mut remaining = block_len;
        for slot in shards[..k].iter() {
            if remaining == 0 {
                break;
            }
            let framed = slot
                .as_ref()
                .expect("every data slot is verified or rebuilt at this point");
            let take = remaining.min(shard_len);
            out.extend_from_slice(&framed[HASH_LEN..HASH_LEN + take]);
            remaining -= take;
        }
        for &i in &report.damaged {
            shards[i] = None;
        }
        Ok(report)
    }

    /// For healing: verifies every present shard like [`Decoder::decode_block`] and replaces
    /// every missing or corrupt slot with a correct framed shard block, so on success all
    /// `total()` slots are `Some` and intact. With fewer than K good shards it returns
    /// `Err(TooFewShards)` and sets the damaged slots to `None`.
    pub fn reconstruct_block(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<BlockReport, DecodeError> {
        let (_, report) = self.verify(shards, block_len)?;
        if !report.damaged.is_empty() {
            self.rebuild(shards, &report, false)?;
            for &i in &report.damaged {
                if let Some(framed) = shards[i].as_mut() {
                    seal(framed);
                }
            }
        }
        Ok(report)
    }

    /// Checks arguments and hashes. Returns the shard length and the damage report, or
    /// `TooFewShards` (after clearing the damaged slots) when fewer than K are good.
    fn verify(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<(usize, BlockReport), DecodeError> {
        let g = &self.geometry;
        if shards.len() != g.total() {
            return Err(DecodeError::ShardCount {
                got: shards.len(),
                expected: g.total(),
            });
        }
        if block_len == 0 || block_len > g.block_size() {
            return Err(DecodeError::InvalidBlockLen {
                len: block_len,
                max: g.block_size(),
            });
        }
        let shard_len = g.shard_len(block_len);
        let mut report = BlockReport::default();
        for (i, slot) in shards.iter().enumerate() {
            match slot {
                None => report.damaged.push(i),
                Some(framed) if !verify_framed(framed, shard_len) => {
                    report.damaged.push(i);
                    report.corrupt.push(i);
                }
                Some(_) => {}
            }
        }
        let good = g.total() - report.damaged.len();
        if good < g.data() {
            for &i in &report.damaged {
                shards[i] = None;
            }
            return Err(DecodeError::TooFewShards {
                good,
                need: g.data(),
            });
        }
        Ok((shard_len, report))
    }

    /// Rebuilds the bodies of the damaged slots (data slots only when `data_only`); the hash
    /// prefix of a rebuilt slot is left zeroed for the caller to seal or drop. Requires at
    /// least K good slots (checked by `verify`).
    fn rebuild(
        &self,
        shards: &mut [Option<Vec<u8>>],
        report: &BlockReport,
        data_only: bool,
    ) -> Result<(), DecodeError> {
        let rs = self
            .rs
            .as_ref()
            .expect("damage with at least K good shards implies M > 0");
        let mut next_damaged = report.damaged.iter().peekable();
        let mut slots: Vec<Slot<'_>> = shards
            .iter_mut()
            .enumerate()
            .map(|(i, framed)| {
                let present = next_damaged.next_if_eq(&&i).is_none();
                Slot { framed, present }
            })
            .collect();
        let result = if data_only {
            rs.reconstruct_data(&mut slots)
        } else {
            rs.reconstruct(&mut slots)
        };
        drop(slots);
        result.map_err(|e| DecodeError::Codec(format!("{e:?}")))?;
        Ok(())
    }
}
