//! `.dockerignore` / `.tiltignore` / `ignore=` patterns with moby's semantics.
//!
//! Ground truth is what `docker build` puts in the build context: the Docker
//! CLI walks the context directory (`archive.TarWithOptions`), evaluates each
//! entry with `patternmatcher.MatchesUsingParentResults` carrying per-pattern
//! results from the parent directory, and prunes an excluded directory
//! (`filepath.SkipDir`) unless some `!` pattern *textually* starts with that
//! directory's path. [`DockerIgnore::matches`] reproduces that whole walk for
//! one path, so its answer is "would this path be left out of the context".

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use regex::Regex;

use super::gosyntax::{self, BadPattern};

/// Where a pattern came from, for error messages and [`Explanation`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternOrigin {
    /// A file path (`/repo/.dockerignore`) or a description (`ignore=`).
    pub source: Arc<str>,
    /// 1-based line in `source` (for lists: 1-based index in the list).
    pub line: usize,
}

impl fmt::Display for PatternOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// A pattern that moby would reject (the build would fail with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: invalid ignore pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub origin: PatternOrigin,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// Pattern `foo**` / `foo/**`: `path.starts_with(prefix)`.
    Prefix(String),
    /// Pattern `**...` without other wildcards: `path.ends_with(suffix)`.
    Suffix(String),
    /// Shared: clones of a pattern (every FileWatch's copy of the editor-temp-file rule) and
    /// equal patterns elsewhere use one compiled program and one pool of match caches.
    Regex(Arc<Regex>),
}

/// The compiled regex for `source`, shared with every live pattern that compiled the same one:
/// a thousand FileWatches with the same ignore patterns hold one program, not a thousand.
fn shared_regex(source: &str) -> Result<Arc<Regex>, regex::Error> {
    static COMPILED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<Regex>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = compiled.get(source).and_then(std::sync::Weak::upgrade) {
        return Ok(re);
    }
    let re = Arc::new(Regex::new(source)?);
    // Entries whose patterns are all gone are dropped now and then (amortized O(1)).
    if compiled.len() >= 64 && compiled.len().is_power_of_two() {
        compiled.retain(|_, w| w.strong_count() > 0);
    }
    compiled.insert(source.to_string(), Arc::downgrade(&re));
    Ok(re)
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern, without its `!` (moby's `Pattern.String()`).
    text: String,
    exclusion: bool,
    kind: Kind,
    origin: PatternOrigin,
    /// The regular expression moby would build (Go dialect), for display.
    go_regex: Option<String>,
}

impl Pattern {
    /// The cleaned pattern text without the leading `!`.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// True for `!` (re-include) patterns.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }
    pub fn origin(&self) -> &PatternOrigin {
        &self.origin
    }
    /// The Go regular expression moby compiles this pattern to, when it
    /// uses one (exact/prefix/suffix patterns are matched without a regex).
    pub fn go_regex(&self) -> Option<&str> {
        self.go_regex.as_deref()
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    fn compile(text: String, exclusion: bool, origin: PatternOrigin) -> Result<Self, PatternError> {
        let err = |reason: String| PatternError {
            origin: origin.clone(),
            pattern: if exclusion {
                format!("!{text}")
            } else {
                text.clone()
            },
            reason,
        };
        if gosyntax::go_match(&text, ".") == Err(BadPattern) {
            return Err(err("syntax error in pattern".into()));
        }
        // A port of moby's `Pattern.compile`, including its quirks: only
        // `. + ( ) $` are escaped (its escape bitmap overflows for `| { }`,
        // so those keep their regex meaning), `[...]` is passed through to
        // the regex engine, and a leading `**` selects suffix matching.
        #[derive(PartialEq, Clone, Copy)]
        enum T {
            Exact,
            Prefix,
            Suffix,
            Regexp,
        }
        let mut re = String::from("^");
        let mut ty = T::Exact;
        let chars: Vec<char> = text.chars().collect();
        let mut k = 0;
        let mut i = 0;
        while k < chars.len() {
            let ch = chars[k];
            k += 1;
            if ch == '*' {
                if chars.get(k) == Some(&'*') {
                    k += 1;
                    if chars.get(k) == Some(&'/') {
                        k += 1;
                    }
                    if k >= chars.len() {
                        if ty == T::Exact {
                            ty = T::Prefix;
                        } else {
                            re.push_str(".*");
                            ty = T::Regexp;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        ty = T::Regexp;
                    }
                    if i == 0 {
                        ty = T::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    ty = T::Regexp;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                ty = T::Regexp;
            } else if matches!(ch, '.' | '+' | '(' | ')' | '$') {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if k < chars.len() {
                    re.push('\\');
                    re.push(chars[k]);
                    k += 1;
                    ty = T::Regexp;
                } else {
                    re.push('\\');
                }
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                ty = T::Regexp;
            } else {
                re.push(ch);
            }
            i += 1;
        }
        let (kind, go_regex) = match ty {
            T::Exact => (Kind::Exact, None),
            T::Prefix => (Kind::Prefix(text[..text.len() - 2].to_string()), None),
            T::Suffix => (Kind::Suffix(text[2..].to_string()), None),
            T::Regexp => {
                re.push('$');
                let rust = gosyntax::go_regex_to_rust(&re)
                    .map_err(|e| err(format!("bad pattern ({e})")))?;
                let compiled =
                    shared_regex(&rust).map_err(|e| err(format!("bad pattern ({e})")))?;
                (Kind::Regex(compiled), Some(re))
            }
        };
        Ok(Pattern {
            text,
            exclusion,
            kind,
            origin,
            go_regex,
        })
    }
}

/// Normalise one `.dockerignore` line the way moby's `ignorefile.ReadAll`
/// does, then the way `patternmatcher.New` does. `None` for lines that are
/// not patterns (blank). Comments must be filtered by the caller.
fn normalize_line(line: &str) -> Option<String> {
    let mut p = gosyntax::trim_space(line);
    if p.is_empty() {
        return None;
    }
    let invert = p.starts_with('!');
    if invert {
        p = gosyntax::trim_space(&p[1..]);
    }
    let mut p = p.to_string();
    if !p.is_empty() {
        p = gosyntax::clean(&p);
        if p.len() > 1 && p.starts_with('/') {
            p.remove(0);
        }
    }
    if invert {
        p.insert(0, '!');
    }
    // patternmatcher.New: TrimSpace + Clean again (on the `!`-prefixed text).
    let p = gosyntax::trim_space(&p);
    if p.is_empty() {
        return None;
    }
    Some(gosyntax::clean(p))
}

/// Per-pattern "the parent directory matched this pattern" bits, carried
/// down a tree walk (moby's `MatchInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo(Vec<bool>);

/// The result of evaluating one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The path itself is excluded by the patterns.
    pub excluded: bool,
    /// Index of the pattern that decided `excluded` (the last one to match).
    pub decided_by: Option<usize>,
}

/// An ordered list of `.dockerignore`-style patterns anchored at `base`.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    base: PathBuf,
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl DockerIgnore {
    /// No patterns: ignores nothing.
    pub fn empty(base: impl Into<PathBuf>) -> Self {
        DockerIgnore {
            base: base.into(),
            patterns: Vec::new(),
            exclusions: false,
        }
    }

    /// Patterns given as a list (Tiltfile `ignore=`, `watch_settings(ignore=)`,
    /// or a FileWatch spec). Each entry is treated as one `.dockerignore`
    /// line, except that `#` is not special (moby only strips comments when
    /// reading a file).
    pub fn from_patterns<S: AsRef<str>>(
        base: impl Into<PathBuf>,
        source: &str,
        patterns: &[S],
    ) -> Result<Self, PatternError> {
        let mut d = Self::empty(base);
        let source: Arc<str> = source.into();
        for (idx, p) in patterns.iter().enumerate() {
            d.push_line(
                p.as_ref(),
                PatternOrigin {
                    source: source.clone(),
                    line: idx + 1,
                },
            )?;
        }
        Ok(d)
    }

    /// Parse the text of a `.dockerignore` / `.tiltignore` file: a UTF-8 BOM
    /// on the first line is dropped, lines *starting* with `#` are comments,
    /// surrounding white space is trimmed, blank lines are skipped.
    pub fn parse(base: impl Into<PathBuf>, source: &str, text: &str) -> Result<Self, PatternError> {
        let mut d = Self::empty(base);
        let source: Arc<str> = source.into();
        for (idx, line) in text.split('\n').enumerate() {
            let mut line = line.strip_suffix('\r').unwrap_or(line);
            if idx == 0 {
                line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            d.push_line(
                line,
                PatternOrigin {
                    source: source.clone(),
                    line: idx + 1,
                },
            )?;
        }
        Ok(d)
    }

    /// Read an ignore file. A missing file yields an empty matcher.
    pub fn from_file(base: impl Into<PathBuf>, file: &Path) -> Result<Self, IgnoreFileError> {
        match std::fs::read(file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                Ok(Self::parse(base, &file.display().to_string(), &text)?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty(base)),
            Err(e) => Err(IgnoreFileError::Io {
                path: file.to_path_buf(),
                source: e,
            }),
        }
    }

    fn push_line(&mut self, line: &str, origin: PatternOrigin) -> Result<(), PatternError> {
        let Some(p) = normalize_line(line) else {
            return Ok(());
        };
        let (exclusion, text) = match p.strip_prefix('!') {
            Some("") => {
                return Err(PatternError {
                    origin,
                    pattern: p,
                    reason: "illegal exclusion pattern: \"!\"".into(),
                });
            }
            Some(rest) => (true, rest.to_string()),
            None => (false, p),
        };
        self.exclusions |= exclusion;
        self.patterns
            .push(Pattern::compile(text, exclusion, origin)?);
        Ok(())
    }

    /// Append another pattern list (same base required for meaningful results).
    pub fn extend(&mut self, other: DockerIgnore) {
        self.exclusions |= other.exclusions;
        self.patterns.extend(other.patterns);
    }

    pub fn base(&self) -> &Path {
        &self.base
    }
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
    /// Whether any `!` pattern exists (moby's `Exclusions()`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// moby's `MatchesUsingParentResults`: evaluate `rel` (a cleaned,
    /// slash-separated path relative to the base) given its parent's info.
    /// Pass `None` for a top-level entry or when the parent is unknown.
    pub fn evaluate(&self, rel: &str, parent: Option<&MatchInfo>) -> (Evaluation, MatchInfo) {
        let parent = parent.filter(|p| !p.0.is_empty());
        let mut info = vec![false; self.patterns.len()];
        let mut excluded = false;
        let mut decided_by = None;
        let parent_dirs: Option<Vec<&str>> = match (parent, rel.rfind('/')) {
            (None, Some(pos)) => Some(rel[..pos].split('/').collect()),
            _ => None,
        };
        for (i, pat) in self.patterns.iter().enumerate() {
            let mut m = parent.is_some_and(|p| p.0.get(i).copied().unwrap_or(false));
            if !m {
                if pat.exclusion != excluded {
                    continue;
                }
                m = pat.matches(rel);
                if !m && let Some(dirs) = &parent_dirs {
                    let mut prefix = String::new();
                    for d in dirs {
                        if !prefix.is_empty() {
                            prefix.push('/');
                        }
                        prefix.push_str(d);
                        if pat.matches(&prefix) {
                            m = true;
                            break;
                        }
                    }
                }
            }
            info[i] = m;
            if m {
                excluded = !pat.exclusion;
                decided_by = Some(i);
            }
        }
        (
            Evaluation {
                excluded,
                decided_by,
            },
            MatchInfo(info),
        )
    }

    /// Docker's directory pruning rule, for a directory that evaluated as
    /// excluded: it is skipped unless some `!` pattern's text starts with
    /// `dir/`.
    pub fn prunes_excluded_dir(&self, rel_dir: &str) -> bool {
        if !self.exclusions {
            return true;
        }
        let dir_slash = format!("{rel_dir}/");
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// Full walk from the base down to `rel`, as Docker's context walk does.
    fn walk(&self, rel: &str) -> Verdict {
        if self.patterns.is_empty() || rel == "." || rel.is_empty() {
            return Verdict::Included;
        }
        let comps: Vec<&str> = rel.split('/').collect();
        let mut info: Option<MatchInfo> = None;
        let mut end = 0;
        for (n, comp) in comps.iter().enumerate() {
            end += comp.len() + usize::from(n > 0);
            let sub = &rel[..end];
            let (ev, mi) = self.evaluate(sub, info.as_ref());
            let is_last = n + 1 == comps.len();
            if is_last {
                return match ev.decided_by {
                    Some(i) if ev.excluded => Verdict::Excluded {
                        pattern: i,
                        via: None,
                    },
                    Some(i) => Verdict::Reincluded { pattern: i },
                    None => Verdict::Included,
                };
            }
            if ev.excluded && self.prunes_excluded_dir(sub) {
                return Verdict::Excluded {
                    pattern: ev.decided_by.unwrap_or(0),
                    via: Some(sub.to_string()),
                };
            }
            info = Some(mi);
        }
        Verdict::Included
    }

    /// Would `path` be left out of a Docker build context rooted at the base?
    /// `path` may be absolute or relative to the base; paths outside the
    /// base are never ignored.
    pub fn matches(&self, path: &Path) -> bool {
        match self.rel(path) {
            Some(rel) => matches!(self.walk(&rel), Verdict::Excluded { .. }),
            None => false,
        }
    }

    /// Like [`matches`](Self::matches) for a slash-separated path relative to
    /// the base (it is cleaned first).
    pub fn matches_rel(&self, rel: &str) -> bool {
        matches!(self.walk(&gosyntax::clean(rel)), Verdict::Excluded { .. })
    }

    /// True when nothing under directory `dir` can be part of the context:
    /// the directory is excluded and Docker would prune it (no `!` pattern
    /// could re-include anything beneath it). Safe for a watcher to skip.
    /// Invariant: `can_skip_dir(d)` implies `matches(d/x)` for every `x`.
    pub fn can_skip_dir(&self, dir: &Path) -> bool {
        match self.rel(dir) {
            Some(rel) => self.can_skip_dir_rel(&rel),
            None => false,
        }
    }

    /// [`can_skip_dir`](Self::can_skip_dir) for a base-relative path.
    pub fn can_skip_dir_rel(&self, rel: &str) -> bool {
        let rel = gosyntax::clean(rel);
        match self.walk(&rel) {
            Verdict::Excluded { via: Some(_), .. } => true,
            Verdict::Excluded { via: None, .. } => self.prunes_excluded_dir(&rel),
            _ => false,
        }
    }

    /// Why `path` is (or is not) ignored. `None` when no pattern matched.
    pub fn explain(&self, path: &Path) -> Option<Explanation> {
        let rel = self.rel(path)?;
        self.explain_rel(&rel)
    }

    /// [`explain`](Self::explain) for a base-relative path.
    pub fn explain_rel(&self, rel: &str) -> Option<Explanation> {
        let rel = gosyntax::clean(rel);
        let (ignored, idx, via) = match self.walk(&rel) {
            Verdict::Included => return None,
            Verdict::Excluded { pattern, via } => (true, pattern, via),
            Verdict::Reincluded { pattern } => (false, pattern, None),
        };
        let p = &self.patterns[idx];
        Some(Explanation {
            path: rel,
            ignored,
            pattern: if p.exclusion {
                format!("!{}", p.text)
            } else {
                p.text.clone()
            },
            origin: p.origin.clone(),
            via_dir: via,
        })
    }

    fn rel(&self, path: &Path) -> Option<String> {
        let rel = if path.is_absolute() {
            path.strip_prefix(&self.base).ok()?
        } else {
            path
        };
        let mut parts: Vec<String> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(if parts.is_empty() {
            ".".to_string()
        } else {
            parts.join("/")
        })
    }
}

enum Verdict {
    Included,
    Excluded { pattern: usize, via: Option<String> },
    Reincluded { pattern: usize },
}

/// Why a path is or is not ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The base-relative path that was asked about.
    pub path: String,
    /// Final answer.
    pub ignored: bool,
    /// The deciding pattern as written after normalisation (`!` included).
    pub pattern: String,
    /// File and line (or list index) of the deciding pattern.
    pub origin: PatternOrigin,
    /// When the path is ignored because an ancestor directory was pruned,
    /// that directory (base-relative).
    pub via_dir: Option<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.via_dir, self.ignored) {
            (Some(dir), _) => write!(
                f,
                "{} is ignored: its directory {dir} is excluded by {:?} ({})",
                self.path, self.pattern, self.origin
            ),
            (None, true) => write!(
                f,
                "{} is ignored by {:?} ({})",
                self.path, self.pattern, self.origin
            ),
            (None, false) => write!(
                f,
                "{} is re-included by {:?} ({})",
                self.path, self.pattern, self.origin
            ),
        }
    }
}

/// Failure to load an ignore file.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreFileError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("gitignore {path}: {message}")]
    Git { path: PathBuf, message: String },
}
