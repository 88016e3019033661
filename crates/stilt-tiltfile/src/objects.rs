//! Helpers to build tilt.dev/v1alpha1 objects as JSON: metadata here, specs and statuses from
//! stilt-api's typed structs (the objects are strictly decoded into `stilt_api::AnyObject` at
//! the end).

use serde::Serialize;
use serde_json::Value as Json;
use serde_json::json;
use stilt_api::ConfigMapDisableSource;
use stilt_api::DisableSource;

/// Tilt's `apis.SanitizeName`: `/` and `%` become `_`; over-long names are cut and hashed.
pub fn sanitize_name(name: &str) -> String {
    if name == "." || name == ".." {
        return name.replace('.', "_");
    }
    let s: String = name
        .chars()
        .map(|c| if c == '/' || c == '%' { '_' } else { c })
        .collect();
    const MAX: usize = 253;
    if s.len() > MAX {
        let mut h: u32 = 0x811c9dc5;
        for b in name.bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x01000193);
        }
        let mut cut = MAX - 9;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        return format!("{}-{:08x}", &s[..cut], h);
    }
    s
}

/// `ConfigMap` → `config_map`.
pub fn snake(kind: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = kind.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// The value at `path` (keys, outermost first): `Value::pointer` without its per-key unescaping,
/// which allocated on every lookup of the load's hottest paths.
pub fn at<'a>(v: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// A new object with metadata.
pub fn object(kind: &str, name: &str, annotations: &[(&str, &str)]) -> Json {
    let mut ann = serde_json::Map::new();
    for (k, v) in annotations {
        if !v.is_empty() {
            ann.insert((*k).to_owned(), Json::String((*v).to_owned()));
        }
    }
    let mut meta = json!({"name": name});
    if !ann.is_empty() {
        meta["annotations"] = Json::Object(ann);
    }
    json!({"apiVersion": "tilt.dev/v1alpha1", "kind": kind, "metadata": meta})
}

/// `obj` with the given spec, its empty fields dropped (see [`strip_empty`]).
pub fn with_spec(mut obj: Json, spec: impl Serialize) -> Json {
    obj["spec"] = strip_empty(to_json(spec));
    obj
}

/// An API value (spec, status, whole object) as JSON.
pub fn to_json(value: impl Serialize) -> Json {
    serde_json::to_value(value).expect("stilt-api types serialize to JSON (string map keys only)")
}

/// Drop null / empty-string / empty-array / false / empty-object fields (Go's omitempty), so the
/// snapshots show only what is set.
pub fn strip_empty(mut j: Json) -> Json {
    strip_empty_in_place(&mut j);
    j
}

/// [`strip_empty`] without rebuilding the maps it keeps.
fn strip_empty_in_place(j: &mut Json) {
    match j {
        Json::Object(m) => m.retain(|k, v| {
            strip_empty_in_place(v);
            !match v {
                Json::Null => true,
                Json::String(s) => s.is_empty(),
                Json::Array(a) => a.is_empty(),
                Json::Bool(b) => !*b,
                Json::Object(o) => o.is_empty() && !KEEP_EMPTY.contains(&k.as_str()),
                Json::Number(_) => false,
            }
        }),
        Json::Array(a) => a.iter_mut().for_each(strip_empty_in_place),
        _ => {}
    }
}

/// Object-valued fields whose presence matters even when empty.
const KEEP_EMPTY: &[&str] = &["initialSync", "spec"];

/// Where the objects of resource `manifest` read whether it is disabled: its `-disable` ConfigMap.
pub fn disable_source(manifest: &str) -> DisableSource {
    DisableSource {
        config_map: Some(ConfigMapDisableSource {
            name: format!("{manifest}-disable"),
            key: stilt_api::DISABLE_KEY.to_owned(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_finds_what_a_json_pointer_finds() {
        let v = json!({"metadata": {"annotations": {"helm.sh/hook": "x"}, "name": "n"},
                       "spec": {"list": [1], "s": "str"}});
        let cases: &[(&[&str], &str)] = &[
            (&["metadata", "name"], "/metadata/name"),
            (
                &["metadata", "annotations", "helm.sh/hook"],
                "/metadata/annotations/helm.sh~1hook",
            ),
            (&["spec", "list"], "/spec/list"),
            (&["spec", "s", "deeper"], "/spec/s/deeper"),
            (&["missing", "name"], "/missing/name"),
            (&[], ""),
        ];
        for (keys, pointer) in cases {
            assert_eq!(at(&v, keys), v.pointer(pointer), "{pointer}");
        }
    }
}
