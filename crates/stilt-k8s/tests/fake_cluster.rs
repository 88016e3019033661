//! The trait-level pieces (discovery, log follow, port-forward, the persistent channel and its
//! exec+tar fallback) against FakeCluster: what reconciler tests will rely on.

use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use stilt_k8s::inject::{ImageInjection, prepare_for_apply};
use stilt_k8s::manifest::parse_yaml;
use stilt_k8s::*;

fn helper_bytes() -> Vec<u8> {
    // Any file works as the "binary" in the fake: the fake serves the real request loop
    // in-process once the file exists at the install path.
    b"#!fake stilt-syncer".to_vec()
}

fn pod(name: &str, owner_uid: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("pod-{name}"), "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-rs", "uid": owner_uid}]},
        "spec": {"containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 8000}]}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
            "image": "web", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    })
}

#[tokio::test]
async fn apply_and_discover_by_owner_chain_and_selectors() {
    let fake = FakeCluster::new();
    let cluster: Arc<dyn Cluster> = Arc::new(fake.clone());
    let objs = prepare_for_apply(
        parse_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: web}]\n").unwrap(),
        &[ImageInjection::new("web", "localhost:5000/web:tilt-1").unwrap()],
        &[],
    )
    .unwrap();
    let applied = cluster
        .apply(&objs, &ApplyOptions::default())
        .await
        .unwrap();
    let dep_uid = applied[0]["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(applied[0]["metadata"]["namespace"], "default");
    // The ReplicaSet in between.
    fake.apply(
        &[json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-rs", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep_uid}]}})],
        &ApplyOptions::default(),
    )
    .await
    .unwrap();
    let rs_uid = fake
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "ReplicaSet")
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    fake.put_pod(pod("early", &rs_uid, json!({})));

    let mut sel = stilt_api::LabelSelector::default();
    sel.match_labels.insert("extra".into(), "yes".into());
    let mut w = cluster
        .watch_pods(PodWatchSpec {
            namespaces: vec!["default".into()],
            ancestor_uids: [dep_uid.clone()].into(),
            extra_selectors: vec![sel],
        })
        .await
        .unwrap();
    match w.next().await.unwrap() {
        PodEvent::Upsert(p) => {
            assert_eq!(p.pod.name, "early");
            assert_eq!(p.pod.ancestor_uid, dep_uid);
            assert_eq!(p.pod.containers[0].ports, [8000]);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(w.next().await.unwrap(), PodEvent::Synced);
    // Unrelated pod: nothing. Selector pod: reported.
    fake.put_pod(pod("stranger", "other", json!({})));
    fake.put_pod(pod("labelled", "other", json!({"extra": "yes"})));
    match w.next().await.unwrap() {
        PodEvent::Upsert(p) => assert_eq!(
            (p.pod.name.as_str(), p.pod.ancestor_uid.as_str()),
            ("labelled", "")
        ),
        e => panic!("{e:?}"),
    }
    fake.remove_pod("default", "early");
    assert!(matches!(w.next().await.unwrap(), PodEvent::Deleted { name, .. } if name == "early"));
    fake.put_pod(pod("replacement", &rs_uid, json!({})));
    assert!(matches!(w.next().await.unwrap(), PodEvent::Upsert(p) if p.pod.name == "replacement"));
}

#[tokio::test]
async fn log_follow_resumes_without_duplicates_and_ends_with_the_pod() {
    let fake = FakeCluster::new();
    fake.put_pod(pod("p", "x", json!({})));
    let c = ContainerRef::new("default", "p", "web");
    let cluster: Arc<dyn Cluster> = Arc::new(fake.clone());
    fake.push_log(&c, "one");
    let mut logs = follow_logs(
        cluster,
        c.clone(),
        FollowOptions {
            since: None,
            reconnect_gap: Duration::from_millis(10),
        },
    );
    let text = |e: LogEvent| match e {
        LogEvent::Line { text, .. } => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(logs.next().await.unwrap()), "one");
    fake.push_log(&c, "two");
    assert_eq!(text(logs.next().await.unwrap()), "two");
    // The container stops: the stream ends, it is reopened and continues after "two".
    fake.close_log(&c);
    assert!(matches!(
        logs.next().await.unwrap(),
        LogEvent::Reconnecting { .. }
    ));
    fake.push_log(&c, "three");
    assert_eq!(text(logs.next().await.unwrap()), "three");
    fake.remove_pod("default", "p");
    fake.close_log(&c);
    match tokio::time::timeout(Duration::from_secs(5), logs.next())
        .await
        .unwrap()
        .unwrap()
    {
        LogEvent::Ended { reason } => assert!(reason.contains("deleted"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

async fn echo_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn roundtrip(addr: std::net::SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(msg).await?;
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(buf)
}

/// A forward from a free local port to `default/p1:8000`.
async fn forward_to_p1(fake: &FakeCluster) -> PortForwarder {
    PortForwarder::start(
        Arc::new(fake.clone()),
        ForwardSpec {
            namespace: "default".into(),
            pod: "p1".into(),
            host: "localhost".into(),
            local_port: 0,
            container_port: 8000,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn port_forwarder_follows_pod_changes_and_reports_errors() {
    let fake = FakeCluster::new();
    let a = echo_server().await;
    let b = echo_server().await;
    fake.set_port_target("default", "p1", 8000, a);
    fake.set_port_target("default", "p2", 8000, b);
    let pf = forward_to_p1(&fake).await;
    assert_eq!(roundtrip(pf.local_addr(), b"hi").await.unwrap(), b"hi");
    assert!(pf.state().started_at.is_some());
    pf.set_pod("default", "p2");
    assert_eq!(roundtrip(pf.local_addr(), b"yo").await.unwrap(), b"yo");
    assert_eq!(pf.state().pod, "p2");
    assert_eq!(pf.state().connections, 2);
    pf.set_pod("default", "gone");
    assert!(roundtrip(pf.local_addr(), b"x").await.is_err());
    let err = pf.state().error.unwrap();
    assert!(err.contains("gone"), "{err}");
}

/// An echo server that records, per accepted connection (in accept order), what it received.
async fn recording_server() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Default::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let i = {
                let mut r = record.lock().unwrap();
                r.push(vec![]);
                r.len() - 1
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap()[i].extend_from_slice(&buf[..n]);
                    let _ = s.write_all(&buf[..n]).await;
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn the_next_connection_takes_the_stream_opened_ahead() {
    let fake = FakeCluster::new();
    let (addr, seen) = recording_server().await;
    fake.set_port_target("default", "p1", 8000, addr);
    let pf = forward_to_p1(&fake).await;
    let accepted = || seen.lock().unwrap().len();
    // Nothing is opened before the first connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted(), 0);
    assert_eq!(roundtrip(pf.local_addr(), b"one").await.unwrap(), b"one");
    // The first connection's stream, then the one opened ahead for the next connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while accepted() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stream opened ahead"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(roundtrip(pf.local_addr(), b"two").await.unwrap(), b"two");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got[0], b"one");
    assert_eq!(
        got[1], b"two",
        "the second connection used the stream opened ahead"
    );
    // Dropping the forward closes what it opened ahead.
    drop(pf);
}

#[tokio::test]
async fn channel_installs_the_helper_then_reuses_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeCluster::new();
    fake.put_pod(pod("p", "x", json!({})));
    let c = ContainerRef::new("default", "p", "web");
    fake.set_container_root(&c, dir.path());
    let cluster: Arc<dyn Cluster> = Arc::new(fake.clone());
    let opts = ChannelOptions {
        helper_binary: Some(Arc::new(helper_bytes())),
        ..Default::default()
    };
    let mut s = ContainerSyncer::connect(cluster.clone(), c.clone(), opts.clone())
        .await
        .unwrap();
    let SyncMode::Channel { path } = s.mode().clone() else {
        panic!("{:?}", s.mode())
    };
    assert!(
        path.starts_with("/tmp/.stilt-syncer/stilt-syncer-"),
        "{path}"
    );
    let execs_after_connect = fake.calls().len();
    for i in 0..5 {
        s.update(
            &[],
            vec![WriteEntry::file("/app/a.txt", 0o644, format!("v{i}"))],
        )
        .await
        .unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/a.txt")).unwrap(),
        "v4"
    );
    s.update(&["/app/a.txt".into()], vec![]).await.unwrap();
    assert!(!dir.path().join("app/a.txt").exists());
    assert_eq!(
        fake.calls().len(),
        execs_after_connect,
        "no new exec per update: {:?}",
        fake.calls()
    );
    let code = s
        .run(&argv(["sh", "-c", "exit 7"]), |_, _| {})
        .await
        .unwrap();
    assert_eq!(code, 7);
    s.close().await;

    // A second syncer finds the helper already installed: one exec, no tar.
    let before = fake.calls().len();
    let s2 = ContainerSyncer::connect(cluster, c, opts).await.unwrap();
    assert!(matches!(s2.mode(), SyncMode::Channel { .. }));
    let new_calls = &fake.calls()[before..];
    assert_eq!(new_calls.len(), 1, "{new_calls:?}");
    drop(s2);

    // The pool hands out the same syncer per container until told to forget it.
    let pool = SyncerPool::new(
        Arc::new(fake.clone()),
        ChannelOptions {
            helper_binary: Some(Arc::new(helper_bytes())),
            ..Default::default()
        },
    );
    let c = ContainerRef::new("default", "p", "web");
    let a = pool.get(&c).await.unwrap();
    let b = pool.get(&c).await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    a.lock()
        .await
        .update(&[], vec![WriteEntry::file("/x", 0, "x")])
        .await
        .unwrap();
    pool.forget_pod("default", "p");
    assert!(!Arc::ptr_eq(&a, &pool.get(&c).await.unwrap()));
}

#[tokio::test]
async fn falls_back_to_exec_tar_when_the_helper_cannot_be_installed() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeCluster::new();
    fake.put_pod(pod("p", "x", json!({})));
    let c = ContainerRef::new("default", "p", "web");
    fake.set_container_root(&c, dir.path());
    // A read-only image: tar and sh both fail to install anything.
    fake.set_exec_handler(|_, argv, _| {
        // Starting the helper (or installing it with sh) fails, as on a noexec filesystem.
        if argv[0] == "sh" || argv[0].contains(".stilt") {
            return Some(ExecOutput {
                exit_code: 1,
                stdout: vec![],
                stderr: b"Read-only file system".to_vec(),
            });
        }
        None
    });
    let cluster: Arc<dyn Cluster> = Arc::new(fake.clone());
    // tar "succeeds" for the install in the builtin (writes the file), but exec of the helper is
    // refused by the handler above, so the channel never comes up. (Scripted execs in the fake
    // answer only once stdin closes, which the helper's stdin never does: hence the short
    // hello timeout.)
    let opts = ChannelOptions {
        helper_binary: Some(Arc::new(helper_bytes())),
        hello_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let mut s = ContainerSyncer::connect(cluster.clone(), c.clone(), opts)
        .await
        .unwrap();
    match s.mode() {
        SyncMode::ExecTar { reason } => {
            assert!(reason.contains("could not be installed"), "{reason}")
        }
        m => panic!("{m:?}"),
    }
    s.update(&[], vec![WriteEntry::file("/app/b.txt", 0o644, "tarred")])
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/b.txt")).unwrap(),
        "tarred"
    );
    s.update(&["/app".into()], vec![]).await.unwrap();
    assert!(!dir.path().join("app").exists());

    // Without any helper binary: straight to exec+tar.
    let s = ContainerSyncer::connect(cluster, c, ChannelOptions::default())
        .await
        .unwrap();
    assert!(matches!(s.mode(), SyncMode::ExecTar { reason } if reason.contains("no helper")));
}

#[tokio::test]
async fn exec_reports_exit_codes_and_missing_commands() {
    let fake = FakeCluster::new();
    fake.put_pod(pod("p", "x", json!({})));
    fake.set_exec_handler(|_, argv, stdin| {
        (argv[0] == "echo-stdin").then(|| ExecOutput {
            exit_code: 3,
            stdout: stdin.to_vec(),
            stderr: b"e".to_vec(),
        })
    });
    let c = ContainerRef::new("default", "p", "web");
    let out = exec_collect(&fake, &c, &argv(["echo-stdin"]), b"abc")
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (3, &b"abc"[..], &b"e"[..])
    );
    assert!(exec_collect(&fake, &c, &argv(["nope"]), b"").await.is_err());
    let gone = ContainerRef::new("default", "missing", "web");
    assert!(
        exec_collect(&fake, &gone, &argv(["x"]), b"")
            .await
            .unwrap_err()
            .is_not_found()
    );
}
