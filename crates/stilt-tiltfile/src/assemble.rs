//! Assembly: turn what the Tiltfile declared (model::State) into resources ("manifests") the way
//! Tilt's loader does (§1.14), then into API objects (§2.1).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;

use anyhow::anyhow;
use anyhow::bail;
use serde_json::Value as Json;
use serde_json::json;

use crate::model::*;
use crate::objects::*;

pub const TILTFILE_MANIFEST: &str = "(Tiltfile)";
pub const UNCATEGORIZED: &str = "uncategorized";

/// What kind of resource a manifest is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    K8s,
    Local,
    DockerCompose,
    /// `syncback(...)` / `dc_syncback(...)` (ext://syncback, served natively): a `Syncback` object.
    Syncback,
}

/// One resource (Tilt's manifest), for the engine: what the API objects alone do not say.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResourceInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// `auto` | `manual`.
    pub trigger_mode: String,
    pub auto_init: bool,
    pub resource_deps: Vec<String>,
    pub labels: Vec<String>,
    pub links: Vec<(String, String)>,
    /// k8s: `wait` | `ignore` | `succeeded`.
    pub pod_readiness: String,
    /// ImageMap names this resource builds (deployed images and their base images), build order.
    pub image_maps: Vec<String>,
    pub allow_parallel: bool,
    pub enabled: bool,
}

struct Res {
    name: String,
    kind: ResourceType,
    entities: Vec<K8sEntity>,
    images: Vec<usize>,
    opts: K8sResourceOpts,
    pod_readiness: String,
    manual_group: bool,
    custom_deploy: Option<usize>,
    local: Option<usize>,
    syncback: Option<usize>,
    dc: Option<(usize, String)>,
    dc_opts: Option<DcResourceOpts>,
    call_site: Option<String>,
}

impl Res {
    fn new(name: String, kind: ResourceType) -> Self {
        Res {
            name,
            kind,
            entities: vec![],
            images: vec![],
            opts: K8sResourceOpts::default(),
            pod_readiness: String::new(),
            manual_group: false,
            custom_deploy: None,
            local: None,
            syncback: None,
            dc: None,
            dc_opts: None,
            call_site: None,
        }
    }
}

/// A container image found in YAML: (familiar name, tag).
fn split_image(img: &str) -> (String, String) {
    // No validation here (YAML images are not ours to judge): familiar name + tag.
    let without_digest = img.split('@').next().unwrap_or(img);
    let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match without_digest[last_slash..].find(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            &without_digest[last_slash + i + 1..],
        ),
        None => (without_digest, ""),
    };
    (
        crate::builtins::docker::familiar(name).to_owned(),
        tag.to_owned(),
    )
}

fn image_matches(t: &ImageTarget, img: &str) -> bool {
    split_matches(t, &split_image(img))
}

fn split_matches(t: &ImageTarget, (name, tag): &(String, String)) -> bool {
    if *name != t.name {
        return false;
    }
    if t.match_exact {
        let want = t.ref_str.rsplit_once(':').map(|(_, tg)| tg).unwrap_or("");
        return tag == want;
    }
    true
}

fn pod_spec(obj: &Json) -> Option<&Json> {
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind == "Pod" {
        return obj.get("spec");
    }
    obj.pointer("/spec/template/spec")
        .or_else(|| obj.pointer("/spec/jobTemplate/spec/template/spec"))
}

fn pod_template_labels(obj: &Json) -> BTreeMap<String, String> {
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let l = if kind == "Pod" {
        obj.pointer("/metadata/labels")
    } else {
        obj.pointer("/spec/template/metadata/labels")
            .or_else(|| obj.pointer("/spec/jobTemplate/spec/template/metadata/labels"))
    };
    l.and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Container images and env values in a pod spec.
fn container_refs(obj: &Json) -> (Vec<String>, Vec<String>) {
    let mut imgs = vec![];
    let mut envs = vec![];
    if let Some(ps) = pod_spec(obj) {
        for key in ["initContainers", "containers"] {
            for c in ps.get(key).and_then(|c| c.as_array()).into_iter().flatten() {
                if let Some(i) = c.get("image").and_then(|i| i.as_str()) {
                    imgs.push(i.to_owned());
                }
                for e in c
                    .get("env")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = e.get("value").and_then(|v| v.as_str()) {
                        envs.push(v.to_owned());
                    }
                }
            }
        }
        for v in ps
            .get("volumes")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(r) = v.pointer("/image/reference").and_then(|r| r.as_str()) {
                imgs.push(r.to_owned());
            }
        }
    }
    (imgs, envs)
}

/// Evaluate a simple JSONPath like `{.spec.image}` or `{.spec.containers[*].image}`.
fn json_path<'a>(obj: &'a Json, path: &str) -> Vec<&'a Json> {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    let mut cur = vec![obj];
    for seg in p.split('.').filter(|s| !s.is_empty()) {
        let (field, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], Some(seg[i + 1..].trim_end_matches(']'))),
            None => (seg, None),
        };
        let mut next = vec![];
        for c in cur {
            let Some(v) = c.get(field) else { continue };
            match idx {
                None => next.push(v),
                Some("*") => next.extend(v.as_array().into_iter().flatten()),
                Some(n) => {
                    if let Some(x) = n.parse::<usize>().ok().and_then(|n| v.get(n)) {
                        next.push(x)
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn kind_matches(k: &K8sKind, e: &K8sEntity) -> bool {
    thread_local! {
        static CACHE: std::cell::RefCell<BTreeMap<String, Option<regex::Regex>>> =
            const { std::cell::RefCell::new(BTreeMap::new()) };
    }
    // Tilt's ObjectSelector: each regexp matches anywhere in the field; empty matches all.
    let m = |pat: &str, s: &str| -> bool {
        pat.is_empty()
            || CACHE.with(|c| {
                c.borrow_mut()
                    .entry(pat.to_owned())
                    .or_insert_with(|| regex::Regex::new(pat).ok())
                    .as_ref()
                    .is_some_and(|r| r.is_match(s))
            })
    };
    let ns = match e.namespace() {
        "" => "default",
        n => n,
    };
    m(&k.kind_re, e.kind())
        && m(&k.api_version_re, e.api_version())
        && m(&k.name_re, e.name())
        && m(&k.namespace_re, ns)
}

/// Images (indices into state.images) referenced by an entity.
fn entity_images(st: &State, e: &K8sEntity) -> Vec<usize> {
    let (imgs, envs) = container_refs(&e.obj);
    let mut extra = vec![];
    for k in st.k8s_kinds.iter().filter(|k| kind_matches(k, e)) {
        for p in &k.image_json_paths {
            extra.extend(
                json_path(&e.obj, p)
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned)),
            );
        }
        if let Some((p, repo, tag)) = &k.image_object {
            for o in json_path(&e.obj, p) {
                if let Some(r) = o.get(repo).and_then(|r| r.as_str()) {
                    let t = o.get(tag).and_then(|t| t.as_str()).unwrap_or("");
                    extra.push(if t.is_empty() {
                        r.to_owned()
                    } else {
                        format!("{r}:{t}")
                    });
                }
            }
        }
    }
    let split =
        |v: &[String]| -> Vec<(String, String)> { v.iter().map(|i| split_image(i)).collect() };
    let refs: Vec<(String, String)> = split(&imgs).into_iter().chain(split(&extra)).collect();
    let env_refs = if st.images.iter().any(|t| t.match_in_env_vars) {
        split(&envs)
    } else {
        vec![]
    };
    let mut out = vec![];
    for (i, t) in st.images.iter().enumerate() {
        let m = refs.iter().any(|r| split_matches(t, r))
            || (t.match_in_env_vars && env_refs.iter().any(|r| split_matches(t, r)));
        if m {
            out.push(i);
        }
    }
    out
}

fn is_workload(st: &State, e: &K8sEntity) -> bool {
    pod_spec(&e.obj).is_some()
        || !entity_images(st, e).is_empty()
        || st.k8s_kinds.iter().any(|k| kind_matches(k, e))
}

fn ns_or_default(e: &K8sEntity) -> String {
    if e.namespace().is_empty() {
        "default".into()
    } else {
        e.namespace().to_owned()
    }
}

/// Tilt's unique workload names: shortest unique of name, name:kind, name:kind:ns, name:kind:ns:group.
fn unique_names(ents: &[&K8sEntity]) -> Vec<String> {
    let cands: Vec<[String; 4]> = ents
        .iter()
        .map(|e| {
            let n = e.name().to_lowercase();
            let k = e.kind().to_lowercase();
            let ns = ns_or_default(e).to_lowercase();
            let g = e.group().to_lowercase();
            [
                n.clone(),
                format!("{n}:{k}"),
                format!("{n}:{k}:{ns}"),
                format!("{n}:{k}:{ns}:{g}"),
            ]
        })
        .collect();
    let mut level = vec![0usize; ents.len()];
    for lvl in 0..4 {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, c) in cands.iter().enumerate() {
            if level[i] == lvl {
                *counts.entry(c[lvl].as_str()).or_default() += 1;
            }
        }
        let dups: BTreeSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k.to_owned())
            .collect();
        for (i, c) in cands.iter().enumerate() {
            if level[i] == lvl && dups.contains(&c[lvl]) && lvl < 3 {
                level[i] = lvl + 1;
            }
        }
    }
    cands.iter().zip(level).map(|(c, l)| c[l].clone()).collect()
}

/// The label selector of a non-workload object (Service `spec.selector`, else
/// `spec.selector.matchLabels`), if it has a non-empty one.
fn entity_selector(e: &K8sEntity) -> Option<&serde_json::Map<String, Json>> {
    let sel = if e.kind() == "Service" {
        e.obj.pointer("/spec/selector")
    } else {
        e.obj.pointer("/spec/selector/matchLabels")
    };
    sel.and_then(|s| s.as_object()).filter(|s| !s.is_empty())
}

fn selector_matches(
    sel: &serde_json::Map<String, Json>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !labels.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
}

fn object_selector_matches(sel: &str, e: &K8sEntity) -> bool {
    let parts: Vec<String> = sel.split(':').map(|s| s.to_lowercase()).collect();
    let want = [
        e.name().to_lowercase(),
        e.kind().to_lowercase(),
        ns_or_default(e).to_lowercase(),
    ];
    !parts.is_empty() && parts.len() <= 3 && parts.iter().zip(want.iter()).all(|(p, w)| p == w)
}

/// Whether a kubeconfig context or cluster name is a local development cluster (minikube, kind,
/// Docker Desktop, …): Tilt deploys there without `allow_k8s_contexts`.
pub fn is_dev_cluster(name: &str) -> bool {
    let n = name.to_lowercase();
    [
        "minikube",
        "docker-desktop",
        "docker-for-desktop",
        "kind-",
        "microk8s",
        "api-crc-testing",
        "krucible-",
        "k3d-",
        "rancher-desktop",
        "colima",
        "orbstack",
    ]
    .iter()
    .any(|p| n.starts_with(p))
        || n == "kind"
}

pub(crate) struct Assembled {
    pub objects: Vec<Json>,
    pub resources: Vec<ResourceInfo>,
}

/// Callback naming auto-assembled workloads (workload_to_resource_function).
pub(crate) type NameFn<'a> = dyn FnMut(&K8sEntity) -> anyhow::Result<String> + 'a;

pub(crate) struct AssembleInput<'a> {
    pub main_path: &'a Path,
    pub args: &'a [String],
    pub k8s_context: String,
    pub k8s_namespace: String,
    pub k8s_cluster: String,
    pub since_time: Option<String>,
    pub watch: bool,
    pub subcommand: String,
    /// Variables the Tiltfile set with `os.putenv` / `os.environ[...]` (differing from the
    /// environment at load start): Tilt sets them in its own process, so the local resources it
    /// starts inherit them; Stilt puts them into those Cmds' env (explicit `env=` wins).
    pub putenv: Vec<(String, String)>,
}

pub(crate) fn assemble(
    st: &mut State,
    input: &AssembleInput,
    w2r: Option<&mut NameFn>,
) -> anyhow::Result<Assembled> {
    if let Some((_, desc)) = st.unused_steps.iter().next() {
        bail!(
            "Error: live_update step was defined but not used by any docker_build, custom_build or k8s_custom_deploy: {desc}"
        );
    }

    // ---- Kubernetes: workloads -------------------------------------------------------------
    let entities = std::mem::take(&mut st.k8s);
    let workload_idx: Vec<usize> = (0..entities.len())
        .filter(|&i| is_workload(st, &entities[i]))
        .collect();
    let wl_refs: Vec<&K8sEntity> = workload_idx.iter().map(|&i| &entities[i]).collect();
    let mut names = unique_names(&wl_refs);
    if let Some(f) = w2r {
        names = wl_refs
            .iter()
            .map(|e| f(e))
            .collect::<anyhow::Result<_>>()?;
        let mut seen = BTreeSet::new();
        for n in &names {
            if !seen.insert(n) {
                bail!(
                    "workload_to_resource_function: returned the same name {n:?} for two workloads; resource names must be unique"
                );
            }
        }
    }
    let mut assigned = vec![false; entities.len()];
    let mut k8s_res: Vec<Res> = vec![];
    for (wi, &ei) in workload_idx.iter().enumerate() {
        let e = &entities[ei];
        let mut r = Res::new(names[wi].clone(), ResourceType::K8s);
        r.images = entity_images(st, e);
        r.pod_readiness = match e.kind() {
            "Job" => "succeeded".into(),
            "CronJob" => "ignore".into(),
            _ => String::new(),
        };
        if let Some(k) = st
            .k8s_kinds
            .iter()
            .rev()
            .find(|k| kind_matches(k, e) && !k.pod_readiness.is_empty())
        {
            r.pod_readiness = k.pod_readiness.clone();
        }
        r.entities.push(e.clone());
        assigned[ei] = true;
        k8s_res.push(r);
    }
    // Custom deploys are k8s resources too (configurable by k8s_resource).
    for (ci, cd) in st.custom_deploys.iter().enumerate() {
        let mut r = Res::new(cd.name.clone(), ResourceType::K8s);
        r.custom_deploy = Some(ci);
        for dep in &cd.image_deps {
            if let Some(i) = st
                .images
                .iter()
                .position(|t| &t.ref_str == dep || &t.name == dep)
            {
                r.images.push(i);
            }
        }
        if !cd.image_selector.is_empty()
            && let Some(i) = st
                .images
                .iter()
                .position(|t| t.ref_str == cd.image_selector || t.name == cd.image_selector)
            && !r.images.contains(&i)
        {
            r.images.push(i);
        }
        k8s_res.push(r);
    }

    // ---- k8s_resource(...) calls --------------------------------------------------------------
    let opts_list = std::mem::take(&mut st.k8s_resource_opts);
    let mut deferred: Vec<&K8sResourceOpts> = vec![];
    for opts in &opts_list {
        let idx = if !opts.workload.is_empty() {
            match k8s_res.iter().position(|r| r.name == opts.workload) {
                Some(i) => i,
                // `uncategorized` only exists once every other object has found its resource.
                None if opts.workload == UNCATEGORIZED && opts.objects.is_empty() => {
                    deferred.push(opts);
                    continue;
                }
                None if !opts.objects.is_empty() && !opts.new_name.is_empty() => {
                    bail!(
                        "{}: k8s_resource: no workload found matching {:?}",
                        opts.call_site,
                        opts.workload
                    )
                }
                None if !opts.objects.is_empty() => {
                    let mut r = Res::new(opts.workload.clone(), ResourceType::K8s);
                    r.manual_group = true;
                    k8s_res.push(r);
                    k8s_res.len() - 1
                }
                None => {
                    let known: Vec<&str> = k8s_res.iter().map(|r| r.name.as_str()).collect();
                    bail!(
                        "{}: k8s_resource: no Kubernetes workload found matching {:?}. Known workloads: [{}]",
                        opts.call_site,
                        opts.workload,
                        known.join(", ")
                    );
                }
            }
        } else {
            match k8s_res.iter().position(|r| r.name == opts.new_name) {
                Some(i) => i,
                None => {
                    let mut r = Res::new(opts.new_name.clone(), ResourceType::K8s);
                    r.manual_group = true;
                    k8s_res.push(r);
                    k8s_res.len() - 1
                }
            }
        };
        for sel in &opts.objects {
            let matches: Vec<usize> = (0..entities.len())
                .filter(|&i| object_selector_matches(sel, &entities[i]))
                .collect();
            let free: Vec<usize> = matches.iter().copied().filter(|&i| !assigned[i]).collect();
            match (matches.len(), free.len()) {
                (0, _) => bail!(
                    "{}: k8s_resource: no object identified by the fragment {sel:?}",
                    opts.call_site
                ),
                (_, 0) => bail!(
                    "{}: k8s_resource: object {sel:?} is already part of a resource",
                    opts.call_site
                ),
                (_, 1) => {
                    assigned[free[0]] = true;
                    let e = entities[free[0]].clone();
                    for im in entity_images(st, &e) {
                        if !k8s_res[idx].images.contains(&im) {
                            k8s_res[idx].images.push(im);
                        }
                    }
                    k8s_res[idx].entities.push(e);
                }
                _ => bail!(
                    "{}: k8s_resource: {sel:?} matches more than one object; use name:kind:namespace to pick one",
                    opts.call_site
                ),
            }
        }
        merge_opts(&mut k8s_res[idx].opts, opts);
        if !opts.resource_deps.is_empty() {
            k8s_res[idx].call_site = Some(opts.call_site.clone());
        }
        if !opts.workload.is_empty() && !opts.new_name.is_empty() {
            if k8s_res.iter().any(|x| x.name == opts.new_name) {
                bail!(
                    "{}: k8s_resource: new_name {:?} is already in use",
                    opts.call_site,
                    opts.new_name
                );
            }
            k8s_res[idx].name = opts.new_name.clone();
        }
    }
    fn merge_opts(o: &mut K8sResourceOpts, opts: &K8sResourceOpts) {
        o.port_forwards.extend(opts.port_forwards.iter().cloned());
        o.extra_pod_selectors
            .extend(opts.extra_pod_selectors.iter().cloned());
        if opts.trigger_mode.is_some() {
            o.trigger_mode = opts.trigger_mode;
        }
        o.resource_deps.extend(opts.resource_deps.iter().cloned());
        if opts.auto_init.is_some() {
            o.auto_init = opts.auto_init;
        }
        if !opts.pod_readiness.is_empty() {
            o.pod_readiness = opts.pod_readiness.clone();
        }
        o.links.extend(opts.links.iter().cloned());
        for l in &opts.labels {
            if !o.labels.contains(l) {
                o.labels.push(l.clone());
            }
        }
        if !opts.discovery_strategy.is_empty() {
            o.discovery_strategy = opts.discovery_strategy.clone();
        }
    }

    // ---- selectors: services etc. join the workload whose pod template they select ------------
    let template_labels: Vec<Vec<BTreeMap<String, String>>> = k8s_res
        .iter()
        .map(|r| {
            r.entities
                .iter()
                .map(|w| pod_template_labels(&w.obj))
                .collect()
        })
        .collect();
    for i in 0..entities.len() {
        if assigned[i] {
            continue;
        }
        let Some(sel) = entity_selector(&entities[i]) else {
            continue;
        };
        for (ri, r) in k8s_res.iter_mut().enumerate() {
            let hit = template_labels[ri]
                .iter()
                .any(|labels| selector_matches(sel, labels));
            if hit {
                r.entities.push(entities[i].clone());
                assigned[i] = true;
                break;
            }
        }
    }
    let leftovers: Vec<K8sEntity> = (0..entities.len())
        .filter(|&i| !assigned[i])
        .map(|i| entities[i].clone())
        .collect();
    if !leftovers.is_empty() {
        let mut r = Res::new(UNCATEGORIZED.into(), ResourceType::K8s);
        r.entities = leftovers;
        r.pod_readiness = "ignore".into();
        r.manual_group = true;
        k8s_res.push(r);
    }
    for opts in deferred {
        let Some(r) = k8s_res.iter_mut().find(|r| r.name == UNCATEGORIZED) else {
            bail!(
                "{}: k8s_resource: no Kubernetes workload found matching \"uncategorized\" (every object belongs to a resource)",
                opts.call_site
            );
        };
        merge_opts(&mut r.opts, opts);
        if !opts.new_name.is_empty() {
            r.name = opts.new_name.clone();
        }
    }
    for r in k8s_res.iter_mut() {
        if !r.opts.pod_readiness.is_empty() {
            r.pod_readiness = r.opts.pod_readiness.clone();
        } else if r.pod_readiness.is_empty() {
            let has_pods = r.entities.iter().any(|e| pod_spec(&e.obj).is_some());
            r.pod_readiness = if r.manual_group
                && r.images.is_empty()
                && !has_pods
                && r.opts.extra_pod_selectors.is_empty()
            {
                "ignore".into()
            } else {
                "wait".into()
            };
        }
    }

    // ---- Docker Compose -----------------------------------------------------------------------
    let mut dc_res: Vec<Res> = vec![];
    for (pi, p) in st.dc_projects.iter().enumerate() {
        for (svc, def) in &p.services {
            let mut r = Res::new(svc.clone(), ResourceType::DockerCompose);
            r.dc = Some((pi, svc.clone()));
            // Tilt: a service's depends_on are resource_deps of its resource.
            let deps = crate::builtins::compose_model::depends_on(def);
            if !deps.is_empty() {
                r.dc_opts = Some(DcResourceOpts {
                    name: svc.clone(),
                    resource_deps: deps,
                    ..Default::default()
                });
            }
            if let Some(img) = def.get("image").and_then(|i| i.as_str())
                && let Some(i) = st.images.iter().position(|t| image_matches(t, img))
            {
                r.images.push(i);
            }
            dc_res.push(r);
        }
    }
    for o in &st.dc_resource_opts {
        let cands: Vec<usize> = dc_res
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.dc.as_ref().is_some_and(|(pi, svc)| {
                    svc == &o.name
                        && (o.project_name.is_empty() || st.dc_projects[*pi].name == o.project_name)
                })
            })
            .map(|(i, _)| i)
            .collect();
        let i = match cands.as_slice() {
            [i] => *i,
            [] => bail!(
                "dc_resource: no Docker Compose service found with name {:?}",
                o.name
            ),
            _ => bail!(
                "dc_resource: {:?} matches services in more than one project; pass project_name",
                o.name
            ),
        };
        if let Some(img) = &o.image
            && let Some(ti) = st
                .images
                .iter()
                .position(|t| &t.ref_str == img || &t.name == img)
            && !dc_res[i].images.contains(&ti)
        {
            dc_res[i].images.push(ti);
        }
        if !o.new_name.is_empty() {
            dc_res[i].name = o.new_name.clone();
        }
        let prev = dc_res[i].dc_opts.take().unwrap_or_default();
        let mut merged = o.clone();
        merged.resource_deps = prev
            .resource_deps
            .into_iter()
            .chain(o.resource_deps.iter().cloned())
            .collect();
        merged.links = prev
            .links
            .into_iter()
            .chain(o.links.iter().cloned())
            .collect();
        merged.labels = prev
            .labels
            .into_iter()
            .chain(o.labels.iter().cloned())
            .collect();
        if merged.trigger_mode.is_none() {
            merged.trigger_mode = prev.trigger_mode;
        }
        if merged.auto_init.is_none() {
            merged.auto_init = prev.auto_init;
        }
        if !o.resource_deps.is_empty() {
            dc_res[i].call_site = Some(o.call_site.clone());
        }
        dc_res[i].dc_opts = Some(merged);
    }
    // A renamed service keeps being the dependency of the services that depend_on it.
    let renames: Vec<(usize, String, String)> = dc_res
        .iter()
        .filter_map(|r| {
            r.dc.as_ref()
                .map(|(pi, svc)| (*pi, svc.clone(), r.name.clone()))
        })
        .filter(|(_, svc, name)| svc != name)
        .collect();
    for r in dc_res.iter_mut() {
        let Some((pi, _)) = r.dc.clone() else {
            continue;
        };
        if let Some(o) = r.dc_opts.as_mut() {
            for d in o.resource_deps.iter_mut() {
                if let Some((_, _, new)) = renames.iter().find(|(p, svc, _)| *p == pi && svc == d) {
                    *d = new.clone();
                }
            }
        }
    }

    // ---- local resources ----------------------------------------------------------------------
    let mut local_res: Vec<Res> = vec![];
    for (i, l) in st.local_resources.iter().enumerate() {
        let mut r = Res::new(l.name.clone(), ResourceType::Local);
        r.local = Some(i);
        r.call_site = Some(l.call_site.clone());
        local_res.push(r);
    }

    // ---- syncbacks (in place among local resources, as the extension's local_resource was) ---
    let mut local_res = local_res.into_iter().map(Some).collect::<Vec<_>>();
    let mut local_like: Vec<Res> = vec![];
    let mut next_local = 0;
    for (i, sb) in st.syncbacks.iter().enumerate() {
        while next_local < sb.local_seq.min(local_res.len()) {
            local_like.extend(local_res[next_local].take());
            next_local += 1;
        }
        if let SyncbackFrom::DockerCompose { service } = &sb.from
            && !st
                .dc_projects
                .iter()
                .any(|p| p.services.iter().any(|(n, _)| n == service))
        {
            bail!(
                "{}: {}: no Docker Compose service found with name {service:?} (declare it with docker_compose())",
                sb.call_site,
                sb.func
            );
        }
        let mut r = Res::new(sb.name.clone(), ResourceType::Syncback);
        r.syncback = Some(i);
        r.call_site = Some(sb.call_site.clone());
        local_like.push(r);
    }
    local_like.extend(local_res.into_iter().flatten());

    let mut all: Vec<Res> = vec![];
    all.extend(k8s_res);
    all.extend(dc_res);
    all.extend(local_like);

    // Name conflicts across kinds.
    let mut seen: BTreeMap<String, ResourceType> = BTreeMap::new();
    for r in &all {
        if let Some(prev) = seen.insert(r.name.clone(), r.kind.clone()) {
            bail!(
                "{}Resource name {:?} is used by two resources ({:?} and {:?}); resource names must be unique",
                r.call_site
                    .as_deref()
                    .map(|c| format!("{c}: "))
                    .unwrap_or_default(),
                r.name,
                prev,
                r.kind
            );
        }
    }

    // Image dependencies (FROM / image_deps): add base images built by Tilt.
    // Bases come before the images built from them: the engine builds in this order.
    for r in all.iter_mut() {
        let mut ordered = Vec::new();
        for root in r.images.clone() {
            push_with_bases(st, root, &mut ordered, 0);
        }
        r.images = ordered;
    }

    // Unused images.
    let used: BTreeSet<usize> = all.iter().flat_map(|r| r.images.iter().copied()).collect();
    let suppress = st.settings.suppress_unused_image_warnings.clone();
    for (i, t) in st.images.iter().enumerate() {
        if !used.contains(&i)
            && !suppress
                .iter()
                .any(|s| s == "*" || s == &t.ref_str || s == &t.name)
        {
            let msg = format!(
                "Image not used in any deploy config:\n    ✕ {}\nSkipping this image build\nIf this is deliberate, suppress this warning with: update_settings(suppress_unused_image_warnings=[\"{}\"])",
                t.ref_str, t.ref_str
            );
            st.logs.push_str(&format!("WARNING: {msg}\n"));
            st.warnings.push(msg);
        }
    }

    // Resource deps must exist.
    let names: BTreeSet<String> = all.iter().map(|r| r.name.clone()).collect();
    for r in &all {
        for d in deps_of(st, r) {
            if !names.contains(&d) {
                bail!(
                    "{}resource {} specified a dependency on unknown resource {}",
                    r.call_site
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    r.name,
                    d
                );
            }
        }
    }

    // Kubernetes context safety.
    let has_k8s = all.iter().any(|r| r.kind == ResourceType::K8s);
    if has_k8s && !input.k8s_context.is_empty() {
        let allowed = st
            .settings
            .allowed_k8s_contexts
            .iter()
            .any(|c| c == &input.k8s_context)
            || is_dev_cluster(&input.k8s_context)
            || is_dev_cluster(&input.k8s_cluster);
        if !allowed {
            bail!(
                "Stop! {} might be production.\nIf you're sure you want to deploy there, add:\n\tallow_k8s_contexts('{}')\nto your Tiltfile. Otherwise, switch k8s contexts and restart Tilt.",
                input.k8s_context,
                input.k8s_context
            );
        }
    }

    // Enabled resources.
    let enabled: BTreeSet<String> = match (&st.enabled_resources, st.config_parsed.is_some()) {
        (Some(list), _) => {
            for n in list {
                if !names.contains(n) {
                    bail!("config.set_enabled_resources: no such resource: {n}");
                }
            }
            closure(st, &all, list)
        }
        (None, false) if !input.args.is_empty() => {
            for n in input.args {
                if !names.contains(n) {
                    bail!(
                        "Tiltfile args (no config.parse, so they name resources to enable): no such resource: {n:?}. Known resources: [{}]",
                        names.iter().cloned().collect::<Vec<_>>().join(", ")
                    );
                }
            }
            closure(st, &all, input.args)
        }
        _ => names.clone(),
    };

    // ---- objects ------------------------------------------------------------------------------
    let mut out = Objects::default();
    let mut infos = vec![];
    let global_ignores = global_ignores(st, &all);
    for r in &all {
        let is_enabled =
            enabled.contains(&r.name) || (r.name == UNCATEGORIZED && !enabled.is_empty());
        infos.push(emit_resource(
            st,
            r,
            is_enabled,
            input,
            &global_ignores,
            &mut out,
        )?);
    }
    // configs:(Tiltfile) FileWatch.
    let mut cfg = object(
        "FileWatch",
        &sanitize_name(&format!("configs:{TILTFILE_MANIFEST}")),
        &[
            (ANNOTATION_MANIFEST, TILTFILE_MANIFEST),
            (
                ANNOTATION_TARGET_ID,
                &format!("configs:{TILTFILE_MANIFEST}"),
            ),
        ],
    );
    let paths: Vec<String> = st
        .config_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    cfg = with_spec(
        cfg,
        json!({"watchedPaths": paths, "ignores": global_ignores}),
    );
    if input.watch {
        out.push(cfg);
    }
    // (Tiltfile) UIResource and its stop button.
    // The `(Tiltfile)` UIResource exists before any load: the Tiltfile reconciler creates it.
    // Clusters.
    if all.iter().any(|r| r.kind == ResourceType::K8s) {
        let mut spec = json!({"connection": {"kubernetes": {"context": input.k8s_context, "namespace": input.k8s_namespace}}});
        if let Some(dr) = &st.settings.default_registry {
            // Tilt: host_from_cluster is where the container runtime pulls from.
            spec["defaultRegistry"] = json!({"host": dr.host, "hostFromContainerRuntime": dr.host_from_cluster, "singleName": dr.single_name});
        }
        out.push(with_spec(object("Cluster", "default", &[]), spec));
    }
    if all.iter().any(|r| r.kind == ResourceType::DockerCompose) {
        let mut c = object("Cluster", "docker", &[]);
        c["spec"] = json!({"connection": {"docker": {}}});
        out.push(c);
    }
    // Session `Tiltfile` (exit condition and CI settings).
    let mut session = json!({
        "tiltfilePath": input.main_path.display().to_string(),
        "exitCondition": if input.subcommand == "ci" { "ci" } else { "manual" },
    });
    if input.subcommand == "ci" {
        session["ci"] = json!({
            "k8sGracePeriod": st.settings.ci_k8s_grace_period,
            "timeout": st.settings.ci_timeout,
            "readinessTimeout": st.settings.ci_readiness_timeout,
        });
    }
    out.push(with_spec(object("Session", "Tiltfile", &[]), session));
    // Extensions (ext:// loads) and raw v1alpha1 objects.
    for r in &st.ext_repos {
        let name = &r.name;
        if st
            .raw_objects
            .iter()
            .any(|o| o["kind"] == "ExtensionRepo" && o["metadata"]["name"] == name.as_str())
        {
            continue;
        }
        let builtin_only = st
            .extensions
            .iter()
            .filter(|(_, repo, _)| repo == name)
            .all(|(_, _, path)| crate::builtins::extensions::is_native(path));
        let mut annotations = vec![
            (ANNOTATION_MANIFEST, TILTFILE_MANIFEST),
            (ANNOTATION_MANAGED_BY, "tiltfile.loader"),
        ];
        if builtin_only {
            annotations.push((crate::builtins::extensions::ANN_BUILTIN_ONLY, "true"));
        }
        out.push(with_spec(
            object("ExtensionRepo", name, &annotations),
            json!({"url": r.url, "loadHost": r.load_host}),
        ));
    }
    for (name, repo, path) in &st.extensions {
        let mut annotations = vec![
            (ANNOTATION_MANIFEST, TILTFILE_MANIFEST),
            (ANNOTATION_MANAGED_BY, "tiltfile.loader"),
        ];
        if crate::builtins::extensions::is_native(path) {
            annotations.push((crate::builtins::extensions::ANN_BUILTIN, "true"));
        }
        out.push(with_spec(
            object("Extension", name, &annotations),
            json!({"repoName": repo, "repoPath": path}),
        ));
    }
    for o in &st.raw_objects {
        let mut o = o.clone();
        if o["metadata"]["annotations"][ANNOTATION_MANIFEST].is_null() {
            o["metadata"]["annotations"][ANNOTATION_MANIFEST] = json!(TILTFILE_MANIFEST);
        }
        out.push(o);
    }
    // Objects without a manifest annotation belong to the Tiltfile (Tilt's propagateAnnotations).
    let mut out_list = out.list;
    for o in out_list.iter_mut() {
        if o["metadata"]["annotations"][ANNOTATION_MANIFEST].is_null() {
            o["metadata"]["annotations"][ANNOTATION_MANIFEST] = json!(TILTFILE_MANIFEST);
        }
        // Tilt's targets give their dependencies deduplicated and sorted.
        if o["kind"] == "FileWatch"
            && let Some(paths) = o["spec"]["watchedPaths"].as_array_mut()
        {
            paths.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            paths.dedup();
        }
    }
    out.list = out_list;
    Ok(Assembled {
        objects: out.list,
        resources: infos,
    })
}

/// Appends image `i` after the Tilt-built images it builds FROM (depth-first, each once).
fn push_with_bases(st: &State, i: usize, out: &mut Vec<usize>, depth: usize) {
    if out.contains(&i) || depth > st.images.len() {
        return;
    }
    for dep in &st.images[i].image_deps {
        if let Some(bi) = st.images.iter().position(|b| image_matches(b, dep))
            && bi != i
        {
            push_with_bases(st, bi, out, depth + 1);
        }
    }
    if !out.contains(&i) {
        out.push(i);
    }
}

fn deps_of(st: &State, r: &Res) -> Vec<String> {
    if let Some(li) = r.local {
        return st.local_resources[li].resource_deps.clone();
    }
    if let Some(si) = r.syncback {
        return st.syncbacks[si].resource_deps.clone();
    }
    if let Some(o) = &r.dc_opts {
        return o.resource_deps.clone();
    }
    r.opts.resource_deps.clone()
}

fn closure(st: &State, all: &[Res], roots: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(n) = stack.pop() {
        if !out.insert(n.clone()) {
            continue;
        }
        if let Some(r) = all.iter().find(|r| r.name == n) {
            stack.extend(deps_of(st, r));
        }
    }
    out
}

fn global_ignores(st: &State, all: &[Res]) -> Vec<Json> {
    let mut out = vec![];
    if let Some((dir, pats)) = &st.tiltignore
        && !pats.is_empty()
    {
        out.push(json!({"basePath": dir.display().to_string(), "patterns": pats}));
    }
    for (dir, pats) in &st.watch_ignores {
        out.push(json!({"basePath": dir.display().to_string(), "patterns": pats}));
    }
    // Tilt adds the file each custom_build writes its ref to, once per resource building it.
    let mut per_resource = vec![];
    for r in all {
        let mut order = vec![];
        for &i in &r.images {
            push_with_bases(st, i, &mut order, 0);
        }
        per_resource.extend(order.into_iter().map(|i| &st.images[i]));
    }
    for t in per_resource {
        if let ImageBuild::Custom(c) = &t.build
            && !c.outputs_image_ref_to.is_empty()
        {
            let p = PathBuf::from(&c.outputs_image_ref_to);
            out.push(json!({
                "basePath": p.parent().map(|d| d.display().to_string()).unwrap_or_default(),
                "patterns": [p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()],
            }));
        }
    }
    out
}

#[derive(Default)]
struct Objects {
    list: Vec<Json>,
    seen: BTreeSet<(String, String)>,
}

impl Objects {
    fn push(&mut self, o: Json) {
        let key = (
            o["kind"].as_str().unwrap_or("").to_owned(),
            o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        );
        if self.seen.insert(key) {
            self.list.push(o);
        }
    }
}

fn stop_button(manifest: &str) -> Json {
    // uibutton.StopBuildButton: no manifest annotation (the Tiltfile's is propagated).
    let name = format!("{manifest}-stopbuild");
    with_spec(
        object("UIButton", &name, &[(ANNOTATION_BUTTON_TYPE, "StopBuild")]),
        json!({
            "location": {"componentID": manifest, "componentType": "Resource"},
            "text": "Stop Build",
            "iconName": "cancel",
        }),
    )
}

/// `p` relative to `base` (Go's filepath.Rel: may start with `..`).
fn rel(base: &Path, p: &Path) -> String {
    crate::builtins::os::rel_path(p, base)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|| p.display().to_string())
}

fn trigger_str(t: TriggerMode) -> &'static str {
    match t {
        TriggerMode::Auto => "auto",
        TriggerMode::Manual => "manual",
    }
}

/// Tilt's apply order of kinds (kustomize's `OrderFirst`); other kinds come after, in input
/// order.
const KIND_ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// A resource's entities in Tilt's order (a stable sort by kind).
fn sorted_entities(entities: &[K8sEntity]) -> Vec<&K8sEntity> {
    let mut v: Vec<&K8sEntity> = entities.iter().collect();
    v.sort_by_key(|e| {
        KIND_ORDER_FIRST
            .iter()
            .position(|k| *k == e.kind())
            .unwrap_or(KIND_ORDER_FIRST.len())
    });
    v
}

/// The UI link of a port forward: `http://<host>:<local port>/<path>`, named like the forward.
fn port_forward_link(pf: &PortForwardSpec) -> Link {
    let host = if pf.host.is_empty() {
        "localhost"
    } else {
        &pf.host
    };
    Link {
        url: format!(
            "http://{host}:{}/{}",
            pf.local_port,
            pf.path.strip_prefix('/').unwrap_or(&pf.path)
        ),
        name: pf.name.clone(),
    }
}

fn image_map_name(t: &ImageTarget) -> String {
    sanitize_name(&t.ref_str)
}

/// `<repo>/.git` of every repository containing watched paths (Tilt's LocalRepos ignores).
fn git_ignores(roots: &[PathBuf]) -> Vec<Json> {
    roots
        .iter()
        .map(|r| json!({"basePath": r.join(".git").display().to_string()}))
        .collect()
}

/// Tilt's context ignores of an image, in its order: the Tiltfile that declared it, the `.git`
/// of repositories holding the Dockerfile/context/deps, then per directory (the context, or each
/// custom_build dep that is a directory) the `ignore=` patterns, the `only=` patterns
/// (`**` then `!<only>`) and the `.dockerignore` patterns, each as its own entry.
fn context_ignores(t: &ImageTarget) -> Vec<Json> {
    let mut out = vec![];
    if !t.tiltfile_path.as_os_str().is_empty() {
        out.push(json!({"basePath": t.tiltfile_path.display().to_string()}));
    }
    out.extend(git_ignores(&t.repo_roots));
    let dirs: Vec<(&PathBuf, &[String])> = match &t.build {
        ImageBuild::Docker(d) => vec![(&d.context, d.dockerignore_patterns.as_slice())],
        ImageBuild::Custom(c) => c
            .dep_dockerignores
            .iter()
            .map(|(p, pats)| (p, pats.as_slice()))
            .collect(),
    };
    let mut seen = BTreeSet::new();
    for (dir, dockerignore) in dirs {
        if !seen.insert(dir) {
            continue;
        }
        let base = dir.display().to_string();
        if !t.ignores.is_empty() {
            out.push(json!({"basePath": base, "patterns": t.ignores}));
        }
        if !t.only.is_empty() {
            let pats: Vec<String> = std::iter::once("**".to_owned())
                .chain(t.only.iter().map(|o| format!("!{o}")))
                .collect();
            out.push(json!({"basePath": base, "patterns": pats}));
        }
        if !dockerignore.is_empty() {
            out.push(json!({"basePath": base, "patterns": dockerignore}));
        }
    }
    out
}

fn emit_resource(
    st: &State,
    r: &Res,
    enabled: bool,
    input: &AssembleInput,
    global_ignores: &[Json],
    out: &mut Objects,
) -> anyhow::Result<ResourceInfo> {
    let m = r.name.as_str();
    let ds = disable_source(m);
    let (trigger_mode, auto_init, labels, links, deps, allow_parallel) =
        match (r.syncback, r.local, &r.dc_opts) {
            (Some(si), _, _) => {
                let sb = &st.syncbacks[si];
                (
                    Some(TriggerMode::Manual),
                    // Never at startup (the container may not run yet, and `stilt ci` must not
                    // wait on it); continuous mode runs on the engine's timer instead.
                    Some(false),
                    sb.labels.clone(),
                    vec![],
                    sb.resource_deps.clone(),
                    false,
                )
            }
            (None, Some(li), _) => {
                let l = &st.local_resources[li];
                (
                    l.trigger_mode,
                    Some(l.auto_init),
                    l.labels.clone(),
                    l.links.clone(),
                    l.resource_deps.clone(),
                    l.allow_parallel,
                )
            }
            (None, None, Some(o)) => (
                o.trigger_mode,
                o.auto_init,
                o.labels.clone(),
                o.links.clone(),
                o.resource_deps.clone(),
                false,
            ),
            _ => (
                r.opts.trigger_mode,
                r.opts.auto_init,
                r.opts.labels.clone(),
                r.opts.links.clone(),
                r.opts.resource_deps.clone(),
                false,
            ),
        };
    let trigger_mode = trigger_mode.unwrap_or(st.default_trigger_mode);
    let auto_init = auto_init.unwrap_or(true);
    let mut links = links;
    // Tilt shows a k8s resource's links first, then one per port forward.
    if r.kind == ResourceType::K8s {
        links.extend(r.opts.port_forwards.iter().map(port_forward_link));
    }

    // Images: FileWatch, ImageMap, DockerImage/CmdImage, LiveUpdate.
    let cluster = if r.kind == ResourceType::DockerCompose {
        "docker"
    } else {
        "default"
    };
    let deployed: BTreeSet<usize> = match r.kind {
        ResourceType::K8s => r
            .entities
            .iter()
            .flat_map(|e| entity_images(st, e))
            .chain(
                r.custom_deploy
                    .map(|ci| {
                        st.custom_deploys[ci]
                            .image_deps
                            .iter()
                            .filter_map(|d| {
                                st.images
                                    .iter()
                                    .position(|t| &t.ref_str == d || &t.name == d)
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            )
            .collect(),
        // A compose service runs its own image; images it is built FROM are bases (Tilt's
        // clusterNeeds `base-image`, not in the service's imageMaps).
        _ => r
            .images
            .iter()
            .copied()
            .filter(|&i| {
                !r.images.iter().any(|&o| {
                    o != i
                        && st.images[o]
                            .image_deps
                            .iter()
                            .any(|d| image_matches(&st.images[i], d))
                })
            })
            .collect(),
    };
    let mut image_maps = vec![];
    let mut deployed_maps = vec![];
    // Base images first (build order).
    let mut order: Vec<usize> = r
        .images
        .iter()
        .copied()
        .filter(|i| !deployed.contains(i))
        .collect();
    order.extend(r.images.iter().copied().filter(|i| deployed.contains(i)));
    for &ti in &order {
        let t = &st.images[ti];
        let im = image_map_name(t);
        let fw_name = sanitize_name(&format!("image:{}", t.ref_str));
        let target_id = fw_name.clone();
        // FileWatch image:<ref>
        let (watched, mut ignores): (Vec<String>, Vec<Json>) = match &t.build {
            ImageBuild::Docker(d) => {
                let mut ig = context_ignores(t);
                ig.push(json!({"basePath": d.dockerfile_path.display().to_string()}));
                (vec![d.context.display().to_string()], ig)
            }
            ImageBuild::Custom(c) => (
                c.deps.iter().map(|p| p.display().to_string()).collect(),
                context_ignores(t),
            ),
        };
        ignores.extend(global_ignores.iter().cloned());
        if input.watch && !watched.is_empty() {
            out.push(with_spec(
                object(
                    "FileWatch",
                    &fw_name,
                    &[(ANNOTATION_MANIFEST, m), (ANNOTATION_TARGET_ID, &target_id)],
                ),
                json!({"watchedPaths": watched, "ignores": ignores, "disableSource": ds}),
            ));
        }
        if !t.live_update_only {
            let mut spec = json!({
                "selector": t.ref_str,
                "matchExact": t.match_exact,
                "matchInEnvVars": t.match_in_env_vars,
            });
            if let Some(ep) = &t.entrypoint {
                spec["overrideCommand"] = json!({"command": ep});
            }
            if let Some(a) = &t.container_args {
                spec["overrideArgs"] = json!({"args": a});
            }
            out.push(with_spec(
                object(
                    "ImageMap",
                    &im,
                    &[
                        (ANNOTATION_MANIFEST, m),
                        (ANNOTATION_SPAN_ID, &format!("imagemap:{im}")),
                    ],
                ),
                spec,
            ));
            let needs = if deployed.contains(&ti) {
                "push"
            } else {
                "base-image"
            };
            let build_name = format!("{m}:{im}");
            match &t.build {
                ImageBuild::Docker(d) => {
                    out.push(with_spec(
                        object("DockerImage", &build_name, &[(ANNOTATION_MANIFEST, m), (ANNOTATION_SPAN_ID, &format!("dockerimage:{build_name}"))]),
                        json!({
                            "ref": t.ref_str,
                            "dockerfileContents": d.dockerfile_contents,
                            "context": d.context.display().to_string(),
                            "contextIgnores": context_ignores(t),
                            // Tilt keeps build args in a map: sorted by name.
                            "args": d.build_args.iter().map(|(k, v)| format!("{k}={v}")).collect::<BTreeSet<_>>(),
                            "target": d.target,
                            "sshAgentConfigs": d.ssh,
                            "secrets": d.secret,
                            "network": d.network,
                            "pull": d.pull,
                            "cacheFrom": d.cache_from,
                            "platform": d.platform,
                            "extraTags": d.extra_tags,
                            "imageMaps": [im],
                            "cluster": cluster,
                            "clusterNeeds": needs,
                            "extraHosts": d.extra_hosts,
                        }),
                    ));
                }
                ImageBuild::Custom(c) => {
                    let mode = if c.skips_local_docker {
                        "remote"
                    } else if c.disable_push {
                        "local-docker"
                    } else {
                        "local-docker-and-remote"
                    };
                    // The image maps of `image_deps`, in order, for $TILT_IMAGE_i (Tilt lists
                    // them in spec.imageMaps; Stilt's spec.imageMaps names the build's own map).
                    let dep_maps = t
                        .image_deps
                        .iter()
                        .filter_map(|d| {
                            st.images
                                .iter()
                                .find(|b| !std::ptr::eq(*b, t) && image_matches(b, d))
                        })
                        .map(image_map_name)
                        .collect::<Vec<_>>()
                        .join(",");
                    let span = format!("cmdimage:{build_name}");
                    let mut anns = vec![
                        (ANNOTATION_MANIFEST, m),
                        (ANNOTATION_SPAN_ID, span.as_str()),
                    ];
                    if !dep_maps.is_empty() {
                        anns.push((ANNOTATION_IMAGE_DEPS, dep_maps.as_str()));
                    }
                    out.push(with_spec(
                        object("CmdImage", &build_name, &anns),
                        json!({
                            "ref": t.ref_str,
                            "args": c.args,
                            "dir": c.dir.display().to_string(),
                            "env": c.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                            "imageMaps": [im],
                            "outputMode": mode,
                            "outputTag": c.tag,
                            "outputsImageRefTo": c.outputs_image_ref_to,
                            "cluster": cluster,
                            "clusterNeeds": needs,
                        }),
                    ));
                    // The Cmd that runs the build (Tilt creates it beside the CmdImage).
                    out.push(with_spec(
                        object(
                            "Cmd",
                            &build_name,
                            &[
                                (ANNOTATION_MANIFEST, m),
                                (ANNOTATION_SPAN_ID, &format!("cmdimage:{build_name}")),
                                (ANNOTATION_MANAGED_BY, "cmd_image"),
                            ],
                        ),
                        json!({"args": c.args, "dir": c.dir.display().to_string()}),
                    ));
                }
            }
            image_maps.push(im.clone());
            if deployed.contains(&ti) {
                deployed_maps.push(im.clone());
            }
        }
        // LiveUpdate for deployed images.
        if deployed.contains(&ti) && !t.live_update.is_empty() {
            emit_live_update(st, r, t, ti, &im, trigger_mode, out)?;
        }
    }

    // Custom-deploy live update (image_selector / container_selector without a built image).
    if let Some(ci) = r.custom_deploy {
        let cd = &st.custom_deploys[ci];
        if !cd.live_update.is_empty() {
            let base = &cd.live_update.base_path;
            let sel = if !cd.container_selector.is_empty() {
                json!({"kubernetes": {"discoveryName": m, "applyName": m, "containerName": cd.container_selector}})
            } else {
                json!({"kubernetes": {"discoveryName": m, "applyName": m, "image": cd.image_selector}})
            };
            let fw = format!("k8s:{m}");
            let name = format!(
                "{m}:{}",
                sanitize_name(if cd.container_selector.is_empty() {
                    &cd.image_selector
                } else {
                    &cd.container_selector
                })
            );
            let spec = lu_spec(
                &cd.live_update,
                base,
                sel,
                json!([{"fileWatch": sanitize_name(&fw)}]),
                r.kind.clone(),
                &format!("k8s_custom_deploy {m:?}"),
            )?;
            out.push(with_spec(
                object(
                    "LiveUpdate",
                    &name,
                    &[
                        (ANNOTATION_MANIFEST, m),
                        (ANNOTATION_SPAN_ID, &format!("liveupdate:{name}")),
                        (ANNOTATION_UPDATE_MODE, trigger_str(trigger_mode)),
                    ],
                ),
                spec,
            ));
        }
    }

    match r.kind {
        ResourceType::K8s => emit_k8s(st, r, input, &deployed_maps, &ds, global_ignores, out)?,
        ResourceType::Local => emit_local(st, r, &ds, global_ignores, input, out),
        ResourceType::Syncback => emit_syncback(st, r, out),
        ResourceType::DockerCompose => {
            let (pi, svc) = r.dc.clone().unwrap();
            let p = &st.dc_projects[pi];
            // A `build:` no Tiltfile image covers: Compose builds it (Tilt's
            // DockerComposeBuild image target): an ImageMap without a DockerImage, and a
            // FileWatch on the context so edits rebuild.
            if deployed_maps.is_empty()
                && let Some(b) = p.builds.get(&svc)
            {
                let im = sanitize_name(&b.image);
                let context = b.context.display().to_string();
                if input.watch {
                    let mut ignores = vec![];
                    if !b.dockerignore.is_empty() {
                        ignores.push(json!({"basePath": context, "patterns": b.dockerignore}));
                    }
                    for v in &b.volume_sources {
                        ignores.push(json!({"basePath": v.display().to_string()}));
                    }
                    ignores.extend(global_ignores.iter().cloned());
                    out.push(with_spec(
                        object(
                            "FileWatch",
                            &sanitize_name(&format!("image:{}", b.image)),
                            &[
                                (ANNOTATION_MANIFEST, m),
                                (ANNOTATION_TARGET_ID, &format!("image:{im}")),
                            ],
                        ),
                        json!({"watchedPaths": [context], "ignores": ignores, "disableSource": ds}),
                    ));
                }
                let tagged = b.image.rsplit('/').next().is_some_and(|l| l.contains(':'));
                out.push(with_spec(
                    object(
                        "ImageMap",
                        &im,
                        &[
                            (ANNOTATION_MANIFEST, m),
                            (ANNOTATION_SPAN_ID, &format!("imagemap:{im}")),
                        ],
                    ),
                    json!({"selector": b.image, "matchExact": tagged, "matchInEnvVars": false}),
                ));
                image_maps.push(im.clone());
                deployed_maps.push(im);
            }
            out.push(with_spec(
                object("DockerComposeService", m, &[(ANNOTATION_MANIFEST, m), (ANNOTATION_SPAN_ID, &format!("dockercompose:{m}")), (ANNOTATION_MANAGED_BY, "buildcontrol")]),
                json!({
                    "service": svc,
                    "project": {
                        "configPaths": p.config_paths.iter().map(|c| c.display().to_string()).collect::<Vec<_>>(),
                        "projectPath": p.project_path.display().to_string(),
                        "yaml": p.yaml,
                        "name": p.name,
                        "envFile": p.env_file,
                        "profiles": p.profiles,
                        "wait": p.wait,
                    },
                    "imageMaps": deployed_maps,
                    "disableSource": ds,
                }),
            ));
            let infer = r
                .dc_opts
                .as_ref()
                .and_then(|o| o.infer_links)
                .unwrap_or(true);
            // Tilt's links: the published ports first (each once), then the user's links.
            if infer && let Some((_, def)) = p.services.iter().find(|(n, _)| n == &svc) {
                let inferred = crate::builtins::compose_model::published_ports(def)
                    .into_iter()
                    .map(|port| Link {
                        url: format!("http://localhost:{port}/"),
                        name: String::new(),
                    });
                links = inferred.chain(links).collect();
            }
        }
    }

    // Disable ConfigMap + ToggleButton, stop button, UIResource.
    let mut cm = object("ConfigMap", &format!("{m}-disable"), &[]);
    cm["data"] = json!({"isDisabled": if enabled { "false" } else { "true" }});
    out.push(cm);
    out.push(with_spec(
        object("ToggleButton", &format!("{m}-disable"), &[(ANNOTATION_BUTTON_TYPE, "DisableToggle")]),
        json!({
            "location": {"componentID": m, "componentType": "Resource"},
            "on": {"text": "Enable Resource"},
            "off": {"text": "Disable Resource", "requiresConfirmation": true},
            "stateSource": {"configMap": {"name": format!("{m}-disable"), "key": "isDisabled", "onValue": "true", "offValue": "false"}},
        }),
    ));
    out.push(stop_button(m));
    let label_map: BTreeMap<String, String> =
        labels.iter().map(|l| (l.clone(), l.clone())).collect();
    let mut ui = object("UIResource", m, &[(ANNOTATION_MANIFEST, m)]);
    set_labels(&mut ui, &label_map);
    ui["status"] = json!({"disableStatus": {"state": "Pending", "sources": [ds.clone()]}});
    out.push(ui);

    Ok(ResourceInfo {
        name: m.to_owned(),
        kind: r.kind.clone(),
        trigger_mode: trigger_str(trigger_mode).into(),
        auto_init,
        resource_deps: deps,
        labels,
        links: links.into_iter().map(|l| (l.url, l.name)).collect(),
        pod_readiness: if r.kind == ResourceType::K8s {
            r.pod_readiness.clone()
        } else {
            String::new()
        },
        image_maps,
        allow_parallel,
        enabled,
    })
}

fn lu_spec(
    lu: &LiveUpdate,
    base: &Path,
    selector: Json,
    sources: Json,
    kind: ResourceType,
    what: &str,
) -> anyhow::Result<Json> {
    let mut syncs = vec![];
    let mut execs = vec![];
    let mut stops = vec![];
    let mut restart = "";
    let mut initial = false;
    for s in &lu.steps {
        match s {
            LuStep::InitialSync => initial = true,
            LuStep::FallBackOn(ps) => stops.extend(ps.iter().map(|p| rel(base, p))),
            LuStep::Sync { local, remote } => {
                syncs.push(json!({"localPath": rel(base, local), "containerPath": remote}))
            }
            LuStep::Run {
                args,
                triggers,
                echo_off,
            } => execs.push(json!({
                "args": args,
                "triggerPaths": triggers.iter().map(|p| rel(base, p)).collect::<Vec<_>>(),
                "echoOff": echo_off,
            })),
            LuStep::Restart => {
                if kind == ResourceType::K8s {
                    bail!(
                        "{what}: For K8s live_update, restart_container() is obsolete. Use the restart_process extension instead: https://github.com/tilt-dev/tilt-extensions/tree/master/restart_process"
                    );
                }
                restart = "always";
            }
        }
    }
    let mut spec = json!({
        "basePath": base.display().to_string(),
        "selector": selector,
        "sources": sources,
        "stopPaths": stops,
        "syncs": syncs,
        "execs": execs,
        "restart": restart,
    });
    if initial {
        spec["initialSync"] = json!({});
    }
    Ok(spec)
}

fn emit_live_update(
    st: &State,
    r: &Res,
    t: &ImageTarget,
    ti: usize,
    im: &str,
    trigger_mode: TriggerMode,
    out: &mut Objects,
) -> anyhow::Result<()> {
    let m = r.name.as_str();
    let name = format!("{m}:{im}");
    let selector = match r.kind {
        ResourceType::DockerCompose => {
            json!({"dockerCompose": {"service": r.dc.as_ref().map(|d| d.1.clone()).unwrap_or_default()}})
        }
        _ if t.live_update_only => {
            json!({"kubernetes": {"discoveryName": m, "applyName": m, "image": t.ref_str}})
        }
        _ => json!({"kubernetes": {"discoveryName": m, "applyName": m, "imageMapName": im}}),
    };
    // Sources: the base images' watches first (dependency order), then this image's, as Tilt.
    let mut order = vec![];
    push_with_bases(st, ti, &mut order, 0);
    let sources: Vec<Json> = order
        .into_iter()
        .map(|i| {
            let b = &st.images[i];
            let mut src = json!({"fileWatch": sanitize_name(&format!("image:{}", b.ref_str))});
            if !b.live_update_only {
                src["imageMap"] = json!(image_map_name(b));
            }
            src
        })
        .collect();
    let spec = lu_spec(
        &t.live_update,
        &t.live_update.base_path,
        selector,
        Json::Array(sources),
        r.kind.clone(),
        &format!("live_update of image {:?} (resource {m:?})", t.ref_str),
    )?;
    out.push(with_spec(
        object(
            "LiveUpdate",
            &name,
            &[
                (ANNOTATION_MANIFEST, m),
                (ANNOTATION_SPAN_ID, &format!("liveupdate:{name}")),
                (ANNOTATION_UPDATE_MODE, trigger_str(trigger_mode)),
            ],
        ),
        spec,
    ));
    Ok(())
}

fn emit_k8s(
    st: &State,
    r: &Res,
    input: &AssembleInput,
    image_maps: &[String],
    ds: &Json,
    global_ignores: &[Json],
    out: &mut Objects,
) -> anyhow::Result<()> {
    let m = r.name.as_str();
    let forwards: Vec<Json> = r
        .opts
        .port_forwards
        .iter()
        .map(|p| json!({"localPort": p.local_port, "containerPort": p.container_port, "host": p.host, "name": p.name, "path": p.path}))
        .collect();
    let mut spec = json!({
        "imageMaps": image_maps,
        "timeout": format!("{}s", st.settings.k8s_upsert_timeout_secs),
        "discoveryStrategy": r.opts.discovery_strategy,
        "disableSource": ds,
        "cluster": "default",
    });
    // Tilt: only "true" applies server-side; "auto" and "false" are client-side.
    if st.settings.k8s_server_side_apply == "true" {
        spec["serverSideApply"] = json!(true);
    }
    if !r.opts.extra_pod_selectors.is_empty() {
        spec["kubernetesDiscoveryTemplateSpec"] = json!({
            "extraSelectors": r.opts.extra_pod_selectors.iter().map(|s| json!({"matchLabels": s})).collect::<Vec<_>>()
        });
    }
    if !forwards.is_empty() {
        spec["portForwardTemplateSpec"] = json!({"forwards": forwards});
    }
    let mut pls =
        json!({"ignoreContainers": ["istio-init", "istio-proxy", "linkerd-proxy", "linkerd-init"]});
    if let Some(t) = &input.since_time {
        pls["sinceTime"] = json!(t);
    }
    spec["podLogStreamTemplateSpec"] = pls;
    // Image locators from k8s_kind.
    let mut locators = vec![];
    for k in &st.k8s_kinds {
        if !r.entities.iter().any(|e| kind_matches(k, e)) {
            continue;
        }
        let mut sel = serde_json::Map::new();
        for (key, re) in [
            ("apiVersionRegexp", &k.api_version_re),
            ("kindRegexp", &k.kind_re),
            ("nameRegexp", &k.name_re),
            ("namespaceRegexp", &k.namespace_re),
        ] {
            if !re.is_empty() {
                sel.insert(key.into(), json!(re));
            }
        }
        let sel = Json::Object(sel);
        for p in &k.image_json_paths {
            locators.push(json!({"objectSelector": sel, "path": p}));
        }
        if let Some((p, repo, tag)) = &k.image_object {
            locators.push(json!({"objectSelector": sel, "path": p, "object": {"repoField": repo, "tagField": tag}}));
        }
    }
    if !locators.is_empty() {
        spec["imageLocators"] = json!(locators);
    }
    if let Some(ci) = r.custom_deploy {
        let cd = &st.custom_deploys[ci];
        let env = |e: &[(String, String)]| {
            e.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        spec["applyCmd"] = json!({"args": cd.apply_cmd, "dir": cd.apply_dir.display().to_string(), "env": env(&cd.apply_env)});
        spec["deleteCmd"] = json!({"args": cd.delete_cmd, "dir": cd.delete_dir.display().to_string(), "env": env(&cd.delete_env)});
        if !cd.deps.is_empty() {
            let fw = sanitize_name(&format!("k8s:{m}"));
            spec["restartOn"] = json!({"fileWatches": [fw]});
            if input.watch {
                let mut ig = vec![];
                ig.extend(global_ignores.iter().cloned());
                out.push(with_spec(
                    object("FileWatch", &fw, &[(ANNOTATION_MANIFEST, m), (ANNOTATION_TARGET_ID, &format!("k8s:{m}"))]),
                    json!({"watchedPaths": cd.deps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(), "ignores": ig, "disableSource": ds}),
                ));
            }
        }
    } else {
        let docs: Vec<Json> = sorted_entities(&r.entities)
            .into_iter()
            .map(|e| e.obj.clone())
            .collect();
        spec["yaml"] = json!(
            crate::yaml::encode_stream(&docs)
                .map_err(|e| anyhow!("serializing YAML for {m}: {e}"))?
        );
    }
    out.push(with_spec(
        object(
            "KubernetesApply",
            m,
            &[
                (ANNOTATION_MANIFEST, m),
                (ANNOTATION_SPAN_ID, &format!("kubernetesapply:{m}")),
                (ANNOTATION_MANAGED_BY, "buildcontrol"),
            ],
        ),
        spec,
    ));
    Ok(())
}

fn probe_json(p: &ProbeSpec) -> Json {
    json!({
        "handler": p.handler,
        "initialDelaySeconds": p.initial_delay_seconds,
        "timeoutSeconds": p.timeout_seconds,
        "periodSeconds": p.period_seconds,
        "successThreshold": p.success_threshold,
        "failureThreshold": p.failure_threshold,
    })
}

fn emit_syncback(st: &State, r: &Res, out: &mut Objects) {
    let sb = &st.syncbacks[r.syncback.unwrap()];
    let m = r.name.as_str();
    let source = match &sb.from {
        SyncbackFrom::Kubernetes {
            object,
            namespace,
            container,
        } => {
            json!({"kubernetes": {"object": object, "namespace": namespace, "container": container}})
        }
        SyncbackFrom::DockerCompose { service } => {
            json!({"dockerCompose": {"service": service}})
        }
    };
    out.push(with_spec(
        object(
            "Syncback",
            m,
            &[
                (ANNOTATION_MANIFEST, m),
                (ANNOTATION_SPAN_ID, &format!("syncback:{m}")),
                (ANNOTATION_MANAGED_BY, "buildcontrol"),
            ],
        ),
        json!({
            "source": source,
            "srcDir": sb.src_dir,
            "targetDir": sb.target_dir.display().to_string(),
            "paths": sb.paths,
            "ignores": sb.ignores,
            "delete": sb.delete,
            "dryRun": sb.dry_run,
            "intervalSeconds": sb.interval_seconds,
            "protected": crate::builtins::syncback::PROTECTED,
        }),
    ));
}

fn emit_local(
    st: &State,
    r: &Res,
    ds: &Json,
    global_ignores: &[Json],
    input: &AssembleInput,
    out: &mut Objects,
) {
    let l = &st.local_resources[r.local.unwrap()];
    let m = r.name.as_str();
    let env = |e: &[(String, String)]| {
        input
            .putenv
            .iter()
            .filter(|(k, _)| !e.iter().any(|(ek, _)| ek == k))
            .chain(e.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    let fw_name = sanitize_name(&format!("local:{m}"));
    if !l.deps.is_empty() && input.watch {
        let mut ignores = vec![];
        if !l.ignores.is_empty() {
            ignores.push(
                json!({"basePath": l.tiltfile_dir.display().to_string(), "patterns": l.ignores}),
            );
        }
        ignores.extend(git_ignores(&l.repo_roots));
        ignores.extend(global_ignores.iter().cloned());
        out.push(with_spec(
            object("FileWatch", &fw_name, &[(ANNOTATION_MANIFEST, m), (ANNOTATION_TARGET_ID, &format!("local:{m}"))]),
            json!({"watchedPaths": l.deps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(), "ignores": ignores, "disableSource": ds}),
        ));
    }
    if !l.cmd.is_empty() {
        let name = format!("{m}:update");
        out.push(with_spec(
            object("Cmd", &name, &[(ANNOTATION_MANIFEST, m), (ANNOTATION_SPAN_ID, &format!("cmd:{name}")), (ANNOTATION_MANAGED_BY, "local_resource")]),
            json!({"args": l.cmd, "dir": l.dir.display().to_string(), "env": env(&l.env), "disableSource": ds}),
        ));
    }
    if !l.serve_cmd.is_empty() {
        let name = format!("{m}:serve");
        let mut spec = json!({"args": l.serve_cmd, "dir": l.serve_dir.display().to_string(), "env": env(&l.serve_env), "disableSource": ds});
        if let Some(p) = &l.readiness_probe {
            spec["readinessProbe"] = probe_json(p);
        }
        out.push(with_spec(
            object(
                "Cmd",
                &name,
                &[
                    (ANNOTATION_MANIFEST, m),
                    (ANNOTATION_SPAN_ID, &format!("cmd:{name}")),
                    (ANNOTATION_MANAGED_BY, "local_resource"),
                    (ANNOTATION_OWNER_KIND, "CmdServer"),
                ],
            ),
            spec,
        ));
    }
}
