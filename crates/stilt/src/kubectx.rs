//! `--context` / `--namespace`: a kubeconfig holding only the chosen context, with the chosen
//! namespace as its default, that every Kubernetes client of the run reads through `KUBECONFIG`
//! (Stilt's own client, kubectl in the Tiltfile's `k8s_context()` / `local()`, local resources,
//! `k8s_custom_deploy` commands). The context keeps its name, so the Tiltfile's
//! `allow_k8s_contexts` guard applies to the chosen context as it would to the current one.

use crate::args::KubeFlags;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Reduces a (merged) kubeconfig to one context, its cluster and its user: the context is
/// `context` or the current one, `namespace` (when given) becomes its default namespace, and
/// certificate files are inlined (`read` reads them) so the result stands alone.
pub fn flatten(
    kubeconfig: &Value,
    context: Option<&str>,
    namespace: Option<&str>,
    read: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<Value> {
    let ctx_name = context
        .map(str::to_string)
        .or_else(|| kubeconfig["current-context"].as_str().map(str::to_string))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow!("the kubeconfig has no current context; pass --context"))?;
    let named = |list: &str, name: &str| -> Option<Value> {
        kubeconfig[list]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    };
    let Some(mut ctx) = named("contexts", &ctx_name) else {
        let known: Vec<&str> = kubeconfig["contexts"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        bail!(
            "no Kubernetes context {ctx_name:?} in the kubeconfig (contexts: {})",
            known.join(", ")
        );
    };
    if let Some(ns) = namespace {
        ctx["context"]["namespace"] = json!(ns);
    }
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or("").to_string();
    let user_name = ctx["context"]["user"].as_str().unwrap_or("").to_string();
    let mut cluster =
        named("clusters", &cluster_name).ok_or_else(|| anyhow!("context {ctx_name:?} names cluster {cluster_name:?}, which the kubeconfig does not define"))?;
    inline(&mut cluster["cluster"], "certificate-authority", read)?;
    let mut out = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": ctx_name,
        "contexts": [ctx],
        "clusters": [cluster],
        "users": [],
    });
    if let Some(mut user) = named("users", &user_name) {
        inline(&mut user["user"], "client-certificate", read)?;
        inline(&mut user["user"], "client-key", read)?;
        out["users"] = json!([user]);
    }
    Ok(out)
}

/// Replaces a file reference (`field`) by its content (`field-data`, base64), as
/// `kubectl config view --flatten` does; inline data already there wins.
fn inline(
    obj: &mut Value,
    field: &str,
    read: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<()> {
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let Some(path) = map.remove(field) else {
        return Ok(());
    };
    let data_key = format!("{field}-data");
    if map
        .get(&data_key)
        .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        return Ok(());
    }
    let path = path.as_str().unwrap_or_default();
    let bytes = read(path).with_context(|| format!("reading {field} {path}"))?;
    map.insert(
        data_key,
        json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    Ok(())
}

/// Where the kubeconfig of the instance on `port` goes.
pub fn path_for(home: &Path, port: u16) -> PathBuf {
    home.join(format!("kubeconfig-{port}.json"))
}

/// With `--context` or `--namespace`: writes the flattened kubeconfig to `path` (readable only by
/// the user: it holds credentials) and points `KUBECONFIG` at it. Must run before any thread
/// starts (it sets an environment variable).
pub fn apply(flags: &KubeFlags, path: &Path) -> Result<Option<(String, String)>> {
    if flags.context.is_none() && flags.namespace.is_none() {
        return Ok(None);
    }
    let kc =
        stilt_k8s::kubeconfig::read(None).map_err(|e| anyhow!("reading the kubeconfig: {e}"))?;
    let kc = serde_json::to_value(&kc)?;
    let flat = flatten(
        &kc,
        flags.context.as_deref(),
        flags.namespace.as_deref(),
        &|p| std::fs::read(p),
    )?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(path, &serde_json::to_vec_pretty(&flat)?)
        .with_context(|| format!("writing {}", path.display()))?;
    // SAFETY: called from the CLI before the runtime (or any other thread) starts.
    unsafe { std::env::set_var("KUBECONFIG", path) };
    let ctx = flat["current-context"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = flat["contexts"][0]["context"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    eprintln!(
        "stilt: Kubernetes context \"{ctx}\", namespace \"{ns}\" (kubeconfig {})",
        path.display()
    );
    Ok(Some((ctx, ns)))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Value {
        json!({
            "current-context": "dev",
            "contexts": [
                {"name": "dev", "context": {"cluster": "c1", "user": "u1", "namespace": "team"}},
                {"name": "prod", "context": {"cluster": "c2", "user": "u2"}},
            ],
            "clusters": [
                {"name": "c1", "cluster": {"server": "https://one", "certificate-authority": "/ca.crt"}},
                {"name": "c2", "cluster": {"server": "https://two", "certificate-authority-data": "Q0E="}},
            ],
            "users": [
                {"name": "u1", "user": {"token": "t1"}},
                {"name": "u2", "user": {"client-certificate": "/u2.crt", "client-key": "/u2.key"}},
            ],
        })
    }

    fn read(p: &str) -> std::io::Result<Vec<u8>> {
        match p {
            "/ca.crt" => Ok(b"CA1".to_vec()),
            "/u2.crt" => Ok(b"CRT".to_vec()),
            "/u2.key" => Ok(b"KEY".to_vec()),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }

    #[test]
    fn keeps_only_the_chosen_context_with_its_namespace() {
        // (context, namespace) → (current context, server, namespace, user)
        let cases = [
            (None, None, "dev", "https://one", Some("team"), "u1"),
            (
                None,
                Some("other"),
                "dev",
                "https://one",
                Some("other"),
                "u1",
            ),
            (Some("prod"), None, "prod", "https://two", None, "u2"),
            (
                Some("prod"),
                Some("ns2"),
                "prod",
                "https://two",
                Some("ns2"),
                "u2",
            ),
        ];
        for (ctx, ns, want_ctx, server, want_ns, user) in cases {
            let f = flatten(&config(), ctx, ns, &read).unwrap();
            assert_eq!(f["current-context"], want_ctx, "{ctx:?} {ns:?}");
            assert_eq!(f["contexts"].as_array().unwrap().len(), 1);
            assert_eq!(f["contexts"][0]["name"], want_ctx);
            assert_eq!(f["clusters"][0]["cluster"]["server"], server);
            assert_eq!(
                f["contexts"][0]["context"]["namespace"].as_str(),
                want_ns,
                "{ctx:?} {ns:?}"
            );
            assert_eq!(f["users"][0]["name"], user);
        }
    }

    #[test]
    fn inlines_certificate_files() {
        let f = flatten(&config(), None, None, &read).unwrap();
        let c = &f["clusters"][0]["cluster"];
        assert_eq!(c["certificate-authority-data"], "Q0Ex");
        assert!(c.get("certificate-authority").is_none());
        let f = flatten(&config(), Some("prod"), None, &read).unwrap();
        assert_eq!(
            f["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        let u = &f["users"][0]["user"];
        assert_eq!(u["client-certificate-data"], "Q1JU");
        assert_eq!(u["client-key-data"], "S0VZ");
    }

    #[test]
    fn an_unknown_context_is_an_error_naming_the_known_ones() {
        let err = flatten(&config(), Some("nope"), None, &read)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(err.contains("dev, prod"), "{err}");
        let mut no_current = config();
        no_current["current-context"] = json!("");
        assert!(flatten(&no_current, None, None, &read).is_err());
    }
}
