//! API server figures: get and list latency over 1,000 objects (through the HTTP router, in
//! process), create→watch-event latency, and memory per 1,000 objects. Prints numbers only.

use axum::body::Body;
use http::Request;
use serde_json::json;
use std::time::{Duration, Instant};
use stilt_apiserver::{ApiServer, ServerOptions};
use stilt_store::{Selectors, Store, WatchFrom};
use tower::ServiceExt;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn cmd(i: usize) -> serde_json::Value {
    json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd",
           "metadata": {"name": format!("resource-{i}:serve"), "labels": {"app": format!("app-{}", i % 10)},
                        "annotations": {"tilt.dev/resource": format!("resource-{i}")}},
           "spec": {"args": ["sh", "-c", format!("python3 -m http.server {}", 8000 + i)], "dir": "/home/dev/project", "env": ["A=1", "B=2"]}})
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let store = Store::default();
    let router = ApiServer::new(store.clone(), ServerOptions::with_token("t")).router();
    for i in 0..1000 {
        store.create(cmd(i)).unwrap();
    }
    let request = |uri: String| {
        Request::get(uri)
            .header("Authorization", "Bearer t")
            .body(Body::empty())
            .unwrap()
    };

    let mut gets = Vec::new();
    for i in 0..2000 {
        let t = Instant::now();
        let resp = router
            .clone()
            .oneshot(request(format!(
                "/apis/tilt.dev/v1alpha1/cmds/resource-{}:serve",
                i % 1000
            )))
            .await
            .unwrap();
        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        gets.push(t.elapsed());
    }
    println!(
        "get one of 1,000 objects (HTTP, in process):  p50 {:.0} µs  p99 {:.0} µs",
        pct(gets.clone(), 0.5),
        pct(gets, 0.99)
    );

    let mut lists = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let resp = router
            .clone()
            .oneshot(request("/apis/tilt.dev/v1alpha1/cmds".into()))
            .await
            .unwrap();
        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        lists.push(t.elapsed());
    }
    println!(
        "list 1,000 objects (HTTP, in process):        p50 {:.2} ms  p99 {:.2} ms",
        pct(lists.clone(), 0.5) / 1e3,
        pct(lists, 0.99) / 1e3
    );

    let mut tables = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let req = Request::get("/apis/tilt.dev/v1alpha1/cmds")
            .header("Authorization", "Bearer t")
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .body(Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        tables.push(t.elapsed());
    }
    println!(
        "list 1,000 as a Table (kubectl get):          p50 {:.2} ms  p99 {:.2} ms",
        pct(tables.clone(), 0.5) / 1e3,
        pct(tables, 0.99) / 1e3
    );

    let mut watch = store
        .watch(
            Some("Cmd"),
            Selectors::default(),
            WatchFrom::ResourceVersion(store.resource_version()),
        )
        .unwrap()
        .stream;
    let mut lat = Vec::new();
    for i in 0..1000 {
        let t = Instant::now();
        store.create(cmd(10_000 + i)).unwrap();
        watch.next().await.unwrap();
        lat.push(t.elapsed());
    }
    println!(
        "create → watch event (store):                 p50 {:.1} µs  p99 {:.1} µs",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );

    let mut http_watch_lat = Vec::new();
    let resp = router
        .clone()
        .oneshot(request(format!(
            "/apis/tilt.dev/v1alpha1/cmds?watch=true&resourceVersion={}",
            store.resource_version()
        )))
        .await
        .unwrap();
    let mut body = resp.into_body().into_data_stream();
    use futures_util::StreamExt;
    for i in 0..200 {
        let t = Instant::now();
        store.create(cmd(20_000 + i)).unwrap();
        body.next().await.unwrap().unwrap();
        http_watch_lat.push(t.elapsed());
    }
    println!(
        "create → watch event (HTTP watch stream):     p50 {:.1} µs  p99 {:.1} µs",
        pct(http_watch_lat.clone(), 0.5),
        pct(http_watch_lat, 0.99)
    );

    let fresh = Store::default();
    let before = rss_kb();
    for i in 0..10_000 {
        fresh.create(cmd(i)).unwrap();
    }
    let after = rss_kb();
    println!(
        "memory: {:.0} KB per 1,000 objects (RSS growth over 10,000 Cmds incl. watch history)",
        (after - before) as f64 / 10.0
    );
}
