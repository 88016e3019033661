//! `stilt explain kind.field.field`: field documentation from the server's OpenAPI document.

use crate::args::ExplainArgs;
use crate::client::{Client, resolve_kind};
use anyhow::{Result, bail};
use serde_json::Value;
use std::process::ExitCode;

fn resolve<'a>(schemas: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        let r = schema.get("$ref").or_else(|| {
            schema
                .get("allOf")
                .and_then(|a| a.get(0))
                .and_then(|s| s.get("$ref"))
        });
        match r.and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
            Some(name) => schema = &schemas[name],
            None => return schema,
        }
    }
}

fn type_name(schemas: &Value, schema: &Value) -> String {
    let s = resolve(schemas, schema);
    match s["type"].as_str() {
        Some("array") => format!("[]{}", type_name(schemas, &s["items"])),
        Some("object") if s.get("properties").is_some() => "Object".into(),
        Some("object") => "map[string]string".into(),
        Some(t) => t.to_string(),
        None if s.get("properties").is_some() => "Object".into(),
        None => "Object".into(),
    }
}

pub fn explain(a: ExplainArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut parts = a.path.split('.');
    let info = resolve_kind(parts.next().unwrap_or_default())?;
    let doc = client.get(
        &format!("/openapi/v3/apis/{}", stilt_api::API_VERSION),
        "application/json",
    )?;
    let schemas = &doc["components"]["schemas"];
    let mut schema = resolve(schemas, &schemas[info.kind]);
    let mut field_path = vec![];
    let mut description = schema["description"]
        .as_str()
        .unwrap_or(info.description)
        .to_string();
    for part in parts {
        let props = &schema["properties"];
        let Some(next) = props.get(part) else {
            bail!("field {part:?} does not exist in {}", a.path)
        };
        description = next["description"]
            .as_str()
            .or(resolve(schemas, next)["description"].as_str())
            .unwrap_or("")
            .to_string();
        let mut resolved = resolve(schemas, next);
        if resolved["type"] == "array" {
            resolved = resolve(schemas, &resolved["items"]);
        }
        field_path.push((part.to_string(), type_name(schemas, next)));
        schema = resolved;
    }
    println!("GROUP:      {}", stilt_api::GROUP);
    println!("KIND:       {}", info.kind);
    println!("VERSION:    {}", stilt_api::VERSION);
    println!();
    if let Some((name, ty)) = field_path.last() {
        println!("FIELD: {name} <{ty}>");
        println!();
    }
    println!("DESCRIPTION:");
    println!(
        "    {}",
        if description.is_empty() {
            "<empty>"
        } else {
            &description
        }
    );
    if let Some(props) = schema["properties"].as_object() {
        println!();
        println!("FIELDS:");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, prop) in props {
            let req = if required.contains(&name.as_str()) {
                " -required-"
            } else {
                ""
            };
            println!("  {name}\t<{}>{req}", type_name(schemas, prop));
            let desc = prop["description"]
                .as_str()
                .or(resolve(schemas, prop)["description"].as_str())
                .unwrap_or("");
            if !desc.is_empty() {
                println!("    {desc}");
            }
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}
