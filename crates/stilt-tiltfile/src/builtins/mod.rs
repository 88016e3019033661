//! Tilt's builtins, one module per area, registered into one `Globals` per load.

// Builtins mirror Tilt's signatures, which have many parameters.
#![allow(clippy::too_many_arguments)]

pub mod compose;
pub(crate) mod compose_model;
pub mod config;
pub mod core;
pub mod docker;
pub mod extensions;
pub(crate) mod git;
pub mod k8s;
pub(crate) mod kustomize_deps;
pub mod local;
pub mod os;
pub mod settings;
pub mod syncback;
pub mod v1alpha1;

use starlark::environment::Globals;
use starlark::environment::GlobalsBuilder;
use starlark::environment::LibraryExtension;

use crate::eval::ReqInfo;

/// What of a request the globals hold (`sys.argv`, `config.main_path`, …).
#[derive(Clone, PartialEq)]
struct GlobalsKey {
    argv: Vec<String>,
    executable: String,
    subcommand: String,
    main_path: std::path::PathBuf,
    main_dir: std::path::PathBuf,
}

/// The last globals built. Building them parses every builtin's documentation (milliseconds),
/// and every load of one `up` asks for the same ones.
static GLOBALS: std::sync::Mutex<Option<(GlobalsKey, Globals)>> = std::sync::Mutex::new(None);

/// The globals of a load of `req`. A second caller waits for a build in progress, so a load
/// that starts while [`crate::warm_up`] builds its globals takes them.
pub(crate) fn globals_for(req: &ReqInfo) -> Globals {
    let key = GlobalsKey {
        argv: req.argv.clone(),
        executable: req.executable.clone(),
        subcommand: req.subcommand.clone(),
        main_path: req.main_path.clone(),
        main_dir: req.main_dir.clone(),
    };
    let mut cached = GLOBALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((k, g)) = &*cached
        && *k == key
    {
        return g.clone();
    }
    let g = build_globals(req);
    *cached = Some((key, g.clone()));
    g
}

fn build_globals(req: &ReqInfo) -> Globals {
    let mut b = GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::SetType,
        LibraryExtension::Map,
        LibraryExtension::Filter,
    ]);
    core::register(&mut b);
    k8s::register(&mut b);
    docker::register(&mut b);
    local::register(&mut b);
    compose::register(&mut b);
    settings::register(&mut b);
    extensions::register(&mut b);
    git::register(&mut b);
    b.set("TRIGGER_MODE_AUTO", 1);
    b.set("TRIGGER_MODE_MANUAL", 2);
    b.namespace("os", |b| os::register(b, req));
    b.namespace("sys", |b| {
        b.set("argv", req.argv.clone());
        b.set("executable", req.executable.as_str());
    });
    b.namespace("shlex", core::register_shlex);
    b.namespace("config", |b| config::register(b, req));
    b.namespace("v1alpha1", v1alpha1::register);
    b.build()
}
