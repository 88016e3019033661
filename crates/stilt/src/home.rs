//! Where Stilt keeps its per-user files: `~/.stilt`, or `$STILT_HOME`.

use std::path::PathBuf;

pub fn stilt_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("STILT_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".stilt")
}

pub fn kubeconfig_path() -> PathBuf {
    stilt_home().join("config")
}
