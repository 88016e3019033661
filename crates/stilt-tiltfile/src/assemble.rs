//! Assembly: turn what the Tiltfile declared (model::State) into resources ("manifests") the way
//! Tilt's loader does (§1.14), then into API objects (§2.1).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use anyhow::bail;
use serde_json::Value as Json;
use serde_json::json;
use stilt_api::ClusterConnection;
use stilt_api::ClusterSpec;
use stilt_api::CmdImageSpec;
use stilt_api::CmdSpec;
use stilt_api::ConfigMap;
use stilt_api::ConfigMapStateSource;
use stilt_api::DISABLE_KEY;
use stilt_api::DisableResourceStatus;
use stilt_api::DisableSource;
use stilt_api::DockerClusterConnection;
use stilt_api::DockerComposeProject;
use stilt_api::DockerComposeServiceSpec;
use stilt_api::DockerImageSpec;
use stilt_api::EXIT_CONDITION_CI;
use stilt_api::EXIT_CONDITION_MANUAL;
use stilt_api::ExtensionRepoSpec;
use stilt_api::ExtensionSpec;
use stilt_api::FileWatchSpec;
use stilt_api::Forward;
use stilt_api::IgnoreDef;
use stilt_api::ImageMapOverrideArgs;
use stilt_api::ImageMapOverrideCommand;
use stilt_api::ImageMapSpec;
use stilt_api::KubernetesApplyCmd;
use stilt_api::KubernetesApplySpec;
use stilt_api::KubernetesClusterConnection;
use stilt_api::KubernetesDiscoveryTemplateSpec;
use stilt_api::KubernetesImageLocator;
use stilt_api::KubernetesImageObjectDescriptor;
use stilt_api::LIVE_UPDATE_RESTART_ALWAYS;
use stilt_api::LabelSelector;
use stilt_api::LiveUpdateDockerComposeSelector;
use stilt_api::LiveUpdateExec;
use stilt_api::LiveUpdateInitialSync;
use stilt_api::LiveUpdateKubernetesSelector;
use stilt_api::LiveUpdateSelector;
use stilt_api::LiveUpdateSource;
use stilt_api::LiveUpdateSpec;
use stilt_api::LiveUpdateSync;
use stilt_api::ObjectSelector;
use stilt_api::PodLogStreamTemplateSpec;
use stilt_api::PortForwardTemplateSpec;
use stilt_api::RegistryHosting;
use stilt_api::RestartOnSpec;
use stilt_api::SessionCISpec;
use stilt_api::SessionSpec;
use stilt_api::StateSource;
use stilt_api::SyncbackDockerComposeSource;
use stilt_api::SyncbackKubernetesSource;
use stilt_api::SyncbackSource;
use stilt_api::SyncbackSpec;
use stilt_api::ToggleButtonSpec;
use stilt_api::ToggleButtonStateSpec;
use stilt_api::UIButtonSpec;
use stilt_api::UIComponentLocation;
use stilt_api::UIResourceStatus;

use crate::model::*;
use crate::objects::*;
use stilt_api::{
    ANNOTATION_BUTTON_TYPE, ANNOTATION_IMAGE_DEPS, ANNOTATION_LOG_SPAN_ID, ANNOTATION_MANAGED_BY,
    ANNOTATION_OWNER_KIND, ANNOTATION_RESOURCE, ANNOTATION_TARGET_ID, ANNOTATION_UPDATE_MODE,
};
use stilt_api::{Manifest, ResourceType};

pub const TILTFILE_MANIFEST: &str = "(Tiltfile)";
pub const UNCATEGORIZED: &str = "uncategorized";

/// A resource being assembled: what the Tiltfile declared for it, before it becomes its
/// [`Manifest`] and API objects.
struct ManifestDraft {
    name: String,
    kind: ResourceType,
    /// Shared with the assembly's list of all entities: a resource's are a selection of them.
    entities: Vec<Arc<K8sEntity>>,
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

impl ManifestDraft {
    fn new(name: String, kind: ResourceType) -> Self {
        ManifestDraft {
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

/// The FileWatch named after `target_id` (`k8s:<resource>`, `local:<resource>`) on a
/// resource's `deps`.
fn deps_watch(
    manifest: &str,
    target_id: &str,
    deps: &[PathBuf],
    ignores: Vec<IgnoreDef>,
    ds: &DisableSource,
) -> stilt_api::FileWatch {
    annotated(
        stilt_api::FileWatch::new(
            sanitize_name(target_id),
            FileWatchSpec {
                watched_paths: deps.iter().map(|p| p.display().to_string()).collect(),
                ignores,
                disable_source: Some(ds.clone()),
            },
        ),
        &[
            (ANNOTATION_RESOURCE, manifest),
            (ANNOTATION_TARGET_ID, target_id),
        ],
    )
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
    crate::objects::at(obj, &["spec", "template", "spec"])
        .or_else(|| crate::objects::at(obj, &["spec", "jobTemplate", "spec", "template", "spec"]))
}

fn pod_template_labels(obj: &Json) -> BTreeMap<String, String> {
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let l = if kind == "Pod" {
        crate::objects::at(obj, &["metadata", "labels"])
    } else {
        crate::objects::at(obj, &["spec", "template", "metadata", "labels"]).or_else(|| {
            crate::objects::at(
                obj,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "metadata",
                    "labels",
                ],
            )
        })
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
            if let Some(r) = crate::objects::at(v, &["image", "reference"]).and_then(|r| r.as_str())
            {
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
fn entity_images(st: &State, index: &ImageIndex, e: &K8sEntity) -> Vec<usize> {
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
    let mut out: Vec<usize> = refs.iter().flat_map(|r| index.matching(st, r)).collect();
    if index.any_in_env_vars {
        out.extend(
            split(&envs)
                .iter()
                .flat_map(|r| index.matching(st, r))
                .filter(|&i| st.images[i].match_in_env_vars),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The image targets by familiar name, so matching an entity's image references costs a lookup
/// per reference rather than a pass over every target.
struct ImageIndex {
    by_name: std::collections::HashMap<String, Vec<usize>>,
    any_in_env_vars: bool,
}

impl ImageIndex {
    fn new(images: &[ImageTarget]) -> Self {
        let mut by_name: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, t) in images.iter().enumerate() {
            by_name.entry(t.name.clone()).or_default().push(i);
        }
        ImageIndex {
            by_name,
            any_in_env_vars: images.iter().any(|t| t.match_in_env_vars),
        }
    }

    /// The targets (indices into `st.images`) an image reference, split by [`split_image`], names.
    fn matching<'a>(
        &'a self,
        st: &'a State,
        r: &'a (String, String),
    ) -> impl Iterator<Item = usize> + 'a {
        self.by_name
            .get(&r.0)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&i| split_matches(&st.images[i], r))
    }
}

/// Which resources' pod templates carry each label, so a Service finds the workloads its
/// selector may match without testing every resource.
struct LabelIndex<'a> {
    /// label key → label value → resources.
    by_label: std::collections::HashMap<&'a str, std::collections::HashMap<&'a str, Vec<usize>>>,
}

impl<'a> LabelIndex<'a> {
    fn new(template_labels: &'a [Vec<BTreeMap<String, String>>]) -> Self {
        let mut by_label: std::collections::HashMap<
            &str,
            std::collections::HashMap<&str, Vec<usize>>,
        > = Default::default();
        for (ri, sets) in template_labels.iter().enumerate() {
            for (k, v) in sets.iter().flatten() {
                let rs = by_label
                    .entry(k.as_str())
                    .or_default()
                    .entry(v.as_str())
                    .or_default();
                if rs.last() != Some(&ri) {
                    rs.push(ri);
                }
            }
        }
        LabelIndex { by_label }
    }

    /// The resources (ascending) whose templates may match `sel`: those carrying its first
    /// label, or all of them when that label's value is not a string (see [`selector_matches`]).
    fn candidates(
        &self,
        sel: &serde_json::Map<String, Json>,
        resources: usize,
    ) -> Box<dyn Iterator<Item = usize> + '_> {
        match sel.iter().next() {
            Some((k, Json::String(v))) => {
                let found: &[usize] = self
                    .by_label
                    .get(k.as_str())
                    .and_then(|vs| vs.get(v.as_str()))
                    .map_or(&[], Vec::as_slice);
                Box::new(found.iter().copied())
            }
            _ => Box::new(0..resources),
        }
    }
}

fn is_workload(st: &State, images: &[usize], e: &K8sEntity) -> bool {
    pod_spec(&e.obj).is_some()
        || !images.is_empty()
        || st.k8s_kinds.iter().any(|k| kind_matches(k, e))
}

/// Each entity's images ([`entity_images`]), found once: a workload's are needed to tell it is
/// one, to give its resource its images and to order its builds.
struct EntityImages {
    by_entity: std::collections::HashMap<*const K8sEntity, Vec<usize>>,
}

impl EntityImages {
    fn new(st: &State, entities: &[Arc<K8sEntity>]) -> Self {
        let index = ImageIndex::new(&st.images);
        EntityImages {
            by_entity: entities
                .iter()
                .map(|e| (Arc::as_ptr(e), entity_images(st, &index, e)))
                .collect(),
        }
    }

    fn of(&self, e: &Arc<K8sEntity>) -> &[usize] {
        self.by_entity
            .get(&Arc::as_ptr(e))
            .map_or(&[], Vec::as_slice)
    }
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
        crate::objects::at(&e.obj, &["spec", "selector"])
    } else {
        crate::objects::at(&e.obj, &["spec", "selector", "matchLabels"])
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
    /// Every object, strictly decoded, or the first that failed to decode.
    pub objects: Result<Vec<stilt_api::AnyObject>, crate::Failure>,
    pub resources: Vec<Manifest>,
}

/// Callback naming auto-assembled workloads (workload_to_resource_function).
pub(crate) type NameFn<'a> = dyn FnMut(&K8sEntity) -> anyhow::Result<String> + 'a;

pub(crate) struct AssembleInput<'a> {
    pub main_path: &'a Path,
    pub args: &'a [String],
    pub k8s_context: String,
    pub k8s_namespace: String,
    pub k8s_cluster: String,
    pub since_time: Option<stilt_api::Time>,
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
    let entities: Vec<Arc<K8sEntity>> = std::mem::take(&mut st.k8s)
        .into_iter()
        .map(Arc::new)
        .collect();
    let entity_images = EntityImages::new(st, &entities);
    let workload_idx: Vec<usize> = (0..entities.len())
        .filter(|&i| is_workload(st, entity_images.of(&entities[i]), &entities[i]))
        .collect();
    let wl_refs: Vec<&K8sEntity> = workload_idx.iter().map(|&i| &*entities[i]).collect();
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
    let mut k8s_res: Vec<ManifestDraft> = vec![];
    for (wi, &ei) in workload_idx.iter().enumerate() {
        let e = &entities[ei];
        let mut r = ManifestDraft::new(names[wi].clone(), ResourceType::K8s);
        r.images = entity_images.of(e).to_vec();
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
        r.entities.push(Arc::clone(e));
        assigned[ei] = true;
        k8s_res.push(r);
    }
    // Custom deploys are k8s resources too (configurable by k8s_resource).
    for (ci, cd) in st.custom_deploys.iter().enumerate() {
        let mut r = ManifestDraft::new(cd.name.clone(), ResourceType::K8s);
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
                    let mut r = ManifestDraft::new(opts.workload.clone(), ResourceType::K8s);
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
                    let mut r = ManifestDraft::new(opts.new_name.clone(), ResourceType::K8s);
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
                    let e = Arc::clone(&entities[free[0]]);
                    for &im in entity_images.of(&e) {
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
    let by_label = LabelIndex::new(&template_labels);
    for i in 0..entities.len() {
        if assigned[i] {
            continue;
        }
        let Some(sel) = entity_selector(&entities[i]) else {
            continue;
        };
        let hit = by_label.candidates(sel, k8s_res.len()).find(|&ri| {
            template_labels[ri]
                .iter()
                .any(|labels| selector_matches(sel, labels))
        });
        if let Some(ri) = hit {
            k8s_res[ri].entities.push(Arc::clone(&entities[i]));
            assigned[i] = true;
        }
    }
    let leftovers: Vec<Arc<K8sEntity>> = (0..entities.len())
        .filter(|&i| !assigned[i])
        .map(|i| Arc::clone(&entities[i]))
        .collect();
    if !leftovers.is_empty() {
        let mut r = ManifestDraft::new(UNCATEGORIZED.into(), ResourceType::K8s);
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
    let mut dc_res: Vec<ManifestDraft> = vec![];
    for (pi, p) in st.dc_projects.iter().enumerate() {
        for (svc, def) in &p.services {
            let mut r = ManifestDraft::new(svc.clone(), ResourceType::DockerCompose);
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
                && let img = split_image(img)
                && let Some(i) = st.images.iter().position(|t| split_matches(t, &img))
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
    let mut local_res: Vec<ManifestDraft> = vec![];
    for (i, l) in st.local_resources.iter().enumerate() {
        let mut r = ManifestDraft::new(l.name.clone(), ResourceType::Local);
        r.local = Some(i);
        r.call_site = Some(l.call_site.clone());
        local_res.push(r);
    }

    // ---- syncbacks (in place among local resources, as the extension's local_resource was) ---
    let mut local_res = local_res.into_iter().map(Some).collect::<Vec<_>>();
    let mut local_like: Vec<ManifestDraft> = vec![];
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
        let mut r = ManifestDraft::new(sb.name.clone(), ResourceType::Syncback);
        r.syncback = Some(i);
        r.call_site = Some(sb.call_site.clone());
        local_like.push(r);
    }
    local_like.extend(local_res.into_iter().flatten());

    let mut all: Vec<ManifestDraft> = vec![];
    all.extend(k8s_res);
    all.extend(dc_res);
    all.extend(local_like);

    // Name conflicts across kinds.
    let mut seen: BTreeMap<String, ResourceType> = BTreeMap::new();
    for r in &all {
        if let Some(prev) = seen.insert(r.name.clone(), r.kind) {
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
    let mut out = Objects::for_resources(all.len());
    let mut infos = vec![];
    let global_ignores = global_ignores(st, &all);
    for r in &all {
        let is_enabled =
            enabled.contains(&r.name) || (r.name == UNCATEGORIZED && !enabled.is_empty());
        infos.push(emit_resource(
            st,
            &entity_images,
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
            (ANNOTATION_RESOURCE, TILTFILE_MANIFEST),
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
        FileWatchSpec {
            watched_paths: paths,
            ignores: global_ignores,
            ..Default::default()
        },
    );
    if input.watch {
        out.push(cfg);
    }
    // (Tiltfile) UIResource and its stop button.
    // The `(Tiltfile)` UIResource exists before any load: the Tiltfile reconciler creates it.
    // Clusters.
    if all.iter().any(|r| r.kind == ResourceType::K8s) {
        let spec = ClusterSpec {
            connection: Some(ClusterConnection {
                kubernetes: Some(KubernetesClusterConnection {
                    context: input.k8s_context.clone(),
                    namespace: input.k8s_namespace.clone(),
                }),
                ..Default::default()
            }),
            // Tilt: host_from_cluster is where the container runtime pulls from.
            default_registry: st
                .settings
                .default_registry
                .as_ref()
                .map(|dr| RegistryHosting {
                    host: dr.host.clone(),
                    host_from_container_runtime: dr.host_from_cluster.clone(),
                    single_name: dr.single_name.clone(),
                    ..Default::default()
                }),
        };
        out.push(with_spec(object("Cluster", "default", &[]), spec));
    }
    if all.iter().any(|r| r.kind == ResourceType::DockerCompose) {
        // Set as is, not through `with_spec`: the empty `docker` connection must stay.
        let mut c = object("Cluster", "docker", &[]);
        c["spec"] = to_json(ClusterSpec {
            connection: Some(ClusterConnection {
                docker: Some(DockerClusterConnection::default()),
                ..Default::default()
            }),
            ..Default::default()
        });
        out.push(c);
    }
    // Session `Tiltfile` (exit condition and CI settings).
    let ci = input.subcommand == "ci";
    let session = SessionSpec {
        tiltfile_path: input.main_path.display().to_string(),
        exit_condition: if ci {
            EXIT_CONDITION_CI
        } else {
            EXIT_CONDITION_MANUAL
        }
        .to_owned(),
        ci: ci.then(|| SessionCISpec {
            k8s_grace_period: non_empty(&st.settings.ci_k8s_grace_period),
            timeout: non_empty(&st.settings.ci_timeout),
            readiness_timeout: non_empty(&st.settings.ci_readiness_timeout),
        }),
    };
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
            (ANNOTATION_RESOURCE, TILTFILE_MANIFEST),
            (ANNOTATION_MANAGED_BY, "tiltfile.loader"),
        ];
        if builtin_only {
            annotations.push((crate::builtins::extensions::ANN_BUILTIN_ONLY, "true"));
        }
        out.push(with_spec(
            object("ExtensionRepo", name, &annotations),
            ExtensionRepoSpec {
                url: r.url.clone(),
                load_host: r.load_host.clone(),
                ..Default::default()
            },
        ));
    }
    for (name, repo, path) in &st.extensions {
        let mut annotations = vec![
            (ANNOTATION_RESOURCE, TILTFILE_MANIFEST),
            (ANNOTATION_MANAGED_BY, "tiltfile.loader"),
        ];
        if crate::builtins::extensions::is_native(path) {
            annotations.push((crate::builtins::extensions::ANN_BUILTIN, "true"));
        }
        out.push(with_spec(
            object("Extension", name, &annotations),
            ExtensionSpec {
                repo_name: repo.clone(),
                repo_path: path.clone(),
                ..Default::default()
            },
        ));
    }
    for o in &st.raw_objects {
        out.push(o.clone());
    }
    crate::drop_later::drop_later((entities, all));
    Ok(Assembled {
        objects: out.decoded,
        resources: infos,
    })
}

/// Appends image `i` after the Tilt-built images it builds FROM (depth-first, each once).
fn push_with_bases(st: &State, i: usize, out: &mut Vec<usize>, depth: usize) {
    if out.contains(&i) || depth > st.images.len() {
        return;
    }
    for dep in &st.images[i].image_deps {
        // Parsed once, not once per image compared (1,000 images made this quadratic).
        let dep = split_image(dep);
        if let Some(bi) = st.images.iter().position(|b| split_matches(b, &dep))
            && bi != i
        {
            push_with_bases(st, bi, out, depth + 1);
        }
    }
    if !out.contains(&i) {
        out.push(i);
    }
}

fn deps_of(st: &State, r: &ManifestDraft) -> Vec<String> {
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

fn closure(st: &State, all: &[ManifestDraft], roots: &[String]) -> BTreeSet<String> {
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

fn global_ignores(st: &State, all: &[ManifestDraft]) -> Vec<IgnoreDef> {
    let mut out = vec![];
    if let Some((dir, pats)) = &st.tiltignore
        && !pats.is_empty()
    {
        out.push(ignore_patterns(dir, pats));
    }
    for (dir, pats) in &st.watch_ignores {
        out.push(ignore_patterns(dir, pats));
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
            out.push(IgnoreDef {
                base_path: p
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                patterns: vec![
                    p.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ],
            });
        }
    }
    out
}

/// The assembled objects, each (kind, name) once (the first pushed wins), decoded as they come:
/// a fresh object is still in the cache, and walking 1,800 of them again after the assembly was
/// a fifth of it.
struct Objects {
    /// `kind/name` of every object pushed.
    seen: std::collections::HashSet<String>,
    decoded: Result<Vec<stilt_api::AnyObject>, crate::Failure>,
}

impl Objects {
    /// Room for the objects of `resources` resources: ten each covers an image, a live update
    /// and the buttons. An object is a kilobyte, so growing the list by doubling copied
    /// megabytes.
    fn for_resources(resources: usize) -> Self {
        let capacity = 10 * resources + 8;
        Objects {
            seen: std::collections::HashSet::with_capacity(capacity),
            decoded: Ok(Vec::with_capacity(capacity)),
        }
    }

    /// Whether to take an object of `kind` named `name`: it is the first such, and no earlier
    /// object failed to decode. A later duplicate is not even decoded.
    fn takes(&mut self, kind: &str, name: &str) -> bool {
        self.decoded.is_ok() && self.seen.insert(format!("{kind}/{name}"))
    }

    /// Takes `o` as it will be applied: nothing changes an object once it is pushed.
    fn push(&mut self, mut o: Json) {
        let kind = o["kind"].as_str().unwrap_or("");
        if !self.takes(kind, o["metadata"]["name"].as_str().unwrap_or("")) {
            return;
        }
        finish_object(&mut o);
        match typed_object(&o) {
            Ok(t) => self.list_push(t),
            Err(e) => self.decoded = Err(e),
        }
    }

    /// Takes an object built typed, which skips building it as JSON and decoding that: a third
    /// of the assembly. It must be what [`with_spec`] would give (no `Some` of an empty value:
    /// JSON drops those); debug builds check each one against the JSON route.
    fn push_typed(&mut self, o: impl Into<stilt_api::AnyObject>) {
        let mut o = o.into();
        if !self.takes(o.kind(), &o.meta().name) {
            return;
        }
        finish_typed(&mut o);
        #[cfg(debug_assertions)]
        {
            let mut json = o.to_value();
            if let Some(spec) = json.get_mut("spec") {
                *spec = crate::objects::strip_empty(spec.take());
            }
            finish_object(&mut json);
            let via_json = typed_object(&json).expect("a typed object decodes from its JSON");
            assert_eq!(
                o,
                via_json,
                "built typed, {} differs from its JSON route",
                o.kind()
            );
        }
        self.list_push(o);
    }

    fn list_push(&mut self, o: stilt_api::AnyObject) {
        if let Ok(list) = &mut self.decoded {
            list.push(o);
        }
    }
}

fn finish_object(o: &mut Json) {
    // Objects without a manifest annotation belong to the Tiltfile (Tilt's propagateAnnotations).
    if o["metadata"]["annotations"][ANNOTATION_RESOURCE].is_null() {
        o["metadata"]["annotations"][ANNOTATION_RESOURCE] = json!(TILTFILE_MANIFEST);
    }
    // Tilt's targets give their dependencies deduplicated and sorted.
    if o["kind"] == "FileWatch"
        && let Some(paths) = o["spec"]["watchedPaths"].as_array_mut()
    {
        paths.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        paths.dedup();
    }
}

/// [`finish_object`] of a typed object.
fn finish_typed(o: &mut stilt_api::AnyObject) {
    o.meta_mut()
        .annotations
        .entry(ANNOTATION_RESOURCE.to_owned())
        .or_insert_with(|| TILTFILE_MANIFEST.to_owned());
    if let stilt_api::AnyObject::FileWatch(fw) = o {
        fw.spec.watched_paths.sort();
        fw.spec.watched_paths.dedup();
    }
}

/// A new object of a kind with these annotations (empty values left out, as [`object`]).
fn annotated<T: stilt_api::registry::HasMeta>(mut o: T, annotations: &[(&str, &str)]) -> T {
    let meta = o.meta_mut();
    for (k, v) in annotations {
        if !v.is_empty() {
            meta.annotations.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    o
}

/// One assembled object, strictly decoded.
fn typed_object(o: &Json) -> Result<stilt_api::AnyObject, crate::Failure> {
    stilt_api::AnyObject::from_value_ref(o).map_err(|e| {
        let desc = format!(
            "{} {}",
            o["kind"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        );
        (format!("internal error: building {desc}: {e}"), None)
    })
}

fn stop_button(manifest: &str) -> stilt_api::UIButton {
    // uibutton.StopBuildButton: no manifest annotation (the Tiltfile's is propagated).
    annotated(
        stilt_api::UIButton::new(
            format!("{manifest}-stopbuild"),
            UIButtonSpec {
                location: resource_location(manifest),
                text: "Stop Build".into(),
                icon_name: "cancel".into(),
                ..Default::default()
            },
        ),
        &[(ANNOTATION_BUTTON_TYPE, "StopBuild")],
    )
}

/// Where a resource's buttons show: on resource `manifest`.
fn resource_location(manifest: &str) -> UIComponentLocation {
    UIComponentLocation {
        component_id: manifest.to_owned(),
        component_type: "Resource".into(),
    }
}

/// `p` relative to `base` (Go's filepath.Rel: may start with `..`).
fn rel(base: &Path, p: &Path) -> String {
    crate::builtins::os::rel_path(p, base)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|| p.display().to_string())
}

/// `s`, unless it is empty (an unset optional setting).
fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
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
fn sorted_entities(entities: &[Arc<K8sEntity>]) -> Vec<&K8sEntity> {
    let mut v: Vec<&K8sEntity> = entities.iter().map(|e| &**e).collect();
    v.sort_by_key(|e| {
        KIND_ORDER_FIRST
            .iter()
            .position(|k| *k == e.kind())
            .unwrap_or(KIND_ORDER_FIRST.len())
    });
    v
}

/// The UI link of a port forward: `http://<host>:<local port>/<path>`, named like the forward.
fn port_forward_link(pf: &Forward) -> Link {
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

/// Ignores `patterns` (dockerignore syntax) under `base`.
fn ignore_patterns(base: &Path, patterns: &[String]) -> IgnoreDef {
    IgnoreDef {
        base_path: base.display().to_string(),
        patterns: patterns.to_vec(),
    }
}

/// Ignores `path` itself and, for a directory, everything under it.
fn ignore_path(path: &Path) -> IgnoreDef {
    IgnoreDef {
        base_path: path.display().to_string(),
        patterns: vec![],
    }
}

/// `<repo>/.git` of every repository containing watched paths (Tilt's LocalRepos ignores).
fn git_ignores(roots: &[PathBuf]) -> Vec<IgnoreDef> {
    roots.iter().map(|r| ignore_path(&r.join(".git"))).collect()
}

/// Tilt's context ignores of an image, in its order: the Tiltfile that declared it, the `.git`
/// of repositories holding the Dockerfile/context/deps, then per directory (the context, or each
/// custom_build dep that is a directory) the `ignore=` patterns, the `only=` patterns
/// (`**` then `!<only>`) and the `.dockerignore` patterns, each as its own entry.
fn context_ignores(t: &ImageTarget) -> Vec<IgnoreDef> {
    let mut out = vec![];
    if !t.tiltfile_path.as_os_str().is_empty() {
        out.push(ignore_path(&t.tiltfile_path));
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
        if !t.ignores.is_empty() {
            out.push(ignore_patterns(dir, &t.ignores));
        }
        if !t.only.is_empty() {
            let pats: Vec<String> = std::iter::once("**".to_owned())
                .chain(t.only.iter().map(|o| format!("!{o}")))
                .collect();
            out.push(ignore_patterns(dir, &pats));
        }
        if !dockerignore.is_empty() {
            out.push(ignore_patterns(dir, dockerignore));
        }
    }
    out
}

fn emit_resource(
    st: &State,
    entity_images: &EntityImages,
    r: &ManifestDraft,
    enabled: bool,
    input: &AssembleInput,
    global_ignores: &[IgnoreDef],
    out: &mut Objects,
) -> anyhow::Result<Manifest> {
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
            .flat_map(|e| entity_images.of(e).iter().copied())
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
        let (watched, mut ignores): (Vec<String>, Vec<IgnoreDef>) = match &t.build {
            ImageBuild::Docker(d) => {
                let mut ig = context_ignores(t);
                ig.push(ignore_path(&d.dockerfile_path));
                (vec![d.context.display().to_string()], ig)
            }
            ImageBuild::Custom(c) => (
                c.deps.iter().map(|p| p.display().to_string()).collect(),
                context_ignores(t),
            ),
        };
        ignores.extend(global_ignores.iter().cloned());
        if input.watch && !watched.is_empty() {
            out.push_typed(annotated(
                stilt_api::FileWatch::new(
                    fw_name.clone(),
                    FileWatchSpec {
                        watched_paths: watched,
                        ignores,
                        disable_source: Some(ds.clone()),
                    },
                ),
                &[(ANNOTATION_RESOURCE, m), (ANNOTATION_TARGET_ID, &target_id)],
            ));
        }
        if !t.live_update_only {
            let spec = ImageMapSpec {
                selector: t.ref_str.clone(),
                match_exact: t.match_exact,
                match_in_env_vars: t.match_in_env_vars,
                override_command: t
                    .entrypoint
                    .clone()
                    .map(|command| ImageMapOverrideCommand { command }),
                override_args: t
                    .container_args
                    .clone()
                    .map(|args| ImageMapOverrideArgs { args }),
            };
            out.push_typed(annotated(
                stilt_api::ImageMap::new(im.clone(), spec),
                &[
                    (ANNOTATION_RESOURCE, m),
                    (ANNOTATION_LOG_SPAN_ID, &format!("imagemap:{im}")),
                ],
            ));
            let needs = if deployed.contains(&ti) {
                "push"
            } else {
                "base-image"
            };
            let build_name = format!("{m}:{im}");
            match &t.build {
                ImageBuild::Docker(d) => {
                    out.push_typed(annotated(
                        stilt_api::DockerImage::new(
                            build_name.clone(),
                            DockerImageSpec {
                                r#ref: t.ref_str.clone(),
                                dockerfile_contents: d.dockerfile_contents.clone(),
                                context: d.context.display().to_string(),
                                context_ignores: context_ignores(t),
                                // Tilt keeps build args in a map: sorted by name.
                                args: d
                                    .build_args
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                                    .collect(),
                                target: d.target.clone(),
                                ssh_agent_configs: d.ssh.clone(),
                                secrets: d.secret.clone(),
                                network: d.network.clone(),
                                pull: d.pull,
                                cache_from: d.cache_from.clone(),
                                platform: d.platform.clone(),
                                extra_tags: d.extra_tags.clone(),
                                image_maps: vec![im.clone()],
                                cluster: cluster.to_owned(),
                                cluster_needs: needs.to_owned(),
                                extra_hosts: d.extra_hosts.clone(),
                            },
                        ),
                        &[
                            (ANNOTATION_RESOURCE, m),
                            (ANNOTATION_LOG_SPAN_ID, &format!("dockerimage:{build_name}")),
                        ],
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
                        (ANNOTATION_RESOURCE, m),
                        (ANNOTATION_LOG_SPAN_ID, span.as_str()),
                    ];
                    if !dep_maps.is_empty() {
                        anns.push((ANNOTATION_IMAGE_DEPS, dep_maps.as_str()));
                    }
                    out.push(with_spec(
                        object("CmdImage", &build_name, &anns),
                        CmdImageSpec {
                            r#ref: t.ref_str.clone(),
                            args: c.args.clone(),
                            dir: c.dir.display().to_string(),
                            env: c.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                            image_maps: vec![im.clone()],
                            output_mode: mode.to_owned(),
                            output_tag: c.tag.clone(),
                            outputs_image_ref_to: c.outputs_image_ref_to.clone(),
                            cluster: cluster.to_owned(),
                            cluster_needs: needs.to_owned(),
                        },
                    ));
                    // The Cmd that runs the build (Tilt creates it beside the CmdImage).
                    out.push(with_spec(
                        object(
                            "Cmd",
                            &build_name,
                            &[
                                (ANNOTATION_RESOURCE, m),
                                (ANNOTATION_LOG_SPAN_ID, &format!("cmdimage:{build_name}")),
                                (ANNOTATION_MANAGED_BY, "cmd_image"),
                            ],
                        ),
                        CmdSpec {
                            args: c.args.clone(),
                            dir: c.dir.display().to_string(),
                            ..Default::default()
                        },
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
            let sel = pod_selector(
                m,
                if !cd.container_selector.is_empty() {
                    LiveUpdateKubernetesSelector {
                        container_name: cd.container_selector.clone(),
                        ..Default::default()
                    }
                } else {
                    LiveUpdateKubernetesSelector {
                        image: cd.image_selector.clone(),
                        ..Default::default()
                    }
                },
            );
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
                vec![LiveUpdateSource {
                    file_watch: sanitize_name(&fw),
                    ..Default::default()
                }],
                r.kind,
                &format!("k8s_custom_deploy {m:?}"),
            )?;
            out.push(with_spec(
                object(
                    "LiveUpdate",
                    &name,
                    &[
                        (ANNOTATION_RESOURCE, m),
                        (ANNOTATION_LOG_SPAN_ID, &format!("liveupdate:{name}")),
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
                        ignores.push(ignore_patterns(&b.context, &b.dockerignore));
                    }
                    ignores.extend(b.volume_sources.iter().map(|v| ignore_path(v)));
                    ignores.extend(global_ignores.iter().cloned());
                    out.push(with_spec(
                        object(
                            "FileWatch",
                            &sanitize_name(&format!("image:{}", b.image)),
                            &[
                                (ANNOTATION_RESOURCE, m),
                                (ANNOTATION_TARGET_ID, &format!("image:{im}")),
                            ],
                        ),
                        FileWatchSpec {
                            watched_paths: vec![context],
                            ignores,
                            disable_source: Some(ds.clone()),
                        },
                    ));
                }
                let tagged = b.image.rsplit('/').next().is_some_and(|l| l.contains(':'));
                out.push(with_spec(
                    object(
                        "ImageMap",
                        &im,
                        &[
                            (ANNOTATION_RESOURCE, m),
                            (ANNOTATION_LOG_SPAN_ID, &format!("imagemap:{im}")),
                        ],
                    ),
                    ImageMapSpec {
                        selector: b.image.clone(),
                        match_exact: tagged,
                        ..Default::default()
                    },
                ));
                image_maps.push(im.clone());
                deployed_maps.push(im);
            }
            out.push(with_spec(
                object(
                    "DockerComposeService",
                    m,
                    &[
                        (ANNOTATION_RESOURCE, m),
                        (ANNOTATION_LOG_SPAN_ID, &format!("dockercompose:{m}")),
                        (ANNOTATION_MANAGED_BY, "buildcontrol"),
                    ],
                ),
                DockerComposeServiceSpec {
                    service: svc.clone(),
                    project: DockerComposeProject {
                        config_paths: p
                            .config_paths
                            .iter()
                            .map(|c| c.display().to_string())
                            .collect(),
                        project_path: p.project_path.display().to_string(),
                        yaml: p.yaml.clone(),
                        name: p.name.clone(),
                        env_file: p.env_file.clone(),
                        profiles: p.profiles.clone(),
                        wait: p.wait,
                    },
                    image_maps: deployed_maps,
                    disable_source: Some(ds.clone()),
                },
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
    let is_disabled = if enabled { "false" } else { "true" };
    out.push_typed(ConfigMap::new(
        format!("{m}-disable"),
        BTreeMap::from([(DISABLE_KEY.to_owned(), is_disabled.to_owned())]),
    ));
    out.push_typed(annotated(
        stilt_api::ToggleButton::new(
            format!("{m}-disable"),
            ToggleButtonSpec {
                location: resource_location(m),
                on: ToggleButtonStateSpec {
                    text: "Enable Resource".into(),
                    ..Default::default()
                },
                off: ToggleButtonStateSpec {
                    text: "Disable Resource".into(),
                    requires_confirmation: true,
                    ..Default::default()
                },
                default_on: false,
                state_source: StateSource {
                    config_map: Some(ConfigMapStateSource {
                        name: format!("{m}-disable"),
                        key: DISABLE_KEY.to_owned(),
                        on_value: "true".into(),
                        off_value: "false".into(),
                    }),
                },
            },
        ),
        &[(ANNOTATION_BUTTON_TYPE, "DisableToggle")],
    ));
    out.push_typed(stop_button(m));
    let label_map: BTreeMap<String, String> =
        labels.iter().map(|l| (l.clone(), l.clone())).collect();
    let mut ui = annotated(
        stilt_api::UIResource::new(m, Default::default()),
        &[(ANNOTATION_RESOURCE, m)],
    );
    ui.metadata.labels = label_map;
    ui.status = Some(UIResourceStatus {
        disable_status: Some(DisableResourceStatus {
            state: "Pending".into(),
            sources: vec![ds],
            ..Default::default()
        }),
        ..Default::default()
    });
    out.push_typed(ui);

    Ok(Manifest {
        name: m.to_owned(),
        kind: r.kind,
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
    selector: LiveUpdateSelector,
    sources: Vec<LiveUpdateSource>,
    kind: ResourceType,
    what: &str,
) -> anyhow::Result<LiveUpdateSpec> {
    let mut spec = LiveUpdateSpec {
        base_path: base.display().to_string(),
        selector,
        sources,
        ..Default::default()
    };
    for s in &lu.steps {
        match s {
            LuStep::InitialSync => spec.initial_sync = Some(LiveUpdateInitialSync::default()),
            LuStep::FallBackOn(ps) => spec.stop_paths.extend(ps.iter().map(|p| rel(base, p))),
            LuStep::Sync { local, remote } => spec.syncs.push(LiveUpdateSync {
                local_path: rel(base, local),
                container_path: remote.clone(),
            }),
            LuStep::Run {
                args,
                triggers,
                echo_off,
            } => spec.execs.push(LiveUpdateExec {
                args: args.clone(),
                trigger_paths: triggers.iter().map(|p| rel(base, p)).collect(),
                echo_off: *echo_off,
            }),
            LuStep::Restart => {
                if kind == ResourceType::K8s {
                    bail!(
                        "{what}: For K8s live_update, restart_container() is obsolete. Use the restart_process extension instead: https://github.com/tilt-dev/tilt-extensions/tree/master/restart_process"
                    );
                }
                spec.restart = LIVE_UPDATE_RESTART_ALWAYS.to_owned();
            }
        }
    }
    Ok(spec)
}

/// A live-update selector for the pods of resource `manifest`; `container` picks the container
/// (by `image`, `containerName` or `imageMapName`).
fn pod_selector(manifest: &str, container: LiveUpdateKubernetesSelector) -> LiveUpdateSelector {
    LiveUpdateSelector {
        kubernetes: Some(LiveUpdateKubernetesSelector {
            discovery_name: manifest.to_owned(),
            apply_name: manifest.to_owned(),
            ..container
        }),
        ..Default::default()
    }
}

fn emit_live_update(
    st: &State,
    r: &ManifestDraft,
    t: &ImageTarget,
    ti: usize,
    im: &str,
    trigger_mode: TriggerMode,
    out: &mut Objects,
) -> anyhow::Result<()> {
    let m = r.name.as_str();
    let name = format!("{m}:{im}");
    let selector = match r.kind {
        ResourceType::DockerCompose => LiveUpdateSelector {
            docker_compose: Some(LiveUpdateDockerComposeSelector {
                service: r.dc.as_ref().map(|d| d.1.clone()).unwrap_or_default(),
            }),
            ..Default::default()
        },
        _ if t.live_update_only => pod_selector(
            m,
            LiveUpdateKubernetesSelector {
                image: t.ref_str.clone(),
                ..Default::default()
            },
        ),
        _ => pod_selector(
            m,
            LiveUpdateKubernetesSelector {
                image_map_name: im.to_owned(),
                ..Default::default()
            },
        ),
    };
    // Sources: the base images' watches first (dependency order), then this image's, as Tilt.
    let mut order = vec![];
    push_with_bases(st, ti, &mut order, 0);
    let sources = order
        .into_iter()
        .map(|i| {
            let b = &st.images[i];
            LiveUpdateSource {
                file_watch: sanitize_name(&format!("image:{}", b.ref_str)),
                image_map: if b.live_update_only {
                    String::new()
                } else {
                    image_map_name(b)
                },
            }
        })
        .collect();
    let spec = lu_spec(
        &t.live_update,
        &t.live_update.base_path,
        selector,
        sources,
        r.kind,
        &format!("live_update of image {:?} (resource {m:?})", t.ref_str),
    )?;
    let span = format!("liveupdate:{name}");
    out.push_typed(annotated(
        stilt_api::LiveUpdate::new(name, spec),
        &[
            (ANNOTATION_RESOURCE, m),
            (ANNOTATION_LOG_SPAN_ID, &span),
            (ANNOTATION_UPDATE_MODE, trigger_str(trigger_mode)),
        ],
    ));
    Ok(())
}

fn emit_k8s(
    st: &State,
    r: &ManifestDraft,
    input: &AssembleInput,
    image_maps: &[String],
    ds: &DisableSource,
    global_ignores: &[IgnoreDef],
    out: &mut Objects,
) -> anyhow::Result<()> {
    let m = r.name.as_str();
    let forwards = &r.opts.port_forwards;
    let extra_selectors = &r.opts.extra_pod_selectors;
    let mut spec = KubernetesApplySpec {
        image_maps: image_maps.to_vec(),
        timeout: Some(format!("{}s", st.settings.k8s_upsert_timeout_secs)),
        discovery_strategy: r.opts.discovery_strategy.clone(),
        disable_source: Some(ds.clone()),
        cluster: "default".into(),
        // Tilt: only "true" applies server-side; "auto" and "false" are client-side.
        server_side_apply: st.settings.k8s_server_side_apply == "true",
        kubernetes_discovery_template_spec: (!extra_selectors.is_empty()).then(|| {
            KubernetesDiscoveryTemplateSpec {
                extra_selectors: extra_selectors
                    .iter()
                    .map(|labels| LabelSelector {
                        match_labels: labels.clone(),
                        ..Default::default()
                    })
                    .collect(),
            }
        }),
        port_forward_template_spec: (!forwards.is_empty()).then(|| PortForwardTemplateSpec {
            forwards: forwards.clone(),
        }),
        pod_log_stream_template_spec: Some(PodLogStreamTemplateSpec {
            since_time: input.since_time,
            ignore_containers: ["istio-init", "istio-proxy", "linkerd-proxy", "linkerd-init"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // Image locators from k8s_kind.
    for k in &st.k8s_kinds {
        if !r.entities.iter().any(|e| kind_matches(k, e)) {
            continue;
        }
        let object_selector = ObjectSelector {
            api_version_regexp: k.api_version_re.clone(),
            kind_regexp: k.kind_re.clone(),
            name_regexp: k.name_re.clone(),
            namespace_regexp: k.namespace_re.clone(),
        };
        for p in &k.image_json_paths {
            spec.image_locators.push(KubernetesImageLocator {
                object_selector: object_selector.clone(),
                path: p.clone(),
                object: None,
            });
        }
        if let Some((p, repo, tag)) = &k.image_object {
            spec.image_locators.push(KubernetesImageLocator {
                object_selector,
                path: p.clone(),
                object: Some(KubernetesImageObjectDescriptor {
                    repo_field: repo.clone(),
                    tag_field: tag.clone(),
                }),
            });
        }
    }
    if let Some(ci) = r.custom_deploy {
        let cd = &st.custom_deploys[ci];
        let cmd = |args: &[String], dir: &Path, env: &[(String, String)]| KubernetesApplyCmd {
            args: args.to_vec(),
            dir: dir.display().to_string(),
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        };
        spec.apply_cmd = Some(cmd(&cd.apply_cmd, &cd.apply_dir, &cd.apply_env));
        spec.delete_cmd = Some(cmd(&cd.delete_cmd, &cd.delete_dir, &cd.delete_env));
        if !cd.deps.is_empty() {
            let fw = sanitize_name(&format!("k8s:{m}"));
            if input.watch {
                out.push_typed(deps_watch(
                    m,
                    &format!("k8s:{m}"),
                    &cd.deps,
                    global_ignores.to_vec(),
                    ds,
                ));
            }
            spec.restart_on = Some(RestartOnSpec {
                file_watches: vec![fw],
                ..Default::default()
            });
        }
    } else {
        let docs = sorted_entities(&r.entities).into_iter().map(|e| &e.obj);
        spec.yaml = crate::yaml::encode_stream(docs)
            .map_err(|e| anyhow!("serializing YAML for {m}: {e}"))?;
    }
    out.push_typed(annotated(
        stilt_api::KubernetesApply::new(m, spec),
        &[
            (ANNOTATION_RESOURCE, m),
            (ANNOTATION_LOG_SPAN_ID, &format!("kubernetesapply:{m}")),
            (ANNOTATION_MANAGED_BY, "buildcontrol"),
        ],
    ));
    Ok(())
}

fn emit_syncback(st: &State, r: &ManifestDraft, out: &mut Objects) {
    let sb = &st.syncbacks[r.syncback.unwrap()];
    let m = r.name.as_str();
    let source = match &sb.from {
        SyncbackFrom::Kubernetes {
            object,
            namespace,
            container,
        } => SyncbackSource {
            kubernetes: Some(SyncbackKubernetesSource {
                object: object.clone(),
                namespace: namespace.clone(),
                container: container.clone(),
            }),
            ..Default::default()
        },
        SyncbackFrom::DockerCompose { service } => SyncbackSource {
            docker_compose: Some(SyncbackDockerComposeSource {
                service: service.clone(),
            }),
            ..Default::default()
        },
    };
    out.push(with_spec(
        object(
            "Syncback",
            m,
            &[
                (ANNOTATION_RESOURCE, m),
                (ANNOTATION_LOG_SPAN_ID, &format!("syncback:{m}")),
                (ANNOTATION_MANAGED_BY, "buildcontrol"),
            ],
        ),
        SyncbackSpec {
            source,
            src_dir: sb.src_dir.clone(),
            target_dir: sb.target_dir.display().to_string(),
            paths: sb.paths.clone(),
            ignores: sb.ignores.clone(),
            delete: sb.delete,
            dry_run: sb.dry_run,
            interval_seconds: sb.interval_seconds,
            protected: crate::builtins::syncback::PROTECTED
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        },
    ));
}

fn emit_local(
    st: &State,
    r: &ManifestDraft,
    ds: &DisableSource,
    global_ignores: &[IgnoreDef],
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
    if !l.deps.is_empty() && input.watch {
        let mut ignores = vec![];
        if !l.ignores.is_empty() {
            ignores.push(ignore_patterns(&l.tiltfile_dir, &l.ignores));
        }
        ignores.extend(git_ignores(&l.repo_roots));
        ignores.extend(global_ignores.iter().cloned());
        out.push_typed(deps_watch(m, &format!("local:{m}"), &l.deps, ignores, ds));
    }
    if !l.cmd.is_empty() {
        let name = format!("{m}:update");
        out.push(with_spec(
            object(
                "Cmd",
                &name,
                &[
                    (ANNOTATION_RESOURCE, m),
                    (ANNOTATION_LOG_SPAN_ID, &format!("cmd:{name}")),
                    (ANNOTATION_MANAGED_BY, "local_resource"),
                ],
            ),
            CmdSpec {
                args: l.cmd.clone(),
                dir: l.dir.display().to_string(),
                env: env(&l.env),
                disable_source: Some(ds.clone()),
                ..Default::default()
            },
        ));
    }
    if !l.serve_cmd.is_empty() {
        let name = format!("{m}:serve");
        let spec = CmdSpec {
            args: l.serve_cmd.clone(),
            dir: l.serve_dir.display().to_string(),
            env: env(&l.serve_env),
            readiness_probe: l.readiness_probe.clone(),
            disable_source: Some(ds.clone()),
            ..Default::default()
        };
        out.push(with_spec(
            object(
                "Cmd",
                &name,
                &[
                    (ANNOTATION_RESOURCE, m),
                    (ANNOTATION_LOG_SPAN_ID, &format!("cmd:{name}")),
                    (ANNOTATION_MANAGED_BY, "local_resource"),
                    (ANNOTATION_OWNER_KIND, "CmdServer"),
                ],
            ),
            spec,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Each row: a selector, and the resources a linear scan would find matching, first first.
    #[test]
    fn the_label_index_offers_every_resource_a_selector_matches() {
        let templates = vec![
            vec![labels(&[("app", "web"), ("tier", "front")])],
            vec![labels(&[("app", "api")])],
            vec![labels(&[("app", "web")]), labels(&[("app", "db")])],
            vec![],
        ];
        let index = LabelIndex::new(&templates);
        let rows: &[(Json, &[usize])] = &[
            (json!({"app": "web"}), &[0, 2]),
            (json!({"app": "web", "tier": "front"}), &[0]),
            (json!({"tier": "front", "app": "web"}), &[0]),
            (json!({"app": "db"}), &[2]),
            (json!({"app": "none"}), &[]),
            // A value that is not a string matches a template without the key.
            (json!({"other": 1}), &[0, 1, 2]),
        ];
        for (sel, want) in rows {
            let sel = sel.as_object().unwrap();
            let linear: Vec<usize> = (0..templates.len())
                .filter(|&ri| templates[ri].iter().any(|l| selector_matches(sel, l)))
                .collect();
            assert_eq!(&linear, want, "linear scan, selector {sel:?}");
            let indexed: Vec<usize> = index
                .candidates(sel, templates.len())
                .filter(|&ri| templates[ri].iter().any(|l| selector_matches(sel, l)))
                .collect();
            assert_eq!(&indexed, want, "index, selector {sel:?}");
        }
    }
}
