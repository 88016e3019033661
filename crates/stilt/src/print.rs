//! kubectl-style printers: tables, YAML, JSON, names and JSONPath.

use anyhow::{Result, bail};
use serde_json::Value;

/// The output formats `-o` takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    Table { wide: bool },
    Yaml,
    Json,
    Name,
    JsonPath(String),
}

impl Format {
    pub fn parse(output: Option<&str>) -> Result<Self> {
        Ok(match output {
            None | Some("") => Format::Table { wide: false },
            Some("wide") => Format::Table { wide: true },
            Some("yaml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("name") => Format::Name,
            Some(o) if o.starts_with("jsonpath=") => {
                Format::JsonPath(o["jsonpath=".len()..].to_string())
            }
            Some(o)
                if o.starts_with("jsonpath-as-json=")
                    || o.starts_with("custom-columns")
                    || o.starts_with("go-template") =>
            {
                bail!(
                    "output format {o:?} is not supported (use yaml, json, name, wide or jsonpath=...)"
                )
            }
            Some(o) => bail!(
                "unable to match a printer suitable for the output format {o:?}, allowed formats are: json, jsonpath, name, wide, yaml"
            ),
        })
    }
}

/// Renders a `meta.k8s.io` Table's rows as aligned columns.
pub fn table_lines(table: &Value, wide: bool, headers: bool) -> Vec<String> {
    let cols: Vec<&Value> = table["columnDefinitions"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let shown: Vec<usize> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let mut grid: Vec<Vec<String>> = Vec::new();
    if headers {
        grid.push(
            shown
                .iter()
                .map(|&i| cols[i]["name"].as_str().unwrap_or("").to_uppercase())
                .collect(),
        );
    }
    for row in table["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        grid.push(
            shown
                .iter()
                .map(|&i| match cells.get(i) {
                    Some(Value::String(s)) if s.is_empty() => "<none>".to_string(),
                    Some(Value::String(s)) => s.replace('\n', " "),
                    Some(Value::Null) | None => "<none>".to_string(),
                    Some(v) => v.to_string(),
                })
                .collect(),
        );
    }
    align(&grid)
}

pub fn align(grid: &[Vec<String>]) -> Vec<String> {
    let ncols = grid.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            grid.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    grid.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    // By hand: `format!` panics on a width over u16::MAX (a 12 MB cell).
                    line.push_str(cell);
                    let pad = widths[i].saturating_sub(cell.chars().count()) + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

pub fn to_yaml(v: &Value) -> Result<String> {
    Ok(crate::yaml::to_string(v))
}

/// Prints objects in a non-table format. Several objects print as a `List` (YAML/JSON).
pub fn print_objects(objs: &[Value], format: &Format, as_list: bool) -> Result<()> {
    let doc = if as_list {
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objs, "metadata": {"resourceVersion": ""}})
    } else {
        objs.first().cloned().unwrap_or(Value::Null)
    };
    match format {
        Format::Yaml => print!("{}", to_yaml(&doc)?),
        Format::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Format::Name => {
            for o in objs {
                println!("{}", object_name(o));
            }
        }
        Format::JsonPath(t) => print!("{}", crate::jsonpath::render(t, &doc)?),
        Format::Table { .. } => bail!("tables are printed by the server"),
    }
    Ok(())
}

/// `cmd.tilt.dev/web`
pub fn object_name(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("");
    let singular = stilt_api::kind_by_name(kind)
        .map(|k| k.singular)
        .unwrap_or(kind);
    format!(
        "{}.{}/{}",
        singular,
        stilt_api::GROUP,
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::align;

    #[test]
    fn columns_line_up_and_a_huge_cell_does_not_panic() {
        let grid = vec![
            vec!["NAME".to_string(), "DATA".to_string(), "AGE".to_string()],
            vec!["a".to_string(), "x".repeat(70_000), "1s".to_string()],
            vec!["bb".to_string(), "y".to_string(), "2s".to_string()],
        ];
        let lines = align(&grid);
        assert_eq!(lines[0].find("DATA"), Some(7));
        assert_eq!(lines[2].find("2s"), Some(7 + 70_000 + 3));
    }
}
