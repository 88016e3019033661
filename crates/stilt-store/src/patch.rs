//! The patch flavours the Kubernetes API accepts, applied to an object's JSON.

use crate::StoreError;
use serde_json::Value;

/// How a PATCH body is interpreted (from its Content-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`. Stilt's kinds have no list merge keys, so this is
    /// RFC 7386 plus the `$patch: delete` / `$patch: replace` directives; other `$` directives
    /// are dropped.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply). Applied as a merge where lists are
    /// replaced; field ownership (managedFields) is not tracked.
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    pub const SUPPORTED: &'static [&'static str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];
}

/// Applies `patch` to `target` and returns the patched object.
pub fn apply(target: &Value, patch_type: PatchType, patch: &Value) -> Result<Value, StoreError> {
    let mut doc = target.clone();
    match patch_type {
        PatchType::Merge | PatchType::Apply => merge(&mut doc, patch),
        PatchType::StrategicMerge => strategic_merge(&mut doc, patch),
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| StoreError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| StoreError::Invalid {
                kind: String::new(),
                name: String::new(),
                causes: vec![stilt_api::FieldError::invalid(
                    "",
                    format!("the JSON patch could not be applied: {e}"),
                )],
            })?;
        }
    }
    Ok(doc)
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.retain(|k, _| !k.starts_with('$'));
            *target = Value::Object(replaced);
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() || value.get("$patch").and_then(Value::as_str) == Some("delete") {
            target.remove(key);
        } else {
            strategic_merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patched = apply(
            &doc,
            PatchType::Merge,
            &json!({"a": "z", "c": {"f": null}, "l": [3]}),
        )
        .unwrap();
        assert_eq!(patched, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_follows_rfc_6902() {
        let doc = json!({"spec": {"args": ["a"]}});
        let patch = json!([{"op": "add", "path": "/spec/args/-", "value": "b"}, {"op": "test", "path": "/spec/args/0", "value": "a"}]);
        assert_eq!(
            apply(&doc, PatchType::Json, &patch).unwrap(),
            json!({"spec": {"args": ["a", "b"]}})
        );
        let failing = json!([{"op": "remove", "path": "/nope"}]);
        assert_eq!(
            apply(&doc, PatchType::Json, &failing).unwrap_err().code(),
            422
        );
    }

    #[test]
    fn strategic_merge_honours_patch_directives() {
        let doc = json!({"a": {"x": 1, "y": 2}, "b": {"k": 1}});
        let patch = json!({"a": {"$patch": "replace", "z": 3}, "b": {"$patch": "delete"}, "$retainKeys": ["a"]});
        assert_eq!(
            apply(&doc, PatchType::StrategicMerge, &patch).unwrap(),
            json!({"a": {"z": 3}})
        );
    }
}
