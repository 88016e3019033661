//! `get`, `apply`, `create`, `delete`, `edit`, `patch`, `wait` and `api-resources`.

use crate::args::*;
use crate::client::{ApiFailure, Client, TABLE_ACCEPT, display_name, resolve_kind, targets};
use crate::print::{self, Format};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use stilt_api::KindInfo;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn query(selector: Option<&str>, field_selector: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(s) = selector {
        q.push(format!("labelSelector={}", encode(s)));
    }
    if let Some(s) = field_selector {
        q.push(format!("fieldSelector={}", encode(s)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Percent-encodes a query value (resource names may hold parentheses, dots, …).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>()
        .is_some_and(|f| f.code == 404)
}

fn server_error(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<ApiFailure>() {
        Some(f) => anyhow!("Error from server ({}): {}", reason(f.code), f.message),
        None => e,
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        403 => "Forbidden",
        405 => "MethodNotAllowed",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "Unknown",
    }
}

pub fn get(a: GetArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let format = Format::parse(a.output.as_deref())?;
    let targets = targets(a.target.kind.as_deref(), &a.target.names)?;
    let q = query(a.selector.as_deref(), a.field_selector.as_deref());
    let mut failed = false;
    if let Format::Table { wide } = format {
        let mut printed_header = false;
        for (info, name) in &targets {
            let path = match name {
                Some(n) => Client::object_path(info, n),
                None => format!("{}{q}", Client::collection_path(info)),
            };
            match client.get(&path, TABLE_ACCEPT) {
                Ok(table) => {
                    if name.is_none()
                        && table["rows"].as_array().is_none_or(Vec::is_empty)
                        && !a.watch
                    {
                        eprintln!("No resources found");
                        continue;
                    }
                    let lines = print::table_lines(&table, wide, !a.no_headers && !printed_header);
                    printed_header = printed_header
                        || (targets.len() > 1 && targets.iter().all(|(i, _)| i.kind == info.kind));
                    for l in lines {
                        println!("{l}");
                    }
                    if a.watch {
                        let rv = table["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("0")
                            .to_string();
                        return watch_rows(&client, info, name.as_deref(), &q, &rv, wide);
                    }
                }
                Err(e) => {
                    eprintln!("{}", server_error(e));
                    failed = true;
                }
            }
        }
    } else {
        let mut objs = Vec::new();
        let single = targets.len() == 1 && targets[0].1.is_some();
        for (info, name) in &targets {
            match name {
                Some(n) => match client.get(&Client::object_path(info, n), "application/json") {
                    Ok(o) => objs.push(o),
                    Err(e) => {
                        eprintln!("{}", server_error(e));
                        failed = true;
                    }
                },
                None => {
                    let list = client
                        .get(
                            &format!("{}{q}", Client::collection_path(info)),
                            "application/json",
                        )
                        .map_err(server_error)?;
                    objs.extend(list["items"].as_array().cloned().unwrap_or_default());
                }
            }
        }
        if !(failed && objs.is_empty()) {
            print::print_objects(&objs, &format, !single)?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn watch_rows(
    client: &Client,
    info: &KindInfo,
    name: Option<&str>,
    q: &str,
    rv: &str,
    wide: bool,
) -> Result<ExitCode> {
    let mut params = vec![format!("watch=true"), format!("resourceVersion={rv}")];
    if let Some(n) = name {
        params.push(format!(
            "fieldSelector={}",
            encode(&format!("metadata.name={n}"))
        ));
    }
    let sep = if q.is_empty() { "?" } else { "&" };
    let path = format!(
        "{}{q}{sep}{}",
        Client::collection_path(info),
        params.join("&")
    );
    client.watch(&path, TABLE_ACCEPT, |ev| {
        if ev["type"] == "ERROR" {
            bail!(
                "watch ended: {}",
                ev["object"]["message"].as_str().unwrap_or("error")
            );
        }
        if ev["type"] == "BOOKMARK" {
            return Ok(true);
        }
        for l in print::table_lines(&ev["object"], wide, false) {
            println!("{l}");
        }
        Ok(true)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn object_identity(obj: &Value) -> Result<(&'static KindInfo, String)> {
    let kind = obj["kind"]
        .as_str()
        .ok_or_else(|| anyhow!("object has no kind: {obj}"))?;
    let info = resolve_kind(kind)?;
    let name = obj["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("{kind} has no metadata.name"))?;
    Ok((info, name.to_string()))
}

/// A merge patch taking `from` to `to`: changed keys set, removed keys nulled.
fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut patch = serde_json::Map::new();
            for (k, tv) in t {
                match f.get(k) {
                    Some(fv) if fv == tv => {}
                    Some(fv) if fv.is_object() && tv.is_object() => {
                        patch.insert(k.clone(), merge_diff(fv, tv));
                    }
                    _ => {
                        patch.insert(k.clone(), tv.clone());
                    }
                }
            }
            for k in f.keys() {
                if !t.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

pub fn apply(a: FileArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut failed = false;
    for file in &a.files {
        for mut obj in crate::manifest::read_objects(file)? {
            let (info, name) = object_identity(&obj)?;
            obj["apiVersion"] = json!(stilt_api::API_VERSION);
            let mut applied = obj.clone();
            if let Some(m) = applied["metadata"].as_object_mut()
                && let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut)
            {
                a.remove(LAST_APPLIED);
            }
            let last_applied = serde_json::to_string(&applied)?;
            obj["metadata"]["annotations"][LAST_APPLIED] = json!(last_applied);
            let result = match client.get(&Client::object_path(info, &name), "application/json") {
                Err(e) if is_not_found(&e) => client
                    .send(
                        "POST",
                        &Client::collection_path(info),
                        "application/json",
                        &obj,
                    )
                    .map(|_| "created"),
                Err(e) => Err(e),
                Ok(current) => {
                    let previous = current["metadata"]["annotations"][LAST_APPLIED]
                        .as_str()
                        .and_then(|s| serde_json::from_str::<Value>(s).ok())
                        .unwrap_or_else(|| current.clone());
                    let mut previous_with_annotation = previous.clone();
                    previous_with_annotation["metadata"]["annotations"][LAST_APPLIED] =
                        current["metadata"]["annotations"][LAST_APPLIED].clone();
                    let patch = merge_diff(&previous_with_annotation, &obj);
                    client
                        .send(
                            "PATCH",
                            &Client::object_path(info, &name),
                            "application/merge-patch+json",
                            &patch,
                        )
                        .map(|after| {
                            if after["metadata"]["resourceVersion"]
                                == current["metadata"]["resourceVersion"]
                            {
                                "unchanged"
                            } else {
                                "configured"
                            }
                        })
                }
            };
            match result {
                Ok(verb) => println!("{} {verb}", display_name(info, &name)),
                Err(e) => {
                    eprintln!("{}", server_error(e));
                    failed = true;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn create(a: FileArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut failed = false;
    for file in &a.files {
        for obj in crate::manifest::read_objects(file)? {
            let (info, name) = object_identity(&obj)?;
            match client.send(
                "POST",
                &Client::collection_path(info),
                "application/json",
                &obj,
            ) {
                Ok(_) => println!("{} created", display_name(info, &name)),
                Err(e) => {
                    eprintln!("{}", server_error(e));
                    failed = true;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn delete(a: DeleteArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut victims: Vec<(&KindInfo, String)> = Vec::new();
    for file in &a.files {
        for obj in crate::manifest::read_objects(file)? {
            victims.push(object_identity(&obj)?);
        }
    }
    if a.target.kind.is_some() {
        for (info, name) in targets(a.target.kind.as_deref(), &a.target.names)? {
            match name {
                Some(n) => victims.push((info, n)),
                None if a.all || a.selector.is_some() => {
                    let list = client
                        .get(
                            &format!(
                                "{}{}",
                                Client::collection_path(info),
                                query(a.selector.as_deref(), None)
                            ),
                            "application/json",
                        )
                        .map_err(server_error)?;
                    for item in list["items"].as_array().into_iter().flatten() {
                        victims.push((
                            info,
                            item["metadata"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        ));
                    }
                }
                None => {
                    bail!("resource(s) were provided, but no name was specified (use --all or -l)")
                }
            }
        }
    }
    if victims.is_empty() && a.files.is_empty() && a.target.kind.is_none() {
        bail!("you must provide one or more resources by argument or filename");
    }
    let mut failed = false;
    for (info, name) in victims {
        match client.send(
            "DELETE",
            &Client::object_path(info, &name),
            "application/json",
            &Value::Null,
        ) {
            Ok(_) => println!("{}.{} {:?} deleted", info.singular, stilt_api::GROUP, name),
            Err(e) if a.ignore_not_found && is_not_found(&e) => {}
            Err(e) => {
                eprintln!("{}", server_error(e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn single_target(t: &Target) -> Result<(&'static KindInfo, String)> {
    let ts = targets(t.kind.as_deref(), &t.names)?;
    match ts.as_slice() {
        [(info, Some(name))] => Ok((info, name.clone())),
        _ => bail!("exactly one object must be named (KIND NAME or KIND/NAME)"),
    }
}

pub fn edit(a: EditArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let (info, name) = single_target(&a.target)?;
    let current = client
        .get(&Client::object_path(info, &name), "application/json")
        .map_err(server_error)?;
    let original = print::to_yaml(&current)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!(
        "{}-{}.yaml",
        info.singular,
        name.replace([':', '/', '(', ')'], "_")
    ));
    std::fs::write(&path, &original)?;
    let editor = std::env::var("KUBE_EDITOR")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .context("running the editor")?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}");
    }
    let edited = std::fs::read_to_string(&path)?;
    if edited == original {
        println!("Edit cancelled, no changes made.");
        return Ok(ExitCode::SUCCESS);
    }
    let objs = crate::manifest::parse_objects(&edited)?;
    let [obj] = objs.as_slice() else {
        bail!("the edited file must hold exactly one object")
    };
    // Like kubectl: send only what the user changed, so a controller's concurrent status write
    // (a new resourceVersion) does not turn the edit into a conflict.
    let before = crate::manifest::parse_objects(&original)?
        .pop()
        .unwrap_or(current);
    let patch = merge_patch_between(&before, obj);
    if patch.as_object().is_some_and(|m| m.is_empty()) {
        println!("Edit cancelled, no changes made.");
        return Ok(ExitCode::SUCCESS);
    }
    client
        .send(
            "PATCH",
            &Client::object_path(info, &name),
            "application/merge-patch+json",
            &patch,
        )
        .map_err(server_error)?;
    println!("{} edited", display_name(info, &name));
    Ok(ExitCode::SUCCESS)
}

/// The JSON merge patch (RFC 7386) that turns `before` into `after`: changed and added keys with
/// their new values (objects recursively), removed keys as null, arrays whole.
pub fn merge_patch_between(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut patch = serde_json::Map::new();
            for (k, old) in b {
                match a.get(k) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(new) if new != old => {
                        let inner = match (old, new) {
                            (Value::Object(_), Value::Object(_)) => merge_patch_between(old, new),
                            _ => new.clone(),
                        };
                        patch.insert(k.clone(), inner);
                    }
                    Some(_) => {}
                }
            }
            for (k, new) in a {
                if !b.contains_key(k) {
                    patch.insert(k.clone(), new.clone());
                }
            }
            Value::Object(patch)
        }
        _ => after.clone(),
    }
}

pub fn patch(a: PatchArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let (info, name) = single_target(&a.target)?;
    let content_type = match a.patch_type.as_str() {
        "json" => "application/json-patch+json",
        "merge" => "application/merge-patch+json",
        "strategic" => "application/strategic-merge-patch+json",
        other => bail!("--type must be one of json, merge, strategic (got {other:?})"),
    };
    let patch: Value = serde_json::from_str(&a.patch)
        .or_else(|_| serde_saphyr::from_str(&a.patch))
        .map_err(|e| anyhow!("unable to parse the patch {:?}: {e}", a.patch))?;
    let mut path = Client::object_path(info, &name);
    match a.subresource.as_deref() {
        None => {}
        Some("status") => path.push_str("/status"),
        Some(other) => bail!("unsupported subresource {other:?} (only status)"),
    }
    let before = client
        .get(&Client::object_path(info, &name), "application/json")
        .map_err(server_error)?;
    let after = client
        .send("PATCH", &path, content_type, &patch)
        .map_err(server_error)?;
    if let Some(o) = a.output.as_deref() {
        print::print_objects(&[after], &Format::parse(Some(o))?, false)?;
    } else if before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"] {
        println!("{} patched (no change)", display_name(info, &name));
    } else {
        println!("{} patched", display_name(info, &name));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration {s:?} (use e.g. 30s, 5m, 1h)"),
    };
    Ok(Duration::from_secs_f64(secs))
}

enum WaitFor {
    Delete,
    Condition(String, String),
    JsonPath(String, Option<String>),
}

fn parse_wait_for(s: &str) -> Result<WaitFor> {
    if s == "delete" {
        return Ok(WaitFor::Delete);
    }
    if let Some(c) = s.strip_prefix("condition=") {
        let (name, value) = c.split_once('=').unwrap_or((c, "True"));
        return Ok(WaitFor::Condition(name.to_string(), value.to_string()));
    }
    if let Some(j) = s.strip_prefix("jsonpath=") {
        let (path, value) = match j.rfind("}=") {
            Some(i) => (&j[..=i], Some(j[i + 2..].to_string())),
            None => (j, None),
        };
        let path = if path.starts_with('{') {
            path.to_string()
        } else {
            format!("{{{path}}}")
        };
        return Ok(WaitFor::JsonPath(path, value));
    }
    bail!(
        "unrecognized condition {s:?} (use condition=NAME[=VALUE], delete or jsonpath={{.path}}=VALUE)"
    )
}

fn satisfied(obj: Option<&Value>, cond: &WaitFor) -> Result<bool> {
    Ok(match (obj, cond) {
        (None, WaitFor::Delete) => true,
        (Some(_), WaitFor::Delete) | (None, _) => false,
        (Some(o), WaitFor::Condition(name, want)) => o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(name))
                    && c["status"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(want))
            }),
        (Some(o), WaitFor::JsonPath(path, want)) => {
            let got = crate::jsonpath::render(path, o)?;
            match want {
                Some(w) => got == *w,
                None => !got.is_empty(),
            }
        }
    })
}

pub fn wait(a: WaitArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let cond = parse_wait_for(&a.condition)?;
    let timeout = parse_duration(&a.timeout)?;
    let mut names: Vec<(&KindInfo, String)> = Vec::new();
    for (info, name) in targets(a.target.kind.as_deref(), &a.target.names)? {
        match name {
            Some(n) => names.push((info, n)),
            None => {
                let list = client
                    .get(
                        &format!(
                            "{}{}",
                            Client::collection_path(info),
                            query(a.selector.as_deref(), None)
                        ),
                        "application/json",
                    )
                    .map_err(server_error)?;
                for item in list["items"].as_array().into_iter().flatten() {
                    names.push((
                        info,
                        item["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ));
                }
                if names.is_empty() {
                    bail!("no matching resources found");
                }
            }
        }
    }
    let deadline = Instant::now() + timeout;
    let mut pending = names;
    loop {
        let mut still = Vec::new();
        for (info, name) in pending {
            let obj = match client.get(&Client::object_path(info, &name), "application/json") {
                Ok(o) => Some(o),
                Err(e) if is_not_found(&e) => {
                    if !matches!(cond, WaitFor::Delete) {
                        bail!(
                            "Error from server (NotFound): {} {name:?} not found",
                            info.plural
                        );
                    }
                    None
                }
                Err(e) => return Err(server_error(e)),
            };
            if satisfied(obj.as_ref(), &cond)? {
                match cond {
                    WaitFor::Delete => println!("{} deleted", display_name(info, &name)),
                    _ => println!("{} condition met", display_name(info, &name)),
                }
            } else {
                still.push((info, name));
            }
        }
        if still.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            for (info, name) in &still {
                eprintln!(
                    "error: timed out waiting for the condition on {}/{name}",
                    info.plural
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(100));
        pending = still;
    }
}

pub fn api_resources(a: ApiResourcesArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let list = client
        .get(
            &format!("/apis/{}", stilt_api::API_VERSION),
            "application/json",
        )
        .map_err(server_error)?;
    let wide = a.output.as_deref() == Some("wide");
    let mut grid = vec![vec![
        "NAME".to_string(),
        "SHORTNAMES".into(),
        "APIVERSION".into(),
        "NAMESPACED".into(),
        "KIND".into(),
    ]];
    if wide {
        grid[0].push("VERBS".into());
    }
    for r in list["resources"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or("");
        if name.contains('/') {
            continue;
        }
        if a.output.as_deref() == Some("name") {
            println!("{name}.{}", stilt_api::GROUP);
            continue;
        }
        let short: Vec<&str> = r["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut row = vec![
            name.to_string(),
            short.join(","),
            stilt_api::API_VERSION.to_string(),
            r["namespaced"].to_string(),
            r["kind"].as_str().unwrap_or("").to_string(),
        ];
        if wide {
            let verbs: Vec<&str> = r["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            row.push(format!("[{}]", verbs.join(" ")));
        }
        grid.push(row);
    }
    if a.output.as_deref() != Some("name") {
        for l in print::align(&grid) {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7386, as the API server applies it.
    fn merge(target: &mut Value, patch: &Value) {
        let Value::Object(p) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let t = target.as_object_mut().unwrap();
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    #[test]
    fn an_edit_becomes_a_merge_patch_of_only_what_changed() {
        let before = json!({
            "metadata": {"name": "web:serve", "resourceVersion": "7", "labels": {"a": "1", "b": "2"}},
            "spec": {"args": ["sleep", "1"], "dir": "/x", "env": ["A=1"]},
            "status": {"ready": true},
        });
        let cases = [
            (
                json!({
                    "metadata": {"name": "web:serve", "resourceVersion": "7", "labels": {"a": "1", "b": "3"}},
                    "spec": {"args": ["sleep", "2"], "dir": "/x", "env": ["A=1"]},
                    "status": {"ready": true},
                }),
                json!({"metadata": {"labels": {"b": "3"}}, "spec": {"args": ["sleep", "2"]}}),
            ),
            (
                json!({
                    "metadata": {"name": "web:serve", "resourceVersion": "7", "labels": {"a": "1"}},
                    "spec": {"args": ["sleep", "1"], "dir": "/x", "env": ["A=1"], "readinessProbe": {"periodSeconds": 1}},
                    "status": {"ready": true},
                }),
                json!({"metadata": {"labels": {"b": null}}, "spec": {"readinessProbe": {"periodSeconds": 1}}}),
            ),
            (before.clone(), json!({})),
        ];
        for (after, want) in cases {
            let patch = merge_patch_between(&before, &after);
            assert_eq!(patch, want);
            // Applying it to a newer copy (a controller wrote status meanwhile) keeps that write.
            let mut newer = before.clone();
            newer["metadata"]["resourceVersion"] = json!("8");
            newer["status"]["ready"] = json!(false);
            merge(&mut newer, &patch);
            let mut expected = after.clone();
            expected["metadata"]["resourceVersion"] = json!("8");
            expected["status"]["ready"] = json!(false);
            assert_eq!(newer, expected);
        }
    }
}
