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

struct LocalShardWriter {
    path: PathBuf,
    file: Option<fs::File>,
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write(&mut self, framed: Bytes) -> Result<(), DriveError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| DriveError::Invalid("writer used after a failure".into()))?;
        let path = self.path.clone();
        let file = blocking(move || {
            file.write_all(&framed).map_err(io(&path))?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), DriveError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| DriveError::Invalid("writer used after a failure".into()))?;
        let path = self.path.clone();
        blocking(move || file.sync_all().map_err(io(&path))).await
    }
}

struct LocalShardReader {
    path: PathBuf,
    file: Arc<fs::File>,
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

#[async_trait]
impl ShardReader for LocalShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DriveError> {
        let file = self.file.clone();
        let path = self.path.clone();
        blocking(move || read_exact_at(&file, &path, offset, len)).await
    }

    async fn read_ranges(
        &self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> Result<Vec<Vec<u8>>, DriveError> {
        let file = self.file.clone();
        let path = self.path.clone();
        blocking(move || {
            ranges
                .into_iter()
                .map(|r| read_exact_at(&file, &path, r.start, (r.end - r.start) as usize))
                .collect()
        })
        .await
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
        let f = blocking(move || {
            inner.check_online()?;
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            fs::File::create(&p).map_err(io(&p))
        })
        .await?;
        Ok(Box::new(LocalShardWriter {
            path,
            file: Some(f),
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
        let f = blocking(move || {
            inner.check_online()?;
            fs::File::open(&p).map_err(io(&p))
        })
        .await?;
        Ok(Box::new(LocalShardReader {
            path,
            file: Arc::new(f),
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
}
