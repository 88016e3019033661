//! The Extension reconciler: resolves each Extension to its Tiltfile inside its repo's files
//! (`status.path`) or says why not (`status.error`), from the ExtensionRepo named by
//! `spec.repoName` and that repo's status — so it re-runs whenever the repo's status changes
//! (a fetch, a new ref). The rules are Tilt's: the repo must exist and be loaded, the path must
//! stay inside the repo (`gitSubpath` then `repoPath`), and a regular `Tiltfile` must be there.
//!
//! Tilt also runs an Extension that no Tiltfile loaded (no `tilt.dev/managed-by`) as its own
//! Tiltfile object; Stilt runs one Tiltfile per instance, so such an Extension is resolved (its
//! status is written) but not run.

use crate::Ctx;
use crate::controller::{self, Mapper, Outcome, Queue, Reconcile};
use crate::names::TILTFILE_RESOURCE;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

/// Resolve an Extension against its repo (pure except for the final file check, passed in).
pub fn status_of(
    spec: &ExtensionSpec,
    repo: Option<&ExtensionRepo>,
    is_file: impl Fn(&Path) -> bool,
) -> ExtensionStatus {
    let err = |error: String| ExtensionStatus {
        error,
        path: String::new(),
    };
    let Some(repo) = repo else {
        return err(format!("extension repo not found: {}", spec.repo_name));
    };
    let repo_path = repo
        .status
        .as_ref()
        .map(|s| s.path.as_str())
        .unwrap_or_default();
    if repo_path.is_empty() {
        return err(format!("extension repo not loaded: {}", spec.repo_name));
    }
    let root = Path::new(repo_path);
    let Some(path) = join_inside(root, &[&repo.spec.git_subpath, &spec.repo_path, "Tiltfile"])
    else {
        return err(format!("invalid repo path: {}", spec.repo_path));
    };
    if !is_file(&path) {
        return err(format!("no extension tiltfile found at {}", path.display()));
    }
    ExtensionStatus {
        error: String::new(),
        path: path.display().to_string(),
    }
}

/// `root/parts…` with `.` and `..` resolved, or None when it leaves `root`.
fn join_inside(root: &Path, parts: &[&str]) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for part in parts {
        for c in Path::new(part).components() {
            match c {
                Component::Normal(s) => {
                    out.push(s);
                    depth += 1;
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    depth = depth.checked_sub(1)?;
                    out.pop();
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
    }
    Some(out)
}

struct ExtensionReconciler {
    ctx: Ctx,
}

/// An ExtensionRepo event queues the Extensions that name it.
fn extensions_of_repo(ctx: &Ctx) -> Mapper {
    let keys = crate::refindex::spec_keys(|s: &ExtensionSpec| vec![s.repo_name.clone()]);
    crate::refindex::referencing(ctx, "Extension", keys, crate::refindex::own_name())
}

pub fn start(ctx: Ctx) {
    let r = Arc::new(ExtensionReconciler { ctx: ctx.clone() });
    controller::run(
        ctx.clone(),
        Queue::default(),
        vec![
            ("Extension", controller::same_name()),
            ("ExtensionRepo", extensions_of_repo(&ctx)),
        ],
        r,
    );
}

impl Reconcile for ExtensionReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let ext = match self.ctx.store.get_typed::<Extension>(name) {
            Ok(e) => e,
            Err(StoreError::NotFound { .. }) => return Outcome::Done,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let repo = match self
            .ctx
            .store
            .get_typed::<ExtensionRepo>(&ext.spec.repo_name)
        {
            Ok(r) => Some(r),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let builtin = ext
            .metadata
            .annotations
            .get(stilt_extrepo::ANN_BUILTIN)
            .is_some_and(|v| v == "true");
        let status = if builtin {
            ExtensionStatus {
                error: String::new(),
                path: stilt_extrepo::builtin_path(&ext.spec.repo_path),
            }
        } else {
            status_of(&ext.spec, repo.as_ref(), |p| p.is_file())
        };
        let old = ext.status.clone().unwrap_or_default();
        if old == status {
            return Outcome::Done;
        }
        // Tilt logs errors other than "the repo is not there yet".
        if !status.error.is_empty()
            && status.error != old.error
            && !status.error.starts_with("extension repo not")
        {
            self.ctx.logs.line(
                TILTFILE_RESOURCE,
                "extension",
                Level::Error,
                &format!("extension {name}: {}", status.error),
            );
        }
        match self
            .ctx
            .store
            .update_status_with::<Extension>(name, |o| o.status = Some(status.clone()))
        {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Error(format!("writing the status of Extension {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str, subpath: &str) -> ExtensionRepo {
        let mut r = ExtensionRepo::default();
        r.metadata.name = "default".into();
        r.spec.git_subpath = subpath.into();
        r.status = Some(ExtensionRepoStatus {
            path: path.into(),
            ..Default::default()
        });
        r
    }

    fn spec(repo_path: &str) -> ExtensionSpec {
        ExtensionSpec {
            repo_name: "default".into(),
            repo_path: repo_path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn statuses() {
        let exists =
            |p: &Path| p == Path::new("/r/hello/Tiltfile") || p == Path::new("/r/sub/x/Tiltfile");
        let cases: Vec<(ExtensionSpec, Option<ExtensionRepo>, &str, &str)> = vec![
            (spec("hello"), Some(repo("/r", "")), "/r/hello/Tiltfile", ""),
            (spec("x"), Some(repo("/r", "sub")), "/r/sub/x/Tiltfile", ""),
            (spec("hello"), None, "", "extension repo not found: default"),
            (
                spec("hello"),
                Some(repo("", "")),
                "",
                "extension repo not loaded: default",
            ),
            (
                spec("../etc"),
                Some(repo("/r", "")),
                "",
                "invalid repo path: ../etc",
            ),
            (
                spec("a/../../x"),
                Some(repo("/r", "")),
                "",
                "invalid repo path: a/../../x",
            ),
            (
                spec("/abs"),
                Some(repo("/r", "")),
                "",
                "invalid repo path: /abs",
            ),
            (
                spec("gone"),
                Some(repo("/r", "")),
                "",
                "no extension tiltfile found at /r/gone/Tiltfile",
            ),
        ];
        for (spec, repo, path, error) in cases {
            let s = status_of(&spec, repo.as_ref(), exists);
            assert_eq!(
                (s.path.as_str(), s.error.as_str()),
                (path, error),
                "{spec:?}"
            );
        }
    }
}
