//! Manifests as data: multi-document YAML ⇄ `serde_json::Value` objects, object references,
//! and the kind order used for apply (and, reversed, for delete).

use crate::error::{K8sError, Result};
use serde_json::Value;

/// Parse multi-document Kubernetes YAML into objects. Empty and comment-only documents are
/// dropped; a top-level `List` (`kind: List` / `*List` with `items`) is flattened, as kubectl
/// does. Numbers follow YAML 1.1 as Kubernetes' YAML does (`0755` is octal 493).
pub fn parse_yaml(yaml: &str) -> Result<Vec<Value>> {
    let mut opts = serde_saphyr::Options::default();
    opts.legacy_octal_numbers = true;
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(yaml, opts)
        .map_err(|e| K8sError::Yaml(e.to_string()))?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(_) => flatten_into(doc, &mut out)?,
            other => {
                return Err(K8sError::Invalid(format!(
                    "a YAML document is not an object: {}",
                    short(&other)
                )));
            }
        }
    }
    Ok(out)
}

fn flatten_into(doc: Value, out: &mut Vec<Value>) -> Result<()> {
    let is_list = doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && doc.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Value::Object(mut m) = doc
            && let Some(Value::Array(items)) = m.remove("items")
        {
            for item in items {
                flatten_into(item, out)?;
            }
        }
        return Ok(());
    }
    if doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(K8sError::Invalid(format!(
            "object has no kind: {}",
            short(&doc)
        )));
    }
    out.push(doc);
    Ok(())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", &s[..s.floor_char_boundary(120)])
    } else {
        s
    }
}

/// Serialize objects as multi-document YAML (`---` between documents), numbers as numbers
/// whatever serde_json's features.
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    let plain: Vec<_> = objects
        .iter()
        .map(stilt_api::plain_numbers::PlainNumbers)
        .collect();
    serde_saphyr::to_string_multiple(&plain).map_err(|e| K8sError::Yaml(e.to_string()))
}

/// Identifies one object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectRef {
    /// `group/version` or `v1`.
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Empty for cluster-scoped objects and for namespaced objects without one (the
    /// connection's default namespace applies).
    pub namespace: String,
    /// Known after the object was applied or read.
    pub uid: String,
}

impl ObjectRef {
    /// The reference of an object value (`uid` filled when present).
    pub fn of(obj: &Value) -> Result<ObjectRef> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let r = ObjectRef {
            api_version: s("/apiVersion").to_string(),
            kind: s("/kind").to_string(),
            name: s("/metadata/name").to_string(),
            namespace: s("/metadata/namespace").to_string(),
            uid: s("/metadata/uid").to_string(),
        };
        if r.kind.is_empty() || r.api_version.is_empty() {
            return Err(K8sError::Invalid(format!(
                "object without apiVersion/kind: {}",
                short(obj)
            )));
        }
        if r.name.is_empty() && obj.pointer("/metadata/generateName").is_none() {
            return Err(K8sError::Invalid(format!(
                "{} without metadata.name",
                r.kind
            )));
        }
        Ok(r)
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// The API version without the group.
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(_, v)| v)
            .unwrap_or(&self.api_version)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{} -n {}", self.kind, self.name, self.namespace)
        }
    }
}

/// Kinds in the order they must exist (kustomize's / Tilt's order). Unknown kinds sort after
/// these, before the validating/mutating webhooks.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const KIND_ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Apply priority of a kind: lower first. Objects of equal priority can be applied in parallel.
pub fn kind_priority(kind: &str) -> usize {
    if let Some(i) = KIND_ORDER.iter().position(|k| *k == kind) {
        return i;
    }
    if let Some(i) = KIND_ORDER_LAST.iter().position(|k| *k == kind) {
        return KIND_ORDER.len() + 1 + i;
    }
    KIND_ORDER.len()
}

/// Stable sort into apply order (reverse it for deletes).
pub fn sort_for_apply(objects: &mut [Value]) {
    objects.sort_by_key(|o| kind_priority(o.get("kind").and_then(Value::as_str).unwrap_or("")));
}

/// Paths (JSON pointers) of the pod templates inside an object: what `spec.template` means for
/// each workload kind. A bare Pod has none (its own labels are not a template).
pub fn pod_template_pointers(obj: &Value) -> Vec<&'static str> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match kind {
        "Pod" => vec![],
        "CronJob" => vec!["/spec/jobTemplate/spec/template"],
        "PodTemplate" => vec!["/template"],
        _ => {
            if obj
                .pointer("/spec/template/spec/containers")
                .is_some_and(Value::is_array)
            {
                vec!["/spec/template"]
            } else {
                vec![]
            }
        }
    }
}

/// Paths (JSON pointers) of the pod specs inside an object (containers live in these).
pub fn pod_spec_pointers(obj: &Value) -> Vec<String> {
    if obj.get("kind").and_then(Value::as_str) == Some("Pod") {
        return vec!["/spec".to_string()];
    }
    pod_template_pointers(obj)
        .into_iter()
        .map(|p| format!("{p}/spec"))
        .filter(|p| obj.pointer(p).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Numbers stay numbers even when serde_json's `arbitrary_precision` is on in the build (the
    /// workspace's starlark turns it on): resultYAML once showed `$serde_json::private::Number`.
    #[test]
    fn yaml_numbers_are_plain() {
        let obj: Value =
            serde_json::from_str(r#"{"spec": {"replicas": 3, "ratio": 0.5}}"#).unwrap();
        let y = to_yaml(&[obj]).unwrap();
        assert!(y.contains("replicas: 3") && y.contains("ratio: 0.5"), "{y}");
    }

    #[test]
    fn parses_multi_doc_yaml_and_flattens_lists() {
        let yaml = r#"
# leading comment
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
# comment-only document
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
  data: {mode: "0755", n: 0755, flag: yes}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
"#;
        let objs = parse_yaml(yaml).unwrap();
        let names: Vec<_> = objs
            .iter()
            .map(|o| ObjectRef::of(o).unwrap().to_string())
            .collect();
        assert_eq!(names, ["Service/web", "ConfigMap/a", "ConfigMap/b"]);
        assert_eq!(objs[1]["data"]["mode"], json!("0755"));
        assert_eq!(objs[1]["data"]["n"], json!(493));
        assert_eq!(objs[1]["data"]["flag"], json!(true));
        // Key order is preserved.
        let keys: Vec<_> = objs[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    }

    #[test]
    fn yaml_errors_carry_positions_and_bad_documents_are_named() {
        let e = parse_yaml("a: [1, 2\n").unwrap_err().to_string();
        assert!(e.starts_with("yaml:"), "{e}");
        assert!(e.contains("line") || e.contains(':'), "{e}");
        let e = parse_yaml("- 1\n- 2\n").unwrap_err().to_string();
        assert!(e.contains("not an object"), "{e}");
        let e = parse_yaml("metadata: {name: x}\n").unwrap_err().to_string();
        assert!(e.contains("no kind"), "{e}");
    }

    #[test]
    fn yaml_round_trips() {
        let objs = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "0755"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"}}),
        ];
        let y = to_yaml(&objs).unwrap();
        assert!(y.contains("---"), "{y}");
        assert_eq!(parse_yaml(&y).unwrap(), objs);
    }

    #[test]
    fn refs_and_groups() {
        let r = ObjectRef::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}))
        .unwrap();
        assert_eq!((r.group(), r.version()), ("apps", "v1"));
        assert_eq!(r.uid, "u1");
        assert_eq!(r.to_string(), "Deployment/web -n ns");
        let core =
            ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}))
                .unwrap();
        assert_eq!((core.group(), core.version()), ("", "v1"));
        assert!(
            ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}})).is_err()
        );
    }

    #[test]
    fn apply_order_puts_namespaces_and_crds_first() {
        let mut objs: Vec<Value> = [
            "Deployment",
            "Widget",
            "Service",
            "Namespace",
            "ValidatingWebhookConfiguration",
            "CustomResourceDefinition",
        ]
        .iter()
        .map(|k| json!({"kind": k}))
        .collect();
        sort_for_apply(&mut objs);
        let kinds: Vec<_> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "Service",
                "Deployment",
                "Widget",
                "ValidatingWebhookConfiguration"
            ]
        );
    }

    #[test]
    fn pod_spec_locations_per_kind() {
        let dep = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(pod_spec_pointers(&dep), ["/spec/template/spec"]);
        let cj = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        assert_eq!(
            pod_spec_pointers(&cj),
            ["/spec/jobTemplate/spec/template/spec"]
        );
        let pod = json!({"kind": "Pod", "spec": {"containers": []}});
        assert_eq!(pod_spec_pointers(&pod), ["/spec"]);
        assert!(pod_template_pointers(&pod).is_empty());
        let svc = json!({"kind": "Service", "spec": {"selector": {}}});
        assert!(pod_spec_pointers(&svc).is_empty());
        // A CRD with a pod template (Argo Rollout) is found too.
        let ro = json!({"kind": "Rollout", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
        assert_eq!(pod_spec_pointers(&ro), ["/spec/template/spec"]);
    }
}
