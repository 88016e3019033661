//! Commands that steer a running Stilt through its API: trigger, enable/disable, args, down.

use crate::args::{ArgsArgs, DownArgs, ResourcesArgs, ToggleArgs};
use crate::client::{ApiFailure, Client};
use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::ExitCode;
use stilt_engine::names::*;

fn kind(k: &str) -> &'static stilt_api::KindInfo {
    stilt_api::kind_by_name(k).expect("a Stilt kind")
}

fn resource_names(client: &Client) -> Result<Vec<Value>> {
    let list = client.get(
        &Client::collection_path(kind("UIResource")),
        "application/json",
    )?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn check_exists(all: &[Value], names: &[String]) -> Result<()> {
    for n in names {
        if !all.iter().any(|u| u["metadata"]["name"] == n.as_str()) {
            bail!("no resource named {n:?}");
        }
    }
    Ok(())
}

/// Merge-patches a ConfigMap, creating it if missing.
fn patch_configmap(client: &Client, name: &str, data: Value) -> Result<()> {
    let path = Client::object_path(kind("ConfigMap"), name);
    match client.send(
        "PATCH",
        &path,
        "application/merge-patch+json",
        &json!({"data": data}),
    ) {
        Ok(_) => Ok(()),
        Err(e)
            if e.downcast_ref::<ApiFailure>()
                .is_some_and(|f| f.code == 404) =>
        {
            let data: serde_json::Map<String, Value> = data
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect();
            client.send("POST", &Client::collection_path(kind("ConfigMap")), "application/json", &json!({"apiVersion": stilt_api::API_VERSION, "kind": "ConfigMap", "metadata": {"name": name}, "data": data}))?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub fn trigger(a: ResourcesArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    trigger_with(&client, &a.resources)?;
    for r in &a.resources {
        println!("Triggered {r}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Queues an update of each resource (the `tilt-trigger-queue` ConfigMap); shared with `stilt mcp`.
pub fn trigger_with(client: &Client, resources: &[String]) -> Result<()> {
    let all = resource_names(client)?;
    check_exists(&all, resources)?;
    let data: serde_json::Map<String, Value> = resources
        .iter()
        .map(|r| (r.clone(), json!("manual")))
        .collect();
    patch_configmap(client, TRIGGER_QUEUE, Value::Object(data))
}

pub fn toggle(a: ToggleArgs, disable: bool) -> Result<ExitCode> {
    let client = Client::from_home()?;
    for (n, off) in toggle_with(&client, &a, disable)? {
        println!("{} {n}", if off { "Disabled" } else { "Enabled" });
    }
    Ok(ExitCode::SUCCESS)
}

/// Enables or disables resources (their `<resource>-disable` ConfigMaps) and returns what it
/// wrote; shared with `stilt mcp`.
pub fn toggle_with(client: &Client, a: &ToggleArgs, disable: bool) -> Result<Vec<(String, bool)>> {
    let all = resource_names(client)?;
    let mut names: BTreeSet<String> = a.resources.iter().cloned().collect();
    check_exists(&all, &a.resources)?;
    let user_resources = all
        .iter()
        .filter(|u| u["metadata"]["name"] != TILTFILE_RESOURCE);
    if a.all {
        names.extend(
            user_resources
                .clone()
                .filter_map(|u| u["metadata"]["name"].as_str().map(str::to_string)),
        );
    }
    for label in &a.labels {
        names.extend(
            user_resources
                .clone()
                .filter(|u| u["metadata"]["labels"].get(label).is_some())
                .filter_map(|u| u["metadata"]["name"].as_str().map(str::to_string)),
        );
    }
    if names.is_empty() {
        bail!("name at least one resource (or use --all / --labels)");
    }
    if a.only && disable {
        bail!("--only is for `stilt enable` (enable these, disable the rest)");
    }
    if !disable {
        // Enabling a resource enables what it depends on, transitively (as Tilt does).
        let mut stack: Vec<String> = names.iter().cloned().collect();
        while let Some(n) = stack.pop() {
            let deps = all
                .iter()
                .find(|u| u["metadata"]["name"] == n.as_str())
                .and_then(|u| u["metadata"]["annotations"][ANN_RESOURCE_DEPS].as_str())
                .unwrap_or("");
            for d in deps.split(',').filter(|d| !d.is_empty()) {
                if names.insert(d.to_string()) {
                    stack.push(d.to_string());
                }
            }
        }
    }
    let all_names: Vec<String> = all
        .iter()
        .filter(|u| u["metadata"]["name"] != TILTFILE_RESOURCE)
        .filter_map(|u| u["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let written = toggles(&names, &all_names, disable, a.only);
    for (n, off) in &written {
        patch_configmap(
            client,
            &disable_configmap(n),
            json!({stilt_api::DISABLE_KEY: if *off { "true" } else { "false" }}),
        )?;
    }
    Ok(written)
}

/// What `stilt enable/disable` writes: (resource, disabled) for the chosen names, and with
/// `--only` every other resource disabled.
fn toggles(
    chosen: &BTreeSet<String>,
    all: &[String],
    disable: bool,
    only: bool,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = chosen.iter().map(|n| (n.clone(), disable)).collect();
    if only {
        out.extend(
            all.iter()
                .filter(|n| !chosen.contains(*n))
                .map(|n| (n.clone(), true)),
        );
    }
    out
}

pub fn set_args(a: ArgsArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    if a.args.is_empty() && !a.clear {
        bail!(
            "give the new arguments (`stilt args a b`, `--` before ones that start with a dash), or --clear"
        );
    }
    let path = Client::object_path(kind("Tiltfile"), TILTFILE_OBJECT);
    client.send(
        "PATCH",
        &path,
        "application/merge-patch+json",
        &json!({"spec": {"args": a.args}}),
    )?;
    println!("Tiltfile args set to {:?}", a.args);
    Ok(ExitCode::SUCCESS)
}

/// Stops a running `stilt up` (which stops every process it started) and deletes what the
/// Tiltfile deploys: Docker Compose projects are brought down (`compose down`).
pub fn down(a: DownArgs) -> Result<ExitCode> {
    if let Ok(client) = Client::from_home()
        && let Ok(session) = client.get(
            &Client::object_path(kind("Session"), SESSION_NAME),
            "application/json",
        )
        && let Some(pid) = session["status"]["pid"].as_i64()
    {
        stop_process(pid as i32)?;
    }
    // A kubeconfig of its own (not the running instance's): `down` runs beside it.
    let kube_path =
        crate::home::stilt_home().join(format!("kubeconfig-down-{}.json", std::process::id()));
    crate::kubectx::apply(&a.kube, &kube_path)?;
    let result = down_loaded(a);
    let _ = std::fs::remove_file(&kube_path);
    result
}

fn down_loaded(a: DownArgs) -> Result<ExitCode> {
    let file = std::path::absolute(&a.file)?;
    let loader = crate::loader::StarlarkLoader {
        web_host: "localhost".into(),
        web_port: 10350,
        start_time: String::new(),
    };
    let loaded = stilt_engine::tiltfile::Loader::load(
        &loader,
        &file,
        &a.args,
        stilt_engine::Mode::Ci,
        Default::default(),
    )
    .map_err(|e| anyhow!("{}", e.message))?;
    let mut k8s_objects: Vec<serde_json::Value> = Vec::new();
    for obj in &loaded.objects {
        if let stilt_api::AnyObject::KubernetesApply(ka) = obj {
            if let Some(cmd) = &ka.spec.delete_cmd {
                run_delete_cmd(cmd)?;
                println!("Ran the delete command of {}", ka.metadata.name);
                continue;
            }
            let objs = stilt_k8s::manifest::parse_yaml(&ka.spec.yaml)
                .map_err(|e| anyhow!("{}: {e}", ka.metadata.name))?;
            k8s_objects.extend(
                objs.into_iter()
                    .filter(|o| a.delete_namespaces || o["kind"] != "Namespace")
                    .filter(|o| {
                        o["metadata"]["annotations"]["tilt.dev/down-policy"].as_str()
                            != Some("keep")
                    }),
            );
        }
    }
    let mut projects = Vec::new();
    for obj in &loaded.objects {
        if let stilt_api::AnyObject::DockerComposeService(dcs) = obj
            && !projects.contains(&dcs.spec.project)
        {
            projects.push(dcs.spec.project.clone());
        }
    }
    if projects.is_empty() && k8s_objects.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = crate::up::runtime()?;
    rt.block_on(async move {
        if !k8s_objects.is_empty() {
            let cluster = stilt_engine::k8s::K8sAdapters::default()
                .cluster()
                .await
                .map_err(|e| anyhow!(e))?;
            stilt_k8s::manifest::sort_for_apply(&mut k8s_objects);
            k8s_objects.reverse();
            let refs = k8s_objects
                .iter()
                .map(stilt_k8s::manifest::ObjectRef::of)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("{e}"))?;
            cluster
                .delete(
                    &refs,
                    &stilt_k8s::DeleteOptions {
                        wait: Some(std::time::Duration::from_secs(60)),
                    },
                )
                .await
                .map_err(|e| anyhow!("deleting Kubernetes objects: {e}"))?;
            for r in &refs {
                println!("Deleted {} {}", r.kind, r.name);
            }
        }
        if projects.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        let adapters = stilt_engine::docker::DockerAdapters::default();
        let compose = adapters.compose().await.map_err(|e| anyhow!(e))?;
        for p in projects {
            let spec = stilt_engine::docker::project_spec(&p);
            compose
                .down(&spec, a.delete_volumes, None)
                .await
                .map_err(|e| anyhow!("docker compose down ({}): {e}", p.name))?;
            println!(
                "Removed Docker Compose project {}{}",
                spec.effective_name(),
                if a.delete_volumes {
                    " and its volumes"
                } else {
                    ""
                }
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn stop_process(pid: i32) -> Result<()> {
    let target = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM).is_err() {
        return Ok(());
    }
    for _ in 0..600 {
        if !alive(pid) {
            println!("Stopped stilt (pid {pid}) and everything it started.");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("stilt (pid {pid}) did not stop within 60s")
}

/// Whether a process exists and has not exited (a zombie waiting for its parent counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            != Some("Z")
    })
}

/// Runs a `k8s_custom_deploy` delete command.
fn run_delete_cmd(cmd: &stilt_api::KubernetesApplyCmd) -> Result<()> {
    let Some((program, args)) = cmd.args.split_first() else {
        bail!("deleteCmd has no args")
    };
    let mut c = std::process::Command::new(program);
    c.args(args);
    if !cmd.dir.is_empty() {
        c.current_dir(&cmd.dir);
    }
    for kv in &cmd.env {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    let status = c
        .status()
        .map_err(|e| anyhow!("running {}: {e}", cmd.args.join(" ")))?;
    if !status.success() {
        bail!("delete command {:?} failed: {status}", cmd.args.join(" "));
    }
    Ok(())
}

/// `stilt ext fetch [repo…]`: ask the ExtensionRepo reconciler for a fetch (a new
/// `stilt.dev/fetch-request`) and wait until it answers.
pub fn ext_fetch(repos: Vec<String>) -> Result<ExitCode> {
    use stilt_engine::extensionrepo::{ANN_FETCH_REQUEST, ANN_FETCHED_REQUEST};
    let client = Client::from_home()?;
    let list = client.get(
        &Client::collection_path(kind("ExtensionRepo")),
        "application/json",
    )?;
    let all: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let names = if repos.is_empty() { all.clone() } else { repos };
    for n in &names {
        if !all.contains(n) {
            anyhow::bail!("extensionrepo {n:?} not found (known: {})", all.join(", "));
        }
    }
    let token = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    for n in &names {
        client.send(
            "PATCH",
            &Client::object_path(kind("ExtensionRepo"), n),
            "application/merge-patch+json",
            &json!({"metadata": {"annotations": {ANN_FETCH_REQUEST: token}}}),
        )?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut failed = false;
    for n in &names {
        let path = Client::object_path(kind("ExtensionRepo"), n);
        let o = loop {
            let o = client.get(&path, "application/json")?;
            if o["metadata"]["annotations"][ANN_FETCHED_REQUEST] == token.as_str() {
                break o;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("extensionrepo {n}: no answer to the fetch request within 5 minutes");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let s = &o["status"];
        let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
        if !text("error").is_empty() {
            failed = true;
            println!("{n}: error: {}", text("error"));
        } else if !text("staleReason").is_empty() {
            failed = true;
            println!("{n}: {} (stale: {})", text("path"), text("staleReason"));
        } else {
            println!("{n}: {} at {}", text("path"), text("checkoutRef"));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_only_disables_every_other_resource() {
        let all: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        // (chosen, disable, only) → what is written
        type Case<'a> = (&'a [&'a str], bool, bool, &'a [(&'a str, bool)]);
        let cases: [Case; 4] = [
            (&["a"], false, false, &[("a", false)]),
            (&["a"], true, false, &[("a", true)]),
            (
                &["a"],
                false,
                true,
                &[("a", false), ("b", true), ("c", true)],
            ),
            (
                &["a", "c"],
                false,
                true,
                &[("a", false), ("c", false), ("b", true)],
            ),
        ];
        for (chosen, disable, only, want) in cases {
            let got = toggles(&set(chosen), &all, disable, only);
            let want: Vec<(String, bool)> = want.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            assert_eq!(got, want, "{chosen:?} disable={disable} only={only}");
        }
    }
}
