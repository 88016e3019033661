//! `stilt describe`: kubectl's generic describer layout.

use crate::args::DescribeArgs;
use crate::client::{Client, targets};
use anyhow::Result;
use serde_json::Value;
use std::fmt::Write;
use std::process::ExitCode;

pub fn describe(a: DescribeArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut first = true;
    let mut failed = false;
    for (info, name) in targets(a.target.kind.as_deref(), &a.target.names)? {
        let objs = match name {
            Some(n) => match client.get(&Client::object_path(info, &n), "application/json") {
                Ok(o) => vec![o],
                Err(e) => {
                    eprintln!("Error from server (NotFound): {e}");
                    failed = true;
                    continue;
                }
            },
            None => {
                let q = a
                    .selector
                    .as_deref()
                    .map(|s| format!("?labelSelector={s}"))
                    .unwrap_or_default();
                let list = client.get(
                    &format!("{}{q}", Client::collection_path(info)),
                    "application/json",
                )?;
                list["items"].as_array().cloned().unwrap_or_default()
            }
        };
        for obj in objs {
            if !first {
                println!();
            }
            first = false;
            print!("{}", render(&obj));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `creationTimestamp` → `Creation Timestamp`
fn title(key: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push(' ');
        }
        if i == 0 {
            out.extend(c.to_uppercase())
        } else {
            out.push(c)
        }
    }
    out
}

fn map_line(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
            .collect::<Vec<_>>()
            .join("\n              "),
        _ => "<none>".into(),
    }
}

pub fn render(obj: &Value) -> String {
    let meta = &obj["metadata"];
    let mut out = String::new();
    let _ = writeln!(out, "Name:         {}", meta["name"].as_str().unwrap_or(""));
    let _ = writeln!(out, "Namespace:    ");
    let _ = writeln!(out, "Labels:       {}", map_line(&meta["labels"]));
    let _ = writeln!(out, "Annotations:  {}", map_line(&meta["annotations"]));
    let _ = writeln!(
        out,
        "API Version:  {}",
        obj["apiVersion"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "Kind:         {}", obj["kind"].as_str().unwrap_or(""));
    let mut rest = meta.clone();
    if let Some(m) = rest.as_object_mut() {
        for k in ["name", "labels", "annotations", "managedFields"] {
            m.remove(k);
        }
    }
    let _ = writeln!(out, "Metadata:");
    tree(&rest, 1, &mut out);
    for section in ["spec", "data", "status"] {
        if let Some(v) = obj.get(section) {
            let _ = writeln!(out, "{}:", title(section));
            tree(v, 1, &mut out);
        }
    }
    let _ = writeln!(out, "Events:       <none>");
    out
}

fn tree(v: &Value, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Object(inner) if inner.is_empty() => {
                        let _ = writeln!(out, "{pad}{}:", title(k));
                    }
                    Value::Object(_) | Value::Array(_) => {
                        let _ = writeln!(out, "{pad}{}:", title(k));
                        tree(v, depth + 1, out);
                    }
                    scalar => {
                        let _ = writeln!(out, "{pad}{}:  {}", title(k), scalar_text(scalar));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) => {
                        tree(item, depth, out);
                        let _ = writeln!(out, "{pad}---");
                    }
                    scalar => {
                        let _ = writeln!(out, "{pad}{}", scalar_text(scalar));
                    }
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", scalar_text(scalar));
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_like_kubectl() {
        assert_eq!(title("creationTimestamp"), "Creation Timestamp");
        assert_eq!(title("resultYAML"), "Result YAML");
        assert_eq!(title("containerID"), "Container ID");
        assert_eq!(title("spec"), "Spec");
    }
}
