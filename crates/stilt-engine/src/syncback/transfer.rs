//! One syncback run against a container: list both sides, decide, then copy only what changed.

use super::local::{self, LocalTree};
use super::plan::{self, Filter, Node};
use crate::echo::EchoGuard;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;
use stilt_api::{SyncbackRun, SyncbackSpec};
use stilt_syncer::{Entry, FileKind};

/// At most this many changes are listed in status.
const MAX_LISTED_CHANGES: usize = 100;
/// Above this many hash checks, one hashed listing is cheaper than a stat per file.
const MAX_SINGLE_HASH_CHECKS: usize = 32;

/// The container side, over the live-update channel.
#[allow(async_fn_in_trait)]
pub trait Remote {
    async fn list(&mut self, root: &str, hash: bool) -> Result<Vec<Entry>, String>;
    async fn stat_hash(&mut self, path: &str) -> Result<Option<Vec<u8>>, String>;
    async fn read(&mut self, path: &str) -> Result<Vec<u8>, String>;
    async fn read_link(&mut self, path: &str) -> Result<String, String>;
    /// Several files at once; a file that cannot be read is an `Err` in its slot.
    async fn read_many(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<Result<Vec<u8>, String>>, String> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            out.push(self.read(p).await);
        }
        Ok(out)
    }
}

/// The helper's client (Docker) and a pod's syncer speak the same calls; only the error types
/// differ.
macro_rules! remote_over_channel {
    ($ty:ty) => {
        impl Remote for $ty {
            async fn list(&mut self, root: &str, hash: bool) -> Result<Vec<Entry>, String> {
                <$ty>::list(self, root, hash)
                    .await
                    .map_err(|e| e.to_string())
            }
            async fn stat_hash(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
                let entry = <$ty>::stat(self, path, true)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(entry.map(|e| e.hash))
            }
            async fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
                <$ty>::read(self, path).await.map_err(|e| e.to_string())
            }
            async fn read_link(&mut self, path: &str) -> Result<String, String> {
                <$ty>::read_link(self, path)
                    .await
                    .map_err(|e| e.to_string())
            }
            async fn read_many(
                &mut self,
                paths: &[String],
            ) -> Result<Vec<Result<Vec<u8>, String>>, String> {
                <$ty>::read_many(self, paths)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    };
}

remote_over_channel!(stilt_syncer::Client);
remote_over_channel!(stilt_k8s::ContainerSyncer);

/// Files read per pipelined request, and the bytes a batch may hold in memory.
const MAX_BATCH_FILES: usize = 256;
const MAX_BATCH_BYTES: u64 = 8 << 20;

/// The copies in batches small enough to hold in memory at once.
fn read_batches<'a>(copies: &'a [String], remote: &BTreeMap<String, Node>) -> Vec<Vec<&'a String>> {
    let mut out: Vec<Vec<&String>> = Vec::new();
    let mut bytes = 0;
    for rel in copies {
        let size = remote.get(rel).map_or(0, |n| n.size);
        let full = out.last().is_none_or(|b| {
            b.len() >= MAX_BATCH_FILES || (bytes + size > MAX_BATCH_BYTES && !b.is_empty())
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("a batch").push(rel);
    }
    out
}

fn remote_path(src_dir: &str, rel: &str) -> String {
    format!("{}/{rel}", src_dir.trim_end_matches('/'))
}

fn remote_tree(entries: Vec<Entry>) -> (BTreeMap<String, Node>, HashMap<String, Vec<u8>>) {
    let mut tree = BTreeMap::new();
    let mut hashes = HashMap::new();
    for e in entries {
        let (dir, link) = match e.kind {
            FileKind::File => (false, false),
            FileKind::Dir => (true, false),
            FileKind::Symlink => (false, true),
            FileKind::Other => continue,
        };
        if e.path.is_empty() {
            continue;
        }
        if !e.hash.is_empty() {
            hashes.insert(e.path.clone(), e.hash);
        }
        tree.insert(
            e.path,
            Node {
                dir,
                link,
                mode: e.mode & 0o7777,
                size: e.size,
                mtime_ns: e.mtime_ns,
            },
        );
    }
    (tree, hashes)
}

/// Remote content hashes of `rels`: one stat each when few, else one hashed listing.
async fn remote_hashes<R: Remote>(
    remote: &mut R,
    src_dir: &str,
    rels: &[String],
) -> Result<HashMap<String, Vec<u8>>, String> {
    if rels.len() > MAX_SINGLE_HASH_CHECKS {
        let (_, hashes) = remote_tree(remote.list(src_dir, true).await?);
        return Ok(hashes);
    }
    let mut out = HashMap::new();
    for rel in rels {
        if let Some(h) = remote.stat_hash(&remote_path(src_dir, rel)).await? {
            out.insert(rel.clone(), h);
        }
    }
    Ok(out)
}

/// Runs one syncback. Errors on single files are collected, not fatal; the run's error names
/// them.
pub async fn run<R: Remote>(
    remote: &mut R,
    spec: &SyncbackSpec,
    echo: &EchoGuard,
    mut on_change: impl FnMut(&str),
) -> SyncbackRun {
    let clock = Instant::now();
    let mut report = SyncbackRun {
        dry_run: spec.dry_run,
        ..Default::default()
    };
    if let Err(e) = run_inner(remote, spec, echo, &mut report, &mut on_change).await {
        report.error = e;
    }
    report.duration_ms = clock.elapsed().as_secs_f64() * 1e3;
    report
}

async fn run_inner<R: Remote>(
    remote: &mut R,
    spec: &SyncbackSpec,
    echo: &EchoGuard,
    report: &mut SyncbackRun,
    on_change: &mut impl FnMut(&str),
) -> Result<(), String> {
    let filter = Filter::new(&spec.paths, &spec.ignores, &spec.protected)?;
    let root = PathBuf::from(&spec.target_dir);
    let src = &spec.src_dir;
    let (remote_nodes, _) = remote_tree(
        remote
            .list(src, false)
            .await
            .map_err(|e| format!("listing {src} in the container: {e}"))?,
    );
    let local_nodes = local::list(&root, &filter);
    let mut cmp = plan::compare(&remote_nodes, &local_nodes, &filter);

    // Same size, other mtime: equal only if the content hashes are.
    let checked = remote_hashes(remote, src, &cmp.check).await?;
    for rel in std::mem::take(&mut cmp.check) {
        let same = checked
            .get(&rel)
            .is_some_and(|h| local::hash(&root, &rel).as_ref() == Some(h));
        if !same {
            cmp.copies.push(rel);
        } else if local_nodes[&rel].mode & 0o777 != remote_nodes[&rel].mode & 0o777 {
            cmp.chmods.push((rel.clone(), remote_nodes[&rel].mode));
        } else {
            cmp.unchanged += 1;
        }
    }
    cmp.copies.sort();

    // A new name whose content is already here under a name going away: move it, don't copy.
    let pairs = plan::rename_candidates(&cmp.copies, &remote_nodes, &local_nodes, &cmp.gone_files);
    let wanted: Vec<String> = pairs.iter().map(|(_, to)| to.clone()).collect();
    let to_hashes = remote_hashes(remote, src, &wanted).await?;
    let mut relocations = Vec::new();
    for (from, to) in pairs {
        if to_hashes
            .get(&to)
            .is_some_and(|h| local::hash(&root, &from).as_ref() == Some(h))
        {
            cmp.copies.retain(|c| c != &to);
            if spec.delete {
                cmp.gone_files.retain(|g| g != &from);
            }
            relocations.push((from, to));
        }
    }

    let tree = LocalTree {
        root: root.clone(),
        echo,
    };
    let mut errors = Vec::new();
    let mut note = |report: &mut SyncbackRun, change: String| {
        on_change(&change);
        if report.changes.len() < MAX_LISTED_CHANGES {
            report.changes.push(change);
        }
    };
    let apply = !spec.dry_run;
    for (rel, mode) in &cmp.mkdirs {
        if apply && let Err(e) = tree.mkdir(rel, *mode) {
            errors.push(e);
        }
    }
    for (from, to) in &relocations {
        let r = &remote_nodes[to];
        if apply && let Err(e) = tree.relocate(from, to, !spec.delete, r.mode, r.mtime_ns) {
            errors.push(e);
            continue;
        }
        report.files_renamed += 1;
        let verb = if spec.delete {
            "rename"
        } else {
            "copy locally"
        };
        note(report, format!("{verb} {from} -> {to}"));
    }
    for batch in read_batches(&cmp.copies, &remote_nodes) {
        let contents = if apply {
            let paths: Vec<String> = batch.iter().map(|rel| remote_path(src, rel)).collect();
            remote.read_many(&paths).await?
        } else {
            Vec::new()
        };
        for (i, rel) in batch.iter().enumerate() {
            let r = &remote_nodes[*rel];
            if apply {
                let data = match &contents[i] {
                    Ok(d) => d,
                    Err(e) => {
                        errors.push(format!("reading {rel}: {e}"));
                        continue;
                    }
                };
                report.bytes_transferred += data.len() as i64;
                if let Err(e) = tree.write(rel, data, r.mode, r.mtime_ns) {
                    errors.push(e);
                    continue;
                }
            } else {
                report.bytes_transferred += r.size as i64;
            }
            report.files_copied += 1;
            note(report, format!("copy {rel}"));
        }
    }
    for rel in &cmp.links {
        let target = match remote.read_link(&remote_path(src, rel)).await {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("reading link {rel}: {e}"));
                continue;
            }
        };
        let here = std::fs::read_link(root.join(rel)).ok();
        if here.is_some_and(|h| h.as_os_str() == target.as_str()) {
            cmp.unchanged += 1;
            continue;
        }
        if apply && let Err(e) = tree.symlink(rel, &target) {
            errors.push(e);
            continue;
        }
        report.files_copied += 1;
        note(report, format!("link {rel} -> {target}"));
    }
    for (rel, mode) in &cmp.chmods {
        if apply && let Err(e) = tree.chmod(rel, *mode) {
            errors.push(e);
            continue;
        }
        note(report, format!("chmod {mode:o} {rel}"));
    }
    report.files_unchanged = cmp.unchanged as i32;
    if spec.delete {
        for rel in &cmp.gone_files {
            if apply && let Err(e) = tree.remove_file(rel) {
                errors.push(e);
                continue;
            }
            report.files_deleted += 1;
            note(report, format!("delete {rel}"));
        }
        let mut dirs = cmp.gone_dirs.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for rel in &dirs {
            if !apply || tree.remove_dir(rel) {
                note(report, format!("delete {rel}/"));
            }
        }
    } else if !cmp.gone_files.is_empty() {
        on_change(&format!(
            "{} local file(s) no longer in the container were kept (delete=False)",
            cmp.gone_files.len()
        ));
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(5).map(String::as_str).collect();
        return Err(format!(
            "{} file(s) failed: {}",
            errors.len(),
            shown.join("; ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    /// A "container" that is a local directory, listed the way the helper lists.
    struct DirRemote {
        reads: usize,
    }

    impl Remote for DirRemote {
        async fn list(&mut self, root: &str, hash: bool) -> Result<Vec<Entry>, String> {
            let mut out = Vec::new();
            walk(Path::new(root), "", hash, &mut out);
            Ok(out)
        }
        async fn stat_hash(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(std::fs::read(path)
                .ok()
                .map(|d| stilt_syncer::proto::hash_bytes(&d)))
        }
        async fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
            self.reads += 1;
            std::fs::read(path).map_err(|e| e.to_string())
        }
        async fn read_link(&mut self, path: &str) -> Result<String, String> {
            std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .map_err(|e| e.to_string())
        }
    }

    fn walk(root: &Path, rel: &str, hash: bool, out: &mut Vec<Entry>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let m = e.metadata().unwrap();
            let kind = if m.file_type().is_symlink() {
                FileKind::Symlink
            } else if m.is_dir() {
                FileKind::Dir
            } else {
                FileKind::File
            };
            let data = if kind == FileKind::File && hash {
                stilt_syncer::proto::hash_bytes(&std::fs::read(e.path()).unwrap())
            } else {
                vec![]
            };
            out.push(Entry {
                path: r.clone(),
                kind,
                mode: m.permissions().mode() & 0o7777,
                size: m.len(),
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                hash: data,
            });
            if kind == FileKind::Dir {
                walk(root, &r, hash, out);
            }
        }
    }

    fn write(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn spec(src: &Path, dst: &Path, delete: bool) -> SyncbackSpec {
        SyncbackSpec {
            src_dir: src.display().to_string(),
            target_dir: dst.display().to_string(),
            delete,
            protected: vec!["Tiltfile".into(), ".git".into(), "Dockerfile".into()],
            ..Default::default()
        }
    }

    async fn sync(src: &Path, dst: &Path, delete: bool, echo: &EchoGuard) -> (SyncbackRun, usize) {
        let mut remote = DirRemote { reads: 0 };
        let r = run(&mut remote, &spec(src, dst, delete), echo, |_| {}).await;
        assert_eq!(r.error, "");
        (r, remote.reads)
    }

    #[tokio::test]
    async fn copies_only_what_changed_and_keeps_mode_and_mtime() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let echo = EchoGuard::default();
        write(src.path(), "gen/a.txt", "alpha");
        write(src.path(), "gen/b.txt", "beta");
        write(src.path(), "run.sh", "#!/bin/sh\n");
        std::fs::set_permissions(
            src.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let (first, reads) = sync(src.path(), dst.path(), false, &echo).await;
        assert_eq!((first.files_copied, reads), (3, 3));
        assert_eq!(
            std::fs::read_to_string(dst.path().join("gen/b.txt")).unwrap(),
            "beta"
        );
        let m = std::fs::metadata(dst.path().join("run.sh")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o755);
        assert!(echo.is_echo(&dst.path().join("gen/a.txt")));

        let (again, reads) = sync(src.path(), dst.path(), false, &echo).await;
        assert_eq!(
            (again.files_copied, again.files_unchanged, reads),
            (0, 3, 0)
        );

        write(src.path(), "gen/a.txt", "ALPHA");
        let (third, reads) = sync(src.path(), dst.path(), false, &echo).await;
        assert_eq!(
            (third.files_copied, reads, third.bytes_transferred),
            (1, 1, 5)
        );
        assert_eq!(
            std::fs::read_to_string(dst.path().join("gen/a.txt")).unwrap(),
            "ALPHA"
        );
    }

    #[tokio::test]
    async fn deletes_only_with_delete_and_never_protected_files() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let echo = EchoGuard::default();
        write(src.path(), "keep.txt", "k");
        for f in [
            "keep.txt",
            "stale.txt",
            "old/x.txt",
            "Tiltfile",
            ".git/HEAD",
            "sub/Dockerfile",
        ] {
            write(dst.path(), f, "local");
        }
        let (r, _) = sync(src.path(), dst.path(), false, &echo).await;
        assert_eq!(r.files_deleted, 0);
        assert!(dst.path().join("stale.txt").exists());

        let (r, _) = sync(src.path(), dst.path(), true, &echo).await;
        assert_eq!(r.files_deleted, 2, "{:?}", r.changes);
        assert!(!dst.path().join("stale.txt").exists());
        assert!(!dst.path().join("old").exists());
        for f in ["Tiltfile", ".git/HEAD", "sub/Dockerfile"] {
            assert_eq!(
                std::fs::read_to_string(dst.path().join(f)).unwrap(),
                "local",
                "{f}"
            );
        }
        assert!(echo.is_echo(&dst.path().join("stale.txt")));
    }

    #[tokio::test]
    async fn a_rename_in_the_container_moves_the_local_file_without_a_transfer() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let echo = EchoGuard::default();
        write(src.path(), "old-name.bin", &"x".repeat(4096));
        sync(src.path(), dst.path(), true, &echo).await;
        std::fs::rename(
            src.path().join("old-name.bin"),
            src.path().join("new-name.bin"),
        )
        .unwrap();
        let (r, reads) = sync(src.path(), dst.path(), true, &echo).await;
        assert_eq!(
            (r.files_renamed, r.files_copied, reads),
            (1, 0, 0),
            "{:?}",
            r.changes
        );
        assert_eq!(r.bytes_transferred, 0);
        assert!(!dst.path().join("old-name.bin").exists());
        assert_eq!(
            std::fs::read(dst.path().join("new-name.bin"))
                .unwrap()
                .len(),
            4096
        );
    }

    #[tokio::test]
    async fn symlinks_come_back_as_links_with_their_target() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let echo = EchoGuard::default();
        write(src.path(), "venv/lib/python3", "interpreter");
        std::fs::create_dir_all(src.path().join("venv/bin")).unwrap();
        std::os::unix::fs::symlink("../lib/python3", src.path().join("venv/bin/python")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("abs-link")).unwrap();
        let (r, _) = sync(src.path(), dst.path(), true, &echo).await;
        assert_eq!(r.files_copied, 3, "{:?}", r.changes);
        let link = dst.path().join("venv/bin/python");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../lib/python3")
        );
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "interpreter");
        assert_eq!(
            std::fs::read_link(dst.path().join("abs-link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(echo.is_echo(&link));
        let (again, _) = sync(src.path(), dst.path(), true, &echo).await;
        assert_eq!(again.files_copied, 0, "{:?}", again.changes);
        std::fs::remove_file(src.path().join("abs-link")).unwrap();
        let (gone, _) = sync(src.path(), dst.path(), true, &echo).await;
        assert_eq!(gone.files_deleted, 1);
        assert!(std::fs::symlink_metadata(dst.path().join("abs-link")).is_err());
    }

    #[tokio::test]
    async fn a_dry_run_reports_and_writes_nothing() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(src.path(), "a.txt", "abc");
        write(dst.path(), "gone.txt", "x");
        let mut remote = DirRemote { reads: 0 };
        let mut s = spec(src.path(), dst.path(), true);
        s.dry_run = true;
        let r = run(&mut remote, &s, &EchoGuard::default(), |_| {}).await;
        assert_eq!(r.changes, vec!["copy a.txt", "delete gone.txt"]);
        assert_eq!(
            (r.files_copied, r.files_deleted, r.bytes_transferred),
            (1, 1, 3)
        );
        assert!(!dst.path().join("a.txt").exists());
        assert!(dst.path().join("gone.txt").exists());
        assert_eq!(remote.reads, 0);
    }
}
