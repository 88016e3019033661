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
                "get": {"x-kubernetes-group-version-kind": gvk(k.kind), "responses": {"200": {"description": "OK"}}},
                "post": {
                    "x-kubernetes-group-version-kind": gvk(k.kind),
                    "parameters": write_params,
                    "requestBody": {"content": {"application/json": {"schema": schema_ref(k.kind)}}},
                    "responses": json_response(k.kind),
                },
            }),
        );
        let item = json!({
            "get": {"x-kubernetes-group-version-kind": gvk(k.kind), "responses": json_response(k.kind)},
            "put": {
                "x-kubernetes-group-version-kind": gvk(k.kind),
                "parameters": write_params,
                "requestBody": {"content": {"application/json": {"schema": schema_ref(k.kind)}}},
                "responses": json_response(k.kind),
            },
            "patch": {
                "x-kubernetes-group-version-kind": gvk(k.kind),
                "parameters": write_params,
                "requestBody": {"content": patch_content},
                "responses": json_response(k.kind),
            },
            "delete": {"x-kubernetes-group-version-kind": gvk(k.kind), "responses": {"200": {"description": "OK"}}},
        });
        paths.insert(format!("{base}/{{name}}"), item.clone());
        if k.has_status {
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
