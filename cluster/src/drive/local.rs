//! `LocalDrive`: a drive that is a directory on this machine. Layout:
//! `.tessera.sys/format.json` (identity), `.tessera.sys/meta.redb` (metadata store),
//! `.tessera.sys/tmp/` (staged writes, emptied at open), `.tessera.sys/trash/` (data being
//! removed), `data/<bucket>/<hash-prefix>/<data-id>/part.N` (shard files). Every blocking
//! call runs on tokio's blocking pool. Paths are built only from validated bucket names,
//! data ids and `part.N`-style names — never from object keys.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    check_bucket_dir, check_file_name, DataMove, Drive, DriveInfo, ShardReader, ShardWriter,
    StoredVersion,
};
use crate::format::{FormatRecord, Probe};
use crate::metastore::{Entries, MetaOp, MetaStore, ScanRange, Table};
use crate::names::DataId;
use crate::DriveError;

const SYS: &str = ".tessera.sys";
const FORMAT: &str = "format.json";

/// See the module docs.
#[derive(Debug)]
pub struct LocalDrive {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: String,
    root: PathBuf,
    format: FormatRecord,
    meta: MetaStore,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DriveError + '_ {
    move |e| DriveError::io(path, e)
}

/// fsyncs a directory so renames and creations inside it are durable.
fn sync_dir(path: &Path) -> Result<(), DriveError> {
    fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io(path))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DriveError> + Send + 'static,
) -> Result<T, DriveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DriveError::Offline(format!("blocking task failed: {e}")))?
}

impl LocalDrive {
    /// Looks at a directory without changing it.
    pub fn probe(root: &Path) -> Probe {
        let fmt = root.join(SYS).join(FORMAT);
        match fs::read(&fmt) {
            Ok(bytes) => match serde_json::from_slice::<FormatRecord>(&bytes) {
                Ok(f) => Probe::Formatted(f),
                Err(_) => Probe::Unformatted,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::read_dir(root) {
                Ok(mut entries) => {
                    // A fresh drive may hold an empty .tessera.sys left by an interrupted format.
                    let only_sys = entries.all(|e| {
                        e.map(|e| e.file_name() == SYS && is_empty_tree(&e.path()))
                            .unwrap_or(false)
                    });
                    if only_sys {
                        Probe::Fresh
                    } else {
                        Probe::Unformatted
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::Fresh,
                Err(e) => Probe::Offline(e.to_string()),
            },
            Err(e) => Probe::Offline(e.to_string()),
        }
    }

    /// Writes the format record durably (creating the directory).
    pub fn write_format(root: &Path, format: &FormatRecord) -> Result<(), DriveError> {
        let sys = root.join(SYS);
        fs::create_dir_all(&sys).map_err(io(&sys))?;
        let tmp = sys.join("format.json.tmp");
        let bytes =
            serde_json::to_vec_pretty(format).map_err(|e| DriveError::Invalid(e.to_string()))?;
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, sys.join(FORMAT)).map_err(io(&sys))?;
        sync_dir(&sys)?;
        sync_dir(root)
    }

    /// Opens a formatted drive: creates the fixed directories, empties tmp/ and trash/,
    /// opens the metadata store.
    pub fn open(
        root: &Path,
        endpoint: String,
        format: FormatRecord,
    ) -> Result<LocalDrive, DriveError> {
        let sys = root.join(SYS);
        for d in [sys.join("tmp"), sys.join("trash"), root.join("data")] {
            if d.ends_with("tmp") || d.ends_with("trash") {
                match fs::remove_dir_all(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(DriveError::io(&d, e)),
                }
            }
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let meta = MetaStore::open(&sys.join("meta.redb"))?;
        Ok(LocalDrive {
            inner: Arc::new(Inner {
                endpoint,
                root: root.to_path_buf(),
                format,
                meta,
            }),
        })
    }

    /// The directory of this drive.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

fn is_empty_tree(p: &Path) -> bool {
    match fs::read_dir(p) {
        Ok(entries) => entries.into_iter().all(|e| {
            e.map(|e| {
                e.file_type().map(|t| t.is_dir()).unwrap_or(false) && is_empty_tree(&e.path())
            })
            .unwrap_or(false)
        }),
        Err(_) => false,
    }
}

impl Inner {
    /// A drive whose format record vanished (wiped, unmounted, replaced) is offline: never
    /// serve metadata from a store whose directory is gone.
    fn check_online(&self) -> Result<(), DriveError> {
        let fmt = self.root.join(SYS).join(FORMAT);
        match fs::metadata(&fmt) {
            Ok(_) => Ok(()),
            Err(e) => Err(DriveError::Offline(format!("{}: {e}", self.endpoint))),
        }
    }

    fn tmp_dir(&self, tmp: &DataId) -> PathBuf {
        self.root.join(SYS).join("tmp").join(tmp.as_str())
    }

    fn data_dir(&self, bucket: &str, data_id: &DataId) -> Result<PathBuf, DriveError> {
        check_bucket_dir(bucket)?;
        Ok(self
            .root
            .join("data")
            .join(bucket)
            .join(data_id.prefix())
            .join(data_id.as_str()))
    }

    fn move_data(&self, m: &DataMove) -> Result<(), DriveError> {
        let src = self.tmp_dir(&m.tmp);
        let dst = self.data_dir(&m.bucket, &m.data_id)?;
        let parent = dst.parent().expect("data dirs have a parent").to_path_buf();
        sync_dir(&src)?;
        fs::create_dir_all(&parent).map_err(io(&parent))?;
        if !dst.exists() {
            fs::rename(&src, &dst).map_err(io(&dst))?;
            sync_dir(&parent)?;
            if let Some(bucket_dir) = parent.parent() {
                sync_dir(bucket_dir)?;
            }
            return Ok(());
        }
        for entry in fs::read_dir(&src).map_err(io(&src))? {
            let entry = entry.map_err(io(&src))?;
            let to = dst.join(entry.file_name());
            fs::rename(entry.path(), &to).map_err(io(&to))?;
        }
        sync_dir(&dst)?;
        let _ = fs::remove_dir(&src);
        Ok(())
    }

    fn remove_tree(&self, path: &Path) -> Result<(), DriveError> {
        // Move into trash first so a crash never leaves a half-removed data dir in place.
        let trash = self
            .root
            .join(SYS)
            .join("trash")
            .join(DataId::generate().as_str());
        match fs::rename(path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DriveError::io(path, e)),
        }
        fs::remove_dir_all(&trash).map_err(io(&trash))
    }
}

/// Alignment of `O_DIRECT` offsets, lengths and buffers (covers 512 and 4096 byte sectors).
const ALIGN: usize = 4096;
/// Bytes a shard writer gathers before one direct write.
const WRITE_CHUNK: usize = 2 << 20;
/// Idle aligned buffers kept for reuse (fresh pages are expensive: every first touch faults).
const POOL_MAX: usize = 64;

/// `O_DIRECT` for this target, or 0 where it is not known (then files are written through
/// the page cache).
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "x86")))]
const O_DIRECT: i32 = 0o40000;
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc64"
    )
))]
const O_DIRECT: i32 = 0o200000;
#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc64"
    )
)))]
const O_DIRECT: i32 = 0;

/// A byte buffer whose usable window starts at an `ALIGN`-aligned address (safe code: the
/// vector is over-allocated and the window offset computed).
struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
    cap: usize,
    len: usize,
}

static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

impl AlignedBuf {
    /// A buffer of `cap` bytes (a multiple of `ALIGN`), from the pool when one fits.
    fn new(cap: usize) -> Self {
        let want = cap + ALIGN;
        let pooled = {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            pool.iter()
                .position(|v| v.len() == want)
                .map(|i| pool.swap_remove(i))
        };
        let raw = pooled.unwrap_or_else(|| vec![0u8; want]);
        let off = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf {
            raw,
            off,
            cap,
            len: 0,
        }
    }

    fn spare(&self) -> usize {
        self.cap - self.len
    }

    fn extend(&mut self, bytes: &[u8]) {
        let at = self.off + self.len;
        self.raw[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn filled(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }

    fn window_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + self.cap]
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let raw = std::mem::take(&mut self.raw);
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(raw);
        }
    }
}

/// Opens `path` with `O_DIRECT` added to `opts` when the filesystem supports it (tmpfs and
/// some others refuse it), else plainly. Returns whether the file is direct.
fn open_maybe_direct(opts: &mut fs::OpenOptions, path: &Path) -> std::io::Result<(fs::File, bool)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if O_DIRECT != 0 {
        let mut direct = opts.clone();
        direct.custom_flags(O_DIRECT);
        match direct.open(path) {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(22) => {} // EINVAL: not supported here
            Err(e) => return Err(e),
        }
    }
    opts.open(path).map(|f| (f, false))
}

/// Writes one shard file. With `O_DIRECT` (the common case) bytes are gathered into an
/// aligned buffer and written in `WRITE_CHUNK` pieces past the page cache, which on many
/// machines is several times faster than buffered writes plus fsync and leaves no dirty
/// pages behind; the last partial sector goes through a second, buffered handle. Either way
/// `finish` fsyncs the file before it returns, so durability is the same.
struct LocalShardWriter {
    path: PathBuf,
    state: Option<WriterState>,
}

struct WriterState {
    file: fs::File,
    direct: bool,
    buf: AlignedBuf,
    /// Bytes already written to the file.
    written: u64,
}

impl WriterState {
    /// Writes the buffer's whole sectors (all of it when `all` and not direct).
    fn flush(&mut self, path: &Path, all: bool) -> Result<(), DriveError> {
        let n = if self.direct {
            self.buf.len / ALIGN * ALIGN
        } else if all || self.buf.spare() == 0 {
            self.buf.len
        } else {
            0
        };
        if n == 0 {
            return Ok(());
        }
        self.file
            .write_all_at(&self.buf.filled()[..n], self.written)
            .map_err(io(path))?;
        self.written += n as u64;
        let rest = self.buf.len - n;
        let off = self.buf.off;
        self.buf.raw.copy_within(off + n..off + n + rest, off);
        self.buf.len = rest;
        Ok(())
    }

    fn write(&mut self, path: &Path, mut bytes: &[u8]) -> Result<(), DriveError> {
        while !bytes.is_empty() {
            let take = self.buf.spare().min(bytes.len());
            self.buf.extend(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.spare() == 0 {
                self.flush(path, false)?;
            }
        }
        Ok(())
    }

    fn finish(mut self, path: &Path) -> Result<(), DriveError> {
        self.flush(path, true)?;
        if self.buf.len > 0 {
            // The tail shorter than a sector: through the page cache.
            let tail = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io(path))?;
            tail.write_all_at(self.buf.filled(), self.written)
                .map_err(io(path))?;
        }
        // fsync flushes every dirty page of the file, whichever handle wrote it.
        self.file.sync_all().map_err(io(path))
    }
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write(&mut self, framed: Bytes) -> Result<(), DriveError> {
        let mut state = self
            .state
            .take()
            .ok_or_else(|| DriveError::Invalid("writer used after a failure".into()))?;
        let path = self.path.clone();
        let state = blocking(move || {
            state.write(&path, &framed)?;
            Ok(state)
        })
        .await?;
        self.state = Some(state);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), DriveError> {
        let state = self
            .state
            .take()
            .ok_or_else(|| DriveError::Invalid("writer used after a failure".into()))?;
        let path = self.path.clone();
        blocking(move || state.finish(&path)).await
    }
}

/// Reads one shard file. A direct handle reads whole aligned sectors into a pooled aligned
/// buffer (past the page cache, which shard files written directly are not in); a buffered
/// handle reads exactly.
struct LocalShardReader {
    path: PathBuf,
    file: Arc<fs::File>,
    direct: bool,
    /// Read-ahead: after a multi-block read, the same-sized run that follows it is read in
    /// the background, so the disk works while the caller verifies and sends.
    ahead: std::sync::Mutex<Option<Prefetch>>,
}

type RangesRead = Result<Vec<Vec<u8>>, DriveError>;

struct Prefetch {
    ranges: Vec<std::ops::Range<u64>>,
    task: tokio::task::JoinHandle<RangesRead>,
}

impl LocalShardReader {
    fn spawn_read(&self, ranges: Vec<std::ops::Range<u64>>) -> tokio::task::JoinHandle<RangesRead> {
        let file = self.file.clone();
        let path = self.path.clone();
        let direct = self.direct;
        tokio::task::spawn_blocking(move || {
            if direct {
                return read_ranges_direct(&file, &path, &ranges);
            }
            ranges
                .into_iter()
                .map(|r| read_exact_at(&file, &path, r.start, (r.end - r.start) as usize))
                .collect()
        })
    }
}

fn read_exact_at(
    file: &fs::File,
    path: &Path,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, DriveError> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DriveError::Corrupt(format!("{} is shorter than expected", path.display()))
        } else {
            DriveError::io(path, e)
        }
    })?;
    Ok(buf)
}

/// Reads the ranges (sorted or not) of a direct handle: each run of adjacent ranges is read
/// with aligned reads of up to `WRITE_CHUNK` bytes and cut into the ranges.
fn read_ranges_direct(
    file: &fs::File,
    path: &Path,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<Vec<u8>>, DriveError> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(ranges.len());
    let mut buf = AlignedBuf::new(WRITE_CHUNK);
    // The file bytes [buf_start, buf_start + buf.len) are in the buffer.
    let mut buf_start = 0u64;
    let last_end = ranges.iter().map(|r| r.end).max().unwrap_or(0);
    for r in ranges {
        let mut v = Vec::with_capacity((r.end - r.start) as usize);
        let mut at = r.start;
        while at < r.end {
            let have = at >= buf_start && at < buf_start + buf.len as u64;
            if !have {
                let start = at / ALIGN as u64 * ALIGN as u64;
                let end = (last_end.div_ceil(ALIGN as u64) * ALIGN as u64).max(start);
                let want = ((end - start) as usize).min(buf.cap);
                let window = &mut buf.window_mut()[..want];
                let n = read_full_at(file, window, start).map_err(io(path))?;
                buf_start = start;
                buf.len = n;
                if at >= start + n as u64 {
                    return Err(DriveError::Corrupt(format!(
                        "{} is shorter than expected",
                        path.display()
                    )));
                }
            }
            let from = (at - buf_start) as usize;
            let to = ((r.end - buf_start) as usize).min(buf.len);
            v.extend_from_slice(&buf.filled()[from..to]);
            at = buf_start + to as u64;
        }
        out.push(v);
    }
    Ok(out)
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_full_at(file: &fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[async_trait]
impl ShardReader for LocalShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DriveError> {
        let one = std::iter::once(offset..offset + len as u64).collect();
        let mut v = self.read_ranges(one).await?;
        v.pop()
            .ok_or_else(|| DriveError::Corrupt("empty read".into()))
    }

    async fn read_ranges(
        &self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> Result<Vec<Vec<u8>>, DriveError> {
        let ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner()).take();
        let task = match ahead {
            Some(p) if p.ranges == ranges => p.task,
            _ => self.spawn_read(ranges.clone()),
        };
        // A run of adjacent blocks is a streaming read: fetch the next run meanwhile.
        let adjacent = ranges.windows(2).all(|w| w[0].end == w[1].start);
        if ranges.len() >= 2 && adjacent {
            let span = ranges[ranges.len() - 1].end - ranges[0].start;
            let next: Vec<_> = ranges
                .iter()
                .map(|r| r.start + span..r.end + span)
                .collect();
            let task = self.spawn_read(next.clone());
            *self.ahead.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Prefetch { ranges: next, task });
        }
        task.await
            .map_err(|e| DriveError::Offline(format!("blocking task failed: {e}")))?
    }
}

#[async_trait]
impl Drive for LocalDrive {
    fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    async fn info(&self) -> Result<DriveInfo, DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            Ok(DriveInfo {
                endpoint: inner.endpoint.clone(),
                online: inner.check_online().is_ok(),
                format: Some(inner.format.clone()),
            })
        })
        .await
    }

    async fn create_staged(
        &self,
        tmp: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardWriter>, DriveError> {
        check_file_name(file)?;
        let inner = self.inner.clone();
        let dir = inner.tmp_dir(tmp);
        let path = dir.join(file);
        let p = path.clone();
        let (file, direct) = blocking(move || {
            inner.check_online()?;
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            open_maybe_direct(&mut opts, &p).map_err(io(&p))
        })
        .await?;
        Ok(Box::new(LocalShardWriter {
            path,
            state: Some(WriterState {
                file,
                direct,
                buf: AlignedBuf::new(WRITE_CHUNK),
                written: 0,
            }),
        }))
    }

    async fn commit(&self, data: Option<DataMove>, meta: Vec<MetaOp>) -> Result<(), DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            if let Some(m) = &data {
                inner.move_data(m)?;
            }
            if meta.is_empty() {
                return Ok(());
            }
            inner.meta.apply(meta)
        })
        .await
    }

    async fn remove_staged(&self, tmp: &DataId) -> Result<(), DriveError> {
        let dir = self.inner.tmp_dir(tmp);
        blocking(move || match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriveError::io(&dir, e)),
        })
        .await
    }

    async fn read_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DriveError> {
        check_file_name(file)?;
        let path = self.inner.data_dir(bucket, data_id)?.join(file);
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            let f = fs::File::open(&path).map_err(io(&path))?;
            read_exact_at(&f, &path, offset, len)
        })
        .await
    }

    async fn open_shard(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<Box<dyn ShardReader>, DriveError> {
        check_file_name(file)?;
        let path = self.inner.data_dir(bucket, data_id)?.join(file);
        let inner = self.inner.clone();
        let p = path.clone();
        let (f, direct) = blocking(move || {
            inner.check_online()?;
            open_maybe_direct(fs::OpenOptions::new().read(true), &p).map_err(io(&p))
        })
        .await?;
        Ok(Box::new(LocalShardReader {
            path,
            file: Arc::new(f),
            direct,
            ahead: std::sync::Mutex::new(None),
        }))
    }

    async fn write_shard_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
        bytes: Bytes,
    ) -> Result<(), DriveError> {
        check_file_name(file)?;
        let dst_dir = self.inner.data_dir(bucket, data_id)?;
        let inner = self.inner.clone();
        let file = file.to_owned();
        blocking(move || {
            inner.check_online()?;
            let tmp_dir = inner.tmp_dir(&DataId::generate());
            fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
            let tmp = tmp_dir.join(&file);
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(io(&tmp))?;
            fs::create_dir_all(&dst_dir).map_err(io(&dst_dir))?;
            fs::rename(&tmp, dst_dir.join(&file)).map_err(io(&dst_dir))?;
            sync_dir(&dst_dir)?;
            if let Some(parent) = dst_dir.parent() {
                sync_dir(parent)?;
            }
            let _ = fs::remove_dir(&tmp_dir);
            Ok(())
        })
        .await
    }

    async fn delete_data(&self, bucket: &str, data_id: &DataId) -> Result<(), DriveError> {
        let dir = self.inner.data_dir(bucket, data_id)?;
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            inner.remove_tree(&dir)
        })
        .await
    }

    async fn delete_data_file(
        &self,
        bucket: &str,
        data_id: &DataId,
        file: &str,
    ) -> Result<(), DriveError> {
        check_file_name(file)?;
        let path = self.inner.data_dir(bucket, data_id)?.join(file);
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(DriveError::io(&path, e)),
            }
        })
        .await
    }

    async fn meta_get(&self, table: Table, key: Vec<u8>) -> Result<Option<Vec<u8>>, DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            inner.meta.get(table, &key)
        })
        .await
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> Result<Entries, DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            inner.meta.scan(table, &range)
        })
        .await
    }

    async fn meta_apply(&self, ops: Vec<MetaOp>) -> Result<(), DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            inner.meta.apply(ops)
        })
        .await
    }

    async fn read_version(
        &self,
        key: Vec<u8>,
        inline: bool,
    ) -> Result<Option<StoredVersion>, DriveError> {
        // Runs on the calling thread: one read transaction of a few pages that the store
        // caches, cheaper than the hand-off to the blocking pool and back (the hot path of
        // every GET and HEAD).
        let inner = &self.inner;
        inner.check_online()?;
        let got = inner.meta.get_linked(Table::Objects, &key, |record| {
            crate::record::inline_key(record)
                .filter(|_| inline)
                .map(|k| (Table::Inline, k))
        })?;
        Ok(got.map(|(record, inline)| StoredVersion { record, inline }))
    }

    async fn commit_version(
        &self,
        data: Option<DataMove>,
        meta: Vec<MetaOp>,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, DriveError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.check_online()?;
            if let Some(m) = &data {
                inner.move_data(m)?;
            }
            let previous = inner.meta.get(Table::Objects, &key)?;
            if !meta.is_empty() {
                inner.meta.apply(meta)?;
            }
            Ok(previous)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(root: &Path) -> Result<LocalDrive, DriveError> {
        let format = FormatRecord {
            version: 1,
            deployment_id: "d".into(),
            drive_id: "x".into(),
            set_index: 0,
            slot: 0,
            sets: 1,
            drives_per_set: 1,
        };
        LocalDrive::write_format(root, &format)?;
        LocalDrive::open(root, "local".into(), format)
    }

    /// Shard files of sizes around the sector and chunk boundaries, written in pieces of
    /// uneven sizes, read back byte-identical through single and multi-range (read-ahead)
    /// reads, including a range ending exactly at the end of the file.
    #[tokio::test]
    async fn shard_files_round_trip_across_alignment_boundaries() -> Result<(), DriveError> {
        let dir = tempfile::tempdir().map_err(|e| DriveError::io("tmp", e))?;
        let d = drive(dir.path())?;
        let sizes = [
            0usize,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            WRITE_CHUNK - 7,
            WRITE_CHUNK,
            2 * WRITE_CHUNK + 4133,
        ];
        for (n, size) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 + n) as u8).collect();
            let tmp = DataId::generate();
            let mut w = d.create_staged(&tmp, "part.1").await?;
            let mut at = 0;
            let mut piece = 1000;
            while at < size {
                let end = (at + piece).min(size);
                w.write(Bytes::copy_from_slice(&data[at..end])).await?;
                at = end;
                piece = piece * 7 % (WRITE_CHUNK + 3) + 1;
            }
            w.finish().await?;
            let id = DataId::generate();
            d.commit(
                Some(DataMove {
                    tmp,
                    bucket: "bkt".into(),
                    data_id: id.clone(),
                }),
                Vec::new(),
            )
            .await?;
            let r = d.open_shard("bkt", &id, "part.1").await?;
            assert_eq!(r.read_at(0, size).await?, data, "size {size}");
            if size >= 3 {
                let third = (size / 3) as u64;
                let ranges = vec![0..third, third..2 * third, 2 * third..size as u64];
                let got = r.read_ranges(ranges.clone()).await?;
                for (g, rg) in got.iter().zip(&ranges) {
                    assert_eq!(g.as_slice(), &data[rg.start as usize..rg.end as usize]);
                }
                // The read-ahead of the run after the file's end must not leak into a read.
                let tail = r.read_ranges(vec![1..2, 2..size as u64]).await?;
                assert_eq!(tail[1].as_slice(), &data[2..]);
            }
            assert!(
                r.read_at(size as u64, 1).await.is_err(),
                "read past the end"
            );
        }
        Ok(())
    }
}
