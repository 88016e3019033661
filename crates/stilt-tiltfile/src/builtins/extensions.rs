//! `ext://` loads. Extension repos are local directories only (Stilt never downloads):
//! `STILT_EXTENSIONS_DIR` (or `LoadRequest::extensions_dir`) stands in for the default repo, and
//! `v1alpha1.extension_repo(name=…, url='file:///…')` registers others.
//!
//! Some extensions are built into Stilt ([`NATIVE`]): `ext://<name>` always loads Stilt's own
//! module from the virtual path `<stilt>/ext/<name>/Tiltfile`, whatever repos are configured.

use std::path::Path;
use std::path::PathBuf;

use anyhow::bail;
use starlark::environment::GlobalsBuilder;

use crate::eval::Ctx;

pub(crate) const DEFAULT_REPO_URL: &str = "https://github.com/tilt-dev/tilt-extensions";

/// Prefix of the virtual paths of built-in modules (never read from disk, never watched).
pub(crate) const VIRTUAL_PREFIX: &str = "<stilt>/";

/// Extensions Stilt implements itself: (name, Starlark source).
const NATIVE: &[(&str, &str)] = &[("syncback", include_str!("../ext/syncback.star"))];

/// The embedded source of a built-in module's virtual path.
pub(crate) fn native_source(path: &Path) -> Option<&'static str> {
    let rest = path.to_str()?.strip_prefix(VIRTUAL_PREFIX)?;
    let name = rest.strip_prefix("ext/")?.strip_suffix("/Tiltfile")?;
    NATIVE.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The repo a built-in extension is recorded under: the default one, as Tilt would load it.
fn native_ext(c: &Ctx, name: &str) -> PathBuf {
    let repos = c.st.borrow().ext_repos.clone();
    let (repo_name, url) = match repos.iter().find(|(n, _, _)| n == "default") {
        Some((n, u, _)) => (n.clone(), u.clone()),
        None => (
            "default".to_owned(),
            c.req
                .extensions_dir
                .clone()
                .or_else(|| c.getenv("STILT_EXTENSIONS_DIR").map(PathBuf::from))
                .map(|d| format!("file://{}", d.display()))
                .unwrap_or_else(|| DEFAULT_REPO_URL.to_owned()),
        ),
    };
    let mut st = c.st.borrow_mut();
    if !st.ext_repos.iter().any(|(n, _, _)| n == &repo_name) {
        st.ext_repos.push((repo_name.clone(), url, String::new()));
    }
    let ext_name = sanitize_ext_name(name);
    if !st.extensions.iter().any(|(n, _, _)| n == &ext_name) {
        st.extensions.push((ext_name, repo_name, name.to_owned()));
    }
    PathBuf::from(format!("{VIRTUAL_PREFIX}ext/{name}/Tiltfile"))
}

pub(crate) fn sanitize_ext_name(s: &str) -> String {
    crate::objects::sanitize_name(&s.replace('/', "_"))
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
    let first = rest.split('/').next().unwrap_or("");
    // A registered repo whose load_host matches the first segment.
    let repos = c.st.borrow().ext_repos.clone();
    let (repo_name, url, repo_path) = if let Some((n, u, _)) = repos
        .iter()
        .find(|(_, _, lh)| !lh.is_empty() && lh == first)
    {
        (
            n.clone(),
            u.clone(),
            rest[first.len()..].trim_start_matches('/').to_owned(),
        )
    } else if let Some((n, u, _)) = repos.iter().find(|(n, _, _)| n == "default") {
        (n.clone(), u.clone(), rest.to_owned())
    } else {
        let dir = c
            .req
            .extensions_dir
            .clone()
            .or_else(|| c.getenv("STILT_EXTENSIONS_DIR").map(PathBuf::from));
        match dir {
            Some(d) => (
                "default".to_owned(),
                format!("file://{}", d.display()),
                rest.to_owned(),
            ),
            None => bail!(
                "load(\"ext://{rest}\"): the default extension repo ({DEFAULT_REPO_URL}) cannot be downloaded by Stilt. \
                 Point it at a local checkout with the STILT_EXTENSIONS_DIR environment variable, or register \
                 v1alpha1.extension_repo(name='default', url='file:///path/to/tilt-extensions') before loading"
            ),
        }
    };
    let Some(local) = url.strip_prefix("file://") else {
        bail!(
            "load(\"ext://{rest}\"): extension repo {repo_name:?} has URL {url}; Stilt only supports file:// extension repos (no network access)"
        );
    };
    let path = PathBuf::from(local).join(&repo_path).join("Tiltfile");
    if !c.host.exists(&path) {
        bail!(
            "load(\"ext://{rest}\"): extension not found: {} does not exist",
            path.display()
        );
    }
    {
        let mut st = c.st.borrow_mut();
        if !st.ext_repos.iter().any(|(n, _, _)| n == &repo_name) {
            st.ext_repos
                .push((repo_name.clone(), url.clone(), String::new()));
        }
        let ext_name = sanitize_ext_name(rest);
        if !st.extensions.iter().any(|(n, _, _)| n == &ext_name) {
            st.extensions.push((ext_name, repo_name, repo_path));
        }
    }
    Ok(path)
}

pub(crate) fn register(_b: &mut GlobalsBuilder) {}
