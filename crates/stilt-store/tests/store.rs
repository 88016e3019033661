use serde_json::{Value, json};
use stilt_store::*;

fn cmd(name: &str, args: &[&str]) -> Value {
    json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": name, "labels": {"app": name}}, "spec": {"args": args}})
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn create_fills_metadata_and_rejects_duplicates() {
    let store = Store::default();
    let obj = store.create(cmd("a", &["ls"])).unwrap();
    assert_eq!(rv(&obj), 1);
    assert_eq!(obj["metadata"]["generation"], 1);
    assert!(obj["metadata"]["uid"].as_str().unwrap().len() > 10);
    assert!(obj["metadata"]["creationTimestamp"].is_string());
    assert_eq!(store.create(cmd("a", &["ls"])).unwrap_err().code(), 409);
    let generated = store
        .create(
            json!({"kind": "Cmd", "metadata": {"generateName": "job-"}, "spec": {"args": ["x"]}}),
        )
        .unwrap();
    assert!(
        generated["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("job-")
    );
}

#[test]
fn invalid_objects_name_the_field_and_change_nothing() {
    let store = Store::default();
    let err = store.create(cmd("a", &[])).unwrap_err();
    assert_eq!(err.code(), 422);
    assert!(err.to_string().contains("spec.args"), "{err}");
    let err = store
        .create(
            json!({"kind": "Cmd", "metadata": {"name": "b"}, "spec": {"args": ["x"], "nope": 1}}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `nope`"), "{err}");
    assert_eq!(store.resource_version(), 0);
    assert_eq!(
        store
            .create(json!({"kind": "Nope", "metadata": {"name": "x"}}))
            .unwrap_err()
            .code(),
        404
    );
}

#[test]
fn update_checks_resource_version_and_keeps_status() {
    let store = Store::default();
    let created = store.create(cmd("a", &["ls"])).unwrap();
    let mut with_status = (*created).clone();
    with_status["status"] = json!({"ready": true});
    let after_status = store.update_status(with_status).unwrap();
    assert_eq!(after_status["status"]["ready"], true);
    assert_eq!(
        after_status["metadata"]["generation"], 1,
        "status writes do not bump generation"
    );

    let mut stale = (*created).clone();
    stale["spec"]["args"] = json!(["pwd"]);
    assert_eq!(store.update(stale.clone()).unwrap_err().code(), 409);

    stale["metadata"]["resourceVersion"] = after_status["metadata"]["resourceVersion"].clone();
    stale["status"] = json!({"ready": false});
    let updated = store.update(stale).unwrap();
    assert_eq!(
        updated["status"]["ready"], true,
        "spec writes keep the stored status"
    );
    assert_eq!(updated["metadata"]["generation"], 2);
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    let store = Store::default();
    store.create(cmd("a", &["ls"])).unwrap();
    let before = store.resource_version();
    let again = store.update(cmd("a", &["ls"])).unwrap();
    assert_eq!(rv(&again), before);
    assert_eq!(store.resource_version(), before);
}

#[test]
fn patches_of_every_flavour() {
    let store = Store::default();
    store.create(cmd("a", &["ls"])).unwrap();
    let merged = store
        .patch(
            "Cmd",
            "a",
            PatchType::Merge,
            &json!({"spec": {"dir": "/tmp"}}),
            false,
        )
        .unwrap();
    assert_eq!(merged["spec"]["dir"], "/tmp");
    let jsonp = store
        .patch(
            "Cmd",
            "a",
            PatchType::Json,
            &json!([{"op": "add", "path": "/spec/args/-", "value": "-l"}]),
            false,
        )
        .unwrap();
    assert_eq!(jsonp["spec"]["args"], json!(["ls", "-l"]));
    let status = store
        .patch(
            "Cmd",
            "a",
            PatchType::Merge,
            &json!({"status": {"ready": true}, "spec": {"dir": "/ignored"}}),
            true,
        )
        .unwrap();
    assert_eq!(status["status"]["ready"], true);
    assert_eq!(
        status["spec"]["dir"], "/tmp",
        "a status patch leaves the spec alone"
    );
    let err = store
        .patch(
            "Cmd",
            "a",
            PatchType::Merge,
            &json!({"spec": {"args": []}}),
            false,
        )
        .unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        store.get("Cmd", "a").unwrap()["spec"]["args"],
        json!(["ls", "-l"])
    );
}

#[test]
fn finalizers_delay_deletion() {
    let store = Store::default();
    let mut obj = cmd("a", &["ls"]);
    obj["metadata"]["finalizers"] = json!(["stilt.dev/cleanup"]);
    store.create(obj).unwrap();
    let marked = store.delete("Cmd", "a").unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert!(store.get("Cmd", "a").is_ok());
    store
        .patch(
            "Cmd",
            "a",
            PatchType::Merge,
            &json!({"metadata": {"finalizers": null}}),
            false,
        )
        .unwrap();
    assert_eq!(store.get("Cmd", "a").unwrap_err().code(), 404);
}

#[test]
fn selectors_filter_lists() {
    let store = Store::default();
    for n in ["a", "b", "c"] {
        store.create(cmd(n, &["ls"])).unwrap();
    }
    let sel = Selectors::parse(Some("app in (a,c)"), None).unwrap();
    let (items, rv) = store.list("Cmd", &sel).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(rv, 3);
    let sel = Selectors::parse(None, Some("metadata.name=b")).unwrap();
    assert_eq!(store.list("Cmd", &sel).unwrap().0.len(), 1);
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version() {
    let store = Store::default();
    store.create(cmd("a", &["ls"])).unwrap();
    let mid = store.resource_version();
    store.create(cmd("b", &["ls"])).unwrap();
    let w = store
        .watch(
            Some("Cmd"),
            Selectors::default(),
            WatchFrom::ResourceVersion(mid),
        )
        .unwrap();
    assert_eq!(w.initial.len(), 1);
    assert_eq!(w.initial[0].object["metadata"]["name"], "b");
    let mut stream = w.stream;
    store.delete("Cmd", "a").unwrap();
    let ev = stream.next().await.unwrap();
    assert_eq!(ev.r#type, EventType::Deleted);
    assert_eq!(ev.object["metadata"]["name"], "a");

    let all = store
        .watch(Some("Cmd"), Selectors::default(), WatchFrom::Beginning)
        .unwrap();
    assert_eq!(all.initial.len(), 1);
}

#[test]
fn watch_from_expired_history_is_gone() {
    let store = Store::new(StoreOptions {
        history: 5,
        ..Default::default()
    });
    for i in 0..20 {
        store.create(cmd(&format!("c{i}"), &["ls"])).unwrap();
    }
    let err = store
        .watch(
            Some("Cmd"),
            Selectors::default(),
            WatchFrom::ResourceVersion(2),
        )
        .err()
        .unwrap();
    assert_eq!(err.code(), 410);
    assert!(
        store
            .watch(
                Some("Cmd"),
                Selectors::default(),
                WatchFrom::ResourceVersion(15)
            )
            .is_ok()
    );
}

#[test]
fn huge_past_events_leave_the_history_by_size() {
    let store = Store::new(StoreOptions {
        history_bytes: 1 << 20,
        ..Default::default()
    });
    let big = "x".repeat(400 << 10);
    for i in 0..5 {
        let mut obj = cmd(&format!("big{i}"), &["ls"]);
        obj["metadata"]["annotations"] = json!({ "blob": big });
        store.create(obj).unwrap();
    }
    for i in 0..5 {
        store.delete("Cmd", &format!("big{i}")).unwrap();
    }
    // Ten events of ~400 KiB each: only the newest two fit in 1 MiB.
    let from = |rv| {
        store.watch(
            Some("Cmd"),
            Selectors::default(),
            WatchFrom::ResourceVersion(rv),
        )
    };
    assert_eq!(from(1).err().unwrap().code(), 410);
    assert_eq!(from(8).unwrap().initial.len(), 2);
}

#[tokio::test]
async fn a_slow_watcher_is_closed_and_never_blocks_writers() {
    let store = Store::new(StoreOptions {
        watch_queue: 8,
        ..Default::default()
    });
    let mut slow = store
        .watch(Some("Cmd"), Selectors::default(), WatchFrom::Beginning)
        .unwrap()
        .stream;
    let mut fast = store
        .watch(Some("Cmd"), Selectors::default(), WatchFrom::Beginning)
        .unwrap()
        .stream;
    let drain = tokio::spawn(async move {
        let mut seen = 0;
        while fast.next().await.is_ok() {
            seen += 1;
            if seen == 100 {
                break;
            }
        }
        seen
    });
    for i in 0..100 {
        store.create(cmd(&format!("c{i}"), &["ls"])).unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(
        drain.await.unwrap(),
        100,
        "the fast watcher saw every event"
    );
    let mut got = 0;
    let end = loop {
        match slow.next().await {
            Ok(_) => got += 1,
            Err(end) => break end,
        }
    };
    assert_eq!(end, WatchEnd::Lagged);
    assert_eq!(got, 8, "events delivered before the overflow are not lost");
}

#[tokio::test]
async fn an_object_leaving_the_selection_is_deleted_for_the_watcher() {
    let store = Store::default();
    store.create(cmd("a", &["ls"])).unwrap();
    let w = store
        .watch(
            Some("Cmd"),
            Selectors::parse(Some("app=a"), None).unwrap(),
            WatchFrom::Beginning,
        )
        .unwrap();
    let mut s = w.stream;
    store
        .patch(
            "Cmd",
            "a",
            PatchType::Merge,
            &json!({"metadata": {"labels": {"app": "z"}}}),
            false,
        )
        .unwrap();
    assert_eq!(s.next().await.unwrap().r#type, EventType::Deleted);
}

#[test]
fn typed_apply_creates_then_updates_only_on_change() {
    use stilt_api::{Cmd, CmdSpec};
    let store = Store::default();
    let desired = Cmd::new(
        "x",
        CmdSpec {
            args: vec!["ls".into()],
            ..Default::default()
        },
    );
    store.apply_typed(&desired).unwrap();
    let rv1 = store.resource_version();
    store.apply_typed(&desired).unwrap();
    assert_eq!(store.resource_version(), rv1);
    let mut changed = desired.clone();
    changed.spec.dir = "/tmp".into();
    let got = store.apply_typed(&changed).unwrap();
    assert_eq!(got.spec.dir, "/tmp");
    assert_eq!(got.metadata.generation, 2);
}
