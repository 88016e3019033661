//! Ignore semantics.
//!
//! * [`DockerIgnore`]: `.dockerignore`, `.tiltignore` and Tiltfile `ignore=`
//!   patterns, reproducing moby's `patternmatcher` and the Docker CLI's
//!   context walk exactly (see the module docs of `docker`).
//! * [`GitIgnore`]: `.gitignore` files through the `ignore` crate.
//! * [`Ignores`]: an ordered set of the above; a path is ignored when *any*
//!   member ignores it (how Tilt combines a FileWatch's ignore lists).
//!
//! Every matcher answers three questions: is this path ignored, can this
//! whole directory be skipped (so the watcher never registers it), and why.
//!
//! One semantics for every pattern list: the Docker CLI's. Tilt evaluates
//! `.tiltignore` and `ignore=` with its fork `tilt-dev/dockerignore`, which
//! matches each pattern against the path and all its ancestors without
//! Docker's directory pruning. The two agree except with `!` patterns that
//! try to re-include something inside an excluded directory when the `!`
//! pattern does not textually start with that directory (`docs` then
//! `!**/keep.md`, or `src` then `!src/*/*.go`): Docker leaves such files out
//! of the build context, Tilt's fork would still watch them. We follow
//! Docker, because a change to a file that cannot reach the image should not
//! trigger a build; `tests/data/dockerignore_table.txt` pins these cases.

mod docker;
mod gosyntax;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use docker::{
    DockerIgnore, Evaluation, Explanation, IgnoreFileError, MatchInfo, Pattern, PatternError,
    PatternOrigin,
};

/// A `.gitignore` matcher (one or more gitignore files sharing a root).
#[derive(Debug, Clone)]
pub struct GitIgnore {
    inner: ::ignore::gitignore::Gitignore,
}

impl GitIgnore {
    /// Build from gitignore files; `root` is the directory the patterns are
    /// relative to (normally the directory holding the `.gitignore`).
    /// Missing files are skipped.
    pub fn from_files(root: &Path, files: &[PathBuf]) -> Result<Self, IgnoreFileError> {
        let mut b = ::ignore::gitignore::GitignoreBuilder::new(root);
        for f in files {
            if !f.exists() {
                continue;
            }
            if let Some(e) = b.add(f) {
                return Err(IgnoreFileError::Git {
                    path: f.clone(),
                    message: e.to_string(),
                });
            }
        }
        let inner = b.build().map_err(|e| IgnoreFileError::Git {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(GitIgnore { inner })
    }

    /// Build from gitignore lines.
    pub fn from_lines<S: AsRef<str>>(root: &Path, lines: &[S]) -> Result<Self, IgnoreFileError> {
        let mut b = ::ignore::gitignore::GitignoreBuilder::new(root);
        for l in lines {
            b.add_line(None, l.as_ref())
                .map_err(|e| IgnoreFileError::Git {
                    path: root.to_path_buf(),
                    message: e.to_string(),
                })?;
        }
        let inner = b.build().map_err(|e| IgnoreFileError::Git {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(GitIgnore { inner })
    }

    pub fn root(&self) -> &Path {
        self.inner.path()
    }

    fn matched(&self, path: &Path, is_dir: bool) -> ::ignore::Match<&::ignore::gitignore::Glob> {
        if !path.starts_with(self.inner.path()) {
            return ::ignore::Match::None;
        }
        self.inner.matched_path_or_any_parents(path, is_dir)
    }

    /// Whether `path` is ignored (a parent directory being ignored counts:
    /// git never looks inside an ignored directory).
    pub fn matches(&self, path: &Path, is_dir: bool) -> bool {
        self.matched(path, is_dir).is_ignore()
    }

    /// A gitignored directory can always be skipped: a `!` rule cannot
    /// re-include a file whose parent directory is excluded.
    pub fn can_skip_dir(&self, dir: &Path) -> bool {
        self.matches(dir, true)
    }

    pub fn explain(&self, path: &Path, is_dir: bool) -> Option<Explanation> {
        let (ignored, glob) = match self.matched(path, is_dir) {
            ::ignore::Match::None => return None,
            ::ignore::Match::Ignore(g) => (true, g),
            ::ignore::Match::Whitelist(g) => (false, g),
        };
        let rel = path.strip_prefix(self.inner.path()).unwrap_or(path);
        Some(Explanation {
            path: rel.display().to_string(),
            ignored,
            pattern: glob.original().to_string(),
            origin: PatternOrigin {
                source: glob
                    .from()
                    .map_or_else(|| "gitignore".to_string(), |p| p.display().to_string())
                    .into(),
                line: 0,
            },
            via_dir: None,
        })
    }
}

/// Editor and tool temp files that never trigger anything, as in Tilt's
/// `internal/ignore/ephemeral.go` (vim's `4913` probe and swap files, emacs
/// lock/auto-save files, flymake, JetBrains safe-write files, kate swap
/// files, `.idea/` contents, Go's umask probe, `*~` backups).
pub const EPHEMERAL_PATTERNS: &[&str] = &[
    "**/4913",
    "**/*~",
    "**/.*.swp",
    "**/.*.swx",
    "**/.*.swo",
    "**/.*.swn",
    "**/.#*",
    "**/#*#",
    "**/flymake_*.*",
    "**/*___jb_old___",
    "**/*___jb_tmp___",
    "**/.idea/**",
    "**/.*.kate-swp",
    "**/*-go-tmp-umask",
];

/// [`EPHEMERAL_PATTERNS`] as a rule matching anywhere on the file system. Compiled once: every
/// FileWatch has it, and compiling the patterns was most of setting up a watch.
pub fn ephemeral_rule() -> IgnoreRule {
    static RULE: std::sync::LazyLock<IgnoreRule> = std::sync::LazyLock::new(|| {
        DockerIgnore::from_patterns("/", "editor temp files", EPHEMERAL_PATTERNS)
            .expect("ephemeral patterns are valid")
            .into()
    });
    RULE.clone()
}

/// One member of an [`Ignores`] set.
#[derive(Debug, Clone)]
pub enum IgnoreRule {
    Docker(DockerIgnore),
    Git(GitIgnore),
    /// A whole directory (itself and everything below it).
    Dir(PathBuf),
}

impl From<DockerIgnore> for IgnoreRule {
    fn from(d: DockerIgnore) -> Self {
        IgnoreRule::Docker(d)
    }
}
impl From<GitIgnore> for IgnoreRule {
    fn from(g: GitIgnore) -> Self {
        IgnoreRule::Git(g)
    }
}

/// A set of ignore rules; a path is ignored when any rule ignores it.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Ignores {
    rules: Arc<Vec<IgnoreRule>>,
}

impl Ignores {
    pub fn new(rules: impl IntoIterator<Item = IgnoreRule>) -> Self {
        Ignores {
            rules: Arc::new(rules.into_iter().collect()),
        }
    }

    /// Ignore nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Convenience: one `.dockerignore`-style list anchored at `base`.
    pub fn patterns<S: AsRef<str>>(base: &Path, patterns: &[S]) -> Result<Self, PatternError> {
        Ok(Self::new([DockerIgnore::from_patterns(
            base, "ignore", patterns,
        )?
        .into()]))
    }

    /// From FileWatch-style ignore definitions `(basePath, patterns)`:
    /// `.dockerignore` patterns relative to `basePath`, or, when `patterns`
    /// is empty, all of `basePath`.
    pub fn from_defs<P, S>(
        defs: impl IntoIterator<Item = (P, Vec<S>)>,
    ) -> Result<Self, PatternError>
    where
        P: Into<PathBuf>,
        S: AsRef<str>,
    {
        let mut rules = Vec::new();
        for (base, patterns) in defs {
            let base = base.into();
            if patterns.is_empty() {
                rules.push(IgnoreRule::Dir(base));
            } else {
                let source = format!("ignore (base {})", base.display());
                rules.push(DockerIgnore::from_patterns(base, &source, &patterns)?.into());
            }
        }
        Ok(Self::new(rules))
    }

    pub fn rules(&self) -> &[IgnoreRule] {
        &self.rules
    }

    /// Is the absolute `path` ignored? `is_dir` only matters for gitignore
    /// rules with a trailing `/`; pass `false` when unknown (deleted paths).
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        self.rules.iter().any(|r| match r {
            IgnoreRule::Docker(d) => d.matches(path),
            IgnoreRule::Git(g) => g.matches(path, is_dir),
            IgnoreRule::Dir(d) => path.starts_with(d),
        })
    }

    /// Can the watcher skip the directory `dir` and everything below it?
    pub fn can_skip_dir(&self, dir: &Path) -> bool {
        self.rules.iter().any(|r| match r {
            IgnoreRule::Docker(d) => d.can_skip_dir(dir),
            IgnoreRule::Git(g) => g.can_skip_dir(dir),
            IgnoreRule::Dir(d) => dir.starts_with(d),
        })
    }

    /// The first rule that ignores `path`, explained; else the first rule
    /// whose `!` pattern re-included it; else `None`.
    pub fn explain(&self, path: &Path, is_dir: bool) -> Option<Explanation> {
        let mut reincluded = None;
        for r in self.rules.iter() {
            let e = match r {
                IgnoreRule::Docker(d) => d.explain(path),
                IgnoreRule::Git(g) => g.explain(path, is_dir),
                IgnoreRule::Dir(d) => path.starts_with(d).then(|| Explanation {
                    path: path.display().to_string(),
                    ignored: true,
                    pattern: String::new(),
                    origin: PatternOrigin {
                        source: format!("ignored directory {}", d.display()).into(),
                        line: 0,
                    },
                    via_dir: Some(d.display().to_string()),
                }),
            };
            match e {
                Some(e) if e.ignored => return Some(e),
                Some(e) if reincluded.is_none() => reincluded = Some(e),
                _ => {}
            }
        }
        reincluded
    }
}
