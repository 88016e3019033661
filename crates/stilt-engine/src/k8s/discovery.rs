//! The KubernetesDiscovery reconciler.
//!
//! Per KubernetesDiscovery one watch task follows the pods that match `spec.watches` (the pod
//! or an owner in its chain has a watched UID, in the watched namespaces) or one of
//! `spec.extraSelectors`, and writes them to `status.pods`; Warning events about them go to the
//! resource's log. Reconciling then keeps the owned objects in line with the status, as Tilt
//! does: one PodLogStream per pod (`<kd>-<namespace>-<pod>`) and, when the spec has a
//! port-forward template, one PortForward (`<kd>-<pod>`) for the best pod with container ports
//! filled in ([`super::portforward::populate_container_ports`]).

use super::portforward::populate_container_ports;
use super::{AbortOnDrop, is_owned_by, owned_by, resource_of};
use crate::Ctx;
use crate::controller::{self, Mapper, Outcome, Queue, Reconcile};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use stilt_api::*;
use stilt_k8s::{PodEvent, PodWatchSpec};
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

const KIND: &str = "KubernetesDiscovery";

struct Watcher {
    spec: KubernetesDiscoverySpec,
    _task: AbortOnDrop,
}

struct DiscoveryReconciler {
    ctx: Ctx,
    queue: Queue,
    watchers: Mutex<HashMap<String, Watcher>>,
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(DiscoveryReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        watchers: Default::default(),
    });
    let by_cluster: Mapper = Arc::new(|ctx: &Ctx, obj: &Value| {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        ctx.store
            .list_typed::<KubernetesDiscovery>()
            .unwrap_or_default()
            .into_iter()
            .filter(|kd| kd.spec.cluster == name)
            .map(|kd| kd.metadata.name)
            .collect()
    });
    controller::run(
        ctx,
        queue,
        vec![
            (KIND, controller::same_name()),
            ("PortForward", controller::owner_of(KIND)),
            ("PodLogStream", controller::owner_of(KIND)),
            ("Cluster", by_cluster),
        ],
        r,
    );
}

impl Reconcile for DiscoveryReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let kd = match self.ctx.store.get_typed::<KubernetesDiscovery>(name) {
            Ok(kd) if kd.metadata.deletion_timestamp.is_none() => Some(kd),
            Ok(_) | Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let Some(kd) = kd else {
            self.watchers.lock().remove(name);
            return manage_owned(&self.ctx, name, None);
        };
        let mut watchers = self.watchers.lock();
        if watchers.get(name).is_none_or(|w| w.spec != kd.spec) {
            let task = tokio::spawn(watch_pods(self.ctx.clone(), self.queue.clone(), kd.clone()));
            watchers.insert(
                name.to_string(),
                Watcher {
                    spec: kd.spec.clone(),
                    _task: AbortOnDrop(task),
                },
            );
        }
        drop(watchers);
        self.reflect_cluster_health(&kd);
        manage_owned(&self.ctx, name, Some(&kd))
    }
}

/// The waiting reason a KubernetesDiscovery shows while its Cluster reports an error.
pub(crate) fn cluster_waiting(cluster_error: &str) -> Option<String> {
    (!cluster_error.is_empty()).then(|| format!("{CLUSTER_UNAVAILABLE}: {cluster_error}"))
}

/// Tilt's reason for a discovery that has no working cluster.
const CLUSTER_UNAVAILABLE: &str = "ClusterUnavailable";

impl DiscoveryReconciler {
    /// While the Cluster's health check fails (API server down), the discovery says it waits
    /// for the cluster, keeping the pods it last saw; once the Cluster is healthy again the
    /// reason goes (the pod watch resumes by itself, from its resourceVersion).
    fn reflect_cluster_health(&self, kd: &KubernetesDiscovery) {
        let cluster_error = self
            .ctx
            .store
            .get_typed::<stilt_api::Cluster>(&kd.spec.cluster)
            .ok()
            .and_then(|c| c.status)
            .map(|s| s.error)
            .unwrap_or_default();
        let current = kd.status.as_ref().and_then(|s| s.waiting.as_ref());
        match cluster_waiting(&cluster_error) {
            Some(reason) => {
                if current.is_none_or(|w| w.reason != reason) {
                    write_status(&self.ctx, &kd.metadata.name, |s| {
                        s.waiting = Some(KubernetesDiscoveryStateWaiting {
                            reason: reason.clone(),
                        })
                    });
                }
            }
            None => {
                if current.is_some_and(|w| w.reason.starts_with(CLUSTER_UNAVAILABLE))
                    && kd.status.as_ref().is_some_and(|s| s.running.is_some())
                {
                    write_status(&self.ctx, &kd.metadata.name, |s| s.waiting = None);
                }
            }
        }
    }
}

fn write_status(ctx: &Ctx, name: &str, f: impl Fn(&mut KubernetesDiscoveryStatus)) {
    if let Err(e) = ctx
        .store
        .update_status_with::<KubernetesDiscovery>(name, |o| {
            f(o.status.get_or_insert_with(Default::default))
        })
    {
        tracing::warn!("writing the status of KubernetesDiscovery {name}: {e}");
    }
}

/// Follows the matching pods into `status.pods`, reconnecting with backoff.
async fn watch_pods(ctx: Ctx, queue: Queue, kd: KubernetesDiscovery) {
    let name = kd.metadata.name.clone();
    let resource = resource_of(&kd.metadata);
    let mut delay = controller::FIRST_BACKOFF;
    loop {
        let cluster = match ctx.k8s.cluster().await {
            Ok(c) => c,
            Err(e) => {
                write_status(&ctx, &name, |s| {
                    s.running = None;
                    s.waiting = Some(KubernetesDiscoveryStateWaiting {
                        reason: format!("ClusterUnavailable: {e}"),
                    });
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(controller::MAX_BACKOFF);
                continue;
            }
        };
        let started = MicroTime::now();
        let uids: HashSet<String> = kd
            .spec
            .watches
            .iter()
            .filter(|w| !w.uid.is_empty())
            .map(|w| w.uid.clone())
            .collect();
        let mut namespaces: Vec<String> = kd
            .spec
            .watches
            .iter()
            .map(|w| w.namespace.clone())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        let spec = PodWatchSpec {
            namespaces,
            ancestor_uids: uids.clone(),
            extra_selectors: kd.spec.extra_selectors.clone(),
        };
        let mut events = match cluster.watch_pods(spec).await {
            Ok(s) => s,
            Err(e) => {
                write_status(&ctx, &name, |s| {
                    s.running = None;
                    s.waiting = Some(KubernetesDiscoveryStateWaiting {
                        reason: format!("watching pods: {e}"),
                    });
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(controller::MAX_BACKOFF);
                continue;
            }
        };
        delay = controller::FIRST_BACKOFF;
        // Warning events about the watched objects and their pods go to the resource's log.
        let known = Arc::new(Mutex::new(uids));
        let _warnings = AbortOnDrop(tokio::spawn(log_warnings(
            ctx.clone(),
            cluster.clone(),
            known.clone(),
            resource.clone(),
        )));
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        let mut deleted_finished: std::collections::HashSet<String> = Default::default();
        let mut synced = false;
        while let Some(ev) = events.next().await {
            match ev {
                PodEvent::Upsert(p) => {
                    known.lock().insert(p.pod.uid.clone());
                    deleted_finished.remove(&p.pod.uid);
                    pods.insert(p.pod.uid.clone(), p.pod);
                }
                PodEvent::Deleted { uid, .. } => {
                    // As Tilt: a finished pod keeps telling how it ended (a Job with a TTL is
                    // garbage-collected right away) until another pod is there.
                    let finished = pods
                        .get(&uid)
                        .is_some_and(|p| p.phase == "Succeeded" || p.phase == "Failed");
                    if finished {
                        deleted_finished.insert(uid);
                    } else {
                        pods.remove(&uid);
                    }
                }
                PodEvent::Synced => synced = true,
                PodEvent::Error(_) => continue,
            }
            // Until the first listing is complete the old status stays (no flapping).
            if !synced {
                continue;
            }
            if pods.keys().any(|uid| !deleted_finished.contains(uid)) {
                pods.retain(|uid, _| !deleted_finished.contains(uid));
                deleted_finished.clear();
            }
            let mut list: Vec<Pod> = pods.values().cloned().collect();
            list.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
            write_status(&ctx, &name, |s| {
                s.monitor_start_time = Some(started);
                s.pods = list.clone();
                s.waiting = None;
                s.running = Some(KubernetesDiscoveryStateRunning {
                    start_time: started,
                });
            });
            queue.add(&name);
        }
        tokio::time::sleep(delay).await;
    }
}

async fn log_warnings(
    ctx: Ctx,
    cluster: Arc<dyn stilt_k8s::Cluster>,
    known: Arc<Mutex<HashSet<String>>>,
    resource: String,
) {
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
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
}

/// The pod to port-forward to: running (or deleting), not deleting before deleting, newest
/// first, name as the tie-breaker (Tilt's `PickBestPortForwardPod`).
pub(crate) fn best_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|p| !p.name.is_empty() && (p.phase == "Running" || p.deleting))
        .max_by(|a, b| {
            (!a.deleting, a.created_at, &a.name).cmp(&(!b.deleting, b.created_at, &b.name))
        })
}

/// The objects a KubernetesDiscovery owns, as its status says they should be.
pub(crate) fn desired_owned(kd: &KubernetesDiscovery) -> (Vec<PodLogStream>, Option<PortForward>) {
    let pods = kd
        .status
        .as_ref()
        .map(|s| s.pods.clone())
        .unwrap_or_default();
    let resource = kd.metadata.resource();
    let template = kd
        .spec
        .pod_log_stream_template_spec
        .clone()
        .unwrap_or_default();
    let annotate = |meta: &mut ObjectMeta, span: String| {
        if let Some(r) = resource {
            meta.annotations
                .insert(ANNOTATION_RESOURCE.into(), r.into());
        }
        meta.annotations.insert(ANNOTATION_LOG_SPAN_ID.into(), span);
        meta.owner_references = vec![owned_by(KIND, &kd.metadata)];
    };
    let streams = pods
        .iter()
        .map(|p| {
            let mut pls = PodLogStream::new(
                format!("{}-{}-{}", kd.metadata.name, p.namespace, p.name),
                PodLogStreamSpec {
                    pod: p.name.clone(),
                    namespace: p.namespace.clone(),
                    since_time: template.since_time,
                    only_containers: template.only_containers.clone(),
                    ignore_containers: template.ignore_containers.clone(),
                    cluster: kd.spec.cluster.clone(),
                },
            );
            annotate(&mut pls.metadata, format!("pod:{}/{}", p.namespace, p.name));
            pls
        })
        .collect();
    let forward = kd.spec.port_forward_template_spec.as_ref().and_then(|t| {
        let pod = best_pod(&pods)?;
        let mut pf = PortForward::new(
            format!("{}-{}", kd.metadata.name, pod.name),
            PortForwardSpec {
                pod_name: pod.name.clone(),
                namespace: pod.namespace.clone(),
                forwards: populate_container_ports(&t.forwards, pod),
                cluster: kd.spec.cluster.clone(),
            },
        );
        annotate(
            &mut pf.metadata,
            format!("portforward:{}", kd.metadata.name),
        );
        Some(pf)
    });
    (streams, forward)
}

/// Creates, updates and deletes the PodLogStreams and PortForward `name` owns (`kd` is `None`
/// when it is gone: everything it owned goes).
fn manage_owned(ctx: &Ctx, name: &str, kd: Option<&KubernetesDiscovery>) -> Outcome {
    let (streams, forward) = kd.map(desired_owned).unwrap_or_default();
    let mut errors = Vec::new();
    let mut note = |r: Result<(), StoreError>, what: String| match r {
        Ok(()) | Err(StoreError::NotFound { .. }) | Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => errors.push(format!("{what}: {e}")),
    };
    // Log streams: one per pod; one created stays as it is.
    let owned_streams: Vec<PodLogStream> = ctx
        .store
        .list_typed::<PodLogStream>()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| is_owned_by(&p.metadata, KIND, name))
        .collect();
    for old in &owned_streams {
        if !streams.iter().any(|s| s.metadata.name == old.metadata.name) {
            let r = ctx.store.delete("PodLogStream", &old.metadata.name);
            note(
                r.map(|_| ()),
                format!("deleting PodLogStream {}", old.metadata.name),
            );
        }
    }
    for s in &streams {
        if !owned_streams
            .iter()
            .any(|o| o.metadata.name == s.metadata.name)
        {
            let r = ctx.store.create_typed(s);
            note(
                r.map(|_| ()),
                format!("creating PodLogStream {}", s.metadata.name),
            );
        }
    }
    // Port-forward: only the best pod's; the old one goes first so its ports are free.
    let owned_forwards: Vec<PortForward> = ctx
        .store
        .list_typed::<PortForward>()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| is_owned_by(&p.metadata, KIND, name))
        .collect();
    for old in &owned_forwards {
        if forward
            .as_ref()
            .is_none_or(|f| f.metadata.name != old.metadata.name)
        {
            let r = ctx.store.delete("PortForward", &old.metadata.name);
            note(
                r.map(|_| ()),
                format!("deleting PortForward {}", old.metadata.name),
            );
        }
    }
    if let Some(f) = &forward {
        let same = owned_forwards
            .iter()
            .any(|o| o.metadata.name == f.metadata.name && o.spec == f.spec);
        if !same {
            let r = ctx.store.apply_typed(f);
            note(
                r.map(|_| ()),
                format!("writing PortForward {}", f.metadata.name),
            );
        }
    }
    if errors.is_empty() {
        Outcome::Done
    } else {
        Outcome::Error(errors.join("; "))
    }
}
