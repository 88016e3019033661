//! The container side from one archive download, for Docker containers where the helper cannot
//! run (read-only file system, no writable directory). Every byte under srcDir crosses once, but
//! only changed files are written locally.

use super::transfer::Remote;
use std::collections::HashMap;
use stilt_docker::{ArchiveEntry, DockerClient, EntryKind};
use stilt_syncer::{Entry, FileKind};

pub struct ArchiveRemote {
    root: String,
    /// Path relative to srcDir → entry and contents.
    entries: HashMap<String, ArchiveEntry>,
    /// Bytes downloaded.
    pub downloaded: u64,
}

impl ArchiveRemote {
    pub async fn download(
        docker: &dyn DockerClient,
        id: &str,
        src_dir: &str,
    ) -> Result<Self, String> {
        let src = src_dir.trim_end_matches('/');
        let archive = docker
            .download_archive(id, if src.is_empty() { "/" } else { src })
            .await
            .map_err(|e| format!("downloading {src_dir}: {e}"))?;
        // Docker names the entries after the directory's own name (`app/x` for `/app`).
        let top = src.rsplit('/').next().unwrap_or_default().to_string();
        Ok(Self::from_entries(src, &top, archive))
    }

    /// A tar of srcDir made in the container by `tar cf - -C <srcDir> .` (pods where the helper
    /// cannot run: the same `tar` live update's fallback needs).
    pub fn from_tar(src_dir: &str, tar: &[u8]) -> Result<Self, String> {
        let entries = stilt_docker::read_tar(tar)
            .map_err(|e| format!("reading the archive of {src_dir}: {e}"))?;
        Ok(Self::from_entries(
            src_dir.trim_end_matches('/'),
            ".",
            entries,
        ))
    }

    /// Entries named `<top>/<rel>` (`top` empty: already relative).
    fn from_entries(src: &str, top: &str, archive: Vec<ArchiveEntry>) -> Self {
        let mut entries = HashMap::new();
        let mut downloaded = 0;
        for e in archive {
            let rel = if top.is_empty() {
                e.path.trim_start_matches("./").to_string()
            } else if e.path == top {
                continue;
            } else if let Some(r) = e.path.strip_prefix(&format!("{top}/")) {
                r.to_string()
            } else {
                continue;
            };
            downloaded += e.data.len() as u64;
            entries.insert(rel, e);
        }
        Self {
            root: src.to_string(),
            entries,
            downloaded,
        }
    }

    fn rel<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .trim_start_matches('/')
    }
}

impl Remote for ArchiveRemote {
    async fn list(&mut self, _root: &str, hash: bool) -> Result<Vec<Entry>, String> {
        Ok(self
            .entries
            .iter()
            .filter_map(|(rel, e)| {
                let kind = match e.kind {
                    EntryKind::File => FileKind::File,
                    EntryKind::Dir => FileKind::Dir,
                    EntryKind::Symlink(_) => FileKind::Symlink,
                    _ => return None,
                };
                Some(Entry {
                    path: rel.clone(),
                    kind,
                    mode: e.mode,
                    size: e.size,
                    mtime_ns: e.mtime as i64 * 1_000_000_000,
                    hash: if hash && kind == FileKind::File {
                        stilt_syncer::proto::hash_bytes(&e.data)
                    } else {
                        vec![]
                    },
                })
            })
            .collect())
    }

    async fn stat_hash(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .entries
            .get(self.rel(path))
            .map(|e| stilt_syncer::proto::hash_bytes(&e.data)))
    }

    async fn read_link(&mut self, path: &str) -> Result<String, String> {
        match self.entries.get(self.rel(path)).map(|e| &e.kind) {
            Some(EntryKind::Symlink(target)) => Ok(target.clone()),
            _ => Err(format!("{path}: not a link in the downloaded archive")),
        }
    }

    async fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.entries
            .get(self.rel(path))
            .map(|e| e.data.to_vec())
            .ok_or_else(|| format!("{path}: not in the downloaded archive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, data: &str) -> ArchiveEntry {
        ArchiveEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            size: data.len() as u64,
            mtime: 1_700_000_000,
            data: data.as_bytes().to_vec().into(),
        }
    }

    #[tokio::test]
    async fn entries_are_relative_to_the_source_directory() {
        let mut r = ArchiveRemote::from_entries(
            "/app",
            "app",
            vec![
                entry("app", EntryKind::Dir, ""),
                entry("app/gen", EntryKind::Dir, ""),
                entry("app/gen/out.txt", EntryKind::File, "generated"),
                entry("app/link", EntryKind::Symlink("gen".into()), ""),
            ],
        );
        let mut listed: Vec<String> = r
            .list("/app", false)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        listed.sort();
        assert_eq!(listed, vec!["gen", "gen/out.txt", "link"]);
        assert_eq!(r.read_link("/app/link").await.unwrap(), "gen");
        assert_eq!(r.read("/app/gen/out.txt").await.unwrap(), b"generated");
        assert_eq!(r.downloaded, 9);
        assert!(r.stat_hash("/app/missing").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_tar_made_with_dash_c_dot_is_relative_to_the_source() {
        let mut r = ArchiveRemote::from_entries(
            "/app",
            ".",
            vec![
                entry(".", EntryKind::Dir, ""),
                entry("./gen", EntryKind::Dir, ""),
                entry("./gen/out.txt", EntryKind::File, "x"),
            ],
        );
        let mut listed: Vec<String> = r
            .list("/app", false)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        listed.sort();
        assert_eq!(listed, vec!["gen", "gen/out.txt"]);
    }
}
