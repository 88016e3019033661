//! Tests as data: every `tests/fixtures/<name>/Tiltfile` is loaded with a [`FakeHost`] and the
//! result (objects, resources, config files, warnings, logs) or the error message is compared to
//! the insta snapshot `tests/snapshots/fixtures__<name>.snap`.
//!
//! Optional files next to a fixture's Tiltfile:
//! - `args`: Tiltfile args, one per line.
//! - `env`: `KEY=VALUE` lines added to the fake environment.
//! - `host.json`: `{"context": "...", "cluster": "...", "namespace": "...", "subcommand": "ci",
//!   "bins": ["helm"], "commands": {"<command line>": {"stdout": "...", "status": 0}},
//!   "run_unknown": false}` (false: no real commands or PATH lookups at all);
//!   `[FIXTURE]` in a command line or its stdout stands for the fixture directory.
//!
//! Absolute paths are redacted to `[FIXTURE]` (the fixture directory) and `[TESTS]`.

use std::path::Path;
use std::path::PathBuf;

mod common;
use common::fixtures_dir;
use common::load_fixture;

pub fn run_fixture(dir: &Path) -> String {
    let out = match load_fixture(dir) {
        Ok(r) => {
            // Kinds the loader alone produces must pass the API server's validation.
            for o in r.objects.iter().filter(|o| o.kind() == "Syncback") {
                let errs = o.validate();
                assert!(errs.is_empty(), "{} {}: {errs:?}", o.kind(), o.name());
            }
            let objects: Vec<serde_json::Value> = r.objects.iter().map(|o| o.to_value()).collect();
            // Only settings that differ from the defaults (context/namespace always differ).
            let defaults = serde_json::to_value(stilt_tiltfile::Settings::default()).unwrap();
            let mut settings = serde_json::to_value(&r.settings).unwrap();
            if let (Some(s), Some(d)) = (settings.as_object_mut(), defaults.as_object()) {
                s.retain(|k, v| d.get(k) != Some(v) && k != "k8s_context" && k != "k8s_namespace");
            }
            let mut v = serde_json::json!({
                "resources": r.resources,
                "config_files": r.config_files,
                "warnings": r.warnings,
                "logs": r.logs,
                "settings": settings,
                "objects": objects,
            });
            // Redact before rendering: YAML folds long strings, so the checkout's path length
            // must not reach the renderer.
            redact_paths(&mut v, dir);
            stilt_tiltfile::to_yaml(&v)
        }
        Err(e) => {
            let loc = e
                .location
                .map(|l| format!("{}:{}:{}", l.file.display(), l.line, l.column))
                .unwrap_or_default();
            format!("ERROR at {loc}\n{}\n--- logs ---\n{}", e.message, e.logs)
        }
    };
    let mut repo = dir.to_path_buf();
    while !repo.join(".git").exists() && repo.pop() {}
    let mut out = out
        .replace(&dir.display().to_string(), "[FIXTURE]")
        .replace(&fixtures_dir().display().to_string(), "[TESTS]");
    if repo.join(".git").exists() {
        out = out.replace(&repo.join(".git").display().to_string(), "[REPO]/.git");
    }
    out
}

/// The same replacements as on the rendered text, applied to every string of a value.
fn redact_paths(v: &mut serde_json::Value, dir: &Path) {
    match v {
        serde_json::Value::String(s) => {
            let mut repo = dir.to_path_buf();
            while !repo.join(".git").exists() && repo.pop() {}
            let mut out = s
                .replace(&dir.display().to_string(), "[FIXTURE]")
                .replace(&fixtures_dir().display().to_string(), "[TESTS]");
            if repo.join(".git").exists() {
                out = out.replace(&repo.join(".git").display().to_string(), "[REPO]/.git");
            }
            *s = out;
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_paths(x, dir)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| redact_paths(x, dir)),
        _ => {}
    }
}

#[test]
fn fixtures() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Tiltfile").is_file())
        .collect();
    dirs.sort();
    let only = std::env::var("FIXTURE").ok();
    if only.is_none() {
        assert!(
            dirs.len() >= 40,
            "expected at least 40 fixtures, found {}",
            dirs.len()
        );
    }
    for d in dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let t0 = std::time::Instant::now();
        let out = run_fixture(&d);
        eprintln!("fixture {name}: {:?}", t0.elapsed());
        insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false, description => format!("tests/fixtures/{name}/Tiltfile")}, {
            insta::assert_snapshot!(name, out);
        });
    }
}
