//! Stilt's Tiltfile loader: evaluate a Tiltfile (Starlark, Tilt's builtins) and return the desired
//! `tilt.dev/v1alpha1` objects plus the set of files whose change re-runs it.
//!
//! Architecture invariants:
//! - This is the only crate that evaluates Starlark; Starlark values never leave it. Builtins
//!   convert their arguments to owned Rust data (`model`) at once; assembly and object building
//!   work on that model only. Editor tooling gets starlark's syntax and documentation types
//!   through [`editor`] (the builtins' docs, the parser), never values.
//! - Everything the Tiltfile can observe of the host (processes, environment, files, kube context)
//!   goes through [`HostEnv`]; tests use [`FakeHost`].
//! - Loading is synchronous and self-contained: callers run it on a blocking thread. The result
//!   is owned and `Send`.
//!
//! Phases: evaluate (eval.rs + builtins/) → assemble resources (assemble.rs) → objects
//! (`stilt_api::AnyObject`, strictly decoded).
//!
//! ```no_run
//! use stilt_tiltfile::{load, LoadRequest, RealHost};
//! let host = RealHost::new();
//! let res = load(&LoadRequest::new("Tiltfile", &host)).unwrap();
//! for o in &res.objects {
//!     println!("{} {}", o.kind(), o.name());
//! }
//! ```

mod assemble;
mod builtins;
mod convert;
mod drop_later;
pub mod editor;
mod eval;
pub mod host;
mod model;
mod objects;
mod prefetch;
mod values;
pub mod version;
mod whileloop;
mod yaml;
mod yaml_simple;
mod yaml_write;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;

pub use assemble::is_dev_cluster;
pub use host::CheckHost;
pub use host::DirEntry;
pub use host::FakeHost;
pub use host::HostCommand;
pub use host::HostEnv;
pub use host::HostOutput;
pub use host::MAX_FILE_BYTES;
pub use host::RealHost;
pub use model::DefaultRegistry;
pub use model::Settings;
pub use objects::sanitize_name;
pub use stilt_api::{Manifest, ResourceType};

/// Encode JSON as YAML the way the loader does (numbers kept as numbers even with serde_json's
/// `arbitrary_precision` on).
pub fn to_yaml(v: &serde_json::Value) -> String {
    yaml::encode(v).unwrap_or_default()
}

/// Parse a (multi-document) YAML stream the way the loader does (YAML 1.1 octals, null documents
/// dropped).
pub fn parse_yaml_stream(text: &str) -> Result<Vec<serde_json::Value>, String> {
    yaml::parse_stream(text).map_err(|e| e.to_string())
}

/// What to load and how.
pub struct LoadRequest<'a> {
    /// The Tiltfile (absolute, or relative to `host.cwd()`); a directory means `<dir>/Tiltfile`.
    pub path: PathBuf,
    /// Tiltfile args (`tilt up -- args…`): parsed by `config.parse()`, else resource names.
    pub args: Vec<String>,
    /// `up`, `ci`, `down`, … (`config.tilt_subcommand`).
    pub subcommand: String,
    pub host: &'a dyn HostEnv,
    /// Host of the web UI (`--host`), used as port-forward host default and `TILT_HOST`.
    pub web_host: String,
    /// Port of the web UI (`--port`): `TILT_PORT` in the environment of `local()` commands.
    pub web_port: u16,
    /// Local directory standing in for the default extension repo (else `$STILT_EXTENSIONS_DIR`).
    pub extensions_dir: Option<PathBuf>,
    /// Where git extension repos are cloned (`$STILT_HOME/tilt_modules`); None: only local
    /// repos load (the fixtures), a remote one is an error.
    pub ext_cache: Option<stilt_extrepo::Cache>,
    /// `sinceTime` for PodLogStream templates (RFC 3339; Tilt uses its start time).
    pub start_time: Option<String>,
    /// Emit FileWatch objects (false for `ci`, where Tilt does not watch files).
    pub watch: bool,
    /// `sys.argv`.
    pub argv: Vec<String>,
    /// Once set, evaluation stops at the next statement with an error naming where it was.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Never touch the network: a git extension repo is used only when its copy is already in
    /// `ext_cache`, else `load('ext://…')` fails saying so (the language server's checks).
    pub offline: bool,
}

impl<'a> LoadRequest<'a> {
    pub fn new(path: impl Into<PathBuf>, host: &'a dyn HostEnv) -> Self {
        LoadRequest {
            path: path.into(),
            args: vec![],
            subcommand: "up".into(),
            host,
            web_host: "localhost".into(),
            web_port: 10350,
            extensions_dir: None,
            ext_cache: None,
            start_time: None,
            watch: true,
            argv: vec![],
            cancel: None,
            offline: false,
        }
    }
}

/// The loader's output. Owned and `Send`.
#[derive(Debug, Clone)]
pub struct TiltfileResult {
    /// Desired objects, in a stable order (per resource, then Tiltfile-level objects).
    pub objects: Vec<stilt_api::AnyObject>,
    /// Files whose change re-runs the Tiltfile.
    pub config_files: BTreeSet<PathBuf>,
    /// One entry per resource, in Tilt's order (what the engine needs beyond the objects).
    pub resources: Vec<Manifest>,
    pub warnings: Vec<String>,
    /// Tiltfile log: print() output, `local:` echoes, warnings.
    pub logs: String,
    pub settings: Settings,
    pub timings: LoadTimings,
    /// Where each `load('ext://…')` went: the load string → the extension's Tiltfile.
    pub ext_paths: BTreeMap<String, PathBuf>,
}

/// How long each phase of the load took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadTimings {
    /// Starlark evaluation, including builtins, file reads and `local()` commands.
    pub eval: std::time::Duration,
    /// Resource assembly, object building and strict decoding into `stilt_api::AnyObject`
    /// (each object is decoded as it is built).
    pub assemble: std::time::Duration,
}

/// Where an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
}

/// A failed load. `message` is rendered like starlark's diagnostics (file:line:col, snippet, call
/// stack). The config files read so far are kept so the caller still watches them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    pub message: String,
    pub location: Option<Location>,
    pub config_files: BTreeSet<PathBuf>,
    pub logs: String,
    pub warnings: Vec<String>,
    /// Secret values the load saw before it failed (empty when `secret_settings` disabled
    /// scrubbing), so its log can still be redacted.
    pub secrets: Vec<(String, String)>,
    /// Where each `load('ext://…')` resolved before the load failed.
    pub ext_paths: BTreeMap<String, PathBuf>,
}

/// Pays, on a thread of its own, what a process's first load of `tiltfile` would (building the
/// globals, which parses the builtins' documentation and compiles regexes; paging the YAML
/// parser in), so that a command about to load it starts its first load warm. `subcommand` and
/// the process's arguments must be what the load will get (`up` / `ci`, `std::env::args`).
pub fn warm_up(tiltfile: &Path, subcommand: &str) {
    let main_path = main_tiltfile(tiltfile, &RealHost::new());
    let info = eval::ReqInfo {
        main_dir: main_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        main_path,
        subcommand: subcommand.to_owned(),
        argv: std::env::args().collect(),
        executable: current_exe(),
        ..Default::default()
    };
    let _ = std::thread::Builder::new()
        .name("stilt-warm-up".into())
        .spawn(move || {
            // A failure here is the load's to report, when it meets the same thing.
            let _ = eval::warm_evaluator(&builtins::globals_for(&info));
            drop(builtins::k8s::parse_entities(
                "kind: Warm\nmetadata: {name: up}\n",
            ));
        });
}

/// The Tiltfile a load of `path` runs: absolute, cleaned, `Tiltfile` in it if a directory.
fn main_tiltfile(path: &Path, host: &dyn HostEnv) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        host.cwd().join(path)
    };
    let path = eval::clean(&path);
    if host.is_dir(&path) {
        path.join("Tiltfile")
    } else {
        path
    }
}

fn current_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Evaluate a Tiltfile.
// A load happens once per Tiltfile change; the error's size does not matter.
#[allow(clippy::result_large_err)]
pub fn load(req: &LoadRequest) -> Result<TiltfileResult, LoadError> {
    // A bug in a builtin must not take the caller down: report it as a load error.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_inner(req))) {
        Ok(r) => r,
        Err(p) => {
            builtins::os::env_reset(vec![]);
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(LoadError {
                message: format!("internal error in the Tiltfile loader (please report): {what}"),
                location: None,
                config_files: BTreeSet::new(),
                logs: String::new(),
                warnings: vec![],
                secrets: vec![],
                ext_paths: BTreeMap::new(),
            })
        }
    }
}

#[allow(clippy::result_large_err)]
fn load_inner(req: &LoadRequest) -> Result<TiltfileResult, LoadError> {
    let path = main_tiltfile(&req.path, req.host);
    let main_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    builtins::os::env_reset(req.host.environ());
    builtins::core::set_web_port(req.web_port);
    let info = eval::ReqInfo {
        main_path: path.clone(),
        main_dir: main_dir.clone(),
        args: req.args.clone(),
        subcommand: req.subcommand.clone(),
        web_host: req.web_host.clone(),
        extensions_dir: req.extensions_dir.clone(),
        ext_cache: req.ext_cache.clone(),
        argv: req.argv.clone(),
        executable: current_exe(),
        cancel: req.cancel.clone(),
        offline: req.offline,
    };
    let c = eval::Ctx::new(req.host, info);
    // .tiltignore next to the main Tiltfile: always a config file, global ignore patterns.
    let ti = main_dir.join(".tiltignore");
    c.add_config_file(&ti);
    if let Ok(b) = req.host.read_file(&ti) {
        let pats: Vec<String> = String::from_utf8_lossy(&b)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        c.st.borrow_mut().tiltignore = Some((main_dir.clone(), pats));
    }
    let res = run(&c, req, &path);
    builtins::os::env_reset(vec![]);
    let mut st = c.st.into_inner();
    match res {
        Ok((objects, resources, timings)) => Ok(TiltfileResult {
            objects,
            config_files: std::mem::take(&mut st.config_files),
            resources,
            warnings: std::mem::take(&mut st.warnings),
            logs: std::mem::take(&mut st.logs),
            settings: st.settings.clone(),
            timings,
            ext_paths: std::mem::take(&mut st.ext_paths),
        }),
        Err((message, location)) => Err(LoadError {
            message,
            location,
            config_files: std::mem::take(&mut st.config_files),
            logs: std::mem::take(&mut st.logs),
            warnings: std::mem::take(&mut st.warnings),
            secrets: if st.settings.secrets_scrub {
                std::mem::take(&mut st.settings.secrets)
            } else {
                vec![]
            },
            ext_paths: std::mem::take(&mut st.ext_paths),
        }),
    }
}

pub(crate) type Failure = (String, Option<Location>);

fn starlark_failure(e: starlark::Error) -> Failure {
    let loc = e.span().map(|s| {
        let r = s.resolve_span();
        Location {
            file: PathBuf::from(s.filename()),
            line: r.begin.line + 1,
            column: r.begin.column + 1,
        }
    });
    (format!("{e}"), loc)
}

/// `path:line:col: message` ⇒ the location (assembly errors carry their call site this way).
fn leading_location(msg: &str) -> Option<Location> {
    let (head, _) = msg.split_once(": ")?;
    let mut it = head.rsplitn(3, ':');
    let column = it.next()?.parse().ok()?;
    let line = it.next()?.parse().ok()?;
    let file = PathBuf::from(it.next()?);
    file.is_absolute()
        .then_some(Location { file, line, column })
}

fn run(
    c: &eval::Ctx,
    req: &LoadRequest,
    path: &Path,
) -> Result<(Vec<stilt_api::AnyObject>, Vec<Manifest>, LoadTimings), Failure> {
    let t0 = std::time::Instant::now();
    eval::exec_file(c, path, true).map_err(starlark_failure)?;
    let t1 = std::time::Instant::now();
    // Ask the host about Kubernetes only when the Tiltfile deploys there (it may shell out).
    let uses_k8s = {
        let st = c.st.borrow();
        !st.k8s.is_empty() || !st.custom_deploys.is_empty()
    };
    let (k8s_context, k8s_namespace, k8s_cluster) = if uses_k8s {
        (
            req.host.k8s_context(),
            req.host.k8s_namespace(),
            req.host.k8s_cluster(),
        )
    } else {
        Default::default()
    };
    {
        let mut st = c.st.borrow_mut();
        st.settings.k8s_context = k8s_context.clone();
        st.settings.k8s_namespace = k8s_namespace.clone();
    }
    // No start time (`stilt down`, tools) means no `sinceTime`.
    let since_time = req
        .start_time
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|e| (format!("internal error: start time {t:?}: {e}"), None))
        })
        .transpose()?;
    let input = assemble::AssembleInput {
        main_path: path,
        args: &req.args,
        k8s_context,
        k8s_namespace,
        k8s_cluster,
        since_time,
        watch: req.watch,
        subcommand: req.subcommand.clone(),
        putenv: {
            let start: std::collections::BTreeMap<String, String> =
                req.host.environ().into_iter().collect();
            builtins::os::env_all()
                .into_iter()
                .filter(|(k, v)| start.get(k) != Some(v))
                .collect()
        },
    };
    let w2r = c.st.borrow().w2r_set;
    let assembled = if w2r {
        let f = eval::find_w2r(c).ok_or_else(|| {
            (
                "workload_to_resource_function: callback not found".to_owned(),
                None,
            )
        })?;
        // The state is taken out while the callback runs, so builtins it calls cannot collide
        // with the assembly's borrow.
        let mut st = c.st.take();
        let r = eval::with_function_caller(c, &f, |call| {
            assemble::assemble(&mut st, &input, Some(call))
        });
        let logs = std::mem::take(&mut c.st.borrow_mut().logs);
        st.logs.push_str(&logs);
        *c.st.borrow_mut() = st;
        r
    } else {
        let mut st = c.st.borrow_mut();
        assemble::assemble(&mut st, &input, None)
    }
    .map_err(|e| {
        let msg = format!("{e:#}");
        let loc = leading_location(&msg);
        (msg, loc)
    })?;
    let timings = LoadTimings {
        eval: t1 - t0,
        assemble: t1.elapsed(),
    };
    let objects = assembled.objects?;
    Ok((objects, assembled.resources, timings))
}
