//! Kubernetes builtins: k8s_yaml, k8s_resource, port_forward, k8s_kind, k8s_image_json_path,
//! filter_yaml, workload_to_resource_function, k8s_custom_deploy, helm, kustomize.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use anyhow::bail;
use serde_json::Value as Json;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;
use starlark::values::tuple::AllocTuple;
use stilt_api::Forward;

use crate::builtins::core::new_obj;
use crate::builtins::core::read_watched;
use crate::builtins::core::run_local;
use crate::builtins::core::to_argv;
use crate::builtins::docker::live_update_arg;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::call_site;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::*;
use crate::values::Blob;
use crate::values::TiltObj;

/// YAML text from a path, list of paths, or Blob (paths are read and watched), with the path it
/// came from.
fn yaml_texts(
    eval: &Evaluator,
    func: &str,
    param: &str,
    v: Value,
) -> anyhow::Result<Vec<(Option<PathBuf>, String)>> {
    if let Some(b) = v.downcast_ref::<Blob>() {
        return Ok(vec![(None, b.0.clone())]);
    }
    let dir = cur_dir(eval);
    let mut out = vec![];
    for item in one_or_many(Some(v)) {
        if let Some(b) = item.downcast_ref::<Blob>() {
            out.push((None, b.0.clone()));
            continue;
        }
        let s = string(func, param, item)?;
        let p = abs_path(&dir, &s);
        match read_watched(eval, func, &p)? {
            Some(t) => out.push((Some(p), t)),
            None => bail!("{func}: file not found: {}", p.display()),
        }
    }
    Ok(out)
}

/// The entities of one of [`yaml_texts`]' texts: the prefetcher's parse when it has this text.
fn entities_of(
    eval: &Evaluator,
    func: &str,
    (path, text): &(Option<PathBuf>, String),
) -> anyhow::Result<Vec<K8sEntity>> {
    path.as_deref()
        .and_then(|p| ctx(eval).yaml_prefetch.take(p, text))
        .unwrap_or_else(|| parse_entities(text))
        .map_err(|e| anyhow!("{func}: error parsing YAML: {e}"))
}

pub(crate) fn parse_entities(text: &str) -> anyhow::Result<Vec<K8sEntity>> {
    let docs = crate::yaml::parse_stream(text)?;
    let mut out = vec![];
    for d in docs {
        if !d.is_object() {
            bail!("expected a Kubernetes object (a YAML map), got: {d}");
        }
        if d.get("kind").and_then(|k| k.as_str()) == Some("List")
            && let Some(items) = d.get("items").and_then(|i| i.as_array())
        {
            out.extend(items.iter().cloned().map(|obj| K8sEntity { obj }));
            continue;
        }
        out.push(K8sEntity { obj: d });
    }
    Ok(out)
}

fn secrets_of(e: &K8sEntity) -> Vec<(String, String)> {
    if e.kind() != "Secret" {
        return vec![];
    }
    let mut out = vec![];
    let name = e.name().to_owned();
    for (field, b64) in [("data", true), ("stringData", false)] {
        if let Some(m) = e.obj.get(field).and_then(|d| d.as_object()) {
            for (k, v) in m {
                let Some(s) = v.as_str() else { continue };
                let val = if b64 {
                    b64_decode(s).unwrap_or_default()
                } else {
                    s.to_owned()
                };
                if val.len() >= 5 {
                    out.push((format!("{name}:{k}"), val));
                }
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<String> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut buf = 0u32;
    let mut bits = 0;
    let mut out = vec![];
    for ch in s.bytes() {
        if ch == b'=' || ch.is_ascii_whitespace() {
            continue;
        }
        let v = alphabet.iter().position(|&c| c == ch)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn port_forward_from_value(web_host: &str, v: Value) -> anyhow::Result<Forward> {
    let f = "k8s_resource";
    if let Some(i) = v.unpack_i32() {
        return Ok(Forward {
            local_port: i,
            container_port: 0,
            host: web_host.into(),
            name: String::new(),
            path: String::new(),
        });
    }
    if let Some(s) = v.unpack_str() {
        let parts: Vec<&str> = s.split(':').collect();
        let port = |p: &str| -> anyhow::Result<i32> {
            p.parse::<i32>()
                .ok()
                .filter(|n| (0..=65535).contains(n))
                .ok_or_else(|| {
                    anyhow!("{f}: for parameter \"port_forwards\": invalid port {p:?} in {s:?}")
                })
        };
        return match parts.as_slice() {
            [l] => Ok(Forward {
                local_port: port(l)?,
                container_port: 0,
                host: web_host.into(),
                name: String::new(),
                path: String::new(),
            }),
            [l, c] => Ok(Forward {
                local_port: port(l)?,
                container_port: port(c)?,
                host: web_host.into(),
                name: String::new(),
                path: String::new(),
            }),
            [h, l, c] => Ok(Forward {
                local_port: port(l)?,
                container_port: port(c)?,
                host: (*h).into(),
                name: String::new(),
                path: String::new(),
            }),
            _ => bail!(
                "{f}: for parameter \"port_forwards\": expected 'PORT', 'LOCAL:CONTAINER' or 'HOST:LOCAL:CONTAINER', got {s:?}"
            ),
        };
    }
    if let Some(o) = v.downcast_ref::<TiltObj>()
        && o.kind == "port_forward"
    {
        // Both ports were unpacked as i32 by `port_forward`.
        let port = |k: &str| {
            o.fields
                .get(k)
                .and_then(|x| x.as_i64())
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0)
        };
        let host = o.str("host").unwrap_or_default();
        return Ok(Forward {
            local_port: port("local_port"),
            container_port: port("container_port"),
            host: if host.is_empty() {
                web_host.into()
            } else {
                host.into()
            },
            name: o.str("name").unwrap_or_default().into(),
            // Tilt keeps the link path without its leading slash.
            path: {
                let p = o.str("link_path").unwrap_or_default();
                p.strip_prefix('/').unwrap_or(p).into()
            },
        });
    }
    Err(bad_arg(
        f,
        "port_forwards",
        "int, string, port_forward or a list of them",
        v,
    ))
}

pub(crate) fn links_arg(func: &str, v: Option<Value>) -> anyhow::Result<Vec<Link>> {
    let mut out = vec![];
    for item in one_or_many(v) {
        if let Some(s) = item.unpack_str() {
            if s.is_empty() {
                bail!("{func}: for parameter \"links\": url cannot be empty");
            }
            out.push(Link {
                url: s.to_owned(),
                name: String::new(),
            });
        } else if let Some(o) = item.downcast_ref::<TiltObj>()
            && o.kind == "link"
        {
            out.push(Link {
                url: o.str("url").unwrap_or_default().into(),
                name: o.str("name").unwrap_or_default().into(),
            });
        } else {
            return Err(bad_arg(func, "links", "string, link or list of them", item));
        }
    }
    for l in &mut out {
        if !l.url.contains("://") {
            l.url = format!("http://{}", l.url);
        }
    }
    Ok(out)
}

pub(crate) fn labels_arg(func: &str, v: Option<Value>) -> anyhow::Result<Vec<String>> {
    let labels = str_or_list(func, "labels", v)?;
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").unwrap()
    });
    let re = &*RE;
    for l in &labels {
        if l.len() > 63 || !re.is_match(l) {
            bail!(
                "{func}: for parameter \"labels\": invalid label {l:?}: must be 63 characters or less, begin and end with an alphanumeric character, and contain only alphanumerics, '-', '_' or '.'"
            );
        }
    }
    Ok(labels)
}

fn selectors_arg(func: &str, v: Option<Value>) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let mut out = vec![];
    for item in one_or_many(v) {
        if DictRef::from_value(item).is_none() {
            return Err(bad_arg(
                func,
                "extra_pod_selectors",
                "dict or list of dicts",
                item,
            ));
        }
        out.push(
            str_dict(func, "extra_pod_selectors", Some(item))?
                .into_iter()
                .collect(),
        );
    }
    Ok(out)
}

fn helm_namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "APIService"
            | "Node"
            | "IngressClass"
            | "CSIDriver"
            | "RuntimeClass"
            | "PodSecurityPolicy"
            | "VolumeSnapshotClass"
    )
}

/// Tilt's partial-match selector regexp: case-insensitive, unanchored; empty matches all.
fn partial_match_re(func: &str, param: &str, pat: &str) -> anyhow::Result<String> {
    if pat.is_empty() {
        return Ok(String::new());
    }
    let re = format!("(?i){pat}");
    regex::Regex::new(&re)
        .map_err(|e| anyhow!("{func}: for parameter \"{param}\": invalid regexp {pat:?}: {e}"))?;
    Ok(re)
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// Deploys Kubernetes objects: YAML files, a YAML string/blob, or a list of them.
    ///
    /// Workloads (Deployments, StatefulSets, Jobs, ...) become resources named after the workload;
    /// images built by `docker_build`/`custom_build` are injected where the YAML names them.
    ///
    /// # Arguments
    /// * `yaml`: a path, a list of paths, or a `blob` (e.g. the output of `helm()`, `kustomize()`, `local()`).
    /// * `allow_duplicates`: allow the same object to be declared twice.
    fn k8s_yaml<'v>(
        yaml: Value<'v>,
        allow_duplicates: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "k8s_yaml";
        let c = ctx(eval);
        let allow_dup = opt_bool(f, "allow_duplicates", allow_duplicates, false)?;
        let texts = yaml_texts(eval, f, "yaml", yaml)?;
        for t in &texts {
            let ents = entities_of(eval, f, t)?;
            let mut st = c.st.borrow_mut();
            for e in ents {
                let key = (
                    e.kind().to_lowercase(),
                    e.name().to_owned(),
                    e.namespace().to_owned(),
                );
                if !st.k8s_keys.insert(key) && !allow_dup {
                    bail!(
                        "{f}: Duplicate YAML: {}:{}:{}. Use k8s_yaml(..., allow_duplicates=True) to allow duplicates",
                        e.name(),
                        e.kind().to_lowercase(),
                        if e.namespace().is_empty() {
                            "default"
                        } else {
                            e.namespace()
                        }
                    );
                }
                let secrets = secrets_of(&e);
                st.settings.secrets.extend(secrets);
                st.k8s.push(e);
            }
        }
        Ok(NoneType)
    }

    /// Configures the resource of a Kubernetes workload: port forwards, dependencies, labels, links, its name.
    ///
    /// # Arguments
    /// * `workload`: the name of the workload's resource (as shown by `stilt get uiresources`).
    /// * `new_name`: rename the resource.
    /// * `port_forwards`: ports to forward: `8000`, `'8000:80'`, `port_forward(...)`, or a list of them.
    /// * `extra_pod_selectors`: label selectors of more pods that belong to this resource.
    /// * `trigger_mode`: `TRIGGER_MODE_AUTO` (update on file change) or `TRIGGER_MODE_MANUAL`.
    /// * `resource_deps`: resources that must be ready before this one starts.
    /// * `objects`: extra (non-workload) objects to group into this resource, as `name:kind`.
    /// * `auto_init`: start the resource when Stilt starts (default True).
    /// * `pod_readiness`: `'wait'` for pods to be ready, or `'ignore'`.
    /// * `links`: URLs shown with the resource (strings or `link(...)`).
    /// * `labels`: labels grouping resources in the UI.
    /// * `discovery_strategy`: how pods are found: `'default'` or `'selectors-only'`.
    fn k8s_resource<'v>(
        workload: Option<Value<'v>>,
        new_name: Option<Value<'v>>,
        port_forwards: Option<Value<'v>>,
        extra_pod_selectors: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        objects: Option<Value<'v>>,
        auto_init: Option<Value<'v>>,
        pod_readiness: Option<Value<'v>>,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        discovery_strategy: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "k8s_resource";
        let c = ctx(eval);
        let workload = opt_string(f, "workload", workload)?;
        let new_name = opt_string(f, "new_name", new_name)?;
        let objects = str_or_list(f, "objects", objects)?;
        if workload.is_empty() && new_name.is_empty() {
            bail!("{f}: Must specify a value for either 'workload' or 'new_name'");
        }
        if workload.is_empty() && objects.is_empty() {
            bail!(
                "{f}: k8s_resource doesn't specify a workload or any objects. All non-workload resources must specify 1 or more objects"
            );
        }
        let mut pfs = vec![];
        for v in one_or_many(port_forwards) {
            pfs.push(port_forward_from_value(&c.req.web_host, v)?);
        }
        let pr = opt_string(f, "pod_readiness", pod_readiness)?;
        if !["", "wait", "ignore", "succeeded"].contains(&pr.as_str()) {
            bail!(
                "{f}: for parameter \"pod_readiness\": Must be one of: wait, ignore, succeeded (got {pr:?})"
            );
        }
        let ds = opt_string(f, "discovery_strategy", discovery_strategy)?;
        if !["", "default", "selectors-only"].contains(&ds.as_str()) {
            bail!(
                "{f}: for parameter \"discovery_strategy\": Must be one of: default, selectors-only (got {ds:?})"
            );
        }
        let opts = K8sResourceOpts {
            workload,
            new_name,
            port_forwards: pfs,
            extra_pod_selectors: selectors_arg(f, extra_pod_selectors)?,
            trigger_mode: crate::builtins::settings::trigger_mode_arg(f, trigger_mode)?,
            resource_deps: str_or_list(f, "resource_deps", resource_deps)?,
            objects,
            auto_init: match auto_init {
                Some(v) if !v.is_none() => Some(opt_bool(f, "auto_init", Some(v), true)?),
                _ => None,
            },
            pod_readiness: pr,
            links: links_arg(f, links)?,
            labels: labels_arg(f, labels)?,
            discovery_strategy: ds,
            call_site: call_site(eval),
        };
        c.st.borrow_mut().k8s_resource_opts.push(opts);
        Ok(NoneType)
    }

    /// A port forward for `k8s_resource(port_forwards=...)`.
    ///
    /// # Arguments
    /// * `local_port`: the port on this machine.
    /// * `container_port`: the port in the pod (default: same as `local_port`).
    /// * `name`: a name shown with the link.
    /// * `link_path`: a path appended to the link URL.
    /// * `host`: the local address to listen on.
    fn port_forward<'v>(
        local_port: i32,
        container_port: Option<Value<'v>>,
        name: Option<Value<'v>>,
        link_path: Option<Value<'v>>,
        host: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "port_forward";
        Ok(new_obj(
            eval,
            "port_forward",
            serde_json::json!({
                "local_port": local_port,
                "container_port": opt_int(f, "container_port", container_port, 0)?,
                "name": opt_string(f, "name", name)?,
                "link_path": opt_string(f, "link_path", link_path)?,
                "host": opt_string(f, "host", host)?,
            }),
        ))
    }

    /// Teaches Stilt a custom kind: objects of this kind are workloads, and where their images are.
    ///
    /// # Arguments
    /// * `kind`: the kind (a regexp).
    /// * `api_version`: its apiVersion (a regexp).
    /// * `image_json_path`: JSONPath(s) to the image fields in such objects.
    /// * `image_object`: JSONPath to an image given as `{repo, tag}` fields.
    /// * `pod_readiness`: `'wait'` or `'ignore'` for pods of such objects.
    fn k8s_kind<'v>(
        kind: &str,
        #[starlark(require = named)] api_version: Option<Value<'v>>,
        #[starlark(require = named)] image_json_path: Option<Value<'v>>,
        #[starlark(require = named)] image_object: Option<Value<'v>>,
        #[starlark(require = named)] pod_readiness: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "k8s_kind";
        let paths = str_or_list(f, "image_json_path", image_json_path)?;
        let obj = match image_object {
            Some(v) if !v.is_none() => {
                let d: BTreeMap<String, String> =
                    str_dict(f, "image_object", Some(v))?.into_iter().collect();
                let g = |k: &str| -> anyhow::Result<String> {
                    d.get(k).cloned().ok_or_else(|| anyhow!("{f}: for parameter \"image_object\": missing key {k:?} (need json_path, repo_field, tag_field)"))
                };
                Some((g("json_path")?, g("repo_field")?, g("tag_field")?))
            }
            _ => None,
        };
        if !paths.is_empty() && obj.is_some() {
            bail!("{f}: Cannot specify both image_json_path and image_object");
        }
        let pr = opt_string(f, "pod_readiness", pod_readiness)?;
        if !["", "wait", "ignore", "succeeded"].contains(&pr.as_str()) {
            bail!(
                "{f}: for parameter \"pod_readiness\": Must be one of: wait, ignore, succeeded (got {pr:?})"
            );
        }
        let k = K8sKind {
            kind_re: partial_match_re(f, "kind", kind)?,
            api_version_re: partial_match_re(
                f,
                "api_version",
                &opt_string(f, "api_version", api_version)?,
            )?,
            name_re: String::new(),
            namespace_re: String::new(),
            image_json_paths: paths,
            image_object: obj,
            pod_readiness: pr,
        };
        ctx(eval).st.borrow_mut().k8s_kinds.push(k);
        Ok(NoneType)
    }

    /// Tells Stilt where images are in objects matched by kind/name/namespace (JSONPath expressions).
    fn k8s_image_json_path<'v>(
        paths: Value<'v>,
        api_version: Option<Value<'v>>,
        kind: Option<Value<'v>>,
        name: Option<Value<'v>>,
        namespace: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "k8s_image_json_path";
        let kind = opt_string(f, "kind", kind)?;
        let name = opt_string(f, "name", name)?;
        let ns = opt_string(f, "namespace", namespace)?;
        if kind.is_empty() && name.is_empty() && ns.is_empty() {
            bail!("{f}: at least one of kind, name, or namespace must be specified");
        }
        let k = K8sKind {
            kind_re: partial_match_re(f, "kind", &kind)?,
            api_version_re: partial_match_re(
                f,
                "api_version",
                &opt_string(f, "api_version", api_version)?,
            )?,
            name_re: partial_match_re(f, "name", &name)?,
            namespace_re: partial_match_re(f, "namespace", &ns)?,
            image_json_paths: str_or_list(f, "paths", Some(paths))?,
            image_object: None,
            pod_readiness: String::new(),
        };
        ctx(eval).st.borrow_mut().k8s_kinds.push(k);
        Ok(NoneType)
    }

    /// Splits YAML into (matching, rest) by labels, name, namespace, kind or apiVersion.
    ///
    /// Returns a tuple of two blobs.
    fn filter_yaml<'v>(
        yaml: Value<'v>,
        labels: Option<Value<'v>>,
        name: Option<Value<'v>>,
        namespace: Option<Value<'v>>,
        kind: Option<Value<'v>>,
        api_version: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "filter_yaml";
        let texts = yaml_texts(eval, f, "yaml", yaml)?;
        let labels: Vec<(String, String)> = str_dict(f, "labels", labels)?;
        let re = |param: &str, v: Option<Value>| -> anyhow::Result<Option<regex::Regex>> {
            let s = opt_string(f, param, v)?;
            if s.is_empty() {
                return Ok(None);
            }
            Ok(Some(
                regex::Regex::new(&format!("(?i){s}")).map_err(|e| anyhow!("{f}: {param}: {e}"))?,
            ))
        };
        let (n, ns, k, av) = (
            re("name", name)?,
            re("namespace", namespace)?,
            re("kind", kind)?,
            re("api_version", api_version)?,
        );
        let mut yes = vec![];
        let mut no = vec![];
        for t in &texts {
            for e in entities_of(eval, f, t)? {
                let mut m = true;
                m &= n.as_ref().is_none_or(|r| r.is_match(e.name()));
                m &= ns.as_ref().is_none_or(|r| r.is_match(e.namespace()));
                m &= k.as_ref().is_none_or(|r| r.is_match(e.kind()));
                m &= av.as_ref().is_none_or(|r| r.is_match(e.api_version()));
                for (lk, lv) in &labels {
                    m &= crate::objects::at(&e.obj, &["metadata", "labels"])
                        .and_then(|l| l.get(lk))
                        .and_then(|x| x.as_str())
                        == Some(lv.as_str());
                }
                if m { yes.push(e.obj) } else { no.push(e.obj) }
            }
        }
        let heap = eval.heap();
        let a = heap.alloc(Blob(crate::yaml::encode_stream(&yes)?));
        let b = heap.alloc(Blob(crate::yaml::encode_stream(&no)?));
        Ok(heap.alloc(AllocTuple([a, b])))
    }

    /// Sets a function that names the resource of each workload: it gets an object with `name`, `kind`, `namespace`, `group` and returns a string.
    fn workload_to_resource_function<'v>(
        func: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        if func.get_type() != "function" {
            return Err(bad_arg(
                "workload_to_resource_function",
                "func",
                "function",
                func,
            ));
        }
        eval.module().set(crate::eval::W2R_GLOBAL, func);
        ctx(eval).st.borrow_mut().w2r_set = true;
        Ok(NoneType)
    }

    /// A Kubernetes resource deployed by your own commands instead of YAML.
    ///
    /// # Arguments
    /// * `name`: the resource name.
    /// * `apply_cmd`: a command that deploys and prints the deployed objects as YAML.
    /// * `delete_cmd`: a command that deletes them (`stilt down`).
    /// * `deps`: files whose changes re-run `apply_cmd`.
    /// * `image_selector`: the image live updates apply to.
    /// * `live_update`: live-update steps for the containers running that image.
    fn k8s_custom_deploy<'v>(
        name: &str,
        apply_cmd: Option<Value<'v>>,
        delete_cmd: Option<Value<'v>>,
        deps: Option<Value<'v>>,
        image_selector: Option<Value<'v>>,
        live_update: Option<Value<'v>>,
        apply_dir: Option<Value<'v>>,
        apply_env: Option<Value<'v>>,
        apply_cmd_bat: Option<Value<'v>>,
        delete_dir: Option<Value<'v>>,
        delete_env: Option<Value<'v>>,
        delete_cmd_bat: Option<Value<'v>>,
        container_selector: Option<Value<'v>>,
        image_deps: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "k8s_custom_deploy";
        let _ = (apply_cmd_bat, delete_cmd_bat);
        let dir = cur_dir(eval);
        let apply = match apply_cmd {
            Some(v) => to_argv(f, "apply_cmd", v)?,
            None => vec![],
        };
        if apply.is_empty() {
            bail!("{f}: for parameter \"apply_cmd\": cannot be empty");
        }
        let delete = match delete_cmd {
            Some(v) => to_argv(f, "delete_cmd", v)?,
            None => vec![],
        };
        if delete.is_empty() {
            bail!("{f}: for parameter \"delete_cmd\": cannot be empty");
        }
        let lu = live_update_arg(eval, f, live_update)?;
        let image_selector = opt_string(f, "image_selector", image_selector)?;
        let container_selector = opt_string(f, "container_selector", container_selector)?;
        if !lu.is_empty() && (image_selector.is_empty() == container_selector.is_empty()) {
            bail!("{f}: live_update requires exactly one of image_selector or container_selector");
        }
        let d = |v: Option<Value>, p: &str| -> anyhow::Result<PathBuf> {
            let s = opt_string(f, p, v)?;
            Ok(if s.is_empty() {
                dir.clone()
            } else {
                abs_path(&dir, &s)
            })
        };
        let cd = CustomDeploy {
            name: name.to_owned(),
            apply_cmd: apply,
            apply_dir: d(apply_dir, "apply_dir")?,
            apply_env: str_dict(f, "apply_env", apply_env)?,
            delete_cmd: delete,
            delete_dir: d(delete_dir, "delete_dir")?,
            delete_env: str_dict(f, "delete_env", delete_env)?,
            deps: str_or_list(f, "deps", deps)?
                .iter()
                .map(|p| abs_path(&dir, p))
                .collect(),
            image_selector,
            container_selector,
            live_update: lu,
            image_deps: str_or_list(f, "image_deps", image_deps)?,
        };
        ctx(eval).st.borrow_mut().custom_deploys.push(cd);
        Ok(NoneType)
    }

    /// Renders a local Helm chart (`helm template`) and returns the YAML as a blob, for `k8s_yaml`.
    ///
    /// # Arguments
    /// * `paths`: the chart directory.
    /// * `name`: the release name.
    /// * `namespace`: the release namespace.
    /// * `values`: values files.
    /// * `set`: `key=value` overrides.
    /// * `kube_version`: the Kubernetes version to render for.
    /// * `skip_crds`: leave CRDs out.
    fn helm<'v>(
        paths: Value<'v>,
        name: Option<Value<'v>>,
        namespace: Option<Value<'v>>,
        values: Option<Value<'v>>,
        set: Option<Value<'v>>,
        kube_version: Option<Value<'v>>,
        skip_crds: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "helm";
        let c = ctx(eval);
        let dir = cur_dir(eval);
        let chart = abs_path(&dir, &string(f, "paths", paths)?);
        let name = opt_string(f, "name", name)?;
        let ns = opt_string(f, "namespace", namespace)?;
        let values: Vec<PathBuf> = str_or_list(f, "values", values)?
            .iter()
            .map(|p| abs_path(&dir, p))
            .collect();
        let sets = str_or_list(f, "set", set)?;
        let kv = opt_string(f, "kube_version", kube_version)?;
        let skip = opt_bool(f, "skip_crds", skip_crds, false)?;
        if c.host.which("helm").is_none() {
            bail!(
                "{f}: the `helm` executable was not found on PATH; install Helm 3 (https://helm.sh/docs/intro/install/) to use helm()"
            );
        }
        if !c.host.is_dir(&chart) {
            bail!(
                "{f}: {} is not a directory (helm() needs a local chart directory)",
                chart.display()
            );
        }
        c.add_config_file(&chart);
        let mut argv = vec!["helm".to_owned(), "template".to_owned()];
        argv.push(if name.is_empty() {
            "chart".into()
        } else {
            name.clone()
        });
        argv.push(chart.display().to_string());
        if !ns.is_empty() {
            argv.extend(["--namespace".into(), ns.clone()]);
        }
        if !kv.is_empty() {
            argv.extend(["--kube-version".into(), kv]);
        }
        if !skip {
            argv.push("--include-crds".into());
        }
        for v in &values {
            c.add_config_file(v);
            argv.extend(["--values".into(), v.display().to_string()]);
        }
        for s in &sets {
            argv.extend(["--set".into(), s.clone()]);
        }
        let out = run_local(eval, argv, dir, vec![], None, true, false)?;
        let mut ents =
            parse_entities(&out).map_err(|e| anyhow!("{f}: error parsing helm output: {e}"))?;
        ents.retain(|e| {
            let hook = crate::objects::at(&e.obj, &["metadata", "annotations", "helm.sh/hook"])
                .and_then(|h| h.as_str())
                .unwrap_or("");
            !hook
                .split(',')
                .any(|h| matches!(h.trim(), "test" | "test-success" | "test-failure"))
        });
        if !ns.is_empty() {
            for e in &mut ents {
                if helm_namespaced(e.kind())
                    && e.namespace().is_empty()
                    && let Some(m) = e.obj.get_mut("metadata").and_then(|m| m.as_object_mut())
                {
                    m.insert("namespace".into(), Json::String(ns.clone()));
                }
            }
        }
        let objs: Vec<Json> = ents.into_iter().map(|e| e.obj).collect();
        Ok(eval.heap().alloc(Blob(crate::yaml::encode_stream(&objs)?)))
    }

    /// Builds a kustomization (`kustomize build`, or `kubectl kustomize`) and returns the YAML as a blob, for `k8s_yaml`.
    ///
    /// # Arguments
    /// * `paths`: the kustomization directory.
    /// * `kustomize_bin`: the kustomize executable to use.
    /// * `flags`: extra flags.
    fn kustomize<'v>(
        paths: Value<'v>,
        kustomize_bin: Option<Value<'v>>,
        flags: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "kustomize";
        let c = ctx(eval);
        let dir = cur_dir(eval);
        let p = string(f, "paths", paths)?;
        let abs = abs_path(&dir, &p);
        let bin = opt_string(f, "kustomize_bin", kustomize_bin)?;
        let flags = str_list(f, "flags", flags)?;
        let mut argv = if !bin.is_empty() {
            vec![bin, "build".into()]
        } else if c.host.which("kustomize").is_some() {
            vec!["kustomize".into(), "build".into()]
        } else if c.host.which("kubectl").is_some() {
            vec!["kubectl".into(), "kustomize".into()]
        } else {
            bail!(
                "{f}: neither `kustomize` nor `kubectl` was found on PATH; install kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl to use kustomize()"
            );
        };
        argv.extend(flags);
        argv.push(abs.display().to_string());
        c.add_config_file(&abs);
        // Also what the kustomization reads outside its directory (bases, components, ...).
        let read_yaml = |p: &std::path::Path| {
            let bytes = c.host.read_file(p).ok()?;
            crate::yaml::parse_one(&String::from_utf8_lossy(&bytes)).ok()
        };
        for d in super::kustomize_deps::deps(&abs, read_yaml, |p| c.host.is_dir(p)) {
            c.add_config_file(&d);
        }
        let out = run_local(eval, argv, dir, vec![], None, true, false)?;
        Ok(eval.heap().alloc(Blob(out)))
    }
}
