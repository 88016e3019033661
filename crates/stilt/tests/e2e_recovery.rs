//! End to end: `stilt up` killed with SIGKILL and started again on the same port. What the dead
//! instance started is reaped (no orphan keeps a port, nothing runs twice) and what is unchanged
//! is adopted: a compose container and a Kubernetes pod survive the restart untouched.
//! Run with `cargo test -p stilt --test e2e_recovery -- --ignored` (the e2e tier of scripts/test);
//! the compose test needs dockerd and `stilt-test/busybox`, the Kubernetes one the dev cluster.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// `stilt up --stream --port PORT`, waited for until its API answers.
fn up_on(p: &Project, port: u16) -> Up {
    let up = p.spawn_up(&["up", "--stream", "--port", &port.to_string()], &[]);
    wait_until(Duration::from_secs(30), "the API server", || {
        p.run(&["get", "sessions"]).status.success()
    });
    up
}

/// SIGKILL: nothing of Stilt's own shutdown runs.
fn kill_9(up: &mut Up) {
    let mut child = up.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Prints the `stilt up` logs when the test fails.
struct LogsOnFailure<'a>(Vec<&'a Up>);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for up in &self.0 {
                eprintln!("--- {} ---\n{}", up.log.display(), up.log_text());
            }
        }
    }
}

fn serve_pid(p: &Project) -> Option<i32> {
    p.get_json("cmd", "web:serve")
        .and_then(|c| c["status"]["running"]["pid"].as_i64())
        .map(|p| p as i32)
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn after_a_kill_9_the_next_up_reaps_the_orphaned_server_and_serves_again() {
    let web_port = free_port();
    let port = free_port();
    // The server runs behind a shell that also backgrounds a child: both are in the group.
    let p = Project::new(&format!(
        "local_resource('web', serve_cmd='sleep 1000 & echo $! > child.pid; exec \"{}\" internal serve-dir --port {port} www', \
         readiness_probe=probe(period_secs=1, http_get=http_get_action(port={port}, path='/index.html')))\n",
        stilt_bin()
    ));
    p.write("www/index.html", "hello\n");
    let mut first = up_on(&p, web_port);
    wait_until(Duration::from_secs(30), "the first server", || {
        http_get(port, "/index.html").as_deref() == Some("hello\n")
    });
    let old_server = serve_pid(&p).expect("a running serve_cmd");
    let old_child = read_pids(&p.path("child.pid"))[0];
    kill_9(&mut first);
    // The orphans keep running (and hold the port) after Stilt died. (A request would make
    // the server log to the dead Stilt's pipe and die of SIGPIPE, so only connect.)
    assert!(pid_alive(old_server) && pid_alive(old_child));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    let second = up_on(&p, web_port);
    let _logs = LogsOnFailure(vec![&first, &second]);
    wait_until(Duration::from_secs(30), "a new server process", || {
        serve_pid(&p).is_some_and(|pid| pid != old_server)
    });
    assert!(!pid_alive(old_server), "the orphaned server was reaped");
    assert!(!pid_alive(old_child), "its backgrounded child too");
    wait_until(Duration::from_secs(30), "the resource to be ready", || {
        p.get_json("uiresource", "web")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    });
    assert_eq!(http_get(port, "/index.html").as_deref(), Some("hello\n"));
    let log = second.log_text();
    assert!(
        log.contains("stopped a process the previous Stilt left running"),
        "{log}"
    );
    assert!(!log.to_lowercase().contains("address in use"), "{log}");
    assert!(
        !log.to_lowercase().contains("address already in use"),
        "{log}"
    );
    // Exactly one server: the new one (the serve_cmd ran once in this instance).
    let cmd = p.get_json("cmd", "web:serve").unwrap();
    assert!(cmd["status"]["terminated"].is_null(), "{cmd}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_clean_stop_leaves_no_record_and_nothing_is_reaped() {
    let web_port = free_port();
    let p = Project::new("local_resource('web', serve_cmd='sleep 1000')\n");
    let mut up = up_on(&p, web_port);
    wait_until(Duration::from_secs(30), "the serve_cmd", || {
        serve_pid(&p).is_some()
    });
    let record = p
        .home
        .path()
        .join(format!("instances/{web_port}.leftovers.json"));
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("sleep 1000"), "{text}");
    up.interrupt();
    assert!(!record.exists(), "a clean stop removes the record");
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the compose project's containers and network, pass or fail.
struct ComposeCleanup(String);

impl Drop for ComposeCleanup {
    fn drop(&mut self) {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.0),
        ]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &format!("{}_default", self.0)]);
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn after_a_kill_9_an_unchanged_compose_service_is_adopted_not_recreated() {
    let web_port = free_port();
    let port = free_port();
    let p = Project::new("docker_compose('compose.yaml')\n");
    let project = compose_project(&p);
    let _cleanup = ComposeCleanup(project.clone());
    p.write(
        "compose.yaml",
        &format!(
            "services:\n  web:\n    image: stilt-test/busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/etc\"]\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"
        ),
    );
    let container = || {
        p.get_json("dockercomposeservice", "web")
            .and_then(|d| d["status"]["containerID"].as_str().map(str::to_string))
            .filter(|id| !id.is_empty())
    };
    let serving = || http_get(port, "/group").is_some_and(|b| b.contains("root"));
    let mut first = up_on(&p, web_port);
    wait_until(Duration::from_secs(120), "the service", || {
        serving() && container().is_some()
    });
    let id = container().unwrap();
    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &id]);
    kill_9(&mut first);

    let second = up_on(&p, web_port);
    let _logs = LogsOnFailure(vec![&first, &second]);
    wait_until(
        Duration::from_secs(120),
        "the service updated again",
        || {
            p.get_json("uiresource", "web")
                .is_some_and(|u| u["status"]["updateStatus"] == "ok")
                && container().is_some()
        },
    );
    assert_eq!(container().unwrap(), id, "the same container");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &id]),
        started,
        "not restarted"
    );
    assert!(serving());
    let log = second.log_text();
    assert!(
        log.contains("compose service web of project") && log.contains("is still running"),
        "{log}"
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn after_a_kill_9_an_unchanged_deployment_is_adopted_not_redeployed() {
    require_cluster();
    let web_port = free_port();
    let name = format!("e2e-adopt-{web_port}");
    let _cleanup = DeploymentCleanup(name.clone());
    let p = Project::new(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\ndocker_build('stilt-e2e-adopt', '.')\n",
    );
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "adopted\n");
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-e2e-adopt\n        ports: [{{containerPort: 8000}}]\n"),
    );
    let pods = || {
        kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "-o",
            "jsonpath={range .items[*]}{.metadata.uid} {.status.phase}{\"\\n\"}{end}",
        ])
    };
    let generation = || {
        kubectl(&[
            "get",
            "deploy",
            &name,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
    };
    let ready = |p: &Project| {
        p.get_json("uiresource", &name)
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    };
    let mut first = up_on(&p, web_port);
    wait_until(Duration::from_secs(180), "the pod running", || ready(&p));
    let before = pods();
    let gen_before = generation();
    assert!(before.contains("Running"), "{before}");
    kill_9(&mut first);

    let second = up_on(&p, web_port);
    let _logs = LogsOnFailure(vec![&first, &second]);
    wait_until(
        Duration::from_secs(180),
        "the resource updated again",
        || {
            p.get_json("uiresource", &name)
                .is_some_and(|u| u["status"]["updateStatus"] == "ok")
                && ready(&p)
        },
    );
    assert_eq!(pods(), before, "the same pod, never replaced");
    assert_eq!(generation(), gen_before, "the Deployment was not changed");
    let log = second.log_text();
    assert!(
        log.contains("Inputs unchanged since image stilt-e2e-adopt:tilt-")
            && !log.contains("Building Dockerfile"),
        "the unchanged image was adopted, not rebuilt:\n{log}"
    );
    // A changed input is built as ever.
    p.write("www/index.html", "changed\n");
    wait_until(Duration::from_secs(60), "the edit rebuilt", || {
        second.log_text().contains("Building Dockerfile")
    });
}
