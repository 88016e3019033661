//! `meta.k8s.io/v1` Tables: what `kubectl get` prints.

use serde_json::{Value, json};
use stilt_api::KindInfo;

/// What the client asked to be embedded in each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

pub fn column_definitions(info: &KindInfo) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    cols.extend(info.columns.iter().map(|c| {
        json!({"name": c.name, "type": c.r#type, "format": "", "description": c.description, "priority": c.priority})
    }));
    cols.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    Value::Array(cols)
}

pub fn row(info: &KindInfo, obj: &Value, include: IncludeObject) -> Value {
    let mut cells = vec![obj["metadata"]["name"].clone()];
    cells.extend(info.columns.iter().map(|c| (c.cell)(obj)));
    cells.push(Value::String(age(
        obj["metadata"]["creationTimestamp"].as_str()
    )));
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        }
        IncludeObject::Object => obj.clone(),
    };
    let mut row = json!({"cells": cells});
    if !object.is_null() {
        row["object"] = object;
    }
    row
}

pub fn table(
    info: &KindInfo,
    objs: &[&Value],
    resource_version: u64,
    include: IncludeObject,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": column_definitions(info),
        "rows": objs.iter().map(|o| row(info, o, include)).collect::<Vec<_>>(),
    })
}

/// Kubernetes' short age format: 45s, 12m, 3h, 5d.
pub fn age(created: Option<&str>) -> String {
    let Some(created) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - created.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
