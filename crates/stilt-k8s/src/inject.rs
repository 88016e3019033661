//! Tilt's YAML transforms before an apply (§4.5): built images injected where the selector
//! matches (containers, init and ephemeral containers, image volumes, env vars when asked,
//! custom locators), `imagePullPolicy: IfNotPresent` on injected containers, command/args
//! overrides, StatefulSets made `Parallel`, the `app.kubernetes.io/managed-by: tilt` label on
//! every object, and `tilt.dev/pod-template-hash` on every pod template.

use crate::error::{K8sError, Result};
use crate::image::{ImageRef, RefSelector};
use crate::jsonpath::JsonPath;
use crate::manifest::{pod_spec_pointers, pod_template_pointers};
use regex::Regex;
use serde_json::{Value, json};

/// Label put on every applied object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "tilt";
/// Label put on every pod template (hash of the template before the label was added).
pub const POD_TEMPLATE_HASH_LABEL: &str = "tilt.dev/pod-template-hash";
/// Objects with this annotation set to `keep` are never deleted by `down`.
pub const DOWN_POLICY_ANNOTATION: &str = "tilt.dev/down-policy";

/// One built image to inject: the selector from the Tiltfile and the reference the cluster
/// should pull.
#[derive(Debug, Clone)]
pub struct ImageInjection {
    /// The selector as written (used in errors).
    pub name: String,
    pub selector: RefSelector,
    /// What to write into the YAML (ImageMap `status.image`: the cluster-side ref).
    pub cluster_ref: String,
    pub match_in_env_vars: bool,
    pub override_command: Option<Vec<String>>,
    pub override_args: Option<Vec<String>>,
}

impl ImageInjection {
    /// Match `selector` (by name, or exactly when it has a tag) and inject `cluster_ref`.
    pub fn new(selector: &str, cluster_ref: &str) -> Result<Self> {
        Ok(ImageInjection {
            name: selector.to_string(),
            selector: RefSelector::new(selector)?,
            cluster_ref: cluster_ref.to_string(),
            match_in_env_vars: false,
            override_command: None,
            override_args: None,
        })
    }

    /// From an ImageMap object; `None` while it has no built image yet.
    pub fn from_image_map(im: &stilt_api::ImageMap) -> Result<Option<Self>> {
        let Some(image) = im
            .status
            .as_ref()
            .map(|s| s.image.as_str())
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let mut sel = RefSelector::new(&im.spec.selector)?;
        if im.spec.match_exact {
            sel = sel.with_exact(true);
        }
        Ok(Some(ImageInjection {
            name: im.spec.selector.clone(),
            selector: sel,
            cluster_ref: image.to_string(),
            match_in_env_vars: im.spec.match_in_env_vars,
            override_command: im.spec.override_command.as_ref().map(|c| c.command.clone()),
            override_args: im.spec.override_args.as_ref().map(|a| a.args.clone()),
        }))
    }
}

/// Which objects a locator applies to: regexps, case-insensitive, matching anywhere in the
/// field (as Go's `MatchString`); empty = any.
#[derive(Debug, Clone)]
pub struct ObjectMatcher {
    api_version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
}

impl ObjectMatcher {
    pub fn new(api_version: &str, kind: &str, name: &str, namespace: &str) -> Result<Self> {
        let re = |s: &str| -> Result<Option<Regex>> {
            if s.is_empty() {
                return Ok(None);
            }
            Regex::new(&format!("(?i){s}"))
                .map(Some)
                .map_err(|e| K8sError::Invalid(format!("bad regexp {s:?}: {e}")))
        };
        Ok(ObjectMatcher {
            api_version: re(api_version)?,
            kind: re(kind)?,
            name: re(name)?,
            namespace: re(namespace)?,
        })
    }

    /// From the API type.
    pub fn from_api(s: &stilt_api::ObjectSelector) -> Result<Self> {
        Self::new(
            &s.api_version_regexp,
            &s.kind_regexp,
            &s.name_regexp,
            &s.namespace_regexp,
        )
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let f = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let m = |r: &Option<Regex>, v: &str| r.as_ref().is_none_or(|r| r.is_match(v));
        m(&self.api_version, f("/apiVersion"))
            && m(&self.kind, f("/kind"))
            && m(&self.name, f("/metadata/name"))
            && m(&self.namespace, f("/metadata/namespace"))
    }
}

/// Where images live in objects Stilt does not know (`k8s_kind(image_json_path=…)`,
/// `image_object=…`).
#[derive(Debug, Clone)]
pub struct ImageLocator {
    pub matcher: ObjectMatcher,
    pub path: JsonPath,
    /// `Some((repo_field, tag_field))` when the path points at an object holding the image
    /// split in two fields.
    pub object: Option<(String, String)>,
}

impl ImageLocator {
    pub fn from_api(l: &stilt_api::KubernetesImageLocator) -> Result<Self> {
        Ok(ImageLocator {
            matcher: ObjectMatcher::from_api(&l.object_selector)?,
            path: JsonPath::parse(&l.path)?,
            object: l
                .object
                .as_ref()
                .map(|o| (o.repo_field.clone(), o.tag_field.clone())),
        })
    }
}

/// What [`inject_images`] did to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Indices (into the `images` slice) of the images that matched somewhere in the object.
    pub images: Vec<usize>,
}

/// Replace matching images in one object. See the module docs for where.
pub fn inject_images(
    obj: &mut Value,
    images: &[ImageInjection],
    locators: &[ImageLocator],
) -> Result<Injected> {
    let mut hit = vec![false; images.len()];
    let find = |s: &str| images.iter().position(|im| im.selector.matches(s));

    let pod_specs = pod_spec_pointers(obj);
    let mut any_in_pods = false;
    for ptr in &pod_specs {
        let Some(spec) = obj.pointer_mut(ptr) else {
            continue;
        };
        for field in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(Value::Array(cs)) = spec.get_mut(field) else {
                continue;
            };
            for c in cs.iter_mut() {
                let mut replaced = None;
                if let Some(img) = c.get("image").and_then(Value::as_str)
                    && let Some(i) = find(img)
                {
                    replaced = Some(i);
                }
                if let Some(i) = replaced {
                    let im = &images[i];
                    hit[i] = true;
                    any_in_pods = true;
                    c["image"] = json!(im.cluster_ref);
                    c["imagePullPolicy"] = json!("IfNotPresent");
                    if let Some(cmd) = &im.override_command {
                        c["command"] = json!(cmd);
                        // Tilt: an entrypoint override without args clears the image's args.
                        if im.override_args.is_none()
                            && let Some(m) = c.as_object_mut()
                        {
                            m.remove("args");
                        }
                    }
                    if let Some(args) = &im.override_args {
                        c["args"] = json!(args);
                    }
                }
                // Env vars whose value is a matching ref (only for images that ask for it).
                if let Some(Value::Array(env)) = c.get_mut("env") {
                    for e in env.iter_mut() {
                        let Some(v) = e.get("value").and_then(Value::as_str) else {
                            continue;
                        };
                        if let Some(i) = images
                            .iter()
                            .position(|im| im.match_in_env_vars && im.selector.matches(v))
                        {
                            hit[i] = true;
                            e["value"] = json!(images[i].cluster_ref);
                        }
                    }
                }
            }
        }
        // Image volumes (`volumes[].image.reference`, Kubernetes 1.31+).
        if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
            for v in vols.iter_mut() {
                let Some(r) = v.pointer("/image/reference").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(i) = find(r) {
                    hit[i] = true;
                    any_in_pods = true;
                    v["image"]["reference"] = json!(images[i].cluster_ref);
                    v["image"]["pullPolicy"] = json!("IfNotPresent");
                }
            }
        }
    }
    if any_in_pods && obj.get("kind").and_then(Value::as_str) == Some("StatefulSet") {
        obj["spec"]["podManagementPolicy"] = json!("Parallel");
    }

    let applicable: Vec<&ImageLocator> =
        locators.iter().filter(|l| l.matcher.matches(obj)).collect();
    for loc in applicable {
        let mut err = None;
        if loc.object.is_none()
            && let Some((parent, key)) = loc.path.split_last_key()
        {
            // As Tilt: an `imagePullPolicy` beside the image field is set too, so the
            // cluster uses the image just pushed rather than pulling (`Always`) again.
            parent.visit_mut(obj, &mut |p| {
                if let Some(s) = p.get(key).and_then(Value::as_str)
                    && let Some(i) = find(s)
                {
                    hit[i] = true;
                    p[key] = json!(images[i].cluster_ref);
                    if p.get("imagePullPolicy").is_some_and(Value::is_string) {
                        p["imagePullPolicy"] = json!("IfNotPresent");
                    }
                }
            });
            continue;
        }
        loc.path.visit_mut(obj, &mut |v| match &loc.object {
            None => {
                if let Some(s) = v.as_str()
                    && let Some(i) = find(s)
                {
                    hit[i] = true;
                    *v = json!(images[i].cluster_ref);
                }
            }
            Some((repo_f, tag_f)) => {
                let repo = v.get(repo_f).and_then(Value::as_str).unwrap_or("");
                let tag = v.get(tag_f).and_then(Value::as_str).unwrap_or("");
                if repo.is_empty() {
                    return;
                }
                let full = if tag.is_empty() {
                    repo.to_string()
                } else {
                    format!("{repo}:{tag}")
                };
                if let Some(i) = find(&full) {
                    match ImageRef::parse(&images[i].cluster_ref) {
                        Ok(r) => {
                            hit[i] = true;
                            v[repo_f.as_str()] = json!(strip_tag(&images[i].cluster_ref));
                            v[tag_f.as_str()] =
                                json!(r.tag.or(r.digest).unwrap_or_else(|| "latest".into()));
                        }
                        Err(e) => err = Some(e),
                    }
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
    }

    Ok(Injected {
        images: hit
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.then_some(i))
            .collect(),
    })
}

/// `host:5000/a/b:tag` → `host:5000/a/b` (keeps the ref as written, unlike normalization).
fn strip_tag(r: &str) -> String {
    let r = r.split('@').next().unwrap_or(r);
    let last_slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[last_slash..].rfind(':') {
        Some(i) => r[..last_slash + i].to_string(),
        None => r.to_string(),
    }
}

/// Set `app.kubernetes.io/managed-by: tilt` in `metadata.labels`.
pub fn add_managed_by_label(obj: &mut Value) {
    set_label(obj, "/metadata", MANAGED_BY_LABEL, MANAGED_BY_VALUE);
}

fn set_label(obj: &mut Value, meta_ptr: &str, key: &str, value: &str) {
    let Some(target) = ensure_object(obj, meta_ptr) else {
        return;
    };
    let labels = target
        .entry("labels")
        .or_insert_with(|| Value::Object(Default::default()));
    if !labels.is_object() {
        *labels = Value::Object(Default::default());
    }
    labels[key] = json!(value);
}

/// Walk/create objects along a JSON pointer.
fn ensure_object<'a>(
    obj: &'a mut Value,
    ptr: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let mut cur = obj;
    for part in ptr.split('/').filter(|p| !p.is_empty()) {
        let m = cur.as_object_mut()?;
        cur = m
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    cur.as_object_mut()
}

/// First 10 bytes (20 hex chars) of the SHA-1 of the template's JSON.
pub fn pod_template_hash(template: &Value) -> String {
    use sha1::Digest;
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let d = sha1::Sha1::digest(&bytes);
    d[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// Label every pod template with [`POD_TEMPLATE_HASH_LABEL`] (hash taken without the label).
pub fn add_pod_template_hashes(obj: &mut Value) {
    for ptr in pod_template_pointers(obj) {
        let Some(tmpl) = obj.pointer_mut(ptr) else {
            continue;
        };
        if let Some(labels) = tmpl
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        let hash = pod_template_hash(tmpl);
        set_label(tmpl, "/metadata", POD_TEMPLATE_HASH_LABEL, &hash);
    }
}

/// Every transform before an apply, for a whole manifest: inject images, label, hash. Fails
/// with [`K8sError::ImageMissing`] (Tilt's "Docker image missing from yaml") when an image
/// matched nothing.
pub fn prepare_for_apply(
    mut objects: Vec<Value>,
    images: &[ImageInjection],
    locators: &[ImageLocator],
) -> Result<Vec<Value>> {
    let mut used = vec![false; images.len()];
    for obj in objects.iter_mut() {
        for i in inject_images(obj, images, locators)?.images {
            used[i] = true;
        }
        add_managed_by_label(obj);
        add_pod_template_hashes(obj);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(K8sError::ImageMissing(images[i].name.clone()));
    }
    Ok(objects)
}

/// Does any image in the object match one of the selectors? (The loader's "is this a
/// workload" test; no changes are made.)
pub fn references_images(
    obj: &Value,
    images: &[ImageInjection],
    locators: &[ImageLocator],
) -> Vec<usize> {
    let mut copy = obj.clone();
    inject_images(&mut copy, images, locators)
        .map(|i| i.images)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_yaml;

    fn deployment() -> Value {
        parse_yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: init
        image: web-init
      containers:
      - name: web
        image: gcr.io/proj/web:v0
        imagePullPolicy: Always
        env:
        - {name: SIDE, value: "gcr.io/proj/web"}
        - {name: OTHER, value: "nginx"}
      - name: sidecar
        image: nginx:1.25
      volumes:
      - name: data
        image: {reference: "gcr.io/proj/web", pullPolicy: Always}
"#,
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn injects_into_containers_init_containers_and_image_volumes() {
        let mut d = deployment();
        let images = [
            ImageInjection::new("gcr.io/proj/web", "localhost:5000/gcr.io_proj_web:tilt-1")
                .unwrap(),
            ImageInjection::new("web-init", "localhost:5000/web-init:tilt-2").unwrap(),
        ];
        let inj = inject_images(&mut d, &images, &[]).unwrap();
        assert_eq!(inj.images, [0, 1]);
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "localhost:5000/gcr.io_proj_web:tilt-1");
        assert_eq!(c[0]["imagePullPolicy"], "IfNotPresent");
        // Not injected ⇒ untouched.
        assert_eq!(c[1]["image"], "nginx:1.25");
        assert!(c[1].get("imagePullPolicy").is_none());
        // Env vars only when asked.
        assert_eq!(c[0]["env"][0]["value"], "gcr.io/proj/web");
        let ic = &d["spec"]["template"]["spec"]["initContainers"][0];
        assert_eq!(ic["image"], "localhost:5000/web-init:tilt-2");
        let v = &d["spec"]["template"]["spec"]["volumes"][0]["image"];
        assert_eq!(v["reference"], "localhost:5000/gcr.io_proj_web:tilt-1");
        assert_eq!(v["pullPolicy"], "IfNotPresent");
    }

    #[test]
    fn env_vars_when_match_in_env_vars() {
        let mut d = deployment();
        let mut im = ImageInjection::new("gcr.io/proj/web", "reg/web:tilt-1").unwrap();
        im.match_in_env_vars = true;
        inject_images(&mut d, &[im], &[]).unwrap();
        let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], "reg/web:tilt-1");
        assert_eq!(env[1]["value"], "nginx");
    }

    #[test]
    fn tagged_selector_matches_exactly() {
        let mut d = deployment();
        let im = ImageInjection::new("gcr.io/proj/web:v1", "reg/web:tilt-1").unwrap();
        assert!(inject_images(&mut d, &[im], &[]).unwrap().images.is_empty());
        let im = ImageInjection::new("gcr.io/proj/web:v0", "reg/web:tilt-1").unwrap();
        assert_eq!(inject_images(&mut d, &[im], &[]).unwrap().images, [0]);
    }

    #[test]
    fn overrides_command_and_args() {
        let mut d = deployment();
        let mut im = ImageInjection::new("gcr.io/proj/web", "reg/web:tilt-1").unwrap();
        im.override_command = Some(vec!["/bin/sh".into(), "-c".into()]);
        inject_images(&mut d, &[im.clone()], &[]).unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["/bin/sh", "-c"]));
        assert!(c.get("args").is_none());
        im.override_args = Some(vec!["serve".into()]);
        let mut d = deployment();
        inject_images(&mut d, &[im], &[]).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["serve"])
        );
    }

    #[test]
    fn statefulsets_become_parallel() {
        let mut s = parse_yaml(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    spec:\n      containers: [{name: db, image: db}]\n",
        )
        .unwrap()
        .remove(0);
        inject_images(&mut s, &[ImageInjection::new("db", "r/db:t").unwrap()], &[]).unwrap();
        assert_eq!(s["spec"]["podManagementPolicy"], "Parallel");
    }

    #[test]
    fn custom_locators_by_json_path_and_object() {
        let mut crd = parse_yaml(
            r#"
apiVersion: example.com/v1
kind: UselessMachine
metadata: {name: um}
spec:
  image: frontend
  imagePullPolicy: Always
  sidecars: [{image: frontend}, {image: other}]
  values:
    img: {repo: frontend, tag: v1}
"#,
        )
        .unwrap()
        .remove(0);
        let im = ImageInjection::new("frontend", "localhost:5000/frontend:tilt-9").unwrap();
        let path_loc = ImageLocator {
            matcher: ObjectMatcher::new("", "uselessmachine", "", "").unwrap(),
            path: JsonPath::parse("{.spec.image}").unwrap(),
            object: None,
        };
        let list_loc = ImageLocator {
            matcher: ObjectMatcher::new("", "Useless", "", "").unwrap(),
            path: JsonPath::parse("{.spec.sidecars[*].image}").unwrap(),
            object: None,
        };
        let obj_loc = ImageLocator {
            matcher: ObjectMatcher::new("example.com", "", "", "").unwrap(),
            path: JsonPath::parse("{.spec.values.img}").unwrap(),
            object: Some(("repo".into(), "tag".into())),
        };
        let other_kind = ImageLocator {
            matcher: ObjectMatcher::new("", "^Deployment$", "", "").unwrap(),
            path: JsonPath::parse("{.spec.values.img.repo}").unwrap(),
            object: None,
        };
        let inj =
            inject_images(&mut crd, &[im], &[path_loc, list_loc, obj_loc, other_kind]).unwrap();
        assert_eq!(inj.images, [0]);
        assert_eq!(crd["spec"]["image"], "localhost:5000/frontend:tilt-9");
        assert_eq!(crd["spec"]["imagePullPolicy"], "IfNotPresent");
        assert!(crd["spec"]["sidecars"][0].get("imagePullPolicy").is_none());
        assert_eq!(
            crd["spec"]["sidecars"][0]["image"],
            "localhost:5000/frontend:tilt-9"
        );
        assert_eq!(crd["spec"]["sidecars"][1]["image"], "other");
        assert_eq!(
            crd["spec"]["values"]["img"],
            json!({"repo": "localhost:5000/frontend", "tag": "tilt-9"})
        );
    }

    #[test]
    fn locator_from_api_types() {
        let l = stilt_api::KubernetesImageLocator {
            object_selector: stilt_api::ObjectSelector {
                kind_regexp: "^Foo$".into(),
                ..Default::default()
            },
            path: "{.spec.image}".into(),
            object: None,
        };
        let l = ImageLocator::from_api(&l).unwrap();
        assert!(l.matcher.matches(&json!({"kind": "foo"})));
        assert!(!l.matcher.matches(&json!({"kind": "Foobar"})));
    }

    #[test]
    fn labels_and_pod_template_hash() {
        let objs = vec![
            deployment(),
            parse_yaml("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n").unwrap().remove(0),
            parse_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: web-init}]}\n")
                .unwrap()
                .remove(0),
        ];
        let images = [
            ImageInjection::new("gcr.io/proj/web", "r/web:t1").unwrap(),
            ImageInjection::new("web-init", "r/web-init:t2").unwrap(),
        ];
        let out = prepare_for_apply(objs, &images, &[]).unwrap();
        for o in &out {
            assert_eq!(o["metadata"]["labels"][MANAGED_BY_LABEL], "tilt", "{o}");
        }
        assert_eq!(out[0]["metadata"]["labels"]["app"], "web");
        let tl = &out[0]["spec"]["template"]["metadata"]["labels"];
        let hash = tl[POD_TEMPLATE_HASH_LABEL].as_str().unwrap().to_string();
        assert_eq!(hash.len(), 20);
        assert_eq!(tl["app"], "web");
        // The pod template label is not on the Deployment itself, nor on a bare Pod.
        assert!(
            out[0]["metadata"]["labels"]
                .get(POD_TEMPLATE_HASH_LABEL)
                .is_none()
        );
        assert!(
            out[2]["metadata"]["labels"]
                .get(POD_TEMPLATE_HASH_LABEL)
                .is_none()
        );
        assert_eq!(out[2]["spec"]["containers"][0]["image"], "r/web-init:t2");

        // Stable: preparing the output again gives the same hash; a different image changes it.
        let again = prepare_for_apply(out.clone(), &[], &[]).unwrap();
        assert_eq!(
            again[0]["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL],
            hash
        );
        let other = prepare_for_apply(
            vec![deployment()],
            &[ImageInjection::new("gcr.io/proj/web", "r/web:t2").unwrap()],
            &[],
        )
        .unwrap();
        assert_ne!(
            other[0]["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL],
            hash
        );
    }

    #[test]
    fn unmatched_image_is_an_error_with_tilts_wording() {
        let e = prepare_for_apply(
            vec![deployment()],
            &[ImageInjection::new("nothere", "r/x:t").unwrap()],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Docker image missing from yaml: nothere");
    }

    #[test]
    fn from_image_map() {
        let mut im = stilt_api::ImageMap::new(
            "web",
            stilt_api::ImageMapSpec {
                selector: "web".into(),
                match_in_env_vars: true,
                ..Default::default()
            },
        );
        assert!(ImageInjection::from_image_map(&im).unwrap().is_none());
        im.status = Some(stilt_api::ImageMapStatus {
            image: "localhost:5000/web:tilt-1".into(),
            ..Default::default()
        });
        let inj = ImageInjection::from_image_map(&im).unwrap().unwrap();
        assert!(inj.match_in_env_vars);
        assert_eq!(inj.cluster_ref, "localhost:5000/web:tilt-1");
        assert!(references_images(&deployment(), &[inj], &[]).is_empty());
    }
}
