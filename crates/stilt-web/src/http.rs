//! Routes, the security checks, and the embedded assets.

use crate::Shared;
use crate::actions::{self, ActionError};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

type S = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws/view", get(ws_view))
        .route("/api/view", get(api_view))
        .route("/api/websocket_token", get(api_token))
        .route("/api/trigger", post(api_trigger))
        .route("/api/override/trigger_mode", post(api_trigger_mode))
        .route("/api/disable", post(api_disable))
        .route("/api/button", post(api_button))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(static_or_index)
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Host (DNS rebinding), Origin (CSRF) and token checks for every request.
async fn guard(State(shared): S, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = header_str(headers, &header::HOST).unwrap_or("");
    if shared.loopback_only {
        let name = host_name(host);
        let ok = name.is_empty()
            || name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !ok {
            return plain(
                StatusCode::FORBIDDEN,
                format!("host {host:?} is not allowed"),
            );
        }
    }
    let mutating = req.method() == Method::POST || req.uri().path() == "/ws/view";
    if mutating
        && let Some(origin) = header_str(headers, &header::ORIGIN)
        && origin.split_once("://").map_or(origin, |(_, h)| h) != host
    {
        return plain(
            StatusCode::FORBIDDEN,
            format!("origin {origin:?} does not match host {host:?}"),
        );
    }
    if req.method() == Method::POST {
        let given = header_str(headers, &header::HeaderName::from_static("x-stilt-token"))
            .or_else(|| header_str(headers, &header::HeaderName::from_static("x-tilt-token")));
        if given != Some(shared.token.as_str()) {
            return plain(StatusCode::FORBIDDEN, "missing or wrong X-Stilt-Token");
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct WsQuery {
    #[serde(default)]
    csrf: String,
}

async fn ws_view(State(shared): S, Query(q): Query<WsQuery>, ws: WebSocketUpgrade) -> Response {
    if q.csrf != shared.token {
        return plain(StatusCode::FORBIDDEN, "missing or wrong csrf token");
    }
    ws.max_message_size(1 << 20)
        .on_upgrade(move |socket| crate::view::run(shared, socket))
}

async fn api_view(State(shared): S) -> Response {
    let body = crate::view::snapshot_json(&shared);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn api_token(State(shared): S) -> Response {
    plain(StatusCode::OK, shared.token.clone())
}

/// Decodes a JSON body and runs an action on it.
fn act<T: DeserializeOwned>(
    body: &Bytes,
    f: impl FnOnce(T) -> Result<(), ActionError>,
) -> Response {
    let req = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    match f(req) {
        Ok(()) => plain(StatusCode::OK, ""),
        Err(e) => plain(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.message,
        ),
    }
}

async fn api_trigger(State(shared): S, body: Bytes) -> Response {
    act(&body, |req| actions::trigger(&shared.store, &req))
}

async fn api_trigger_mode(State(shared): S, body: Bytes) -> Response {
    act(&body, |req| actions::set_trigger_mode(&shared.store, &req))
}

async fn api_disable(State(shared): S, body: Bytes) -> Response {
    act(&body, |req| actions::set_disabled(&shared.store, &req))
}

async fn api_button(State(shared): S, body: Bytes) -> Response {
    act(&body, |req| actions::click_button(&shared.store, &req))
}

const TOKEN_PLACEHOLDER: &str = "__STILT_TOKEN__";

async fn static_or_index(State(shared): S, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/ws/") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let asset = |p: &str| -> Option<(&'static str, std::borrow::Cow<'static, [u8]>)> {
        match &shared.assets_dir {
            Some(dir) => {
                let rel = p.trim_start_matches('/');
                if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                    return None;
                }
                let bytes = std::fs::read(dir.join(rel)).ok()?;
                Some((crate::assets::content_type(p), bytes.into()))
            }
            None => crate::assets::get(p).map(|(ct, b)| (ct, b.into())),
        }
    };
    if path != "/" && path != "/index.html" {
        if let Some((ct, bytes)) = asset(path) {
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return Response::builder()
                .header(header::CONTENT_TYPE, ct)
                .header(header::CACHE_CONTROL, cache)
                .body(Body::from(bytes.into_owned()))
                .expect("valid response");
        }
        if path.starts_with("/assets/") {
            return plain(StatusCode::NOT_FOUND, "not found");
        }
    }
    // Every other path is a client-side route: serve the app with the token filled in.
    let Some((_, index)) = asset("/index.html") else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this build has no web UI bundle (crates/stilt-web/frontend/dist is empty)",
        );
    };
    let html = String::from_utf8_lossy(&index).replace(TOKEN_PLACEHOLDER, &shared.token);
    let mut resp = Response::new(Body::from(html));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    resp
}
