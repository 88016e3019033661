//! End to end on the real single-node cluster (scripts/dev-cluster): docker_build + k8s_yaml +
//! port_forwards served through the forward; a Job under `stilt ci` (0 on success, 1 on
//! failure); `stilt down` leaves nothing labelled managed-by=tilt.

mod common;

use common::*;
use std::time::Duration;

/// A Job `name` (pods labelled `app: name`) running `command` in the registry's busybox;
/// `spec` adds lines to its spec (two-space indented, e.g. `  backoffLimit: 0\n`).
fn busybox_job(name: &str, spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: job\n        image: localhost:5000/stilt-test/busybox:latest\n        command: {command}\n"
    )
}

/// A project deploying one [`busybox_job`] named `<prefix>-<free port>`.
fn job_project(prefix: &str, spec: &str, command: &str) -> (String, Project) {
    let name = format!("{prefix}-{}", free_port());
    let p = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('job.yaml')\n");
    p.write("job.yaml", &busybox_job(&name, spec, command));
    (name, p)
}

/// A Deployment `name` of one container `web` running `image`, serving on port 8000.
fn web_deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        ports: [{{containerPort: 8000}}]\n"
    )
}

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
    p.write("deploy.yaml", &web_deployment(&name, "stilt-e2e-k8s"));
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
        busybox_job(name, "  backoffLimit: 0\n", &format!("[sh, -c, \"{cmd}\"]"))
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

/// Client-side apply by default, as Tilt: the object records what was applied
/// (last-applied-configuration), a key dropped from the YAML is removed from the cluster, a key
/// someone else added stays; `k8s_server_side_apply='true'` applies server-side instead.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn client_side_apply_by_default_and_server_side_when_asked() {
    require_cluster();
    let name = format!("e2e-csa-{}", free_port());
    let cm = |data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
    };
    let p = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('cm.yaml')\n");
    p.write("cm.yaml", &cm("  a: '1'\n  b: '2'\n"));
    let data = || kubectl(&["get", "configmap", &name, "-o", "jsonpath={.data}"]);
    let annotations = || {
        kubectl(&[
            "get",
            "configmap",
            &name,
            "-o",
            "jsonpath={.metadata.annotations}",
        ])
    };
    let up = p.up();
    wait_until(Duration::from_secs(60), "the configmap", || {
        data().contains("\"b\":\"2\"")
    });
    let applied = annotations();
    assert!(applied.contains("last-applied-configuration"), "{applied}");
    kubectl(&[
        "patch",
        "configmap",
        &name,
        "--type=merge",
        "-p",
        r#"{"data":{"theirs":"x"}}"#,
    ]);
    p.write("cm.yaml", &cm("  a: '1'\n"));
    wait_until(Duration::from_secs(60), "b removed", || {
        !data().contains("\"b\"")
    });
    let now = data();
    assert!(
        now.contains("\"theirs\":\"x\"") && now.contains("\"a\":\"1\""),
        "{now}"
    );
    drop(up);
    assert!(p.run(&["down"]).status.success());

    let ssa = Project::new(
        "allow_k8s_contexts('stilt-dev')\nupdate_settings(k8s_server_side_apply='true')\nk8s_yaml('cm.yaml')\n",
    );
    ssa.write("cm.yaml", &cm("  c: '3'\n"));
    let _up = ssa.up();
    let managers = || {
        kubectl(&[
            "get",
            "configmap",
            &name,
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].operation}",
        ])
    };
    wait_until(Duration::from_secs(60), "a server-side apply", || {
        managers().contains("Apply")
    });
    let applied = annotations();
    assert!(!applied.contains("last-applied-configuration"), "{applied}");
    assert!(ssa.run(&["down"]).status.success());
}

/// One repository built under two tags (`common`, `common:v2`): each app copies from the one it
/// names, and an edit of one base rebuilds only the app that uses it.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn two_tags_of_one_base_image_go_to_the_images_that_name_them() {
    require_cluster();
    let (p1, p2) = (free_port(), free_port());
    let name = format!("e2e-tags-{p1}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         docker_build('stilt-e2e-common', 'common')\n\
         docker_build('stilt-e2e-common:v2', 'common-v2')\n\
         docker_build('stilt-e2e-tagapp', 'app')\n\
         docker_build('stilt-e2e-tagapp:v2', 'app-v2')\n\
         k8s_yaml('deploy.yaml')\n\
         k8s_resource('{name}', port_forwards=['{p1}:8000'])\n\
         k8s_resource('{name}-v2', port_forwards=['{p2}:8000'])\n"
    ));
    for (dir, msg) in [("common", "from plain"), ("common-v2", "from v2")] {
        p.write(
            &format!("{dir}/Dockerfile"),
            "FROM stilt-test/busybox:latest\nADD msg.txt /common/msg.txt\n",
        );
        p.write(&format!("{dir}/msg.txt"), &format!("{msg}\n"));
    }
    for (dir, base) in [
        ("app", "stilt-e2e-common"),
        ("app-v2", "stilt-e2e-common:v2"),
    ] {
        p.write(
            &format!("{dir}/Dockerfile"),
            &format!("FROM stilt-test/busybox:latest\nCOPY --from={base} /common/msg.txt /www/msg.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n"),
        );
    }
    p.write(
        "deploy.yaml",
        &format!(
            "{}---\n{}",
            web_deployment(&name, "stilt-e2e-tagapp"),
            web_deployment(&format!("{name}-v2"), "stilt-e2e-tagapp:v2")
        ),
    );
    let _up = p.up();
    let serves = |port: u16, want: &str| {
        wait_until(Duration::from_secs(180), want, || {
            http_get(port, "/msg.txt").as_deref() == Some(&format!("{want}\n"))
        })
    };
    serves(p1, "from plain");
    serves(p2, "from v2");
    p.write("common-v2/msg.txt", "from v2, edited\n");
    serves(p2, "from v2, edited");
    assert_eq!(http_get(p1, "/msg.txt").as_deref(), Some("from plain\n"));
    assert!(p.run(&["down"]).status.success());
}

/// A Dockerfile naming its Tilt-built base through ARGs (`FROM ${REPO}/${BASE}`, values from
/// build_args) builds from that build, and an edit of the base rebuilds the app on it.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_base_image_named_through_build_args_is_the_one_just_built() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-argbase-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         docker_build('stilt-e2e/argbase', 'base')\n\
         docker_build('stilt-e2e/argapp', 'app', build_args={{'REPO': 'stilt-e2e'}})\n\
         k8s_yaml('deploy.yaml')\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    p.write(
        "base/Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY msg.txt /www/msg.txt\n",
    );
    p.write("base/msg.txt", "base one\n");
    p.write(
        "app/Dockerfile",
        "ARG REPO\nARG BASE=argbase\nFROM ${REPO}/${BASE}\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    p.write("deploy.yaml", &web_deployment(&name, "stilt-e2e/argapp"));
    let _up = p.up();
    for msg in ["base one", "base two"] {
        if msg == "base two" {
            p.write("base/msg.txt", "base two\n");
        }
        wait_until(Duration::from_secs(180), msg, || {
            http_get(port, "/msg.txt").as_deref() == Some(&format!("{msg}\n"))
        });
    }
    assert!(p.run(&["down"]).status.success());
}

/// A Job with `ttlSecondsAfterFinished` is garbage-collected with its pod right after it ends:
/// the resource still reports how it ended (ok), as in Tilt.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_ttl_job_stays_ok_after_the_cluster_deletes_it() {
    require_cluster();
    let (name, p) = job_project(
        "e2e-ttl",
        "  ttlSecondsAfterFinished: 1\n",
        "[echo, ttl-job-ran]",
    );
    let up = p.up();
    wait_until(Duration::from_secs(120), "the job's output", || {
        up.log_text().contains("ttl-job-ran")
    });
    wait_until(
        Duration::from_secs(60),
        "the job to be garbage-collected",
        || {
            kubectl(&["get", "job", &name, "--ignore-not-found", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let ui = p.get_json("uiresource", &name).unwrap();
    assert_eq!(ui["status"]["runtimeStatus"], "ok", "{ui}");
    let kd = p.get_json("kd", &name).unwrap();
    assert_eq!(kd["status"]["pods"][0]["phase"], "Succeeded", "{kd}");
    assert!(p.run(&["down"]).status.success());
}

/// A second `stilt ci` over a Job that already completed (its pod since deleted) succeeds
/// without running the Job again: the apply reports it complete (Tilt's JobComplete condition).
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_completed_job_is_not_rerun_when_its_pod_is_gone() {
    require_cluster();
    let (name, p) = job_project("e2e-done", "  backoffLimit: 0\n", "[echo, ran-once]");
    let pods = || kubectl(&["get", "pods", "-l", &format!("app={name}"), "-o", "name"]);
    let first = p.ci(&["--timeout", "3m"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let pod = pods();
    assert_eq!(pod.lines().count(), 1, "{pod}");
    kubectl(&["delete", pod.trim()]);
    let second = p.ci(&["--timeout", "2m"]);
    assert!(
        second.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(pods().trim(), "", "the job ran again");
    assert!(p.run(&["down"]).status.success());
}

/// A Job's pod template is immutable: a new image means delete and re-create. The old pod
/// ignores SIGTERM, so a delete that waited for it would stall the apply for its grace period.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_running_job_whose_image_changes_is_replaced() {
    require_cluster();
    let name = format!("e2e-job-{}", free_port());
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('job.yaml')\ndocker_build('stilt-e2e-job', '.')\nk8s_resource('{name}')\n"
    ));
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY version.txt /version.txt\nCMD [\"sh\", \"-c\", \"echo job-version-$(cat /version.txt); trap '' TERM; while true; do sleep 1; done\"]\n",
    );
    p.write("version.txt", "1\n");
    p.write(
        "job.yaml",
        &format!("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: job\n        image: stilt-e2e-job\n"),
    );
    let up = p.up();
    wait_until(Duration::from_secs(180), "the first job's output", || {
        up.log_text().contains("job-version-1")
    });
    p.write("version.txt", "2\n");
    wait_until(
        Duration::from_secs(120),
        "the replaced job's output",
        || up.log_text().contains("job-version-2"),
    );
    let ka = p.get_json("kapp", &name).unwrap();
    assert_eq!(ka["status"]["error"].as_str().unwrap_or(""), "", "{ka}");
    let jobs = kubectl(&[
        "get",
        "job",
        &name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(
        jobs.starts_with("localhost:5000/stilt-e2e-job:tilt-"),
        "{jobs}"
    );
    assert!(p.run(&["down"]).status.success());
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
    p.write("deploy.yaml", &web_deployment(&name, "stilt-e2e-lu"));
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

/// A Deployment of the registry's busybox serving `text` over HTTP on `port` (declared).
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_image_created_through_the_api_is_built_pushed_and_deployed() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-api-img-{port}");
    let p = Project::new("# no resources: everything below is created through the API\n");
    let _up = p.up();
    let apply = |text: &str| p.apply("objects.yaml", text);
    let selector = format!("stilt-e2e/{name}");
    let context = p.path(".").display().to_string();
    let image = |text: &str| {
        let dockerfile = format!(
            "FROM stilt-test/busybox:latest\\nRUN mkdir /www && echo {text} > /www/index.html\\nCMD httpd -f -p 8000 -h /www\\n"
        );
        format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: DockerImage\nmetadata:\n  name: {name}\nspec:\n  ref: {selector}\n  context: {context}\n  dockerfileContents: \"{dockerfile}\"\n  imageMaps: [{name}]\n  cluster: default\n"
        )
    };
    let deployment = web_deployment(&name, &selector);
    let indented: String = deployment.lines().map(|l| format!("    {l}\n")).collect();
    apply(&format!(
        "apiVersion: tilt.dev/v1alpha1\nkind: ImageMap\nmetadata:\n  name: {name}\nspec:\n  selector: {selector}\n---\n{}---\napiVersion: tilt.dev/v1alpha1\nkind: KubernetesApply\nmetadata:\n  name: {name}\nspec:\n  imageMaps: [{name}]\n  yaml: |\n{indented}",
        image("v1")
    ));
    let _cleanup = DeploymentCleanup(name.clone());
    let served = || {
        let out = kubectl(&[
            "exec",
            &format!("deploy/{name}"),
            "--",
            "cat",
            "/www/index.html",
        ]);
        out.trim().to_string()
    };
    let deployed_image = || kubectl(&["get", "deploy", &name, "-o", "jsonpath={..image}"]);
    wait_until(Duration::from_secs(120), "v1 deployed", || served() == "v1");
    // The cluster pulls the pushed image from its registry, never the local name.
    let first = deployed_image();
    assert!(first.starts_with("localhost:5000/stilt-e2e_"), "{first}");
    let di = p.get_json("dockerimage", &name).unwrap();
    assert!(di["status"]["completed"].is_object(), "{di}");
    assert!(di["status"]["completed"]["error"].is_null(), "{di}");
    let im = p.get_json("imagemap", &name).unwrap();
    assert_eq!(im["status"]["image"].as_str(), Some(first.as_str()), "{im}");
    // A new spec is built and deployed again.
    apply(&image("v2"));
    wait_until(Duration::from_secs(120), "v2 deployed", || served() == "v2");
    assert_ne!(deployed_image(), first);
}

/// GET / on a keep-alive connection, reading the body by its Content-Length.
fn get_by_length(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse().ok())?;
            if body.len() >= len {
                return head
                    .starts_with("HTTP/1.1 2")
                    .then(|| body[..len].to_string());
            }
        }
    }
}

fn http_deployment(name: &str, port: u16, text: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, \"mkdir -p /www && echo {text} > /www/index.html && echo serving {text} && httpd -f -p {port} -h /www\"]\n        ports: [{{containerPort: {port}}}]\n"
    )
}

fn deployment_exists(name: &str) -> bool {
    !kubectl(&["get", "deploy", name, "--ignore-not-found", "-o", "name"])
        .trim()
        .is_empty()
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_bare_port_forward_reaches_the_declared_container_port() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-bare-{port}");
    // `port_forwards=PORT` has container port 0: the forward goes to the pod's declared 8080.
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\nk8s_resource('{name}', port_forwards={port})\n"
    ));
    p.write("deploy.yaml", &http_deployment(&name, 8080, "bare-forward"));
    let _up = p.up();
    wait_until(
        Duration::from_secs(120),
        "HTTP through the bare forward",
        || http_get(port, "/").as_deref() == Some("bare-forward\n"),
    );
    let pf = p.run(&["get", "portforwards", "-o", "json"]);
    let pfs: serde_json::Value = serde_json::from_slice(&pf.stdout).unwrap();
    assert_eq!(
        pfs["items"][0]["spec"]["forwards"][0]["containerPort"], 8080,
        "{pfs}"
    );
    assert!(p.run(&["down"]).status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_forward_carries_many_connections_and_a_large_body_through_one_tunnel() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-tunnel-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\nk8s_resource('{name}', port_forwards='{port}:8080')\n"
    ));
    // About a megabyte of numbered lines: many DATA frames in one response.
    let script = "mkdir -p /www && seq 1 150000 > /www/big.txt && echo small > /www/index.html && httpd -f -p 8080 -h /www";
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, {script:?}]\n        ports: [{{containerPort: 8080}}]\n"),
    );
    let up = p.spawn_up(
        &["up", "--stream", "--port", &free_port().to_string()],
        &[("STILT_LOG", "stilt_k8s::pftunnel=debug")],
    );
    let _cleanup = DeploymentCleanup(name.clone());
    wait_until(Duration::from_secs(120), "HTTP through the forward", || {
        http_get(port, "/").as_deref() == Some("small\n")
    });
    let expected: String = (1..=150_000).map(|i| format!("{i}\n")).collect();
    let big = http_get(port, "/big.txt").expect("the large body");
    assert_eq!(big.len(), expected.len());
    assert!(big == expected, "the large body arrived changed");
    // Read by Content-Length: the container runtime ends a forwarded stream a second after the
    // server closed it unless the client closes first, so reading to the end is slow.
    for i in 0..50 {
        assert_eq!(
            get_by_length(port).as_deref(),
            Some("small\n"),
            "request {i}"
        );
    }
    let parallel: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                (0..5)
                    .filter(|_| get_by_length(port).as_deref() == Some("small\n"))
                    .count()
            })
        })
        .collect();
    let served: usize = parallel.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, 80, "every concurrent request served");
    let log = up.log_text();
    assert!(
        log.contains(&format!("port-forward tunnel to default/{name}")),
        "the connections went through the pod's tunnel: {log}"
    );
    assert!(!log.contains("no port-forward tunnel"), "{log}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_reload_that_regenerates_the_yaml_reapplies_it() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-reload-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nwatch_file('deploy.yaml')\nk8s_yaml(local('cat deploy.yaml'))\nk8s_resource('{name}', port_forwards='{port}:8080')\n"
    ));
    p.write("deploy.yaml", &http_deployment(&name, 8080, "first"));
    let _up = p.up();
    wait_until(Duration::from_secs(120), "the first version", || {
        http_get(port, "/").as_deref() == Some("first\n")
    });
    p.write("deploy.yaml", &http_deployment(&name, 8080, "second"));
    wait_until(
        Duration::from_secs(120),
        "the regenerated YAML applied",
        || http_get(port, "/").as_deref() == Some("second\n"),
    );
    assert!(p.run(&["down"]).status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_custom_deploy_live_updates_by_image_selector() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-cdlu-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         k8s_custom_deploy('{name}', apply_cmd='kubectl apply -f app.yaml -o yaml', delete_cmd='kubectl delete -f app.yaml --ignore-not-found', deps=['www'], image_selector='localhost:5000/stilt-test/busybox', live_update=[sync('www', '/www')])\n\
         k8s_resource('{name}', port_forwards='{port}:8080')\n"
    ));
    p.write("www/index.html", "v1\n");
    p.write(
        "app.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, \"mkdir -p /www && echo v1 > /www/index.html && httpd -f -p 8080 -h /www\"]\n        ports: [{{containerPort: 8080}}]\n"),
    );
    let _up = p.up();
    wait_until(Duration::from_secs(120), "v1", || {
        http_get(port, "/").as_deref() == Some("v1\n")
    });
    let pods = || {
        kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
    };
    let before = pods();
    p.write("www/index.html", "v2\n");
    wait_until(Duration::from_secs(60), "v2 live-updated", || {
        http_get(port, "/").as_deref() == Some("v2\n")
    });
    assert_eq!(
        pods(),
        before,
        "synced into the running pod, not redeployed"
    );
    assert!(p.run(&["down"]).status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn disabling_deletes_enabling_restores_removing_deletes() {
    require_cluster();
    let suffix = free_port();
    let name = format!("e2e-dis-{suffix}");
    let other = format!("e2e-keep-{suffix}");
    let tiltfile = |both: bool| {
        let mut t = "allow_k8s_contexts('stilt-dev')\nk8s_yaml('keep.yaml')\n".to_string();
        if both {
            t.push_str("k8s_yaml('deploy.yaml')\n");
        }
        t
    };
    let p = Project::new(&tiltfile(true));
    p.write("deploy.yaml", &http_deployment(&name, 8080, "d"));
    p.write("keep.yaml", &http_deployment(&other, 8080, "k"));
    let _up = p.up();
    wait_until(Duration::from_secs(120), "both deployed", || {
        deployment_exists(&name) && deployment_exists(&other)
    });
    assert!(p.run(&["disable", &name]).status.success());
    wait_until(Duration::from_secs(60), "the disabled one deleted", || {
        !deployment_exists(&name)
    });
    assert!(deployment_exists(&other));
    assert!(p.run(&["enable", &name]).status.success());
    wait_until(Duration::from_secs(60), "the enabled one restored", || {
        deployment_exists(&name)
    });
    p.write("Tiltfile", &tiltfile(false));
    wait_until(
        Duration::from_secs(60),
        "the removed resource's objects deleted",
        || !deployment_exists(&name),
    );
    assert!(deployment_exists(&other));
    assert!(p.run(&["down"]).status.success());
}

/// `stilt up` with environment overrides (KUBECONFIG).
fn up_with_env(p: &Project, env: &[(&str, &str)]) -> Up {
    let log = p.home.path().join("stilt-up.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut c = p.cmd(&["up", "--stream", "--port", &free_port().to_string()]);
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c
        .stdout(std::process::Stdio::from(file.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .unwrap();
    let up = Up {
        child: Some(child),
        log,
    };
    wait_until(Duration::from_secs(30), "the API server", || {
        p.run(&["get", "sessions"]).status.success()
    });
    up
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_unreachable_cluster_fails_the_update_in_the_log_and_the_stream() {
    require_cluster();
    let name = format!("e2e-unreach-{}", free_port());
    let p = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\n");
    p.write("deploy.yaml", &http_deployment(&name, 8080, "x"));
    // The dev cluster's context, pointed at a port nothing listens on.
    let dead = p.path("dead-kubeconfig");
    std::fs::copy(std::env::var("KUBECONFIG").unwrap(), &dead).unwrap();
    let dead_s = dead.display().to_string();
    let cluster = kubectl(&[
        "--kubeconfig",
        &dead_s,
        "config",
        "view",
        "-o",
        "jsonpath={.contexts[?(@.name==\"stilt-dev\")].context.cluster}",
    ]);
    kubectl(&[
        "--kubeconfig",
        &dead_s,
        "config",
        "set-cluster",
        cluster.trim(),
        "--server=https://127.0.0.1:1",
    ]);
    let up = up_with_env(&p, &[("KUBECONFIG", &dead_s)]);
    wait_until(
        Duration::from_secs(90),
        "the failure in the resource's log",
        || {
            String::from_utf8_lossy(&p.run(&["logs", &name]).stdout)
                .contains("cannot reach the Kubernetes cluster")
        },
    );
    wait_until(Duration::from_secs(10), "the failure in --stream", || {
        up.log_text()
            .contains("Build Failed: cannot reach the Kubernetes cluster")
    });
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_kubeconfig_with_a_token_and_a_stray_client_key_works_as_in_kubectl() {
    require_cluster();
    let suffix = free_port();
    let name = format!("e2e-token-{suffix}");
    let sa = format!("stilt-e2e-{suffix}");
    kubectl(&["create", "serviceaccount", &sa]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        &sa,
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount=default:{sa}"),
    ]);
    let token = kubectl(&["create", "token", &sa]).trim().to_string();
    assert!(!token.is_empty());
    let p = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\n");
    p.write("deploy.yaml", &http_deployment(&name, 8080, "t"));
    let cfg = p.path("token-kubeconfig");
    std::fs::copy(std::env::var("KUBECONFIG").unwrap(), &cfg).unwrap();
    let cfg_s = cfg.display().to_string();
    let kc = |args: &[&str]| {
        let mut a = vec!["--kubeconfig", &cfg_s];
        a.extend_from_slice(args);
        kubectl(&a)
    };
    let key = kc(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.users[0].user.client-key-data}",
    ]);
    kc(&[
        "config",
        "set-credentials",
        "u",
        &format!("--token={token}"),
    ]);
    kc(&["config", "set", "users.u.client-key-data", key.trim()]);
    kc(&["config", "set-context", "stilt-dev", "--user=u"]);
    assert!(
        kc(&["get", "ns", "default", "-o", "name"]).contains("namespace/default"),
        "kubectl accepts the kubeconfig"
    );
    let _up = up_with_env(&p, &[("KUBECONFIG", &cfg_s)]);
    wait_until(Duration::from_secs(120), "the deployment", || {
        deployment_exists(&name)
    });
    assert!(
        p.cmd(&["down"])
            .env("KUBECONFIG", &cfg_s)
            .output()
            .unwrap()
            .status
            .success()
    );
    kubectl(&["delete", "clusterrolebinding", &sa]);
    kubectl(&["delete", "serviceaccount", &sa]);
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn api_objects_deploy_discover_forward_and_stream_without_a_tiltfile_resource() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-api-{port}");
    let p = Project::new("# no resources: everything below is created through the API\n");
    let _up = p.up();
    let stilt_kubectl = |args: &[&str]| p.stilt_kubectl(args);
    let apply = |file: &str, yaml: &str| p.apply(file, yaml);
    let deployment = http_deployment(&name, 8080, "from-the-api");
    let indented: String = deployment.lines().map(|l| format!("    {l}\n")).collect();
    apply(
        "ka.yaml",
        &format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: KubernetesApply\nmetadata:\n  name: {name}\nspec:\n  yaml: |\n{indented}"
        ),
    );
    wait_until(Duration::from_secs(60), "status.resultYAML", || {
        p.get_json("kapp", &name).is_some_and(|k| {
            k["status"]["resultYAML"]
                .as_str()
                .is_some_and(|y| y.contains("uid:"))
        })
    });
    assert!(deployment_exists(&name));
    let uid = kubectl(&["get", "deploy", &name, "-o", "jsonpath={.metadata.uid}"]);
    let disco = format!("{name}-disco");
    apply(
        "kd.yaml",
        &format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: KubernetesDiscovery\nmetadata:\n  name: {disco}\nspec:\n  watches:\n  - namespace: default\n    uid: {}\n  portForwardTemplateSpec:\n    forwards:\n    - localPort: {port}\n      containerPort: 0\n",
            uid.trim()
        ),
    );
    wait_until(
        Duration::from_secs(120),
        "the deployment's pod in status.pods",
        || {
            p.get_json("kd", &disco).is_some_and(|k| {
                k["status"]["pods"][0]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&name))
            })
        },
    );
    // The discovery's PortForward fills containerPort 0 from the pod's declared port.
    wait_until(Duration::from_secs(120), "HTTP through the forward", || {
        http_get(port, "/").as_deref() == Some("from-the-api\n")
    });
    // As in Tilt, a PortForward object itself must name its container port.
    let pod = p.get_json("kd", &disco).unwrap()["status"]["pods"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    p.write(
        "pf.yaml",
        &format!("apiVersion: tilt.dev/v1alpha1\nkind: PortForward\nmetadata:\n  name: {name}-pf\nspec:\n  podName: {pod}\n  forwards:\n  - localPort: {}\n    containerPort: 0\n", free_port()),
    );
    let out = stilt_kubectl(&["apply", "-f", &p.path("pf.yaml").display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("containerPort"));
    let pls = format!("{name}-logs");
    apply(
        "pls.yaml",
        &format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: PodLogStream\nmetadata:\n  name: {pls}\nspec:\n  pod: {pod}\n  namespace: default\n"
        ),
    );
    wait_until(Duration::from_secs(60), "the pod's log", || {
        String::from_utf8_lossy(&p.run(&["logs"]).stdout).contains("serving from-the-api")
    });
    wait_until(
        Duration::from_secs(30),
        "the stream active in status",
        || {
            p.get_json("pls", &pls)
                .is_some_and(|s| s["status"]["containerStatuses"][0]["active"] == true)
        },
    );
    let out = stilt_kubectl(&["delete", "kapp", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(Duration::from_secs(60), "the deployment deleted", || {
        !deployment_exists(&name)
    });
}
