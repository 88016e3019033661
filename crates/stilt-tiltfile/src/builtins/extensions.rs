//! `ext://` loads, resolved as Tilt's loader does: an Extension the Tiltfile declared
//! (`v1alpha1.extension(name=…, repo_name=…, repo_path=…)`), else a repo whose `load_host` is the
//! first path segment, else the `default` repo (https://github.com/tilt-dev/tilt-extensions unless
//! the Tiltfile registers another `default`, or `STILT_EXTENSIONS_DIR` /
//! `LoadRequest::extensions_dir` points at a local copy). Local repos (absolute paths,
//! `file://`) are used in place; git repos are checked out through `stilt_extrepo::Cache`
//! (`$STILT_HOME/tilt_modules`), fetched only as that crate decides.
//!
//! Some extensions are built into Stilt ([`NATIVE`]): `ext://<name>` always loads Stilt's own
//! module from the virtual path `<stilt>/ext/<name>/Tiltfile`, whatever repos are configured, and
//! never touches the network.

use std::path::Path;
use std::path::PathBuf;

use anyhow::bail;
use starlark::environment::GlobalsBuilder;

use crate::eval::Ctx;
use crate::model::ExtRepo;

pub(crate) use stilt_extrepo::DEFAULT_REPO_URL;

/// Prefix of the virtual paths of built-in modules (never read from disk, never watched).
pub(crate) const VIRTUAL_PREFIX: &str = "<stilt>/";

/// Extensions Stilt implements itself: (name, Starlark source).
const NATIVE: &[(&str, &str)] = &[("syncback", include_str!("../ext/syncback.star"))];

/// Whether `ext://<name>` is built into Stilt.
pub(crate) fn is_native(name: &str) -> bool {
    NATIVE.iter().any(|(n, _)| *n == name)
}

pub(crate) use stilt_extrepo::{ANN_BUILTIN, ANN_BUILTIN_ONLY};

/// The embedded source of a built-in module's virtual path.
pub(crate) fn native_source(path: &Path) -> Option<&'static str> {
    let rest = path.to_str()?.strip_prefix(VIRTUAL_PREFIX)?;
    let name = rest.strip_prefix("ext/")?.strip_suffix("/Tiltfile")?;
    NATIVE.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The repo named `name`: registered by the Tiltfile, else (Tilt's `ensureRepo`) a repo of that
/// name at the default URL (a local stand-in when one is configured), recorded for the objects.
fn repo_named(c: &Ctx, name: &str) -> ExtRepo {
    if let Some(r) = c.st.borrow().ext_repos.iter().find(|r| r.name == name) {
        return r.clone();
    }
    let url = c
        .req
        .extensions_dir
        .clone()
        .or_else(|| c.getenv("STILT_EXTENSIONS_DIR").map(PathBuf::from))
        .map(|d| format!("file://{}", d.display()))
        .unwrap_or_else(|| DEFAULT_REPO_URL.to_owned());
    let r = ExtRepo {
        name: name.to_owned(),
        url,
        ..Default::default()
    };
    c.st.borrow_mut().ext_repos.push(r.clone());
    r
}

fn record_extension(c: &Ctx, ext_name: &str, repo: &str, repo_path: &str) {
    let mut st = c.st.borrow_mut();
    if !st.extensions.iter().any(|(n, _, _)| n == ext_name) {
        st.extensions
            .push((ext_name.to_owned(), repo.to_owned(), repo_path.to_owned()));
    }
}

/// The repo a built-in extension is recorded under: the default one, as Tilt would load it.
fn native_ext(c: &Ctx, name: &str) -> PathBuf {
    let repo = repo_named(c, "default");
    record_extension(c, &sanitize_ext_name(name), &repo.name, name);
    PathBuf::from(format!("{VIRTUAL_PREFIX}ext/{name}/Tiltfile"))
}

pub(crate) fn sanitize_ext_name(s: &str) -> String {
    crate::objects::sanitize_name(&s.replace('/', "_"))
}

/// The Extension object the Tiltfile declared with `v1alpha1.extension(...)`, if any: its
/// (repo name, repo path); it is marked as loaded by the Tiltfile (Tilt's managed-by).
fn declared_extension(c: &Ctx, ext_name: &str) -> Option<(String, String)> {
    let mut st = c.st.borrow_mut();
    let o = st
        .raw_objects
        .iter_mut()
        .find(|o| o["kind"] == "Extension" && o["metadata"]["name"] == ext_name)?;
    o["metadata"]["annotations"]["tilt.dev/managed-by"] = "tiltfile.loader".into();
    let g = |k: &str| o["spec"][k].as_str().unwrap_or("").to_owned();
    Some((g("repoName"), g("repoPath")))
}

/// Resolve `ext://<rest>` to a Tiltfile path, recording ExtensionRepo/Extension objects.
pub(crate) fn resolve_ext(c: &Ctx, rest: &str) -> anyhow::Result<PathBuf> {
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        bail!("load: ext:// path must name an extension");
    }
    if NATIVE.iter().any(|(n, _)| *n == rest) {
        return Ok(native_ext(c, rest));
    }
    let ext_name = sanitize_ext_name(rest);
    let (repo, repo_path) = match declared_extension(c, &ext_name) {
        Some((repo, path)) => (repo_named(c, &repo), path),
        None => {
            let host_match = rest.split_once('/').and_then(|(first, path)| {
                let repos = c.st.borrow().ext_repos.clone();
                repos
                    .into_iter()
                    .find(|r| !r.load_host.is_empty() && r.load_host == first)
                    .map(|r| (r, path.to_owned()))
            });
            let (repo, path) =
                host_match.unwrap_or_else(|| (repo_named(c, "default"), rest.to_owned()));
            record_extension(c, &ext_name, &repo.name, &path);
            (repo, path)
        }
    };
    let dir = repo_dir(c, rest, &repo)?;
    let path = dir
        .join(&repo.git_subpath)
        .join(&repo_path)
        .join("Tiltfile");
    let clean = crate::eval::abs_path(&dir, &path.display().to_string());
    if !clean.starts_with(&dir) {
        bail!("load(\"ext://{rest}\"): invalid repo path {repo_path:?}");
    }
    if !c.host.exists(&clean) {
        bail!(
            "load(\"ext://{rest}\"): extension not found: no extension Tiltfile at {} (repo {:?}, {})",
            clean.display(),
            repo.name,
            repo.url
        );
    }
    Ok(clean)
}

/// The local directory of a repo: in place for local URLs, else a checkout in the cache.
fn repo_dir(c: &Ctx, rest: &str, repo: &ExtRepo) -> anyhow::Result<PathBuf> {
    let loc = stilt_extrepo::locate(&repo.url).map_err(|e| {
        anyhow::anyhow!(
            "load(\"ext://{rest}\"): extension repo {:?}: {e}",
            repo.name
        )
    })?;
    match loc {
        stilt_extrepo::Location::Local(p) => {
            if stilt_extrepo::is_pinned(&repo.r#ref) {
                bail!(
                    "load(\"ext://{rest}\"): extension repo {:?}: {}",
                    repo.name,
                    stilt_extrepo::Error::RefOnLocal(repo.url.clone())
                );
            }
            Ok(p)
        }
        stilt_extrepo::Location::Remote { .. } => {
            if c.req.offline {
                return offline_copy(c, rest, repo);
            }
            let Some(cache) = &c.req.ext_cache else {
                bail!(
                    "load(\"ext://{rest}\"): extension repo {:?} ({}) is a git repo and this load has no \
                     extension cache; point STILT_EXTENSIONS_DIR at a local copy",
                    repo.name,
                    repo.url
                );
            };
            let co = cache
                .ensure(&repo.url, &repo.r#ref, false)
                .map_err(|e| anyhow::anyhow!("load(\"ext://{rest}\"): {e}"))?;
            if !co.stale_reason.is_empty() {
                c.warn(format!(
                    "extension repo {}: may be stale: {}",
                    repo.name, co.stale_reason
                ));
            }
            Ok(co.path)
        }
    }
}

/// Without the network: the repo's copy in the cache, when one was fetched before.
fn offline_copy(c: &Ctx, rest: &str, repo: &ExtRepo) -> anyhow::Result<PathBuf> {
    let dir = match &c.req.ext_cache {
        Some(cache) => cache.path_of(&repo.url, &repo.r#ref)?,
        None => PathBuf::new(),
    };
    if dir.as_os_str().is_empty() || !c.host.is_dir(&dir) {
        bail!(
            "load(\"ext://{rest}\"): extension repo {:?} ({}) has not been fetched yet; `stilt up` fetches it (this check does not)",
            repo.name,
            repo.url
        );
    }
    Ok(dir)
}

pub(crate) fn register(_b: &mut GlobalsBuilder) {}
