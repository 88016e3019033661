//! Shared helpers of the real-cluster tests (e2e and the channel benchmark).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stilt_k8s::{Cluster, KubeCluster};

/// `STILT_TEST_K8S=1` turns the real-cluster tests on; then the cluster MUST be reachable.
pub fn enabled() -> bool {
    std::env::var("STILT_TEST_K8S").as_deref() == Ok("1")
}

/// Connect using `$KUBECONFIG` (or the dev cluster's kubeconfig); panics loudly if unreachable.
pub async fn connect() -> Arc<KubeCluster> {
    let path = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/stilt-cluster/kubeconfig"));
    match KubeCluster::connect(Some(&path), None).await {
        Ok(c) => Arc::new(c),
        Err(e) => panic!(
            "STILT_TEST_K8S=1 but the cluster at {} is unreachable: {e}\n\
             (start it with `scripts/dev-cluster up`)",
            path.display()
        ),
    }
}

/// The static helper: `$STILT_SYNCER_BIN`, else built with crates/stilt-syncer/build-static.sh.
pub fn helper_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STILT_SYNCER_BIN") {
        return PathBuf::from(p);
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../stilt-syncer/build-static.sh"
    );
    let out = std::process::Command::new(script)
        .output()
        .expect("running build-static.sh");
    assert!(
        out.status.success(),
        "building the helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let p = if p.is_absolute() {
        p
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(p)
    };
    assert!(p.is_file(), "helper not at {}", p.display());
    p
}

/// A namespace unique to this run.
pub fn namespace(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000;
    format!("{prefix}-{}-{t}", std::process::id())
}

/// HTTP/1.0 GET over a plain TCP connection; returns (status line, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| std::io::Error::other("connect timeout"))??;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("read timeout"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

/// Retry an async check until it returns Some or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The test workload: busybox httpd on :8000 serving /www, a log line per second, and it exits
/// with code 3 when /www/die appears (so the test can make the container restart).
pub fn workload_yaml(ns: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: stilt-test/busybox
        command: ["sh", "-c", "mkdir -p /www; echo hello > /www/index.html; httpd -p 8000 -h /www; i=0; while [ ! -f /www/die ]; do echo tick $i; i=$((i+1)); sleep 1; done; echo dying; exit 3"]
        ports:
        - containerPort: 8000
"#
    )
}

/// Delete a namespace and wait (best effort).
pub async fn cleanup(cluster: &dyn Cluster, ns: &str) {
    let r = stilt_k8s::manifest::ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: ns.into(),
        ..Default::default()
    };
    let _ = cluster
        .delete(
            &[r],
            &stilt_k8s::DeleteOptions {
                wait: Some(Duration::from_secs(60)),
            },
        )
        .await;
}
