//! The file-system seam: the watcher lists directories and stats paths only
//! through [`Fs`], so its routing logic can be tested on [`MemFs`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kind of a directory entry (symlinks are not followed below the roots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// What the watcher needs to know about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: EntryKind,
    pub mtime: SystemTime,
    /// Inode change time: set by the kernel on any change, cannot be forged.
    pub ctime: SystemTime,
}

/// Directory listing and stat.
pub trait Fs: Send + Sync + 'static {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, EntryKind)>>;
    /// `follow`: follow a final symlink (used for watch roots only).
    fn stat(&self, path: &Path, follow: bool) -> io::Result<Stat>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

fn kind_of(ft: std::fs::FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

impl Fs for RealFs {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, EntryKind)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let kind = match e.file_type() {
                Ok(ft) => kind_of(ft),
                Err(_) => continue,
            };
            out.push((e.file_name(), kind));
        }
        Ok(out)
    }

    fn stat(&self, path: &Path, follow: bool) -> io::Result<Stat> {
        use std::os::unix::fs::MetadataExt;
        let m = if follow {
            std::fs::metadata(path)?
        } else {
            std::fs::symlink_metadata(path)?
        };
        let ts = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH
            }
        };
        Ok(Stat {
            kind: kind_of(m.file_type()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
        })
    }
}

/// An in-memory file system for tests. Paths must be absolute.
#[derive(Debug, Default)]
pub struct MemFs {
    nodes: Mutex<BTreeMap<PathBuf, Stat>>,
}

impl MemFs {
    pub fn new() -> Self {
        let fs = MemFs::default();
        fs.mkdir_p("/");
        fs
    }

    fn node(kind: EntryKind) -> Stat {
        let now = SystemTime::now();
        Stat {
            kind,
            mtime: now,
            ctime: now,
        }
    }

    /// Create a directory and its parents.
    pub fn mkdir_p(&self, dir: impl AsRef<Path>) {
        let mut nodes = self.nodes.lock().unwrap();
        for a in dir.as_ref().ancestors() {
            nodes
                .entry(a.to_path_buf())
                .or_insert_with(|| Self::node(EntryKind::Dir));
        }
    }

    /// Create or modify a file (creating parents); touches the parent dir on create.
    pub fn write(&self, file: impl AsRef<Path>) {
        let file = file.as_ref();
        if let Some(p) = file.parent() {
            self.mkdir_p(p);
        }
        let mut nodes = self.nodes.lock().unwrap();
        let created = !nodes.contains_key(file);
        nodes.insert(file.to_path_buf(), Self::node(EntryKind::File));
        if created && let Some(p) = file.parent() {
            nodes.insert(p.to_path_buf(), Self::node(EntryKind::Dir));
        }
    }

    /// Remove a path and everything below it.
    pub fn remove(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let mut nodes = self.nodes.lock().unwrap();
        nodes.retain(|p, _| !p.starts_with(path));
        if let Some(p) = path.parent() {
            nodes.insert(p.to_path_buf(), Self::node(EntryKind::Dir));
        }
    }

    /// Backdate every node (so a later rescan sees them as old).
    pub fn age_all(&self, by: Duration) {
        for s in self.nodes.lock().unwrap().values_mut() {
            s.mtime -= by;
            s.ctime -= by;
        }
    }
}

impl Fs for MemFs {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, EntryKind)>> {
        let nodes = self.nodes.lock().unwrap();
        match nodes.get(dir) {
            Some(s) if s.kind == EntryKind::Dir => {}
            Some(_) => return Err(io::Error::other("not a directory")),
            None => return Err(io::ErrorKind::NotFound.into()),
        }
        Ok(nodes
            .range(dir.to_path_buf()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, s)| (p.file_name().unwrap_or_default().to_os_string(), s.kind))
            .collect())
    }

    fn stat(&self, path: &Path, _follow: bool) -> io::Result<Stat> {
        self.nodes
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}
