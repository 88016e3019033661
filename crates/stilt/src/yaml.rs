//! A YAML emitter for JSON values in kubectl's style (block maps and lists, `- ` items, literal
//! blocks for multi-line strings). Written here because serde_json's arbitrary_precision numbers
//! (enabled by starlark) do not survive generic serializers.

use serde_json::Value;
use std::fmt::Write;

pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => list(a, 0, &mut out),
        scalar => {
            let _ = writeln!(out, "{}", inline(scalar));
        }
    }
    out
}

fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s != s.trim() {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    ) {
        return false;
    }
    if s.parse::<f64>().is_ok()
        || s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_digit() || "._:-+eE".contains(c))
    {
        return false;
    }
    let mut chars = s.chars();
    let first = chars.next().expect("non-empty");
    let second = chars.next();
    // `-`, `?` and `:` may start a plain scalar when a non-space follows (`-c`).
    let indicator_ok = "-?:".contains(first) && second.is_some_and(|c| c != ' ');
    if ",[]{}#&*!|>'\"%@`".contains(first) || ("-?:".contains(first) && !indicator_ok) {
        return false;
    }
    !(s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains('\n')
        || s.contains('\t'))
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => serde_json::to_string(s).expect("strings serialize"),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => serde_json::to_string(other).expect("values serialize"),
    }
}

fn scalar_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::String(s) if s.contains('\n') => {
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            let _ = writeln!(out, " |{chomp}");
            for line in s.trim_end_matches('\n').split('\n') {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{}{line}", "  ".repeat(indent + 1));
                }
            }
        }
        other => {
            let _ = writeln!(out, " {}", inline(other));
        }
    }
}

fn map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for (k, v) in m {
        let key = if plain_ok(k) {
            k.clone()
        } else {
            serde_json::to_string(k).expect("keys serialize")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                map(inner, indent + 1, out);
            }
            Value::Array(items) if !items.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                list(items, indent, out);
            }
            scalar => {
                let _ = write!(out, "{pad}{key}:");
                scalar_after_key(scalar, indent, out);
            }
        }
    }
}

fn list(items: &[Value], indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for item in items {
        match item {
            Value::Object(m) if !m.is_empty() => {
                let mut inner = String::new();
                map(m, indent + 1, &mut inner);
                let trimmed = inner.trim_start_matches(' ');
                let _ = write!(out, "{pad}- {trimmed}");
            }
            Value::Array(a) if !a.is_empty() => {
                let _ = writeln!(out, "{pad}-");
                list(a, indent + 1, out);
            }
            Value::String(s) if s.contains('\n') => {
                let _ = write!(out, "{pad}-");
                scalar_after_key(item, indent, out);
            }
            scalar => {
                let _ = writeln!(out, "{pad}- {}", inline(scalar));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emits_kubectl_style_yaml_that_parses_back() {
        let v = json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "metadata": {"name": "web:serve", "labels": {}, "annotations": {"a": "true", "b": "123", "c": ""}},
            "spec": {"args": ["sh", "-c", "echo: hi"], "num": 1.5, "m": 3, "yaml": "a: 1\nb: 2\n", "items": [{"x": 1, "y": [1, 2]}, {"z": null}]},
        });
        let text = to_string(&v);
        assert!(
            text.contains("  args:\n  - sh\n  - -c\n  - \"echo: hi\"\n"),
            "{text}"
        );
        assert!(text.contains("  num: 1.5\n  m: 3\n"), "{text}");
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
    }
}
