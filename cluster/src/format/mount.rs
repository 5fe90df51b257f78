//! The unmounted-mount-point guard. A drive directory that is the mount point of its own
//! disk looks blank when that disk failed to mount (the empty directory on the parent file
//! system shows through); formatting it would fill the parent (often the root) file system
//! and bulk-heal a whole drive onto it. So each node remembers which of its drives were
//! mount points of their own (a different `st_dev` from the parent directory) when it last
//! opened them: `<drive>/.tessera.sys/mounts.json` on every formatted local drive, one entry
//! per local drive endpoint (kept on the other drives, since the record on the missing disk
//! is exactly what cannot be read). A blank directory in a slot recorded as a mount point
//! that is not a mount point now is refused: not formatted, kept offline, reported as
//! `unmounted`, logged with its path. `TESSERA_ALLOW_UNMOUNTED_DRIVES=1` formats it anyway.
//! The decision ([`judge_blank`]) is pure; the few `stat`s and small JSON reads and writes
//! here never touch object data. Limitation: a bind mount of a directory on the same file
//! system has the parent's `st_dev` and is not seen as a mount point.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Set to `1` (or `true`) to format a blank directory even where an unmounted disk is
/// suspected.
pub const ALLOW_UNMOUNTED_ENV: &str = "TESSERA_ALLOW_UNMOUNTED_DRIVES";

/// The record's file name under `<drive>/.tessera.sys/`.
pub const RECORD_FILE: &str = "mounts.json";

const SYS: &str = ".tessera.sys";

/// Which of this node's drives (by endpoint, as the endpoint list names them) were mount
/// points of their own when last opened.
pub type MountRecord = BTreeMap<String, bool>;

/// The device of a drive directory and of its parent, as `stat` reports them now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountFacts {
    /// `st_dev` of the directory (of the parent when the directory does not exist: that is
    /// where creating it would put it).
    pub dev: u64,
    /// `st_dev` of its parent directory.
    pub parent_dev: u64,
}

impl MountFacts {
    /// A file system of its own is mounted on the directory.
    pub fn is_mount_point(&self) -> bool {
        self.dev != self.parent_dev
    }
}

/// What to do with a blank directory in a known slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlankDrive {
    /// Format it into its slot; `mount_point` says whether it is one now (for the record).
    Format { mount_point: bool },
    /// Refuse it: the slot's drive was a mount point and this directory is not one. The
    /// text names the path and the override.
    Unmounted(String),
}

/// Decides about the blank directory `path` whose slot's drive `was_mount_point`, given what
/// `stat` says `now`; `allow` is the operator's override.
pub fn judge_blank(path: &str, was_mount_point: bool, now: MountFacts, allow: bool) -> BlankDrive {
    let mount_point = now.is_mount_point();
    if !was_mount_point || mount_point || allow {
        return BlankDrive::Format { mount_point };
    }
    BlankDrive::Unmounted(format!(
        "{path} was a mount point of its own disk when last used, and is now a blank \
         directory on its parent's file system (device {}): the disk is probably not \
         mounted. Mount it (or a replacement disk) there; to format the directory anyway, \
         set {ALLOW_UNMOUNTED_ENV}=1",
        now.dev
    ))
}

/// Whether the operator set [`ALLOW_UNMOUNTED_ENV`].
pub fn allow_unmounted() -> bool {
    std::env::var(ALLOW_UNMOUNTED_ENV)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `stat`s `dir` and its parent; `None` when not even the parent can be read.
pub fn facts(dir: &Path) -> Option<MountFacts> {
    use std::os::unix::fs::MetadataExt as _;
    // Resolve symlinks and `.`/`..` so the parent is the real one.
    let (real, exists) = match std::fs::canonicalize(dir) {
        Ok(p) => (p, true),
        Err(_) => (std::path::absolute(dir).ok()?, false),
    };
    let parent = real.parent().unwrap_or(&real);
    let parent_dev = std::fs::metadata(parent).ok()?.dev();
    let dev = if exists {
        std::fs::metadata(&real).ok()?.dev()
    } else {
        parent_dev
    };
    Some(MountFacts { dev, parent_dev })
}

/// The records on `roots` merged: a drive any of them saw as a mount point counts as one.
pub fn read_record(roots: &[PathBuf]) -> MountRecord {
    let mut out = MountRecord::new();
    for root in roots {
        let Ok(bytes) = std::fs::read(root.join(SYS).join(RECORD_FILE)) else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<MountRecord>(&bytes) else {
            tracing::warn!(drive = %root.display(), "ignoring an unreadable {RECORD_FILE}");
            continue;
        };
        for (endpoint, mounted) in rec {
            *out.entry(endpoint).or_insert(false) |= mounted;
        }
    }
    out
}

/// Writes `rec` durably onto the formatted drive at `root` (a drive without
/// `.tessera.sys/` is left alone).
pub fn write_record(root: &Path, rec: &MountRecord) -> std::io::Result<()> {
    let sys = root.join(SYS);
    if !sys.join("format.json").is_file() {
        return Ok(());
    }
    let tmp = sys.join(format!("{RECORD_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, sys.join(RECORD_FILE))
}

/// This node's drives: `(global index, endpoint, root)`.
fn local_drives(served: &[Option<Arc<crate::node::ServedDrive>>]) -> Vec<(usize, String, PathBuf)> {
    use crate::drive::Drive as _;
    served
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.as_ref()
                .map(|s| (i, s.endpoint().to_owned(), s.root().to_path_buf()))
        })
        .collect()
}

fn formatted(root: &Path) -> bool {
    root.join(SYS).join("format.json").is_file()
}

/// Decides about this node's blank drive `global` (blocking: `stat`s and small reads). On
/// `Format`, the record on the other formatted local drives learns what the new drive is.
pub(crate) fn check_blank(
    served: &[Option<Arc<crate::node::ServedDrive>>],
    global: usize,
) -> BlankDrive {
    let drives = local_drives(served);
    let Some((_, endpoint, root)) = drives.iter().find(|(i, _, _)| *i == global) else {
        return BlankDrive::Format { mount_point: false };
    };
    let others: Vec<PathBuf> = drives
        .iter()
        .filter(|(i, _, r)| *i != global && formatted(r))
        .map(|(_, _, r)| r.clone())
        .collect();
    let mut rec = read_record(&others);
    let was = rec.get(endpoint).copied().unwrap_or(false);
    let Some(now) = facts(root) else {
        // Not even the parent can be read: the format attempt fails and says why.
        return BlankDrive::Format { mount_point: false };
    };
    let verdict = judge_blank(&root.display().to_string(), was, now, allow_unmounted());
    if let BlankDrive::Format { mount_point } = verdict {
        if was && !mount_point {
            tracing::warn!(
                drive = %root.display(),
                "{ALLOW_UNMOUNTED_ENV} is set: formatting a blank directory that replaced a mounted disk"
            );
        }
        if rec.insert(endpoint.clone(), mount_point) != Some(mount_point) {
            for r in &others {
                if let Err(e) = write_record(r, &rec) {
                    tracing::warn!(drive = %r.display(), error = %e, "could not update {RECORD_FILE}");
                }
            }
        }
    }
    verdict
}

/// Records, on every formatted local drive, which local drives are mount points now;
/// drives that are not formatted keep what the record said of them (blocking).
pub(crate) fn remember(served: &[Option<Arc<crate::node::ServedDrive>>]) {
    let drives = local_drives(served);
    let roots: Vec<PathBuf> = drives
        .iter()
        .filter(|(_, _, r)| formatted(r))
        .map(|(_, _, r)| r.clone())
        .collect();
    let mut rec = read_record(&roots);
    for (_, endpoint, root) in &drives {
        if formatted(root) {
            if let Some(f) = facts(root) {
                rec.insert(endpoint.clone(), f.is_mount_point());
            }
        }
    }
    for r in &roots {
        if let Err(e) = write_record(r, &rec) {
            tracing::warn!(drive = %r.display(), error = %e, "could not write {RECORD_FILE}");
        }
    }
}

impl crate::Store {
    /// Writes the mount record at open (see the module docs).
    pub(crate) async fn remember_mounts(&self) {
        let served = self.inner.node.served.clone();
        let _ = tokio::task::spawn_blocking(move || remember(&served)).await;
    }

    /// Whether this node's blank drive `global` may be formatted now. A refusal takes the
    /// drive offline with the reason and is logged once until it clears.
    pub(crate) async fn blank_drive_may_be_formatted(&self, global: usize) -> bool {
        let served = self.inner.node.served.clone();
        let verdict = tokio::task::spawn_blocking(move || check_blank(&served, global))
            .await
            .unwrap_or(BlankDrive::Format { mount_point: false });
        let mut reported = self
            .inner
            .heal
            .unmounted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match verdict {
            BlankDrive::Format { .. } => {
                reported.remove(&global);
                true
            }
            BlankDrive::Unmounted(reason) => {
                if reported.insert(global) {
                    tracing::error!(%reason, "refusing to format a blank drive directory");
                }
                if let Some(Some(s)) = self.inner.node.served.get(global) {
                    s.set_failed(format!("not formatted: {reason}"));
                }
                false
            }
        }
    }

    /// Whether this node's blank drive `global` would be refused as an unmounted disk.
    pub(crate) async fn drive_unmounted(&self, global: usize) -> bool {
        let served = self.inner.node.served.clone();
        let allow = allow_unmounted();
        tokio::task::spawn_blocking(move || {
            let drives = local_drives(&served);
            let Some((_, endpoint, root)) = drives.iter().find(|(i, _, _)| *i == global) else {
                return false;
            };
            let others: Vec<PathBuf> = drives
                .iter()
                .filter(|(i, _, r)| *i != global && formatted(r))
                .map(|(_, _, r)| r.clone())
                .collect();
            let was = read_record(&others).get(endpoint).copied().unwrap_or(false);
            facts(root).is_some_and(|now| {
                matches!(judge_blank("", was, now, allow), BlankDrive::Unmounted(_))
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTED: MountFacts = MountFacts {
        dev: 2049,
        parent_dev: 66306,
    };
    const PLAIN: MountFacts = MountFacts {
        dev: 66306,
        parent_dev: 66306,
    };

    #[test]
    fn a_blank_plain_directory_where_a_disk_was_mounted_is_refused_by_path() {
        match judge_blank("/mnt/disk3", true, PLAIN, false) {
            BlankDrive::Unmounted(reason) => {
                assert!(reason.contains("/mnt/disk3"), "{reason}");
                assert!(reason.contains(ALLOW_UNMOUNTED_ENV), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_mounted_replacement_a_plain_drive_and_the_override_are_formatted() {
        // A new disk mounted in the slot.
        assert_eq!(
            judge_blank("/mnt/disk3", true, MOUNTED, false),
            BlankDrive::Format { mount_point: true }
        );
        // A drive that never was a mount point (plain directories, tests, laptops).
        assert_eq!(
            judge_blank("/data/d3", false, PLAIN, false),
            BlankDrive::Format { mount_point: false }
        );
        // A first-time mount point.
        assert_eq!(
            judge_blank("/mnt/disk3", false, MOUNTED, false),
            BlankDrive::Format { mount_point: true }
        );
        // The operator's override.
        assert_eq!(
            judge_blank("/mnt/disk3", true, PLAIN, true),
            BlankDrive::Format { mount_point: false }
        );
    }

    #[test]
    fn a_plain_temporary_directory_is_not_a_mount_point() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().join("d1");
        std::fs::create_dir(&d).expect("mkdir");
        let f = facts(&d).expect("stat");
        assert!(!f.is_mount_point(), "{f:?}");
        // A missing directory would be created on its parent: not a mount point either.
        let f = facts(&dir.path().join("missing")).expect("stat");
        assert!(!f.is_mount_point(), "{f:?}");
    }

    #[test]
    fn records_merge_and_are_written_only_onto_formatted_drives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for r in [&a, &b] {
            std::fs::create_dir_all(r.join(SYS)).expect("mkdir");
        }
        std::fs::write(a.join(SYS).join("format.json"), "{}").expect("format");
        let rec: MountRecord = [("/x".to_string(), true), ("/y".to_string(), false)].into();
        write_record(&a, &rec).expect("write");
        write_record(&b, &rec).expect("skipped");
        assert!(!b.join(SYS).join(RECORD_FILE).exists());
        std::fs::write(b.join(SYS).join("format.json"), "{}").expect("format");
        let other: MountRecord = [("/x".to_string(), false), ("/y".to_string(), true)].into();
        write_record(&b, &other).expect("write");
        let merged = read_record(&[a, b]);
        assert_eq!(merged.get("/x"), Some(&true));
        assert_eq!(merged.get("/y"), Some(&true));
    }
}
