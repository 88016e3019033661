//! Which container a syncback reads: the newest ready pod of a Kubernetes object (never one that
//! is terminating), or the running container of a compose service.

use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use stilt_api::{Pod, SyncbackKubernetesSource};
use stilt_k8s::manifest::ObjectRef;
use stilt_k8s::{Cluster, ContainerRef, PodEvent, PodWatchSpec};

/// `TYPE/NAME` as kubectl spells it → (apiVersion, kind).
fn kind_of(type_: &str) -> Option<(&'static str, &'static str)> {
    Some(match type_.to_ascii_lowercase().as_str() {
        "po" | "pod" | "pods" => ("v1", "Pod"),
        "deploy" | "deployment" | "deployments" => ("apps/v1", "Deployment"),
        "sts" | "statefulset" | "statefulsets" => ("apps/v1", "StatefulSet"),
        "ds" | "daemonset" | "daemonsets" => ("apps/v1", "DaemonSet"),
        "rs" | "replicaset" | "replicasets" => ("apps/v1", "ReplicaSet"),
        "job" | "jobs" => ("batch/v1", "Job"),
        _ => return None,
    })
}

fn ready(p: &Pod) -> bool {
    let by_condition = p
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .map(|c| c.status == "True");
    by_condition.unwrap_or_else(|| !p.containers.is_empty() && p.containers.iter().all(|c| c.ready))
}

/// The newest ready, non-terminating pod among `pods`; the error lists what was seen.
pub fn newest_ready(pods: &[Pod], what: &str) -> Result<Pod, String> {
    pods.iter()
        .filter(|p| !p.deleting && p.phase == "Running" && ready(p))
        .max_by_key(|p| (p.created_at.0, p.name.clone()))
        .cloned()
        .ok_or_else(|| {
            let seen: Vec<String> = pods
                .iter()
                .map(|p| {
                    let state = if p.deleting {
                        "terminating".to_string()
                    } else if ready(p) {
                        p.phase.clone()
                    } else {
                        format!("{}, not ready", p.phase)
                    };
                    format!("{} ({state})", p.name)
                })
                .collect();
            if seen.is_empty() {
                format!("no pods of {what} found")
            } else {
                format!("no ready pod of {what}: {}", seen.join(", "))
            }
        })
}

/// Resolves the source object to the container to read.
pub async fn pick_pod(
    cluster: Arc<dyn Cluster>,
    src: &SyncbackKubernetesSource,
) -> Result<ContainerRef, String> {
    let namespace = if src.namespace.is_empty() {
        let ns = cluster.info().namespace;
        if ns.is_empty() { "default".into() } else { ns }
    } else {
        src.namespace.clone()
    };
    let (type_, name) = src.object.split_once('/').unwrap_or(("pod", &src.object));
    let (api_version, kind) = kind_of(type_).ok_or_else(|| {
        format!(
            "{:?}: unsupported object type {type_:?} (use pod/, deploy/, statefulset/, daemonset/, replicaset/ or job/)",
            src.object
        )
    })?;
    let r = ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.clone(),
        uid: String::new(),
    };
    let obj = cluster
        .get(&r)
        .await
        .map_err(|e| format!("reading {}: {e}", src.object))?
        .ok_or_else(|| format!("{} not found in namespace {namespace}", src.object))?;
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pods = pods_of(cluster.as_ref(), &namespace, uid).await?;
    let pod = newest_ready(&pods, &src.object)?;
    let container = if !src.container.is_empty() {
        if !pod.containers.iter().any(|c| c.name == src.container) {
            return Err(format!(
                "pod {} has no container {:?} (it has: {})",
                pod.name,
                src.container,
                pod.containers
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        src.container.clone()
    } else {
        first_container(cluster.as_ref(), &pod).await?
    };
    Ok(ContainerRef::new(&namespace, &pod.name, &container))
}

/// The pods owned (at any depth) by the object with `uid`, as the cluster lists them now.
async fn pods_of(cluster: &dyn Cluster, namespace: &str, uid: String) -> Result<Vec<Pod>, String> {
    let mut stream = cluster
        .watch_pods(PodWatchSpec {
            namespaces: vec![namespace.to_string()],
            ancestor_uids: HashSet::from([uid]),
            extra_selectors: vec![],
        })
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut pods: Vec<Pod> = Vec::new();
    let listed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(ev) = stream.next().await {
            match ev {
                PodEvent::Upsert(p) => {
                    pods.retain(|q| q.uid != p.pod.uid);
                    pods.push(p.pod);
                }
                PodEvent::Deleted { uid, .. } => pods.retain(|q| q.uid != uid),
                PodEvent::Synced => return Ok(()),
                PodEvent::Error(e) => return Err(format!("listing pods: {e}")),
            }
        }
        Err("the pod list ended early".to_string())
    })
    .await;
    match listed {
        Ok(r) => r.map(|()| pods),
        Err(_) => Err("listing pods timed out after 15s".into()),
    }
}

/// The container `kubectl exec` would pick: the default-container annotation, else the first
/// container of the pod spec.
async fn first_container(cluster: &dyn Cluster, pod: &Pod) -> Result<String, String> {
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.name.clone(),
        namespace: pod.namespace.clone(),
        uid: String::new(),
    };
    let v = cluster.get(&r).await.ok().flatten().unwrap_or_default();
    v["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        .as_str()
        .or_else(|| v["spec"]["containers"][0]["name"].as_str())
        .map(str::to_string)
        .or_else(|| pod.containers.first().map(|c| c.name.clone()))
        .ok_or_else(|| format!("pod {} has no containers", pod.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stilt_api::{PodCondition, Time};

    fn pod(name: &str, age_s: i64, ready: bool, deleting: bool) -> Pod {
        Pod {
            name: name.into(),
            namespace: "default".into(),
            created_at: Time(chrono::Utc::now() - chrono::Duration::seconds(age_s)),
            phase: "Running".into(),
            deleting,
            conditions: vec![PodCondition {
                r#type: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_ready_pod_wins_and_terminating_ones_never_do() {
        let pods = vec![
            pod("old", 300, true, false),
            pod("newer", 100, true, false),
            pod("newest-terminating", 10, true, true),
            pod("newest-starting", 5, false, false),
        ];
        assert_eq!(newest_ready(&pods, "deploy/web").unwrap().name, "newer");
        let err = newest_ready(&pods[2..], "deploy/web").unwrap_err();
        assert!(err.contains("newest-terminating (terminating)"), "{err}");
        assert!(
            err.contains("newest-starting (Running, not ready)"),
            "{err}"
        );
        assert_eq!(
            newest_ready(&[], "deploy/web").unwrap_err(),
            "no pods of deploy/web found"
        );
    }
}
