//! Objects handed to an agent keep Kubernetes Secrets' values out: a KubernetesApply carries the
//! YAML it applies (`spec.yaml`, `status.resultYAML`), and a Secret in it would put the values
//! the log store redacts into the agent's context. Their `data` / `stringData` values are
//! replaced; everything else is left as the API served it.

use serde_json::Value;

pub const REDACTED: &str = "[redacted by stilt mcp]";

/// Redacts Secret values in the YAML fields of a KubernetesApply; other objects pass unchanged.
pub fn redact_object(mut obj: Value) -> Value {
    if obj["kind"] != "KubernetesApply" {
        return obj;
    }
    for (section, field) in [("spec", "yaml"), ("status", "resultYAML")] {
        if let Some(Value::String(text)) = obj.get_mut(section).and_then(|s| s.get_mut(field)) {
            *text = redact_yaml(text);
        }
    }
    obj
}

/// The YAML with every Secret's values replaced. YAML without a Secret is returned as it was;
/// YAML that mentions one but does not parse is withheld (its values cannot be told apart).
pub fn redact_yaml(text: &str) -> String {
    if !text.contains("Secret") {
        return text.to_string();
    }
    let Ok(docs) = stilt_k8s::manifest::parse_yaml(text) else {
        return format!("{REDACTED}: YAML that mentions a Secret but does not parse");
    };
    if !docs.iter().any(|d| d["kind"] == "Secret") {
        return text.to_string();
    }
    docs.into_iter()
        .map(|mut d| {
            if d["kind"] == "Secret" {
                for field in ["data", "stringData"] {
                    if let Some(Value::Object(m)) = d.get_mut(field) {
                        for v in m.values_mut() {
                            *v = Value::String(REDACTED.into());
                        }
                    }
                }
                // Client-side apply records the whole object, values included, here.
                if let Some(Value::String(v)) = d.pointer_mut(
                    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
                ) {
                    *v = REDACTED.into();
                }
            }
            crate::yaml::to_string(&d)
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_in_applied_yaml_are_redacted() {
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"stringData\":{\"password\":\"hunter2-long\"}}\nstringData:\n  password: hunter2-long\ndata:\n  token: c3VwZXJzZWNyZXQ=\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: debug\n";
        let obj = json!({"kind": "KubernetesApply", "metadata": {"name": "db"},
            "spec": {"yaml": yaml}, "status": {"resultYAML": yaml}});
        let out = redact_object(obj);
        for field in [&out["spec"]["yaml"], &out["status"]["resultYAML"]] {
            let text = field.as_str().unwrap();
            assert!(!text.contains("hunter2-long"), "{text}");
            assert!(!text.contains("c3VwZXJzZWNyZXQ="), "{text}");
            assert!(text.contains(REDACTED), "{text}");
            // Other documents are kept.
            assert!(text.contains("mode: debug"), "{text}");
        }
    }

    #[test]
    fn other_objects_and_secret_free_yaml_are_untouched() {
        let cmd = json!({"kind": "Cmd", "spec": {"yaml": "kind: Secret"}});
        assert_eq!(redact_object(cmd.clone()), cmd);
        let plain = "kind: ConfigMap\ndata:\n  a: b\n";
        assert_eq!(redact_yaml(plain), plain);
        assert!(redact_yaml("kind: Secret\n  : : [").starts_with(REDACTED));
    }
}
