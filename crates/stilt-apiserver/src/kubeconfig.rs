//! The kubeconfig that points kubectl and `stilt get` at a running Stilt.

use serde_json::json;
use std::path::{Path, PathBuf};

/// Where a running Stilt can be reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Kubeconfig {
    pub server: String,
    pub token: String,
    /// The server's certificate (PEM), trusted as the cluster's certificate authority.
    pub ca_pem: String,
}

/// The context name in the kubeconfig Stilt writes.
pub const CONTEXT: &str = "stilt";

/// Writes `dir/config` (mode 0600) with one cluster, user and context named `stilt`.
pub fn write_kubeconfig(dir: &Path, cfg: &Kubeconfig) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("config");
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": cfg.server,
            "certificate-authority-data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cfg.ca_pem),
        }}],
        "users": [{"name": CONTEXT, "user": {"token": cfg.token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
    });
    // JSON is valid YAML, and kubectl reads it as a kubeconfig.
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    let tmp = dir.join(".config.tmp");
    std::fs::write(&tmp, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Reads back the server and token of a kubeconfig written by [`write_kubeconfig`].
pub fn read_kubeconfig(path: &Path) -> std::io::Result<Kubeconfig> {
    let text = std::fs::read_to_string(path)?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_saphyr::from_str(&text))
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
    let server = doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = doc["users"][0]["user"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap_or_default();
    let ca_pem = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    if server.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: no server address", path.display()),
        ));
    }
    Ok(Kubeconfig {
        server,
        token,
        ca_pem,
    })
}
