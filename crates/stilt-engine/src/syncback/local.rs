//! The local side of a syncback: listing the target directory and changing files in it, never
//! outside it and never through a symlink.

use super::plan::{Filter, Node, safe_rel};
use crate::echo::{EchoGuard, Written};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Every wanted file and directory under `root` (symlinks are not followed and not listed).
pub fn list(root: &Path, filter: &Filter) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&rel_dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if filter.descend(&rel) {
                    stack.push(rel.clone());
                }
                if filter.wanted(&rel) {
                    out.insert(rel, node(&m));
                }
            } else if (m.is_file() || m.file_type().is_symlink()) && filter.wanted(&rel) {
                out.insert(rel, node(&m));
            }
        }
    }
    out
}

fn node(m: &fs::Metadata) -> Node {
    Node {
        dir: m.is_dir(),
        link: m.file_type().is_symlink(),
        mode: m.permissions().mode() & 0o7777,
        size: m.len(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
    }
}

/// SHA-256 of a local file (the helper's hash).
pub fn hash(root: &Path, rel: &str) -> Option<Vec<u8>> {
    fs::read(root.join(rel))
        .ok()
        .map(|d| stilt_syncer::proto::hash_bytes(&d))
}

/// Changes files under one root, recording each change in the echo guard.
pub struct LocalTree<'a> {
    pub root: PathBuf,
    pub echo: &'a EchoGuard,
}

impl LocalTree<'_> {
    /// The absolute path for `rel`, refusing anything that would leave the root: `..`, absolute
    /// paths, and symlinked directories on the way.
    fn path(&self, rel: &str) -> Result<PathBuf, String> {
        if !safe_rel(rel) {
            return Err(format!("{rel:?}: not a path inside the target directory"));
        }
        let mut p = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            p.push(part);
            if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(format!(
                    "{rel}: {} is a symlink; syncback does not write through it",
                    p.display()
                ));
            }
        }
        p.push(parts[parts.len() - 1]);
        Ok(p)
    }

    /// `create_dir_all`, recording each directory it creates (the target directory itself
    /// included): a new directory is a watch event too, and in a build context it would
    /// otherwise start a rebuild.
    fn create_dirs(&self, dir: &Path) -> std::io::Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for d in &missing {
            self.echo.record(d, Written::Dir);
        }
        fs::create_dir_all(dir)
    }

    pub fn mkdir(&self, rel: &str, mode: u32) -> Result<(), String> {
        let p = self.path(rel)?;
        if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&p).map_err(|e| format!("{rel}: {e}"))?;
        }
        self.create_dirs(&p)
            .map_err(|e| format!("creating {rel}: {e}"))?;
        let _ = fs::set_permissions(&p, fs::Permissions::from_mode(dir_mode(mode)));
        self.echo.record(&p, Written::Dir);
        Ok(())
    }

    /// Writes a file atomically (temp file + rename) with the container's mode and mtime.
    pub fn write(&self, rel: &str, data: &[u8], mode: u32, mtime_ns: i64) -> Result<(), String> {
        let p = self.path(rel)?;
        let err = |e: std::io::Error| format!("writing {rel}: {e}");
        let dir = p.parent().ok_or_else(|| format!("{rel}: no parent"))?;
        self.create_dirs(dir).map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.stilt-syncback",
            p.file_name().unwrap_or_default().to_string_lossy()
        ));
        // The temporary name shows up in the file watch too; it must not look like a deletion.
        self.echo.record(&tmp, Written::Absent);
        let mut f = fs::File::create(&tmp).map_err(err)?;
        f.write_all(data).map_err(err)?;
        f.set_permissions(fs::Permissions::from_mode(file_mode(mode)))
            .map_err(err)?;
        set_mtime(&f, mtime_ns);
        drop(f);
        self.echo
            .record(&p, Written::File(stilt_syncer::proto::hash_bytes(data)));
        if let Err(e) = fs::rename(&tmp, &p) {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        Ok(())
    }

    /// Moves (or, keeping the old one, copies) a local file to a new name.
    pub fn relocate(
        &self,
        from: &str,
        to: &str,
        keep_old: bool,
        mode: u32,
        mtime_ns: i64,
    ) -> Result<(), String> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        let err = |e: std::io::Error| format!("moving {from} to {to}: {e}");
        if let Some(dir) = dst.parent() {
            self.create_dirs(dir).map_err(err)?;
        }
        let written = crate::echo::current(&src);
        self.echo.record(&dst, written);
        if keep_old {
            fs::copy(&src, &dst).map_err(err)?;
        } else {
            self.echo.record(&src, Written::Absent);
            fs::rename(&src, &dst).map_err(err)?;
        }
        let f = fs::File::options().write(true).open(&dst).map_err(err)?;
        let _ = f.set_permissions(fs::Permissions::from_mode(file_mode(mode)));
        set_mtime(&f, mtime_ns);
        Ok(())
    }

    /// Creates (or replaces) a symbolic link, atomically. The target is copied verbatim, as
    /// rsync does; nothing is ever written through it.
    pub fn symlink(&self, rel: &str, target: &str) -> Result<(), String> {
        let p = self.path(rel)?;
        let err = |e: std::io::Error| format!("linking {rel}: {e}");
        let dir = p.parent().ok_or_else(|| format!("{rel}: no parent"))?;
        self.create_dirs(dir).map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.stilt-syncback",
            p.file_name().unwrap_or_default().to_string_lossy()
        ));
        self.echo.record(&tmp, Written::Absent);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
        // What the watcher will see through the link once it is in place.
        self.echo
            .record(&p, crate::echo::current(&dir.join(target)));
        if let Err(e) = fs::rename(&tmp, &p) {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        Ok(())
    }

    pub fn chmod(&self, rel: &str, mode: u32) -> Result<(), String> {
        let p = self.path(rel)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(file_mode(mode)))
            .map_err(|e| format!("chmod {rel}: {e}"))?;
        self.echo.record(&p, crate::echo::current(&p));
        Ok(())
    }

    pub fn remove_file(&self, rel: &str) -> Result<(), String> {
        let p = self.path(rel)?;
        self.echo.record(&p, Written::Absent);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("deleting {rel}: {e}"))
            }
            _ => Ok(()),
        }
    }

    /// Removes a directory if it is empty (protected or kept files keep it).
    pub fn remove_dir(&self, rel: &str) -> bool {
        let Ok(p) = self.path(rel) else { return false };
        if fs::remove_dir(&p).is_ok() {
            self.echo.record(&p, Written::Absent);
            true
        } else {
            false
        }
    }
}

fn file_mode(mode: u32) -> u32 {
    match mode & 0o7777 {
        0 => 0o644,
        m => m,
    }
}

fn dir_mode(mode: u32) -> u32 {
    match mode & 0o7777 {
        0 => 0o755,
        m => m | 0o700,
    }
}

fn set_mtime(f: &fs::File, mtime_ns: i64) {
    if mtime_ns > 0 {
        let t = UNIX_EPOCH + Duration::from_nanos(mtime_ns as u64);
        let _ = f.set_times(fs::FileTimes::new().set_modified(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_through_a_symlink_or_outside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        let echo = EchoGuard::default();
        let tree = LocalTree {
            root: root.path().to_path_buf(),
            echo: &echo,
        };
        let err = tree.write("escape/pwned", b"x", 0o644, 0).unwrap_err();
        assert!(err.contains("is a symlink"), "{err}");
        assert!(tree.write("../pwned", b"x", 0o644, 0).is_err());
        assert!(tree.remove_file("escape/anything").is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        tree.write("ok/file", b"fine", 0o600, 0).unwrap();
        let m = std::fs::metadata(root.path().join("ok/file")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("ok"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn directories_a_write_creates_are_echoes_too() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("target");
        let echo = EchoGuard::default();
        let tree = LocalTree {
            root: root.clone(),
            echo: &echo,
        };
        tree.write("gen/deep/a.txt", b"x", 0o644, 0).unwrap();
        for dir in [&root, &root.join("gen"), &root.join("gen/deep")] {
            assert!(
                echo.is_echo(dir),
                "{} was created by syncback",
                dir.display()
            );
        }
        assert!(!echo.is_echo(base.path()), "it existed before");
    }
}
