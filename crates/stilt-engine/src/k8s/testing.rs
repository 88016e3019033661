//! Test helpers: an engine context over a [`FakeCluster`] and waiting for the store.

use crate::{Ctx, Mode};
use std::sync::Arc;
use std::time::Duration;
use stilt_k8s::FakeCluster;
use stilt_store::Store;

/// A context whose cluster is `fake`.
pub(crate) fn ctx_with(fake: &FakeCluster) -> Ctx {
    ctx_with_adapters(super::K8sAdapters::with(Arc::new(fake.clone())))
}

pub(crate) fn ctx_with_adapters(k8s: super::K8sAdapters) -> Ctx {
    let k8s = Arc::new(k8s);
    Ctx {
        store: Store::default(),
        logs: Default::default(),
        mode: Mode::Up,
        process_env: Default::default(),
        docker: Default::default(),
        pod_sync: Arc::new(crate::podsync::PodSync::new(k8s.clone())),
        k8s,
        echo: Default::default(),
        docker_channels: Default::default(),
        leftovers: crate::leftovers::Leftovers::disabled(),
        images: Arc::new(crate::imagecache::BuiltImages::disabled()),
        ext_cache: stilt_extrepo::Cache::new(std::env::temp_dir().join("stilt-test-tilt-modules")),
    }
}

/// Waits until `f` returns something (the reconcilers run in tasks). Fails after 10 s.
pub(crate) async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every log line of a resource, joined.
pub(crate) fn log_of(ctx: &Ctx, resource: &str) -> String {
    ctx.logs
        .read(0, Some(resource))
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn deployment(name: &str, image: &str, port: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: {image}\n        ports: [{{containerPort: {port}}}]\n"
    )
}

/// A running pod owned by the object with `owner_uid`, declaring `port`.
pub(crate) fn pod(name: &str, owner_uid: &str, port: i32, created: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "creationTimestamp": created,
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner_uid}]
        },
        "spec": {"containers": [{"name": "main", "image": "web", "ports": [{"containerPort": port}]}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "main", "ready": true, "image": "web", "containerID": "containerd://1", "restartCount": 0,
             "state": {"running": {"startedAt": created}}}
        ]}
    })
}
