//! [`FakeCluster`]: an in-memory [`Cluster`] for reconciler tests.
//!
//! - `apply` stores objects (uids, resourceVersions, timestamps, default namespace filled) and
//!   honours the same injection-free semantics as the real one; [`FakeCluster::fail_next_apply`]
//!   scripts errors (e.g. an immutable-field error, to test the escalation path callers see).
//! - Pods are added by the test ([`FakeCluster::put_pod`], JSON as the API would return it)
//!   and reach `watch_pods` subscribers through the same owner-chain matching as the real
//!   adapter (owners are looked up among stored objects).
//! - Logs are pushed per container ([`FakeCluster::push_log`]); events with
//!   [`FakeCluster::emit_event`].
//! - Exec: a per-test handler ([`FakeCluster::set_exec_handler`]) or the builtins over a
//!   container root directory ([`FakeCluster::set_container_root`]): `tar -x` (with `-C`),
//!   `rm -rf`, `cat`, and any installed `stilt-syncer*` helper, served in-process by the real
//!   request loop — so [`crate::ContainerSyncer`] runs unmodified against the fake.
//! - Port-forward: [`FakeCluster::set_port_target`] maps a pod port to a local TCP address.

use crate::cluster::*;
use crate::discovery::{api_pod, find_ancestor, labels_of, selector_matches};
use crate::error::{K8sError, Result};
use crate::manifest::ObjectRef;
use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

type Key = (String, String, String, String); // apiVersion, kind, namespace, name

/// Scripted exec result: `None` falls through to the builtins.
pub type FakeExecHandler =
    Arc<dyn Fn(&ContainerRef, &[String], &[u8]) -> Option<ExecOutput> + Send + Sync>;

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    next_uid: u64,
    rv: u64,
    apply_failures: Vec<K8sError>,
    logs: HashMap<ContainerRef, Vec<String>>,
    log_closed: HashSet<ContainerRef>,
    roots: HashMap<ContainerRef, PathBuf>,
    ports: HashMap<(String, String, u16), SocketAddr>,
    exec_handler: Option<FakeExecHandler>,
    calls: Vec<String>,
}

#[derive(Clone, Debug)]
enum Change {
    Pod(Value),
    PodDeleted(Value),
    Event(ObjectEvent),
    Log,
}

/// An in-memory cluster. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Change>,
    info: ClusterInfo,
}

impl std::fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCluster")
            .field("info", &self.info)
            .finish()
    }
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

fn key_of(r: &ObjectRef) -> Key {
    (
        r.api_version.clone(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "StorageClass"
            | "PriorityClass"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
    )
}

impl FakeCluster {
    /// An empty cluster: context `fake`, namespace `default`, `v1.35.0`, `amd64`.
    pub fn new() -> FakeCluster {
        FakeCluster {
            state: Default::default(),
            changes: broadcast::channel(1024).0,
            info: ClusterInfo {
                context: "fake".into(),
                cluster: "fake".into(),
                namespace: "default".into(),
                server: "https://fake".into(),
                server_version: "v1.35.0".into(),
                arch: "amd64".into(),
                container_runtime: "containerd".into(),
                product: "unknown".into(),
                registry: None,
                config_path: String::new(),
            },
        }
    }

    /// Replace the connection info (e.g. to publish a registry).
    pub fn with_info(mut self, info: ClusterInfo) -> Self {
        self.info = info;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Every call made (`apply Deployment/web`, `exec ns/pod[c] tar -x …`, …).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The next apply fails with this error (queue; one per apply call).
    pub fn fail_next_apply(&self, e: K8sError) {
        self.lock().apply_failures.push(e);
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.values().cloned().collect()
    }

    fn normalize(&self, st: &mut State, obj: &Value) -> Result<(Key, Value)> {
        let mut r = ObjectRef::of(obj)?;
        let mut v = obj.clone();
        if !cluster_scoped(&r.kind) && r.namespace.is_empty() {
            r.namespace = self.info.namespace.clone();
            v["metadata"]["namespace"] = json!(r.namespace);
        }
        let key = key_of(&r);
        let (uid, created) = match st.objects.get(&key) {
            Some(old) => (
                old["metadata"]["uid"].clone(),
                old["metadata"]["creationTimestamp"].clone(),
            ),
            None => {
                st.next_uid += 1;
                (
                    json!(format!("uid-{}", st.next_uid)),
                    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                )
            }
        };
        st.rv += 1;
        v["metadata"]["uid"] = uid;
        v["metadata"]["creationTimestamp"] = created;
        v["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        Ok((key, v))
    }

    /// Add or replace a pod (JSON as the API returns it: metadata with ownerReferences and
    /// labels, spec, status). A missing uid/namespace/creationTimestamp is filled. Returns it.
    pub fn put_pod(&self, pod: Value) -> Value {
        let mut pod = pod;
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        let v = {
            let mut st = self.lock();
            let (key, mut v) = self.normalize(&mut st, &pod).expect("valid pod");
            if let Some(uid) = pod.pointer("/metadata/uid") {
                v["metadata"]["uid"] = uid.clone();
            }
            st.objects.insert(key, v.clone());
            v
        };
        let _ = self.changes.send(Change::Pod(v.clone()));
        v
    }

    /// Remove a pod (watchers see it deleted; its log follows end).
    pub fn remove_pod(&self, namespace: &str, name: &str) {
        let key = ("v1".into(), "Pod".into(), namespace.into(), name.into());
        let old = self.lock().objects.remove(&key);
        if let Some(old) = old {
            let _ = self.changes.send(Change::PodDeleted(old));
        }
    }

    /// Append a log line (no newline) to a container's log.
    pub fn push_log(&self, c: &ContainerRef, line: &str) {
        self.lock()
            .logs
            .entry(c.clone())
            .or_default()
            .push(line.to_string());
        let _ = self.changes.send(Change::Log);
    }

    /// End the container's current log stream (the container stopped).
    pub fn close_log(&self, c: &ContainerRef) {
        self.lock().log_closed.insert(c.clone());
        let _ = self.changes.send(Change::Log);
    }

    /// Emit a Kubernetes Event.
    pub fn emit_event(&self, e: ObjectEvent) {
        let _ = self.changes.send(Change::Event(e));
    }

    /// Back a container's filesystem with a local directory (for the exec builtins).
    pub fn set_container_root(&self, c: &ContainerRef, root: &Path) {
        self.lock().roots.insert(c.clone(), root.to_path_buf());
    }

    /// Script execs; return `None` to fall through to the builtins.
    pub fn set_exec_handler(
        &self,
        f: impl Fn(&ContainerRef, &[String], &[u8]) -> Option<ExecOutput> + Send + Sync + 'static,
    ) {
        self.lock().exec_handler = Some(Arc::new(f));
    }

    /// Port-forwards to `namespace/pod:port` connect to `addr`.
    pub fn set_port_target(&self, namespace: &str, pod: &str, port: u16, addr: SocketAddr) {
        self.lock()
            .ports
            .insert((namespace.into(), pod.into(), port), addr);
    }

    fn pod_exists(&self, c: &ContainerRef) -> bool {
        let ns = if c.namespace.is_empty() {
            self.info.namespace.clone()
        } else {
            c.namespace.clone()
        };
        self.lock()
            .objects
            .contains_key(&("v1".into(), "Pod".into(), ns, c.pod.clone()))
    }

    fn lookup(
        &self,
    ) -> impl Fn(ObjectRef) -> BoxFuture<'static, Option<Value>> + Send + Sync + use<> {
        let st = self.state.clone();
        move |r: ObjectRef| {
            let v = st
                .lock()
                .unwrap()
                .objects
                .values()
                .find(|o| o.pointer("/metadata/uid").and_then(Value::as_str) == Some(&r.uid))
                .cloned();
            Box::pin(async move { v })
        }
    }
}

/// Builtin exec over a container root.
fn builtin_exec(root: Option<&Path>, argv: &[String], stdin: &[u8]) -> ExecOutput {
    let fail = |code: i32, msg: String| ExecOutput {
        exit_code: code,
        stdout: vec![],
        stderr: msg.into_bytes(),
    };
    let needs_root = matches!(argv.first().map(String::as_str), Some("tar" | "rm" | "cat"));
    let root = match root {
        Some(r) => r,
        None if needs_root => return fail(126, "fake: no container root".into()),
        None => Path::new("/nonexistent"),
    };
    let under = |p: &str| root.join(p.trim_start_matches('/'));
    match argv.first().map(String::as_str) {
        Some("tar") if argv.iter().any(|a| a.contains('x')) => {
            let dir = argv
                .iter()
                .position(|a| a == "-C")
                .and_then(|i| argv.get(i + 1))
                .map(|d| under(d))
                .unwrap_or_else(|| root.to_path_buf());
            let mut ar = tar::Archive::new(stdin);
            ar.set_preserve_permissions(true);
            match ar.unpack(&dir) {
                Ok(()) => ExecOutput::default(),
                Err(e) => fail(2, format!("tar: {e}")),
            }
        }
        Some("rm") => {
            for p in argv[1..].iter().filter(|a| !a.starts_with('-')) {
                let p = under(p);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
            ExecOutput::default()
        }
        Some("cat") if argv.len() > 1 => match std::fs::read(under(&argv[1])) {
            Ok(d) => ExecOutput {
                exit_code: 0,
                stdout: d,
                stderr: vec![],
            },
            Err(e) => fail(1, format!("cat: {}: {e}", argv[1])),
        },
        Some(cmd) => fail(
            127,
            format!("OCI runtime exec failed: exec: \"{cmd}\": executable file not found in $PATH"),
        ),
        None => fail(127, "empty command".into()),
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    fn info(&self) -> ClusterInfo {
        self.info.clone()
    }

    async fn ping(&self) -> Result<String> {
        Ok(self.info.server_version.clone())
    }

    async fn apply(&self, objects: &[Value], _opts: &ApplyOptions) -> Result<Vec<Value>> {
        let mut st = self.lock();
        if !st.apply_failures.is_empty() {
            return Err(st.apply_failures.remove(0));
        }
        let mut out = Vec::new();
        for o in objects {
            let (key, v) = self.normalize(&mut st, o)?;
            st.calls.push(format!("apply {}/{}", key.1, key.3));
            st.objects.insert(key, v.clone());
            out.push(v);
        }
        Ok(out)
    }

    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>> {
        let mut r = r.clone();
        if r.namespace.is_empty() && !cluster_scoped(&r.kind) {
            r.namespace = self.info.namespace.clone();
        }
        Ok(self.lock().objects.get(&key_of(&r)).cloned())
    }

    async fn delete(&self, refs: &[ObjectRef], _opts: &DeleteOptions) -> Result<()> {
        for r in refs {
            let mut r = r.clone();
            if r.namespace.is_empty() && !cluster_scoped(&r.kind) {
                r.namespace = self.info.namespace.clone();
            }
            let removed = {
                let mut st = self.lock();
                st.calls.push(format!("delete {}", r));
                st.objects.remove(&key_of(&r))
            };
            if let Some(v) = removed
                && r.kind == "Pod"
            {
                let _ = self.changes.send(Change::PodDeleted(v));
            }
        }
        Ok(())
    }

    async fn delete_by_labels(&self, opts: &DeleteByLabelOptions) -> Result<Vec<ObjectRef>> {
        let (k, v) = opts
            .label_selector
            .split_once('=')
            .unwrap_or((&opts.label_selector, ""));
        let victims: Vec<ObjectRef> = self
            .lock()
            .objects
            .values()
            .filter(|o| {
                let l = labels_of(o);
                let keep = o
                    .pointer(&format!(
                        "/metadata/annotations/{}",
                        crate::inject::DOWN_POLICY_ANNOTATION.replace('/', "~1")
                    ))
                    .and_then(Value::as_str)
                    == Some("keep");
                l.get(k).map(String::as_str) == Some(v)
                    && !keep
                    && (opts.delete_namespaces
                        || o.get("kind").and_then(Value::as_str) != Some("Namespace"))
                    && opts.namespace.as_deref().is_none_or(|ns| {
                        o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                    })
            })
            .filter_map(|o| ObjectRef::of(o).ok())
            .collect();
        self.delete(&victims, &DeleteOptions::default()).await?;
        Ok(victims)
    }

    async fn watch_pods(&self, spec: PodWatchSpec) -> Result<BoxStream<'static, PodEvent>> {
        let mut rx = self.changes.subscribe();
        let initial: Vec<Value> = self
            .lock()
            .objects
            .values()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Pod"))
            .cloned()
            .collect();
        let lookup = self.lookup();
        let (tx, out) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut reported = HashSet::new();
            let in_ns = |p: &Value| {
                spec.namespaces.is_empty()
                    || spec.namespaces.iter().any(|n| {
                        p.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n)
                    })
            };
            let classify = async |p: &Value, reported: &mut HashSet<String>| -> Option<PodEvent> {
                if !in_ns(p) {
                    return None;
                }
                let uid = p
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let labels = labels_of(p);
                let anc = find_ancestor(p, &spec.ancestor_uids, &lookup).await;
                if anc.is_some()
                    || spec
                        .extra_selectors
                        .iter()
                        .any(|s| selector_matches(s, &labels))
                {
                    reported.insert(uid);
                    Some(PodEvent::Upsert(Box::new(DiscoveredPod {
                        pod: api_pod(p, anc.as_deref().unwrap_or("")),
                        labels,
                    })))
                } else if reported.remove(&uid) {
                    Some(deleted_event(p))
                } else {
                    None
                }
            };
            for p in &initial {
                if let Some(e) = classify(p, &mut reported).await
                    && tx.send(e).await.is_err()
                {
                    return;
                }
            }
            if tx.send(PodEvent::Synced).await.is_err() {
                return;
            }
            loop {
                let ev = match rx.recv().await {
                    Ok(Change::Pod(p)) => classify(&p, &mut reported).await,
                    Ok(Change::PodDeleted(p)) => {
                        let uid = p
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        reported.remove(uid).then(|| deleted_event(&p))
                    }
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Some(PodEvent::Error(format!("fake watch lagged by {n}")))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if let Some(e) = ev
                    && tx.send(e).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(futures::stream::unfold(
            out,
            |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
        )
        .boxed())
    }

    async fn watch_events(
        &self,
        namespace: Option<String>,
        involved_uids: HashSet<String>,
    ) -> Result<BoxStream<'static, ObjectEvent>> {
        let rx = self.changes.subscribe();
        Ok(futures::stream::unfold(rx, move |mut rx| {
            let namespace = namespace.clone();
            let uids = involved_uids.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(Change::Event(e)) => {
                            let ns_ok = namespace
                                .as_ref()
                                .is_none_or(|n| *n == e.involved.namespace);
                            let uid_ok = uids.is_empty() || uids.contains(&e.involved.uid);
                            if ns_ok && uid_ok {
                                return Some((e, rx));
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed())
    }

    async fn logs(&self, req: &LogRequest) -> Result<BoxStream<'static, Result<String>>> {
        if !self.pod_exists(&req.container) {
            return Err(K8sError::NotFound(format!("pod {}", req.container.pod)));
        }
        let c = req.container.clone();
        // Lines are stored without timestamps; give each a distinct time so resumes work.
        let base = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let stamp = move |i: usize, l: &str| {
            let t = base + chrono::Duration::milliseconds(i as i64);
            format!(
                "{} {l}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )
        };
        let since = req.since;
        let timestamps = req.timestamps;
        let follow = req.follow;
        {
            // A new request reopens the stream.
            self.lock().log_closed.remove(&c);
        }
        let state = self.state.clone();
        let rx = self.changes.subscribe();
        let s = futures::stream::unfold((0usize, rx, false), move |(mut pos, mut rx, done)| {
            let state = state.clone();
            let c = c.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    let (line, closed) = {
                        let st = state.lock().unwrap();
                        let lines = st.logs.get(&c).cloned().unwrap_or_default();
                        (
                            lines.get(pos).cloned().map(|l| (pos, l)),
                            st.log_closed.contains(&c),
                        )
                    };
                    if let Some((i, l)) = line {
                        pos += 1;
                        let t = base + chrono::Duration::milliseconds(i as i64);
                        if since.is_some_and(|s| t < s) {
                            continue;
                        }
                        let text = if timestamps { stamp(i, &l) } else { l };
                        return Some((Ok(text), (pos, rx, false)));
                    }
                    if closed || !follow {
                        return None;
                    }
                    match rx.recv().await {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(s.boxed())
    }

    async fn exec(&self, target: &ContainerRef, argv: &[String]) -> Result<ExecProcess> {
        if !self.pod_exists(target) {
            return Err(K8sError::NotFound(format!("pod {target}")));
        }
        let (handler, root) = {
            let mut st = self.lock();
            st.calls.push(format!("exec {target} {}", argv.join(" ")));
            (st.exec_handler.clone(), st.roots.get(target).cloned())
        };
        // An installed helper is served in-process by the real request loop.
        let is_helper = argv
            .first()
            .and_then(|a| a.rsplit('/').next())
            .is_some_and(|n| n.starts_with(stilt_syncer::HELPER_NAME));
        if is_helper && handler.is_none() {
            let root = root
                .clone()
                .ok_or_else(|| K8sError::Exec("fake: no container root".into()))?;
            let installed = root.join(argv[0].trim_start_matches('/'));
            if !installed.is_file() {
                let msg = format!(
                    "OCI runtime exec failed: exec: \"{}\": stat {}: no such file or directory",
                    argv[0], argv[0]
                );
                return Ok(ExecProcess {
                    stdin: Some(Box::new(tokio::io::sink())),
                    stdout: Box::new(tokio::io::empty()),
                    stderr: Box::new(tokio::io::empty()),
                    exit: Box::pin(async move { Err(K8sError::Exec(msg)) }),
                    guard: Box::new(()),
                });
            }
            let (a, b) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| K8sError::Other(e.to_string()))?;
            let b2 = b.try_clone().map_err(|e| K8sError::Other(e.to_string()))?;
            let opts = stilt_syncer::ServeOptions { root: Some(root) };
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let r = stilt_syncer::serve(b, b2, &opts);
                let _ = done_tx.send(if r.is_ok() { 0 } else { 1 });
            });
            a.set_nonblocking(true)
                .map_err(|e| K8sError::Other(e.to_string()))?;
            let s =
                tokio::net::UnixStream::from_std(a).map_err(|e| K8sError::Other(e.to_string()))?;
            let (r, w) = tokio::io::split(s);
            return Ok(ExecProcess {
                stdin: Some(Box::new(w)),
                stdout: Box::new(r),
                stderr: Box::new(tokio::io::empty()),
                exit: Box::pin(async move { Ok(done_rx.await.unwrap_or(1)) }),
                guard: Box::new(()),
            });
        }
        // Everything else: collect stdin, run the handler or a builtin, answer.
        let (stdin_w, mut stdin_r) = tokio::io::duplex(1 << 16);
        let (mut out_w, out_r) = tokio::io::duplex(1 << 16);
        let (mut err_w, err_r) = tokio::io::duplex(1 << 16);
        let (code_tx, code_rx) = tokio::sync::oneshot::channel();
        let target = target.clone();
        let argv = argv.to_vec();
        tokio::spawn(async move {
            let mut input = Vec::new();
            let _ = stdin_r.read_to_end(&mut input).await;
            let out = handler
                .and_then(|h| h(&target, &argv, &input))
                .unwrap_or_else(|| builtin_exec(root.as_deref(), &argv, &input));
            if out.exit_code == 127 && out.stdout.is_empty() {
                let _ = code_tx.send(Err(K8sError::Exec(
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )));
                return;
            }
            let _ = out_w.write_all(&out.stdout).await;
            let _ = err_w.write_all(&out.stderr).await;
            drop((out_w, err_w));
            let _ = code_tx.send(Ok(out.exit_code));
        });
        Ok(ExecProcess {
            stdin: Some(Box::new(stdin_w)),
            stdout: Box::new(out_r),
            stderr: Box::new(err_r),
            exit: Box::pin(async move {
                code_rx
                    .await
                    .unwrap_or_else(|_| Err(K8sError::Exec("fake exec dropped".into())))
            }),
            guard: Box::new(()),
        })
    }

    async fn port_forward(&self, namespace: &str, pod: &str, port: u16) -> Result<Box<dyn Duplex>> {
        let ns = if namespace.is_empty() {
            &self.info.namespace
        } else {
            namespace
        };
        let addr = self
            .lock()
            .ports
            .get(&(ns.to_string(), pod.to_string(), port))
            .copied();
        let Some(addr) = addr else {
            return Err(K8sError::NotFound(format!("pod {ns}/{pod} port {port}")));
        };
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| K8sError::Connection(format!("fake port-forward: {e}")))?;
        Ok(Box::new(s))
    }
}

fn deleted_event(p: &Value) -> PodEvent {
    let s = |k: &str| {
        p.pointer(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    PodEvent::Deleted {
        namespace: s("/metadata/namespace"),
        name: s("/metadata/name"),
        uid: s("/metadata/uid"),
    }
}
