//! `syncback` / `dc_syncback`: Stilt's native version of tilt-extensions/syncback.
//!
//! `load('ext://syncback', 'syncback')` resolves to a module built into Stilt
//! (`src/ext/syncback.star`, see [`crate::builtins::extensions`]) that re-exports these natives.
//! They are not globals: the virtual module is evaluated with [`ext_globals`], which holds them in
//! the `__stilt` namespace. Each call declares one resource of type `Syncback` (manual trigger)
//! and, at assembly, one `Syncback` API object.

use anyhow::bail;
use starlark::environment::Globals;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use crate::builtins::k8s::labels_arg;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::*;

/// Globals of the built-in `ext://` modules: the natives they re-export, under `__stilt`.
pub(crate) fn ext_globals() -> Globals {
    GlobalsBuilder::new()
        .with_namespace("__stilt", register)
        .build()
}

/// Tilt's syncback extension never touches these (its DEFAULT_EXCLUDES).
pub(crate) const PROTECTED: &[&str] = &[
    ".git",
    ".gitignore",
    ".dockerignore",
    "Dockerfile",
    ".tiltignore",
    "Tiltfile",
    "tilt_modules",
];

const NO_RSYNC: &str = "Stilt copies files natively (no rsync needed)";

/// `src_dir`: absolute, with a trailing slash (the extension's rule). Returns it without the
/// trailing slash (`/` stays `/`).
fn src_dir_arg(f: &str, v: Value) -> anyhow::Result<String> {
    let s = string(f, "src_dir", v)?;
    if !s.ends_with('/') {
        bail!(
            "{f}: for parameter \"src_dir\": src_dir must be a directory and have a trailing slash (e.g. \"/app/\"), got {s:?}"
        );
    }
    if !s.starts_with('/') {
        bail!(
            "{f}: for parameter \"src_dir\": src_dir must be an absolute path in the container (e.g. \"/app/\"), got {s:?}"
        );
    }
    let t = s.trim_end_matches('/');
    Ok(if t.is_empty() {
        "/".into()
    } else {
        t.to_owned()
    })
}

/// `paths`: relative to `src_dir` (absolute ones must be under it), cleaned. A path naming
/// `src_dir` itself means everything (an empty list).
fn paths_arg(f: &str, src_dir: &str, v: Option<Value>) -> anyhow::Result<Vec<String>> {
    let mut out = vec![];
    let mut everything = false;
    for p in str_or_list(f, "paths", v)? {
        if p.is_empty() {
            bail!("{f}: for parameter \"paths\": paths must not be empty strings");
        }
        if p.split('/').any(|c| c == "..") {
            bail!(
                "{f}: for parameter \"paths\": {p:?} must not contain '..' (paths are relative to src_dir and stay inside it)"
            );
        }
        let rel = if p.starts_with('/') {
            let under = if src_dir == "/" {
                Some(p.as_str())
            } else {
                p.strip_prefix(src_dir)
                    .filter(|r| r.is_empty() || r.starts_with('/'))
            };
            match under {
                Some(r) => r.to_owned(),
                None => bail!(
                    "{f}: for parameter \"paths\": {p:?} is an absolute path outside src_dir ({src_dir}/); give paths relative to src_dir"
                ),
            }
        } else {
            p.clone()
        };
        let clean: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if clean.is_empty() {
            everything = true;
        } else {
            let c = clean.join("/");
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(if everything { vec![] } else { out })
}

fn interval_arg(f: &str, v: Option<Value>) -> anyhow::Result<i32> {
    let i = opt_int(f, "interval", v, 0)?;
    if i < 0 {
        bail!(
            "{f}: for parameter \"interval\": interval must be 0 (sync only when triggered) or a number of seconds > 0, got {i}"
        );
    }
    Ok(i as i32)
}

/// What both functions share, validated.
struct Common {
    paths: Vec<String>,
    ignores: Vec<String>,
    delete: bool,
    target_dir: std::path::PathBuf,
    labels: Vec<String>,
    resource_deps: Vec<String>,
    dry_run: bool,
    interval_seconds: i32,
}

#[allow(clippy::too_many_arguments)]
fn common<'v>(
    f: &str,
    src_dir: &str,
    ignore: Option<Value<'v>>,
    delete: Option<Value<'v>>,
    paths: Option<Value<'v>>,
    target_dir: Option<Value<'v>>,
    verbose: Option<Value<'v>>,
    labels: Option<Value<'v>>,
    resource_deps: Option<Value<'v>>,
    dry_run: Option<Value<'v>>,
    interval: Option<Value<'v>>,
    eval: &Evaluator<'v, '_, '_>,
) -> anyhow::Result<Common> {
    // Accepted for compatibility; Stilt logs every run the same way.
    opt_bool(f, "verbose", verbose, false)?;
    let td = match opt_string(f, "target_dir", target_dir)? {
        s if s.is_empty() => ".".to_owned(),
        s => s,
    };
    Ok(Common {
        paths: paths_arg(f, src_dir, paths)?,
        ignores: str_or_list(f, "ignore", ignore)?,
        delete: opt_bool(f, "delete", delete, false)?,
        target_dir: abs_path(&cur_dir(eval), &td),
        labels: labels_arg(f, labels)?,
        resource_deps: str_or_list(f, "resource_deps", resource_deps)?,
        dry_run: opt_bool(f, "dry_run", dry_run, false)?,
        interval_seconds: interval_arg(f, interval)?,
    })
}

fn name_arg(f: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("{f}: for parameter \"name\": name cannot be empty");
    }
    Ok(())
}

fn declare(
    eval: &Evaluator,
    f: &'static str,
    name: &str,
    from: SyncbackFrom,
    src_dir: String,
    c: Common,
) -> anyhow::Result<NoneType> {
    let cx = ctx(eval);
    let mut st = cx.st.borrow_mut();
    if st.syncbacks.iter().any(|s| s.name == name) {
        bail!("{f}: Syncback resource {name} has been defined multiple times");
    }
    let local_seq = st.local_resources.len();
    st.syncbacks.push(SyncbackDef {
        name: name.to_owned(),
        call_site: crate::eval::call_site(eval),
        func: f,
        from,
        src_dir,
        target_dir: c.target_dir,
        paths: c.paths,
        ignores: c.ignores,
        delete: c.delete,
        dry_run: c.dry_run,
        interval_seconds: c.interval_seconds,
        labels: c.labels,
        resource_deps: c.resource_deps,
        local_seq,
    });
    Ok(NoneType)
}

/// A warning once per load for an rsync-only parameter.
fn ignored(eval: &Evaluator, param: &str) {
    let msg = format!("syncback: {param} is ignored: {NO_RSYNC}");
    let c = ctx(eval);
    if !c.st.borrow().warnings.contains(&msg) {
        c.warn(msg);
    }
}

#[starlark_module]
fn register(builder: &mut GlobalsBuilder) {
    /// `syncback(name, k8s_object, src_dir, ignore=None, delete=False, paths=None,
    /// target_dir='.', container='', namespace='', verbose=False, labels=[], resource_deps=[],
    /// rsync_path='', rsync_options=None, dry_run=False, interval=0)`
    fn syncback<'v>(
        name: &str,
        k8s_object: Value<'v>,
        src_dir: Value<'v>,
        ignore: Option<Value<'v>>,
        delete: Option<Value<'v>>,
        paths: Option<Value<'v>>,
        target_dir: Option<Value<'v>>,
        container: Option<Value<'v>>,
        namespace: Option<Value<'v>>,
        verbose: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        rsync_path: Option<Value<'v>>,
        rsync_options: Option<Value<'v>>,
        dry_run: Option<Value<'v>>,
        interval: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "syncback";
        name_arg(f, name)?;
        let object = string(f, "k8s_object", k8s_object)?;
        if object.trim().is_empty() {
            bail!(
                "{f}: for parameter \"k8s_object\": k8s_object cannot be empty (e.g. \"deploy/web\", \"pod/web-abc\")"
            );
        }
        let src = src_dir_arg(f, src_dir)?;
        let container = opt_string(f, "container", container)?;
        let namespace = opt_string(f, "namespace", namespace)?;
        if !opt_string(f, "rsync_path", rsync_path)?.is_empty() {
            ignored(eval, "rsync_path");
        }
        if !str_or_list(f, "rsync_options", rsync_options)?.is_empty() {
            ignored(eval, "rsync_options");
        }
        let c = common(
            f,
            &src,
            ignore,
            delete,
            paths,
            target_dir,
            verbose,
            labels,
            resource_deps,
            dry_run,
            interval,
            eval,
        )?;
        // `compose/<service>` (or `dc/<service>`) names a Docker Compose service: the same
        // call works for compose projects.
        let from = match object
            .strip_prefix("compose/")
            .or_else(|| object.strip_prefix("dc/"))
        {
            Some(service) => SyncbackFrom::DockerCompose {
                service: service.to_string(),
            },
            None => SyncbackFrom::Kubernetes {
                object,
                namespace,
                container,
            },
        };
        declare(eval, f, name, from, src, c)
    }

    /// `dc_syncback(name, service, src_dir, ignore=None, delete=False, paths=None,
    /// target_dir='.', verbose=False, labels=[], resource_deps=[], dry_run=False, interval=0)`
    fn dc_syncback<'v>(
        name: &str,
        service: Value<'v>,
        src_dir: Value<'v>,
        ignore: Option<Value<'v>>,
        delete: Option<Value<'v>>,
        paths: Option<Value<'v>>,
        target_dir: Option<Value<'v>>,
        verbose: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        dry_run: Option<Value<'v>>,
        interval: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "dc_syncback";
        name_arg(f, name)?;
        let service = string(f, "service", service)?;
        if service.trim().is_empty() {
            bail!("{f}: for parameter \"service\": service cannot be empty");
        }
        let src = src_dir_arg(f, src_dir)?;
        let c = common(
            f,
            &src,
            ignore,
            delete,
            paths,
            target_dir,
            verbose,
            labels,
            resource_deps,
            dry_run,
            interval,
            eval,
        )?;
        declare(
            eval,
            f,
            name,
            SyncbackFrom::DockerCompose { service },
            src,
            c,
        )
    }
}
