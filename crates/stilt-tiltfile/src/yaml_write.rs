//! Writing an everyday Kubernetes manifest as YAML without serde: maps, lists, integers,
//! booleans and strings that need no quotes, written byte for byte as serde-saphyr writes them
//! (2-space indent, list items level with their key). Through serde, serde-saphyr took 7% of a
//! 200-resource load to write each KubernetesApply's YAML.
//!
//! [`encode`] returns `None` for anything else (empty collections, nulls, floats, strings that
//! serde-saphyr might quote or fold, keys with a colon, lists of lists), and `yaml::encode`
//! then asks serde-saphyr, so what is written never depends on which path wrote it.

use serde_json::Value as Json;

/// Longer strings are left to serde-saphyr, which may fold them.
const MAX_PLAIN: usize = 64;

/// `v` as one YAML document, if it is an everyday manifest.
pub fn encode(v: &Json) -> Option<String> {
    let Json::Object(map) = v else {
        return None;
    };
    let mut out = String::with_capacity(1024);
    write_map(map, 0, &mut out)?;
    Some(out)
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// The entries of a non-empty map, each on its own line at `at`; the first at the cursor when
/// `first_inline` (after a list item's dash).
fn write_entries(
    map: &serde_json::Map<String, Json>,
    at: usize,
    first_inline: bool,
    out: &mut String,
) -> Option<()> {
    if map.is_empty() {
        return None;
    }
    for (i, (k, v)) in map.iter().enumerate() {
        if !plain(k, false) {
            return None;
        }
        if i > 0 || !first_inline {
            indent(out, at);
        }
        out.push_str(k);
        out.push(':');
        write_value(v, at, out)?;
    }
    Some(())
}

fn write_map(map: &serde_json::Map<String, Json>, at: usize, out: &mut String) -> Option<()> {
    write_entries(map, at, false, out)
}

/// The value of a key written at `at`, from just after its colon.
fn write_value(v: &Json, at: usize, out: &mut String) -> Option<()> {
    match v {
        Json::Object(map) => {
            out.push('\n');
            write_map(map, at + 2, out)
        }
        Json::Array(items) => {
            out.push('\n');
            write_list(items, at, out)
        }
        scalar => {
            out.push(' ');
            write_scalar(scalar, out)?;
            out.push('\n');
            Some(())
        }
    }
}

/// A non-empty list, its dashes at `at`.
fn write_list(items: &[Json], at: usize, out: &mut String) -> Option<()> {
    if items.is_empty() {
        return None;
    }
    for item in items {
        indent(out, at);
        out.push_str("- ");
        match item {
            Json::Object(map) => write_entries(map, at + 2, true, out)?,
            Json::Array(_) => return None,
            scalar => {
                write_scalar(scalar, out)?;
                out.push('\n');
            }
        }
    }
    Some(())
}

fn write_scalar(v: &Json, out: &mut String) -> Option<()> {
    match v {
        Json::String(s) if plain(s, true) => out.push_str(s),
        Json::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        _ => return None,
    }
    Some(())
}

/// A string any YAML reader takes as this same string unquoted: a letter or `/` (or one or two
/// dashes and a letter: a flag), then letters, digits and `_ . / -` (and, in a value, `:` not
/// followed by a space or at the end), and not one of the words YAML 1.1 or 1.2 reads as a
/// boolean, null or number.
fn plain(s: &str, value: bool) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_PLAIN {
        return false;
    }
    let word = s.trim_start_matches('-');
    let dashes = b.len() - word.len();
    let starts_well = match dashes {
        0 => b[0].is_ascii_alphabetic() || b[0] == b'/',
        1 | 2 => word.as_bytes().first().is_some_and(u8::is_ascii_alphabetic),
        _ => false,
    };
    let chars_ok = b.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'.' | b'/' | b'-')
            || (value && c == b':' && b.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()))
    });
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity",
    ];
    starts_well && chars_ok && !WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn saphyr(v: &Json) -> String {
        crate::yaml::encode_with_saphyr(v).unwrap()
    }

    #[test]
    fn everyday_manifests_are_written_exactly_as_serde_saphyr_writes_them() {
        let taken = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "svc1", "labels": {"app.kubernetes.io/name": "svc1"}},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "svc1"}},
                            "template": {"metadata": {"labels": {"app": "svc1"}},
                                         "spec": {"containers": [{"name": "app", "image": "registry.example.com/svc1:v1.2",
                                                                  "args": ["--port", "-v"], "ports": [{"containerPort": 8080}],
                                                                  "env": [{"name": "URL", "value": "http://x:80/y"}],
                                                                  "securityContext": {"privileged": false, "runAsUser": -1}}],
                                                  "hostNetwork": true}}}}),
            json!({"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "svc1"}}}),
            json!({"items": [{"nested": {"deep": {"a": "b"}}, "list": ["x", "z"]}, "plain"]}),
            json!({"a": {"b": [{"c": [{"d": "e"}]}]}}),
        ];
        for v in &taken {
            let fast = encode(v).unwrap_or_else(|| panic!("left to serde-saphyr: {v}"));
            assert_eq!(fast, saphyr(v), "{v}");
        }
    }

    #[test]
    fn anything_serde_saphyr_might_quote_or_fold_is_left_to_it() {
        let left = [
            json!({"a": "yes"}),
            json!({"a": "On"}),
            json!({"a": "Null"}),
            json!({"a": "8080"}),
            json!({"a": "1.5"}),
            json!({"a": "2001-12-14"}),
            json!({"a": ""}),
            json!({"a": "two words"}),
            json!({"a": "ends:"}),
            json!({"a": "a: b"}),
            json!({"a": "#comment"}),
            json!({"a": "x".repeat(MAX_PLAIN + 1)}),
            json!({"a": "line\nbreak"}),
            json!({"a": "-inf"}),
            json!({"a": "-1"}),
            json!({"a": "---"}),
            json!({"a": "- x"}),
            json!({"a": null}),
            json!({"a": 1.5}),
            json!({"a": {}}),
            json!({"a": []}),
            json!({"a": [[1]]}),
            json!({"a:b": 1}),
            json!({"8080": 1}),
            json!(["top-level list"]),
            json!("scalar"),
        ];
        for v in &left {
            assert_eq!(encode(v), None, "{v}");
        }
    }

    /// Every YAML file the tests carry, read and written back: where the fast path writes, it
    /// writes what serde-saphyr writes.
    #[test]
    fn on_every_fixture_the_fast_path_writes_as_serde_saphyr_or_stays_out() {
        let (mut docs, mut taken) = (0, 0);
        for p in crate::yaml::repo_yaml_files() {
            let text = std::fs::read_to_string(&p).unwrap();
            let Ok(parsed) = crate::yaml::parse_stream(&text) else {
                continue;
            };
            for v in &parsed {
                docs += 1;
                if let Some(fast) = encode(v) {
                    taken += 1;
                    assert_eq!(fast, saphyr(v), "{}", p.display());
                }
            }
        }
        assert!(
            docs > 20 && taken * 4 > docs,
            "the fast path wrote {taken} of {docs} documents"
        );
    }
}
