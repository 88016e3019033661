//! Kubernetes: the connection, images pushed where the cluster pulls them, and the reconcilers
//! of the Kubernetes kinds, one module per kind. They meet only in the store:
//!
//! * [`apply`]: KubernetesApply → applies its YAML (images from its ImageMaps injected) or runs
//!   its apply command, writes the result to status, deletes what it applied when it is disabled,
//!   deleted or no longer applies it, and owns the KubernetesDiscovery of the same name.
//! * [`discovery`]: KubernetesDiscovery → watches the pods of the applied objects (owner UID
//!   chain) and extra selectors, writes `status.pods`, owns one PodLogStream per pod and one
//!   PortForward for the best pod.
//! * [`portforward`]: PortForward → one local listener per forward to the named pod.
//! * [`podlogstream`]: PodLogStream → the pod's container logs into the resource's log.
//!
//! The build queue asks for a deploy only by writing the KubernetesApply (see
//! [`apply::request_apply`]); it never calls the apply code.

pub mod apply;
pub mod delivery;
pub mod discovery;
pub mod podlogstream;
pub mod portforward;

use crate::Ctx;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_api::*;
use stilt_k8s::Cluster;
use stilt_logs::Level;
use stilt_store::TypedStore;

/// Makes a connection to the cluster.
pub type Connector =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn Cluster>, String>> + Send + Sync>;

/// How long a failed connection is reported without trying again.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

/// The cluster of the current kubeconfig context, connected on first use. A failed connection is
/// retried (at most every few seconds), so a cluster that comes up later is found.
pub struct K8sAdapters {
    connect: Connector,
    connected: parking_lot::Mutex<Option<Arc<dyn Cluster>>>,
    /// Serializes connection attempts; holds the last failure.
    failure: tokio::sync::Mutex<Option<(Instant, String)>>,
}

impl Default for K8sAdapters {
    fn default() -> Self {
        Self::with_connector(Arc::new(|| {
            Box::pin(async {
                stilt_k8s::KubeCluster::connect(None, None)
                    .await
                    .map(|c| Arc::new(c) as Arc<dyn Cluster>)
                    .map_err(|e| format!("cannot reach the Kubernetes cluster: {e}"))
            })
        }))
    }
}

impl K8sAdapters {
    /// Always this cluster (tests use a [`stilt_k8s::FakeCluster`]).
    pub fn with(cluster: Arc<dyn Cluster>) -> Self {
        let s = Self::with_connector(Arc::new(|| Box::pin(async { Err("unused".to_string()) })));
        *s.connected.lock() = Some(cluster);
        s
    }

    /// Connections made by `connect`.
    pub fn with_connector(connect: Connector) -> Self {
        Self {
            connect,
            connected: Default::default(),
            failure: Default::default(),
        }
    }

    /// The default namespace of the connection, once connected.
    pub fn connected_namespace(&self) -> Option<String> {
        self.connected
            .lock()
            .as_ref()
            .map(|c| c.info().namespace)
            .filter(|n| !n.is_empty())
    }

    pub async fn cluster(&self) -> Result<Arc<dyn Cluster>, String> {
        if let Some(c) = self.connected.lock().clone() {
            return Ok(c);
        }
        let mut failure = self.failure.lock().await;
        if let Some(c) = self.connected.lock().clone() {
            return Ok(c);
        }
        if let Some((at, e)) = &*failure
            && at.elapsed() < RECONNECT_AFTER
        {
            return Err(e.clone());
        }
        match (self.connect)().await {
            Ok(c) => {
                *self.connected.lock() = Some(c.clone());
                *failure = None;
                Ok(c)
            }
            Err(e) => {
                *failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }
}

/// Starts the reconcilers of the Kubernetes kinds.
pub fn start(ctx: Ctx) {
    apply::start(ctx.clone());
    discovery::start(ctx.clone());
    portforward::start(ctx.clone());
    podlogstream::start(ctx);
}

/// The resource an object's output belongs to (`""`: the global log, as in Tilt).
pub(crate) fn resource_of(meta: &ObjectMeta) -> String {
    meta.resource().unwrap_or_default().to_string()
}

/// An owner reference to a Stilt object.
pub(crate) fn owned_by(kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.into(),
        kind: kind.into(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Whether `meta` is owned by the `kind` object named `name`.
pub(crate) fn is_owned_by(meta: &ObjectMeta, kind: &str, name: &str) -> bool {
    meta.owner_references
        .iter()
        .any(|r| r.kind == kind && r.name == name)
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

/// The registry images are pushed to: the one the cluster publishes (KEP-1755, from the Cluster
/// object's status), else the Cluster's or the Tiltfile's `default_registry` — whole, as in
/// Tilt: `host_from_cluster` is where the cluster pulls what was pushed to `host`.
fn choose_registry(
    published: Option<RegistryHosting>,
    default: Option<RegistryHosting>,
) -> Option<RegistryHosting> {
    published
        .filter(|r| !r.host.is_empty())
        .or_else(|| default.filter(|r| !r.host.is_empty()))
}

/// The registry of the `default` Cluster object (status, else spec), falling back to what the
/// connection found when the Cluster reconciler has not written status yet.
fn cluster_registry(ctx: &Ctx, cluster: &dyn Cluster) -> Option<RegistryHosting> {
    let obj = ctx.store.get_typed::<stilt_api::Cluster>("default").ok();
    let from_status = obj
        .as_ref()
        .and_then(|c| c.status.as_ref())
        .filter(|s| s.connected_at.is_some())
        .map(|s| s.registry.clone());
    let published = match from_status {
        Some(r) => r,
        None => cluster.info().registry,
    };
    let default = obj.and_then(|c| c.spec.default_registry).or_else(|| {
        crate::tiltfile::default_registry(ctx).map(|host| RegistryHosting {
            host,
            ..Default::default()
        })
    });
    choose_registry(published, default)
}

/// Builds the resource's images and, when the cluster has a registry, pushes them there; the
/// ImageMaps then carry the ref the cluster pulls.
pub async fn build_and_push(
    ctx: &Ctx,
    resource: &str,
    image_maps: &[String],
    span: &str,
) -> Result<(), String> {
    // Reach the cluster first: an unreachable cluster fails the update before any build.
    let cluster = ctx.k8s.cluster().await?;
    crate::docker::build_images(ctx, resource, image_maps, span).await?;
    deliver_images(ctx, cluster.as_ref(), resource, image_maps, span).await
}

/// Gets the built images of `image_maps` to where `cluster` pulls from; the ImageMaps then carry
/// the ref the cluster pulls.
pub async fn deliver_images(
    ctx: &Ctx,
    cluster: &dyn Cluster,
    resource: &str,
    image_maps: &[String],
    span: &str,
) -> Result<(), String> {
    for im in image_maps {
        let Some(status) = ctx
            .store
            .get_typed::<ImageMap>(im)
            .ok()
            .and_then(|m| m.status)
        else {
            continue;
        };
        if status.image.is_empty() {
            continue;
        }
        let pulled =
            deliver_image(ctx, cluster, resource, im, &status.image_from_local, span).await?;
        if let Some(cluster_ref) = pulled {
            ctx.store
                .update_status_with::<ImageMap>(im, |m| {
                    let s = m.status.get_or_insert_with(Default::default);
                    s.image = cluster_ref.clone();
                    s.image_from_cluster = cluster_ref.clone();
                })
                .map_err(|e| format!("recording the pushed image of {im}: {e}"))?;
        }
    }
    Ok(())
}

/// Gets the image built as `local` for `image_map` to where `cluster` pulls from (its registry,
/// `kind load`, nothing when it runs on the building engine). Returns the ref the cluster pulls
/// when it is not `local`.
pub async fn deliver_image(
    ctx: &Ctx,
    cluster: &dyn Cluster,
    resource: &str,
    image_map: &str,
    local: &str,
    span: &str,
) -> Result<Option<String>, String> {
    // Nothing local to push (custom_build with skips_local_docker) or disable_push.
    let push_disabled = ctx
        .store
        .list_typed::<CmdImage>()
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c.spec.image_maps.iter().any(|m| m == image_map) && c.spec.output_mode == "local-docker"
        });
    if local.is_empty() || push_disabled {
        return Ok(None);
    }
    let info = cluster.info();
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let how = delivery::delivery(
        cluster_registry(ctx, cluster),
        &info.product,
        &info.cluster,
        &info.container_runtime,
        docker_host.as_deref(),
    );
    let docker = ctx.docker.docker().await?;
    let log = |msg: &str| ctx.logs.line(resource, span, Level::Info, msg);
    let registry = match &how {
        delivery::Delivery::Registry(r) => r,
        delivery::Delivery::SameEngine => {
            log("Skipping push: the cluster runs on the Docker engine that built the image");
            return Ok(None);
        }
        delivery::Delivery::PushAsNamed => {
            log(&format!("Pushing {local}"));
            let started = MicroTime::now();
            let pushed = docker
                .push(local, None)
                .await
                .map_err(|e| format!("pushing {local}: {e}"));
            record_push_stage(ctx, image_map, "docker push", started, &pushed);
            return pushed.map(|_| None);
        }
        load => {
            let argv = delivery::load_command(load, local).unwrap_or_default();
            log(&format!(
                "Loading {local} into the cluster: {}",
                argv.join(" ")
            ));
            let started = MicroTime::now();
            let loaded = run_load(&argv).await;
            let stage = match load {
                delivery::Delivery::MinikubeLoad { .. } => "minikube image load",
                _ => "kind load",
            };
            record_push_stage(ctx, image_map, stage, started, &loaded);
            return loaded.map(|_| None);
        }
    };
    let target = registry_ref(&registry.host, local);
    docker
        .tag(local, &target)
        .await
        .map_err(|e| format!("tagging {target}: {e}"))?;
    log(&format!("Pushing {target}"));
    let started = MicroTime::now();
    let pushed = docker
        .push(&target, None)
        .await
        .map_err(|e| format!("pushing {target}: {e}"));
    record_push_stage(ctx, image_map, "docker push", started, &pushed);
    pushed?;
    Ok(Some(if registry.host_from_container_runtime.is_empty() {
        target
    } else {
        registry_ref(&registry.host_from_container_runtime, local)
    }))
}

/// Records how an image reached the cluster as its DockerImage's last stage (Tilt's `docker
/// push` / `kind load` stage).
fn record_push_stage<T>(
    ctx: &Ctx,
    image_map: &str,
    name: &str,
    started: MicroTime,
    result: &Result<T, String>,
) {
    crate::docker::record_stage(
        ctx,
        image_map,
        DockerImageStageStatus {
            name: name.to_string(),
            cached: false,
            started_at: Some(started),
            finished_at: Some(MicroTime::now()),
            error: result.as_ref().err().cloned().unwrap_or_default(),
        },
    );
}

/// Runs `kind load` / `minikube image load`; its output goes into the error when it fails.
async fn run_load(argv: &[String]) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Ok(());
    };
    let out = tokio::process::Command::new(prog)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("running {prog} (is it on PATH?): {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} failed ({}): {}",
        argv.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
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
/// The apply found the resource's Job already complete (Tilt's `JobComplete` condition): its
/// pod may have been garbage-collected, so the pods are not waited for.
fn applied_job_already_complete(applies: &[KubernetesApply]) -> bool {
    applies.iter().filter_map(|ka| ka.status.as_ref()).any(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "JobComplete" && c.status == "True")
    })
}

/// A k8s resource's objects its runtime status is read from.
pub struct Deployed<'a> {
    pub applies: &'a [KubernetesApply],
    pub discovery: Option<&'a KubernetesDiscovery>,
}

pub fn runtime(
    ctx: &Ctx,
    objects: &Deployed,
    pod_readiness: &str,
    deployed: bool,
) -> (&'static str, bool) {
    if !deployed {
        return ("pending", false);
    }
    if pod_readiness == "ignore" || applied_job_already_complete(objects.applies) {
        return ("ok", true);
    }
    let kd = objects.discovery;
    let kd_name = kd.map(|k| k.metadata.name.clone()).unwrap_or_default();
    let mut pods = kd
        .and_then(|k| k.status.as_ref())
        .map(|s| s.pods.clone())
        .unwrap_or_default();
    pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    // A deleting pod counts only when nothing else is there and it had finished (Tilt keeps
    // a garbage-collected Job pod's outcome).
    let ended = |p: &&stilt_api::Pod| p.phase == "Succeeded" || p.phase == "Failed";
    let Some(pod) = pods
        .iter()
        .find(|p| !p.deleting)
        .or_else(|| pods.iter().find(ended))
        .cloned()
    else {
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
    // A finished pod counts once its log stream has delivered everything (`stilt ci` exits on
    // it, and the output belongs in the log first).
    let finished = pod.phase == "Succeeded" || pod.phase == "Failed";
    if finished && !logs_drained(ctx, &kd_name, &pod) {
        return ("pending", false);
    }
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

/// Whether the pod's PodLogStream (owned by discovery `kd`) followed every container to its end.
fn logs_drained(ctx: &Ctx, kd: &str, pod: &Pod) -> bool {
    let name = format!("{kd}-{}-{}", pod.namespace, pod.name);
    match ctx.store.get_typed::<PodLogStream>(&name) {
        // Every followed container ended (none followed: nothing to wait for).
        Ok(pls) => pls.status.is_some_and(|s| {
            s.error.is_empty() && s.container_statuses.iter().all(|c| c.terminated)
        }),
        // Not created yet: wait for it.
        Err(_) => false,
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod discovery_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_registry_wins_over_default_registry() {
        let published = RegistryHosting {
            host: "localhost:5000".into(),
            ..Default::default()
        };
        let default = RegistryHosting {
            host: "localhost:5001".into(),
            host_from_container_runtime: "registry:5000".into(),
            ..Default::default()
        };
        assert_eq!(
            choose_registry(Some(published.clone()), Some(default.clone())),
            Some(published)
        );
        // The default registry whole: where the cluster pulls from is kept.
        assert_eq!(choose_registry(None, Some(default.clone())), Some(default));
        let empty = RegistryHosting::default();
        assert_eq!(choose_registry(Some(empty.clone()), Some(empty)), None);
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
