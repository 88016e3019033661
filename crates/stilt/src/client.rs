//! A small blocking client for a running Stilt's API, found through its kubeconfig.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use stilt_api::KindInfo;

pub struct Client {
    server: String,
    token: String,
    agent: ureq::Agent,
}

/// An API error as the server described it (a Kubernetes Status).
#[derive(Debug)]
pub struct ApiFailure {
    pub code: u16,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiFailure {}

/// The largest API response read (the API server takes bodies up to 20 MiB; lists are larger).
const MAX_RESPONSE_BYTES: u64 = 1 << 30;

pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

impl Client {
    /// Connects to a running Stilt through `$STILT_HOME/config`: the instance on the selected
    /// port (`--port`, `STILT_PORT`, `TILT_PORT`), else the newest one.
    pub fn from_home() -> Result<Self> {
        let path = crate::home::kubeconfig_path();
        let context = crate::instance::selected_context();
        let cfg =
            stilt_apiserver::read_kubeconfig(&path, context.as_deref()).with_context(|| {
                let which = match &context {
                    Some(c) => format!("context {c:?} in {}", path.display()),
                    None => path.display().to_string(),
                };
                format!("no running Stilt found: cannot read {which} (start one with `stilt up`)")
            })?;
        let cert = ureq::tls::Certificate::from_pem(cfg.ca_pem.as_bytes())
            .map_err(|e| anyhow!("{}: bad certificate-authority-data: {e}", path.display()))?
            .to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                cert,
            ])))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Ok(Self {
            server: cfg.server,
            token: cfg.token,
            agent,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server, path)
    }

    pub fn collection_path(info: &KindInfo) -> String {
        format!("/apis/{}/{}", stilt_api::API_VERSION, info.plural)
    }

    pub fn object_path(info: &KindInfo, name: &str) -> String {
        format!("{}/{}", Self::collection_path(info), name)
    }

    fn check(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let code = resp.status().as_u16();
        // ureq stops at 10 MB by default; a list of a big repo's objects is larger.
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .context("reading the API response")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if code >= 400 {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(text);
            return Err(ApiFailure { code, message }.into());
        }
        Ok(body)
    }

    fn connect_error(&self, e: ureq::Error) -> anyhow::Error {
        anyhow!(
            "cannot reach Stilt's API at {} ({e}); is `stilt up` running?",
            self.server
        )
    }

    pub fn get(&self, path: &str, accept: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", accept)
            .call()
            .map_err(|e| self.connect_error(e))?;
        self.check(resp)
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Value> {
        let auth = format!("Bearer {}", self.token);
        let url = self.url(path);
        let bytes = serde_json::to_vec(body)?;
        let resp = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(&bytes[..]),
            "PUT" => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(&bytes[..]),
            "PATCH" => self
                .agent
                .patch(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(&bytes[..]),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            other => bail!("unsupported method {other}"),
        }
        .map_err(|e| self.connect_error(e))?;
        self.check(resp)
    }

    /// Streams watch events (one JSON object per line) to `on_event` until it returns false.
    pub fn watch(
        &self,
        path: &str,
        accept: &str,
        mut on_event: impl FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        let mut resp = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", accept)
            .config()
            .timeout_global(None)
            .build()
            .call()
            .map_err(|e| self.connect_error(e))?;
        if resp.status().as_u16() >= 400 {
            return self.check(resp).map(|_| ());
        }
        let reader = BufReader::new(resp.body_mut().as_reader());
        for line in reader.lines() {
            let line = line.context("reading the watch stream")?;
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(&line).context("decoding a watch event")?;
            if !on_event(event)? {
                break;
            }
        }
        Ok(())
    }
}

/// Resolves a kind name the way kubectl does (plural, singular, short name, Kind).
pub fn resolve_kind(name: &str) -> Result<&'static KindInfo> {
    stilt_api::kind_by_name(name).ok_or_else(|| {
        anyhow!("the server doesn't have a resource type {name:?} (see `stilt api-resources`)")
    })
}

/// Splits `kind/name` targets and plain `kind name...` into (kind, names).
pub fn targets(
    kind: Option<&str>,
    names: &[String],
) -> Result<Vec<(&'static KindInfo, Option<String>)>> {
    let Some(kind) = kind else {
        bail!("you must specify the type of resource (see `stilt api-resources`)")
    };
    let mut out = Vec::new();
    if kind.contains('/') {
        for spec in std::iter::once(kind.to_string()).chain(names.iter().cloned()) {
            let (k, n) = spec
                .split_once('/')
                .ok_or_else(|| anyhow!("{spec:?}: mix of kind/name and plain names"))?;
            out.push((resolve_kind(k)?, Some(n.to_string())));
        }
        return Ok(out);
    }
    let info = resolve_kind(kind)?;
    if names.is_empty() {
        out.push((info, None));
    } else {
        out.extend(names.iter().map(|n| (info, Some(n.clone()))));
    }
    Ok(out)
}

/// `kind.group/name` for messages (`cmd.tilt.dev/web`).
pub fn display_name(info: &KindInfo, name: &str) -> String {
    format!("{}.{}/{}", info.singular, stilt_api::GROUP, name)
}
