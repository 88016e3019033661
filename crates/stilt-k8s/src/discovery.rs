//! KubernetesDiscovery's pure core: label selectors, owner-chain matching, and the conversion of
//! a Kubernetes Pod (JSON) into the status form (`stilt_api::Pod`) with its errors.

use crate::manifest::ObjectRef;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use stilt_api::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, LabelSelector, Pod, PodCondition, PodOwner, Time,
};

/// Does a label set match a selector (`matchLabels` and every `matchExpressions`)? An empty
/// selector matches nothing, as in KubernetesDiscovery (it would otherwise select every pod).
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if sel.match_labels.is_empty() && sel.match_expressions.is_empty() {
        return false;
    }
    sel.match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().all(|e| {
            let v = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => v.is_some_and(|v| e.values.contains(v)),
                "NotIn" => v.is_none_or(|v| !e.values.contains(v)),
                "Exists" => v.is_some(),
                "DoesNotExist" => v.is_none(),
                _ => false,
            }
        })
}

/// Labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The owner references of an object, as refs (namespace taken from the object).
pub fn owners_of(obj: &Value) -> Vec<ObjectRef> {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|o| {
                    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    ObjectRef {
                        api_version: s("apiVersion"),
                        kind: s("kind"),
                        name: s("name"),
                        namespace: ns.to_string(),
                        uid: s("uid"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Fetches an owner object (to read its own owners). `None` when it is gone.
pub type OwnerLookup<'a> =
    &'a (dyn Fn(ObjectRef) -> BoxFuture<'static, Option<Value>> + Send + Sync);

/// Walk the owner chain of `obj` (itself included) up to 6 levels; the first UID found in
/// `watched` is the ancestor.
pub async fn find_ancestor(
    obj: &Value,
    watched: &HashSet<String>,
    lookup: OwnerLookup<'_>,
) -> Option<String> {
    if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str)
        && watched.contains(uid)
    {
        return Some(uid.to_string());
    }
    let mut frontier = owners_of(obj);
    for _ in 0..6 {
        if frontier.is_empty() {
            return None;
        }
        if let Some(hit) = frontier.iter().find(|o| watched.contains(&o.uid)) {
            return Some(hit.uid.clone());
        }
        let mut next = Vec::new();
        for o in frontier {
            if let Some(v) = lookup(o).await {
                next.extend(owners_of(&v));
            }
        }
        frontier = next;
    }
    None
}

fn time(v: Option<&Value>) -> Option<Time> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| Time(d.with_timezone(&Utc)))
}

/// Waiting reasons that mean the container is broken, not just starting.
const ERROR_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
];

/// Convert a Kubernetes Pod object into the status form. `ancestor_uid` is what matched.
pub fn api_pod(pod: &Value, ancestor_uid: &str) -> Pod {
    let s = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let labels = labels_of(pod);
    let mut errors = Vec::new();
    let mut status_word = String::new();

    // Ports per container from the spec.
    let ports_of = |field: &str, name: &str| -> Vec<i32> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|c| c.get("ports"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("containerPort").and_then(Value::as_i64))
                    .map(|p| p as i32)
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut convert = |statuses: Option<&Value>, spec_field: &str| -> Vec<Container> {
        let Some(arr) = statuses.and_then(Value::as_array) else {
            return Vec::new();
        };
        arr.iter()
            .map(|c| {
                let g = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let name = g("name");
                let mut state = ContainerState::default();
                if let Some(w) = c.pointer("/state/waiting") {
                    let reason = w
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let msg = w.get("message").and_then(Value::as_str).unwrap_or("");
                    if ERROR_REASONS.contains(&reason.as_str()) {
                        errors.push(if msg.is_empty() {
                            format!("container {name:?}: {reason}")
                        } else {
                            format!("container {name:?}: {reason}: {msg}")
                        });
                        status_word = reason.clone();
                    } else if status_word.is_empty() && !reason.is_empty() {
                        status_word = reason.clone();
                    }
                    state.waiting = Some(ContainerStateWaiting { reason });
                } else if let Some(r) = c.pointer("/state/running") {
                    state.running = Some(ContainerStateRunning {
                        started_at: time(r.get("startedAt")).unwrap_or_default(),
                    });
                } else if let Some(t) = c.pointer("/state/terminated") {
                    let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) as i32;
                    let reason = t
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if code != 0 && spec_field == "containers" {
                        errors.push(format!(
                            "container {name:?} exited with code {code} ({reason})"
                        ));
                    }
                    state.terminated = Some(ContainerStateTerminated {
                        started_at: time(t.get("startedAt")).unwrap_or_default(),
                        finished_at: time(t.get("finishedAt")).unwrap_or_default(),
                        reason,
                        exit_code: code,
                    });
                }
                Container {
                    ports: ports_of(spec_field, &name),
                    name,
                    id: g("containerID"),
                    ready: c.get("ready").and_then(Value::as_bool).unwrap_or(false),
                    image: g("image"),
                    restarts: c.get("restartCount").and_then(Value::as_i64).unwrap_or(0) as i32,
                    state,
                }
            })
            .collect()
    };
    let init_containers = convert(
        pod.pointer("/status/initContainerStatuses"),
        "initContainers",
    );
    let containers = convert(pod.pointer("/status/containerStatuses"), "containers");

    let conditions = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| {
                    let g = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    PodCondition {
                        r#type: g("type"),
                        status: g("status"),
                        last_transition_time: time(c.get("lastTransitionTime")),
                        reason: g("reason"),
                        message: g("message"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let phase = s("/status/phase");
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
    // Unschedulable pods say so in a condition.
    if let Some(c) = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().find(|c| {
                c.get("type").and_then(Value::as_str) == Some("PodScheduled")
                    && c.get("reason").and_then(Value::as_str) == Some("Unschedulable")
            })
        })
    {
        errors.push(format!(
            "Unschedulable: {}",
            c.get("message").and_then(Value::as_str).unwrap_or("")
        ));
        if status_word.is_empty() {
            status_word = "Unschedulable".into();
        }
    }
    let status = if deleting {
        "Terminating".to_string()
    } else if !status_word.is_empty() {
        status_word
    } else if !s("/status/reason").is_empty() {
        s("/status/reason")
    } else {
        phase.clone()
    };

    let owner = owners_of(pod).into_iter().next().map(|o| PodOwner {
        name: o.name,
        api_version: o.api_version,
        kind: o.kind,
        creation_timestamp: None,
    });

    Pod {
        name: s("/metadata/name"),
        namespace: s("/metadata/namespace"),
        created_at: time(pod.pointer("/metadata/creationTimestamp")).unwrap_or_default(),
        phase,
        deleting,
        conditions,
        init_containers,
        containers,
        uid: s("/metadata/uid"),
        ancestor_uid: ancestor_uid.to_string(),
        pod_template_spec_hash: labels
            .get(crate::inject::POD_TEMPLATE_HASH_LABEL)
            .cloned()
            .unwrap_or_default(),
        status,
        errors,
        owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stilt_api::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "fe")]);
        let mut s = LabelSelector::default();
        assert!(!selector_matches(&s, &l), "empty selects nothing");
        s.match_labels.insert("app".into(), "web".into());
        assert!(selector_matches(&s, &l));
        s.match_expressions.push(LabelSelectorRequirement {
            key: "tier".into(),
            operator: "In".into(),
            values: vec!["fe".into(), "be".into()],
        });
        assert!(selector_matches(&s, &l));
        s.match_expressions.push(LabelSelectorRequirement {
            key: "canary".into(),
            operator: "DoesNotExist".into(),
            values: vec![],
        });
        assert!(selector_matches(&s, &l));
        s.match_expressions.push(LabelSelectorRequirement {
            key: "tier".into(),
            operator: "NotIn".into(),
            values: vec!["fe".into()],
        });
        assert!(!selector_matches(&s, &l));
    }

    #[tokio::test]
    async fn owner_chain_reaches_the_deployment() {
        let dep_uid = "dep-1";
        let rs = json!({"metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-1",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep_uid}]}});
        let pod = json!({"metadata": {"name": "web-abc-x", "namespace": "ns", "uid": "pod-1",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-1"}]}});
        let lookup = move |r: ObjectRef| -> BoxFuture<'static, Option<Value>> {
            let rs = rs.clone();
            Box::pin(async move { (r.uid == "rs-1").then_some(rs) })
        };
        let watched: HashSet<String> = [dep_uid.to_string()].into();
        assert_eq!(
            find_ancestor(&pod, &watched, &lookup).await.as_deref(),
            Some(dep_uid)
        );
        let watched: HashSet<String> = ["pod-1".to_string()].into();
        assert_eq!(
            find_ancestor(&pod, &watched, &lookup).await.as_deref(),
            Some("pod-1")
        );
        let watched: HashSet<String> = ["other".to_string()].into();
        assert_eq!(find_ancestor(&pod, &watched, &lookup).await, None);
    }

    #[test]
    fn pod_status_form_with_errors() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"tilt.dev/pod-template-hash": "abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x", "uid": "rs"}]},
            "spec": {"containers": [{"name": "web", "image": "x", "ports": [{"containerPort": 8000}]}]},
            "status": {"phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3, "image": "x",
                    "containerID": "containerd://1",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}
        });
        let p = api_pod(&pod, "dep");
        assert_eq!(p.name, "web-1");
        assert_eq!(p.ancestor_uid, "dep");
        assert_eq!(p.pod_template_spec_hash, "abc");
        assert_eq!(p.status, "CrashLoopBackOff");
        assert_eq!(p.containers[0].restarts, 3);
        assert_eq!(p.containers[0].ports, [8000]);
        assert_eq!(p.containers[0].id, "containerd://1");
        assert_eq!(
            p.errors,
            ["container \"web\": CrashLoopBackOff: back-off 40s"]
        );
        assert_eq!(p.owner.unwrap().kind, "ReplicaSet");

        let unsched = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}]}});
        let p = api_pod(&unsched, "");
        assert_eq!(p.status, "Unschedulable");
        assert_eq!(p.errors, ["Unschedulable: 0/1 nodes"]);
    }
}
