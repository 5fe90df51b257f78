//! Erasure sets: how a deployment's drives are grouped (2..=16 drives per set, the largest
//! size dividing the drive count), the default parity per set size, the quorum sizes, and
//! which set an object belongs to (a stable blake3 hash of bucket/key — never std's
//! randomized hasher). Owns no I/O; the object layer uses [`ErasureSet`] to reach drives.

use std::sync::Arc;

use futures::future::join_all;

use crate::drive::Drive;
use crate::metastore::{Entries, ScanRange, Table};
use crate::StoreError;

/// Largest number of drives in one erasure set.
pub const MAX_SET_SIZE: usize = 16;

/// The grouping of `drives` drives into sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLayout {
    pub sets: usize,
    pub drives_per_set: usize,
    pub data: usize,
    pub parity: usize,
}

impl SetLayout {
    /// Groups `drives` drives; `parity` overrides the default (must leave K >= M, K >= 1).
    pub fn new(drives: usize, parity: Option<usize>) -> Result<Self, StoreError> {
        let per_set = set_size(drives)?;
        let parity = match parity {
            None => default_parity(per_set),
            Some(p) if p <= per_set / 2 && (p >= 1 || per_set == 1) => p,
            Some(p) => {
                return Err(StoreError::Config(format!(
                    "parity {p} is invalid for sets of {per_set} drives (allowed: 1..={})",
                    per_set / 2
                )))
            }
        };
        Ok(SetLayout {
            sets: drives / per_set,
            drives_per_set: per_set,
            data: per_set - parity,
            parity,
        })
    }

    /// Drives that must commit a write: K, or K+1 when K == M (so two disjoint write
    /// quorums cannot exist).
    pub fn write_quorum(&self) -> usize {
        write_quorum(self.data, self.parity)
    }

    /// Drives that must agree for a read: K.
    pub fn read_quorum(&self) -> usize {
        self.data
    }
}

/// Write quorum for a K+M object.
pub fn write_quorum(data: usize, parity: usize) -> usize {
    if data == parity {
        data + 1
    } else {
        data
    }
}

/// The set size for `drives` drives: all of them when 1..=16, else the largest divisor in
/// 2..=16.
pub fn set_size(drives: usize) -> Result<usize, StoreError> {
    if drives == 0 {
        return Err(StoreError::Config("no drives".into()));
    }
    if drives <= MAX_SET_SIZE {
        return Ok(drives);
    }
    (2..=MAX_SET_SIZE)
        .rev()
        .find(|s| drives % s == 0)
        .ok_or_else(|| {
            StoreError::Config(format!(
                "{drives} drives cannot be split evenly into sets of 2 to {MAX_SET_SIZE}"
            ))
        })
}

/// MinIO's default parity: N=1:0, 2-3:1, 4-5:2, 6-7:3, 8-16:4.
pub fn default_parity(set_size: usize) -> usize {
    match set_size {
        0 | 1 => 0,
        2 | 3 => 1,
        4 | 5 => 2,
        6 | 7 => 3,
        _ => 4,
    }
}

/// The set index of `bucket/key` among `sets` sets (stable across processes and versions).
pub fn set_for_key(bucket: &str, key: &str, sets: usize) -> usize {
    let mut h = blake3::Hasher::new();
    h.update(bucket.as_bytes());
    h.update(b"/");
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&d.as_bytes()[..8]);
    (u64::from_le_bytes(eight) % sets.max(1) as u64) as usize
}

/// One erasure set: its drives in slot order, and the erasure parameters for new objects.
#[derive(Debug)]
pub struct ErasureSet {
    pub index: usize,
    pub drives: Vec<Arc<dyn Drive>>,
    pub data: usize,
    pub parity: usize,
    pub block_size: usize,
}

impl ErasureSet {
    pub fn total(&self) -> usize {
        self.drives.len()
    }

    pub fn write_quorum(&self) -> usize {
        write_quorum(self.data, self.parity)
    }

    pub fn read_quorum(&self) -> usize {
        self.data
    }

    /// Scans `table` over `range` on every drive of the set at once. One slot per drive:
    /// `None` where the drive failed. Fewer than a read quorum of answers is `ReadQuorum`.
    pub async fn scan_quorum(
        &self,
        table: Table,
        range: ScanRange,
    ) -> Result<Vec<Option<Entries>>, StoreError> {
        let results = join_all(
            self.drives
                .iter()
                .map(|d| d.meta_scan(table, range.clone())),
        )
        .await;
        let answered = results.iter().filter(|r| r.is_ok()).count();
        if answered < self.read_quorum() {
            return Err(StoreError::ReadQuorum {
                ok: answered,
                need: self.read_quorum(),
            });
        }
        Ok(results.into_iter().map(Result::ok).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_sizes_and_default_parity() {
        let l = |n| {
            SetLayout::new(n, None)
                .map(|l| (l.sets, l.drives_per_set, l.data, l.parity))
                .ok()
        };
        assert_eq!(l(1), Some((1, 1, 1, 0)));
        assert_eq!(l(2), Some((1, 2, 1, 1)));
        assert_eq!(l(3), Some((1, 3, 2, 1)));
        assert_eq!(l(4), Some((1, 4, 2, 2)));
        assert_eq!(l(6), Some((1, 6, 3, 3)));
        assert_eq!(l(8), Some((1, 8, 4, 4)));
        assert_eq!(l(16), Some((1, 16, 12, 4)));
        assert_eq!(l(32), Some((2, 16, 12, 4)));
        assert_eq!(l(24), Some((2, 12, 8, 4)));
        assert_eq!(l(18), Some((2, 9, 5, 4)));
        assert_eq!(l(17), None);
        assert_eq!(l(0), None);
    }

    #[test]
    fn quorums_and_parity_override() {
        let l = SetLayout::new(4, None).ok();
        assert_eq!(l.map(|l| (l.write_quorum(), l.read_quorum())), Some((3, 2)));
        let l = SetLayout::new(6, Some(2)).ok();
        assert_eq!(l.map(|l| (l.data, l.write_quorum())), Some((4, 4)));
        assert!(SetLayout::new(4, Some(3)).is_err());
        assert!(SetLayout::new(4, Some(0)).is_err());
    }

    #[test]
    fn set_choice_is_stable_and_spreads() {
        assert_eq!(set_for_key("b", "k", 4), set_for_key("b", "k", 4));
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[set_for_key("b", &format!("key{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(set_for_key("b", "k", 1), 0);
    }
}
