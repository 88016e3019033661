//! The Extension reconciler: resolves each Extension to its Tiltfile inside its repo's files
//! (`status.path`) or says why not (`status.error`), from the ExtensionRepo named by
//! `spec.repoName` and that repo's status — so it re-runs whenever the repo's status changes
//! (a fetch, a new ref). The rules are Tilt's: the repo must exist and be loaded, the path must
//! stay inside the repo (`gitSubpath` then `repoPath`), and a regular `Tiltfile` must be there.
//!
//! An Extension that no Tiltfile loaded (no `tilt.dev/managed-by`: created with `kubectl apply`,
//! `stilt apply` or `v1alpha1.extension()`) is run, as in Tilt, as its own Tiltfile object, named
//! after it and owned by it; the Tiltfile reconciler runs that, and deleting the Extension
//! deletes it and so everything it made.

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

/// The Tiltfile object that runs an Extension created through the API (Tilt's
/// `toDesiredTiltfile`): none for one a Tiltfile loaded for its symbols, a native one, or one
/// not resolved yet.
pub fn desired_tiltfile(ext: &Extension, status: &ExtensionStatus) -> Option<Tiltfile> {
    let a = &ext.metadata.annotations;
    let loaded_by_a_tiltfile = a.get(ANNOTATION_MANAGED_BY).is_some_and(|v| !v.is_empty());
    let native = a
        .get(stilt_extrepo::ANN_BUILTIN)
        .is_some_and(|v| v == "true");
    if loaded_by_a_tiltfile || native || status.path.is_empty() {
        return None;
    }
    let name = &ext.metadata.name;
    // Each extension's resources get their own label group, all under `extension.`.
    let label: String = format!("extension.{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let mut tf = Tiltfile::new(
        name,
        TiltfileSpec {
            path: status.path.clone(),
            labels: [(label.clone(), label)].into(),
            args: ext.spec.args.clone(),
            restart_on: Some(RestartOnSpec {
                file_watches: vec![crate::tiltfile::configs_filewatch(name)],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    tf.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), name.clone());
    tf.metadata.owner_references = vec![OwnerReference {
        api_version: API_VERSION.into(),
        kind: "Extension".into(),
        name: name.clone(),
        uid: ext.metadata.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }];
    Some(tf)
}

impl ExtensionReconciler {
    /// Makes the Tiltfile objects Extension `name` owns be just `desired`.
    fn manage_owned_tiltfile(
        &self,
        name: &str,
        desired: Option<Tiltfile>,
    ) -> Result<(), StoreError> {
        for tf in self.ctx.store.list_typed::<Tiltfile>()? {
            let owned = tf
                .metadata
                .owner_references
                .iter()
                .any(|r| r.kind == "Extension" && r.name == name);
            let kept = desired
                .as_ref()
                .is_some_and(|d| d.metadata.name == tf.metadata.name);
            if owned && !kept {
                crate::storewrite::logged(
                    self.ctx.store.delete("Tiltfile", &tf.metadata.name),
                    || format!("deleting Tiltfile {} of Extension {name}", tf.metadata.name),
                );
            }
        }
        let Some(desired) = desired else {
            return Ok(());
        };
        match self.ctx.store.get_typed::<Tiltfile>(&desired.metadata.name) {
            Ok(current) if current.spec == desired.spec => Ok(()),
            Ok(mut current) => {
                current.spec = desired.spec;
                self.ctx.store.update_typed(&current).map(|_| ())
            }
            Err(StoreError::NotFound { .. }) => self.ctx.store.create_typed(&desired).map(|_| ()),
            Err(e) => Err(e),
        }
    }
}

impl Reconcile for ExtensionReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let ext = match self.ctx.store.get_typed::<Extension>(name) {
            Ok(e) => e,
            Err(StoreError::NotFound { .. }) => {
                return match self.manage_owned_tiltfile(name, None) {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::Error(format!("the Tiltfile of Extension {name}: {e}")),
                };
            }
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
        if let Err(e) = self.manage_owned_tiltfile(name, desired_tiltfile(&ext, &status)) {
            return Outcome::Error(format!("the Tiltfile of Extension {name}: {e}"));
        }
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

/// The chain through the store: an Extension created through the API is resolved, run as its
/// own Tiltfile object, and what that Tiltfile makes goes away with the Extension.
#[cfg(test)]
mod chain_tests {
    use crate::k8s::testing::{ctx_with, eventually};
    use crate::tiltfile::{LoadFailure, Loaded, Loader, TiltfileConfig};
    use crate::{Ctx, Mode};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use stilt_api::*;
    use stilt_store::TypedStore;

    /// Loads the main Tiltfile as empty, and an extension's as one ConfigMap and one resource
    /// named after its first arg.
    struct FakeLoader;

    impl Loader for FakeLoader {
        fn load(
            &self,
            path: &Path,
            args: &[String],
            _mode: Mode,
            _cancel: Arc<AtomicBool>,
        ) -> Result<Loaded, LoadFailure> {
            if !path.ends_with("hello/Tiltfile") {
                return Ok(Loaded::default());
            }
            let made = args.first().cloned().unwrap_or_else(|| "made".into());
            Ok(Loaded {
                objects: vec![AnyObject::ConfigMap(ConfigMap::new(
                    made.clone(),
                    [("from".to_string(), "extension".to_string())].into(),
                ))],
                resources: vec![Manifest {
                    name: format!("{made}-res"),
                    kind: ResourceType::Local,
                    trigger_mode: "manual".into(),
                    enabled: true,
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
    }

    fn exists<T: Resource>(ctx: &Ctx, name: &str) -> bool {
        ctx.store.get_typed::<T>(name).is_ok()
    }

    #[tokio::test]
    async fn an_api_created_extension_runs_as_its_own_tiltfile_and_leaves_with_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("hello")).unwrap();
        std::fs::write(dir.path().join("hello/Tiltfile"), "").unwrap();
        let ctx = ctx_with(&stilt_k8s::FakeCluster::new());
        let cfg = TiltfileConfig {
            path: dir.path().join("Tiltfile"),
            args: vec![],
        };
        crate::tiltfile::start(ctx.clone(), cfg, Arc::new(FakeLoader)).unwrap();
        super::start(ctx.clone());

        let mut repo = ExtensionRepo::new(
            "local",
            ExtensionRepoSpec {
                url: format!("file://{}", dir.path().display()),
                ..Default::default()
            },
        );
        repo = ctx.store.create_typed(&repo).unwrap();
        repo.status = Some(ExtensionRepoStatus {
            path: dir.path().display().to_string(),
            ..Default::default()
        });
        ctx.store.update_status_typed(&repo).unwrap();
        let ext = Extension::new(
            "hello",
            ExtensionSpec {
                repo_name: "local".into(),
                repo_path: "hello".into(),
                args: vec!["greeting".into()],
            },
        );
        ctx.store.create_typed(&ext).unwrap();

        let tf = eventually("the extension's Tiltfile object", || {
            ctx.store.get_typed::<Tiltfile>("hello").ok()
        })
        .await;
        assert_eq!(Path::new(&tf.spec.path), dir.path().join("hello/Tiltfile"));
        assert_eq!(tf.spec.args, ["greeting"]);
        assert_eq!(tf.metadata.owner_references[0].kind, "Extension");
        assert_eq!(
            tf.spec.labels.get("extension.hello").map(String::as_str),
            Some("extension.hello")
        );
        let cm = eventually("the ConfigMap the extension made", || {
            ctx.store.get_typed::<ConfigMap>("greeting").ok()
        })
        .await;
        assert_eq!(cm.metadata.owner_references[0].name, "hello");
        assert!(cm.metadata.labels.contains_key("extension.hello"));
        let ui = eventually("the extension's resource", || {
            ctx.store.get_typed::<UIResource>("greeting-res").ok()
        })
        .await;
        assert_eq!(
            Manifest::from_ui_resource(&ui).map(|(m, _)| m.trigger_mode),
            Some("manual".to_string())
        );
        assert!(
            exists::<UIResource>(&ctx, "hello"),
            "the extension's Tiltfile resource"
        );
        assert!(exists::<FileWatch>(&ctx, "configs:hello"));
        // The main Tiltfile's objects are not the extension's.
        assert!(exists::<UIResource>(&ctx, "(Tiltfile)"));

        // New args reload it.
        let mut ext = ctx.store.get_typed::<Extension>("hello").unwrap();
        ext.spec.args = vec!["farewell".into()];
        ctx.store.update_typed(&ext).unwrap();
        eventually("the reloaded extension's ConfigMap", || {
            ctx.store.get_typed::<ConfigMap>("farewell").ok()
        })
        .await;
        eventually("the old ConfigMap gone", || {
            (!exists::<ConfigMap>(&ctx, "greeting")).then_some(())
        })
        .await;

        ctx.store.delete("Extension", "hello").unwrap();
        eventually("everything the extension made gone", || {
            let gone = !exists::<Tiltfile>(&ctx, "hello")
                && !exists::<ConfigMap>(&ctx, "farewell")
                && !exists::<UIResource>(&ctx, "farewell-res")
                && !exists::<UIResource>(&ctx, "hello")
                && !exists::<FileWatch>(&ctx, "configs:hello");
            gone.then_some(())
        })
        .await;
        assert!(exists::<UIResource>(&ctx, "(Tiltfile)"));
    }
}
