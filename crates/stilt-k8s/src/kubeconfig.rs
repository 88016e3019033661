//! Reading kubeconfigs the way kubectl (client-go) does.
//!
//! kube-rs reads the same files but is stricter about credentials than client-go: a user with a
//! `token` and a stray `client-key-data` (what `kubectl config set users.u.client-key-data …`
//! leaves behind) fails with "failed to load client certificate: no base64 data or file",
//! although kubectl simply authenticates with the token. [`client_go_credentials`] rewrites each
//! user to what client-go would use:
//!
//! - an empty string is an unset field (`kubectl config set users.u.token ""`);
//! - a client certificate is used only as a pair: a key without a certificate is ignored (the
//!   token, if any, authenticates); a certificate without a key is an error naming the user, as
//!   in kubectl ("client-key-data or client-key must be specified …");
//! - inline data wins over the file (`client-certificate-data` over `client-certificate`,
//!   `client-key-data` over `client-key`), an inline `token` over `tokenFile`.

use crate::error::{K8sError, Result};
use kube::config::Kubeconfig;
use serde_json::Value;
use std::path::Path;

/// Reads a kubeconfig file (`None`: `$KUBECONFIG`, merged as kubectl merges it, or
/// `~/.kube/config`) and applies [`client_go_credentials`].
pub fn read(path: Option<&Path>) -> Result<Kubeconfig> {
    let conn = |e: &dyn std::fmt::Display| K8sError::Connection(e.to_string());
    let kc = match path {
        Some(p) => Kubeconfig::read_from(p).map_err(|e| conn(&e))?,
        None => Kubeconfig::read().map_err(|e| conn(&e))?,
    };
    client_go_credentials(kc)
}

/// Rewrites every user's credentials to the ones client-go would use (see the module docs).
pub fn client_go_credentials(kc: Kubeconfig) -> Result<Kubeconfig> {
    let mut v = serde_json::to_value(&kc).map_err(|e| K8sError::Other(e.to_string()))?;
    if let Some(users) = v.get_mut("users").and_then(Value::as_array_mut) {
        for u in users {
            let name = u["name"].as_str().unwrap_or("").to_string();
            if let Some(user) = u.get_mut("user").and_then(Value::as_object_mut) {
                normalize_user(&name, user)?;
            }
        }
    }
    serde_json::from_value(v).map_err(|e| K8sError::Connection(format!("kubeconfig: {e}")))
}

fn normalize_user(name: &str, user: &mut serde_json::Map<String, Value>) -> Result<()> {
    const FIELDS: &[&str] = &[
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
        "username",
        "password",
    ];
    for f in FIELDS {
        if user.get(*f).is_some_and(|v| v.is_null() || v == "") {
            user.remove(*f);
        }
    }
    let has = |user: &serde_json::Map<String, Value>, k: &str| user.contains_key(k);
    let cert = has(user, "client-certificate") || has(user, "client-certificate-data");
    let key = has(user, "client-key") || has(user, "client-key-data");
    if cert && !key {
        return Err(K8sError::Connection(format!(
            "kubeconfig user {name:?}: client-key-data or client-key must be specified to use \
             the clientCert authentication method"
        )));
    }
    if key && !cert {
        user.remove("client-key");
        user.remove("client-key-data");
    }
    if has(user, "client-certificate-data") {
        user.remove("client-certificate");
    }
    if has(user, "client-key-data") {
        user.remove("client-key");
    }
    if has(user, "token") {
        user.remove("tokenFile");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_after(user: Value) -> Result<Value> {
        let kc: Kubeconfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
            "users": [{"name": "u", "user": user}],
        }))
        .unwrap();
        let out = client_go_credentials(kc)?;
        let v = serde_json::to_value(&out).unwrap();
        Ok(v["users"][0]["user"].clone())
    }

    #[test]
    fn credentials_as_client_go_uses_them() {
        let (cert, key) = ("Y2VydA==", "a2V5");
        // (user as written, fields left, fields gone)
        let cases: Vec<(Value, Vec<&str>, Vec<&str>)> = vec![
            // kubectl config set-credentials u --token=t; set users.u.client-key-data …
            (
                serde_json::json!({"token": "t", "client-key-data": key}),
                vec!["token"],
                vec!["client-key-data"],
            ),
            // a full pair and a token: both are used
            (
                serde_json::json!({"token": "t", "client-certificate-data": cert, "client-key-data": key}),
                vec!["token", "client-certificate-data", "client-key-data"],
                vec![],
            ),
            // empty strings are unset
            (
                serde_json::json!({"token": "t", "client-certificate-data": "", "client-key": ""}),
                vec!["token"],
                vec!["client-certificate-data", "client-key"],
            ),
            // inline data wins over files, inline token over tokenFile
            (
                serde_json::json!({"client-certificate-data": cert, "client-certificate": "/c",
                                   "client-key-data": key, "client-key": "/k",
                                   "token": "t", "tokenFile": "/t"}),
                vec!["client-certificate-data", "client-key-data", "token"],
                vec!["client-certificate", "client-key", "tokenFile"],
            ),
            // files only are kept
            (
                serde_json::json!({"client-certificate": "/c", "client-key": "/k"}),
                vec!["client-certificate", "client-key"],
                vec![],
            ),
        ];
        for (user, kept, gone) in cases {
            let out = user_after(user.clone()).unwrap();
            for k in kept {
                assert!(out.get(k).is_some(), "{user}: {k} should stay in {out}");
            }
            for k in gone {
                assert!(out.get(k).is_none(), "{user}: {k} should go from {out}");
            }
        }
    }

    #[test]
    fn a_certificate_without_a_key_names_the_user() {
        let e = user_after(serde_json::json!({"client-certificate-data": "Y2VydA=="}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"u\"") && e.contains("client-key"), "{e}");
    }
}
