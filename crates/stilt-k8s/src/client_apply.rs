//! Client-side apply, as `kubectl apply` (and Tilt by default) does it: the applied
//! configuration is kept in the object's `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, and an update is a three-way JSON merge patch between that configuration (what we
//! applied last), the new one and the live object. Fields we applied before and no longer apply
//! are removed; fields others set that we never applied are left alone.

use serde_json::{Map, Value};

/// The annotation kubectl keeps the last applied configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object to send, carrying its own configuration in the last-applied annotation (kubectl
/// stores the configuration without that annotation, as compact JSON).
pub fn with_last_applied(obj: &Value) -> Value {
    let mut config = obj.clone();
    if let Some(a) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
        if a.is_empty()
            && let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("annotations");
        }
    }
    let mut out = obj.clone();
    let meta = out.as_object_mut().map(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    if let Some(Value::Object(meta)) = meta {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(a) = annotations {
            a.insert(LAST_APPLIED.into(), Value::String(format!("{config}\n")));
        }
    }
    out
}

/// The configuration recorded in a live object's last-applied annotation, if any.
pub fn last_applied(live: &Value) -> Option<Value> {
    live.pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
}

/// The JSON merge patch that takes `current` to `modified`, deleting what `original` had and
/// `modified` dropped. `None` when nothing needs to change.
pub fn three_way_merge_patch(
    original: Option<&Value>,
    modified: &Value,
    current: &Value,
) -> Option<Value> {
    let mut patch = Map::new();
    if let (Some(Value::Object(o)), Value::Object(m)) = (original, modified) {
        deletions(o, m, current.as_object(), &mut patch);
    }
    if let Value::Object(m) = modified {
        changes(m, current.as_object(), &mut patch);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Keys of `original` missing from `modified` become `null` (only where the live object still
/// has them); nested objects recurse.
fn deletions(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
    patch: &mut Map<String, Value>,
) {
    for (k, ov) in original {
        let cv = current.and_then(|c| c.get(k));
        match modified.get(k) {
            None if cv.is_some() => {
                patch.insert(k.clone(), Value::Null);
            }
            Some(Value::Object(mv)) => {
                if let Value::Object(ov) = ov {
                    let mut sub = Map::new();
                    deletions(ov, mv, cv.and_then(Value::as_object), &mut sub);
                    if !sub.is_empty() {
                        patch.insert(k.clone(), Value::Object(sub));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Keys of `modified` whose value differs from the live object's; objects merge key by key,
/// anything else (lists included, as merge patches do) is replaced whole.
fn changes(
    modified: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
    patch: &mut Map<String, Value>,
) {
    for (k, mv) in modified {
        let cv = current.and_then(|c| c.get(k));
        match (mv, cv) {
            (_, Some(cv)) if cv == mv => {}
            (Value::Object(mo), Some(Value::Object(co))) => {
                let mut sub = match patch.remove(k) {
                    Some(Value::Object(s)) => s,
                    _ => Map::new(),
                };
                changes(mo, Some(co), &mut sub);
                if !sub.is_empty() {
                    patch.insert(k.clone(), Value::Object(sub));
                }
            }
            _ => {
                patch.insert(k.clone(), mv.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn three_way_patches() {
        // (original, modified, current) → patch
        let cases: Vec<(Option<Value>, Value, Value, Option<Value>)> = vec![
            // Nothing changed, though the server added fields of its own.
            (
                Some(json!({"spec": {"replicas": 1}})),
                json!({"spec": {"replicas": 1}}),
                json!({"spec": {"replicas": 1, "revisionHistoryLimit": 10}}),
                None,
            ),
            // A changed value.
            (
                Some(json!({"spec": {"replicas": 1}})),
                json!({"spec": {"replicas": 2}}),
                json!({"spec": {"replicas": 1}}),
                Some(json!({"spec": {"replicas": 2}})),
            ),
            // A field we applied before and no longer do is removed; one others set stays.
            (
                Some(json!({"metadata": {"labels": {"a": "1", "b": "2"}}})),
                json!({"metadata": {"labels": {"a": "1"}}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2", "other": "x"}}}),
                Some(json!({"metadata": {"labels": {"b": null}}})),
            ),
            // Already gone from the live object: nothing to delete.
            (
                Some(json!({"data": {"k": "v"}})),
                json!({}),
                json!({"metadata": {}}),
                None,
            ),
            // Lists are replaced whole.
            (
                Some(json!({"args": ["a"]})),
                json!({"args": ["a", "b"]}),
                json!({"args": ["a"]}),
                Some(json!({"args": ["a", "b"]})),
            ),
            // No record of a previous apply: nothing is deleted.
            (
                None,
                json!({"data": {"k": "v"}}),
                json!({"data": {"k": "old", "x": "y"}}),
                Some(json!({"data": {"k": "v"}})),
            ),
            // A live value someone else changed is taken back to ours.
            (
                Some(json!({"data": {"k": "v"}})),
                json!({"data": {"k": "v"}}),
                json!({"data": {"k": "edited"}}),
                Some(json!({"data": {"k": "v"}})),
            ),
        ];
        for (i, (o, m, c, want)) in cases.into_iter().enumerate() {
            assert_eq!(three_way_merge_patch(o.as_ref(), &m, &c), want, "case {i}");
        }
    }

    #[test]
    fn the_annotation_holds_the_configuration_without_itself() {
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let sent = with_last_applied(&obj);
        assert_eq!(last_applied(&sent), Some(obj.clone()));
        let again = with_last_applied(&sent);
        assert_eq!(last_applied(&again), Some(obj));
    }
}
