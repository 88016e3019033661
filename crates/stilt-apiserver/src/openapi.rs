//! OpenAPI v3 documents generated from the `stilt-api` schemas (for `kubectl explain`, and so
//! kubectl knows which patch types and query parameters the server takes).

use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use stilt_api::{API_VERSION, GROUP, VERSION, kinds};

/// Patch types advertised to kubectl. Strategic merge is accepted but not advertised, so that
/// `kubectl apply` sends JSON merge patches (exact for Stilt's kinds).
const ADVERTISED_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn typed_query_param(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": ty}})
}

/// The query parameters of a list or watch (Kubernetes' names).
fn list_params() -> Value {
    json!([
        query_param("labelSelector"),
        query_param("fieldSelector"),
        query_param("resourceVersion"),
        query_param("resourceVersionMatch"),
        query_param("continue"),
        typed_query_param("watch", "boolean"),
        typed_query_param("allowWatchBookmarks", "boolean"),
        typed_query_param("sendInitialEvents", "boolean"),
        typed_query_param("timeoutSeconds", "integer"),
        typed_query_param("limit", "integer"),
    ])
}

/// The object's name, a required path parameter of every item path.
fn name_param() -> Value {
    json!([{"name": "name", "in": "path", "required": true, "description": "name of the object", "schema": {"type": "string"}}])
}

fn schema_ref(kind: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{kind}")})
}

fn json_response(kind: &str) -> Value {
    json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref(kind)}}}})
}

fn gvk(kind: &str) -> Value {
    json!({"group": GROUP, "version": VERSION, "kind": kind})
}

pub fn group_version_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut settings = schemars::generate::SchemaSettings::openapi3();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    for k in kinds() {
        (k.schema)(&mut generator);
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    let mut paths = Map::new();
    for k in kinds() {
        if let Some(Value::Object(schema)) = schemas.get_mut(k.kind) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(k.kind)]),
            );
        }
        let base = format!("/apis/{API_VERSION}/{}", k.plural);
        let write_params = json!([
            query_param("fieldValidation"),
            query_param("fieldManager"),
            query_param("dryRun")
        ]);
        let patch_content: Map<String, Value> = ADVERTISED_PATCH_TYPES
            .iter()
            .map(|t| (t.to_string(), json!({"schema": {"type": "object"}})))
            .collect();
        paths.insert(
            base.clone(),
            json!({
                "get": {"x-kubernetes-group-version-kind": gvk(k.kind), "parameters": list_params(), "responses": {"200": {"description": "OK"}}},
                "post": {
                    "x-kubernetes-group-version-kind": gvk(k.kind),
                    "parameters": write_params,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref(k.kind)}}},
                    "responses": json_response(k.kind),
                },
                "delete": {"x-kubernetes-group-version-kind": gvk(k.kind), "parameters": [query_param("labelSelector"), query_param("fieldSelector")], "responses": {"200": {"description": "OK"}}},
            }),
        );
        let mut item = json!({
            "parameters": name_param(),
            "get": {"x-kubernetes-group-version-kind": gvk(k.kind), "responses": json_response(k.kind)},
            "put": {
                "x-kubernetes-group-version-kind": gvk(k.kind),
                "parameters": write_params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref(k.kind)}}},
                "responses": json_response(k.kind),
            },
            "patch": {
                "x-kubernetes-group-version-kind": gvk(k.kind),
                "parameters": write_params,
                "requestBody": {"required": true, "content": patch_content},
                "responses": json_response(k.kind),
            },
            "delete": {"x-kubernetes-group-version-kind": gvk(k.kind), "responses": {"200": {"description": "OK"}}},
        });
        paths.insert(format!("{base}/{{name}}"), item.clone());
        if k.has_status {
            // The status subresource is read, replaced and patched; never deleted.
            item.as_object_mut().expect("an object").remove("delete");
            paths.insert(format!("{base}/{{name}}/status"), item);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Stilt", "version": VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

pub fn index() -> Value {
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        group_version_document().to_string().hash(&mut h);
        format!("{:016X}", h.finish())
    };
    json!({"paths": {format!("apis/{API_VERSION}"): {"serverRelativeURL": format!("/openapi/v3/apis/{API_VERSION}?hash={hash}")}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `{param}` in a path is declared, required, as OpenAPI demands (schemathesis and
    /// client generators refuse the document otherwise), and every write has a required body.
    #[test]
    fn path_parameters_and_bodies_are_declared() {
        let doc = group_version_document();
        let paths = doc["paths"].as_object().unwrap();
        assert!(!paths.is_empty());
        for (path, item) in paths {
            let declared: Vec<&str> = item["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path" && p["required"] == true)
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let templated: Vec<&str> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, templated, "{path}");
            for method in ["post", "put", "patch"] {
                if let Some(op) = item.get(method) {
                    assert_eq!(op["requestBody"]["required"], true, "{method} {path}");
                }
            }
            if path.ends_with("/status") {
                assert!(item.get("delete").is_none(), "{path}: no DELETE on status");
            }
        }
    }
}
