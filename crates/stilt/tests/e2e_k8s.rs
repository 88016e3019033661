//! End to end on the real single-node cluster (scripts/dev-cluster): docker_build + k8s_yaml +
//! port_forwards served through the forward; a Job under `stilt ci` (0 on success, 1 on
//! failure); `stilt down` leaves nothing labelled managed-by=tilt.

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn deploy_serve_through_the_forward_and_down() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-web-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\ndocker_build('stilt-e2e-k8s', '.')\nk8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "served by k8s\n");
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-e2e-k8s\n        ports: [{{containerPort: 8000}}]\n"),
    );
    let up = p.up();
    wait_until(
        Duration::from_secs(180),
        "the page through the port-forward",
        || http_get(port, "/").as_deref() == Some("served by k8s\n"),
    );
    wait_until(Duration::from_secs(30), "runtime ok", || {
        p.get_json("uiresource", &name)
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    });
    let kd = p.get_json("kd", &name).unwrap();
    let image = kd["status"]["pods"][0]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image.starts_with("localhost:5000/stilt-e2e-k8s:tilt-"),
        "{image}"
    );
    let labels = kubectl(&["get", "deploy", &name, "-o", "jsonpath={.metadata.labels}"]);
    assert!(
        labels.contains("\"app.kubernetes.io/managed-by\":\"tilt\""),
        "{labels}"
    );
    assert!(p.run(&["logs", &name]).status.success());
    let down = p.run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    drop(up);
    wait_until(Duration::from_secs(60), "the deployment to be gone", || {
        kubectl(&["get", "deploy", &name, "--ignore-not-found", "-o", "name"])
            .trim()
            .is_empty()
    });
    let left = kubectl(&[
        "get",
        "deploy,pods,svc,jobs",
        "-l",
        &format!("app.kubernetes.io/managed-by=tilt,app={name}"),
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left behind: {left}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_job_under_ci_exits_0_on_success_and_1_on_failure() {
    require_cluster();
    let job = |name: &str, cmd: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: job\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, \"{cmd}\"]\n"
        )
    };
    let suffix = free_port();
    let ok = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('job.yaml')\n");
    ok.write(
        "job.yaml",
        &job(&format!("e2e-ok-{suffix}"), "echo job-success"),
    );
    let out = ok.ci(&["--timeout", "3m"]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("job-success"));
    let bad = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('job.yaml')\n");
    bad.write(
        "job.yaml",
        &job(&format!("e2e-bad-{suffix}"), "echo job-failed; exit 3"),
    );
    let out = bad.ci(&["--timeout", "3m"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for p in [&ok, &bad] {
        assert!(p.run(&["down"]).status.success());
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn live_update_into_pods_with_replay_and_rebuild() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-lu-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-lu', '.', live_update=[fall_back_on(['version.txt']), sync('www', '/www'), run('sh -c \"date > /www/ran.txt\"', trigger=['www/trigger.txt'])])\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCOPY version.txt /version.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("version.txt", "1\n");
    p.write("www/index.html", "pod v1\n");
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-e2e-lu\n        ports: [{{containerPort: 8000}}]\n"),
    );
    let _up = p.up();
    let pod = || {
        kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .trim()
        .to_string()
    };
    wait_until(Duration::from_secs(180), "v1 through the forward", || {
        http_get(port, "/").as_deref() == Some("pod v1\n")
    });
    let first = pod();
    p.write("www/index.html", "pod v2\n");
    wait_until(
        Duration::from_secs(60),
        "v2 live-updated into the pod",
        || http_get(port, "/").as_deref() == Some("pod v2\n"),
    );
    assert_eq!(pod(), first, "live update keeps the pod");
    assert_eq!(
        http_get(port, "/ran.txt"),
        None,
        "the run step only runs for its trigger"
    );
    p.write("www/trigger.txt", "go\n");
    wait_until(Duration::from_secs(60), "the triggered run step", || {
        http_get(port, "/ran.txt").is_some()
    });
    // The cluster replaces the pod: the new pod gets the live-updated files replayed, no rebuild.
    let image_before = p.get_json("imagemap", "stilt-e2e-lu").unwrap()["status"]["image"].clone();
    kubectl(&["delete", "pod", &first, "--wait=false"]);
    wait_until(
        Duration::from_secs(120),
        "a new pod serving the live-updated content",
        || {
            let now = pod();
            !now.is_empty()
                && now != first
                && !now.contains(' ')
                && http_get(port, "/").as_deref() == Some("pod v2\n")
        },
    );
    assert_eq!(
        p.get_json("imagemap", "stilt-e2e-lu").unwrap()["status"]["image"],
        image_before,
        "replay, not a rebuild"
    );
    // fall_back_on rebuilds and redeploys: new tag, new pod.
    let second = pod();
    p.write("version.txt", "2\n");
    wait_until(
        Duration::from_secs(180),
        "a rebuilt image in a new pod",
        || {
            let img = p
                .get_json("imagemap", "stilt-e2e-lu")
                .map(|m| m["status"]["image"].clone());
            img.is_some_and(|i| i != image_before)
                && {
                    let now = pod();
                    !now.is_empty() && now != second && !now.contains(' ')
                }
                && http_get(port, "/").as_deref() == Some("pod v2\n")
        },
    );
    assert!(p.run(&["down"]).status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn custom_deploy_and_events_about_a_bad_image() {
    require_cluster();
    let suffix = free_port();
    let name = format!("e2e-cd-{suffix}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         k8s_custom_deploy('{name}', apply_cmd='kubectl apply -f app.yaml -o yaml', delete_cmd='kubectl delete -f app.yaml --ignore-not-found', deps=['app.yaml'])\n"
    ));
    p.write(
        "app.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/does-not-exist:nope\n"),
    );
    let _up = p.up();
    wait_until(
        Duration::from_secs(120),
        "the custom deploy to apply",
        || {
            !kubectl(&["get", "deploy", &name, "--ignore-not-found", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
    wait_until(
        Duration::from_secs(120),
        "an image pull error as the runtime status",
        || {
            p.get_json("uiresource", &name)
                .is_some_and(|u| u["status"]["runtimeStatus"] == "error")
        },
    );
    wait_until(
        Duration::from_secs(60),
        "the Kubernetes event in the resource's log",
        || String::from_utf8_lossy(&p.run(&["logs", &name]).stdout).contains("[event: Pod "),
    );
    assert!(p.run(&["down"]).status.success());
    wait_until(
        Duration::from_secs(60),
        "the delete command to remove it",
        || {
            kubectl(&["get", "deploy", &name, "--ignore-not-found", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
}
