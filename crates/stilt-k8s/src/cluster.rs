//! The [`Cluster`] trait: what reconcilers may ask of a Kubernetes cluster, as plain data.
//! [`crate::KubeCluster`] implements it with kube-rs, [`crate::FakeCluster`] in memory.
//! Higher-level pieces ([`crate::logs::follow_logs`], [`crate::PortForwarder`],
//! [`crate::channel`]) are built on the trait, so they run against either.

use crate::error::Result;
use crate::manifest::ObjectRef;
use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// What a connection found out about the cluster (→ Cluster object status).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterInfo {
    pub context: String,
    /// The kubeconfig cluster name of the context.
    pub cluster: String,
    /// Default namespace of the context (`default` when unset).
    pub namespace: String,
    /// API server URL.
    pub server: String,
    /// `gitVersion`, e.g. `v1.35.4`.
    pub server_version: String,
    /// Node architecture (`amd64`, `arm64`); the most common one if nodes differ.
    pub arch: String,
    /// The nodes' container runtime (`docker`, `containerd`, `cri-o`; the scheme of a node's
    /// `containerRuntimeVersion`), empty when nodes cannot be read.
    pub container_runtime: String,
    /// Cluster product guessed from the cluster name (`kind`, `minikube`, … or `unknown`).
    pub product: String,
    /// KEP-1755 local registry from `kube-public/local-registry-hosting`.
    pub registry: Option<stilt_api::RegistryHosting>,
    /// The kubeconfig file used (empty when from the environment/in-cluster).
    pub config_path: String,
}

/// Options of [`Cluster::apply`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Deadline for the whole apply (Tilt: `k8s_upsert_timeout_secs`, 30 s).
    pub timeout: Duration,
    /// Field manager of the apply.
    pub field_manager: String,
    /// Server-side apply (`KubernetesApply.spec.serverSideApply`); otherwise client-side, as
    /// `kubectl apply` (Tilt's default).
    pub server_side: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            timeout: Duration::from_secs(30),
            field_manager: "tilt".into(),
            server_side: false,
        }
    }
}

/// Options of [`Cluster::delete`].
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Wait up to this long until the objects are gone.
    pub wait: Option<Duration>,
}

/// Options of [`Cluster::delete_by_labels`] (`stilt down` without a manifest).
#[derive(Debug, Clone)]
pub struct DeleteByLabelOptions {
    /// A label selector, e.g. `app.kubernetes.io/managed-by=tilt`.
    pub label_selector: String,
    /// Only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Also delete Namespaces (Tilt: only with `--delete-namespaces`).
    pub delete_namespaces: bool,
    /// Kinds beyond [`DEFAULT_DELETE_KINDS`], as `(apiVersion, kind)`.
    pub extra_kinds: Vec<(String, String)>,
    pub wait: Option<Duration>,
}

impl Default for DeleteByLabelOptions {
    fn default() -> Self {
        DeleteByLabelOptions {
            label_selector: format!(
                "{}={}",
                crate::inject::MANAGED_BY_LABEL,
                crate::inject::MANAGED_BY_VALUE
            ),
            namespace: None,
            delete_namespaces: false,
            extra_kinds: Vec::new(),
            wait: None,
        }
    }
}

/// The kinds searched by [`Cluster::delete_by_labels`], in apply order (deleted in reverse).
pub const DEFAULT_DELETE_KINDS: &[(&str, &str)] = &[
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("v1", "Pod"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
];

/// What to discover (KubernetesDiscovery semantics).
#[derive(Debug, Clone, Default)]
pub struct PodWatchSpec {
    /// Namespaces to watch; empty = all namespaces.
    pub namespaces: Vec<String>,
    /// Pods whose owner chain (or own UID) reaches one of these UIDs match.
    pub ancestor_uids: HashSet<String>,
    /// Pods whose labels match any of these selectors match too.
    pub extra_selectors: Vec<stilt_api::LabelSelector>,
}

/// A pod that matched, in the form KubernetesDiscovery status wants.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredPod {
    /// Status form (phase, containers, errors, `ancestorUID`, `podTemplateSpecHash`…).
    pub pod: stilt_api::Pod,
    pub labels: BTreeMap<String, String>,
}

/// One change seen by [`Cluster::watch_pods`].
#[derive(Debug, Clone, PartialEq)]
pub enum PodEvent {
    /// A matching pod appeared or changed.
    Upsert(Box<DiscoveredPod>),
    /// A previously reported pod is gone (or no longer matches).
    Deleted {
        namespace: String,
        name: String,
        uid: String,
    },
    /// The initial listing is complete (every pod existing at start was reported).
    Synced,
    /// A watch problem; the watch retries by itself.
    Error(String),
}

/// A Kubernetes Event about some object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectEvent {
    pub involved: ObjectRef,
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
}

/// A container to exec in / stream logs from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    /// Empty: the pod's only (or default) container.
    pub container: String,
}

impl ContainerRef {
    pub fn new(namespace: &str, pod: &str, container: &str) -> Self {
        ContainerRef {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        }
    }
}

impl std::fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.pod)?;
        if !self.container.is_empty() {
            write!(f, "[{}]", self.container)?;
        }
        Ok(())
    }
}

/// One container log request.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub container: ContainerRef,
    pub follow: bool,
    /// Only lines after this time (Tilt's `sinceTime`).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Prefix each line with its RFC 3339 timestamp (needed to resume without duplicates).
    pub timestamps: bool,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
}

/// A running exec. Dropping it kills the stream.
pub struct ExecProcess {
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    /// Resolves with the exit code once the process ended (an error if it never started, e.g.
    /// "executable file not found").
    pub exit: BoxFuture<'static, Result<i32>>,
    /// Keeps the underlying connection alive.
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess").finish_non_exhaustive()
    }
}

/// A bidirectional byte stream (a port-forwarded connection).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// Everything Stilt does with a cluster. Object-safe: use `Arc<dyn Cluster>`.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// What the connection found (context, namespace, version, arch, registry).
    fn info(&self) -> ClusterInfo;

    /// Is the API server answering? Returns its version.
    async fn ping(&self) -> Result<String>;

    /// Server-side apply (field manager `tilt`, force) of every object, in kind order; an
    /// immutable-field error falls back to delete-and-create. Returns the objects as the server
    /// returned them (uids filled, `managedFields` dropped), in input order.
    async fn apply(&self, objects: &[Value], opts: &ApplyOptions) -> Result<Vec<Value>>;

    /// One object, `None` if it does not exist.
    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>>;

    /// Delete objects (reverse kind order); missing ones are fine.
    async fn delete(&self, refs: &[ObjectRef], opts: &DeleteOptions) -> Result<()>;

    /// Delete every object of [`DEFAULT_DELETE_KINDS`] (+ extras) matching a label selector,
    /// skipping `tilt.dev/down-policy: keep`. Returns what was deleted.
    async fn delete_by_labels(&self, opts: &DeleteByLabelOptions) -> Result<Vec<ObjectRef>>;

    /// Watch pods and report the ones matching `spec`. The stream retries on errors forever.
    async fn watch_pods(&self, spec: PodWatchSpec) -> Result<BoxStream<'static, PodEvent>>;

    /// Watch Kubernetes Events in a namespace (all when `None`), only those about objects whose
    /// UID is in `involved_uids` (all when empty).
    async fn watch_events(
        &self,
        namespace: Option<String>,
        involved_uids: HashSet<String>,
    ) -> Result<BoxStream<'static, ObjectEvent>>;

    /// One log request as lines without their newline (the stream ends when the container
    /// stops, if following).
    async fn logs(&self, req: &LogRequest) -> Result<BoxStream<'static, Result<String>>>;

    /// Start a command in a container with stdin/stdout/stderr attached.
    async fn exec(&self, target: &ContainerRef, argv: &[String]) -> Result<ExecProcess>;

    /// One connection to `port` of a pod.
    async fn port_forward(&self, namespace: &str, pod: &str, port: u16) -> Result<Box<dyn Duplex>>;
}

/// Output of [`exec_collect`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run a command to completion with `stdin`, streaming output chunks to `on_output`
/// (`true` = stderr) and returning everything collected.
pub async fn exec_streaming(
    cluster: &dyn Cluster,
    target: &ContainerRef,
    argv: &[String],
    stdin: &[u8],
    mut on_output: impl FnMut(bool, &[u8]) + Send,
) -> Result<ExecOutput> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut p = cluster.exec(target, argv).await?;
    let mut input = p.stdin.take();
    let mut out = ExecOutput::default();
    let (mut so, mut se) = (p.stdout, p.stderr);
    {
        let write = async {
            if let Some(w) = input.as_mut() {
                if !stdin.is_empty() {
                    w.write_all(stdin).await?;
                }
                w.shutdown().await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read = async {
            let (mut b1, mut b2) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
            let (mut done1, mut done2) = (false, false);
            while !(done1 && done2) {
                tokio::select! {
                    r = so.read(&mut b1), if !done1 => match r {
                        Ok(0) | Err(_) => done1 = true,
                        Ok(n) => { on_output(false, &b1[..n]); out.stdout.extend_from_slice(&b1[..n]); }
                    },
                    r = se.read(&mut b2), if !done2 => match r {
                        Ok(0) | Err(_) => done2 = true,
                        Ok(n) => { on_output(true, &b2[..n]); out.stderr.extend_from_slice(&b2[..n]); }
                    },
                }
            }
        };
        // When the process exits without reading all of stdin (tar failing early), the write
        // would block forever on a full pipe: the output ending is what counts, and a write
        // error (broken pipe) is not ours to report.
        tokio::pin!(write);
        tokio::pin!(read);
        let mut write_done = false;
        loop {
            tokio::select! {
                _ = &mut write, if !write_done => write_done = true,
                () = &mut read => break,
            }
        }
    }
    drop(input);
    out.exit_code = p.exit.await?;
    drop(p.guard);
    Ok(out)
}

/// Run a command to completion with `stdin`; collect its output and exit code.
pub async fn exec_collect(
    cluster: &dyn Cluster,
    target: &ContainerRef,
    argv: &[String],
    stdin: &[u8],
) -> Result<ExecOutput> {
    exec_streaming(cluster, target, argv, stdin, |_, _| {}).await
}

/// Argv helper: `argv(["sh", "-c", "x"])`.
pub fn argv<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}
