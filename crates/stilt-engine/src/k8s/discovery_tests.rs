use super::discovery::*;
use super::testing::*;
use crate::Ctx;
use stilt_api::*;
use stilt_k8s::{ApplyOptions, Cluster, FakeCluster};
use stilt_store::TypedStore;

fn api_pod(name: &str, phase: &str, created_secs: i64, deleting: bool) -> Pod {
    Pod {
        name: name.into(),
        namespace: "default".into(),
        created_at: Time(chrono::DateTime::from_timestamp(created_secs, 0).unwrap()),
        phase: phase.into(),
        deleting,
        ..Default::default()
    }
}

#[test]
fn the_best_pod_to_forward_to() {
    // (pods, best)
    let cases: Vec<(Vec<Pod>, Option<&str>)> = vec![
        (vec![], None),
        (vec![api_pod("a", "Pending", 1, false)], None),
        (
            vec![
                api_pod("old", "Running", 1, false),
                api_pod("new", "Running", 2, false),
            ],
            Some("new"),
        ),
        (
            vec![
                api_pod("live", "Running", 1, false),
                api_pod("going", "Running", 2, true),
            ],
            Some("live"),
        ),
        (vec![api_pod("going", "Succeeded", 2, true)], Some("going")),
        (
            vec![
                api_pod("a", "Running", 1, false),
                api_pod("b", "Running", 1, false),
            ],
            Some("b"),
        ),
    ];
    for (pods, want) in cases {
        assert_eq!(best_pod(&pods).map(|p| p.name.as_str()), want, "{pods:?}");
    }
}

#[test]
fn container_port_zero_is_filled_like_tilt() {
    let with_ports = |ports: &[i32]| Pod {
        containers: vec![Container {
            name: "main".into(),
            ports: ports.to_vec(),
            ..Default::default()
        }],
        ..api_pod("p", "Running", 1, false)
    };
    let fwd = |local: i32, container: i32| Forward {
        local_port: local,
        container_port: container,
        ..Default::default()
    };
    // (declared ports, forward) → container port
    let cases = [
        (vec![8080], fwd(8000, 0), 8080),
        (vec![8080, 8000], fwd(8000, 0), 8000),
        (vec![], fwd(8000, 0), 8000),
        (vec![8080], fwd(8000, 9000), 9000),
    ];
    for (ports, f, want) in cases {
        let out = super::portforward::populate_container_ports(
            std::slice::from_ref(&f),
            &with_ports(&ports),
        );
        assert_eq!(out[0].container_port, want, "{ports:?} {f:?}");
    }
}

fn kd(ctx: &Ctx, uid: &str, forwards: bool) {
    let mut kd = KubernetesDiscovery::new(
        "web",
        KubernetesDiscoverySpec {
            watches: vec![KubernetesWatchRef {
                uid: uid.into(),
                namespace: "default".into(),
                name: "web".into(),
            }],
            port_forward_template_spec: forwards.then(|| PortForwardTemplateSpec {
                forwards: vec![Forward {
                    local_port: 8000,
                    ..Default::default()
                }],
            }),
            ..Default::default()
        },
    );
    kd.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), "web".into());
    ctx.store.create_typed(&kd).unwrap();
}

fn names<T: Resource>(ctx: &Ctx) -> Vec<String> {
    let mut n: Vec<String> = ctx
        .store
        .list_typed::<T>()
        .unwrap()
        .into_iter()
        .map(|o| o.meta().name.clone())
        .collect();
    n.sort();
    n
}

/// (cluster pods) → (status.pods, owned PodLogStreams, owned PortForward with its container
/// port), as pods come and go.
#[tokio::test]
async fn pods_of_the_owner_chain_and_what_the_discovery_owns() {
    let fake = FakeCluster::new();
    let ctx = ctx_with(&fake);
    start(ctx.clone());
    super::portforward::start(ctx.clone());
    super::podlogstream::start(ctx.clone());
    let applied = fake
        .apply(
            &[serde_json::from_str(
                &serde_json::to_string(
                    &stilt_k8s::manifest::parse_yaml(&deployment("web", "web", 8000)).unwrap()[0],
                )
                .unwrap(),
            )
            .unwrap()],
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    let uid = applied[0]["metadata"]["uid"].as_str().unwrap().to_string();
    // A pod of something else is never reported.
    fake.put_pod(pod(
        "other-1",
        "uid-unrelated",
        9000,
        "2026-01-01T00:00:00Z",
    ));
    fake.put_pod(pod("web-1", &uid, 8080, "2026-01-01T00:00:00Z"));
    kd(&ctx, &uid, true);

    let pods_now = |ctx: &Ctx| -> Vec<String> {
        ctx.store
            .get_typed::<KubernetesDiscovery>("web")
            .ok()
            .and_then(|k| k.status)
            .map(|s| s.pods.into_iter().map(|p| p.name).collect())
            .unwrap_or_default()
    };
    eventually("web-1 discovered", || {
        (pods_now(&ctx) == ["web-1"]).then_some(())
    })
    .await;
    eventually("its log stream and forward", || {
        (names::<PodLogStream>(&ctx) == ["web-default-web-1"]
            && names::<PortForward>(&ctx) == ["web-web-1"])
        .then_some(())
    })
    .await;
    let pf = ctx.store.get_typed::<PortForward>("web-web-1").unwrap();
    assert_eq!(
        pf.spec.forwards[0].container_port, 8080,
        "from the pod spec"
    );
    assert_eq!(pf.spec.forwards[0].local_port, 8000);
    assert_eq!(pf.metadata.annotations[ANNOTATION_RESOURCE], "web");

    // A newer pod takes the forward; the old one goes with its stream when deleted.
    fake.put_pod(pod("web-2", &uid, 8080, "2026-01-01T00:01:00Z"));
    eventually("the forward on the newer pod", || {
        (names::<PortForward>(&ctx) == ["web-web-2"]).then_some(())
    })
    .await;
    fake.remove_pod("default", "web-1");
    eventually("web-1 gone", || {
        (pods_now(&ctx) == ["web-2"] && names::<PodLogStream>(&ctx) == ["web-default-web-2"])
            .then_some(())
    })
    .await;

    // The discovery deleted: everything it owned goes.
    ctx.store.delete("KubernetesDiscovery", "web").unwrap();
    eventually("owned objects deleted", || {
        (names::<PodLogStream>(&ctx).is_empty() && names::<PortForward>(&ctx).is_empty())
            .then_some(())
    })
    .await;
}

/// A PortForward listens on its local port and reaches the pod's port; a PodLogStream puts the pod's lines in the resource's log.
#[tokio::test]
async fn forwards_and_log_streams_reach_the_pod() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeCluster::new();
    let ctx = ctx_with(&fake);
    super::portforward::start(ctx.clone());
    super::podlogstream::start(ctx.clone());
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = server.accept().await {
            let _ = c.write_all(b"from the pod").await;
        }
    });
    fake.put_pod(pod("web-1", "uid-x", 8080, "2026-01-01T00:00:00Z"));
    fake.set_port_target("default", "web-1", 8080, target);
    let local = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut pf = PortForward::new(
        "web-web-1",
        PortForwardSpec {
            pod_name: "web-1".into(),
            namespace: "default".into(),
            forwards: vec![Forward {
                local_port: local as i32,
                container_port: 8080,
                ..Default::default()
            }],
            cluster: "default".into(),
        },
    );
    pf.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), "web".into());
    ctx.store.create_typed(&pf).unwrap();
    let st = eventually("the forward status", || {
        ctx.store
            .get_typed::<PortForward>("web-web-1")
            .ok()?
            .status?
            .forward_statuses
            .first()
            .cloned()
            .filter(|s| s.started_at.is_some())
    })
    .await;
    assert_eq!(st.container_port, 8080);
    assert_eq!(st.local_port, local as i32);
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", local))
        .await
        .unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "from the pod");

    let c = stilt_k8s::ContainerRef::new("default", "web-1", "main");
    fake.push_log(&c, "hello from main");
    let mut pls = PodLogStream::new(
        "web-default-web-1",
        PodLogStreamSpec {
            pod: "web-1".into(),
            namespace: "default".into(),
            ..Default::default()
        },
    );
    pls.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), "web".into());
    ctx.store.create_typed(&pls).unwrap();
    eventually("the pod's line in the log", || {
        log_of(&ctx, "web")
            .contains("hello from main")
            .then_some(())
    })
    .await;
    let s = ctx
        .store
        .get_typed::<PodLogStream>("web-default-web-1")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(s.container_statuses[0].name, "main");
    assert!(s.container_statuses[0].active);

    // Deleting the PortForward closes the listener.
    ctx.store.delete("PortForward", "web-web-1").unwrap();
    eventually("the listener closed", || {
        std::net::TcpListener::bind(("127.0.0.1", local))
            .ok()
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn the_cluster_object_says_what_was_found() {
    let info = stilt_k8s::ClusterInfo {
        registry: Some(RegistryHosting {
            host: "localhost:5000".into(),
            ..Default::default()
        }),
        context: "kind-dev".into(),
        ..FakeCluster::new().info()
    };
    let fake = FakeCluster::new().with_info(info);
    let ctx = ctx_with(&fake);
    crate::cluster::start(ctx.clone());
    ctx.store
        .create_typed(&stilt_api::Cluster::new(
            "default",
            ClusterSpec {
                connection: Some(ClusterConnection {
                    kubernetes: Some(Default::default()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .unwrap();
    let s = eventually("the status", || {
        ctx.store
            .get_typed::<stilt_api::Cluster>("default")
            .ok()?
            .status
    })
    .await;
    assert_eq!(s.version, "v1.35.0");
    assert_eq!(s.arch, "amd64");
    assert_eq!(s.registry.unwrap().host, "localhost:5000");
    assert!(s.error.is_empty() && s.connected_at.is_some());
    assert_eq!(
        s.connection.unwrap().kubernetes.unwrap().context,
        "kind-dev"
    );

    // Without a published registry the spec's default registry is the one.
    let spec = ClusterSpec {
        default_registry: Some(RegistryHosting {
            host: "reg.example:5000".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = crate::cluster::status_of(&spec, None, Ok((FakeCluster::new().info(), "v1".into())));
    assert_eq!(s.registry.unwrap().host, "reg.example:5000");
    let s = crate::cluster::status_of(
        &spec,
        None,
        Err("cannot reach the Kubernetes cluster".into()),
    );
    assert_eq!(s.error, "cannot reach the Kubernetes cluster");
    assert!(s.connection.is_none());
}

/// (pod phase, its log stream) → runtime status: a finished pod counts once its logs are in.
#[test]
fn a_finished_pod_counts_once_its_logs_are_in() {
    let ctx = ctx_with(&FakeCluster::new());
    let mut kd = KubernetesDiscovery::new("job", Default::default());
    kd.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), "job".into());
    ctx.store.create_typed(&kd).unwrap();
    let set_pod = |phase: &str| {
        ctx.store
            .update_status_with::<KubernetesDiscovery>("job", |k| {
                k.status = Some(KubernetesDiscoveryStatus {
                    pods: vec![api_pod("job-1", phase, 1, false)],
                    ..Default::default()
                })
            })
            .unwrap();
    };
    let set_stream = |terminated: Option<bool>| {
        let _ = ctx.store.delete("PodLogStream", "job-default-job-1");
        if let Some(t) = terminated {
            let mut pls = PodLogStream::new(
                "job-default-job-1",
                PodLogStreamSpec {
                    pod: "job-1".into(),
                    ..Default::default()
                },
            );
            pls.status = Some(PodLogStreamStatus {
                container_statuses: vec![ContainerLogStreamStatus {
                    name: "main".into(),
                    active: !t,
                    terminated: t,
                    ..Default::default()
                }],
                ..Default::default()
            });
            let created = ctx.store.create_typed(&pls).unwrap();
            let mut with_status = created;
            with_status.status = pls.status.clone();
            ctx.store.update_status_typed(&with_status).unwrap();
        }
    };
    let cases = [
        ("Succeeded", None, ("pending", false)),
        ("Succeeded", Some(false), ("pending", false)),
        ("Succeeded", Some(true), ("ok", true)),
        ("Failed", Some(false), ("pending", false)),
        ("Failed", Some(true), ("error", false)),
    ];
    for (phase, stream, want) in cases {
        set_pod(phase);
        set_stream(stream);
        let kd = ctx.store.get_typed::<KubernetesDiscovery>("job").unwrap();
        let deployed = super::Deployed {
            applies: &[],
            discovery: Some(&kd),
        };
        assert_eq!(
            super::runtime(&ctx, &deployed, "", true),
            want,
            "{phase} {stream:?}"
        );
    }
}

#[test]
fn a_docker_cluster_reports_the_engine() {
    let s = crate::cluster::docker_status(None, Ok("27.5.1".into()));
    assert_eq!(s.version, "27.5.1");
    assert!(!s.arch.is_empty() && s.connected_at.is_some() && s.error.is_empty());
    let again = crate::cluster::docker_status(Some(&s), Ok("27.5.1".into()));
    assert_eq!(
        again.connected_at, s.connected_at,
        "connected since the first success"
    );
    let e = crate::cluster::docker_status(Some(&s), Err("cannot reach the Docker engine".into()));
    assert_eq!(e.error, "cannot reach the Docker engine");
    assert!(e.connected_at.is_none());
}

/// While the Cluster reports an error (its health check fails), the discovery waits with
/// Tilt's `ClusterUnavailable` reason and keeps the pods it saw; the reason goes when the
/// Cluster is healthy again.
#[tokio::test]
async fn a_cluster_error_shows_as_cluster_unavailable_until_it_clears() {
    let fake = FakeCluster::new();
    let ctx = ctx_with(&fake);
    start(ctx.clone());
    ctx.store
        .create_typed(&stilt_api::Cluster::new("default", Default::default()))
        .unwrap();
    fake.put_pod(pod("web-1", "uid-web", 8080, "2026-01-01T00:00:00Z"));
    let mut spec = KubernetesDiscoverySpec {
        watches: vec![KubernetesWatchRef {
            uid: "uid-web".into(),
            namespace: "default".into(),
            name: "web".into(),
        }],
        ..Default::default()
    };
    spec.cluster = "default".into();
    ctx.store
        .create_typed(&KubernetesDiscovery::new("web", spec))
        .unwrap();
    let status = |ctx: &Ctx| {
        ctx.store
            .get_typed::<KubernetesDiscovery>("web")
            .ok()
            .and_then(|k| k.status)
            .unwrap_or_default()
    };
    eventually("web-1 discovered", || {
        (status(&ctx).pods.len() == 1 && status(&ctx).waiting.is_none()).then_some(())
    })
    .await;
    let set_error = |e: &str| {
        ctx.store
            .update_status_with::<stilt_api::Cluster>("default", |c| {
                c.status.get_or_insert_with(Default::default).error = e.into()
            })
            .unwrap();
    };
    set_error("cannot reach the Kubernetes cluster: connection refused");
    let waiting = eventually("the waiting reason", || status(&ctx).waiting).await;
    assert_eq!(
        waiting.reason,
        "ClusterUnavailable: cannot reach the Kubernetes cluster: connection refused"
    );
    assert_eq!(status(&ctx).pods.len(), 1, "the last pods seen are kept");
    set_error("");
    eventually("the reason gone", || {
        status(&ctx).waiting.is_none().then_some(())
    })
    .await;
}
