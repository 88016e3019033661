//! The subset of kubectl JSONPath that image locators use: `{.spec.image}`,
//! `{.spec.containers[*].image}`, `{.items[0].x}`, `{.metadata.labels['app.kubernetes.io/name']}`.

use crate::error::{K8sError, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
    All,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    segs: Vec<Seg>,
}

impl JsonPath {
    /// Parse `{.a.b[*].c}` (braces and a leading `$` optional).
    pub fn parse(src: &str) -> Result<JsonPath> {
        let bad = |why: &str| K8sError::Invalid(format!("bad JSONPath {src:?}: {why}"));
        let mut s = src.trim();
        if let Some(inner) = s.strip_prefix('{') {
            s = inner
                .strip_suffix('}')
                .ok_or_else(|| bad("unbalanced braces"))?;
        }
        let s = s.strip_prefix('$').unwrap_or(s);
        let b = s.as_bytes();
        let mut i = 0;
        let mut segs = Vec::new();
        while i < b.len() {
            match b[i] {
                b'.' => {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        i += 1;
                    }
                    let key = &s[start..i];
                    if key.is_empty() {
                        if i < b.len() && b[i] == b'[' {
                            continue;
                        }
                        return Err(bad("empty field name"));
                    }
                    segs.push(if key == "*" {
                        Seg::All
                    } else {
                        Seg::Key(key.to_string())
                    });
                }
                b'[' => {
                    let end = s[i..].find(']').ok_or_else(|| bad("missing ]"))? + i;
                    let inner = s[i + 1..end].trim();
                    segs.push(if inner == "*" {
                        Seg::All
                    } else if let Some(q) = inner
                        .strip_prefix('\'')
                        .and_then(|x| x.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
                    {
                        Seg::Key(q.to_string())
                    } else {
                        Seg::Index(inner.parse().map_err(|_| bad("bad index"))?)
                    });
                    i = end + 1;
                }
                _ if segs.is_empty() && i == 0 => {
                    // `spec.image` without the leading dot.
                    let start = i;
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        i += 1;
                    }
                    segs.push(Seg::Key(s[start..i].to_string()));
                }
                _ => return Err(bad("unexpected character")),
            }
        }
        if segs.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(JsonPath {
            source: src.to_string(),
            segs,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Call `f` on every existing value the path selects.
    pub fn visit_mut(&self, root: &mut Value, f: &mut dyn FnMut(&mut Value)) {
        fn go(segs: &[Seg], v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
            let Some((first, rest)) = segs.split_first() else {
                f(v);
                return;
            };
            match first {
                Seg::Key(k) => {
                    if let Some(c) = v.get_mut(k.as_str()) {
                        go(rest, c, f)
                    }
                }
                Seg::Index(i) => {
                    if let Some(c) = v.get_mut(*i) {
                        go(rest, c, f)
                    }
                }
                Seg::All => match v {
                    Value::Array(a) => a.iter_mut().for_each(|c| go(rest, c, f)),
                    Value::Object(m) => m.values_mut().for_each(|c| go(rest, c, f)),
                    _ => {}
                },
            }
        }
        go(&self.segs, root, f)
    }

    /// The path without its last segment and that segment's key, when it ends in a field
    /// (`{.spec.image}` → `{.spec}`, `image`): lets a caller edit sibling fields too.
    pub fn split_last_key(&self) -> Option<(JsonPath, &str)> {
        let (Seg::Key(k), rest) = self.segs.split_last()? else {
            return None;
        };
        let parent = JsonPath {
            source: self.source.clone(),
            segs: rest.to_vec(),
        };
        Some((parent, k.as_str()))
    }

    /// Clones of every value the path selects.
    pub fn select(&self, root: &Value) -> Vec<Value> {
        let mut copy = root.clone();
        let mut out = Vec::new();
        self.visit_mut(&mut copy, &mut |v| out.push(v.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_selects() {
        let doc = json!({"spec": {"image": "a", "containers": [{"image": "b"}, {"image": "c"}],
            "labels": {"app.kubernetes.io/name": "x"}}});
        let sel = |p: &str| JsonPath::parse(p).unwrap().select(&doc);
        assert_eq!(sel("{.spec.image}"), [json!("a")]);
        assert_eq!(sel(".spec.image"), [json!("a")]);
        assert_eq!(sel("spec.image"), [json!("a")]);
        assert_eq!(sel("$.spec.image"), [json!("a")]);
        assert_eq!(sel("{.spec.containers[*].image}"), [json!("b"), json!("c")]);
        assert_eq!(sel("{.spec.containers[1].image}"), [json!("c")]);
        assert_eq!(
            sel("{.spec.labels['app.kubernetes.io/name']}"),
            [json!("x")]
        );
        assert!(sel("{.spec.missing}").is_empty());
        assert!(JsonPath::parse("{.a").is_err());
        assert!(JsonPath::parse("{.a[x]}").is_err());
        assert!(JsonPath::parse("{}").is_err());
    }
}
