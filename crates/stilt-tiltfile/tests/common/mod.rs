//! Fixture setup shared by the snapshot test and the differential test against Tilt.

use std::path::Path;
use std::path::PathBuf;

use stilt_tiltfile::FakeHost;
use stilt_tiltfile::LoadRequest;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Loads a fixture the way both tests do: its `env`, `args` and `host.json` applied to a
/// [`FakeHost`], `start_time` fixed, the fixtures' `_extensions` as the extension repo.
#[allow(clippy::result_large_err)] // the loader's own error type, returned as is
pub fn load_fixture(
    dir: &Path,
) -> Result<stilt_tiltfile::TiltfileResult, stilt_tiltfile::LoadError> {
    let mut host = FakeHost {
        cwd: dir.to_path_buf(),
        ..FakeHost::default()
    };
    if let Ok(env) = std::fs::read_to_string(dir.join("env")) {
        for l in env.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = l.split_once('=').unwrap();
            host.env.insert(k.to_owned(), v.to_owned());
        }
    }
    let mut subcommand = "up".to_owned();
    if let Ok(h) = std::fs::read_to_string(dir.join("host.json")) {
        let j: serde_json::Value = serde_json::from_str(&h).unwrap();
        if let Some(c) = j["context"].as_str() {
            host.context = c.into();
            host.cluster = j["cluster"].as_str().unwrap_or(c).into();
        }
        if let Some(n) = j["namespace"].as_str() {
            host.namespace = n.into();
        }
        if let Some(s) = j["subcommand"].as_str() {
            subcommand = s.into();
        }
        if let Some(r) = j["run_unknown"].as_bool() {
            host.run_unknown = r;
        }
        for b in j["bins"].as_array().into_iter().flatten() {
            host.path_bins.push(b.as_str().unwrap().to_owned());
        }
        for (cmd, out) in j["commands"].as_object().into_iter().flatten() {
            let key = cmd.replace("[FIXTURE]", &dir.display().to_string());
            host.commands.insert(
                key,
                stilt_tiltfile::HostOutput {
                    status: out["status"].as_i64().unwrap_or(0) as i32,
                    stdout: out["stdout"]
                        .as_str()
                        .unwrap_or("")
                        .replace("[FIXTURE]", &dir.display().to_string()),
                    stderr: out["stderr"].as_str().unwrap_or("").to_owned(),
                },
            );
        }
    }
    let args: Vec<String> = std::fs::read_to_string(dir.join("args"))
        .map(|a| {
            a.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut req = LoadRequest::new(dir.join("Tiltfile"), &host);
    req.args = args;
    req.watch = subcommand != "ci";
    req.subcommand = subcommand;
    req.start_time = Some("2026-01-01T00:00:00Z".into());
    req.extensions_dir = Some(fixtures_dir().join("_extensions"));
    stilt_tiltfile::load(&req)
}
