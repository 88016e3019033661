use super::*;
use crate::k8s::testing::*;
use stilt_k8s::FakeCluster;

fn ka_with(yaml: &str, annotations: &[(&str, &str)]) -> KubernetesApply {
    let mut ka = KubernetesApply::new(
        "web",
        KubernetesApplySpec {
            yaml: yaml.into(),
            ..Default::default()
        },
    );
    for (k, v) in annotations {
        ka.metadata.annotations.insert(k.to_string(), v.to_string());
    }
    ka
}

fn image_map(name: &str, image: &str) -> ImageMap {
    let mut m = ImageMap::new(
        name,
        ImageMapSpec {
            selector: name.into(),
            ..Default::default()
        },
    );
    if !image.is_empty() {
        m.status = Some(ImageMapStatus {
            image: image.into(),
            image_from_cluster: image.into(),
            ..Default::default()
        });
    }
    m
}

fn connected_cluster(error: &str) -> stilt_api::Cluster {
    let mut c = stilt_api::Cluster::new("default", Default::default());
    c.status = Some(ClusterStatus {
        error: error.into(),
        connection: error.is_empty().then(Default::default),
        ..Default::default()
    });
    c
}

/// (case, object, cluster, image maps, last apply, last restart event) → decision
type Case = (
    &'static str,
    KubernetesApply,
    Option<stilt_api::Cluster>,
    Vec<(String, Option<ImageMap>)>,
    Option<Record>,
    Option<MicroTime>,
    Decision,
);

#[test]
fn when_to_apply() {
    let build = [(ANNOTATION_MANAGED_BY, "buildcontrol")];
    let asked = [
        (ANNOTATION_MANAGED_BY, "buildcontrol"),
        (ANN_APPLY_REQUEST, "build:web:2"),
        (ANN_APPLIED_REQUEST, "build:web:1"),
    ];
    let answered = [
        (ANNOTATION_MANAGED_BY, "buildcontrol"),
        (ANN_APPLY_REQUEST, "build:web:2"),
        (ANN_APPLIED_REQUEST, "build:web:2"),
    ];
    let t0 = MicroTime::now();
    let t1 = MicroTime(t0.0 + chrono::Duration::seconds(1));
    let applied = |spec: KubernetesApplySpec, images: Vec<ImageMap>, unreachable: bool| Record {
        spec,
        image_maps: images,
        applied_at: Some(t0),
        unreachable,
        ..Default::default()
    };
    let user = ka_with("y", &[]);
    let with_image = |im: Option<ImageMap>| vec![("img".to_string(), im)];
    let apply = Decision::Apply { request: None };
    // (case, object, cluster, image maps, last apply, last restart event) → decision
    let cases: Vec<Case> = vec![
        (
            "build queue, not asked",
            ka_with("y", &build),
            None,
            vec![],
            None,
            None,
            Decision::UpToDate,
        ),
        (
            "build queue, asked",
            ka_with("y", &asked),
            None,
            vec![],
            None,
            None,
            Decision::Apply {
                request: Some("build:web:2".into()),
            },
        ),
        (
            "build queue, answered",
            ka_with("y", &answered),
            None,
            vec![],
            None,
            None,
            Decision::UpToDate,
        ),
        (
            "cluster in error",
            user.clone(),
            Some(connected_cluster("no route")),
            vec![],
            None,
            None,
            Decision::Wait("waiting for cluster default".into()),
        ),
        (
            "image map missing",
            user.clone(),
            Some(connected_cluster("")),
            with_image(None),
            None,
            None,
            Decision::Wait("waiting for image img".into()),
        ),
        (
            "image not built",
            user.clone(),
            None,
            with_image(Some(image_map("img", ""))),
            None,
            None,
            Decision::Wait("waiting for image img".into()),
        ),
        (
            "never applied",
            user.clone(),
            Some(connected_cluster("")),
            with_image(Some(image_map("img", "r/img:1"))),
            None,
            None,
            apply.clone(),
        ),
        (
            "applied, nothing changed",
            user.clone(),
            None,
            with_image(Some(image_map("img", "r/img:1"))),
            Some(applied(
                user.spec.clone(),
                vec![image_map("img", "r/img:1")],
                false,
            )),
            None,
            Decision::UpToDate,
        ),
        (
            "spec changed",
            user.clone(),
            None,
            vec![],
            Some(applied(ka_with("old", &[]).spec, vec![], false)),
            None,
            apply.clone(),
        ),
        (
            "image rebuilt",
            user.clone(),
            None,
            with_image(Some(image_map("img", "r/img:2"))),
            Some(applied(
                user.spec.clone(),
                vec![image_map("img", "r/img:1")],
                false,
            )),
            None,
            apply.clone(),
        ),
        (
            "restartOn event after the apply",
            user.clone(),
            None,
            vec![],
            Some(applied(user.spec.clone(), vec![], false)),
            Some(t1),
            apply.clone(),
        ),
        (
            "restartOn event before the apply",
            user.clone(),
            None,
            vec![],
            Some(applied(user.spec.clone(), vec![], false)),
            Some(t0),
            Decision::UpToDate,
        ),
        (
            "cluster was unreachable",
            user.clone(),
            None,
            vec![],
            Some(applied(user.spec.clone(), vec![], true)),
            None,
            apply.clone(),
        ),
        (
            "someone else manages it",
            ka_with("y", &[(ANNOTATION_MANAGED_BY, "other")]),
            None,
            vec![],
            None,
            None,
            Decision::UpToDate,
        ),
    ];
    for (case, ka, cluster, ims, last, restart, want) in cases {
        assert_eq!(
            decide(&ka, cluster.as_ref(), &ims, last.as_ref(), restart),
            want,
            "{case}"
        );
    }
}

fn kd_watches(ctx: &Ctx) -> Option<Vec<KubernetesWatchRef>> {
    ctx.store
        .get_typed::<KubernetesDiscovery>("web")
        .ok()
        .map(|kd| kd.spec.watches)
}

fn status(ctx: &Ctx) -> KubernetesApplyStatus {
    ctx.store
        .get_typed::<KubernetesApply>("web")
        .ok()
        .and_then(|k| k.status)
        .unwrap_or_default()
}

fn deployments(fake: &FakeCluster) -> Vec<String> {
    fake.objects()
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|o| {
            format!(
                "{} {}",
                o["metadata"]["name"].as_str().unwrap(),
                o["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
            )
        })
        .collect()
}

/// An object created through the API (no manager): applied with its image injected, result in
/// status, discovery created; an image rebuild re-applies; disabling deletes, enabling restores;
/// deleting the object deletes what it applied.
#[tokio::test]
async fn an_api_created_apply_follows_its_object() {
    let fake = FakeCluster::new();
    let ctx = ctx_with(&fake);
    start(ctx.clone());
    ctx.store
        .create_typed(&image_map("web", "localhost:5000/web:tilt-1"))
        .unwrap();
    ctx.store
        .create_typed(&ConfigMap::new(
            "web-disable",
            [("isDisabled".to_string(), "false".to_string())].into(),
        ))
        .unwrap();
    let mut ka = ka_with(&deployment("web", "web", 8000), &[]);
    ka.spec.image_maps = vec!["web".into()];
    ka.spec.port_forward_template_spec = Some(PortForwardTemplateSpec {
        forwards: vec![Forward {
            local_port: 8000,
            ..Default::default()
        }],
    });
    ka.spec.disable_source = Some(DisableSource {
        config_map: Some(ConfigMapDisableSource {
            name: "web-disable".into(),
            key: "isDisabled".into(),
        }),
        ..Default::default()
    });
    ctx.store.create_typed(&ka).unwrap();

    let watches = eventually("the discovery", || kd_watches(&ctx)).await;
    assert_eq!(deployments(&fake), ["web localhost:5000/web:tilt-1"]);
    let s = status(&ctx);
    assert!(s.result_yaml.contains("uid: uid-"), "{}", s.result_yaml);
    assert!(s.error.is_empty() && s.last_apply_time.is_some() && !s.applied_input_hash.is_empty());
    assert_eq!(watches[0].name, "web");
    assert!(watches[0].uid.starts_with("uid-"));
    let kd = ctx.store.get_typed::<KubernetesDiscovery>("web").unwrap();
    assert_eq!(
        kd.spec.port_forward_template_spec,
        ka.spec.port_forward_template_spec
    );
    assert_eq!(kd.metadata.owner_references[0].kind, "KubernetesApply");

    // A rebuilt image is applied.
    ctx.store
        .update_status_with::<ImageMap>("web", |m| {
            let s = m.status.as_mut().unwrap();
            s.image = "localhost:5000/web:tilt-2".into();
            s.image_from_cluster = s.image.clone();
        })
        .unwrap();
    eventually("the new image applied", || {
        (deployments(&fake) == ["web localhost:5000/web:tilt-2"]).then_some(())
    })
    .await;

    // Disable: deleted, discovery gone.
    let set_disabled = |v: &str| {
        let mut cm = ctx.store.get_typed::<ConfigMap>("web-disable").unwrap();
        cm.data.insert("isDisabled".into(), v.into());
        ctx.store.update_typed(&cm).unwrap();
    };
    set_disabled("true");
    eventually("the deployment deleted", || {
        deployments(&fake).is_empty().then_some(())
    })
    .await;
    eventually("the discovery deleted", || {
        kd_watches(&ctx).is_none().then_some(())
    })
    .await;
    let s = status(&ctx);
    assert_eq!(s.disable_status.unwrap().state, "Disabled");
    assert!(s.result_yaml.is_empty());
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("delete apps/v1 Deployment")
                || c.contains("Deployment") && c.starts_with("delete")),
        "{:?}",
        fake.calls()
    );

    // Enable: applied again.
    set_disabled("false");
    eventually("the deployment back", || {
        (!deployments(&fake).is_empty()).then_some(())
    })
    .await;
    eventually("the discovery back", || kd_watches(&ctx)).await;

    // Delete the object: what it applied goes.
    ctx.store.delete("KubernetesApply", "web").unwrap();
    eventually("the deployment deleted", || {
        deployments(&fake).is_empty().then_some(())
    })
    .await;
    eventually("the discovery deleted", || {
        kd_watches(&ctx).is_none().then_some(())
    })
    .await;
}

/// A Tiltfile object is applied only when the build queue asks, and the answer carries the
/// apply's error; objects a re-apply no longer contains are deleted.
#[tokio::test]
async fn the_build_queue_asks_through_the_object() {
    let fake = FakeCluster::new();
    let ctx = ctx_with(&fake);
    start(ctx.clone());
    let two = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [{{port: 80}}]\n",
        deployment("web", "busybox", 8000)
    );
    let ka = ka_with(
        &two,
        &[
            (ANNOTATION_MANAGED_BY, "buildcontrol"),
            (ANNOTATION_RESOURCE, "web"),
        ],
    );
    ctx.store.create_typed(&ka).unwrap();
    // Not asked: nothing applied (the reconciler has seen it once the discovery would exist;
    // give it a moment by asking the store round trip).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    request_apply(&ctx, "web", "build:web:1").await.unwrap();
    let mut calls = fake.calls();
    calls.sort();
    assert_eq!(calls, ["apply Deployment/web", "apply Service/web"]);
    let log = log_of(&ctx, "web");
    assert!(
        log.contains("Objects applied to cluster:") && log.contains("→ web:deployment"),
        "{log}"
    );

    // Without the Service: it is garbage-collected.
    let mut ka = ctx.store.get_typed::<KubernetesApply>("web").unwrap();
    ka.spec.yaml = deployment("web", "busybox", 8000);
    ctx.store.update_typed(&ka).unwrap();
    request_apply(&ctx, "web", "build:web:2").await.unwrap();
    eventually("the service deleted", || {
        (!fake.objects().iter().any(|o| o["kind"] == "Service")).then_some(())
    })
    .await;

    // A failed apply is the answer's error, in status and in the log.
    fake.fail_next_apply(stilt_k8s::K8sError::Invalid("field is immutable".into()));
    let err = request_apply(&ctx, "web", "build:web:3").await.unwrap_err();
    assert!(err.contains("field is immutable"), "{err}");
    assert!(status(&ctx).error.contains("field is immutable"));
    assert!(log_of(&ctx, "web").contains("field is immutable"));
}

/// A KubernetesApply whose cluster cannot be reached reports it and is applied once the
/// cluster answers.
#[tokio::test]
async fn an_unreachable_cluster_is_retried() {
    let fake = FakeCluster::new();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (f, u) = (fake.clone(), up.clone());
    let ctx = ctx_with_adapters(crate::k8s::K8sAdapters::with_connector(Arc::new(
        move || {
            let (f, u) = (f.clone(), u.clone());
            Box::pin(async move {
                if u.load(std::sync::atomic::Ordering::SeqCst) {
                    Ok(Arc::new(f) as Arc<dyn stilt_k8s::Cluster>)
                } else {
                    Err("cannot reach the Kubernetes cluster: connection refused".to_string())
                }
            })
        },
    )));
    start(ctx.clone());
    ctx.store
        .create_typed(&ka_with(&deployment("web", "busybox", 8000), &[]))
        .unwrap();
    eventually("the error in status", || {
        status(&ctx).error.contains("cannot reach").then_some(())
    })
    .await;
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("the apply after the cluster came up", || {
        (!deployments(&fake).is_empty() && status(&ctx).error.is_empty()).then_some(())
    })
    .await;
}

/// (spec YAML, result YAML, discovery strategy) → the owned discovery's watches.
#[test]
fn the_discovery_an_apply_owns() {
    let deploy = |ns: &str, uid: &str| {
        let mut y = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n".to_string();
        if !ns.is_empty() {
            y.push_str(&format!("  namespace: {ns}\n"));
        }
        if !uid.is_empty() {
            y.push_str(&format!("  uid: {uid}\n"));
        }
        y
    };
    let w = |uid: &str, ns: &str, name: &str| KubernetesWatchRef {
        uid: uid.into(),
        namespace: ns.into(),
        name: name.into(),
    };
    type Watches = Option<Vec<KubernetesWatchRef>>;
    let cases: Vec<(&str, String, String, &str, Watches)> = vec![
        ("nothing to watch", String::new(), String::new(), "", None),
        (
            "before the apply: the namespaces of the YAML",
            deploy("", ""),
            String::new(),
            "",
            Some(vec![w("", "team", "")]),
        ),
        (
            "applied: the UIDs",
            deploy("", ""),
            deploy("team", "u1"),
            "",
            Some(vec![w("u1", "team", "web")]),
        ),
        (
            "applied elsewhere: both namespaces",
            deploy("other", ""),
            deploy("team", "u1"),
            "",
            Some(vec![w("u1", "team", "web"), w("", "other", "")]),
        ),
        (
            "selectors-only: no UIDs",
            deploy("", ""),
            deploy("team", "u1"),
            "selectors-only",
            Some(vec![w("", "team", "")]),
        ),
    ];
    for (case, yaml, result, strategy, want) in cases {
        let mut ka = ka_with(&yaml, &[(ANNOTATION_RESOURCE, "web")]);
        ka.spec.discovery_strategy = strategy.into();
        ka.metadata.uid = "ka-uid".into();
        ka.status = Some(KubernetesApplyStatus {
            result_yaml: result,
            ..Default::default()
        });
        let kd = desired_discovery(&ka, "team");
        assert_eq!(kd.as_ref().map(|k| k.spec.watches.clone()), want, "{case}");
        if let Some(kd) = kd {
            assert_eq!(kd.metadata.owner_references[0].uid, "ka-uid", "{case}");
            assert_eq!(
                kd.metadata.annotations[ANNOTATION_RESOURCE], "web",
                "{case}"
            );
        }
    }
}
