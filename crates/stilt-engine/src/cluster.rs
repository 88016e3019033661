//! The Cluster reconciler: connects to the Kubernetes cluster a Cluster object names and writes
//! what it found — connection (context, namespace, cluster, product, kubeconfig), server
//! version, architecture, the registry it publishes (`kube-public/local-registry-hosting`, else
//! the spec's `defaultRegistry`) — or the error. It checks the connection every 15 s (Tilt's
//! health poll); a failed connection is retried on that cadence. Image pushes read the registry
//! from here ([`crate::k8s::build_and_push`]). A Docker connection (`Cluster docker`, for
//! Docker Compose) gets the engine's version and architecture the same way.

use crate::Ctx;
use crate::controller::{self, Outcome, Queue, Reconcile};
use crate::k8s::AbortOnDrop;
use crate::names::TILTFILE_RESOURCE;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

/// Health poll interval.
pub const HEALTH_POLL: Duration = Duration::from_secs(15);

/// How long one health check may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

struct Monitor {
    spec: ClusterSpec,
    _task: AbortOnDrop,
}

struct ClusterReconciler {
    ctx: Ctx,
    monitors: Mutex<HashMap<String, Monitor>>,
}

pub fn start(ctx: Ctx) {
    let r = Arc::new(ClusterReconciler {
        ctx: ctx.clone(),
        monitors: Default::default(),
    });
    controller::run(
        ctx,
        Queue::default(),
        vec![("Cluster", controller::same_name())],
        r,
    );
}

/// The status a connection (or its failure) gives a Cluster.
pub(crate) fn status_of(
    spec: &ClusterSpec,
    previous: Option<&ClusterStatus>,
    found: Result<(stilt_k8s::ClusterInfo, String), String>,
) -> ClusterStatus {
    match found {
        Err(e) => ClusterStatus {
            error: e,
            ..Default::default()
        },
        Ok((info, version)) => ClusterStatus {
            arch: if info.arch.is_empty() {
                "unknown".into()
            } else {
                info.arch.clone()
            },
            error: String::new(),
            // Connected since the first success (kept while healthy).
            connected_at: previous
                .filter(|p| p.error.is_empty())
                .and_then(|p| p.connected_at)
                .or_else(|| Some(MicroTime::now())),
            registry: info
                .registry
                .clone()
                .or_else(|| spec.default_registry.clone()),
            connection: Some(ClusterConnectionStatus {
                kubernetes: Some(KubernetesClusterConnectionStatus {
                    context: info.context.clone(),
                    namespace: info.namespace.clone(),
                    cluster: info.cluster.clone(),
                    product: info.product.clone(),
                    config_path: info.config_path.clone(),
                }),
            }),
            version,
        },
    }
}

impl Reconcile for ClusterReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let c = match self.ctx.store.get_typed::<stilt_api::Cluster>(name) {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => {
                self.monitors.lock().remove(name);
                return Outcome::Done;
            }
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let has_connection = c
            .spec
            .connection
            .as_ref()
            .is_some_and(|conn| conn.kubernetes.is_some() || conn.docker.is_some());
        if !has_connection {
            return Outcome::Done;
        }
        let mut monitors = self.monitors.lock();
        if monitors.get(name).is_none_or(|m| m.spec != c.spec) {
            let task = tokio::spawn(monitor(self.ctx.clone(), name.to_string()));
            monitors.insert(
                name.to_string(),
                Monitor {
                    spec: c.spec,
                    _task: AbortOnDrop(task),
                },
            );
        }
        Outcome::Done
    }
}

/// Connects, writes status, and checks the connection again every [`HEALTH_POLL`].
async fn monitor(ctx: Ctx, name: String) {
    loop {
        let Ok(c) = ctx.store.get_typed::<stilt_api::Cluster>(&name) else {
            return;
        };
        let docker = c
            .spec
            .connection
            .as_ref()
            .is_some_and(|conn| conn.docker.is_some());
        let previous = c.status.clone();
        let status = if docker {
            docker_status(previous.as_ref(), probe_docker(&ctx).await)
        } else {
            let found = match ctx.k8s.cluster().await {
                // A server that accepts and never answers must not stall the health poll.
                Ok(cluster) => match tokio::time::timeout(PING_TIMEOUT, cluster.ping()).await {
                    Ok(found) => found
                        .map(|v| (cluster.info(), v))
                        .map_err(|e| format!("cannot reach the Kubernetes cluster: {e}")),
                    Err(_) => Err(format!(
                        "cannot reach the Kubernetes cluster: no answer in {}s",
                        PING_TIMEOUT.as_secs()
                    )),
                },
                Err(e) => Err(e),
            };
            status_of(&c.spec, previous.as_ref(), found)
        };
        if !status.error.is_empty() && previous.as_ref().is_none_or(|p| p.error != status.error) {
            ctx.logs.line(
                TILTFILE_RESOURCE,
                "cluster",
                Level::Error,
                &format!("Cluster status error: {}", status.error),
            );
        }
        if let Err(e) = ctx
            .store
            .update_status_with::<stilt_api::Cluster>(&name, |o| o.status = Some(status.clone()))
        {
            tracing::warn!("writing the status of Cluster {name}: {e}");
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// The Docker engine's version.
async fn probe_docker(ctx: &Ctx) -> Result<String, String> {
    let docker = ctx.docker.docker().await?;
    docker
        .engine_info()
        .await
        .map(|i| i.version)
        .map_err(|e| format!("cannot reach the Docker engine: {e}"))
}

/// The status of a Docker connection. The engine is local, so its architecture is the host's.
pub(crate) fn docker_status(
    previous: Option<&ClusterStatus>,
    found: Result<String, String>,
) -> ClusterStatus {
    match found {
        Err(e) => ClusterStatus {
            error: e,
            ..Default::default()
        },
        Ok(version) => ClusterStatus {
            arch: match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .into(),
            connected_at: previous
                .filter(|p| p.error.is_empty())
                .and_then(|p| p.connected_at)
                .or_else(|| Some(MicroTime::now())),
            version,
            ..Default::default()
        },
    }
}
