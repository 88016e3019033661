//! Deterministic tar archives: build contexts, live-update syncs, and reading archives back.
//!
//! Every archive this module writes has a stable entry order (pre-order walk, children sorted by
//! name), GNU headers (long names and link targets via `././@LongLink`), uid/gid 0 with empty
//! user/group names, and the files' real modes and mtimes. Deletions cannot be expressed in a tar;
//! live update follows the upload with one `rm -rf` exec (see [`rm_command`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::error::{DockerError, Result};
use crate::types::{ArchiveEntry, BuildContext, DockerfileSource, EntryKind};

/// Prefix of the tar entry an inline (or out-of-context) Dockerfile is injected as.
pub const INJECTED_DOCKERFILE_PREFIX: &str = ".stilt-dockerfile-";

/// Facts about a context tar that the build call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextTarInfo {
    /// The `dockerfile` build parameter: path of the Dockerfile inside the tar.
    pub dockerfile_name: String,
    /// Whether the Dockerfile was injected (inline contents or outside the context).
    pub injected: bool,
    /// Number of entries written (files, dirs, links).
    pub entries: usize,
}

/// 64-bit FNV-1a, used for stable, non-cryptographic names.
pub(crate) fn fnv1a64(seed: u64, data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn rel_to_tar_name(rel: &Path) -> String {
    let mut out = String::new();
    for c in rel.components() {
        if let Component::Normal(s) = c {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&s.to_string_lossy());
        }
    }
    out
}

fn mtime_secs(md: &fs::Metadata) -> u64 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[cfg(unix)]
fn mode_of(md: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    md.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(md: &fs::Metadata) -> u32 {
    if md.is_dir() {
        0o755
    } else if md.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

fn base_header(md: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode_of(md));
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime_secs(md));
    h.set_size(0);
    h
}

/// Writes entries with consistent headers.
struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    entries: usize,
}

impl<W: Write> TarWriter<W> {
    fn new(w: W) -> Self {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        TarWriter { b, entries: 0 }
    }

    /// Append the filesystem object at `local` under `name`. Returns false for special files
    /// (sockets, fifos, devices), which are skipped.
    fn append_path(&mut self, local: &Path, name: &str, md: &fs::Metadata) -> io::Result<bool> {
        let ft = md.file_type();
        let mut h = base_header(md);
        if ft.is_symlink() {
            let target = fs::read_link(local)?;
            h.set_entry_type(tar::EntryType::Symlink);
            self.b.append_link(&mut h, name, &target)?;
        } else if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            self.b
                .append_data(&mut h, format!("{name}/"), io::empty())?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            let f = fs::File::open(local)?;
            // Guard against the file changing size while we read it: the header is authoritative.
            let mut r = f.take(md.len());
            let mut counted = CountingReader {
                inner: &mut r,
                n: 0,
            };
            self.b.append_data(&mut h, name, &mut counted)?;
            if counted.n != md.len() {
                return Err(io::Error::other(format!(
                    "{} changed size while being archived",
                    local.display()
                )));
            }
        } else {
            return Ok(false);
        }
        self.entries += 1;
        Ok(true)
    }

    fn append_bytes(&mut self, name: &str, mode: u32, mtime: u64, data: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        self.b.append_data(&mut h, name, data)?;
        self.entries += 1;
        Ok(())
    }

    fn finish(self) -> io::Result<(W, usize)> {
        let entries = self.entries;
        Ok((self.b.into_inner()?, entries))
    }
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Children of `dir`, sorted by name (byte order of the OS string).
fn sorted_children(dir: &Path) -> io::Result<Vec<(std::ffi::OsString, fs::Metadata)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let md = fs::symlink_metadata(e.path())?;
        out.push((e.file_name(), md));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Decide how the Dockerfile travels: its name inside the context, and (when it must be
/// injected because it is inline or outside the context) the contents to inject.
pub fn plan_dockerfile(
    ctx_dir: &Path,
    src: &DockerfileSource,
) -> Result<(String, Option<Vec<u8>>)> {
    let contents = match src {
        DockerfileSource::Contents(c) => c.clone().into_bytes(),
        DockerfileSource::Path(p) => {
            let abs_ctx = fs::canonicalize(ctx_dir)
                .map_err(|e| DockerError::io(format!("build context {}", ctx_dir.display()), e))?;
            let p = if p.is_absolute() {
                p.clone()
            } else {
                ctx_dir.join(p)
            };
            let abs_df = fs::canonicalize(&p)
                .map_err(|e| DockerError::io(format!("Dockerfile {}", p.display()), e))?;
            if let Ok(rel) = abs_df.strip_prefix(&abs_ctx) {
                return Ok((rel_to_tar_name(rel), None));
            }
            fs::read(&abs_df)
                .map_err(|e| DockerError::io(format!("Dockerfile {}", abs_df.display()), e))?
        }
    };
    let name = format!("{INJECTED_DOCKERFILE_PREFIX}{:016x}", fnv1a64(0, &contents));
    Ok((name, Some(contents)))
}

/// Whether a Dockerfile uses syntax only BuildKit understands (`RUN --mount`, heredocs,
/// `# syntax=`, `COPY --link/--chmod` …).
pub fn needs_buildkit(dockerfile: &str) -> bool {
    dockerfile.lines().any(|l| {
        let t = l.trim_start();
        let lower = t.to_ascii_lowercase();
        (lower.starts_with('#') && lower.replace(' ', "").starts_with("#syntax="))
            || (!t.starts_with('#')
                && [
                    "--mount",
                    "--link",
                    "--chmod",
                    "--parents",
                    "--exclude",
                    "--network=",
                    "--security",
                    "--checksum",
                    "<<",
                ]
                .iter()
                .any(|p| t.contains(p)))
    })
}

/// Write the build context of `ctx` as a tar to `w`.
///
/// Included: every path the filter accepts, plus the Dockerfile and `.dockerignore` (Docker's CLI
/// always sends those; the daemon needs them). An inline Dockerfile (or one outside the context) is
/// appended as `.stilt-dockerfile-<hash>`, and a `.dockerignore` naming it is written so the daemon
/// drops it from what `COPY .` sees.
pub fn write_context_tar<W: Write>(
    ctx: &BuildContext,
    dockerfile: &DockerfileSource,
    w: W,
) -> Result<(W, ContextTarInfo)> {
    let (df_name, inject) = plan_dockerfile(&ctx.dir, dockerfile)?;
    let mut tw = TarWriter::new(w);
    let mut dockerignore: Option<(Vec<u8>, fs::Metadata)> = None;

    // Iterative pre-order walk with sorted children.
    let mut stack: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    let root_children = sorted_children(&ctx.dir)
        .map_err(|e| DockerError::io(format!("build context {}", ctx.dir.display()), e))?;
    for (name, md) in root_children.into_iter().rev() {
        stack.push((PathBuf::from(name), md));
    }
    while let Some((rel, md)) = stack.pop() {
        let name = rel_to_tar_name(&rel);
        let local = ctx.dir.join(&rel);
        let forced = name == df_name || name == ".dockerignore";
        if inject.is_some() && name == ".dockerignore" {
            let data = fs::read(&local).unwrap_or_default();
            dockerignore = Some((data, md));
            continue;
        }
        if forced || ctx.includes(&rel) {
            tw.append_path(&local, &name, &md)
                .map_err(|e| DockerError::io(format!("archiving {}", local.display()), e))?;
        }
        if md.is_dir() && !ctx.prunes(&rel) {
            let children = sorted_children(&local)
                .map_err(|e| DockerError::io(format!("reading {}", local.display()), e))?;
            for (n, cmd) in children.into_iter().rev() {
                stack.push((rel.join(n), cmd));
            }
        }
    }

    let injected = inject.is_some();
    if let Some(contents) = inject {
        // mtime 0 keeps the tar deterministic for identical inline contents.
        tw.append_bytes(&df_name, 0o644, 0, &contents)?;
        let mut ignore = match &dockerignore {
            Some((data, _)) => {
                let mut d = data.clone();
                if !d.is_empty() && !d.ends_with(b"\n") {
                    d.push(b'\n');
                }
                d
            }
            None => Vec::new(),
        };
        ignore.extend_from_slice(df_name.as_bytes());
        ignore.push(b'\n');
        let (mode, mtime) = dockerignore
            .as_ref()
            .map_or((0o644, 0), |(_, md)| (mode_of(md), mtime_secs(md)));
        tw.append_bytes(".dockerignore", mode, mtime, &ignore)?;
    }
    let (w, entries) = tw.finish()?;
    Ok((
        w,
        ContextTarInfo {
            dockerfile_name: df_name,
            injected,
            entries,
        },
    ))
}

/// [`write_context_tar`] into memory.
pub fn context_tar(
    ctx: &BuildContext,
    dockerfile: &DockerfileSource,
) -> Result<(Vec<u8>, ContextTarInfo)> {
    write_context_tar(ctx, dockerfile, Vec::new())
}

/// A live-update payload: one tar to extract at `/` plus the container paths to delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncArchive {
    /// Tar whose entry names are container paths without the leading `/`; upload it at `/`.
    pub tar: Bytes,
    /// Absolute container paths whose local source no longer exists (sorted, deduplicated).
    pub deletions: Vec<String>,
    /// Number of entries in `tar`.
    pub entries: usize,
}

impl SyncArchive {
    pub fn is_empty(&self) -> bool {
        self.entries == 0 && self.deletions.is_empty()
    }
}

fn clean_container_path(p: &str) -> Result<String> {
    if !p.starts_with('/') {
        return Err(DockerError::Other(format!(
            "container path must be absolute: {p:?}"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Build the live-update archive for `(local path, absolute container path)` pairs.
///
/// A local file becomes one entry; a local directory becomes its entry plus its whole subtree
/// (sorted); a local path that does not exist becomes a deletion of the container path.
/// Symlinks are archived as links. Later pairs win when two map to the same container path.
pub fn sync_archive<P: AsRef<Path>, S: AsRef<str>>(pairs: &[(P, S)]) -> Result<SyncArchive> {
    // container path -> local path (sorted, dedup).
    let mut files: BTreeMap<String, (PathBuf, fs::Metadata)> = BTreeMap::new();
    let mut deletions: Vec<String> = Vec::new();
    for (local, cpath) in pairs {
        let local = local.as_ref();
        let cpath = clean_container_path(cpath.as_ref())?;
        match fs::symlink_metadata(local) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                files.retain(|k, _| !(k == &cpath || k.starts_with(&format!("{cpath}/"))));
                deletions.push(cpath);
            }
            Err(e) => return Err(DockerError::io(format!("reading {}", local.display()), e)),
            Ok(md) => {
                deletions.retain(|d| d != &cpath);
                let is_dir = md.is_dir();
                files.insert(cpath.clone(), (local.to_path_buf(), md));
                if is_dir {
                    let mut stack = vec![(local.to_path_buf(), cpath.clone())];
                    while let Some((ldir, cdir)) = stack.pop() {
                        let children = sorted_children(&ldir).map_err(|e| {
                            DockerError::io(format!("reading {}", ldir.display()), e)
                        })?;
                        for (name, cmd) in children {
                            let lp = ldir.join(&name);
                            let cp = format!(
                                "{}/{}",
                                cdir.trim_end_matches('/'),
                                name.to_string_lossy()
                            );
                            if cmd.is_dir() {
                                stack.push((lp.clone(), cp.clone()));
                            }
                            files.insert(cp, (lp, cmd));
                        }
                    }
                }
            }
        }
    }
    deletions.sort();
    deletions.dedup();
    let mut tw = TarWriter::new(Vec::new());
    for (cpath, (local, md)) in &files {
        let name = cpath.trim_start_matches('/');
        if name.is_empty() {
            continue; // syncing onto "/" itself: only its children are written
        }
        tw.append_path(local, name, md)
            .map_err(|e| DockerError::io(format!("archiving {}", local.display()), e))?;
    }
    let (buf, entries) = tw.finish()?;
    Ok(SyncArchive {
        tar: Bytes::from(buf),
        deletions,
        entries,
    })
}

/// An in-memory tar from `(container path, mode, contents)` triples (for tests and small
/// helpers such as installing a file into a container).
pub fn tar_from_bytes<S: AsRef<str>>(files: &[(S, u32, &[u8])]) -> Result<Bytes> {
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    let mut tw = TarWriter::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (path, mode, data) in sorted {
        let p = clean_container_path(&format!("/{}", path.as_ref().trim_start_matches('/')))?;
        tw.append_bytes(p.trim_start_matches('/'), *mode, now, data)?;
    }
    let (buf, _) = tw.finish()?;
    Ok(Bytes::from(buf))
}

/// The single exec that applies deletions: `rm -rf <paths…>` (`None` when nothing to delete).
pub fn rm_command(deletions: &[String]) -> Option<Vec<String>> {
    if deletions.is_empty() {
        return None;
    }
    let mut cmd = vec!["rm".to_string(), "-rf".to_string(), "--".to_string()];
    cmd.extend(deletions.iter().cloned());
    Some(cmd)
}

/// Parse a (plain, uncompressed) tar into entries, in archive order.
pub fn read_tar(data: &[u8]) -> Result<Vec<ArchiveEntry>> {
    let mut ar = tar::Archive::new(data);
    let mut out = Vec::new();
    for e in ar
        .entries()
        .map_err(|e| DockerError::io("reading tar", e))?
    {
        let mut e = e.map_err(|e| DockerError::io("reading tar", e))?;
        let path = e
            .path()
            .map_err(|e| DockerError::io("reading tar", e))?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = e.header();
        let mode = h.mode().unwrap_or(0);
        let mtime = h.mtime().unwrap_or(0);
        let size = h.size().unwrap_or(0);
        let et = h.entry_type();
        let link = || -> Result<String> {
            Ok(e.link_name()
                .map_err(|e| DockerError::io("reading tar", e))?
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let kind = match et {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink(link()?),
            tar::EntryType::Link => EntryKind::Hardlink(link()?),
            _ => EntryKind::Other,
        };
        let mut data = Vec::new();
        if kind == EntryKind::File {
            e.read_to_end(&mut data)
                .map_err(|e| DockerError::io("reading tar", e))?;
        }
        out.push(ArchiveEntry {
            path,
            kind,
            mode,
            size,
            mtime,
            data: Bytes::from(data),
        });
    }
    Ok(out)
}

/// Hex SHA-256 of the build context exactly as [`write_context_tar`] would send it (paths,
/// modes, mtimes and contents), streamed: nothing is held in memory.
pub fn context_digest(ctx: &BuildContext, dockerfile: &DockerfileSource) -> Result<String> {
    use sha2::Digest;
    let (hasher, _) = write_context_tar(ctx, dockerfile, sha2::Sha256::new())?;
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(&r.join("Dockerfile"), "FROM scratch\nCOPY . /\n");
        write(&r.join("b.txt"), "bee");
        write(&r.join("a/z.txt"), "zed");
        write(&r.join("a/c.txt"), "sea");
        write(&r.join("node_modules/x/index.js"), "x");
        write(&r.join("run.sh"), "#!/bin/sh\necho hi\n");
        fs::set_permissions(r.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("b.txt", r.join("link")).unwrap();
        d
    }

    fn names(entries: &[ArchiveEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn context_tar_is_sorted_preorder_with_modes_and_symlinks() {
        let d = fixture();
        let ctx = BuildContext::new(d.path());
        let (tar, info) =
            context_tar(&ctx, &DockerfileSource::Path(d.path().join("Dockerfile"))).unwrap();
        assert_eq!(info.dockerfile_name, "Dockerfile");
        assert!(!info.injected);
        let entries = read_tar(&tar).unwrap();
        assert_eq!(
            names(&entries),
            vec![
                "Dockerfile",
                "a",
                "a/c.txt",
                "a/z.txt",
                "b.txt",
                "link",
                "node_modules",
                "node_modules/x",
                "node_modules/x/index.js",
                "run.sh"
            ]
        );
        let by = |n: &str| entries.iter().find(|e| e.path == n).unwrap().clone();
        assert_eq!(by("run.sh").mode, 0o755);
        assert_eq!(by("b.txt").data, Bytes::from_static(b"bee"));
        assert_eq!(by("link").kind, EntryKind::Symlink("b.txt".into()));
        assert_eq!(by("a").kind, EntryKind::Dir);
        // real mtimes are kept
        let md = fs::metadata(d.path().join("b.txt")).unwrap();
        assert_eq!(by("b.txt").mtime, mtime_secs(&md));
        // uid/gid 0
        let mut ar = tar::Archive::new(&tar[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            assert_eq!(e.header().gid().unwrap(), 0);
        }
    }

    #[test]
    fn context_tar_is_byte_identical_for_unchanged_tree() {
        let d = fixture();
        let ctx = BuildContext::new(d.path());
        let df = DockerfileSource::Path(d.path().join("Dockerfile"));
        let (a, _) = context_tar(&ctx, &df).unwrap();
        let (b, _) = context_tar(&ctx, &df).unwrap();
        assert_eq!(a, b);
        write(&d.path().join("b.txt"), "changed");
        let (c, _) = context_tar(&ctx, &df).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn filter_and_prune_apply_but_dockerfile_always_sent() {
        let d = fixture();
        let ctx = BuildContext::new(d.path())
            .with_filter(|p| {
                !(p.starts_with("node_modules")
                    || p == Path::new("Dockerfile")
                    || p == Path::new("a/z.txt"))
            })
            .with_prune_dir(|p| p.starts_with("node_modules"));
        let (tar, _) = context_tar(&ctx, &DockerfileSource::Path("Dockerfile".into())).unwrap();
        let entries = read_tar(&tar).unwrap();
        assert_eq!(
            names(&entries),
            vec!["Dockerfile", "a", "a/c.txt", "b.txt", "link", "run.sh"]
        );
    }

    #[test]
    fn excluded_dir_children_can_be_reincluded() {
        let d = fixture();
        // "a" excluded but "a/c.txt" re-included (dockerignore `a` + `!a/c.txt`).
        let ctx = BuildContext::new(d.path())
            .with_filter(|p| p != Path::new("a") && p != Path::new("a/z.txt"));
        let (tar, _) = context_tar(&ctx, &DockerfileSource::Path("Dockerfile".into())).unwrap();
        let n = read_tar(&tar).unwrap();
        assert!(names(&n).contains(&"a/c.txt"));
        assert!(!names(&n).contains(&"a"));
        assert!(!names(&n).contains(&"a/z.txt"));
    }

    #[test]
    fn inline_dockerfile_is_injected_with_stable_name_and_ignored() {
        let d = fixture();
        write(&d.path().join(".dockerignore"), "node_modules");
        let ctx = BuildContext::new(d.path());
        let src = DockerfileSource::Contents("FROM scratch\n".into());
        let (tar, info) = context_tar(&ctx, &src).unwrap();
        assert!(info.injected);
        assert!(info.dockerfile_name.starts_with(INJECTED_DOCKERFILE_PREFIX));
        let (tar2, info2) = context_tar(&ctx, &src).unwrap();
        assert_eq!(info.dockerfile_name, info2.dockerfile_name);
        assert_eq!(tar, tar2);
        let entries = read_tar(&tar).unwrap();
        let df = entries
            .iter()
            .find(|e| e.path == info.dockerfile_name)
            .unwrap();
        assert_eq!(df.data, Bytes::from_static(b"FROM scratch\n"));
        let ig = entries.iter().find(|e| e.path == ".dockerignore").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ig.data),
            format!("node_modules\n{}\n", info.dockerfile_name)
        );
        assert_eq!(
            entries.iter().filter(|e| e.path == ".dockerignore").count(),
            1
        );
        // A different inline Dockerfile gets a different name.
        let (_, other) = context_tar(&ctx, &DockerfileSource::Contents("FROM x\n".into())).unwrap();
        assert_ne!(other.dockerfile_name, info.dockerfile_name);
    }

    #[test]
    fn dockerfile_outside_context_is_injected() {
        let d = fixture();
        let other = tempfile::tempdir().unwrap();
        write(&other.path().join("Dockerfile.dev"), "FROM scratch\n");
        let ctx = BuildContext::new(d.path());
        let (_, info) = context_tar(
            &ctx,
            &DockerfileSource::Path(other.path().join("Dockerfile.dev")),
        )
        .unwrap();
        assert!(info.injected);
        // inside the context, in a subdir: referenced in place
        write(&d.path().join("docker/Dockerfile"), "FROM scratch\n");
        let (_, info) = context_tar(
            &ctx,
            &DockerfileSource::Path(d.path().join("docker/Dockerfile")),
        )
        .unwrap();
        assert_eq!(info.dockerfile_name, "docker/Dockerfile");
    }

    #[test]
    fn long_names_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let long = "x".repeat(120);
        let rel = format!("{long}/{long}/file-{long}.txt");
        write(&d.path().join(&rel), "long");
        symlink(
            format!("{long}/{long}/file-{long}.txt"),
            d.path().join("ln"),
        )
        .unwrap();
        write(&d.path().join("Dockerfile"), "FROM scratch\n");
        let (tar, _) = context_tar(
            &BuildContext::new(d.path()),
            &DockerfileSource::Path("Dockerfile".into()),
        )
        .unwrap();
        let entries = read_tar(&tar).unwrap();
        let f = entries
            .iter()
            .find(|e| e.path == rel)
            .expect("long name entry");
        assert_eq!(f.data, Bytes::from_static(b"long"));
        let l = entries.iter().find(|e| e.path == "ln").unwrap();
        assert_eq!(l.kind, EntryKind::Symlink(rel.clone()));
    }

    #[test]
    fn sync_archive_maps_paths_recurses_dirs_and_collects_deletions() {
        let d = fixture();
        let r = d.path();
        let pairs = vec![
            (r.join("b.txt"), "/app/b.txt".to_string()),
            (r.join("a"), "/app/a".to_string()),
            (r.join("gone.txt"), "/app/gone.txt".to_string()),
            (r.join("also-gone"), "/app/x/../also-gone".to_string()),
            (r.join("link"), "/app/link".to_string()),
        ];
        let s = sync_archive(&pairs).unwrap();
        assert_eq!(s.deletions, vec!["/app/also-gone", "/app/gone.txt"]);
        let entries = read_tar(&s.tar).unwrap();
        assert_eq!(
            names(&entries),
            vec![
                "app/a",
                "app/a/c.txt",
                "app/a/z.txt",
                "app/b.txt",
                "app/link"
            ]
        );
        assert_eq!(s.entries, 5);
        assert_eq!(rm_command(&s.deletions).unwrap()[..3], ["rm", "-rf", "--"]);
        assert!(rm_command(&[]).is_none());
        assert!(sync_archive(&[(r.join("b.txt"), "relative/path")]).is_err());
    }

    #[test]
    fn buildkit_only_syntax_is_detected() {
        assert!(!needs_buildkit(
            "FROM a\nCOPY --chown=1:1 . /app\nRUN make\n"
        ));
        assert!(needs_buildkit("# syntax=docker/dockerfile:1\nFROM a\n"));
        assert!(needs_buildkit(
            "FROM a\nRUN --mount=type=cache,target=/c make\n"
        ));
        assert!(needs_buildkit("FROM a\nCOPY <<EOF /x\nhi\nEOF\n"));
        assert!(!needs_buildkit(
            "FROM a\n# RUN --mount is only a comment here\n"
        ));
    }

    #[test]
    fn tar_from_bytes_round_trips() {
        let t = tar_from_bytes(&[
            ("/www/index.html", 0o644, b"hi".as_slice()),
            ("/a", 0o600, b"".as_slice()),
        ])
        .unwrap();
        let e = read_tar(&t).unwrap();
        assert_eq!(names(&e), vec!["a", "www/index.html"]);
        assert_eq!(e[0].mode, 0o600);
        assert_eq!(e[1].data, Bytes::from_static(b"hi"));
    }
}
