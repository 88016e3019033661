//! The kubeconfig that points kubectl and `stilt get` at running Stilt instances.
//!
//! One file holds a context per instance (several `stilt up`s can run side by side, one per web
//! port); writers merge their own context in and leave the others alone.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where a running Stilt can be reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Kubeconfig {
    pub server: String,
    pub token: String,
    /// The server's certificate (PEM), trusted as the cluster's certificate authority.
    pub ca_pem: String,
}

/// The context name of the instance on the default port.
pub const CONTEXT: &str = "stilt";

fn invalid(path: &Path, msg: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {msg}", path.display()),
    )
}

fn read_doc(path: &Path) -> std::io::Result<Value> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text)
        .or_else(|_| serde_saphyr::from_str(&text))
        .map_err(|e| invalid(path, e))
}

fn empty_doc() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
    })
}

/// Replaces (or appends) the entry called `name` in the list `doc[list]`.
fn upsert(doc: &mut Value, list: &str, name: &str, entry: Value) {
    if !doc[list].is_array() {
        doc[list] = json!([]);
    }
    let items = doc[list].as_array_mut().expect("made an array above");
    items.retain(|i| i["name"] != name);
    items.push(entry);
}

fn remove(doc: &mut Value, list: &str, name: &str) {
    if let Some(items) = doc[list].as_array_mut() {
        items.retain(|i| i["name"] != name);
    }
}

fn write_doc(dir: &Path, doc: &Value) -> std::io::Result<PathBuf> {
    let path = dir.join("config");
    // JSON is valid YAML, and kubectl reads it as a kubeconfig.
    let text = serde_json::to_string_pretty(doc).expect("JSON values serialize");
    let tmp = dir.join(format!(".config.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Writes the context `context` (cluster, user and context of that name) into `dir/config`
/// (mode 0600) and makes it the current context. Other contexts in the file are kept; a file that
/// cannot be parsed is replaced. Callers serialise concurrent writers (see the binary's instance lock).
pub fn write_kubeconfig(dir: &Path, context: &str, cfg: &Kubeconfig) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut doc = read_doc(&dir.join("config")).unwrap_or_else(|_| empty_doc());
    if !doc.is_object() {
        doc = empty_doc();
    }
    let ca = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cfg.ca_pem);
    upsert(
        &mut doc,
        "clusters",
        context,
        json!({"name": context, "cluster": {"server": cfg.server, "certificate-authority-data": ca}}),
    );
    upsert(
        &mut doc,
        "users",
        context,
        json!({"name": context, "user": {"token": cfg.token}}),
    );
    upsert(
        &mut doc,
        "contexts",
        context,
        json!({"name": context, "context": {"cluster": context, "user": context}}),
    );
    doc["current-context"] = json!(context);
    write_doc(dir, &doc)
}

/// Removes `context` from `dir/config`; when it was current, another remaining context (if any)
/// becomes current. A missing file is not an error.
pub fn remove_kubeconfig_context(dir: &Path, context: &str) -> std::io::Result<()> {
    let mut doc = match read_doc(&dir.join("config")) {
        Ok(doc) => doc,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for list in ["clusters", "users", "contexts"] {
        remove(&mut doc, list, context);
    }
    if doc["current-context"] == context {
        let next = doc["contexts"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(|c| c["name"].as_str())
            .unwrap_or_default()
            .to_string();
        doc["current-context"] = json!(next);
    }
    write_doc(dir, &doc).map(|_| ())
}

/// The context names in a kubeconfig, current one first.
pub fn kubeconfig_contexts(path: &Path) -> std::io::Result<Vec<String>> {
    let doc = read_doc(path)?;
    let current = doc["current-context"].as_str().unwrap_or_default();
    let mut names: Vec<String> = doc["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort_by_key(|n| n != current);
    Ok(names)
}

fn named<'a>(doc: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    doc[list].as_array()?.iter().find(|i| i["name"] == name)
}

/// Reads back the server, token and CA of `context` (the current context when `None`).
pub fn read_kubeconfig(path: &Path, context: Option<&str>) -> std::io::Result<Kubeconfig> {
    let doc = read_doc(path)?;
    let context = match context {
        Some(c) => c.to_string(),
        None => doc["current-context"]
            .as_str()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| invalid(path, "no current context"))?
            .to_string(),
    };
    let ctx = named(&doc, "contexts", &context)
        .ok_or_else(|| invalid(path, format!("no context {context:?}")))?;
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let cluster = named(&doc, "clusters", cluster_name)
        .ok_or_else(|| invalid(path, format!("context {context:?} names no cluster")))?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = named(&doc, "users", user_name)
        .and_then(|u| u["user"]["token"].as_str())
        .unwrap_or_default()
        .to_string();
    let ca = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap_or_default();
    let ca_pem = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    if server.is_empty() {
        return Err(invalid(
            path,
            format!("context {context:?} has no server address"),
        ));
    }
    Ok(Kubeconfig {
        server,
        token,
        ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(server: &str) -> Kubeconfig {
        Kubeconfig {
            server: server.into(),
            token: format!("tok-{server}"),
            ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        }
    }

    #[test]
    fn contexts_of_several_instances_live_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_kubeconfig(dir.path(), "stilt", &cfg("https://127.0.0.1:1")).unwrap();
        write_kubeconfig(dir.path(), "stilt-10351", &cfg("https://127.0.0.1:2")).unwrap();
        assert_eq!(
            read_kubeconfig(&path, Some("stilt")).unwrap(),
            cfg("https://127.0.0.1:1")
        );
        assert_eq!(
            read_kubeconfig(&path, None).unwrap(),
            cfg("https://127.0.0.1:2"),
            "the newest instance is current"
        );
        // A restart of the first instance replaces its own entries only.
        write_kubeconfig(dir.path(), "stilt", &cfg("https://127.0.0.1:3")).unwrap();
        assert_eq!(
            kubeconfig_contexts(&path).unwrap(),
            vec!["stilt".to_string(), "stilt-10351".to_string()]
        );
        remove_kubeconfig_context(dir.path(), "stilt").unwrap();
        assert_eq!(
            read_kubeconfig(&path, None).unwrap(),
            cfg("https://127.0.0.1:2")
        );
        assert!(read_kubeconfig(&path, Some("stilt")).is_err());
    }

    #[test]
    fn an_unreadable_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), "[not a kubeconfig").unwrap();
        let path = write_kubeconfig(dir.path(), "stilt", &cfg("https://127.0.0.1:1")).unwrap();
        assert_eq!(
            read_kubeconfig(&path, Some("stilt")).unwrap(),
            cfg("https://127.0.0.1:1")
        );
    }
}
