//! Kubernetes: images pushed where the cluster can pull them, KubernetesApply (inject, label,
//! server-side apply), and per-apply monitoring: KubernetesDiscovery status from the pods whose
//! owner chain reaches the applied objects, their logs in the resource's log, and port-forwards
//! that follow the newest pod.

use crate::Ctx;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_k8s::inject::{ImageInjection, ImageLocator, prepare_for_apply};
use stilt_k8s::{
    ApplyOptions, Cluster, ContainerRef, FollowOptions, ForwardSpec, LogEvent, PodEvent,
    PodWatchSpec, PortForwarder,
};
use stilt_logs::Level;
use stilt_store::TypedStore;
use tokio::sync::OnceCell;

/// The cluster of the current kubeconfig context, connected on first use.
#[derive(Default)]
pub struct K8sAdapters {
    cluster: OnceCell<Result<Arc<dyn Cluster>, String>>,
}

impl K8sAdapters {
    pub fn with(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster: OnceCell::new_with(Some(Ok(cluster))),
        }
    }

    pub async fn cluster(&self) -> Result<Arc<dyn Cluster>, String> {
        self.cluster
            .get_or_init(|| async {
                stilt_k8s::KubeCluster::connect(None, None)
                    .await
                    .map(|c| Arc::new(c) as Arc<dyn Cluster>)
                    .map_err(|e| format!("cannot reach the Kubernetes cluster: {e}"))
            })
            .await
            .clone()
    }
}

fn write_status<T: Resource>(ctx: &Ctx, name: &str, f: impl Fn(&mut T)) {
    let _ = ctx.store.update_status_with::<T>(name, f);
}

/// `gcr.io/foo/bar` pushed to `localhost:5000` becomes `localhost:5000/gcr.io_foo_bar` (Tilt's
/// escaping for a default registry).
fn registry_ref(host: &str, built: &str) -> String {
    let (name, tag) = match built.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (built, "latest"),
    };
    format!("{host}/{}:{tag}", name.replace(['/', ':'], "_"))
}

/// Builds the resource's images and, when the cluster has a local registry, pushes them there;
/// the ImageMaps then carry the ref the cluster pulls.
pub async fn build_and_push(
    ctx: &Ctx,
    resource: &str,
    image_maps: &[String],
    span: &str,
) -> Result<(), String> {
    crate::docker::build_images(ctx, resource, image_maps, span).await?;
    if image_maps.is_empty() {
        return Ok(());
    }
    let cluster = ctx.k8s.cluster().await?;
    let default_registry = ctx
        .store
        .get_typed::<Tiltfile>(crate::names::TILTFILE_OBJECT)
        .ok()
        .and_then(|t| {
            t.metadata
                .annotations
                .get(crate::names::ANN_DEFAULT_REGISTRY)
                .cloned()
        });
    let Some(registry) = choose_registry(cluster.info().registry.clone(), default_registry) else {
        return Ok(());
    };
    let docker = ctx.docker.docker().await?;
    for im in image_maps {
        let Some(status) = ctx
            .store
            .get_typed::<ImageMap>(im)
            .ok()
            .and_then(|m| m.status)
        else {
            continue;
        };
        // Nothing local to push (custom_build with skips_local_docker) or disable_push.
        let push_disabled = ctx
            .store
            .list_typed::<CmdImage>()
            .unwrap_or_default()
            .iter()
            .any(|c| c.spec.image_maps.contains(im) && c.spec.output_mode == "local-docker");
        if status.image.is_empty() || status.image_from_local.is_empty() || push_disabled {
            continue;
        }
        let target = registry_ref(&registry.host, &status.image_from_local);
        docker
            .tag(&status.image_from_local, &target)
            .await
            .map_err(|e| format!("tagging {target}: {e}"))?;
        ctx.logs
            .line(resource, span, Level::Info, &format!("Pushing {target}"));
        docker
            .push(&target, None)
            .await
            .map_err(|e| format!("pushing {target}: {e}"))?;
        let cluster_ref = if registry.host_from_container_runtime.is_empty() {
            target.clone()
        } else {
            registry_ref(
                &registry.host_from_container_runtime,
                &status.image_from_local,
            )
        };
        write_status::<ImageMap>(ctx, im, |m| {
            let s = m.status.get_or_insert_with(Default::default);
            s.image = cluster_ref.clone();
            s.image_from_cluster = cluster_ref.clone();
        });
    }
    Ok(())
}

/// Applies a KubernetesApply with the built images injected. Returns the applied objects.
pub async fn apply(
    ctx: &Ctx,
    ka: &KubernetesApply,
    resource: &str,
    span: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let cluster = ctx.k8s.cluster().await?;
    let started = MicroTime::now();
    write_status::<KubernetesApply>(ctx, &ka.metadata.name, |o| {
        o.status
            .get_or_insert_with(Default::default)
            .last_apply_start_time = Some(started)
    });
    let result = async {
        if let Some(cmd) = &ka.spec.apply_cmd {
            // k8s_custom_deploy: the command applies; its stdout is the applied objects' YAML.
            return run_custom_deploy(ctx, cmd, resource, span)
                .await
                .map(|objs| (objs, String::new(), false));
        }
        let objects = stilt_k8s::manifest::parse_yaml(&ka.spec.yaml).map_err(|e| e.to_string())?;
        let mut injections = Vec::new();
        for im in &ka.spec.image_maps {
            let map = ctx
                .store
                .get_typed::<ImageMap>(im)
                .map_err(|e| e.to_string())?;
            match ImageInjection::from_image_map(&map).map_err(|e| e.to_string())? {
                Some(i) => injections.push(i),
                None => return Err(format!("image {im} has not been built")),
            }
        }
        let locators = ka
            .spec
            .image_locators
            .iter()
            .map(ImageLocator::from_api)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let prepared =
            prepare_for_apply(objects, &injections, &locators).map_err(|e| e.to_string())?;
        let timeout = ka
            .spec
            .timeout
            .as_deref()
            .and_then(parse_secs)
            .unwrap_or(Duration::from_secs(30));
        // Unchanged inputs are not applied again (no pod restarts, no API traffic).
        let hash = input_hash(&prepared);
        let previous = ctx
            .store
            .get_typed::<KubernetesApply>(&ka.metadata.name)
            .ok()
            .and_then(|k| k.status);
        if let Some(prev) = previous.filter(|p| {
            p.applied_input_hash == hash && p.error.is_empty() && !p.result_yaml.is_empty()
        }) && let Ok(objects) = stilt_k8s::manifest::parse_yaml(&prev.result_yaml)
        {
            return Ok((objects, hash, true));
        }
        cluster
            .apply(
                &prepared,
                &ApplyOptions {
                    timeout,
                    ..Default::default()
                },
            )
            .await
            .map(|applied| (applied, hash, false))
            .map_err(|e| e.to_string())
    }
    .await;
    let finished = MicroTime::now();
    match result {
        Ok((applied, _, true)) => {
            ctx.logs.line(
                resource,
                span,
                Level::Info,
                "  Unchanged since the last apply; not applied again",
            );
            Ok(applied)
        }
        Ok((applied, hash, false)) => {
            let yaml = stilt_k8s::manifest::to_yaml(&applied).unwrap_or_default();
            for o in &applied {
                ctx.logs.line(
                    resource,
                    span,
                    Level::Info,
                    &format!(
                        "  {} {} configured",
                        o["kind"].as_str().unwrap_or(""),
                        o["metadata"]["name"].as_str().unwrap_or("")
                    ),
                );
            }
            write_status::<KubernetesApply>(ctx, &ka.metadata.name, |o| {
                let s = o.status.get_or_insert_with(Default::default);
                s.result_yaml = yaml.clone();
                s.applied_input_hash = hash.clone();
                s.error.clear();
                s.last_apply_time = Some(finished);
            });
            Ok(applied)
        }
        Err(e) => {
            let msg = format!("Applying {}: {e}", ka.metadata.name);
            ctx.logs.line(resource, span, Level::Error, &msg);
            write_status::<KubernetesApply>(ctx, &ka.metadata.name, |o| {
                o.status.get_or_insert_with(Default::default).error = msg.clone()
            });
            Err(msg)
        }
    }
}

/// The cluster's published registry (KEP-1755) wins; else the Tiltfile's `default_registry`.
fn choose_registry(
    published: Option<RegistryHosting>,
    default: Option<String>,
) -> Option<RegistryHosting> {
    published.or_else(|| {
        default
            .filter(|h| !h.is_empty())
            .map(|host| RegistryHosting {
                host,
                ..Default::default()
            })
    })
}

/// Aborts a task when the owner goes away (the monitor is aborted on every re-apply).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a `k8s_custom_deploy` apply command; its stdout must be the deployed objects as YAML.
async fn run_custom_deploy(
    ctx: &Ctx,
    cmd: &KubernetesApplyCmd,
    resource: &str,
    span: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let Some((program, args)) = cmd.args.split_first() else {
        return Err("applyCmd has no args".into());
    };
    ctx.logs.line(
        resource,
        span,
        Level::Info,
        &format!("Running cmd: {}", cmd.args.join(" ")),
    );
    let mut c = tokio::process::Command::new(program);
    c.args(args).stdin(std::process::Stdio::null());
    if !cmd.dir.is_empty() {
        c.current_dir(&cmd.dir);
    }
    for (k, v) in ctx.process_env.iter() {
        c.env(k, v);
    }
    for kv in &cmd.env {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    let out = c
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", cmd.args.join(" ")))?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        ctx.logs.line(resource, span, Level::Info, line);
    }
    if !out.status.success() {
        return Err(format!(
            "apply command {:?} failed: {}",
            cmd.args.join(" "),
            out.status
        ));
    }
    stilt_k8s::manifest::parse_yaml(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("the apply command must print the deployed objects as YAML: {e}"))
}

/// A hash of exactly what would be applied (after injection and labels).
fn input_hash(objects: &[serde_json::Value]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(objects)
        .unwrap_or_default()
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

fn parse_secs(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix("ms") {
        return n.parse().ok().map(Duration::from_millis);
    }
    if let Some(n) = s.strip_suffix('s') {
        return n.parse().ok().map(Duration::from_secs_f64);
    }
    if let Some(n) = s.strip_suffix('m') {
        return n
            .parse::<f64>()
            .ok()
            .map(|m| Duration::from_secs_f64(m * 60.0));
    }
    None
}

/// Watches the pods of applied objects: KubernetesDiscovery status, logs, port-forwards.
pub fn monitor(
    ctx: Ctx,
    ka: KubernetesApply,
    resource: String,
    applied: Vec<serde_json::Value>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(cluster) = ctx.k8s.cluster().await else {
            return;
        };
        let uids: HashSet<String> = applied
            .iter()
            .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        let namespaces: Vec<String> = applied
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let extra = ka
            .spec
            .kubernetes_discovery_template_spec
            .as_ref()
            .map(|t| t.extra_selectors.clone())
            .unwrap_or_default();
        let name = ka.metadata.name.clone();
        let kd = KubernetesDiscovery::new(
            &name,
            KubernetesDiscoverySpec {
                watches: namespaces
                    .iter()
                    .map(|ns| KubernetesWatchRef {
                        namespace: ns.clone(),
                        ..Default::default()
                    })
                    .collect(),
                extra_selectors: extra.clone(),
                port_forward_template_spec: ka.spec.port_forward_template_spec.clone(),
                pod_log_stream_template_spec: ka.spec.pod_log_stream_template_spec.clone(),
                cluster: "default".into(),
            },
        );
        let mut kd = kd;
        kd.metadata
            .annotations
            .insert(ANNOTATION_RESOURCE.into(), resource.clone());
        let _ = ctx.store.apply_typed(&kd);
        write_status::<KubernetesDiscovery>(&ctx, &name, |o| {
            let s = o.status.get_or_insert_with(Default::default);
            s.monitor_start_time = Some(MicroTime::now());
            s.pods.clear();
        });
        let spec = PodWatchSpec {
            namespaces,
            ancestor_uids: uids,
            extra_selectors: extra,
        };
        let Ok(mut events) = cluster.watch_pods(spec).await else {
            return;
        };
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        // Warning events about the applied objects and their pods go to the resource's log.
        let known: Arc<parking_lot::Mutex<HashSet<String>>> = Arc::new(parking_lot::Mutex::new(
            applied
                .iter()
                .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
                .collect(),
        ));
        let _events = AbortOnDrop({
            let (ctx, cluster, known, resource) = (
                ctx.clone(),
                cluster.clone(),
                known.clone(),
                resource.clone(),
            );
            let started = chrono::Utc::now() - chrono::Duration::seconds(5);
            tokio::spawn(async move {
                let Ok(mut events) = cluster.watch_events(None, HashSet::new()).await else {
                    return;
                };
                while let Some(ev) = events.next().await {
                    let fresh = ev.last_seen.is_none_or(|t| t >= started);
                    if ev.type_ == "Warning" && fresh && known.lock().contains(&ev.involved.uid) {
                        let who = format!(
                            "{} {}/{}",
                            ev.involved.kind, ev.involved.namespace, ev.involved.name
                        );
                        ctx.logs.line(
                            &resource,
                            "events",
                            Level::Warn,
                            &format!("[event: {who}] {}: {}", ev.reason, ev.message),
                        );
                    }
                }
            })
        });
        let mut logging: HashSet<String> = HashSet::new();
        let forwards = ka
            .spec
            .port_forward_template_spec
            .as_ref()
            .map(|p| p.forwards.clone())
            .unwrap_or_default();
        let mut forwarders: Vec<PortForwarder> = Vec::new();
        let mut forwarded_pod = String::new();
        let since = chrono::Utc::now() - chrono::Duration::seconds(5);
        while let Some(ev) = events.next().await {
            match ev {
                PodEvent::Upsert(p) => {
                    let pod = p.pod;
                    if !logging.contains(&pod.uid)
                        && pod
                            .containers
                            .iter()
                            .any(|c| c.state.running.is_some() || c.state.terminated.is_some())
                    {
                        logging.insert(pod.uid.clone());
                        let prefix = pod.containers.len() > 1;
                        for c in &pod.containers {
                            let (ctx, resource, cluster) =
                                (ctx.clone(), resource.clone(), cluster.clone());
                            let target = ContainerRef::new(&pod.namespace, &pod.name, &c.name);
                            let label = if prefix {
                                format!("[{}] ", c.name)
                            } else {
                                String::new()
                            };
                            let span = format!("pod:{}/{}", pod.namespace, pod.name);
                            tokio::spawn(async move {
                                let mut lines = stilt_k8s::follow_logs(
                                    cluster,
                                    target,
                                    FollowOptions {
                                        since: Some(since),
                                        ..Default::default()
                                    },
                                );
                                while let Some(ev) = lines.next().await {
                                    match ev {
                                        LogEvent::Line { text, .. } => ctx.logs.line(
                                            &resource,
                                            &span,
                                            Level::Info,
                                            &format!("{label}{text}"),
                                        ),
                                        LogEvent::Ended { .. } => break,
                                        LogEvent::Reconnecting { .. } => {}
                                    }
                                }
                            });
                        }
                    }
                    if known.lock().insert(pod.uid.clone()) {
                        let mut pls = PodLogStream::new(
                            format!("{name}-{}-{}", pod.namespace, pod.name),
                            PodLogStreamSpec {
                                pod: pod.name.clone(),
                                namespace: pod.namespace.clone(),
                                cluster: "default".into(),
                                ..Default::default()
                            },
                        );
                        pls.metadata
                            .annotations
                            .insert(ANNOTATION_RESOURCE.into(), resource.clone());
                        let _ = ctx.store.apply_typed(&pls);
                        let statuses: Vec<ContainerLogStreamStatus> = pod
                            .containers
                            .iter()
                            .map(|c| ContainerLogStreamStatus {
                                name: c.name.clone(),
                                active: true,
                                ..Default::default()
                            })
                            .collect();
                        write_status::<PodLogStream>(
                            &ctx,
                            &format!("{name}-{}-{}", pod.namespace, pod.name),
                            |o| {
                                o.status = Some(PodLogStreamStatus {
                                    container_statuses: statuses.clone(),
                                    error: String::new(),
                                });
                            },
                        );
                    }
                    pods.insert(pod.uid.clone(), pod);
                }
                PodEvent::Deleted { uid, .. } => {
                    pods.remove(&uid);
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
            let mut list: Vec<Pod> = pods.values().cloned().collect();
            list.sort_by_key(|p| std::cmp::Reverse(p.created_at));
            if let Some(best) = list
                .iter()
                .find(|p| !p.deleting && p.phase == "Running")
                .or(list.first())
                && best.name != forwarded_pod
                && best.phase == "Running"
                && !forwards.is_empty()
            {
                forwarded_pod = best.name.clone();
                if forwarders.is_empty() {
                    for f in &forwards {
                        let spec = ForwardSpec {
                            namespace: best.namespace.clone(),
                            pod: best.name.clone(),
                            host: f.host.clone(),
                            local_port: f.local_port as u16,
                            container_port: f.container_port as u16,
                        };
                        match PortForwarder::start(cluster.clone(), spec).await {
                            Ok(pf) => forwarders.push(pf),
                            Err(e) => ctx.logs.line(
                                &resource,
                                "portforward",
                                Level::Error,
                                &format!("port-forward {}: {e}", f.local_port),
                            ),
                        }
                    }
                } else {
                    for pf in &forwarders {
                        pf.set_pod(&best.namespace, &best.name);
                    }
                }
                let pf = PortForward::new(
                    format!("{name}-{}", best.name),
                    PortForwardSpec {
                        pod_name: best.name.clone(),
                        namespace: best.namespace.clone(),
                        forwards: forwards.clone(),
                        cluster: "default".into(),
                    },
                );
                let mut pf = pf;
                pf.metadata
                    .annotations
                    .insert(ANNOTATION_RESOURCE.into(), resource.clone());
                let _ = ctx.store.apply_typed(&pf);
            }
            write_status::<KubernetesDiscovery>(&ctx, &name, |o| {
                let s = o.status.get_or_insert_with(Default::default);
                s.pods = list.clone();
                s.running = Some(KubernetesDiscoveryStateRunning {
                    start_time: s.monitor_start_time.unwrap_or_default(),
                });
            });
        }
    })
}

const POD_ERRORS: &[&str] = &[
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "CreateContainerError",
    "RunContainerError",
];

/// Runtime status of a k8s resource from its discovered pods (Tilt's rules).
pub fn runtime(
    ctx: &Ctx,
    resource: &str,
    pod_readiness: &str,
    deployed: bool,
) -> (&'static str, bool) {
    if !deployed {
        return ("pending", false);
    }
    if pod_readiness == "ignore" {
        return ("ok", true);
    }
    let kd = ctx
        .store
        .list_typed::<KubernetesDiscovery>()
        .unwrap_or_default()
        .into_iter()
        .find(|k| {
            k.metadata
                .annotations
                .get(ANNOTATION_RESOURCE)
                .map(String::as_str)
                == Some(resource)
        });
    let mut pods = kd
        .and_then(|k| k.status)
        .map(|s| s.pods)
        .unwrap_or_default();
    pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    let Some(pod) = pods.into_iter().find(|p| !p.deleting) else {
        return ("pending", false);
    };
    let waiting_error = pod.containers.iter().any(|c| {
        c.state
            .waiting
            .as_ref()
            .is_some_and(|w| POD_ERRORS.contains(&w.reason.as_str()))
    });
    let terminated_error = pod.containers.iter().any(|c| {
        c.state
            .terminated
            .as_ref()
            .is_some_and(|t| t.exit_code != 0)
    }) && pod.phase != "Running";
    match pod.phase.as_str() {
        "Succeeded" => ("ok", true),
        "Failed" => ("error", false),
        _ if waiting_error || terminated_error => ("error", false),
        "Running"
            if pod_readiness != "succeeded"
                && !pod.containers.is_empty()
                && pod.containers.iter().all(|c| c.ready) =>
        {
            ("ok", true)
        }
        _ => ("pending", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_registry_wins_over_default_registry() {
        let published = RegistryHosting {
            host: "localhost:5000".into(),
            ..Default::default()
        };
        assert_eq!(
            choose_registry(Some(published.clone()), Some("reg.example:5000".into())),
            Some(published)
        );
        assert_eq!(
            choose_registry(None, Some("reg.example:5000".into())).map(|r| r.host),
            Some("reg.example:5000".into())
        );
        assert_eq!(choose_registry(None, None), None);
    }

    #[test]
    fn registry_refs_escape_like_tilt() {
        assert_eq!(
            registry_ref("localhost:5000", "gcr.io/foo/bar:tilt-0123"),
            "localhost:5000/gcr.io_foo_bar:tilt-0123"
        );
        assert_eq!(
            registry_ref("localhost:5000", "web:tilt-ab"),
            "localhost:5000/web:tilt-ab"
        );
    }
}
