//! What `stilt mcp` reads from the running Stilt, through the same API and client as `stilt get`
//! and `stilt logs` (so log lines come from the log store's redacted copy, as they do there).

use super::logwin::LogLine;
use crate::client::{ApiFailure, Client};
use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use stilt_api::UIResource;

fn ui_kind() -> &'static stilt_api::KindInfo {
    stilt_api::kind_by_name("UIResource").expect("a Stilt kind")
}

pub fn uiresources(client: &Client) -> Result<Vec<UIResource>> {
    let list = client.get(&Client::collection_path(ui_kind()), "application/json")?;
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| serde_json::from_value(v).context("decoding a UIResource"))
        .collect()
}

/// One resource; a missing one is an error that lists the known names.
pub fn uiresource(client: &Client, name: &str) -> Result<UIResource> {
    match client.get(&Client::object_path(ui_kind(), name), "application/json") {
        Ok(v) => serde_json::from_value(v).context("decoding a UIResource"),
        Err(e)
            if e.downcast_ref::<ApiFailure>()
                .is_some_and(|f| f.code == 404) =>
        {
            let known: Vec<String> = uiresources(client)?
                .into_iter()
                .map(|u| u.metadata.name)
                .collect();
            Err(anyhow!(
                "no resource named {name:?} (resources: {})",
                known.join(", ")
            ))
        }
        Err(e) => Err(e),
    }
}

/// Any object as the API serves it.
pub fn object(client: &Client, kind: &str, name: &str) -> Result<Value> {
    let info = crate::client::resolve_kind(kind)?;
    client.get(&Client::object_path(info, name), "application/json")
}

/// Streams the resource's log lines stored now (oldest first) to `on_line` until it returns
/// false. `level` is `warn` or `error` (only lines of that level), as for `stilt logs --level`.
pub fn read_logs(
    client: &Client,
    resource: &str,
    level: Option<&str>,
    mut on_line: impl FnMut(LogLine) -> bool,
) -> Result<()> {
    let mut path = format!(
        "/stilt/v1/logs?follow=false&resources={}",
        crate::objects::encode(resource)
    );
    if let Some(l) = level.filter(|l| !l.is_empty()) {
        path.push_str(&format!("&level={}", crate::objects::encode(l)));
    }
    client.watch(&path, "application/x-ndjson", |v| {
        let line: LogLine = serde_json::from_value(v).context("decoding a log line")?;
        Ok(on_line(line))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(crate::objects::encode("(Tiltfile)"), "%28Tiltfile%29");
        assert_eq!(crate::objects::encode("web-1.a_b"), "web-1.a_b");
        assert_eq!(crate::objects::encode("a b&c"), "a%20b%26c");
    }
}
