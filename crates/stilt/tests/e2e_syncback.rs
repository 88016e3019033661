//! Syncback end to end, on the real Docker engine (a compose service) and on the real cluster
//! (a Deployment): a container writes files; triggering syncback makes the local tree match
//! (content and mode); deletions only with delete=True; protected files survive; a rename is a
//! local move; the synced files are not live-updated back, while a later local edit is.
//! Needs dockerd, `stilt-test/busybox`, and for the cluster test `scripts/dev-cluster env`.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const START_SH: &str = "#!/bin/sh\nmkdir -p /app/gen\necho generated-1 > /app/gen/out.txt\nprintf '#!/bin/sh\\necho hi\\n' > /app/gen/tool.sh\nchmod 755 /app/gen/tool.sh\nln -s out.txt /app/gen/latest\nexec httpd -f -p 8000 -h /app\n";
const DOCKERFILE: &str = "FROM stilt-test/busybox:latest\nCOPY app /app\nCOPY start.sh /start.sh\nCMD [\"sh\", \"/start.sh\"]\n";

/// Runs a shell script in the service's current container.
type Exec<'a> = &'a dyn Fn(&str) -> String;

fn last_run(p: &Project, name: &str) -> Value {
    p.get_json("syncback", name)
        .map(|s| s["status"]["lastRun"].clone())
        .unwrap_or(Value::Null)
}

/// Triggers a syncback resource and waits for its run to finish; returns the run's report.
fn trigger(p: &Project, name: &str) -> Value {
    let before = last_run(p, name)["finishTime"].clone();
    let out = p.run(&["trigger", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report = Value::Null;
    wait_until(Duration::from_secs(60), &format!("syncback {name}"), || {
        report = last_run(p, name);
        !report["finishTime"].is_null() && report["finishTime"] != before
    });
    assert_eq!(report["error"].as_str().unwrap_or(""), "", "{report}");
    report
}

/// A count of a report (zero is omitted from JSON).
fn num(r: &Value, field: &str) -> i64 {
    r[field].as_i64().unwrap_or(0)
}

fn read(p: &Project, rel: &str) -> Option<String> {
    std::fs::read_to_string(p.path(rel)).ok()
}

fn mode(p: &Project, rel: &str) -> u32 {
    std::fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o777
}

/// Every path any FileWatch reported as changed.
fn watched_changes(p: &Project) -> String {
    let out = p.run(&["get", "filewatches", "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|fw| {
            fw["status"]["fileEvents"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|ev| ev["seenFiles"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scenario both sources share. `lu` names the LiveUpdate that syncs `app` into `/app`.
fn scenario(p: &Project, exec: Exec, lu: &str) {
    // Files the container wrote come back with content and mode.
    let r = trigger(p, "pull");
    assert!(num(&r, "filesCopied") >= 2, "{r}");
    assert!(r["pod"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(read(p, "app/gen/out.txt").as_deref(), Some("generated-1\n"));
    assert_eq!(
        read(p, "app/gen/tool.sh").as_deref(),
        Some("#!/bin/sh\necho hi\n")
    );
    assert_eq!(mode(p, "app/gen/tool.sh"), 0o755);
    let link = std::fs::read_link(p.path("app/gen/latest")).expect("a symlink comes back as one");
    assert_eq!(link, std::path::Path::new("out.txt"));

    // Nothing synced back is live-updated into the container again.
    let synced_before =
        p.get_json("liveupdate", lu).unwrap()["status"]["containers"][0]["lastFileTimeSynced"]
            .clone();
    std::thread::sleep(Duration::from_secs(3));
    let changes = watched_changes(p);
    assert!(!changes.contains("gen/out.txt"), "echo seen: {changes}");
    assert_eq!(
        p.get_json("liveupdate", lu).unwrap()["status"]["containers"][0]["lastFileTimeSynced"],
        synced_before,
        "no live update after a syncback"
    );
    // A second run finds nothing to copy.
    let r = trigger(p, "pull");
    assert_eq!(num(&r, "filesCopied"), 0, "{r}");
    assert_eq!(num(&r, "bytesTransferred"), 0, "{r}");

    // A real local edit afterwards still syncs.
    p.write("app/gen/out.txt", "edited locally\n");
    wait_until(
        Duration::from_secs(30),
        "the local edit live-updated",
        || exec("cat /app/gen/out.txt") == "edited locally\n",
    );

    // Protected files, present locally and gone from the container.
    for f in ["app/Tiltfile", "app/.git/HEAD", "app/sub/Dockerfile"] {
        p.write(f, "local only\n");
    }
    wait_until(
        Duration::from_secs(30),
        "protected files live-updated",
        || exec("cat /app/sub/Dockerfile 2>/dev/null") == "local only\n",
    );
    exec(
        "rm -rf /app/Tiltfile /app/.git /app/sub/Dockerfile /app/gen/tool.sh; echo two > /app/gen/new.txt",
    );

    // Without delete=True nothing local is removed.
    let r = trigger(p, "pull");
    assert_eq!(num(&r, "filesDeleted"), 0, "{r}");
    assert!(p.path("app/gen/tool.sh").exists());
    assert_eq!(read(p, "app/gen/new.txt").as_deref(), Some("two\n"));

    // With it, files gone from the container go locally too; protected ones never.
    let r = trigger(p, "pull-delete");
    assert!(num(&r, "filesDeleted") >= 1, "{r}");
    assert!(!p.path("app/gen/tool.sh").exists(), "{r}");
    for f in ["app/Tiltfile", "app/.git/HEAD", "app/sub/Dockerfile"] {
        assert_eq!(
            read(p, f).as_deref(),
            Some("local only\n"),
            "{f} must survive"
        );
    }

    // A rename in the container is a local move, not a transfer.
    exec("mv /app/gen/new.txt /app/gen/renamed.txt");
    let r = trigger(p, "pull-delete");
    assert_eq!(num(&r, "filesRenamed"), 1, "{r}");
    assert_eq!(num(&r, "bytesTransferred"), 0, "{r}");
    assert!(!p.path("app/gen/new.txt").exists());
    assert_eq!(read(p, "app/gen/renamed.txt").as_deref(), Some("two\n"));

    // A dry run lists what would change and writes nothing.
    exec("echo three > /app/gen/dry.txt");
    let r = trigger(p, "pull-dry");
    assert_eq!(r["dryRun"], true, "{r}");
    assert!(r["changes"].to_string().contains("copy gen/dry.txt"), "{r}");
    assert!(!p.path("app/gen/dry.txt").exists());
}

fn write_sources(p: &Project) {
    p.write("Dockerfile", DOCKERFILE);
    p.write("start.sh", START_SH);
    p.write("app/index.html", "v1\n");
}

struct ComposeDown(std::path::PathBuf);

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["down", "--remove-orphans"])
            .current_dir(&self.0)
            .output();
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn syncback_from_a_compose_service() {
    let port = free_port();
    let p = Project::new(
        "load('ext://syncback', 'dc_syncback')\n\
         docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-sb', '.', live_update=[sync('app', '/app')])\n\
         dc_syncback('pull', 'web', '/app/', target_dir='app')\n\
         dc_syncback('pull-delete', 'web', '/app/', target_dir='app', delete=True)\n\
         dc_syncback('pull-dry', 'web', '/app/', target_dir='app', dry_run=True)\n\
         dc_syncback('pull-auto', 'web', '/app/gen/', target_dir='auto', interval=1)\n\
         dc_syncback('pull-some', 'web', '/app/', target_dir='some', paths=['gen'], ignore=['*.sh'])\n",
    );
    write_sources(&p);
    p.write(
        "docker-compose.yml",
        &format!("version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-sb\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"),
    );
    let project = compose_project(&p);
    let up = p.up();
    let _down = ComposeDown(p.dir.path().to_path_buf());
    wait_until(Duration::from_secs(120), "the service serving", || {
        http_get(port, "/").as_deref() == Some("v1\n")
    });
    let exec = |script: &str| -> String {
        let id = Command::new("docker")
            .args(["ps", "-q", "--filter"])
            .arg(format!("label=com.docker.compose.project={project}"))
            .output()
            .unwrap();
        let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
        let out = Command::new("docker")
            .args(["exec", &id, "sh", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The first live update makes the LiveUpdate report its container.
    p.write("app/index.html", "v2\n");
    wait_until(Duration::from_secs(30), "v2 live-updated", || {
        http_get(port, "/").as_deref() == Some("v2\n")
    });
    scenario(&p, &exec, "web:stilt-e2e-sb");

    // paths and ignore: only gen/, and no shell scripts in it.
    exec("cp /start.sh /app/gen/start.sh");
    let r = trigger(&p, "pull-some");
    assert!(num(&r, "filesCopied") >= 1, "{r}");
    assert!(p.path("some/gen/renamed.txt").exists(), "{r}");
    assert!(!p.path("some/index.html").exists(), "outside paths: {r}");
    assert!(!p.path("some/gen/start.sh").exists(), "ignored: {r}");

    // Continuous mode: no trigger, the file arrives on the timer.
    exec("echo tick > /app/gen/tick.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while read(&p, "auto/tick.txt").as_deref() != Some("tick\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the continuous syncback; its last run: {}\n{}",
            last_run(&p, "pull-auto"),
            up.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn syncback_from_the_newest_ready_pod() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-sb-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         load('ext://syncback', 'syncback')\n\
         k8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-sb-k8s', '.', live_update=[sync('app', '/app')])\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n\
         syncback('pull', 'deploy/{name}', '/app/', target_dir='app', rsync_path='/usr/bin/rsync')\n\
         syncback('pull-delete', 'deploy/{name}', '/app/', target_dir='app', delete=True)\n\
         syncback('pull-dry', 'deploy/{name}', '/app/', target_dir='app', dry_run=True)\n"
    ));
    write_sources(&p);
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: web\n        image: stilt-e2e-sb-k8s\n        ports: [{{containerPort: 8000}}]\n"),
    );
    let up = p.up();
    wait_until(
        Duration::from_secs(180),
        "the page through the forward",
        || http_get(port, "/").as_deref() == Some("v1\n"),
    );
    p.write("app/index.html", "v2\n");
    wait_until(Duration::from_secs(30), "v2 live-updated", || {
        http_get(port, "/").as_deref() == Some("v2\n")
    });
    let deploy = format!("deploy/{name}");
    let exec = |script: &str| kubectl(&["exec", &deploy, "--", "sh", "-c", script]);
    scenario(&p, &exec, &format!("{name}:stilt-e2e-sb-k8s"));

    // The report names the pod it read: the deployment's only ready pod.
    let pods = kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={name}"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let r = last_run(&p, "pull-dry");
    let pod = r["pod"].as_str().unwrap().to_string();
    assert!(
        pods.split_whitespace()
            .any(|n| pod == format!("default/{n}")),
        "{pod} not in {pods}"
    );
    assert_eq!(r["container"], "web");
    assert!(up.log_text().contains("rsync_path is ignored"));
    let _ = p.run(&["down"]);
}

/// A read-only container: the helper cannot be installed, so syncback downloads the directory
/// through the Docker archive API instead, and still writes only what changed.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn syncback_from_a_read_only_container_falls_back_to_the_archive_api() {
    let p = Project::new(
        "load('ext://syncback', 'syncback')\n\
         docker_compose('docker-compose.yml')\n\
         docker_build('stilt-e2e-sb-ro', '.')\n\
         syncback('pull', 'compose/web', '/app/', target_dir='app')\n",
    );
    write_sources(&p);
    p.write(
        "docker-compose.yml",
        "version: \"3\"\nservices:\n  web:\n    image: stilt-e2e-sb-ro\n    read_only: true\n    volumes:\n      - gen:/app\nvolumes:\n  gen: {}\n",
    );
    let up = p.up();
    let _down = ComposeDown(p.dir.path().to_path_buf());
    wait_until(Duration::from_secs(120), "the service running", || {
        p.get_json("dockercomposeservice", "web")
            .is_some_and(|d| d["status"]["containerState"]["running"] == true)
    });
    std::thread::sleep(Duration::from_secs(1));
    let r = trigger(&p, "pull");
    assert!(num(&r, "filesCopied") >= 2, "{r}");
    assert_eq!(
        read(&p, "app/gen/out.txt").as_deref(),
        Some("generated-1\n")
    );
    assert_eq!(mode(&p, "app/gen/tool.sh"), 0o755);
    assert!(
        up.log_text().contains("downloading all of /app"),
        "{}",
        up.log_text()
    );
    let again = trigger(&p, "pull");
    assert_eq!(num(&again, "filesCopied"), 0, "{again}");
}

/// A pod with a read-only root file system: the helper cannot be installed, so syncback reads
/// the directory with one `tar` over exec and still writes only what changed.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn syncback_from_a_read_only_pod_falls_back_to_tar() {
    require_cluster();
    let name = format!("e2e-sb-ro-{}", free_port());
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         load('ext://syncback', 'syncback')\n\
         k8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-sb-ro-k8s', '.')\n\
         syncback('pull', 'deploy/{name}', '/app/', target_dir='app')\n"
    ));
    write_sources(&p);
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: web\n        image: stilt-e2e-sb-ro-k8s\n        securityContext: {{readOnlyRootFilesystem: true}}\n        volumeMounts: [{{name: app, mountPath: /app}}]\n      volumes: [{{name: app, emptyDir: {{}}}}]\n"),
    );
    let up = p.up();
    wait_until(Duration::from_secs(180), "the pod ready", || {
        p.get_json("uiresource", &name)
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    });
    let deploy = format!("deploy/{name}");
    wait_until(Duration::from_secs(30), "the generated files", || {
        kubectl(&["exec", &deploy, "--", "cat", "/app/gen/out.txt"]) == "generated-1\n"
    });
    let r = trigger(&p, "pull");
    assert!(num(&r, "filesCopied") >= 2, "{r}");
    assert_eq!(
        read(&p, "app/gen/out.txt").as_deref(),
        Some("generated-1\n")
    );
    assert_eq!(mode(&p, "app/gen/tool.sh"), 0o755);
    assert!(up.log_text().contains("with tar"), "{}", up.log_text());
    let again = trigger(&p, "pull");
    assert_eq!(num(&again, "filesCopied"), 0, "{again}");
    let _ = p.run(&["down"]);
}
