//! End to end on the real Docker engine and Docker Compose: a service Compose builds itself
//! (`build:` without a docker_build) served and rebuilt on edit, on `docker compose` v2 and on
//! the docker-compose v1 fallback; disabling a service removes its container and enabling brings
//! it back; a service removed from the compose file loses its container; published ports are the
//! resource's links.
//! Needs dockerd, the `stilt-test/busybox` image and `docker compose` (scripts/compose-v2).

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The running container of a compose service, by the labels compose puts on it.
fn service_container(project: &str, service: &str) -> Option<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!id.is_empty()).then_some(id)
}

/// Removes the project's containers, network and the images compose built, pass or fail.
struct Cleanup {
    project: String,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.project))
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("{}_default", self.project)])
            .stderr(Stdio::null())
            .output();
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

/// `stilt up` with extra environment (the compose CLI override).
fn up_with_env(p: &Project, env: &[(&str, &str)]) -> Up {
    let log = p.home.path().join("stilt-up.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = p.cmd(&["up", "--stream", "--port", &free_port().to_string()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
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

fn links(p: &Project, resource: &str) -> Vec<String> {
    p.get_json("uiresource", resource)
        .and_then(|u| u["status"]["endpointLinks"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l["url"].as_str().map(str::to_string))
        .collect()
}

/// A `build: .` service with no docker_build: Compose builds it, it serves on its published
/// port, the port is the resource's link, and an edit of the served file rebuilds it.
fn build_service_served_and_rebuilt(env: &[(&str, &str)], image_sep: &str) {
    let port = free_port();
    let p = Project::new("docker_compose('compose.yaml')\n");
    let project = compose_project(&p);
    let _cleanup = Cleanup {
        project: project.clone(),
        images: vec![format!("{project}{image_sep}web")],
    };
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    p.write("index.html", "built by compose v1\n");
    p.write(
        "compose.yaml",
        &format!(
            "services:\n  web:\n    build: .\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"
        ),
    );
    let up = up_with_env(&p, env);
    let _log = LogOnFailure(&up);

    wait_until(
        Duration::from_secs(180),
        "the compose-built service",
        || http_get(port, "/").as_deref() == Some("built by compose v1\n"),
    );
    assert_eq!(links(&p, "web"), [format!("http://localhost:{port}/")]);
    let first = service_container(&project, "web").expect("a running container");

    p.write("index.html", "built by compose v2\n");
    wait_until(Duration::from_secs(180), "the rebuilt service", || {
        http_get(port, "/").as_deref() == Some("built by compose v2\n")
    });
    assert_ne!(
        service_container(&project, "web").as_deref(),
        Some(first.as_str()),
        "a rebuild recreates the container"
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn compose_v2_builds_a_service_without_docker_build() {
    build_service_served_and_rebuilt(&[], "-");
}

/// The same on docker-compose v1 (the adapter and the loader honour STILT_DOCKER_COMPOSE_CMD):
/// its `config` prints YAML and it names built images `<project>_<service>`.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn compose_v1_fallback_builds_a_service_without_docker_build() {
    build_service_served_and_rebuilt(&[("STILT_DOCKER_COMPOSE_CMD", "docker-compose")], "_");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn disable_removes_the_container_enable_brings_it_back_and_removed_services_go() {
    let port = free_port();
    let p = Project::new("docker_compose('compose.yaml')\n");
    let project = compose_project(&p);
    let _cleanup = Cleanup {
        project: project.clone(),
        images: vec![],
    };
    let web = format!(
        "  web:\n    image: stilt-test/busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/etc\"]\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"
    );
    let other =
        "  other:\n    image: stilt-test/busybox:latest\n    command: [\"sleep\", \"3600\"]\n";
    p.write("compose.yaml", &format!("services:\n{web}{other}"));
    let up = p.up();
    let _log = LogOnFailure(&up);
    let serving = || http_get(port, "/group").is_some_and(|b| b.contains("root"));

    wait_until(Duration::from_secs(120), "both services up", || {
        serving() && service_container(&project, "other").is_some()
    });
    assert_eq!(links(&p, "web"), [format!("http://localhost:{port}/")]);

    let out = p.run(&["disable", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        Duration::from_secs(60),
        "the disabled service's container removed",
        || service_container(&project, "web").is_none() && !serving(),
    );
    assert!(
        service_container(&project, "other").is_some(),
        "other services keep running"
    );

    let out = p.run(&["enable", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        Duration::from_secs(120),
        "the enabled service back",
        serving,
    );

    // A service the compose file no longer has loses its container; the others stay.
    p.write("compose.yaml", &format!("services:\n{web}"));
    wait_until(
        Duration::from_secs(60),
        "the removed service's container gone",
        || service_container(&project, "other").is_none(),
    );
    assert!(serving(), "web keeps serving");
}
