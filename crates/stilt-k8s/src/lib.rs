//! # stilt-k8s — the Kubernetes adapter
//!
//! **Owns:** everything Stilt says to a Kubernetes cluster, and the pure manifest work around it:
//! - [`manifest`]: multi-document YAML ⇄ `serde_json::Value` objects (serde-saphyr, YAML 1.1
//!   numbers as Kubernetes reads them), [`manifest::ObjectRef`], kind order for apply/delete.
//! - [`inject`] / [`image`] / [`jsonpath`]: Tilt's transforms before an apply (§4.5 of the
//!   behaviour notes): built images injected by selector (by repository name unless the selector
//!   has a tag) into containers, init/ephemeral containers, image volumes, env vars
//!   (`match_in_env_vars`) and `k8s_kind` JSONPath/object locators; `imagePullPolicy:
//!   IfNotPresent` on injected containers; `app.kubernetes.io/managed-by: tilt`;
//!   `tilt.dev/pod-template-hash`. [`names`]: workload resource names (`name:kind:ns:group`,
//!   shortest unique).
//! - [`Cluster`], the object-safe async trait reconcilers call, with [`KubeCluster`] (kube-rs:
//!   server-side apply with field manager `tilt` + force and delete-and-create on immutable
//!   fields, dynamic discovery so any kind works, pod/event watchers, logs, exec and
//!   port-forward over WebSockets) and [`FakeCluster`] (in memory, for reconciler tests).
//! - Built on the trait, so they run against either: [`discovery`] (KubernetesDiscovery's
//!   owner-chain/selector matching and the pod status form), [`follow_logs`] (a container's log
//!   across restarts, resumed by timestamp), [`PortForwarder`] (a local port whose pod can be
//!   swapped), and [`ContainerSyncer`] (live update through ONE persistent exec running the
//!   `stilt-syncer` helper, falling back to exec + `tar` as Tilt does).
//!
//! **Must not:** hold or read the API store, write object status, run reconcile loops, decide
//! *when* to apply/sync (that is the engine's job), know about Docker, or shell out to
//! `kubectl`. It takes plain data (objects as JSON values, refs, specs) and returns plain data
//! (`stilt_api` status types where they exist). Only `stilt-api` and `stilt-syncer` are
//! workspace dependencies.
//!
//! **Tests:** `cargo test -p stilt-k8s` runs the pure unit tests (manifests, injection,
//! labels, names, discovery) and the [`FakeCluster`] contract tests. The real-cluster e2e test
//! and the channel benchmark need `scripts/dev-cluster up`, then
//! `eval "$(scripts/dev-cluster env)"` and `STILT_TEST_K8S=1 cargo test -p stilt-k8s --test
//! e2e_cluster -- --nocapture` / `STILT_TEST_K8S=1 cargo bench -p stilt-k8s --bench channel`;
//! with the variable set, an unreachable cluster is a failure, not a skip. The helper binary
//! comes from `$STILT_SYNCER_BIN` or is built by `crates/stilt-syncer/build-static.sh`.
//!
//! ```no_run
//! # async fn demo() -> stilt_k8s::Result<()> {
//! use std::sync::Arc;
//! use futures::StreamExt;
//! use stilt_k8s::inject::{ImageInjection, prepare_for_apply};
//! use stilt_k8s::manifest::parse_yaml;
//! use stilt_k8s::*;
//!
//! let cluster: Arc<dyn Cluster> = Arc::new(KubeCluster::connect(None, None).await?);
//! println!("{:?}", cluster.info().registry); // KEP-1755 local registry, if any
//!
//! // KubernetesApply: inject, label, apply.
//! let objs = parse_yaml(&std::fs::read_to_string("k8s.yaml").unwrap())?;
//! let img = ImageInjection::new("web", "localhost:5000/web:tilt-0123456789abcdef")?;
//! let applied = cluster.apply(&prepare_for_apply(objs, &[img], &[])?, &ApplyOptions::default()).await?;
//! let uid = applied[0]["metadata"]["uid"].as_str().unwrap().to_string();
//!
//! // KubernetesDiscovery: pods whose owner chain reaches the applied objects.
//! let mut pods = cluster
//!     .watch_pods(PodWatchSpec { ancestor_uids: [uid].into(), ..Default::default() })
//!     .await?;
//! while let Some(PodEvent::Upsert(p)) = pods.next().await {
//!     let c = ContainerRef::new(&p.pod.namespace, &p.pod.name, "web");
//!     // PodLogStream, PortForward, LiveUpdate:
//!     let _logs = follow_logs(cluster.clone(), c.clone(), FollowOptions::default());
//!     let spec = ForwardSpec { namespace: c.namespace.clone(), pod: c.pod.clone(),
//!         host: "localhost".into(), local_port: 8000, container_port: 8000 };
//!     let _pf = PortForwarder::start(cluster.clone(), spec).await?;
//!     let mut sync = ContainerSyncer::connect(cluster.clone(), c, ChannelOptions::discover()).await?;
//!     let report = sync.update(&[], vec![WriteEntry::file("/app/main.py", 0o644, "print(1)")]).await?;
//!     println!("synced via {:?} in {:?}", report.mode, report.elapsed);
//!     break;
//! }
//! # Ok(()) }
//! ```

pub mod channel;
pub mod client_apply;
pub mod cluster;
pub mod discovery;
pub mod error;
mod fake;
pub mod image;
pub mod inject;
pub mod jsonpath;
mod kube_cluster;
pub mod kubeconfig;
pub mod logs;
pub mod manifest;
pub mod names;
mod pftunnel;
mod portforward;
mod spdy;

pub use channel::{ChannelOptions, ContainerSyncer, SyncMode, SyncerPool, UpdateReport};
pub use cluster::*;
pub use error::{K8sError, Result};
pub use fake::{FakeCluster, FakeExecHandler};
pub use kube_cluster::{KubeCluster, cluster_product, parse_registry_hosting};
pub use logs::{FollowOptions, LogEvent, follow_logs};
pub use portforward::{ForwardSpec, ForwardState, PortForwarder};
pub use stilt_syncer::{Entry, FileKind, Stream, WriteEntry};
