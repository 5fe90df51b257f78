//! The metadata store's write-ahead log: one preallocated file (`meta.wal`) of records, each
//! one group commit's ops, written at increasing offsets and made durable with one
//! `fdatasync` (the file is written in full when created, so a sync flushes data only, no
//! file-system metadata). A record is `magic | payload length | sequence number | crc32c of
//! (salt, sequence number, payload) | payload`; the salt is a random secret of the store's
//! (kept in its database), so bytes a client wrote, left in the file by an older pass (an
//! inline shard in an old record's payload), can never pass for a record; sequence numbers of consecutive records increase by
//! one. After a checkpoint the log starts over at offset 0 with the next sequence number, so
//! older records past the new ones always carry smaller numbers. Reading the log back stops
//! at the first record that is torn, fails its checksum, or does not continue the sequence.
//! This module only frames and stores records; it must never decide what a checkpoint
//! covers (the store does) or interpret keys and values.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use super::{MetaOp, Table};
use crate::DriveError;

/// Size of the log file: a checkpoint happens each time it fills.
pub(super) const LOG_SIZE: u64 = 256 << 10;

const MAGIC: u32 = 0x5457_4c31;
/// magic u32, payload length u32, sequence number u64, crc32c u32.
const HEAD: usize = 20;

/// Logged records after a checkpoint: (sequence number, the record's ops), in order.
pub(super) type Replay = Vec<(u64, Vec<MetaOp>)>;

/// The open log: where the next record goes and the number it gets.
pub(super) struct Wal {
    file: File,
    salt: u64,
    size: u64,
    offset: u64,
    next_seq: u64,
    /// Where the last appended record starts (until the log restarts or it is retracted).
    last_start: Option<u64>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DriveError + '_ {
    move |e| DriveError::io(path.display().to_string(), e)
}

impl Wal {
    /// Opens (or creates, preallocated to `size` bytes) the log at `path` and returns it with
    /// the records after `checkpoint`, in order. The returned log must be
    /// [`restart`](Wal::restart)ed before its first append.
    pub(super) fn open(
        path: &Path,
        size: u64,
        checkpoint: u64,
        salt: u64,
    ) -> Result<(Wal, Replay), DriveError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        let mut records = Vec::new();
        if len < size {
            // New (or cut short): write it in full once, so a later sync flushes data only.
            let zeros = vec![0u8; 1 << 20];
            let mut at = len;
            while at < size {
                let n = (size - at).min(zeros.len() as u64) as usize;
                file.write_all_at(&zeros[..n], at).map_err(io_err(path))?;
                at += n as u64;
            }
            file.sync_all().map_err(io_err(path))?;
            if let Some(dir) = path.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(dir))?;
            }
        }
        // Records a cut-short file held are still read (their bytes were kept).
        let mut bytes = vec![0u8; size.max(len) as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io_err(path))?;
        let mut at = 0usize;
        let mut prev: Option<u64> = None;
        while let Some((seq, ops, next)) = decode(&bytes, at, salt) {
            if prev.is_some_and(|p| seq != p + 1) {
                break;
            }
            if seq > checkpoint {
                records.push((seq, ops));
            }
            prev = Some(seq);
            at = next;
        }
        // Only records continuing the checkpoint count (a gap means they are not ours).
        if records.first().is_some_and(|(s, _)| *s != checkpoint + 1) {
            records.clear();
        }
        Ok((
            Wal {
                file,
                salt,
                size,
                offset: 0,
                next_seq: checkpoint + 1,
                last_start: None,
            },
            records,
        ))
    }

    /// Starts the log over at offset 0 with sequence number `next_seq` (everything before it
    /// is covered by a checkpoint).
    pub(super) fn restart(&mut self, next_seq: u64) {
        self.offset = 0;
        self.next_seq = next_seq;
        self.last_start = None;
    }

    /// The sequence number of the last record appended (or covered before the log started).
    pub(super) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether a record of `payload` bytes fits after the ones already written.
    pub(super) fn fits(&self, payload: usize) -> bool {
        self.offset + (HEAD + payload) as u64 <= self.size
    }

    /// Whether a record of `payload` bytes fits into an empty log (at most half of it, so a
    /// huge batch never forces a checkpoint per record).
    pub(super) fn fits_ever(&self, payload: usize) -> bool {
        ((HEAD + payload) as u64) <= self.size / 2
    }

    /// Writes `payload` as the next record and syncs it: when this returns `Ok`, a replay
    /// finds it. The caller checked [`fits`](Wal::fits).
    pub(super) fn append(&mut self, payload: &[u8]) -> Result<(), DriveError> {
        let rec = frame(self.salt, self.next_seq, payload);
        let e = |e| DriveError::io("metadata log", e);
        self.file.write_all_at(&rec, self.offset).map_err(e)?;
        self.file.sync_data().map_err(e)?;
        self.last_start = Some(self.offset);
        self.offset += rec.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Takes back the last appended record (its head is zeroed and synced, so no replay
    /// finds it): for a batch that was logged but could not be written to the database.
    /// `Err` when there is none or the disk refused; then a replay may still apply it.
    pub(super) fn retract_last(&mut self) -> Result<(), DriveError> {
        let at = self
            .last_start
            .ok_or_else(|| DriveError::Meta("no log record to retract".into()))?;
        let e = |e| DriveError::io("metadata log", e);
        self.file.write_all_at(&[0u8; HEAD], at).map_err(e)?;
        self.file.sync_data().map_err(e)?;
        self.offset = at;
        self.next_seq -= 1;
        self.last_start = None;
        Ok(())
    }
}

fn table_code(t: Table) -> u8 {
    match t {
        Table::Buckets => 0,
        Table::Objects => 1,
        Table::Inline => 2,
        Table::Uploads => 3,
        Table::Parts => 4,
    }
}

fn table_of(code: u8) -> Option<Table> {
    Some(match code {
        0 => Table::Buckets,
        1 => Table::Objects,
        2 => Table::Inline,
        3 => Table::Uploads,
        4 => Table::Parts,
        _ => return None,
    })
}

/// A record payload holding every op of every group, in order: per op `kind` (0 put, 1
/// delete), table code, key length (u32) and key, and for a put value length (u32) and value.
pub(super) fn encode(groups: &[&[MetaOp]]) -> Vec<u8> {
    let mut out = Vec::new();
    let blob = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    for op in groups.iter().flat_map(|g| g.iter()) {
        match op {
            MetaOp::Put { table, key, value } => {
                out.extend_from_slice(&[0, table_code(*table)]);
                blob(&mut out, key);
                blob(&mut out, value);
            }
            MetaOp::Delete { table, key } => {
                out.extend_from_slice(&[1, table_code(*table)]);
                blob(&mut out, key);
            }
        }
    }
    out
}

/// Record `seq` of `payload`, framed (head, then payload) for a log salted with `salt`.
fn frame(salt: u64, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEAD + payload.len());
    rec.extend_from_slice(&MAGIC.to_le_bytes());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&seq.to_le_bytes());
    rec.extend_from_slice(&checksum(salt, seq, payload).to_le_bytes());
    rec.extend_from_slice(payload);
    rec
}

/// The crc32c of a record: over the salt, the sequence number and the payload.
fn checksum(salt: u64, seq: u64, payload: &[u8]) -> u32 {
    let head = crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), &seq.to_le_bytes());
    crc32c::crc32c_append(head, payload)
}

/// The record at `at` in `bytes`: (sequence number, ops, offset after it), or `None` when
/// there is no whole, intact record of this log (`salt`) there.
fn decode(bytes: &[u8], at: usize, salt: u64) -> Option<(u64, Vec<MetaOp>, usize)> {
    let head = bytes.get(at..at.checked_add(HEAD)?)?;
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    if word(0) != MAGIC {
        return None;
    }
    let len = word(4) as usize;
    let seq = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let crc = word(16);
    let start = at + HEAD;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if checksum(salt, seq, payload) != crc {
        return None;
    }
    Some((seq, decode_ops(payload)?, start + len))
}

fn decode_ops(mut p: &[u8]) -> Option<Vec<MetaOp>> {
    fn blob(p: &mut &[u8]) -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
        let b = p.get(4..4usize.checked_add(n)?)?.to_vec();
        *p = &p[4 + n..];
        Some(b)
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let (kind, table) = (*p.first()?, table_of(*p.get(1)?)?);
        p = &p[2..];
        let key = blob(&mut p)?;
        ops.push(match kind {
            0 => MetaOp::Put {
                table,
                key,
                value: blob(&mut p)?,
            },
            1 => MetaOp::Delete { table, key },
            _ => return None,
        });
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: u64 = 0x5eed_f00d_7e55_e7a0;

    fn put(k: &str, v: &str) -> MetaOp {
        MetaOp::Put {
            table: Table::Objects,
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn records_read_back_in_order_and_stop_at_a_torn_or_stale_one() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let path = dir.path().join("meta.wal");
        let (mut w, got) = Wal::open(&path, 4096, 0, SALT)?;
        assert!(got.is_empty());
        w.restart(1);
        let del = MetaOp::Delete {
            table: Table::Inline,
            key: b"x".to_vec(),
        };
        let a: &[MetaOp] = &[put("a", "1"), del.clone()];
        let b: &[MetaOp] = &[put("b", "")];
        w.append(&encode(&[a]))?;
        w.append(&encode(&[b, a]))?;
        drop(w);
        let (_, got) = Wal::open(&path, 4096, 0, SALT)?;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (1, a.to_vec()));
        assert_eq!(got[1].1, [b, a].concat());
        let (_, got) = Wal::open(&path, 4096, 1, SALT)?;
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2]);
        let (_, got) = Wal::open(&path, 4096, 2, SALT)?;
        assert!(got.is_empty(), "all covered by the checkpoint");

        // A new lap after a checkpoint at 2: old records past the new one are not replayed.
        let (mut w, _) = Wal::open(&path, 4096, 2, SALT)?;
        w.restart(3);
        w.append(&encode(&[b]))?;
        drop(w);
        let (_, got) = Wal::open(&path, 4096, 2, SALT)?;
        assert_eq!(got, vec![(3, b.to_vec())]);

        // A torn record (a flipped byte in its payload) ends the log.
        let (mut w, _) = Wal::open(&path, 4096, 3, SALT)?;
        w.restart(4);
        w.append(&encode(&[a]))?;
        w.append(&encode(&[b]))?;
        drop(w);
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| DriveError::io("wal", e))?;
        let second = (HEAD + encode(&[a]).len() + HEAD + 2) as u64;
        f.write_all_at(&[0xFF], second)
            .map_err(|e| DriveError::io("wal", e))?;
        let (_, got) = Wal::open(&path, 4096, 3, SALT)?;
        assert_eq!(got, vec![(4, a.to_vec())]);

        // A retracted record is not replayed, and the next one takes its place and number.
        let (mut w, _) = Wal::open(&path, 4096, 5, SALT)?;
        w.restart(6);
        w.append(&encode(&[a]))?;
        w.append(&encode(&[b]))?;
        w.retract_last()?;
        assert!(
            w.retract_last().is_err(),
            "only the last record can be taken back"
        );
        drop(w);
        let (mut w, got) = Wal::open(&path, 4096, 5, SALT)?;
        assert_eq!(got, vec![(6, a.to_vec())]);
        w.restart(7);
        w.append(&encode(&[b]))?;
        w.retract_last()?;
        w.append(&encode(&[a, b]))?;
        drop(w);
        let (_, got) = Wal::open(&path, 4096, 6, SALT)?;
        assert_eq!(got, vec![(7, [a, b].concat())]);
        Ok(())
    }

    /// Bytes that look like the next record (as a client's data left in the file by an older
    /// pass could) are replayed only when they carry the log's own salt.
    #[test]
    fn a_record_without_the_logs_salt_is_never_replayed() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let path = dir.path().join("meta.wal");
        let a = encode(&[&[put("a", "1")]]);
        let evil = encode(&[&[put("admin", "owned")]]);
        for (salt, replayed) in [(SALT ^ 1, false), (0, false), (SALT, true)] {
            let (mut w, _) = Wal::open(&path, 4096, 0, SALT)?;
            w.restart(1);
            w.append(&a)?;
            let next = (HEAD + a.len()) as u64;
            drop(w);
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| DriveError::io("wal", e))?;
            f.write_all_at(&frame(salt, 2, &evil), next)
                .map_err(|e| DriveError::io("wal", e))?;
            let (_, got) = Wal::open(&path, 4096, 0, SALT)?;
            let seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
            let want: &[u64] = if replayed { &[1, 2] } else { &[1] };
            assert_eq!(seqs, want, "salt {salt:#x}");
        }
        Ok(())
    }
}
