//! Helpers to build tilt.dev/v1alpha1 objects as JSON (converted to `stilt_api::AnyObject` with
//! strict decoding at the end, so a field name that stilt-api does not know is a loud error).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_json::json;

pub const ANNOTATION_MANIFEST: &str = "tilt.dev/resource";
pub const ANNOTATION_SPAN_ID: &str = "tilt.dev/log-span-id";
pub const ANNOTATION_MANAGED_BY: &str = "tilt.dev/managed-by";
pub const ANNOTATION_TARGET_ID: &str = "tilt.dev/target-id";
/// On a CmdImage: the image maps of its `image_deps`, comma-separated, in order.
pub const ANNOTATION_IMAGE_DEPS: &str = "stilt.dev/image-deps";
pub const ANNOTATION_UPDATE_MODE: &str = "tilt.dev/update-mode";
pub const ANNOTATION_BUTTON_TYPE: &str = "tilt.dev/uibutton-type";
pub const ANNOTATION_OWNER_KIND: &str = "tilt.dev/owner-kind";

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

pub fn with_spec(mut obj: Json, spec: Json) -> Json {
    obj["spec"] = strip_empty(spec);
    obj
}

pub fn set_labels(obj: &mut Json, labels: &BTreeMap<String, String>) {
    if !labels.is_empty() {
        obj["metadata"]["labels"] = serde_json::to_value(labels).unwrap();
    }
}

/// Drop null / empty-string / empty-array / false / empty-object fields (Go's omitempty), so the
/// snapshots show only what is set.
pub fn strip_empty(j: Json) -> Json {
    match j {
        Json::Object(m) => Json::Object(
            m.into_iter()
                .filter_map(|(k, v)| {
                    let v = strip_empty(v);
                    let empty = match &v {
                        Json::Null => true,
                        Json::String(s) => s.is_empty(),
                        Json::Array(a) => a.is_empty(),
                        Json::Bool(b) => !b,
                        Json::Object(o) => o.is_empty() && !KEEP_EMPTY.contains(&k.as_str()),
                        Json::Number(_) => false,
                    };
                    (!empty).then_some((k, v))
                })
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.into_iter().map(strip_empty).collect()),
        o => o,
    }
}

/// Object-valued fields whose presence matters even when empty.
const KEEP_EMPTY: &[&str] = &["initialSync", "spec", "handler"];

pub fn disable_source(manifest: &str) -> Json {
    json!({"configMap": {"name": format!("{manifest}-disable"), "key": "isDisabled"}})
}
