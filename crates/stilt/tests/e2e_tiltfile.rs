//! `stilt up` loads a real Tiltfile and its objects appear in `stilt get` and kubectl under Tilt's
//! names.

mod common;

use common::*;
use std::time::Duration;

const TILTFILE: &str = r#"
allow_k8s_contexts('stilt-dev')  # the project's dev cluster, when scripts/test runs one
k8s_yaml('deploy.yaml')
docker_build('example.com/web', '.', live_update=[sync('src', '/app/src'), run('make', trigger=['src/Makefile'])])
k8s_resource('web', port_forwards=['8080:80'], labels=['backend'], links=[link('http://localhost:8080', 'web')])
local_resource('lint', cmd='echo lint', deps=['src'], labels=['tools'])
"#;

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: example.com/web\n";

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_tiltfiles_objects_appear_under_tilts_names() {
    let p = Project::new(TILTFILE);
    p.write("deploy.yaml", DEPLOY);
    p.write("Dockerfile", "FROM scratch\nCOPY src /app/src\n");
    p.write("src/main.txt", "x\n");
    let _up = p.up();
    wait_until(Duration::from_secs(30), "the Tiltfile to load", || {
        p.get_json("uiresource", "lint").is_some()
    });
    for (kind, name) in [
        ("uiresource", "web"),
        ("uiresource", "lint"),
        ("uiresource", "(Tiltfile)"),
        ("kubernetesapply", "web"),
        ("imagemap", "example.com_web"),
        ("dockerimage", "web:example.com_web"),
        ("liveupdate", "web:example.com_web"),
        ("filewatch", "image:example.com_web"),
        ("filewatch", "local:lint"),
        ("filewatch", "configs:(Tiltfile)"),
        ("cmd", "lint:update"),
        ("configmap", "web-disable"),
        ("togglebutton", "web-disable"),
        ("uibutton", "web-stopbuild"),
        ("tiltfile", "(Tiltfile)"),
        ("session", "Tiltfile"),
    ] {
        assert!(p.get_json(kind, name).is_some(), "stilt get {kind} {name}");
    }
    let ka = p.get_json("kapp", "web").unwrap();
    assert!(
        ka["spec"]["yaml"]
            .as_str()
            .unwrap()
            .contains("kind: Deployment"),
        "{ka}"
    );
    assert_eq!(ka["spec"]["imageMaps"][0], "example.com_web");
    assert_eq!(
        ka["spec"]["portForwardTemplateSpec"]["forwards"][0]["localPort"],
        8080
    );
    assert_eq!(ka["metadata"]["ownerReferences"][0]["name"], "(Tiltfile)");
    let lu = p.get_json("lu", "web:example.com_web").unwrap();
    assert_eq!(lu["spec"]["syncs"][0]["containerPath"], "/app/src");
    assert_eq!(lu["spec"]["execs"][0]["triggerPaths"][0], "src/Makefile");
    let web = p.get_json("uir", "web").unwrap();
    assert_eq!(web["metadata"]["labels"]["backend"], "backend");

    let kubectl = std::env::var("STILT_KUBECTL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kubectl".into());
    let out = std::process::Command::new(&kubectl)
        .args(["get", "kapp,lu,im,fw", "-o", "name"])
        .env("KUBECONFIG", p.home.path().join("config"))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&out.stdout);
    for want in [
        "kubernetesapply.tilt.dev/web",
        "liveupdate.tilt.dev/web:example.com_web",
        "imagemap.tilt.dev/example.com_web",
        "filewatch.tilt.dev/local:lint",
    ] {
        assert!(
            names.contains(want),
            "kubectl get: {names}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Editing the Tiltfile re-runs it; an unchanged object keeps its resourceVersion.
    wait_until(Duration::from_secs(30), "the first load to finish", || {
        p.get_json("tiltfile", "(Tiltfile)")
            .is_some_and(|t| t["status"]["terminated"].is_object())
    });
    std::thread::sleep(Duration::from_secs(1));
    // (Status writes by controllers move resourceVersions; a ToggleButton has none, and a spec
    // rewrite would bump the KubernetesApply's generation.)
    let rv =
        p.get_json("togglebutton", "web-disable").unwrap()["metadata"]["resourceVersion"].clone();
    let generation = p.get_json("kapp", "web").unwrap()["metadata"]["generation"].clone();
    p.write(
        "Tiltfile",
        &format!("{TILTFILE}\nlocal_resource('extra', cmd='true')\n"),
    );
    wait_until(Duration::from_secs(30), "the new resource", || {
        p.get_json("uiresource", "extra").is_some()
    });
    assert_eq!(
        p.get_json("togglebutton", "web-disable").unwrap()["metadata"]["resourceVersion"],
        rv,
        "unchanged objects are not touched"
    );
    assert_eq!(
        p.get_json("kapp", "web").unwrap()["metadata"]["generation"],
        generation
    );
    // Removing a resource deletes its objects.
    p.write("Tiltfile", TILTFILE);
    wait_until(
        Duration::from_secs(30),
        "the removed resource to go",
        || p.get_json("uiresource", "extra").is_none(),
    );
    assert!(p.get_json("cmd", "extra:update").is_none());
}
