//! End to end on the real Docker engine: a compose project whose web service serves a file,
//! live-updated in place, rebuilt on fall_back_on, recovering from a failing run step, and
//! keeping the old container serving through a Dockerfile error.
//! Needs dockerd and the `stilt-test/busybox` image (scripts/docker-engine, scripts/test-images).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn container_id(project: &str) -> Option<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!id.is_empty()).then_some(id)
}

fn compose_down(dir: &std::path::Path) {
    let _ = Command::new("docker-compose")
        .args(["down", "--remove-orphans"])
        .current_dir(dir)
        .output();
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn compose_live_update_rebuild_and_failures() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-web', '.', live_update=[\n\
           fall_back_on(['Dockerfile', 'version.txt']),\n\
           sync('www', '/www'),\n\
           run('sh -c \"test ! -e /www/fail\"', trigger=['www']),\n\
         ])\n",
    );
    let project = compose_project(&p);
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCOPY version.txt /version.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("version.txt", "1\n");
    p.write("www/index.html", "hello v1\n");
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-web\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    let log = LogOnFailure(&up);

    wait_until(
        Duration::from_secs(120),
        "v1 served by the compose service",
        || http_get(port, "/").as_deref() == Some("hello v1\n"),
    );
    let first = container_id(&project).expect("a running container");
    let first_ref = p.get_json("imagemap", "stilt-e2e-web").unwrap()["status"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first_ref.starts_with("stilt-e2e-web:tilt-"), "{first_ref}");

    // An edit inside a sync is live-updated: same container, new content.
    p.write("www/index.html", "hello v2\n");
    wait_until(Duration::from_secs(30), "v2 live-updated", || {
        http_get(port, "/").as_deref() == Some("hello v2\n")
    });
    assert_eq!(
        container_id(&project).as_deref(),
        Some(first.as_str()),
        "live update keeps the container"
    );
    wait_until(
        Duration::from_secs(10),
        "live update status with stage timings",
        || {
            p.get_json("liveupdate", "web:stilt-e2e-web")
                .is_some_and(|lu| {
                    let c = &lu["status"]["containers"][0];
                    c["containerID"] == format!("docker://{first}")
                        && c["lastUpdateTimings"]["transferDoneMs"]
                            .as_f64()
                            .is_some_and(|ms| ms > 0.0)
                })
        },
    );

    // A failing run step is reported; the files stay; the next good edit recovers.
    p.write("www/fail", "x\n");
    wait_until(Duration::from_secs(30), "the exec error", || {
        p.get_json("liveupdate", "web:stilt-e2e-web")
            .is_some_and(|l| {
                l["status"]["containers"][0]["lastExecError"]
                    .as_str()
                    .is_some_and(|e| e.contains("exit code 1"))
            })
    });
    assert!(
        up.log_text().contains("→ Failed to update container"),
        "the log says so in Tilt's words"
    );
    assert_eq!(
        http_get(port, "/fail").as_deref(),
        Some("x\n"),
        "the container keeps the synced files"
    );
    std::fs::remove_file(p.path("www/fail")).unwrap();
    p.write("www/index.html", "hello v3\n");
    wait_until(Duration::from_secs(30), "recovery", || {
        http_get(port, "/").as_deref() == Some("hello v3\n")
            && p.get_json("liveupdate", "web:stilt-e2e-web")
                .is_some_and(|l| {
                    l["status"]["containers"][0]["lastExecError"]
                        .as_str()
                        .unwrap_or("")
                        .is_empty()
                })
    });
    assert_eq!(http_get(port, "/fail"), None, "deletions are synced");

    // A fall_back_on file rebuilds: new tag, new container.
    p.write("version.txt", "2\n");
    wait_until(
        Duration::from_secs(120),
        "a rebuilt image and a new container",
        || {
            let r = p
                .get_json("imagemap", "stilt-e2e-web")
                .and_then(|m| m["status"]["image"].as_str().map(str::to_string));
            r.is_some_and(|r| r != first_ref)
                && container_id(&project).is_some_and(|c| c != first)
                && http_get(port, "/").as_deref() == Some("hello v3\n")
        },
    );
    let second = container_id(&project).unwrap();

    // A Dockerfile error shows Docker's message while the old container keeps serving.
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nBOGUS instruction\n",
    );
    wait_until(Duration::from_secs(60), "the build error", || {
        p.get_json("uiresource", "web").is_some_and(|u| {
            u["status"]["buildHistory"][0]["error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("unknown instruction"))
        })
    });
    assert_eq!(http_get(port, "/").as_deref(), Some("hello v3\n"));
    assert_eq!(container_id(&project).as_deref(), Some(second.as_str()));

    // `stilt down` stops stilt up and removes the compose project.
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCOPY version.txt /version.txt\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    let down = p.run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(
        container_id(&project),
        None,
        "no container left after stilt down"
    );
    drop(log);
    drop(up);
    drop(guard);
}

/// Removes the compose project when the test ends, pass or fail.
struct Guard(std::path::PathBuf);
impl Drop for Guard {
    fn drop(&mut self) {
        compose_down(&self.0);
    }
}
fn scopeguard(dir: std::path::PathBuf) -> Guard {
    Guard(dir)
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn custom_build_feeds_a_compose_service() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\ncustom_build('stilt-e2e-cb', 'docker build -t $EXPECTED_REF .', ['www'])\n",
    );
    let project = compose_project(&p);
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "custom v1\n");
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-cb\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(
        Duration::from_secs(120),
        "the custom-built image served",
        || http_get(port, "/").as_deref() == Some("custom v1\n"),
    );
    let image = p.get_json("imagemap", "stilt-e2e-cb").unwrap()["status"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(image.starts_with("stilt-e2e-cb:tilt-"), "{image}");
    wait_until(Duration::from_secs(10), "the log stream object", || {
        p.get_json("dockercomposelogstream", "web")
            .is_some_and(|l| l["status"]["startedAt"].is_string())
    });
    assert!(p.run(&["logs", "web"]).status.success());
    assert!(p.get_json("cmdimage", "web:stilt-e2e-cb").is_some_and(|c| {
        c["status"]["completed"]["error"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    }));
    // A dependency change rebuilds through the command.
    p.write("www/index.html", "custom v2\n");
    wait_until(Duration::from_secs(120), "the rebuilt image served", || {
        http_get(port, "/").as_deref() == Some("custom v2\n")
    });
    assert!(container_id(&project).is_some());
    drop(up);
    drop(guard);
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_base_image_change_rebuilds_the_image_built_from_it() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-base', 'base')\n\
         docker_build('stilt-e2e-app', 'app')\n",
    );
    p.write(
        "base/Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY greeting.txt /greeting.txt\n",
    );
    p.write("base/greeting.txt", "hello 1\n");
    p.write("app/Dockerfile", "FROM stilt-e2e-base\nCOPY www /www\nCMD [\"sh\", \"-c\", \"cp /greeting.txt /www/greeting.txt && exec httpd -f -p 8000 -h /www\"]\n");
    p.write("app/www/index.html", "app\n");
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-app\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(
        Duration::from_secs(120),
        "the base's file served by the app",
        || http_get(port, "/greeting.txt").as_deref() == Some("hello 1\n"),
    );
    let built = |name: &str| {
        p.get_json("imagemap", name)
            .and_then(|m| m["status"]["image"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (base1, app1) = (built("stilt-e2e-base"), built("stilt-e2e-app"));
    assert!(base1.starts_with("stilt-e2e-base:tilt-"), "{base1}");

    // Only the base's context changes: both images are rebuilt and the new container serves it.
    p.write("base/greeting.txt", "hello 2\n");
    wait_until(Duration::from_secs(120), "the rebuilt base served", || {
        http_get(port, "/greeting.txt").as_deref() == Some("hello 2\n")
    });
    assert_ne!(built("stilt-e2e-base"), base1);
    assert_ne!(
        built("stilt-e2e-app"),
        app1,
        "the dependent image has a new tag"
    );
    drop(up);
    drop(guard);
}

/// A plain container (not compose) running the built image, live-updated through a LiveUpdate
/// whose `selector.docker` names the image.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn live_update_into_a_plain_container_selected_by_image() {
    let (port, plain_port) = (free_port(), free_port());
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-plain', '.', live_update=[sync('www', '/www')])\n",
    );
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "plain v1\n");
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-plain\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let log = LogOnFailure(&up);
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(Duration::from_secs(120), "the compose service", || {
        http_get(port, "/").as_deref() == Some("plain v1\n")
    });
    let image = p.get_json("imagemap", "stilt-e2e-plain").unwrap()["status"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    let run = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "-p",
            &format!("127.0.0.1:{plain_port}:8000"),
            &image,
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plain = String::from_utf8_lossy(&run.stdout).trim().to_string();
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _rm = Rm(plain.clone());
    wait_until(Duration::from_secs(30), "the plain container", || {
        http_get(plain_port, "/").as_deref() == Some("plain v1\n")
    });
    let lu = format!(
        "apiVersion: tilt.dev/v1alpha1\nkind: LiveUpdate\nmetadata:\n  name: plain\nspec:\n  basePath: {}\n  selector:\n    docker:\n      image: stilt-e2e-plain\n  sources:\n  - fileWatch: image:stilt-e2e-plain\n    imageMap: stilt-e2e-plain\n  syncs:\n  - localPath: www\n    containerPath: /www\n",
        p.dir.path().display()
    );
    p.write("plain-lu.yaml", &lu);
    let applied = p.run(&["apply", "-f", "plain-lu.yaml"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    p.write("www/index.html", "plain v2\n");
    wait_until(Duration::from_secs(30), "v2 in the plain container", || {
        http_get(plain_port, "/").as_deref() == Some("plain v2\n")
    });
    wait_until(
        Duration::from_secs(10),
        "the plain container in status",
        || {
            p.get_json("liveupdate", "plain").is_some_and(|l| {
                l["status"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["containerID"] == format!("docker://{plain}")
                            && !c["lastFileTimeSynced"].is_null()
                    })
            })
        },
    );
    let still = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &plain])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&still.stdout).trim(),
        "true",
        "same container, still running"
    );
    drop(log);
    drop(up);
    drop(guard);
}

fn started_at(id: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.StartedAt}}", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An unchanged context rebuilds to the same tag and leaves the container alone; an edit with
/// `restart_container()` syncs and restarts the same container.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn same_tag_without_redeploy_and_restart_container() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-rs', '.', live_update=[sync('www', '/www'), restart_container()])\n",
    );
    let project = compose_project(&p);
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"sh\", \"-c\", \"cp /www/msg.txt /www/index.html && exec httpd -f -p 8000 -h /www\"]\n");
    p.write("www/msg.txt", "one\n");
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-rs\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(Duration::from_secs(120), "the first message", || {
        http_get(port, "/").as_deref() == Some("one\n")
    });
    let id = container_id(&project).unwrap();
    let started = started_at(&id);
    let image = |p: &Project| {
        p.get_json("imagemap", "stilt-e2e-rs").unwrap()["status"]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let tag = image(&p);
    let builds = |p: &Project| {
        p.get_json("uiresource", "web").unwrap()["status"]["buildHistory"]
            .as_array()
            .map_or(0, |h| h.len())
    };
    let before = builds(&p);
    assert!(p.run(&["trigger", "web"]).status.success());
    wait_until(Duration::from_secs(60), "the triggered update", || {
        builds(&p) > before
            && p.get_json("uiresource", "web").unwrap()["status"]["currentBuild"]["startTime"]
                .is_null()
    });
    assert_eq!(image(&p), tag, "an unchanged context gives the same tag");
    assert_eq!(container_id(&project).as_deref(), Some(id.as_str()));
    assert_eq!(
        started_at(&id),
        started,
        "no redeploy: the container was not restarted"
    );

    // restart_container(): synced, then the same container restarts and re-reads the file.
    p.write("www/msg.txt", "two\n");
    wait_until(Duration::from_secs(60), "the restarted container", || {
        http_get(port, "/").as_deref() == Some("two\n")
    });
    assert_eq!(container_id(&project).as_deref(), Some(id.as_str()));
    assert_ne!(started_at(&id), started, "restarted");
    assert_eq!(image(&p), tag, "live update, not a rebuild");
    drop(up);
    drop(guard);
}

/// `docker_build` options reach the build: `extra_hosts` is in `/etc/hosts` during RUN, a
/// `secret` is readable through `RUN --mount=type=secret` (a BuildKit session serves it), and
/// `platform` / `cache_from` are accepted by the engine and recorded in the DockerImage.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn docker_build_options_reach_the_build() {
    let (port1, port2) = (free_port(), free_port());
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-hosts', 'hosts', extra_hosts=['myhost:1.2.3.4'], platform='linux/amd64',\n\
         \x20            cache_from=['stilt-test/busybox:latest'])\n\
         docker_build('stilt-e2e-secret', 'secret', secret=['id=mysecret,src=secret/token.txt'],\n\
         \x20            extra_hosts=['one:10.0.0.1', 'two:10.0.0.2'])\n",
    );
    let serve = "CMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n";
    p.write(
        "hosts/Dockerfile",
        &format!("FROM stilt-test/busybox:latest\nRUN mkdir -p /www && grep myhost /etc/hosts > /www/hosts.txt\n{serve}"),
    );
    p.write(
        "secret/Dockerfile",
        &format!("FROM stilt-test/busybox:latest\nRUN mkdir -p /www && grep -h -e one -e two /etc/hosts > /www/hosts.txt\nRUN --mount=type=secret,id=mysecret cp /run/secrets/mysecret /www/secret.txt\n{serve}"),
    );
    p.write("secret/token.txt", "s3cr3t\n");
    p.write(
        "docker-compose.yml",
        &format!("version: \"3\"\nservices:\n  hosts:\n    image: stilt-e2e-hosts\n    ports:\n      - \"127.0.0.1:{port1}:8000\"\n  secret:\n    image: stilt-e2e-secret\n    ports:\n      - \"127.0.0.1:{port2}:8000\"\n"),
    );
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(Duration::from_secs(180), "both images served", || {
        http_get(port1, "/hosts.txt").is_some() && http_get(port2, "/secret.txt").is_some()
    });
    let hosts = http_get(port1, "/hosts.txt").unwrap();
    assert!(
        hosts.contains("1.2.3.4") && hosts.contains("myhost"),
        "{hosts}"
    );
    assert_eq!(http_get(port2, "/secret.txt").as_deref(), Some("s3cr3t\n"));
    let hosts2 = http_get(port2, "/hosts.txt").unwrap();
    assert!(
        hosts2.contains("10.0.0.1") && hosts2.contains("10.0.0.2"),
        "{hosts2}"
    );
    let out = p.run(&["get", "dockerimages", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spec = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["ref"] == "stilt-e2e-hosts")
        .map(|i| i["spec"].clone())
        .unwrap();
    assert_eq!(spec["platform"], "linux/amd64");
    assert_eq!(spec["extraHosts"], serde_json::json!(["myhost:1.2.3.4"]));
    assert_eq!(
        spec["cacheFrom"],
        serde_json::json!(["stilt-test/busybox:latest"])
    );
    drop(up);
    drop(guard);
}

/// `custom_build` runs with Tilt's environment: `EXPECTED_*`, and for each of its `image_deps`
/// `TILT_IMAGE_MAP_i` (the image map's name) and `TILT_IMAGE_i` (the ref built locally). A
/// compose build has no registry, so no `EXPECTED_REGISTRY` (as in Tilt).
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn custom_build_env_names_its_image_deps() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-cbdep', 'base')\n\
         custom_build('stilt-e2e-cbenv', 'env | sort > env.txt && docker build -t $EXPECTED_REF --build-arg BASE=$TILT_IMAGE_0 app',\n\
         \x20            ['app'], image_deps=['stilt-e2e-cbdep'])\n",
    );
    p.write(
        "base/Dockerfile",
        "FROM stilt-test/busybox:latest\nRUN mkdir -p /www && echo base > /www/base.txt\n",
    );
    p.write(
        "app/Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    p.write("docker-compose.yml", &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-cbenv\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"));
    let up = p.up();
    let guard = scopeguard(p.dir.path().to_path_buf());
    wait_until(
        Duration::from_secs(120),
        "the app built FROM $TILT_IMAGE_0",
        || http_get(port, "/base.txt").as_deref() == Some("base\n"),
    );
    let env = std::fs::read_to_string(p.path("env.txt")).unwrap();
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    let base = p.get_json("imagemap", "stilt-e2e-cbdep").unwrap()["status"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(base.starts_with("stilt-e2e-cbdep:tilt-"), "{base}");
    assert_eq!(var("TILT_IMAGE_MAP_0").as_deref(), Some("stilt-e2e-cbdep"));
    assert_eq!(var("TILT_IMAGE_0"), Some(base));
    assert!(var("EXPECTED_REF").is_some_and(|r| r.starts_with("stilt-e2e-cbenv:tilt-build-")));
    assert_eq!(var("EXPECTED_IMAGE").as_deref(), Some("stilt-e2e-cbenv"));
    assert_eq!(var("EXPECTED_REGISTRY"), None);
    assert_eq!(var("TILT_IMAGE_1"), None);
    drop(up);
    drop(guard);
}

/// `initial_sync()`: a new container gets every file under the syncs before any edit (the
/// image here has none of them), ignored files excepted.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn initial_sync_fills_a_new_container() {
    let port = free_port();
    let p = Project::new(
        "docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-initial', '.', ignore=['www/secret.txt'], live_update=[\n\
           initial_sync(),\n\
           sync('www', '/www'),\n\
         ])\n",
    );
    let _guard = scopeguard(p.dir.path().to_path_buf());
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nRUN mkdir /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    p.write("www/index.html", "from the initial sync\n");
    p.write("www/css/site.css", "body{}\n");
    p.write("www/secret.txt", "not synced\n");
    p.write(
        "docker-compose.yml",
        &format!("services:\n  web:\n    image: stilt-e2e-initial\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"),
    );
    let up = p.up();
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(120), "the synced files served", || {
        http_get(port, "/").as_deref() == Some("from the initial sync\n")
            && http_get(port, "/css/site.css").as_deref() == Some("body{}\n")
    });
    assert_eq!(http_get(port, "/secret.txt"), None, "an ignored file");
    p.write("www/index.html", "edited\n");
    wait_until(Duration::from_secs(30), "the edit", || {
        http_get(port, "/").as_deref() == Some("edited\n")
    });
}
