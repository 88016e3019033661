//! Extension repositories, the places `load('ext://…')` reads from.
//!
//! A repo URL is either local (an absolute directory or `file://` URL, used in place, never
//! copied) or remote (`git://`, `https://`, `http://`, `ssh://`), which is cloned with the `git`
//! CLI into a cache shared by every Stilt on the machine: `$STILT_HOME/tilt_modules/<host>/<path>`
//! (Tilt keeps `tilt_modules` too), and a repo pinned to a `ref` into `<host>/<path>@<ref>`, so
//! one Tiltfile can load the same repo pinned and unpinned without the copies flipping (each
//! flip would be a file change that reloads the Tiltfile). What happens to a cached copy is decided by [`decide`], as in
//! Tilt's ExtensionRepo reconciler:
//!
//! - no copy yet → clone (then check out `ref` when one is given);
//! - pinned (`ref` set and not `HEAD`) and the ref is in the copy → check it out, no network;
//! - pinned to a ref the copy lacks → fetch, then check out;
//! - unpinned → fetch once per process (a `stilt up` session), then use the copy;
//! - asked (`force`: the ExtensionRepo's fetch request, `stilt ext fetch`) → fetch.
//!
//! A failed fetch over an existing copy is not an error: the last good copy is used and
//! [`Checkout::stale_reason`] names the URL and git's message. A failed clone is an error naming
//! the URL. Git runs with prompts disabled and a deadline, so an offline machine fails fast.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The default extension repository (Tilt's).
pub const DEFAULT_REPO_URL: &str = "https://github.com/tilt-dev/tilt-extensions";

/// Annotation on an ExtensionRepo the Tiltfile did not register and only built-in extensions
/// (`ext://syncback`) name: nothing needs its files, so the engine never fetches it.
pub const ANN_BUILTIN_ONLY: &str = "stilt.dev/builtin-only";

/// Annotation on an Extension Stilt serves itself: resolved to the built-in module, no repo.
pub const ANN_BUILTIN: &str = "stilt.dev/builtin";

/// The path an Extension Stilt serves itself resolves to (never on disk).
pub fn builtin_path(name: &str) -> String {
    format!("<stilt>/ext/{name}/Tiltfile")
}

/// Subdirectory of `$STILT_HOME` holding cloned repos.
pub const CACHE_DIR: &str = "tilt_modules";

/// How long one git command may run (a clone of tilt-extensions takes a few seconds).
const GIT_DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error(
        "extension repo URL {0:?} is not supported: use an absolute directory, file://, git://, https://, http:// or ssh://"
    )]
    UnsupportedUrl(String),
    #[error("file paths must be absolute: {0}")]
    RelativePath(String),
    #[error(
        "spec.ref is not supported on local extension repos ({0}); use a git:// or https:// URL to pin a ref"
    )]
    RefOnLocal(String),
    #[error("extension repo {url}: {path} is not a directory")]
    NotADirectory { url: String, path: String },
    #[error("cloning extension repo {url}: {msg}")]
    Clone { url: String, msg: String },
    #[error("extension repo {url}: ref {ref:?} not found ({msg})")]
    Ref {
        url: String,
        r#ref: String,
        msg: String,
    },
    #[error("extension repo {url}: {msg}")]
    Git { url: String, msg: String },
}

/// Where a repo URL lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// Used in place.
    Local(PathBuf),
    /// Cloned into the cache at this path relative to the cache root.
    Remote { url: String, rel: PathBuf },
}

/// Classify a repo URL (pure).
pub fn locate(url: &str) -> Result<Location, Error> {
    if let Some(p) = url.strip_prefix("file://") {
        if !p.starts_with('/') {
            return Err(Error::RelativePath(url.to_owned()));
        }
        return Ok(Location::Local(PathBuf::from(p)));
    }
    if url.starts_with('/') {
        return Ok(Location::Local(PathBuf::from(url)));
    }
    let rest = ["https://", "http://", "git://", "ssh://"]
        .iter()
        .find_map(|s| url.strip_prefix(s))
        .ok_or_else(|| Error::UnsupportedUrl(url.to_owned()))?;
    // host[:port]/path → host_port/path; user@ and a trailing `.git` or `/` dropped; no `..`.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let mut rel = PathBuf::new();
    for (i, seg) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
        if seg == "." || seg == ".." {
            return Err(Error::UnsupportedUrl(url.to_owned()));
        }
        let seg: String = seg
            .chars()
            .map(|c| match c {
                ':' if i == 0 => '_',
                c if c.is_ascii_alphanumeric() || "-_.~".contains(c) => c,
                _ => '_',
            })
            .collect();
        rel.push(seg);
    }
    if rel.as_os_str().is_empty() {
        return Err(Error::UnsupportedUrl(url.to_owned()));
    }
    Ok(Location::Remote {
        url: url.to_owned(),
        rel,
    })
}

/// Whether `ref` pins a version (Tilt: set and not `HEAD`).
pub fn is_pinned(r#ref: &str) -> bool {
    !r#ref.is_empty() && r#ref != "HEAD"
}

/// What to do with a remote repo's cached copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Use the copy as it is.
    Use,
    /// Check out the pinned ref, which the copy has (no network).
    Checkout,
    /// Fetch, then check out the pinned ref or the remote's default branch.
    Fetch,
    /// No copy yet: clone.
    Clone,
}

/// The facts [`decide`] needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct State {
    /// The cached copy exists.
    pub exists: bool,
    /// `ref` is set and not `HEAD`.
    pub pinned: bool,
    /// The copy already has the pinned ref.
    pub has_ref: bool,
    /// This process fetched (or cloned) the repo already.
    pub fetched_this_session: bool,
    /// A fetch was asked for.
    pub force: bool,
}

/// Decide what to do with a remote repo (pure; see the crate docs).
pub fn decide(s: State) -> Action {
    if !s.exists {
        Action::Clone
    } else if s.force {
        Action::Fetch
    } else if s.pinned {
        if s.has_ref {
            Action::Checkout
        } else {
            Action::Fetch
        }
    } else if s.fetched_this_session {
        Action::Use
    } else {
        Action::Fetch
    }
}

/// A usable copy of a repo.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    /// The repo's directory.
    pub path: PathBuf,
    /// The commit checked out ("" for a local folder).
    pub checkout_ref: String,
    /// When the copy was last fetched (a local folder: its modification time).
    pub fetched_at: Option<SystemTime>,
    /// Set when a fetch failed and an older copy is used: names the URL and why.
    pub stale_reason: String,
    /// Whether this call changed the files (cloned, fetched a new commit or checked out another).
    pub changed: bool,
}

/// The shared cache of cloned repos.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Repos fetched by this process (the "session"), by cache path.
fn fetched() -> &'static Mutex<HashSet<PathBuf>> {
    static F: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    F.get_or_init(Default::default)
}

/// One git operation on the cache at a time in this process (the loader and the reconcilers
/// share it).
fn git_lock() -> &'static Mutex<()> {
    static L: OnceLock<Mutex<()>> = OnceLock::new();
    L.get_or_init(Default::default)
}

impl Cache {
    /// A cache rooted at `root` (normally `$STILT_HOME/tilt_modules`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    /// The cache under a Stilt home directory.
    pub fn in_home(home: &Path) -> Self {
        Cache::new(home.join(CACHE_DIR))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a repo URL's files are at `ref` (for a remote one: its cached copy, which may not
    /// exist yet).
    pub fn path_of(&self, url: &str, r#ref: &str) -> Result<PathBuf, Error> {
        Ok(match locate(url)? {
            Location::Local(p) => p,
            Location::Remote { rel, .. } => self.root.join(pinned_rel(&rel, r#ref)),
        })
    }

    /// A usable copy of `url` at `ref`, fetching only as [`decide`] says. Blocks (runs git).
    pub fn ensure(&self, url: &str, r#ref: &str, force: bool) -> Result<Checkout, Error> {
        let rel = match locate(url)? {
            Location::Local(p) => return local(url, r#ref, p),
            Location::Remote { rel, .. } => rel,
        };
        let dest = self.root.join(pinned_rel(&rel, r#ref));
        let _guard = git_lock().lock().unwrap_or_else(|e| e.into_inner());
        let pinned = is_pinned(r#ref);
        let exists = dest.join(".git").is_dir();
        let state = State {
            exists,
            pinned,
            has_ref: exists && pinned && resolve_ref(&dest, r#ref).is_some(),
            fetched_this_session: fetched()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&dest),
            force,
        };
        let before = exists.then(|| head(&dest)).flatten();
        let mut stale_reason = String::new();
        match decide(state) {
            Action::Use => {}
            Action::Checkout => checkout(url, &dest, r#ref)?,
            Action::Clone => {
                clone(url, &dest)?;
                self.mark_fetched(&dest);
                if pinned {
                    checkout(url, &dest, r#ref)?;
                }
            }
            Action::Fetch => {
                match git(&dest, &["fetch", "--quiet", "--tags", "--force", "origin"]) {
                    Ok(_) => self.mark_fetched(&dest),
                    // Offline (or the server is gone): keep the last good copy, unless it
                    // lacks the pinned ref.
                    Err(msg) => {
                        if pinned && !state.has_ref {
                            return Err(Error::Ref {
                                url: url.to_owned(),
                                r#ref: r#ref.to_owned(),
                                msg: format!("fetching failed: {msg}"),
                            });
                        }
                        stale_reason = format!(
                            "fetching {url} failed, using the copy fetched {}: {msg}",
                            fetched_at(&dest)
                                .map(describe_time)
                                .unwrap_or_else(|| "earlier".to_owned())
                        );
                    }
                }
                if pinned {
                    checkout(url, &dest, r#ref)?;
                } else if stale_reason.is_empty() {
                    checkout(url, &dest, "refs/remotes/origin/HEAD")?;
                }
            }
        }
        let after = head(&dest).ok_or_else(|| Error::Git {
            url: url.to_owned(),
            msg: format!("no commit checked out in {}", dest.display()),
        })?;
        Ok(Checkout {
            changed: before.as_deref() != Some(after.as_str()),
            checkout_ref: after,
            fetched_at: fetched_at(&dest),
            path: dest,
            stale_reason,
        })
    }

    fn mark_fetched(&self, dest: &Path) {
        fetched()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dest.to_path_buf());
    }
}

/// The cache path of a repo at `ref`: its own directory when pinned (pure).
pub fn pinned_rel(rel: &Path, r#ref: &str) -> PathBuf {
    if !is_pinned(r#ref) {
        return rel.to_path_buf();
    }
    let safe: String = r#ref
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = rel.file_name().unwrap_or_default().to_os_string();
    name.push(format!("@{safe}"));
    rel.with_file_name(name)
}

fn local(url: &str, r#ref: &str, p: PathBuf) -> Result<Checkout, Error> {
    if is_pinned(r#ref) {
        return Err(Error::RefOnLocal(url.to_owned()));
    }
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(Checkout {
            fetched_at: m.modified().ok(),
            path: p,
            checkout_ref: String::new(),
            stale_reason: String::new(),
            changed: false,
        }),
        _ => Err(Error::NotADirectory {
            url: url.to_owned(),
            path: p.display().to_string(),
        }),
    }
}

/// Seconds since the epoch, for messages ("at 1700000000 (unix time)").
fn describe_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("at {secs} (unix time)")
}

/// When the copy was last fetched: git's FETCH_HEAD (written by every fetch), else the clone.
fn fetched_at(dest: &Path) -> Option<SystemTime> {
    let git = dest.join(".git");
    std::fs::metadata(git.join("FETCH_HEAD"))
        .or_else(|_| std::fs::metadata(git.join("HEAD")))
        .and_then(|m| m.modified())
        .ok()
}

fn head(dest: &Path) -> Option<String> {
    git(dest, &["rev-parse", "--verify", "--quiet", "HEAD"]).ok()
}

/// The commit a ref names in the copy: the ref itself (tag, commit, local branch) or the
/// remote-tracking branch of that name (so a pinned branch follows what was fetched).
fn resolve_ref(dest: &Path, r#ref: &str) -> Option<String> {
    [format!("refs/remotes/origin/{ref}"), r#ref.to_owned()]
        .iter()
        .find_map(|r| {
            git(
                dest,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{r}^{{commit}}"),
                ],
            )
            .ok()
        })
}

fn checkout(url: &str, dest: &Path, r#ref: &str) -> Result<(), Error> {
    let commit = resolve_ref(dest, r#ref).ok_or_else(|| Error::Ref {
        url: url.to_owned(),
        r#ref: r#ref.to_owned(),
        msg: "not in the fetched repository".to_owned(),
    })?;
    git(
        dest,
        &["checkout", "--quiet", "--force", "--detach", &commit],
    )
    .map(|_| ())
    .map_err(|msg| Error::Git {
        url: url.to_owned(),
        msg: format!("checking out {ref}: {msg}"),
    })
}

/// Clone into a temporary sibling, then rename: a failed or interrupted clone leaves no
/// half-written copy behind.
fn clone(url: &str, dest: &Path) -> Result<(), Error> {
    let err = |msg: String| Error::Clone {
        url: url.to_owned(),
        msg,
    };
    let parent = dest.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| err(format!("{}: {e}", parent.display())))?;
    let tmp = parent.join(format!(
        ".{}.clone-{}",
        dest.file_name().and_then(|s| s.to_str()).unwrap_or("repo"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let res = git(
        parent,
        &["clone", "--quiet", "--", url, &tmp.display().to_string()],
    );
    if let Err(msg) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(err(msg));
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&tmp, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        err(format!("moving the clone to {}: {e}", dest.display()))
    })
}

/// Run git in `dir`; Ok(stdout trimmed) or Err(its message). No prompts, a deadline.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut child = Command::new("git")
        .args([
            "-c",
            "http.lowSpeedLimit=1",
            "-c",
            "http.lowSpeedTime=30",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=20",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running git: {e} (is git installed?)"))?;
    // Drain the pipes on threads so a chatty git never blocks on a full pipe.
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > GIT_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let out = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = err.and_then(|h| h.join().ok()).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(out.trim().to_owned()),
        Some(_) => Err(last_lines(&err)),
        None => Err(format!(
            "git {} did not finish within {}s",
            args.first().unwrap_or(&""),
            GIT_DEADLINE.as_secs()
        )),
    }
}

fn drain(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// git's message, on one line: its last few non-empty lines.
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let msg = lines[lines.len().saturating_sub(3)..].join("; ");
    if msg.is_empty() {
        "git failed without a message".to_owned()
    } else {
        msg
    }
}

#[cfg(test)]
mod tests;
