//! The web server over a real store and log store: security checks, actions as store writes,
//! the websocket view (snapshot, batched deltas, log backfill, subscriptions), and the embedded
//! bundle.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use stilt_logs::{Level, LogStore};
use stilt_store::Store;
use stilt_web::{WebConfig, WebServer, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

async fn start(store: &Store, logs: &LogStore) -> WebServer {
    let mut cfg = WebConfig::new(store.clone(), logs.clone());
    cfg.port = 0;
    cfg.token = Some("tok".into());
    cfg.max_lines_per_message = 1000;
    serve(cfg).await.unwrap()
}

/// A minimal HTTP/1.1 client: returns (status, body).
async fn http(
    srv: &WebServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", srv.addr.port()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked bodies: good enough for the small answers checked here.
    (status, body.to_string())
}

fn uiresource(name: &str) -> Value {
    json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIResource", "metadata": {"name": name},
           "status": {"runtimeStatus": "pending", "updateStatus": "pending"}})
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    srv: &WebServer,
    token: &str,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let url = format!("ws://127.0.0.1:{}/ws/view?csrf={token}", srv.addr.port());
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn next_msg(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        if let tungstenite::Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn names(msg: &Value, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = msg["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["kind"] == kind)
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn index_is_served_with_the_token_and_assets_are_embedded() {
    let (store, logs) = (Store::default(), LogStore::default());
    let srv = start(&store, &logs).await;
    let (status, body) = http(&srv, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<meta name="stilt-token" content="tok""#),
        "{body}"
    );
    // Client-side routes serve the app too.
    let (status, body) = http(&srv, "GET", "/r/web/timeline", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("stilt-token"));
    // Every asset the index references is embedded and served.
    let assets: Vec<&str> = stilt_web::assets::paths()
        .filter(|p| p.starts_with("/assets/"))
        .collect();
    assert!(assets.iter().any(|p| p.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|p| p.ends_with(".css")), "{assets:?}");
    for a in &assets {
        assert!(body.contains(a), "index.html references {a}");
        let (status, _) = http(&srv, "GET", a, &[], "").await;
        assert_eq!(status, 200, "{a}");
    }
    assert_eq!(http(&srv, "GET", "/assets/nope.js", &[], "").await.0, 404);
    assert_eq!(
        http(&srv, "GET", "/api/websocket_token", &[], "").await.1,
        "tok"
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn posts_need_the_token_a_matching_origin_and_a_loopback_host() {
    let (store, logs) = (Store::default(), LogStore::default());
    store.create(uiresource("web")).unwrap();
    let srv = start(&store, &logs).await;
    let body = r#"{"manifest_names":["web"],"build_reason":16}"#;
    assert_eq!(http(&srv, "POST", "/api/trigger", &[], body).await.0, 403);
    assert_eq!(
        http(
            &srv,
            "POST",
            "/api/trigger",
            &[("X-Stilt-Token", "bad")],
            body
        )
        .await
        .0,
        403
    );
    let host = format!("127.0.0.1:{}", srv.addr.port());
    let evil_origin = [("X-Stilt-Token", "tok"), ("Origin", "http://evil.example")];
    assert_eq!(
        http(&srv, "POST", "/api/trigger", &evil_origin, body)
            .await
            .0,
        403
    );
    let evil_host = [("Host", "evil.example")];
    assert_eq!(http(&srv, "GET", "/api/view", &evil_host, "").await.0, 403);
    let same_origin = format!("http://{host}");
    let ok = [("X-Stilt-Token", "tok"), ("Origin", same_origin.as_str())];
    assert_eq!(http(&srv, "POST", "/api/trigger", &ok, body).await.0, 200);
    // Tilt's header name works too (for `tilt trigger`-style clients).
    assert_eq!(
        http(
            &srv,
            "POST",
            "/api/trigger",
            &[("X-Tilt-Token", "tok")],
            body
        )
        .await
        .0,
        200
    );
    // The websocket: token required, foreign Origin refused.
    assert!(connect(&srv, "bad", None).await.is_err());
    assert!(
        connect(&srv, "tok", Some("http://evil.example"))
            .await
            .is_err()
    );
    assert!(connect(&srv, "tok", Some(&same_origin)).await.is_ok());
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn actions_are_store_writes_following_the_engine_conventions() {
    let (store, logs) = (Store::default(), LogStore::default());
    for n in ["web", "api"] {
        store.create(uiresource(n)).unwrap();
    }
    store
        .create(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIButton", "metadata": {"name": "seed"},
                       "spec": {"location": {"componentID": "web", "componentType": "Resource"}, "text": "Seed",
                                "inputs": [{"name": "n", "text": {}}]}}))
        .unwrap();
    let srv = start(&store, &logs).await;
    let t = [("X-Stilt-Token", "tok")];
    let post = |path: &'static str, body: Value| {
        let srv = &srv;
        async move { http(srv, "POST", path, &t, &body.to_string()).await }
    };
    // Trigger: creates the queue, then merges.
    assert_eq!(
        post("/api/trigger", json!({"manifest_names": ["web"]}))
            .await
            .0,
        200
    );
    assert_eq!(
        post("/api/trigger", json!({"manifest_names": ["api"]}))
            .await
            .0,
        200
    );
    let q = store.get("ConfigMap", "tilt-trigger-queue").unwrap();
    assert_eq!(q["data"], json!({"web": "manual", "api": "manual"}));
    let (status, body) = post("/api/trigger", json!({"manifest_names": ["nope"]})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        post("/api/trigger", json!({"manifest_names": []})).await.0,
        400
    );
    assert_eq!(post("/api/trigger", json!("garbage")).await.0, 400);

    // Disable / enable.
    assert_eq!(
        post(
            "/api/disable",
            json!({"manifest_names": ["web"], "disabled": true})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        store.get("ConfigMap", "web-disable").unwrap()["data"]["isDisabled"],
        "true"
    );
    assert_eq!(
        post(
            "/api/disable",
            json!({"manifest_names": ["web"], "disabled": false})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        store.get("ConfigMap", "web-disable").unwrap()["data"]["isDisabled"],
        "false"
    );

    // Trigger mode.
    assert_eq!(
        post(
            "/api/override/trigger_mode",
            json!({"manifest_names": ["api"], "trigger_mode": 1})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        store.get("UIResource", "api").unwrap()["status"]["triggerMode"],
        1
    );
    let api = store.get("UIResource", "api").unwrap();
    assert_eq!(
        api["metadata"]["annotations"]["stilt.dev/trigger-mode"],
        "manual"
    );
    let back_to_auto = json!({"manifest_names": ["api"], "trigger_mode": 0});
    assert_eq!(
        post("/api/override/trigger_mode", back_to_auto).await.0,
        200
    );
    let api = store.get("UIResource", "api").unwrap();
    assert_eq!(
        api["metadata"]["annotations"]["stilt.dev/trigger-mode"],
        "auto"
    );
    assert!(api["status"].get("triggerMode").is_none());
    assert_eq!(
        post(
            "/api/override/trigger_mode",
            json!({"manifest_names": ["api"], "trigger_mode": 9})
        )
        .await
        .0,
        400
    );

    // UIButton click.
    let click = json!({"name": "seed", "inputs": [{"name": "n", "text": {"value": "3"}}]});
    assert_eq!(post("/api/button", click).await.0, 200);
    let b = store.get("UIButton", "seed").unwrap();
    assert!(b["status"]["lastClickedAt"].is_string());
    assert_eq!(b["status"]["inputs"][0]["text"]["value"], "3");
    assert_eq!(post("/api/button", json!({"name": "nope"})).await.0, 404);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_sends_a_snapshot_then_batched_deltas_and_logs() {
    let (store, logs) = (Store::default(), LogStore::default());
    store.create(uiresource("web")).unwrap();
    for i in 0..2500 {
        logs.line("web", "build:1", Level::Info, &format!("line {i}"));
    }
    let srv = start(&store, &logs).await;
    let mut ws = connect(&srv, "tok", None).await.unwrap();
    let first = next_msg(&mut ws).await;
    assert_eq!(first["full"], true);
    assert_eq!(names(&first, "UIResource"), ["web"]);
    // Logs are backfilled in chunks of max_lines_per_message.
    assert_eq!(first["logs"]["lines"].as_array().unwrap().len(), 1000);
    assert_eq!(first["logs"]["names"], json!(["web"]));
    assert_eq!(first["logs"]["lines"][0][5], "line 0");
    assert_eq!(first["more"], true);
    let second = next_msg(&mut ws).await;
    assert_eq!(second["full"], false);
    assert_eq!(second["logs"]["from"], 1000);
    let third = next_msg(&mut ws).await;
    assert_eq!(third["logs"]["lines"].as_array().unwrap().len(), 500);
    assert_eq!(third["more"], false);
    assert_eq!(third["logs"]["to"], 2500);

    // A burst of changes arrives as one message (batched), with logs.
    let t0 = std::time::Instant::now();
    for i in 0..20 {
        store
            .patch(
                "UIResource",
                "web",
                stilt_store::PatchType::Merge,
                &json!({"status": {"order": i + 1}}),
                true,
            )
            .unwrap();
        logs.line("web", "pod", Level::Warn, &format!("warn {i}"));
    }
    store.create(uiresource("api")).unwrap();
    store.delete("UIResource", "api").unwrap();
    let mut got_lines = 0;
    let mut msgs = 0;
    let mut last_order = 0;
    let mut deleted = false;
    while got_lines < 20 || last_order != 20 {
        let m = next_msg(&mut ws).await;
        msgs += 1;
        got_lines += m["logs"]["lines"].as_array().map_or(0, Vec::len);
        for o in m["objects"].as_array().into_iter().flatten() {
            if o["metadata"]["name"] == "web" {
                last_order = o["status"]["order"].as_i64().unwrap();
            }
        }
        deleted |= m["deleted"]
            .as_array()
            .is_some_and(|d| d.contains(&json!(["UIResource", "api"])));
    }
    assert!(msgs <= 2, "one batch (at most split by timing), got {msgs}");
    assert!(deleted, "the deletion was sent");
    assert!(t0.elapsed() < Duration::from_secs(1));
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribing_sends_the_objects_behind_a_resource() {
    let (store, logs) = (Store::default(), LogStore::default());
    store.create(uiresource("web")).unwrap();
    let fw = |name: &str, res: &str| {
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "FileWatch",
               "metadata": {"name": name, "annotations": {"tilt.dev/resource": res}},
               "spec": {"watchedPaths": ["/src"]}})
    };
    store.create(fw("image:web", "web")).unwrap();
    store.create(fw("image:api", "api")).unwrap();
    let srv = start(&store, &logs).await;
    let mut ws = connect(&srv, "tok", None).await.unwrap();
    let first = next_msg(&mut ws).await;
    assert!(names(&first, "FileWatch").is_empty(), "not subscribed yet");
    ws.send(tungstenite::Message::Text(
        r#"{"subscribe":["web"]}"#.into(),
    ))
    .await
    .unwrap();
    let m = next_msg(&mut ws).await;
    assert_eq!(names(&m, "FileWatch"), ["image:web"]);
    // Changes to subscribed objects flow; others do not.
    store
        .patch(
            "FileWatch",
            "image:api",
            stilt_store::PatchType::Merge,
            &json!({"spec": {"watchedPaths": ["/x"]}}),
            false,
        )
        .unwrap();
    store
        .patch(
            "FileWatch",
            "image:web",
            stilt_store::PatchType::Merge,
            &json!({"spec": {"watchedPaths": ["/y"]}}),
            false,
        )
        .unwrap();
    let m = next_msg(&mut ws).await;
    assert_eq!(names(&m, "FileWatch"), ["image:web"]);
    ws.send(tungstenite::Message::Text(
        r#"{"subscribe":["api"]}"#.into(),
    ))
    .await
    .unwrap();
    let m = next_msg(&mut ws).await;
    assert_eq!(names(&m, "FileWatch"), ["image:api"]);
    assert_eq!(m["deleted"], json!([["FileWatch", "image:web"]]));
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_websockets_and_frees_the_port() {
    let (store, logs) = (Store::default(), LogStore::default());
    let srv = start(&store, &logs).await;
    let addr = srv.addr;
    let mut ws = connect(&srv, "tok", None).await.unwrap();
    let _ = next_msg(&mut ws).await;
    tokio::time::timeout(Duration::from_secs(5), srv.shutdown())
        .await
        .expect("shutdown does not hang on open websockets")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_busy_port_is_reported_like_tilt() {
    let (store, logs) = (Store::default(), LogStore::default());
    let srv = start(&store, &logs).await;
    let mut cfg = WebConfig::new(store.clone(), logs.clone());
    cfg.port = srv.addr.port();
    let err = serve(cfg).await.err().expect("port in use");
    assert!(
        err.to_string()
            .contains("already have another process on port"),
        "{err}"
    );
    srv.shutdown().await.unwrap();
}
