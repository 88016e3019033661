//! End to end on the real cluster: how a built image reaches a cluster that publishes no
//! registry, decided as Tilt does by the cluster product and its nodes' container runtime.
//! - A kind cluster gets it through the real `kind load docker-image` (scripts/go-tools builds
//!   kind). Its node is `scripts/dev-cluster kind-node`: a container with kind's labels whose
//!   `ctr` reaches the containerd our kubelet runs pods from, so the load is the one kind does.
//! - A Docker Desktop context whose nodes run containerd (not the build's Docker engine) gets a
//!   push under the image's own name; skipping the push there would leave the pod without it.
//!
//! Both use an identity that cannot read `kube-public`, so the dev cluster's published registry
//! (localhost:5000) is not found, as on a cluster without one.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn dev_cluster_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dev-cluster")
}

/// A kind node stand-in for cluster `name`, removed when dropped.
struct KindNode {
    name: String,
    /// A directory to put first on PATH for kind, when this machine needs it (see the script).
    path_prefix: Option<String>,
}

impl KindNode {
    fn start(name: &str) -> KindNode {
        let out = Command::new(dev_cluster_script())
            .args(["kind-node", name])
            .output()
            .expect("scripts/dev-cluster kind-node");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kind-node failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path_prefix = stdout.lines().find_map(|l| {
            l.strip_prefix("export PATH=")
                .and_then(|p| p.strip_suffix(":$PATH"))
                .map(str::to_string)
        });
        KindNode {
            name: name.to_string(),
            path_prefix,
        }
    }

    /// PATH for `stilt up`, so that the `kind` it runs sees this node.
    fn path(&self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        match &self.path_prefix {
            Some(dir) => format!("{dir}:{path}"),
            None => path,
        }
    }
}

impl Drop for KindNode {
    fn drop(&mut self) {
        let _ = Command::new(dev_cluster_script())
            .args(["kind-node", &self.name, "--rm"])
            .output();
    }
}

fn log_of(p: &Project, resource: &str) -> String {
    String::from_utf8_lossy(&p.run(&["logs", resource]).stdout).into_owned()
}

/// The image the project's one ImageMap hands to the cluster.
fn cluster_image(p: &Project) -> String {
    let out = p.run(&["get", "imagemap", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list["items"][0]["status"]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The names of the project's one DockerImage's `stageStatuses`, and whether any has an error.
fn stages(p: &Project) -> (Vec<String>, bool) {
    let out = p.run(&["get", "dockerimage", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let stages = list["items"][0]["status"]["stageStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names = stages
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let failed = stages
        .iter()
        .any(|s| !s["error"].as_str().unwrap_or_default().is_empty());
    (names, failed)
}

fn pod_images(app: &str) -> String {
    kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "jsonpath={.items[*].spec.containers[*].image}",
    ])
}

/// A busybox httpd serving www/ on 8000, deployed as `name` with image `image`. Its Dockerfile
/// uses a BuildKit-only instruction, so the build goes through BuildKit (and reports stages).
fn web_project(tiltfile: &str, name: &str, image: &str) -> Project {
    let p = Project::new(tiltfile);
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY www /www\nRUN --mount=type=cache,target=/cache ls /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    p.write("www/index.html", "v1\n");
    // An image of its own: the kubelet (1.35) must re-pull an image ID it once pulled under
    // another name, so two tests building the same bytes would see each other's records.
    p.write("www/name.txt", name);
    p.write("deploy.yaml", &web_deployment(name, image));
    p
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_kind_cluster_without_a_registry_gets_its_images_through_kind_load() {
    require_cluster();
    assert!(
        Command::new("kind")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "kind is not on PATH: run scripts/go-tools (scripts/test e2e does)"
    );
    let port = free_port();
    let name = format!("e2e-kind-{port}");
    let kind_name = format!("stilt-e2e-{port}");
    let _cleanup = DeploymentCleanup(name.clone());
    let node = KindNode::start(&kind_name);
    // No allow_k8s_contexts: a kind context is local, as in Tilt.
    let p = web_project(
        &format!(
            "k8s_yaml('deploy.yaml')\n\
             docker_build('stilt-e2e-kind', '.')\n\
             k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
        ),
        &name,
        "stilt-e2e-kind",
    );
    let identity = NoRegistryDiscovery::create(&p, &name, &format!("kind-{kind_name}"));
    let path = node.path();
    let up = p.spawn_up(
        &["up", "--stream", "--port", &free_port().to_string()],
        &[
            ("KUBECONFIG", identity.kubeconfig.to_str().unwrap()),
            ("PATH", &path),
        ],
    );
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(180), "v1 through the forward", || {
        http_get(port, "/").as_deref() == Some("v1\n")
    });

    // Loaded by kind under its own name: no registry in the image the pod runs, and nothing
    // pushed to the dev cluster's registry.
    let log = log_of(&p, &name);
    let image = cluster_image(&p);
    assert!(image.starts_with("stilt-e2e-kind:tilt-"), "{image}");
    assert!(
        log.contains(&format!(
            "kind load docker-image {image} --name {kind_name}"
        )),
        "{log}"
    );
    assert!(!log.contains("Pushing"), "{log}");
    assert!(pod_images(&name).contains(&image), "{}", pod_images(&name));
    assert_eq!(
        http_get(5000, "/v2/stilt-e2e-kind/tags/list"),
        None,
        "the image was pushed to the registry"
    );
    // The DockerImage's stages, as Tilt's: BuildKit's steps, then the kind load.
    let (names, failed) = stages(&p);
    assert!(
        names.iter().any(|n| n.contains("COPY www /www")),
        "{names:?}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("kind load"),
        "{names:?}"
    );
    assert!(!failed, "{names:?}");

    // An edit rebuilds, and the new image is loaded the same way.
    p.write("www/index.html", "v2\n");
    wait_until(Duration::from_secs(180), "v2 through the forward", || {
        http_get(port, "/").as_deref() == Some("v2\n")
    });
    let second = cluster_image(&p);
    assert_ne!(second, image);
    assert!(
        log_of(&p, &name).contains(&format!(
            "kind load docker-image {second} --name {kind_name}"
        )),
        "{}",
        log_of(&p, &name)
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_desktop_cluster_on_containerd_gets_images_pushed_under_their_own_name() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-desktop-{port}");
    let _cleanup = DeploymentCleanup(name.clone());
    // The dev cluster's nodes run containerd, as Docker Desktop's containerd-backed clusters do:
    // the image Docker built is not in their store, so it has to go through a registry.
    let image = "localhost:5000/stilt-e2e-desktop";
    let p = web_project(
        &format!(
            "k8s_yaml('deploy.yaml')\n\
             docker_build('{image}', '.')\n\
             k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
        ),
        &name,
        image,
    );
    let identity = NoRegistryDiscovery::create(&p, &name, "docker-desktop");
    let up = identity.spawn_up(&p);
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(180), "v1 through the forward", || {
        http_get(port, "/").as_deref() == Some("v1\n")
    });
    let log = log_of(&p, &name);
    let pushed = cluster_image(&p);
    assert!(pushed.starts_with(&format!("{image}:tilt-")), "{pushed}");
    assert!(log.contains(&format!("Pushing {pushed}")), "{log}");
    assert!(!log.contains("Skipping push"), "{log}");
    let (names, failed) = stages(&p);
    assert_eq!(
        names.last().map(String::as_str),
        Some("docker push"),
        "{names:?}"
    );
    assert!(!failed, "{names:?}");
    assert!(pod_images(&name).contains(&pushed), "{}", pod_images(&name));
}
