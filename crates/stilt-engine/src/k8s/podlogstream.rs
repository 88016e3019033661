//! The PodLogStream reconciler: follows the containers of the named pod (init containers
//! first, `onlyContainers` / `ignoreContainers` applied) into the resource's log, from
//! `sinceTime`, across container restarts, until the pod is gone. Lines carry a `[container] `
//! prefix when more than one container is followed. `status.containerStatuses` says which
//! streams are active; `status.error` why none could start (e.g. the pod does not exist yet,
//! which is retried with backoff).

use super::{AbortOnDrop, resource_of};
use crate::Ctx;
use crate::controller::{self, Outcome, Queue, Reconcile};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_k8s::manifest::ObjectRef;
use stilt_k8s::{ContainerRef, FollowOptions, LogEvent};
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

const KIND: &str = "PodLogStream";

/// The containers to follow, in order (init containers first), after the spec's filters.
pub(crate) fn containers_to_follow(pod: &Value, spec: &PodLogStreamSpec) -> Vec<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let mut all = names("initContainers");
    all.extend(names("containers"));
    if !spec.only_containers.is_empty() {
        all.retain(|c| spec.only_containers.contains(c));
    } else {
        all.retain(|c| !spec.ignore_containers.contains(c));
    }
    all
}

struct Active {
    spec: PodLogStreamSpec,
    _task: AbortOnDrop,
}

struct PodLogStreamReconciler {
    ctx: Ctx,
    active: Mutex<HashMap<String, Active>>,
}

pub fn start(ctx: Ctx) {
    let r = Arc::new(PodLogStreamReconciler {
        ctx: ctx.clone(),
        active: Default::default(),
    });
    controller::run(
        ctx,
        Queue::default(),
        vec![(KIND, controller::same_name())],
        r,
    );
}

impl Reconcile for PodLogStreamReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let pls = match self.ctx.store.get_typed::<PodLogStream>(name) {
            Ok(p) if p.metadata.deletion_timestamp.is_none() => Some(p),
            Ok(_) | Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let mut active = self.active.lock();
        let Some(pls) = pls else {
            active.remove(name);
            return Outcome::Done;
        };
        if active.get(name).is_some_and(|a| a.spec == pls.spec) {
            return Outcome::Done;
        }
        let task = tokio::spawn(follow(self.ctx.clone(), pls.clone()));
        active.insert(
            name.to_string(),
            Active {
                spec: pls.spec,
                _task: AbortOnDrop(task),
            },
        );
        Outcome::Done
    }
}

fn write_status(ctx: &Ctx, name: &str, f: impl Fn(&mut PodLogStreamStatus)) {
    if let Err(e) = ctx.store.update_status_with::<PodLogStream>(name, |o| {
        f(o.status.get_or_insert_with(Default::default))
    }) {
        tracing::warn!("writing the status of PodLogStream {name}: {e}");
    }
}

async fn follow(ctx: Ctx, pls: PodLogStream) {
    let name = pls.metadata.name.clone();
    let resource = resource_of(&pls.metadata);
    let span = pls
        .metadata
        .annotations
        .get(ANNOTATION_LOG_SPAN_ID)
        .cloned()
        .unwrap_or_else(|| format!("pod:{}/{}", pls.spec.namespace, pls.spec.pod));
    let mut delay = controller::FIRST_BACKOFF;
    let cap = Duration::from_secs(15);
    let (cluster, pod) = loop {
        let found = match ctx.k8s.cluster().await {
            Err(e) => Err(e),
            Ok(c) => {
                let r = ObjectRef {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: pls.spec.pod.clone(),
                    namespace: pls.spec.namespace.clone(),
                    uid: String::new(),
                };
                match c.get(&r).await {
                    Ok(Some(p)) => Ok((c, p)),
                    Ok(None) => Err(format!(
                        "pod not found: {}/{}",
                        pls.spec.namespace, pls.spec.pod
                    )),
                    Err(e) => Err(format!("reading pod: {e}")),
                }
            }
        };
        match found {
            Ok(x) => break x,
            Err(e) => {
                write_status(&ctx, &name, |s| s.error = e.clone());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cap);
            }
        }
    };
    let containers = containers_to_follow(&pod, &pls.spec);
    let statuses: Vec<ContainerLogStreamStatus> = containers
        .iter()
        .map(|c| ContainerLogStreamStatus {
            name: c.clone(),
            active: true,
            ..Default::default()
        })
        .collect();
    write_status(&ctx, &name, |s| {
        s.error.clear();
        s.container_statuses = statuses.clone();
    });
    let since = pls.spec.since_time.map(|t| t.0);
    let prefix = containers.len() > 1;
    let mut tasks = Vec::new();
    for c in containers {
        let (ctx, cluster, resource, span, name) = (
            ctx.clone(),
            cluster.clone(),
            resource.clone(),
            span.clone(),
            name.clone(),
        );
        let target = ContainerRef::new(&pls.spec.namespace, &pls.spec.pod, &c);
        let label = if prefix {
            format!("[{c}] ")
        } else {
            String::new()
        };
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            let mut lines = stilt_k8s::follow_logs(
                cluster,
                target,
                FollowOptions {
                    since,
                    ..Default::default()
                },
            );
            while let Some(ev) = lines.next().await {
                match ev {
                    LogEvent::Line { text, .. } => {
                        ctx.logs
                            .line(&resource, &span, Level::Info, &format!("{label}{text}"))
                    }
                    LogEvent::Reconnecting { .. } => {}
                    LogEvent::Ended { .. } => {
                        write_status(&ctx, &name, |s| {
                            for cs in s.container_statuses.iter_mut().filter(|cs| cs.name == c) {
                                cs.active = false;
                                cs.terminated = true;
                            }
                        });
                        break;
                    }
                }
            }
        })));
    }
    for t in &mut tasks {
        let _ = (&mut t.0).await;
    }
}
