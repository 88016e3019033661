//! [`Cluster`] over kube-rs: dynamic discovery so any kind applies, server-side apply with
//! delete-and-create escalation, watchers for pods and events, exec and port-forward over
//! WebSockets.

use crate::cluster::*;
use crate::discovery::{api_pod, find_ancestor, labels_of, selector_matches};
use crate::error::{K8sError, Result};
use crate::inject::DOWN_POLICY_ANNOTATION;
use crate::manifest::{ObjectRef, kind_priority};
use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as KEvent, Node, Pod as KPod};
use kube::api::{
    Api, ApiResource, AttachParams, DeleteParams, DynamicObject, GroupVersionKind, ListParams,
    LogParams, Patch, PatchParams, PostParams,
};
use kube::config::KubeConfigOptions;
use kube::discovery::Scope;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A real cluster.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
    info: ClusterInfo,
    resources: Arc<Mutex<ResourceCache>>,
    tunnels: Arc<crate::pftunnel::Tunnels>,
}

/// (apiVersion, kind) → (resource, namespaced).
type ResourceCache = HashMap<(String, String), (ApiResource, bool)>;

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("info", &self.info)
            .finish()
    }
}

/// The runtime named by a node's `containerRuntimeVersion` (`containerd://1.7.2` → `containerd`).
fn runtime_of(version: &str) -> String {
    version.split(':').next().unwrap_or_default().to_string()
}

/// Cluster product from the kubeconfig cluster name (Tilt's clusterid prefixes).
pub fn cluster_product(cluster: &str) -> &'static str {
    let p = |s: &str| cluster.starts_with(s);
    if p("minikube") {
        "minikube"
    } else if p("docker-desktop") || p("docker-for-desktop-cluster") {
        "docker-desktop"
    } else if p("gke") {
        "gke"
    } else if p("arn:aws:eks:") || cluster.ends_with(".eksctl.io") {
        "eks"
    } else if cluster == "kind" || p("kind-") {
        "kind"
    } else if p("microk8s") {
        "microk8s"
    } else if p("api-crc-testing") {
        "crc"
    } else if p("krucible-") {
        "krucible"
    } else if p("k3d-") {
        "k3d"
    } else if p("rancher-desktop") {
        "rancher-desktop"
    } else if p("colima") {
        "colima"
    } else if cluster == "orbstack" {
        "orbstack"
    } else {
        "unknown"
    }
}

/// Parse the `localRegistryHosting.v1` value of the KEP-1755 ConfigMap.
pub fn parse_registry_hosting(yaml: &str) -> Result<stilt_api::RegistryHosting> {
    let v: Value = serde_saphyr::from_str(yaml).map_err(|e| K8sError::Yaml(e.to_string()))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let host = s("host");
    if host.is_empty() {
        return Err(K8sError::Invalid(
            "localRegistryHosting.v1 without host".into(),
        ));
    }
    Ok(stilt_api::RegistryHosting {
        host,
        host_from_cluster_network: s("hostFromClusterNetwork"),
        host_from_container_runtime: s("hostFromContainerRuntime"),
        help: s("help"),
        single_name: String::new(),
    })
}

fn strip_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl KubeCluster {
    /// Connect with a kubeconfig file (`None`: `$KUBECONFIG` / `~/.kube/config`) and context
    /// (`None`: the current context). Reads version, node arch and the local registry.
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<KubeCluster> {
        let conn = |e: &dyn std::fmt::Display| K8sError::Connection(e.to_string());
        // Credentials as kubectl reads them (kube-rs alone rejects some kubectl accepts).
        let kc = crate::kubeconfig::read(kubeconfig)?;
        let ctx_name = context
            .map(str::to_string)
            .or_else(|| kc.current_context.clone())
            .unwrap_or_default();
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.context.clone());
        let cluster_name = ctx.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
        let opts = KubeConfigOptions {
            context: Some(ctx_name.clone()).filter(|s| !s.is_empty()),
            cluster: None,
            user: None,
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| conn(&e))?;
        let server = config.cluster_url.to_string();
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).map_err(|e| conn(&e))?;
        let mut info = ClusterInfo {
            context: ctx_name,
            product: cluster_product(&cluster_name).to_string(),
            cluster: cluster_name,
            namespace,
            server,
            config_path: kubeconfig
                .map(|p| p.display().to_string())
                .or_else(|| std::env::var("KUBECONFIG").ok())
                .unwrap_or_default(),
            ..Default::default()
        };
        let kc = KubeCluster {
            client,
            info: info.clone(),
            resources: Default::default(),
            tunnels: Default::default(),
        };
        info.server_version = kc.ping().await?;
        (info.arch, info.container_runtime) = kc.node_facts().await.unwrap_or_default();
        info.registry = kc.local_registry().await.unwrap_or(None);
        Ok(KubeCluster { info, ..kc })
    }

    /// Wrap an existing client (tests against an in-process API server).
    pub fn from_client(client: kube::Client, info: ClusterInfo) -> KubeCluster {
        KubeCluster {
            client,
            info,
            resources: Default::default(),
            tunnels: Default::default(),
        }
    }

    /// The underlying kube client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The nodes' most common architecture, and the first node's container runtime (as Tilt
    /// reads it).
    async fn node_facts(&self) -> Result<(String, String)> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let list = nodes.list(&ListParams::default()).await?;
        let infos: Vec<_> = list
            .items
            .into_iter()
            .filter_map(|n| n.status.and_then(|s| s.node_info))
            .collect();
        let runtime = infos
            .first()
            .map(|i| runtime_of(&i.container_runtime_version))
            .unwrap_or_default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for i in infos {
            *counts.entry(i.architecture).or_default() += 1;
        }
        let arch = counts
            .into_iter()
            .max_by_key(|(_, c)| *c)
            .map(|(a, _)| a)
            .unwrap_or_default();
        Ok((arch, runtime))
    }

    /// The KEP-1755 registry, if the cluster publishes one.
    pub async fn local_registry(&self) -> Result<Option<stilt_api::RegistryHosting>> {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), "kube-public");
        let Some(cm) = cms.get_opt("local-registry-hosting").await? else {
            return Ok(None);
        };
        let Some(v) = cm
            .data
            .as_ref()
            .and_then(|d| d.get("localRegistryHosting.v1"))
        else {
            return Ok(None);
        };
        parse_registry_hosting(v).map(Some)
    }

    /// API resource and scope of a kind (cached; retried briefly for just-created CRDs).
    async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool)> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(r) = self.resources.lock().unwrap().get(&key) {
            return Ok(r.clone());
        }
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let mut last = None;
        for attempt in 0..5 {
            match kube::discovery::pinned_kind(&self.client, &gvk).await {
                Ok((ar, caps)) => {
                    let r = (ar, caps.scope == Scope::Namespaced);
                    self.resources.lock().unwrap().insert(key, r.clone());
                    return Ok(r);
                }
                Err(e) => {
                    last = Some(e);
                    if attempt < 4 {
                        tokio::time::sleep(Duration::from_millis(300 * (attempt + 1))).await;
                    }
                }
            }
        }
        let e = last.map(|e| e.to_string()).unwrap_or_default();
        Err(K8sError::UnknownKind(format!("{api_version} {kind}: {e}")))
    }

    fn dyn_api(&self, ar: &ApiResource, namespaced: bool, ns: &str) -> Api<DynamicObject> {
        if namespaced {
            Api::namespaced_with(self.client.clone(), ns, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        }
    }

    fn ns_or_default<'a>(&'a self, ns: &'a str) -> &'a str {
        if ns.is_empty() {
            &self.info.namespace
        } else {
            ns
        }
    }

    async fn wait_gone(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        uid: &str,
        max: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            match api.get_opt(name).await? {
                None => return Ok(()),
                Some(o) if !uid.is_empty() && o.metadata.uid.as_deref() != Some(uid) => {
                    return Ok(());
                }
                Some(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(K8sError::Timeout(format!(
                    "waiting for {name} to be deleted"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One apply of `obj`: server-side (forced, as Tilt's `serverSideApply`), or client-side
    /// as kubectl does it: create, or a three-way merge patch against the live object.
    async fn apply_to(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        obj: &Value,
        opts: &ApplyOptions,
    ) -> Result<DynamicObject> {
        if opts.server_side {
            let pp = PatchParams::apply(&opts.field_manager).force();
            return Ok(api.patch(name, &pp, &Patch::Apply(obj)).await?);
        }
        let Some(live) = api.get_opt(name).await? else {
            let body: DynamicObject = serde_json::from_value(obj.clone())
                .map_err(|e| K8sError::Invalid(e.to_string()))?;
            return match api.create(&PostParams::default(), &body).await {
                // Created by someone else meanwhile: patch it instead.
                Err(e) if K8sError::from(clone_err(&e)).is_already_exists() => {
                    Box::pin(self.apply_to(api, name, obj, opts)).await
                }
                r => Ok(r?),
            };
        };
        let live_json = to_value(&live);
        let original = crate::client_apply::last_applied(&live_json);
        match crate::client_apply::three_way_merge_patch(original.as_ref(), obj, &live_json) {
            None => Ok(live),
            Some(patch) => {
                let pp = PatchParams {
                    field_manager: Some(opts.field_manager.clone()),
                    ..Default::default()
                };
                Ok(api.patch(name, &pp, &Patch::Merge(&patch)).await?)
            }
        }
    }

    async fn apply_one(&self, obj: &Value, opts: &ApplyOptions) -> Result<Value> {
        let r = ObjectRef::of(obj)?;
        let (ar, namespaced) = self.resource(&r.api_version, &r.kind).await?;
        let ns = self.ns_or_default(&r.namespace).to_string();
        let api = self.dyn_api(&ar, namespaced, &ns);
        // Client-side apply (Tilt's default) sends the object with its last-applied record.
        let sent = if opts.server_side {
            obj.clone()
        } else {
            crate::client_apply::with_last_applied(obj)
        };
        let applied = match self.apply_to(&api, &r.name, &sent, opts).await {
            Ok(o) => o,
            Err(e) => {
                if !e.is_immutable_field() {
                    return Err(e);
                }
                tracing::info!("{r}: immutable field changed; deleting and re-creating");
                let uid = api
                    .get_opt(&r.name)
                    .await?
                    .and_then(|o| o.metadata.uid)
                    .unwrap_or_default();
                // Background, as Tilt (and helm) do: a foreground delete of a Job waits out its
                // pods' grace period, which can be the whole apply timeout.
                match api.delete(&r.name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(e) if K8sError::from(clone_err(&e)).is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
                self.wait_gone(&api, &r.name, &uid, Duration::from_secs(30))
                    .await?;
                let body: DynamicObject = serde_json::from_value(sent.clone())
                    .map_err(|e| K8sError::Invalid(e.to_string()))?;
                api.create(&PostParams::default(), &body).await?
            }
        };
        // Mid-deletion: wait until it is gone, then apply again (Tilt waits up to 60 s).
        if applied.metadata.deletion_timestamp.is_some() {
            let uid = applied.metadata.uid.clone().unwrap_or_default();
            self.wait_gone(&api, &r.name, &uid, Duration::from_secs(60))
                .await?;
            let again = self.apply_to(&api, &r.name, &sent, opts).await?;
            return Ok(strip_managed_fields(to_value(&again)));
        }
        Ok(strip_managed_fields(to_value(&applied)))
    }

    async fn delete_one(&self, r: &ObjectRef, wait: Option<Duration>) -> Result<()> {
        let (ar, namespaced) = match self.resource(&r.api_version, &r.kind).await {
            Ok(x) => x,
            // The kind is gone (CRD deleted first): nothing to delete.
            Err(K8sError::UnknownKind(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let api = self.dyn_api(&ar, namespaced, self.ns_or_default(&r.namespace));
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) => {
                let e = K8sError::from(e);
                if e.is_not_found() {
                    return Ok(());
                }
                return Err(e);
            }
        }
        if let Some(w) = wait {
            self.wait_gone(&api, &r.name, &r.uid, w).await?;
        }
        Ok(())
    }
}

/// Name the object in API errors ("Deployment/web: field is immutable").
fn with_object(e: K8sError, obj: &Value) -> K8sError {
    let r = ObjectRef::of(obj)
        .map(|r| r.to_string())
        .unwrap_or_default();
    match e {
        K8sError::Api {
            code,
            reason,
            message,
        } => K8sError::Api {
            code,
            reason,
            message: format!("{r}: {message}"),
        },
        K8sError::Connection(m) => K8sError::Connection(format!("{r}: {m}")),
        K8sError::Timeout(m) => K8sError::Timeout(format!("{r}: {m}")),
        other => other,
    }
}

fn clone_err(e: &kube::Error) -> kube::Error {
    match e {
        kube::Error::Api(s) => kube::Error::Api(s.clone()),
        other => kube::Error::Service(other.to_string().into()),
    }
}

/// Forward items of a spawned producer as a stream; the producer stops when the stream is
/// dropped.
fn channel_stream<T: Send + 'static>(
    produce: impl FnOnce(tokio::sync::mpsc::Sender<T>) -> BoxFuture<'static, ()> + Send + 'static,
) -> BoxStream<'static, T> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let closed = tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = produce(tx) => {}
            _ = closed.closed() => {}
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

#[async_trait]
impl Cluster for KubeCluster {
    fn info(&self) -> ClusterInfo {
        self.info.clone()
    }

    async fn ping(&self) -> Result<String> {
        Ok(self.client.apiserver_version().await?.git_version)
    }

    async fn apply(&self, objects: &[Value], opts: &ApplyOptions) -> Result<Vec<Value>> {
        let work = async {
            let mut order: Vec<usize> = (0..objects.len()).collect();
            let prio = |i: &usize| {
                kind_priority(
                    objects[*i]
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                )
            };
            order.sort_by_key(prio);
            let mut out: Vec<Option<Value>> = vec![None; objects.len()];
            let mut i = 0;
            while i < order.len() {
                let p = prio(&order[i]);
                let batch: Vec<usize> = order[i..]
                    .iter()
                    .copied()
                    .take_while(|j| prio(j) == p)
                    .collect();
                i += batch.len();
                let results = futures::future::join_all(
                    batch.iter().map(|j| self.apply_one(&objects[*j], opts)),
                )
                .await;
                for (j, res) in batch.into_iter().zip(results) {
                    out[j] = Some(res.map_err(|e| with_object(e, &objects[j]))?);
                }
            }
            Ok::<_, K8sError>(out.into_iter().map(|o| o.unwrap_or(Value::Null)).collect())
        };
        match tokio::time::timeout(opts.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(K8sError::Timeout(format!(
                "apply did not finish within {:?}",
                opts.timeout
            ))),
        }
    }

    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>> {
        let (ar, namespaced) = self.resource(&r.api_version, &r.kind).await?;
        let api = self.dyn_api(&ar, namespaced, self.ns_or_default(&r.namespace));
        Ok(api
            .get_opt(&r.name)
            .await?
            .map(|o| strip_managed_fields(to_value(&o))))
    }

    async fn delete(&self, refs: &[ObjectRef], opts: &DeleteOptions) -> Result<()> {
        let mut sorted: Vec<&ObjectRef> = refs.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(kind_priority(&r.kind)));
        for r in sorted {
            self.delete_one(r, opts.wait).await?;
        }
        Ok(())
    }

    async fn delete_by_labels(&self, opts: &DeleteByLabelOptions) -> Result<Vec<ObjectRef>> {
        let mut kinds: Vec<(String, String)> = DEFAULT_DELETE_KINDS
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .chain(opts.extra_kinds.iter().cloned())
            .collect();
        if opts.delete_namespaces {
            kinds.push(("v1".into(), "Namespace".into()));
        }
        kinds.sort_by_key(|(_, k)| std::cmp::Reverse(kind_priority(k)));
        let lp = ListParams::default().labels(&opts.label_selector);
        let mut deleted = Vec::new();
        for (api_version, kind) in kinds {
            let Ok((ar, namespaced)) = self.resource(&api_version, &kind).await else {
                continue;
            };
            let api: Api<DynamicObject> = match (&opts.namespace, namespaced) {
                (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &ar),
                _ => Api::all_with(self.client.clone(), &ar),
            };
            let list = api.list(&lp).await?;
            for o in list.items {
                let keep = o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DOWN_POLICY_ANNOTATION))
                    .is_some_and(|v| v == "keep");
                if keep {
                    continue;
                }
                let r = ObjectRef {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    name: o.metadata.name.clone().unwrap_or_default(),
                    namespace: o.metadata.namespace.clone().unwrap_or_default(),
                    uid: o.metadata.uid.clone().unwrap_or_default(),
                };
                self.delete_one(&r, opts.wait).await?;
                deleted.push(r);
            }
        }
        Ok(deleted)
    }

    async fn watch_pods(&self, spec: PodWatchSpec) -> Result<BoxStream<'static, PodEvent>> {
        let apis: Vec<Api<KPod>> = if spec.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            spec.namespaces
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect()
        };
        let n_streams = apis.len();
        let this = self.clone();
        Ok(channel_stream(move |tx| {
            Box::pin(async move {
                let streams = apis.into_iter().enumerate().map(|(idx, api)| {
                    watcher(api, watcher::Config::default())
                        .default_backoff()
                        .map(move |e| (idx, e))
                        .boxed()
                });
                let mut merged = futures::stream::select_all(streams);
                let owner_cache: Arc<Mutex<HashMap<String, Value>>> = Default::default();
                let lookup_this = this.clone();
                let cache = owner_cache.clone();
                let lookup = move |r: ObjectRef| -> BoxFuture<'static, Option<Value>> {
                    let this = lookup_this.clone();
                    let cache = cache.clone();
                    Box::pin(async move {
                        if let Some(v) = cache.lock().unwrap().get(&r.uid) {
                            return Some(v.clone());
                        }
                        let v = this.get(&r).await.ok().flatten()?;
                        cache.lock().unwrap().insert(r.uid.clone(), v.clone());
                        Some(v)
                    })
                };
                // uid → (stream, namespace, name) of every pod reported as matching.
                let mut reported: HashMap<String, (usize, String, String)> = HashMap::new();
                // Per stream: uids seen during a (re)list, to notice pods deleted while the
                // watch was down (a re-list reports no deletions).
                let mut relisting: HashMap<usize, HashSet<String>> = HashMap::new();
                let mut synced_streams: HashSet<usize> = HashSet::new();
                let mut synced = false;
                while let Some((idx, ev)) = merged.next().await {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            if tx.send(PodEvent::Error(e.to_string())).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    };
                    let mut outs = Vec::new();
                    let out = match ev {
                        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                            let v = to_value(&p);
                            let labels = labels_of(&v);
                            let uid = p.metadata.uid.clone().unwrap_or_default();
                            if let Some(seen) = relisting.get_mut(&idx) {
                                seen.insert(uid.clone());
                            }
                            let ancestor = find_ancestor(&v, &spec.ancestor_uids, &lookup).await;
                            let by_sel = spec
                                .extra_selectors
                                .iter()
                                .any(|s| selector_matches(s, &labels));
                            if ancestor.is_some() || by_sel {
                                reported.insert(
                                    uid,
                                    (
                                        idx,
                                        p.metadata.namespace.clone().unwrap_or_default(),
                                        p.metadata.name.clone().unwrap_or_default(),
                                    ),
                                );
                                Some(PodEvent::Upsert(Box::new(DiscoveredPod {
                                    pod: api_pod(&v, ancestor.as_deref().unwrap_or("")),
                                    labels,
                                })))
                            } else if reported.remove(&uid).is_some() {
                                Some(PodEvent::Deleted {
                                    namespace: p.metadata.namespace.unwrap_or_default(),
                                    name: p.metadata.name.unwrap_or_default(),
                                    uid,
                                })
                            } else {
                                None
                            }
                        }
                        watcher::Event::Delete(p) => {
                            let uid = p.metadata.uid.clone().unwrap_or_default();
                            reported.remove(&uid).map(|_| PodEvent::Deleted {
                                namespace: p.metadata.namespace.unwrap_or_default(),
                                name: p.metadata.name.unwrap_or_default(),
                                uid,
                            })
                        }
                        watcher::Event::Init => {
                            relisting.insert(idx, HashSet::new());
                            None
                        }
                        watcher::Event::InitDone => {
                            let seen = relisting.remove(&idx).unwrap_or_default();
                            let gone: Vec<String> = reported
                                .iter()
                                .filter(|(uid, (i, _, _))| *i == idx && !seen.contains(*uid))
                                .map(|(uid, _)| uid.clone())
                                .collect();
                            for uid in gone {
                                if let Some((_, namespace, name)) = reported.remove(&uid) {
                                    outs.push(PodEvent::Deleted {
                                        namespace,
                                        name,
                                        uid,
                                    });
                                }
                            }
                            synced_streams.insert(idx);
                            (!synced && synced_streams.len() == n_streams).then(|| {
                                synced = true;
                                PodEvent::Synced
                            })
                        }
                    };
                    outs.extend(out);
                    for out in outs {
                        if tx.send(out).await.is_err() {
                            return;
                        }
                    }
                }
            })
        }))
    }

    async fn watch_events(
        &self,
        namespace: Option<String>,
        involved_uids: HashSet<String>,
    ) -> Result<BoxStream<'static, ObjectEvent>> {
        let api: Api<KEvent> = match &namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        Ok(channel_stream(move |tx| {
            Box::pin(async move {
                let mut s = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
                    .boxed();
                while let Some(ev) = s.next().await {
                    let Ok(ev) = ev else { continue };
                    let v = to_value(&ev);
                    let g = |p: &str| {
                        v.pointer(p)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    let involved = ObjectRef {
                        api_version: g("/involvedObject/apiVersion"),
                        kind: g("/involvedObject/kind"),
                        name: g("/involvedObject/name"),
                        namespace: g("/involvedObject/namespace"),
                        uid: g("/involvedObject/uid"),
                    };
                    if !involved_uids.is_empty() && !involved_uids.contains(&involved.uid) {
                        continue;
                    }
                    let last_seen = [
                        g("/lastTimestamp"),
                        g("/eventTime"),
                        g("/metadata/creationTimestamp"),
                    ]
                    .iter()
                    .find_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&chrono::Utc));
                    let e = ObjectEvent {
                        involved,
                        type_: g("/type"),
                        reason: g("/reason"),
                        message: g("/message"),
                        count: v.get("count").and_then(Value::as_i64).unwrap_or(1) as i32,
                        last_seen,
                    };
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
            })
        }))
    }

    async fn logs(&self, req: &LogRequest) -> Result<BoxStream<'static, Result<String>>> {
        let api: Api<KPod> = Api::namespaced(
            self.client.clone(),
            self.ns_or_default(&req.container.namespace),
        );
        let lp = LogParams {
            container: Some(req.container.container.clone()).filter(|c| !c.is_empty()),
            follow: req.follow,
            previous: req.previous,
            timestamps: req.timestamps,
            since_time: req.since.and_then(|t| {
                k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
                    .ok()
            }),
            ..Default::default()
        };
        let r = api.log_stream(&req.container.pod, &lp).await?;
        Ok(r.lines()
            .map_err(|e| K8sError::Connection(format!("log stream: {e}")))
            .boxed())
    }

    async fn exec(&self, target: &ContainerRef, argv: &[String]) -> Result<ExecProcess> {
        let api: Api<KPod> =
            Api::namespaced(self.client.clone(), self.ns_or_default(&target.namespace));
        let mut ap = AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .max_stdin_buf_size(256 * 1024)
            .max_stdout_buf_size(256 * 1024)
            .max_stderr_buf_size(64 * 1024);
        if !target.container.is_empty() {
            ap = ap.container(target.container.clone());
        }
        let mut p = api
            .exec(&target.pod, argv.to_vec(), &ap)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => {
                    K8sError::NotFound(format!("pod {}: {}", target, s.message))
                }
                e => K8sError::Exec(e.to_string()),
            })?;
        let stdin = p
            .stdin()
            .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        let stdout = Box::new(p.stdout().expect("stdout requested"));
        let stderr = Box::new(p.stderr().expect("stderr requested"));
        let status = p.take_status().expect("status taken once");
        let cmd = argv.join(" ");
        let exit = Box::pin(async move {
            match status.await {
                None => Err(K8sError::Exec(format!(
                    "{cmd}: stream closed without a status"
                ))),
                Some(s) => exit_code_of(&s, &cmd),
            }
        });
        Ok(ExecProcess {
            stdin,
            stdout,
            stderr,
            exit,
            guard: Box::new(Mutex::new(p)),
        })
    }

    async fn port_forward(&self, namespace: &str, pod: &str, port: u16) -> Result<Box<dyn Duplex>> {
        let namespace = self.ns_or_default(namespace);
        if let Some(stream) = self
            .tunnels
            .open(&self.client, namespace, pod, port)
            .await?
        {
            return Ok(Box::new(stream));
        }
        // A cluster without the tunnel: a WebSocket per connection.
        let api: Api<KPod> = Api::namespaced(self.client.clone(), namespace);
        let mut pf = api.portforward(pod, &[port]).await?;
        let stream = pf
            .take_stream(port)
            .ok_or_else(|| K8sError::Other("port-forward: no stream".into()))?;
        Ok(Box::new(PfStream { stream, _pf: pf }))
    }
}

/// A forwarded connection that keeps its Portforwarder alive.
struct PfStream {
    stream: tokio::io::DuplexStream,
    _pf: kube::api::Portforwarder,
}

impl tokio::io::AsyncRead for PfStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for PfStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Exit code from an exec's final Status (`Success`, or `NonZeroExitCode` with an `ExitCode`
/// cause); other failures ("executable file not found") are errors.
pub(crate) fn exit_code_of(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
    cmd: &str,
) -> Result<i32> {
    if s.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if s.reason.as_deref() == Some("NonZeroExitCode")
        && let Some(code) = s
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.parse::<i32>().ok())
    {
        return Ok(code);
    }
    Err(K8sError::Exec(format!(
        "{cmd}: {}",
        s.message.as_deref().unwrap_or("failed")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_runtimes() {
        for (version, want) in [
            ("containerd://1.6.20", "containerd"),
            ("docker://24.0.7", "docker"),
            ("cri-o://1.29.1", "cri-o"),
            ("", ""),
        ] {
            assert_eq!(runtime_of(version), want, "{version}");
        }
    }

    #[test]
    fn products_from_cluster_names() {
        for (cluster, want) in [
            ("kind-dev", "kind"),
            ("kind", "kind"),
            ("minikube", "minikube"),
            ("docker-desktop", "docker-desktop"),
            ("stilt-dev", "unknown"),
        ] {
            assert_eq!(cluster_product(cluster), want, "{cluster}");
        }
    }
}
