//! Routes: discovery, OpenAPI, and one generic set of object handlers driven by the registry.

use crate::error::ApiError;
use crate::table::{self, IncludeObject};
use crate::{AppState, discovery, openapi, watch};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use stilt_api::{API_VERSION, KindInfo, kinds};
use stilt_store::{PatchType, Selectors};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Params {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub watch: Option<String>,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_watch_bookmarks: Option<bool>,
    pub send_initial_events: Option<bool>,
    pub include_object: Option<String>,
    pub dry_run: Option<String>,
    pub field_validation: Option<String>,
    pub field_manager: Option<String>,
    pub force: Option<bool>,
    pub limit: Option<u64>,
    pub resource_version_match: Option<String>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    pub propagation_policy: Option<String>,
    pub pretty: Option<String>,
}

impl Params {
    pub fn selectors(&self) -> Result<Selectors, ApiError> {
        Ok(Selectors::parse(
            self.label_selector.as_deref(),
            self.field_selector.as_deref(),
        )?)
    }

    fn is_watch(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.dry_run.as_deref() == Some("All")
    }
}

pub fn router(state: AppState, extra: Option<Router>) -> Router {
    let limit = state.opts.max_body_bytes;
    let gv = format!("/apis/{API_VERSION}");
    let api: Router<AppState> = Router::new()
        .route("/api", get(|| async { Json(discovery::core_versions()) }))
        .route(
            "/api/v1",
            get(|| async {
                Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": []}))
            }),
        )
        .route("/apis", get(|| async { Json(discovery::group_list()) }))
        .route(
            "/apis/tilt.dev",
            get(|| async { Json(discovery::group_doc()) }),
        )
        .route(&gv, get(|| async { Json(discovery::resource_list()) }))
        .route("/version", get(|| async { Json(discovery::version()) }))
        .route("/openapi/v3", get(|| async { Json(openapi::index()) }))
        .route(
            &format!("/openapi/v3{gv}"),
            get(|| async { Json(openapi::group_version_document().clone()) }),
        )
        .route(
            &format!("{gv}/{{plural}}"),
            get(list_or_watch).post(create).delete(delete_collection),
        )
        .route(
            &format!("{gv}/{{plural}}/{{name}}"),
            get(get_one).put(replace).patch(patch).delete(delete_one),
        )
        .route(
            &format!("{gv}/{{plural}}/{{name}}/status"),
            get(get_one_status).put(replace_status).patch(patch_status),
        )
        .fallback(|req: Request| async move {
            ApiError::not_found(format!(
                "the server could not find the requested resource ({} {})",
                req.method(),
                req.uri().path()
            ))
        });
    let api = match extra {
        Some(extra) => api.with_state(state.clone()).merge(extra),
        None => api.with_state(state.clone()),
    };
    let api = api
        .layer(middleware::from_fn_with_state(state, authenticate))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .merge(api)
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(presented.as_bytes(), state.opts.token.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::new(401, "Unauthorized", "Unauthorized: a valid bearer token is required (see the kubeconfig written by `stilt up`)").into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn kind(plural: &str) -> Result<&'static KindInfo, ApiError> {
    kinds().iter().find(|k| k.plural == plural).ok_or_else(|| {
        ApiError::not_found(format!(
            "the server doesn't have a resource type {plural:?}"
        ))
    })
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
}

/// Parses a request body as JSON, or as YAML when the content type says so.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let parsed = if ct.contains("yaml") {
        match serde_json::from_slice(body) {
            Ok(v) => Ok(v),
            Err(_) => serde_saphyr::from_slice::<Value>(body)
                .map_err(|e| format!("error decoding YAML body: {e}")),
        }
    } else {
        serde_json::from_slice(body).map_err(|e| format!("error decoding JSON body: {e}"))
    };
    parsed.map_err(ApiError::bad_request)
}

fn object_response(
    code: StatusCode,
    headers: &HeaderMap,
    info: &KindInfo,
    obj: &Value,
    rv: u64,
) -> Response {
    if table::wants_table(accept(headers)) {
        return (
            code,
            Json(table::table(info, &[obj], rv, IncludeObject::Metadata)),
        )
            .into_response();
    }
    (code, Json(obj.clone())).into_response()
}

/// The body's kind and apiVersion must agree with the URL (they may be omitted).
fn check_identity(
    info: &KindInfo,
    obj: &mut Value,
    url_name: Option<&str>,
) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(info.kind));
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the body's kind {k:?} does not match the resource {:?} ({})",
                info.plural, info.kind
            )));
        }
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") | Some(API_VERSION) => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the body's apiVersion {v:?} is not {API_VERSION:?}"
            )));
        }
    }
    match map.get("metadata") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be a JSON object")),
    }
    if let Some(url_name) = url_name {
        let body_name = obj["metadata"]["name"].as_str().unwrap_or("");
        if body_name.is_empty() {
            obj["metadata"]["name"] = json!(url_name);
        } else if body_name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name:?}) does not match the name in the URL ({url_name:?})"
            )));
        }
    }
    Ok(())
}

async fn list_or_watch(
    State(state): State<AppState>,
    Path(plural): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let selectors = q.selectors()?;
    let table = table::wants_table(accept(&headers))
        .then(|| IncludeObject::parse(q.include_object.as_deref()));
    if q.is_watch() {
        return watch::watch(state, info, selectors, q, table);
    }
    let (items, rv) = state.store.list(info.kind, &selectors)?;
    if let Some(include) = table {
        let refs: Vec<&Value> = items.iter().map(|v| v.as_ref()).collect();
        return Ok(Json(table::table(info, &refs, rv, include)).into_response());
    }
    Ok(Json(json!({
        "kind": info.list_kind(),
        "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items.iter().map(|v| v.as_ref()).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn get_one(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let obj = state.store.get(info.kind, &name)?;
    Ok(object_response(
        StatusCode::OK,
        &headers,
        info,
        &obj,
        state.store.resource_version(),
    ))
}

async fn get_one_status(
    state: State<AppState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    get_one(state, path, headers).await
}

async fn create(
    State(state): State<AppState>,
    Path(plural): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let mut obj = parse_body(&headers, &body)?;
    check_identity(info, &mut obj, None)?;
    if q.dry_run() {
        (info.validate)(&obj).map_err(|causes| stilt_store::StoreError::Invalid {
            kind: info.plural.into(),
            name: String::new(),
            causes,
        })?;
        return Ok(object_response(
            StatusCode::CREATED,
            &headers,
            info,
            &obj,
            0,
        ));
    }
    let created = state.store.create(obj)?;
    Ok(object_response(
        StatusCode::CREATED,
        &headers,
        info,
        &created,
        state.store.resource_version(),
    ))
}

async fn replace_impl(
    state: AppState,
    plural: String,
    name: String,
    headers: HeaderMap,
    body: Bytes,
    status: bool,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let mut obj = parse_body(&headers, &body)?;
    check_identity(info, &mut obj, Some(&name))?;
    let updated = if status {
        state.store.update_status(obj)?
    } else {
        state.store.update(obj)?
    };
    Ok(object_response(
        StatusCode::OK,
        &headers,
        info,
        &updated,
        state.store.resource_version(),
    ))
}

async fn replace(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    replace_impl(state, plural, name, headers, body, false).await
}

async fn replace_status(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    replace_impl(state, plural, name, headers, body, true).await
}

async fn patch_impl(
    state: AppState,
    plural: String,
    name: String,
    headers: HeaderMap,
    body: Bytes,
    status: bool,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let ct = content_type(&headers);
    let patch_type = PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format ({ct}) - accepted media types include: {}", PatchType::SUPPORTED.join(", ")))
    })?;
    let patch = parse_body(&headers, &body)?;
    let result = match state
        .store
        .patch(info.kind, &name, patch_type, &patch, status)
    {
        // Server-side apply creates what does not exist yet.
        Err(stilt_store::StoreError::NotFound { .. })
            if patch_type == PatchType::Apply && !status =>
        {
            let mut obj = patch;
            check_identity(info, &mut obj, Some(&name))?;
            let created = state.store.create(obj)?;
            return Ok(object_response(
                StatusCode::CREATED,
                &headers,
                info,
                &created,
                state.store.resource_version(),
            ));
        }
        other => other?,
    };
    Ok(object_response(
        StatusCode::OK,
        &headers,
        info,
        &result,
        state.store.resource_version(),
    ))
}

async fn patch(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patch_impl(state, plural, name, headers, body, false).await
}

async fn patch_status(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patch_impl(state, plural, name, headers, body, true).await
}

async fn delete_one(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let deleted = state.store.delete(info.kind, &name)?;
    Ok(object_response(
        StatusCode::OK,
        &headers,
        info,
        &deleted,
        state.store.resource_version(),
    ))
}

async fn delete_collection(
    State(state): State<AppState>,
    Path(plural): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, ApiError> {
    let info = kind(&plural)?;
    let deleted = state.store.delete_collection(info.kind, &q.selectors()?)?;
    Ok(Json(json!({
        "kind": info.list_kind(),
        "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": state.store.resource_version().to_string()},
        "items": deleted.iter().map(|v| v.as_ref()).collect::<Vec<_>>(),
    }))
    .into_response())
}
