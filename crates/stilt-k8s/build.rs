//! Builds the in-container helper (`stilt-syncer`) as a static binary and embeds it, so every
//! Stilt build has the live-update fast path and syncback without a separate build step.
//!
//! The helper is built by a nested `cargo build` into its own target directory (no lock is
//! shared with the outer build). If that fails, an empty file is embedded and Stilt falls back
//! to `$STILT_SYNCER_BIN`, a helper next to the binary, or exec + tar. `STILT_EMBED_HELPER=0`
//! skips the nested build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let embedded = out.join("stilt-syncer");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let workspace = manifest_dir.join("../..");
    println!("cargo:rerun-if-env-changed=STILT_EMBED_HELPER");
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("crates/stilt-syncer/src").display()
    );
    let _ = std::fs::write(&embedded, b"");
    if std::env::var("STILT_EMBED_HELPER").is_ok_and(|v| v == "0") {
        return;
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux") {
        return;
    }
    match build_helper(&workspace, &out, &target) {
        Ok(bin) => {
            std::fs::copy(&bin, &embedded).expect("copying the helper");
        }
        Err(e) => println!(
            "cargo:warning=stilt-syncer helper not embedded ({e}); live update falls back to exec + tar unless STILT_SYNCER_BIN is set"
        ),
    }
}

/// `<target dir>/<profile>/build/<pkg>/out` → `<target dir>/embedded-helper`, shared by every
/// profile so the helper is compiled once.
fn helper_target_dir(out: &Path) -> PathBuf {
    out.ancestors()
        .nth(4)
        .map(|t| t.join("embedded-helper"))
        .unwrap_or_else(|| out.join("embedded-helper"))
}

fn build_helper(workspace: &Path, out: &Path, target: &str) -> Result<PathBuf, String> {
    let target_dir = helper_target_dir(out);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "--release", "--locked", "-p", "stilt-syncer"])
        .args(["--no-default-features", "--target", target])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0");
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of stilt-syncer exited with {status}"));
    }
    let bin = target_dir.join(target).join("release").join("stilt-syncer");
    if !bin.is_file() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}
