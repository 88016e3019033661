//! kubectl's JSONPath templates: `{.items[*].metadata.name}`, `{range .items[*]}…{end}`,
//! literals such as `{"\n"}`, and plain text between expressions.

use anyhow::{Result, bail};
use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

#[derive(Debug, PartialEq, Clone)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Descend(String),
}

pub fn render(template: &str, data: &Value) -> Result<String> {
    let nodes = parse(template)?;
    let mut out = String::new();
    eval(&nodes, data, &mut out)?;
    Ok(out)
}

fn eval(nodes: &[Node], data: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let values = select(data, steps);
                let texts: Vec<String> = values.iter().map(|v| scalar(v)).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(steps, body) => {
                for item in select(data, steps) {
                    eval(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn select<'a>(data: &'a Value, steps: &[Step]) -> Vec<&'a Value> {
    let mut current = vec![data];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(f) => next.extend(v.get(f.as_str())),
                Step::Index(i) => {
                    if let Some(arr) = v.as_array() {
                        let idx = if *i < 0 { arr.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| arr.get(i)));
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(o) => next.extend(o.values()),
                    _ => {}
                },
                Step::Descend(f) => descend(v, f, &mut next),
            }
        }
        current = next;
    }
    current
}

fn descend<'a>(v: &'a Value, field: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(field) {
                out.push(x);
            }
            o.values().for_each(|c| descend(c, field, out));
        }
        Value::Array(a) => a.iter().for_each(|c| descend(c, field, out)),
        _ => {}
    }
}

fn parse(template: &str) -> Result<Vec<Node>> {
    let mut stack: Vec<(Vec<Step>, Vec<Node>)> = vec![(Vec::new(), Vec::new())];
    let mut rest = template;
    while !rest.is_empty() {
        let Some(open) = rest.find('{') else {
            stack
                .last_mut()
                .expect("root")
                .1
                .push(Node::Text(unescape(rest)));
            break;
        };
        if open > 0 {
            stack
                .last_mut()
                .expect("root")
                .1
                .push(Node::Text(unescape(&rest[..open])));
        }
        let close = matching_close(&rest[open..])
            .ok_or_else(|| anyhow::anyhow!("unclosed {{ in JSONPath template {template:?}"))?
            + open;
        let expr = rest[open + 1..close].trim();
        rest = &rest[close + 1..];
        if let Some(lit) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            stack
                .last_mut()
                .expect("root")
                .1
                .push(Node::Text(unescape(lit)));
        } else if let Some(r) = expr.strip_prefix("range ") {
            stack.push((steps(r.trim())?, Vec::new()));
        } else if expr == "end" {
            if stack.len() < 2 {
                bail!("{{end}} without {{range}} in JSONPath template {template:?}");
            }
            let (s, body) = stack.pop().expect("checked");
            stack.last_mut().expect("root").1.push(Node::Range(s, body));
        } else {
            stack
                .last_mut()
                .expect("root")
                .1
                .push(Node::Path(steps(expr)?));
        }
    }
    if stack.len() != 1 {
        bail!("{{range}} without {{end}} in JSONPath template {template:?}");
    }
    Ok(stack.pop().expect("root").1)
}

fn matching_close(s: &str) -> Option<usize> {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '}' if !in_quote => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

fn steps(expr: &str) -> Result<Vec<Step>> {
    let expr = expr.strip_prefix('$').unwrap_or(expr);
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let descend = chars.peek() == Some(&'.');
                if descend {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                if name == "*" {
                    out.push(Step::All);
                } else if descend {
                    out.push(Step::Descend(name));
                } else if !name.is_empty() {
                    out.push(Step::Field(name));
                }
            }
            '[' => {
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                let inner = inner.trim();
                if inner == "*" {
                    out.push(Step::All);
                } else if let Ok(i) = inner.parse() {
                    out.push(Step::Index(i));
                } else {
                    out.push(Step::Field(
                        inner.trim_matches(|c| c == '\'' || c == '"').to_string(),
                    ));
                }
            }
            c => bail!("unexpected {c:?} in JSONPath expression {expr:?}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_templates() {
        let data = json!({"items": [{"metadata": {"name": "a"}, "spec": {"args": ["x", "y"]}}, {"metadata": {"name": "b"}}]});
        assert_eq!(render("{.items[*].metadata.name}", &data).unwrap(), "a b");
        assert_eq!(
            render("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", &data).unwrap(),
            "a\nb\n"
        );
        assert_eq!(
            render("name={.items[0].metadata.name}", &data).unwrap(),
            "name=a"
        );
        assert_eq!(render("{.items[-1].metadata.name}", &data).unwrap(), "b");
        assert_eq!(render("{..name}", &data).unwrap(), "a b");
        assert_eq!(
            render("{.items[0].spec.args}", &data).unwrap(),
            "[\"x\",\"y\"]"
        );
        assert!(render("{range .items[*]}", &data).is_err());
    }
}
