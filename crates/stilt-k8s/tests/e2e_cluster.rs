//! Against the real cluster (`STILT_TEST_K8S=1`; fails loudly when set and unreachable):
//! apply a Deployment whose image is injected to the local registry's busybox, discover its pod
//! by owner UIDs, follow its logs across a container restart, port-forward and GET through it,
//! write files through the persistent channel and exec+tar and read them back over HTTP,
//! delete the pod and discover its replacement, immutable-field re-create, delete by labels.
//!
//! ```sh
//! eval "$(scripts/dev-cluster env)"
//! STILT_TEST_K8S=1 cargo test -p stilt-k8s --test e2e_cluster -- --nocapture
//! ```

mod common;

use common::*;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_k8s::inject::{
    ImageInjection, MANAGED_BY_LABEL, POD_TEMPLATE_HASH_LABEL, prepare_for_apply,
};
use stilt_k8s::manifest::{ObjectRef, parse_yaml};
use stilt_k8s::*;

fn running_ready(p: &DiscoveredPod) -> bool {
    !p.pod.deleting
        && p.pod
            .containers
            .first()
            .is_some_and(|c| c.ready && c.state.running.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_end_to_end() {
    if !enabled() {
        eprintln!("skipped: set STILT_TEST_K8S=1 to run against the dev cluster");
        return;
    }
    let t0 = Instant::now();
    let kube = connect().await;
    let cluster: Arc<dyn Cluster> = kube.clone();
    let info = cluster.info();
    eprintln!("connected: {info:?}");
    assert!(info.server_version.starts_with("v1."), "{info:?}");
    assert!(!info.arch.is_empty(), "{info:?}");
    assert_eq!(info.namespace, "default");
    let reg = info
        .registry
        .clone()
        .expect("local-registry-hosting published");
    assert_eq!(reg.host, "localhost:5000");

    let ns = namespace("stilt-k8s-e2e");
    let result = std::panic::AssertUnwindSafe(scenario(cluster.clone(), &ns, &reg.host));
    let outcome = futures::FutureExt::catch_unwind(result).await;
    cleanup(cluster.as_ref(), &ns).await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    eprintln!("e2e done in {:?}", t0.elapsed());
}

async fn scenario(cluster: Arc<dyn Cluster>, ns: &str, registry: &str) {
    // ---- apply with injection
    let objs = parse_yaml(&workload_yaml(ns, "web")).unwrap();
    let image = ImageInjection::new(
        "stilt-test/busybox",
        &format!("{registry}/stilt-test/busybox:latest"),
    )
    .unwrap();
    let objs = prepare_for_apply(objs, &[image], &[]).unwrap();
    let t = Instant::now();
    let applied = cluster
        .apply(&objs, &ApplyOptions::default())
        .await
        .unwrap();
    eprintln!("applied {} objects in {:?}", applied.len(), t.elapsed());
    assert_eq!(applied.len(), 2);
    let dep = &applied[1];
    assert_eq!(dep["kind"], "Deployment");
    assert_eq!(dep["metadata"]["labels"][MANAGED_BY_LABEL], "tilt");
    assert!(dep["metadata"].get("managedFields").is_none());
    let dep_uid = dep["metadata"]["uid"].as_str().unwrap().to_string();
    let hash = dep["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{registry}/stilt-test/busybox:latest")
    );
    // Applying the same thing again is a no-op for the pods (same uid, same generation).
    let again = cluster
        .apply(&objs, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(again[1]["metadata"]["uid"], dep_uid.as_str());
    assert_eq!(
        again[1]["metadata"]["generation"],
        dep["metadata"]["generation"]
    );

    // ---- events (collected in the background)
    let events = Arc::new(std::sync::Mutex::new(Vec::<ObjectEvent>::new()));
    {
        let mut s = cluster
            .watch_events(Some(ns.to_string()), HashSet::new())
            .await
            .unwrap();
        let ev = events.clone();
        tokio::spawn(async move {
            while let Some(e) = s.next().await {
                ev.lock().unwrap().push(e);
            }
        });
    }

    // ---- discovery by owner UID
    let t = Instant::now();
    let mut pods = cluster
        .watch_pods(PodWatchSpec {
            namespaces: vec![ns.to_string()],
            ancestor_uids: [dep_uid.clone()].into(),
            extra_selectors: vec![],
        })
        .await
        .unwrap();
    let pod = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(ev) = pods.next().await {
            match ev {
                PodEvent::Upsert(p) if running_ready(&p) => return p,
                PodEvent::Upsert(p) => eprintln!("  pod {} {}", p.pod.name, p.pod.status),
                other => eprintln!("  {other:?}"),
            }
        }
        panic!("pod watch ended")
    })
    .await
    .expect("pod running within 120s");
    eprintln!("pod {} running after {:?}", pod.pod.name, t.elapsed());
    assert_eq!(pod.pod.ancestor_uid, dep_uid);
    assert_eq!(pod.pod.pod_template_spec_hash, hash);
    assert_eq!(pod.pod.containers[0].ports, [8000]);
    let pod_name = pod.pod.name.clone();
    let web = ContainerRef::new(ns, &pod_name, "web");

    // ---- logs
    let mut logs = follow_logs(
        cluster.clone(),
        web.clone(),
        FollowOptions {
            since: None,
            reconnect_gap: Duration::from_millis(500),
        },
    );
    let first = tokio::time::timeout(Duration::from_secs(20), logs.next())
        .await
        .expect("a log line within 20s")
        .unwrap();
    match &first {
        LogEvent::Line { text, .. } => assert!(text.starts_with("tick"), "{text}"),
        other => panic!("{other:?}"),
    }

    // ---- port-forward
    let pf = PortForwarder::start(
        cluster.clone(),
        ForwardSpec {
            namespace: ns.into(),
            pod: pod_name.clone(),
            host: "localhost".into(),
            local_port: 0,
            container_port: 8000,
        },
    )
    .await
    .unwrap();
    let addr = pf.local_addr();
    let (status, body) = http_get(addr, "/index.html").await.unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "hello\n");
    assert!(pf.state().started_at.is_some());
    assert_eq!(pf.state().error, None);

    // ---- exec
    let out = exec_collect(
        cluster.as_ref(),
        &web,
        &argv(["sh", "-c", "cat; echo err >&2; exit 4"]),
        b"piped",
    )
    .await
    .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (4, &b"piped"[..], &b"err\n"[..])
    );
    let missing = exec_collect(cluster.as_ref(), &web, &argv(["/no/such/binary"]), b"").await;
    assert!(missing.is_err(), "{missing:?}");

    // ---- persistent channel
    let helper = helper_binary();
    let opts = ChannelOptions::default().with_helper_file(&helper).unwrap();
    let t = Instant::now();
    let mut sync = ContainerSyncer::connect(cluster.clone(), web.clone(), opts.clone())
        .await
        .unwrap();
    eprintln!(
        "channel: {:?} (first contact {:?})",
        sync.mode(),
        t.elapsed()
    );
    assert!(
        matches!(sync.mode(), SyncMode::Channel { .. }),
        "{:?}",
        sync.mode()
    );
    let rep = sync
        .update(
            &[],
            vec![WriteEntry::file("/www/stilt.txt", 0o644, "from stilt\n")],
        )
        .await
        .unwrap();
    eprintln!("channel write: {:?}", rep.elapsed);
    let (_, body) = http_get(addr, "/stilt.txt").await.unwrap();
    assert_eq!(body, "from stilt\n");
    let mut out = Vec::new();
    let code = {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let c = sync
            .run(
                &argv(["sh", "-c", "cat /www/stilt.txt; exit 5"]),
                move |_, d| b2.lock().unwrap().extend_from_slice(d),
            )
            .await
            .unwrap();
        out.extend_from_slice(&buf.lock().unwrap());
        c
    };
    assert_eq!((code, out.as_slice()), (5, &b"from stilt\n"[..]));
    let listing = sync.list("/www", true).await.unwrap();
    let names: Vec<_> = listing.iter().map(|e| e.path.as_str()).collect();
    assert!(
        names.contains(&"stilt.txt") && names.contains(&"index.html"),
        "{names:?}"
    );
    // Delete + write in one round trip.
    sync.update(
        &["/www/stilt.txt".into()],
        vec![WriteEntry::file("/www/sub/dir/new.txt", 0o600, "nested\n")],
    )
    .await
    .unwrap();
    let (status, _) = http_get(addr, "/stilt.txt").await.unwrap();
    assert!(status.contains("404"), "{status}");
    assert_eq!(
        http_get(addr, "/sub/dir/new.txt").await.unwrap().1,
        "nested\n"
    );

    // ---- exec + tar fallback
    let mut tar_sync = ContainerSyncer::exec_tar(cluster.clone(), web.clone());
    let t = Instant::now();
    tar_sync
        .update(
            &["/www/sub".into()],
            vec![WriteEntry::file("/www/tar.txt", 0o644, "via tar\n")],
        )
        .await
        .unwrap();
    eprintln!("exec+tar write: {:?}", t.elapsed());
    assert_eq!(http_get(addr, "/tar.txt").await.unwrap().1, "via tar\n");
    assert!(
        http_get(addr, "/sub/dir/new.txt")
            .await
            .unwrap()
            .0
            .contains("404")
    );

    // ---- container restart: logs continue, the channel reopens (and reinstalls)
    sync.update(&[], vec![WriteEntry::file("/www/die", 0o644, "")])
        .await
        .unwrap();
    let t = Instant::now();
    let mut saw_dying = false;
    let mut saw_reconnect = false;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = logs.next().await {
            match ev {
                LogEvent::Line { text, .. } if text == "dying" => saw_dying = true,
                LogEvent::Line { text, .. } if text == "tick 0" && saw_dying => return,
                LogEvent::Reconnecting { reason } => {
                    saw_reconnect = true;
                    eprintln!("  logs reconnecting: {reason}")
                }
                LogEvent::Ended { reason } => panic!("log follow ended: {reason}"),
                _ => {}
            }
        }
    })
    .await
    .expect("logs of the restarted container within 60s");
    eprintln!("logs followed across the restart in {:?}", t.elapsed());
    assert!(saw_dying && saw_reconnect);
    // The new container has a fresh filesystem: the channel must reopen and reinstall.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rep = loop {
        match sync
            .update(
                &[],
                vec![WriteEntry::file("/www/again.txt", 0o644, "again\n")],
            )
            .await
        {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                eprintln!("  channel not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("channel after restart: {e}"),
        }
    };
    assert!(rep.reconnected, "{rep:?}");
    assert!(matches!(rep.mode, SyncMode::Channel { .. }), "{rep:?}");
    let body = eventually("again.txt over HTTP", Duration::from_secs(20), || async {
        http_get(addr, "/again.txt")
            .await
            .ok()
            .filter(|(s, _)| s.contains("200"))
    })
    .await
    .1;
    assert_eq!(body, "again\n");

    // ---- delete the pod: the replacement is discovered
    let t = Instant::now();
    cluster
        .delete(
            &[ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod_name.clone(),
                namespace: ns.into(),
                ..Default::default()
            }],
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    let mut saw_deleted = false;
    let new_pod = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(ev) = pods.next().await {
            match ev {
                PodEvent::Deleted { name, .. } if name == pod_name => saw_deleted = true,
                PodEvent::Upsert(p) if p.pod.name != pod_name && running_ready(&p) => return p,
                _ => {}
            }
        }
        panic!("pod watch ended")
    })
    .await
    .expect("replacement pod within 120s");
    eprintln!(
        "replacement {} discovered after {:?}",
        new_pod.pod.name,
        t.elapsed()
    );
    assert_eq!(new_pod.pod.ancestor_uid, dep_uid);
    // The old pod's log follow ends.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = logs.next().await {
            if let LogEvent::Ended { reason } = ev {
                return reason;
            }
        }
        "stream closed".to_string()
    })
    .await
    .expect("log follow of the deleted pod ends");
    eprintln!("old pod's logs: {ended}");
    if !saw_deleted {
        // Deletion may still be in progress (terminating); wait for it.
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(ev) = pods.next().await {
                if matches!(&ev, PodEvent::Deleted { name, .. } if *name == pod_name) {
                    return;
                }
            }
        })
        .await
        .expect("old pod reported deleted");
    }
    pf.set_pod(ns, &new_pod.pod.name);
    let (status, body) = http_get(addr, "/index.html").await.unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "hello\n");
    assert_eq!(pf.state().pod, new_pod.pod.name);

    // ---- events were seen
    let evs = events.lock().unwrap().clone();
    assert!(
        evs.iter()
            .any(|e| e.reason == "Scheduled" && e.involved.kind == "Pod"),
        "{evs:#?}"
    );

    // ---- immutable field: delete and re-create
    let imm = |sel: &str| {
        parse_yaml(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: imm, namespace: {ns}}}\n\
             spec:\n  replicas: 0\n  selector: {{matchLabels: {{app: {sel}}}}}\n  template:\n    \
             metadata: {{labels: {{app: {sel}}}}}\n    spec: {{containers: [{{name: c, image: {registry}/stilt-test/busybox:latest}}]}}\n"
        ))
        .unwrap()
    };
    let a = cluster
        .apply(&imm("a"), &ApplyOptions::default())
        .await
        .unwrap();
    let b = cluster
        .apply(&imm("b"), &ApplyOptions::default())
        .await
        .unwrap();
    assert_ne!(a[0]["metadata"]["uid"], b[0]["metadata"]["uid"]);
    assert_eq!(b[0]["spec"]["selector"]["matchLabels"]["app"], "b");

    // ---- delete by labels (our namespace only)
    let deleted = cluster
        .delete_by_labels(&DeleteByLabelOptions {
            namespace: Some(ns.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = deleted.iter().map(|r| r.to_string()).collect();
    eprintln!("deleted by label: {kinds:?}");
    assert!(
        kinds.iter().any(|k| k.starts_with("Deployment/web")),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("Deployment/imm")),
        "imm has no tilt label"
    );
    sync.close().await;
}

/// A read-only root filesystem: the helper cannot be installed anywhere, so the syncer falls
/// back to exec + tar, which still writes into a writable volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_root_falls_back_to_exec_tar() {
    if !enabled() {
        eprintln!("skipped: set STILT_TEST_K8S=1 to run against the dev cluster");
        return;
    }
    let kube = connect().await;
    let cluster: Arc<dyn Cluster> = kube.clone();
    let registry = cluster.info().registry.map(|r| r.host).unwrap_or_default();
    let ns = namespace("stilt-k8s-ro");
    let yaml = format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: ro, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {registry}/stilt-test/busybox:latest
    command: ["sleep", "3600"]
    securityContext: {{readOnlyRootFilesystem: true}}
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
    );
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let applied = cluster
            .apply(&parse_yaml(&yaml).unwrap(), &ApplyOptions::default())
            .await
            .unwrap();
        let pod_uid = applied[1]["metadata"]["uid"].as_str().unwrap().to_string();
        let mut pods = cluster
            .watch_pods(PodWatchSpec {
                namespaces: vec![ns.clone()],
                ancestor_uids: [pod_uid].into(),
                extra_selectors: vec![],
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(ev) = pods.next().await {
                if let PodEvent::Upsert(p) = ev
                    && running_ready(&p)
                {
                    return;
                }
            }
        })
        .await
        .expect("pod running");
        eprintln!("ro pod running");
        let target = ContainerRef::new(&ns, "ro", "main");
        let opts = ChannelOptions::default()
            .with_helper_file(&helper_binary())
            .unwrap();
        let mut s = ContainerSyncer::connect(cluster.clone(), target.clone(), opts)
            .await
            .unwrap();
        match s.mode() {
            SyncMode::ExecTar { reason } => {
                eprintln!("fallback reason: {reason}");
                assert!(
                    reason.contains("Read-only") || reason.contains("read-only"),
                    "{reason}"
                );
            }
            m => panic!("expected the exec+tar fallback, got {m:?}"),
        }
        s.update(
            &[],
            vec![WriteEntry::file("/data/x.txt", 0o644, "fallback\n")],
        )
        .await
        .unwrap();
        assert_eq!(s.read("/data/x.txt").await.unwrap(), b"fallback\n");
        let e = s
            .update(&[], vec![WriteEntry::file("/etc/y.txt", 0o644, "no")])
            .await
            .unwrap_err();
        eprintln!("write to the read-only root: {e}");
    }))
    .await;
    cleanup(cluster.as_ref(), &ns).await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
