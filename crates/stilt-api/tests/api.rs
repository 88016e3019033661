use serde_json::json;
use stilt_api::*;

#[test]
fn live_update_round_trips_with_tilt_field_names() {
    let v = json!({
        "apiVersion": "tilt.dev/v1alpha1", "kind": "LiveUpdate",
        "metadata": {"name": "web:gcr.io_foo"},
        "spec": {
            "basePath": "/src",
            "selector": {"kubernetes": {"discoveryName": "web", "image": "gcr.io/foo"}},
            "sources": [{"fileWatch": "image:gcr.io_foo", "imageMap": "gcr.io_foo"}],
            "syncs": [{"localPath": "app", "containerPath": "/app"}],
            "execs": [{"args": ["make"], "triggerPaths": ["Makefile"]}],
            "stopPaths": ["package.json"]
        },
        "status": {"containers": [{"containerName": "c", "containerID": "docker://x", "podName": "p", "namespace": "default"}]}
    });
    let obj = AnyObject::from_value(v.clone()).unwrap();
    assert_eq!(obj.kind(), "LiveUpdate");
    assert_eq!(obj.to_value(), v);
    assert!(obj.validate().is_empty());
}

#[test]
fn validation_names_the_field_path() {
    let mut lu = LiveUpdate::new("x", LiveUpdateSpec::default());
    lu.spec.base_path = "relative".into();
    lu.spec.selector.kubernetes = Some(LiveUpdateKubernetesSelector {
        discovery_name: "web".into(),
        image: "a".into(),
        container_name: "b".into(),
        ..Default::default()
    });
    lu.spec.execs.push(LiveUpdateExec::default());
    let fields: Vec<_> = lu.validate().into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "spec.basePath",
            "spec.selector.kubernetes",
            "spec.execs[0].args"
        ]
    );
}

#[test]
fn strict_decoding_rejects_unknown_fields() {
    let info = kind_by_name("cmd").unwrap();
    let err = (info.validate)(
        &json!({"kind": "Cmd", "metadata": {"name": "a"}, "spec": {"args": ["ls"], "bogus": 1}}),
    )
    .unwrap_err();
    assert!(err[0].message.contains("unknown field `bogus`"), "{err:?}");
}

#[test]
fn kinds_answer_to_tilt_short_names() {
    for (name, kind) in [
        ("kapp", "KubernetesApply"),
        ("ka", "KubernetesApply"),
        ("kd", "KubernetesDiscovery"),
        ("lu", "LiveUpdate"),
        ("pf", "PortForward"),
        ("fw", "FileWatch"),
        ("uiresources", "UIResource"),
        ("UIResource", "UIResource"),
        ("session", "Session"),
        ("cm", "ConfigMap"),
    ] {
        assert_eq!(kind_by_name(name).map(|k| k.kind), Some(kind), "{name}");
    }
    assert_eq!(kind_by_name("uiresource").unwrap().singular, "uiresource");
    assert_eq!(kinds().len(), 23);
}

#[test]
fn required_fields_are_written_even_when_empty() {
    let s = SessionStatus::default();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["done"], json!(false));
    assert!(v.get("error").is_none());
}
