//! What a syncback must change locally, decided from two listings (no I/O here).
//!
//! Like rsync's quick check, a file whose size and mtime agree on both sides is taken as equal;
//! one whose size agrees but mtime does not is compared by content hash (asked for only then);
//! everything else is copied. A file about to be copied whose content already sits locally under
//! a name that is going away is renamed (or copied locally) instead of transferred again.

use std::collections::{BTreeMap, BTreeSet};
use stilt_watch::ignore::DockerIgnore;

/// One file or directory of either side, relative to its root (`a/b.txt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub dir: bool,
    /// A symbolic link (compared by target, never followed).
    pub link: bool,
    /// Permission bits.
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Which relative paths take part in a syncback.
pub struct Filter {
    paths: Vec<String>,
    ignores: DockerIgnore,
    protected: Vec<String>,
}

impl Filter {
    /// `ignores` follow rsync's `--exclude`: a pattern without a slash matches a name at any
    /// depth, one with a slash matches from the root.
    pub fn new(paths: &[String], ignores: &[String], protected: &[String]) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for p in ignores {
            let p = p.trim().trim_end_matches('/');
            if p.is_empty() {
                continue;
            }
            if p.contains('/') {
                patterns.push(p.trim_start_matches('/').to_string());
            } else {
                patterns.push(p.to_string());
                patterns.push(format!("**/{p}"));
            }
        }
        let ignores = DockerIgnore::from_patterns("/", "syncback ignore", &patterns)
            .map_err(|e| format!("invalid ignore pattern: {e}"))?;
        Ok(Self {
            paths: paths
                .iter()
                .map(|p| p.trim_matches('/').to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            ignores,
            protected: protected.to_vec(),
        })
    }

    /// A protected name anywhere in the path: never written, never deleted.
    pub fn protected(&self, rel: &str) -> bool {
        rel.split('/')
            .any(|c| self.protected.iter().any(|p| p == c))
    }

    /// Whether `rel` is synced (inside `paths`, not ignored, not protected).
    pub fn wanted(&self, rel: &str) -> bool {
        !self.protected(rel) && self.in_paths(rel) && !self.ignores.matches_rel(rel)
    }

    /// Whether a directory must be walked to reach wanted paths (it is wanted, or on the way to
    /// one of `paths`).
    pub fn descend(&self, rel_dir: &str) -> bool {
        if self.protected(rel_dir) || self.ignores.can_skip_dir_rel(rel_dir) {
            return false;
        }
        self.in_paths(rel_dir)
            || self
                .paths
                .iter()
                .any(|p| p.starts_with(&format!("{rel_dir}/")))
    }

    fn in_paths(&self, rel: &str) -> bool {
        self.paths.is_empty()
            || self
                .paths
                .iter()
                .any(|p| rel == p || rel.starts_with(&format!("{p}/")))
    }
}

/// A relative path that stays inside its root.
pub fn safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The first comparison, before any content is looked at.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    pub mkdirs: Vec<(String, u32)>,
    /// Differ in size, or missing locally.
    pub copies: Vec<String>,
    /// Same size, different mtime: equal only if their hashes are.
    pub check: Vec<String>,
    /// Symbolic links in the container: equal only if the local link has the same target.
    pub links: Vec<String>,
    /// Equal contents whose permission bits differ.
    pub chmods: Vec<(String, u32)>,
    /// Local files (and dirs) gone from the container; removed only when `delete` is set.
    pub gone_files: Vec<String>,
    pub gone_dirs: Vec<String>,
    pub unchanged: usize,
}

pub fn compare(
    remote: &BTreeMap<String, Node>,
    local: &BTreeMap<String, Node>,
    filter: &Filter,
) -> Comparison {
    let mut c = Comparison::default();
    for (rel, r) in remote {
        if !safe_rel(rel) || !filter.wanted(rel) {
            continue;
        }
        if r.link {
            c.links.push(rel.clone());
            continue;
        }
        match local.get(rel) {
            _ if r.dir => {
                if !local.get(rel).is_some_and(|l| l.dir) {
                    c.mkdirs.push((rel.clone(), r.mode));
                }
            }
            Some(l) if !l.dir && !l.link && l.size == r.size && l.mtime_ns == r.mtime_ns => {
                if l.mode & 0o777 != r.mode & 0o777 {
                    c.chmods.push((rel.clone(), r.mode));
                } else {
                    c.unchanged += 1;
                }
            }
            Some(l) if !l.dir && !l.link && l.size == r.size => c.check.push(rel.clone()),
            _ => c.copies.push(rel.clone()),
        }
    }
    for (rel, l) in local {
        if !filter.wanted(rel) {
            continue;
        }
        let kept = remote.get(rel).is_some_and(|r| r.dir == l.dir);
        if !kept {
            if l.dir {
                c.gone_dirs.push(rel.clone());
            } else {
                c.gone_files.push(rel.clone());
            }
        }
    }
    c
}

/// Pairs files to copy with local files of the same size that are going away: candidates for a
/// rename, to be confirmed by hash. Each local file is used once.
pub fn rename_candidates(
    copies: &[String],
    remote: &BTreeMap<String, Node>,
    local: &BTreeMap<String, Node>,
    gone_files: &[String],
) -> Vec<(String, String)> {
    let mut by_size: BTreeMap<u64, Vec<&String>> = BTreeMap::new();
    for g in gone_files {
        if let Some(l) = local.get(g).filter(|l| l.size > 0 && !l.link) {
            by_size.entry(l.size).or_default().push(g);
        }
    }
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for to in copies {
        if local.contains_key(to) {
            continue;
        }
        let Some(r) = remote.get(to) else { continue };
        if let Some(from) = by_size
            .get(&r.size)
            .and_then(|v| v.iter().find(|g| !used.contains(**g)))
        {
            used.insert((*from).clone());
            out.push(((*from).clone(), to.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mtime: i64) -> Node {
        Node {
            dir: false,
            link: false,
            mode: 0o644,
            size,
            mtime_ns: mtime,
        }
    }

    fn dir() -> Node {
        Node {
            dir: true,
            link: false,
            mode: 0o755,
            size: 0,
            mtime_ns: 0,
        }
    }

    fn tree(entries: &[(&str, Node)]) -> BTreeMap<String, Node> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn protected() -> Vec<String> {
        [".git", "Tiltfile", "Dockerfile", "tilt_modules"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn quick_check_then_hash_check_then_copy() {
        let remote = tree(&[
            ("same", file(3, 1)),
            ("touched", file(3, 2)),
            ("grown", file(9, 1)),
            ("new", file(1, 1)),
            ("sub", dir()),
            ("sub/x", file(1, 1)),
        ]);
        let local = tree(&[
            ("same", file(3, 1)),
            ("touched", file(3, 1)),
            ("grown", file(3, 1)),
            ("stale", file(5, 1)),
            ("olddir", dir()),
        ]);
        let f = Filter::new(&[], &[], &protected()).unwrap();
        let c = compare(&remote, &local, &f);
        assert_eq!(c.unchanged, 1);
        assert_eq!(c.check, vec!["touched"]);
        assert_eq!(c.copies, vec!["grown", "new", "sub/x"]);
        assert_eq!(c.mkdirs, vec![("sub".to_string(), 0o755)]);
        assert_eq!(c.gone_files, vec!["stale"]);
        assert_eq!(c.gone_dirs, vec!["olddir"]);
    }

    #[test]
    fn protected_ignored_and_outside_paths_are_never_touched() {
        let remote = tree(&[
            ("Dockerfile", file(1, 9)),
            ("src/.git/HEAD", file(1, 9)),
            ("src/a.js", file(1, 9)),
            ("node_modules/x/y.js", file(1, 9)),
            ("src/node_modules/z.js", file(1, 9)),
            ("docs/readme", file(1, 9)),
            ("../escape", file(1, 9)),
        ]);
        let local = tree(&[
            ("Tiltfile", file(5, 1)),
            (".git/config", file(5, 1)),
            ("docs/old", file(5, 1)),
            ("src/gone.js", file(5, 1)),
        ]);
        let f = Filter::new(
            &["src".into(), "node_modules".into()],
            &["node_modules".into()],
            &protected(),
        )
        .unwrap();
        let c = compare(&remote, &local, &f);
        assert_eq!(c.copies, vec!["src/a.js"]);
        assert_eq!(c.gone_files, vec!["src/gone.js"]);
        assert!(f.descend("src"));
        assert!(!f.descend("docs"));
        assert!(!f.descend(".git"));
        assert!(!f.descend("node_modules"));
    }

    #[test]
    fn a_rooted_ignore_only_matches_from_the_root() {
        let f = Filter::new(&[], &["/build".into(), "*.tmp".into()], &[]).unwrap();
        assert!(!f.wanted("build/out"));
        assert!(f.wanted("src/build/out"));
        assert!(!f.wanted("a/b/c.tmp"));
    }

    #[test]
    fn a_changed_mode_is_a_chmod_not_a_copy() {
        let mut exe = file(3, 1);
        exe.mode = 0o755;
        let c = compare(
            &tree(&[("run.sh", exe)]),
            &tree(&[("run.sh", file(3, 1))]),
            &Filter::new(&[], &[], &[]).unwrap(),
        );
        assert_eq!(c.chmods, vec![("run.sh".to_string(), 0o755)]);
        assert!(c.copies.is_empty());
    }

    #[test]
    fn renames_pair_new_names_with_same_size_files_going_away() {
        let remote = tree(&[("b", file(7, 2)), ("c", file(8, 2))]);
        let local = tree(&[("a", file(7, 1)), ("d", file(1, 1))]);
        let pairs = rename_candidates(
            &["b".into(), "c".into()],
            &remote,
            &local,
            &["a".into(), "d".into()],
        );
        assert_eq!(pairs, vec![("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn unsafe_relative_paths_are_refused() {
        assert!(safe_rel("a/b"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
            assert!(!safe_rel(bad), "{bad}");
        }
    }
}
