//! Watch semantics through kube-rs against the API server in process (no socket): resume,
//! bookmarks, 410 Gone, slow watchers closed, and no event lost under concurrent writers.

use futures_util::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use kube::{Client, core::GroupVersionKind};
use serde_json::json;
use std::time::Duration;
use stilt_apiserver::{ApiServer, ServerOptions};
use stilt_store::{Store, StoreOptions};

const TOKEN: &str = "test-token";

fn client(store: Store, bookmark_interval: Duration) -> Client {
    let mut opts = ServerOptions::with_token(TOKEN);
    opts.bookmark_interval = bookmark_interval;
    let router = ApiServer::new(store, opts).router();
    let service = tower::ServiceBuilder::new()
        .map_request(|mut req: http::Request<kube::client::Body>| {
            req.headers_mut().insert(
                http::header::AUTHORIZATION,
                format!("Bearer {TOKEN}").parse().unwrap(),
            );
            req
        })
        .service(router);
    Client::new(service, "default")
}

fn cmds(client: Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tilt.dev", "v1alpha1", "Cmd"),
        "cmds",
    );
    Api::all_with(client, &ar)
}

fn cmd(name: &str) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": name}, "spec": {"args": ["true"]}})).unwrap()
}

fn name(ev: &WatchEvent<DynamicObject>) -> Option<String> {
    match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            o.metadata.name.clone()
        }
        _ => None,
    }
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version() {
    let store = Store::default();
    let api = cmds(client(store.clone(), Duration::from_secs(60)));
    api.create(&PostParams::default(), &cmd("a")).await.unwrap();
    let list = api.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cmd("b")).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let ev = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(ev, WatchEvent::Added(_)));
    assert_eq!(
        name(&ev).as_deref(),
        Some("b"),
        "only what happened after the list is replayed"
    );
    api.delete("a", &Default::default()).await.unwrap();
    let ev = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(ev, WatchEvent::Deleted(_)), "{ev:?}");
}

#[tokio::test]
async fn bookmarks_arrive_when_asked_for() {
    let store = Store::default();
    let api = cmds(client(store.clone(), Duration::from_millis(100)));
    api.create(&PostParams::default(), &cmd("a")).await.unwrap();
    let rv = api
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..Default::default()
            }
            .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn watching_from_expired_history_is_410_gone() {
    let store = Store::new(StoreOptions {
        history: 5,
        ..Default::default()
    });
    let api = cmds(client(store.clone(), Duration::from_secs(60)));
    for i in 0..20 {
        api.create(&PostParams::default(), &cmd(&format!("c{i}")))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), "2")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_watcher_is_closed_with_410_and_writers_never_wait() {
    let store = Store::new(StoreOptions {
        watch_queue: 16,
        ..Default::default()
    });
    let api = cmds(client(store.clone(), Duration::from_secs(60)));
    let mut stream = api
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    // The watcher reads nothing while 2,000 writes happen; the writes must all complete.
    let start = std::time::Instant::now();
    for i in 0..2000 {
        store.create(json!({"kind": "Cmd", "metadata": {"name": format!("c{i}")}, "spec": {"args": ["x"]}})).unwrap();
    }
    assert!(start.elapsed() < Duration::from_secs(20));
    let mut seen = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(WatchEvent::Error(e)) => break Some(e.code),
            Some(_) => seen += 1,
            None => break None,
        }
    };
    assert_eq!(
        end,
        Some(410),
        "a lagging watch ends with 410 so the client relists (saw {seen} events first)"
    );
    assert!(seen < 2000);
}

#[tokio::test]
async fn no_event_is_lost_under_ten_concurrent_writers() {
    let store = Store::default();
    let c = client(store.clone(), Duration::from_secs(60));
    let api = cmds(c.clone());
    let mut stream = api
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .unwrap()
        .boxed();
    let writers: Vec<_> = (0..10)
        .map(|w| {
            let api = cmds(c.clone());
            tokio::spawn(async move {
                for i in 0..100 {
                    api.create(&PostParams::default(), &cmd(&format!("w{w}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut names = std::collections::BTreeSet::new();
    let mut last_rv = 0u64;
    while names.len() < 1000 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("events keep coming")
            .unwrap()
            .unwrap();
        if let WatchEvent::Added(o) = ev {
            let rv: u64 = o.metadata.resource_version.unwrap().parse().unwrap();
            assert!(rv > last_rv, "resourceVersions increase");
            last_rv = rv;
            names.insert(o.metadata.name.unwrap());
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(names.len(), 1000);
}

#[tokio::test]
async fn errors_are_kubernetes_statuses() {
    let store = Store::default();
    let api = cmds(client(store.clone(), Duration::from_secs(60)));
    api.create(&PostParams::default(), &cmd("a")).await.unwrap();
    let dup = api
        .create(&PostParams::default(), &cmd("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref s) if s.code == 409),
        "{dup:?}"
    );
    let missing = api.get("nope").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404),
        "{missing:?}"
    );
    let invalid: DynamicObject = serde_json::from_value(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "b"}, "spec": {"args": []}})).unwrap();
    match api
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(s.message.contains("spec.args"), "{}", s.message);
        }
        e => panic!("{e:?}"),
    }
    let mut stale = api.get("a").await.unwrap();
    stale.metadata.resource_version = Some("1".into());
    store
        .patch(
            "Cmd",
            "a",
            stilt_store::PatchType::Merge,
            &json!({"spec": {"dir": "/x"}}),
            false,
        )
        .unwrap();
    let conflict = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409),
        "{conflict:?}"
    );
    assert_eq!(
        store.get("Cmd", "a").unwrap()["spec"]["dir"],
        "/x",
        "a rejected write changes nothing"
    );
}

/// One raw request through the router; the status and, for a non-streaming answer, the body.
async fn raw(store: Store, method: &str, uri: &str, body: serde_json::Value) -> (u16, String) {
    use tower::ServiceExt;
    let router = ApiServer::new(store, ServerOptions::with_token(TOKEN)).router();
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let text = if uri.contains("watch=") && status == 200 {
        String::new()
    } else {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (status, text)
}

#[tokio::test]
async fn names_are_path_segments_and_bad_ones_are_422_naming_the_field() {
    let store = Store::default();
    let long = "a".repeat(254);
    for bad in ["a%2Fb", "a\u{0}b", "a\nb", "50%", ".", long.as_str()] {
        let (code, body) = raw(
            store.clone(),
            "POST",
            "/apis/tilt.dev/v1alpha1/cmds",
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": bad}, "spec": {"args": ["true"]}}),
        )
        .await;
        assert_eq!(code, 422, "{bad:?}: {body}");
        assert!(body.contains("metadata.name"), "{bad:?}: {body}");
    }
    for good in ["web:serve", "local:web", "configs:(Tiltfile)", "(Tiltfile)"] {
        let (code, body) = raw(
            store.clone(),
            "POST",
            "/apis/tilt.dev/v1alpha1/cmds",
            json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": good}, "spec": {"args": ["true"]}}),
        )
        .await;
        assert_eq!(code, 201, "{good:?}: {body}");
    }
}

#[tokio::test]
async fn a_huge_watch_timeout_is_served_not_a_panic() {
    let store = Store::default();
    let (code, body) = raw(
        store.clone(),
        "GET",
        &format!(
            "/apis/tilt.dev/v1alpha1/cmds?watch=true&timeoutSeconds={}",
            u64::MAX
        ),
        json!(null),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // The server still answers (the deadline itself is unit-tested in watch.rs).
    let (code, _) = raw(store, "GET", "/apis/tilt.dev/v1alpha1/cmds", json!(null)).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_watch_from_a_future_resource_version_is_too_large() {
    let store = Store::default();
    let api = cmds(client(store.clone(), Duration::from_secs(60)));
    api.create(&PostParams::default(), &cmd("a")).await.unwrap();
    let err = api
        .watch(&WatchParams::default().timeout(5), "999999")
        .await
        .map(|_| ())
        .err();
    let (code, body) = raw(
        store,
        "GET",
        "/apis/tilt.dev/v1alpha1/cmds?watch=true&resourceVersion=999999",
        json!(null),
    )
    .await;
    assert_eq!(code, 504, "{body} / {err:?}");
    assert!(
        body.contains("Too large resource version: 999999"),
        "{body}"
    );
    assert!(body.contains("ResourceVersionTooLarge"), "{body}");
}

/// Found by scripts/api-fuzz: a body whose metadata is not an object panicked the handler
/// (the connection closed without an answer).
#[tokio::test]
async fn metadata_that_is_not_an_object_is_400() {
    let store = Store::default();
    for (method, uri) in [
        ("PUT", "/apis/tilt.dev/v1alpha1/configmaps/a"),
        ("PUT", "/apis/tilt.dev/v1alpha1/configmaps/a/status"),
        ("POST", "/apis/tilt.dev/v1alpha1/configmaps"),
    ] {
        for metadata in [json!([null, null]), json!(false), json!("a"), json!(1)] {
            let (code, body) = raw(
                store.clone(),
                method,
                uri,
                json!({"apiVersion": "", "kind": "", "metadata": metadata, "data": {}}),
            )
            .await;
            assert_eq!(code, 400, "{method} {uri} {metadata}: {body}");
            assert!(body.contains("metadata"), "{body}");
        }
    }
}
