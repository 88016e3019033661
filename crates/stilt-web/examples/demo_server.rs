//! A web UI server over a simulated engine, for the browser tests, the benchmark and front-end
//! work. No Tiltfile, Docker or cluster: it creates UIResources (and the objects behind them),
//! flips them healthy after a moment, appends logs, and reacts to the UI's writes the way the
//! engine does (trigger queue → a new build in buildHistory; `<res>-disable` → disableStatus;
//! UIButton clicks → a log line).
//!
//! ```text
//! cargo run -p stilt-web --example demo_server -- [--port 0] [--resources 8] [--log-lines 20]
//!     [--settle-ms 1500] [--stream-lines-per-sec 0] [--token T] [--assets-dir DIR]
//! ```
//! Resources settle (turn healthy, `broken` fails) after `--settle-ms`, or at once when the
//! `(Tiltfile)` resource is triggered before that. Later `(Tiltfile)` triggers fail and succeed
//! in turn.
//! Prints `STILT_WEB_READY <url> <token>` on stdout once serving.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;
use stilt_logs::{Level, LogStore};
use stilt_store::{EventType, PatchType, Selectors, Store, WatchFrom};

struct Args {
    port: u16,
    resources: usize,
    log_lines: usize,
    settle_ms: u64,
    stream_rate: u64,
    token: Option<String>,
    assets_dir: Option<std::path::PathBuf>,
    /// Seeds the default Cluster with this connection error.
    cluster_error: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        port: 0,
        resources: 8,
        log_lines: 20,
        settle_ms: 1500,
        stream_rate: 0,
        token: None,
        assets_dir: None,
        cluster_error: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--port" => a.port = v.parse().expect("--port"),
            "--resources" => a.resources = v.parse().expect("--resources"),
            "--log-lines" => a.log_lines = v.parse().expect("--log-lines"),
            "--settle-ms" => a.settle_ms = v.parse().expect("--settle-ms"),
            "--stream-lines-per-sec" => a.stream_rate = v.parse().expect("--stream-lines-per-sec"),
            "--token" => a.token = Some(v),
            "--assets-dir" => a.assets_dir = Some(v.into()),
            "--cluster-error" => a.cluster_error = Some(v),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

const GROUPS: &[&str] = &["frontend", "backend", "infra"];
const STAGES: &[(&str, i64)] = &[
    ("docker build", 900),
    ("push", 250),
    ("k8s apply", 180),
    ("pod ready", 600),
];

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Resource names: a few meaningful ones first, then `svc-NNN`.
fn names(n: usize) -> Vec<String> {
    let base = [
        "web", "api", "db", "worker", "broken", "docs", "cache", "queue",
    ];
    (0..n)
        .map(|i| {
            if i < base.len() {
                base[i].to_string()
            } else {
                format!("svc-{i:03}")
            }
        })
        .collect()
}

fn kind_of(i: usize, name: &str) -> &'static str {
    match name {
        "docs" => "local",
        "worker" => "docker-compose",
        _ if i % 7 == 6 => "local",
        _ => "k8s",
    }
}

fn deps_of(i: usize, names: &[String]) -> Vec<String> {
    match names[i].as_str() {
        "web" => vec!["api".into()],
        "api" => vec!["db".into(), "cache".into()],
        "worker" => vec!["queue".into(), "db".into()],
        "broken" => vec!["api".into()],
        _ if i >= 8 => vec![names[(i * 7) % 8].clone()],
        _ => vec![],
    }
}

fn build(start: chrono::DateTime<chrono::Utc>, scale: f64, error: &str, n: usize) -> Value {
    let mut t = start;
    let mut stages = Vec::new();
    for (name, ms) in STAGES {
        let d = chrono::Duration::milliseconds((*ms as f64 * scale) as i64);
        stages.push(json!({"name": name, "startTime": ts(t), "finishTime": ts(t + d)}));
        t += d;
    }
    let mut b = json!({
        "startTime": ts(start),
        "finishTime": ts(t),
        "spanID": format!("build:{n}"),
        "stages": stages,
    });
    if !error.is_empty() {
        b["error"] = json!(error);
    }
    b
}

fn create(store: &Store, v: Value) {
    let name = v["metadata"]["name"].as_str().unwrap_or("").to_string();
    if let Err(e) = store.create(v) {
        panic!("creating {name}: {e}");
    }
}

fn patch_status(store: &Store, kind: &str, name: &str, status: Value) {
    let _ = store.patch(
        kind,
        name,
        PatchType::Merge,
        &json!({ "status": status }),
        true,
    );
}

fn seed(store: &Store, logs: &LogStore, names: &[String], log_lines: usize) {
    let start = now();
    create(
        store,
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UISession", "metadata": {"name": "Tiltfile"},
               "status": {"tiltStartTime": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                          "runningTiltBuild": {"version": "0.1.0-stilt", "dev": true}}}),
    );
    let tf = "(Tiltfile)";
    create(
        store,
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIResource", "metadata": {"name": tf},
               "status": {"runtimeStatus": "not_applicable", "updateStatus": "ok", "order": 0,
                          "buildHistory": [build(start - chrono::Duration::seconds(2), 0.2, "", 1)],
                          "lastDeployTime": ts(start)}}),
    );
    logs.line(
        tf,
        "tiltfile:1",
        Level::Info,
        "Loading Tiltfile at: /demo/Tiltfile",
    );
    logs.line(
        tf,
        "tiltfile:1",
        Level::Info,
        &format!("Successfully loaded Tiltfile ({} resources)", names.len()),
    );
    for (i, name) in names.iter().enumerate() {
        let kind = kind_of(i, name);
        let deps = deps_of(i, names);
        let mut labels = serde_json::Map::new();
        labels.insert(
            GROUPS[i % GROUPS.len()].into(),
            json!(GROUPS[i % GROUPS.len()]),
        );
        let trigger_mode = if name == "docs" { 1 } else { 0 };
        let mut links = Vec::new();
        if kind == "k8s" && i % 2 == 0 {
            links.push(json!({"url": format!("http://localhost:{}/", 8000 + i), "name": ""}));
        }
        if name == "web" {
            links.push(json!({"url": "http://localhost:9000/admin", "name": "admin"}));
        }
        create(
            store,
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIResource",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"stilt.dev/resource-deps": deps.join(",")}},
            "status": {
                "runtimeStatus": "pending", "updateStatus": "in_progress",
                "triggerMode": trigger_mode, "order": i + 1,
                "currentBuild": {"startTime": ts(start), "spanID": "build:1"},
                "specs": [{"id": format!("{kind}:{name}"), "type": kind, "hasLiveUpdate": kind == "k8s"}],
                "endpointLinks": links,
                "disableStatus": {"enabledCount": 1, "state": "Enabled"},
                "hasPendingChanges": i % 5 == 3,
                "pendingBuildSince": if i % 5 == 3 { json!(ts(start)) } else { Value::Null },
            }}),
        );
        create(
            store,
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "ConfigMap",
                   "metadata": {"name": format!("{name}-disable"), "annotations": {"tilt.dev/resource": name}},
                   "data": {"isDisabled": "false"}}),
        );
        create(
            store,
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "ToggleButton",
                   "metadata": {"name": format!("{name}-disable"), "annotations": {"tilt.dev/resource": name}},
                   "spec": {"location": {"componentID": name, "componentType": "Resource"},
                            "on": {"text": "Enable Resource"}, "off": {"text": "Disable Resource"},
                            "defaultOn": true,
                            "stateSource": {"configMap": {"name": format!("{name}-disable"), "key": "isDisabled", "onValue": "false", "offValue": "true"}}}}),
        );
        create(
            store,
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "FileWatch",
                   "metadata": {"name": format!("image:{name}"), "annotations": {"tilt.dev/resource": name}},
                   "spec": {"watchedPaths": [format!("/demo/{name}")]},
                   "status": {"monitorStartTime": ts(start)}}),
        );
        if kind == "k8s" {
            create(
                store,
                json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "KubernetesApply",
                       "metadata": {"name": name, "annotations": {"tilt.dev/resource": name}},
                       "spec": {"yaml": format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n")}}),
            );
            create(
                store,
                json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "LiveUpdate",
                       "metadata": {"name": format!("{name}:img"), "annotations": {"tilt.dev/resource": name}},
                       "spec": {"basePath": format!("/demo/{name}"),
                                "selector": {"kubernetes": {"discoveryName": name, "imageMapName": format!("{name}-img")}},
                                "syncs": [{"localPath": ".", "containerPath": "/app"}]}}),
            );
        }
        for l in 0..log_lines {
            let level = if l % 97 == 41 {
                Level::Warn
            } else {
                Level::Info
            };
            logs.line(
                name,
                "build:1",
                level,
                &format!(
                    "[{name}] step {l}: compiling module {} ... done",
                    l * 7 % 113
                ),
            );
        }
        logs.line(name, "build:1", Level::Info, &format!("Building {name}"));
    }
    create(
        store,
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIButton", "metadata": {"name": "clear-cache"},
               "spec": {"location": {"componentID": "nav", "componentType": "Global"}, "text": "Clear cache", "iconName": "delete"}}),
    );
    if let Some(first) = names.first() {
        create(
            store,
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIButton", "metadata": {"name": format!("{first}-migrate")},
                   "spec": {"location": {"componentID": first, "componentType": "Resource"}, "text": "Migrate DB",
                            "inputs": [{"name": "target", "label": "Target", "text": {"defaultValue": "latest"}}]}}),
        );
    }
}

/// The resource's build count, for span names.
struct Sim {
    store: Store,
    logs: LogStore,
    builds: HashMap<String, usize>,
}

impl Sim {
    fn settle(&mut self, name: &str, i: usize) {
        let t0 = now() - chrono::Duration::milliseconds(1900);
        let broken = name == "broken";
        let err = if broken {
            "exit status 1: go: cannot find main module"
        } else {
            ""
        };
        let scale = 0.5 + (i % 5) as f64 * 0.3;
        let b = build(t0, scale, err, 1);
        self.builds.insert(name.to_string(), 1);
        let kind = kind_of(i, name);
        let runtime = if broken {
            "error"
        } else if kind == "local" {
            "not_applicable"
        } else {
            "ok"
        };
        let mut status = json!({
            "buildHistory": [b],
            "currentBuild": null,
            "lastDeployTime": ts(now()),
            "updateStatus": if broken { "error" } else { "ok" },
            "runtimeStatus": runtime,
        });
        if kind == "k8s" {
            status["k8sResourceInfo"] = json!({"podName": format!("{name}-7d9f8-x2k4z"), "podStatus": if broken {"CrashLoopBackOff"} else {"Running"}, "podRestarts": if broken {3} else {0}});
        }
        patch_status(&self.store, "UIResource", name, status);
        if broken {
            self.logs.line(
                name,
                "build:1",
                Level::Error,
                "ERROR: build failed: exit status 1: go: cannot find main module",
            );
        } else {
            self.logs.line(
                name,
                "build:1",
                Level::Info,
                &format!("Build {name} done in 1.9s"),
            );
            self.logs.line(
                name,
                "pod",
                Level::Info,
                &format!("{name} listening on :8080"),
            );
            if name == "web" {
                self.logs.line(
                    name,
                    "build:1",
                    Level::Info,
                    "\x1b[32m✔ compiled\x1b[0m successfully in \x1b[1m1.2s\x1b[0m",
                );
            }
            if name == "api" {
                self.logs.line(
                    name,
                    "pod",
                    Level::Warn,
                    "WARNING: config key `timeout` is deprecated, use `requestTimeout`",
                );
            }
        }
        if kind == "k8s" {
            patch_status(
                &self.store,
                "LiveUpdate",
                &format!("{name}:img"),
                json!({"containers": [{"containerName": "main", "podName": format!("{name}-7d9f8-x2k4z"), "namespace": "default",
                                        "lastFileTimeSynced": ts(now()),
                                        "lastUpdateTimings": {"eventSeen": ts(now()), "batchClosedMs": 6.0, "archiveBuiltMs": 9.5,
                                                              "transferDoneMs": 31.0, "runStepsDoneMs": 140.0, "files": 3, "bytes": 4096}}]}),
            );
            let pod = format!("{name}-7d9f8-x2k4z");
            let _ = self.store.create(
                json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "KubernetesDiscovery",
                   "metadata": {"name": name, "annotations": {"tilt.dev/resource": name}},
                   "spec": {"watches": [{"namespace": "default", "name": name}]}}),
            );
            patch_status(
                &self.store,
                "KubernetesDiscovery",
                name,
                json!({"pods": [{"name": pod, "namespace": "default",
                                  "createdAt": now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                  "phase": if broken { "Failed" } else { "Running" }}]}),
            );
            let _ = self.store.create(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "PortForward",
                   "metadata": {"name": format!("{name}-{name}-7d9f8-x2k4z"), "annotations": {"tilt.dev/resource": name}},
                   "spec": {"podName": format!("{name}-7d9f8-x2k4z"), "forwards": [{"localPort": 8000 + i as i32, "containerPort": 8080}]}}));
        }
    }

    fn start_build(&mut self, name: &str) {
        let n = self.builds.get(name).copied().unwrap_or(0) + 1;
        self.builds.insert(name.to_string(), n);
        patch_status(
            &self.store,
            "UIResource",
            name,
            json!({"currentBuild": {"startTime": ts(now()), "spanID": format!("build:{n}")}, "updateStatus": "in_progress", "queued": false}),
        );
        self.logs.line(
            name,
            &format!("build:{n}"),
            Level::Info,
            &format!("Triggered build #{n} of {name}"),
        );
    }

    fn finish_build(&mut self, name: &str) {
        let n = self.builds.get(name).copied().unwrap_or(1);
        let Ok(cur) = self.store.get("UIResource", name) else {
            return;
        };
        let mut history: Vec<Value> = cur
            .pointer("/status/buildHistory")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let start = now() - chrono::Duration::milliseconds(400);
        // Reloading the Tiltfile fails every other time (to show the error banner).
        let err = if name == "(Tiltfile)" && n % 2 == 1 {
            "Tiltfile:3:1: undefined: k8s_yamll"
        } else {
            ""
        };
        history.insert(0, build(start, 0.1 + (n % 3) as f64 * 0.1, err, n));
        history.truncate(10);
        let runtime = cur
            .pointer("/status/runtimeStatus")
            .cloned()
            .unwrap_or(json!("ok"));
        let runtime = if runtime == json!("error") {
            json!("ok")
        } else {
            runtime
        };
        patch_status(
            &self.store,
            "UIResource",
            name,
            json!({"buildHistory": history, "currentBuild": null, "updateStatus": if err.is_empty() { "ok" } else { "error" }, "runtimeStatus": runtime,
                   "lastDeployTime": ts(now()), "hasPendingChanges": null, "pendingBuildSince": null}),
        );
        self.logs.line(
            name,
            &format!("build:{n}"),
            Level::Info,
            &format!("Build #{n} of {name} done"),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let store = Store::default();
    let logs = LogStore::default();
    let names = names(args.resources);
    seed(&store, &logs, &names, args.log_lines);
    create(
        &store,
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "default"},
               "spec": {"connection": {"kubernetes": {"context": "demo"}}},
               "status": {"error": args.cluster_error.clone().unwrap_or_default(),
                          "arch": if args.cluster_error.is_some() { "" } else { "amd64" }}}),
    );

    let mut cfg = stilt_web::WebConfig::new(store.clone(), logs.clone());
    cfg.port = args.port;
    cfg.token = args.token.clone();
    cfg.assets_dir = args.assets_dir.clone();
    let server = stilt_web::serve(cfg).await.expect("serving");
    println!(
        "STILT_WEB_READY http://127.0.0.1:{}/ {}",
        server.addr.port(),
        server.token
    );
    std::io::stdout().flush().ok();

    let mut sim = Sim {
        store: store.clone(),
        logs: logs.clone(),
        builds: HashMap::new(),
    };
    // Resources turn healthy one after another after `settle_ms`.
    let settle = Duration::from_millis(args.settle_ms);
    let mut watch = store
        .watch(
            Some("ConfigMap"),
            Selectors::default(),
            WatchFrom::Beginning,
        )
        .expect("watch");
    let mut buttons = store
        .watch(Some("UIButton"), Selectors::default(), WatchFrom::Beginning)
        .expect("watch");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let settle_at = tokio::time::Instant::now() + settle;
    let mut settled = false;
    let mut stream_tick = tokio::time::interval(Duration::from_millis(20));
    let per_tick = (args.stream_rate as f64 / 50.0).max(0.0);
    let mut carry = 0.0;
    let mut stream_n: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(settle_at), if !settled => {
                settled = true;
                for (i, n) in names.iter().enumerate() {
                    sim.settle(n, i);
                }
            }
            ev = watch.stream.next() => {
                let Ok(ev) = ev else { break };
                if ev.r#type == EventType::Deleted { continue; }
                let name = ev.object["metadata"]["name"].as_str().unwrap_or("").to_string();
                if name == stilt_web::actions::TRIGGER_QUEUE {
                    let data = ev.object["data"].as_object().cloned().unwrap_or_default();
                    if data.is_empty() { continue; }
                    // Consume the queue as the engine does.
                    let clear: serde_json::Map<String, Value> = data.keys().map(|k| (k.clone(), Value::Null)).collect();
                    let _ = store.patch("ConfigMap", &name, PatchType::Merge, &json!({"data": clear}), false);
                    // Triggering the Tiltfile before the first settle finishes the initial builds
                    // at once (the browser tests use it to watch resources turn healthy).
                    if data.contains_key("(Tiltfile)") && !settled {
                        settled = true;
                        for (i, n) in names.iter().enumerate() {
                            sim.settle(n, i);
                        }
                        continue;
                    }
                    for res in data.keys() {
                        sim.start_build(res);
                        let tx = done_tx.clone();
                        let res = res.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(600)).await;
                            let _ = tx.send(res);
                        });
                    }
                } else if let Some(res) = name.strip_suffix("-disable") {
                    let disabled = ev.object["data"]["isDisabled"] == json!("true");
                    if store.get("UIResource", res).is_ok() {
                        let ds = if disabled {
                            json!({"disabledCount": 1, "enabledCount": null, "state": "Disabled"})
                        } else {
                            json!({"enabledCount": 1, "disabledCount": null, "state": "Enabled"})
                        };
                        let mut st = json!({"disableStatus": ds});
                        if disabled {
                            st["runtimeStatus"] = json!("none");
                            st["updateStatus"] = json!("none");
                        } else if ev.r#type == EventType::Modified {
                            st["runtimeStatus"] = json!("ok");
                            st["updateStatus"] = json!("ok");
                        }
                        if ev.r#type == EventType::Modified {
                            patch_status(&store, "UIResource", res, st);
                            logs.line(res, "disable", Level::Info, if disabled { "Resource disabled" } else { "Resource enabled" });
                        }
                    }
                }
            }
            ev = buttons.stream.next() => {
                let Ok(ev) = ev else { break };
                if ev.object.pointer("/status/lastClickedAt").is_some() {
                    let name = ev.object["metadata"]["name"].as_str().unwrap_or("");
                    let res = ev.object.pointer("/spec/location/componentID").and_then(Value::as_str).filter(|s| !s.is_empty() && *s != "nav").unwrap_or("(Tiltfile)");
                    let inputs = ev.object.pointer("/status/inputs").map(|v| v.to_string()).unwrap_or_default();
                    logs.line(res, "button", Level::Info, &format!("Button {name} clicked {inputs}"));
                }
            }
            Some(res) = done_rx.recv() => sim.finish_build(&res),
            _ = stream_tick.tick(), if per_tick > 0.0 => {
                carry += per_tick;
                while carry >= 1.0 {
                    carry -= 1.0;
                    let res = &names[(stream_n as usize * 13) % names.len()];
                    let level = if stream_n % 50 == 7 { Level::Warn } else if stream_n % 211 == 5 { Level::Error } else { Level::Info };
                    logs.line(res, "pod", level, &format!("{res} request {stream_n} GET /api/items?page={} 200 {}ms", stream_n % 17, stream_n % 97));
                    stream_n += 1;
                }
            }
        }
    }
}
