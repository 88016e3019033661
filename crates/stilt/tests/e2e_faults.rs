//! End to end: faults a user can cause (missing directories and programs, runaway Tiltfiles,
//! commands that background children) must stay visible, bounded and stoppable; faults of the
//! environment (the Kubernetes API server unreachable, the Docker engine down or restarted) are
//! shown and recovered from without restarting Stilt. The Docker test runs a dockerd of its own
//! (`/run/stilt-fault-docker.sock`), never touching the main engine. A registry outage is a gate
//! (a TCP forwarder closed and opened again) in front of the shared registry, never the registry
//! itself; a full disk is a pod's 64 KiB memory emptyDir or a compose service's 64 KiB tmpfs.
//! Run with `cargo test -p stilt --test e2e_faults -- --ignored` (the e2e tier of scripts/test).

mod common;

use common::*;
use std::time::Duration;

fn log_of(p: &Project, resource: &str) -> String {
    String::from_utf8_lossy(&p.run(&["logs", resource]).stdout).into_owned()
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_serve_cmd_that_cannot_start_is_an_error_that_names_what_is_missing_and_backs_off() {
    let p = Project::new(
        "local_resource('nodir', serve_cmd='echo hi', serve_dir='/nonexistent')\n\
         local_resource('noprog', serve_cmd=['stilt-no-such-program', 'x'])\n",
    );
    let _up = p.up();
    wait_until(Duration::from_secs(30), "nodir to be an error", || {
        p.get_json("uiresource", "nodir")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "error")
    });
    let cmd = p.get_json("cmd", "nodir:serve").unwrap();
    let reason = cmd["status"]["terminated"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("serve_dir /nonexistent does not exist"),
        "{cmd}"
    );
    wait_until(Duration::from_secs(30), "noprog to be an error", || {
        p.get_json("uiresource", "noprog")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "error")
    });
    assert!(log_of(&p, "noprog").contains("program 'stilt-no-such-program' not found in PATH"));
    // The retry after the first backoff (1 s) has happened; without a backoff there would be
    // hundreds of attempts by now.
    wait_until(Duration::from_secs(30), "a retry", || {
        log_of(&p, "nodir").matches("Failed to start").count() >= 2
    });
    let attempts = log_of(&p, "nodir").matches("Failed to start").count();
    assert!(
        attempts <= 4,
        "{attempts} attempts:\n{}",
        log_of(&p, "nodir")
    );
}

const RUNAWAY: &str =
    "print('spinning')\nfor i in range(100000):\n    for j in range(100000):\n        pass\n";

fn wait_for_the_runaway_load(p: &Project) {
    wait_until(Duration::from_secs(30), "the runaway load to start", || {
        log_of(p, "(Tiltfile)").contains("spinning")
            || p.get_json("tiltfile", "(Tiltfile)")
                .is_some_and(|t| !t["status"]["running"].is_null())
    });
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn restoring_a_good_tiltfile_interrupts_a_runaway_load() {
    let p = Project::new(RUNAWAY);
    let mut up = p.up();
    wait_for_the_runaway_load(&p);
    p.write("Tiltfile", "local_resource('good', cmd='echo fixed')\n");
    wait_until(
        Duration::from_secs(60),
        "the good Tiltfile's resource",
        || p.get_json("uiresource", "good").is_some(),
    );
    let log = log_of(&p, "(Tiltfile)");
    assert!(
        log.contains("Tiltfile evaluation interrupted at") && log.contains("Tiltfile:"),
        "{log}"
    );
    up.interrupt();
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ctrl_c_stops_stilt_during_a_runaway_load() {
    let p = Project::new(RUNAWAY);
    let mut up = p.up();
    wait_for_the_runaway_load(&p);
    let pid = up.pid();
    // `interrupt` panics unless the process exits.
    up.interrupt();
    assert!(!pid_alive(pid));
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_cmd_that_backgrounds_a_child_is_done_when_it_exits() {
    let p = Project::new(
        "local_resource('bg', cmd='sh -c \"sleep 1000 &\"')\n\
         local_resource('after', cmd='echo after ran', resource_deps=['bg'])\n\
         local_resource('bgserve', serve_cmd='sleep 1000 & echo serve leader exits')\n",
    );
    let _up = p.up();
    wait_until(
        Duration::from_secs(60),
        "the queued resource to run",
        || {
            p.get_json("uiresource", "after")
                .is_some_and(|u| u["status"]["updateStatus"] == "ok")
        },
    );
    assert_eq!(
        p.get_json("uiresource", "bg").unwrap()["status"]["updateStatus"],
        "ok"
    );
    wait_until(
        Duration::from_secs(30),
        "the serve_cmd to be terminated",
        || {
            p.get_json("cmd", "bgserve:serve")
                .is_some_and(|c| !c["status"]["terminated"].is_null())
        },
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_failing_exec_probe_logs_what_it_printed() {
    let p = Project::new(
        "local_resource('probed', serve_cmd='sleep 1000', readiness_probe=probe(period_secs=1, \
         exec=exec_action(['sh', '-c', 'echo database is not up; exit 1'])))\n",
    );
    let _up = p.up();
    wait_until(
        Duration::from_secs(30),
        "the probe's output in the log",
        || log_of(&p, "probed").contains("[readiness probe: failure] database is not up"),
    );
    let log = log_of(&p, "probed");
    assert!(log.contains("exited with 1"), "{log}");
}

const PEM_LINE_1: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
const PEM_LINE_2: &str = "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu";

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn secrets_are_redacted_from_the_first_load_and_across_lines() {
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{PEM_LINE_1}\n{PEM_LINE_2}\n-----END PRIVATE KEY-----\n"
    );
    let p = Project::new(
        "allow_k8s_contexts('stilt-dev')\n\
         k8s_yaml('secret.yaml')\n\
         print('the key: ' + read_file('key.pem'))\n\
         local_resource('leak', cmd='cat key.pem; echo token=supersecret-token')\n",
    );
    p.write("key.pem", &pem);
    let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
    p.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\nstringData:\n  key.pem: |\n{indented}  token: supersecret-token\n"
        ),
    );
    let up = p.up();
    wait_until(Duration::from_secs(60), "the cmd to have run", || {
        p.get_json("uiresource", "leak")
            .is_some_and(|u| u["status"]["updateStatus"] == "ok")
    });
    let logs = String::from_utf8_lossy(&p.run(&["logs"]).stdout).into_owned();
    let terminal = up.log_text();
    for (sink, text) in [("stilt logs", &logs), ("the terminal", &terminal)] {
        for secret in [PEM_LINE_1, PEM_LINE_2, "supersecret-token"] {
            assert!(!text.contains(secret), "{sink} shows {secret}:\n{text}");
        }
    }
    assert!(logs.contains("[redacted secret tls:key.pem]"), "{logs}");
    assert!(logs.contains("[redacted secret tls:token]"), "{logs}");
}

/// A TCP proxy in front of the cluster's API server that can be cut (every connection closed,
/// new ones dropped at once) and restored: an API-server outage without touching the cluster.
struct Proxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2, upstream) = (up.clone(), conns.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut held = conns2.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The dev cluster's kubeconfig with its server replaced by `server` (certificates stay valid:
/// the proxy is on 127.0.0.1 too).
fn kubeconfig_via(p: &Project, server: &str) -> std::path::PathBuf {
    let real = std::env::var("KUBECONFIG").unwrap();
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.contains("server: https://127.0.0.1:6443"), "{text}");
    let path = p.home.path().join("kubeconfig-via-proxy");
    std::fs::write(
        &path,
        text.replace(
            "server: https://127.0.0.1:6443",
            &format!("server: {server}"),
        ),
    )
    .unwrap();
    path
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_api_server_outage_is_shown_and_recovered_from_without_a_restart() {
    require_cluster();
    let proxy = Proxy::start("127.0.0.1:6443");
    let name = format!("e2e-outage-{}", proxy.port);
    let _cleanup = DeploymentCleanup(name.clone());
    let forward = free_port();
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\nk8s_resource('{name}', port_forwards=['{forward}:8000'])\n"
    ));
    // A numbered line a second in the pod's log, to see the log stream resume without repeats.
    // `;`, not `&&`: with `a && b && (loop) &` the whole list runs in the background, httpd
    // can start before /www exists, and the restarted container prints "tick 1" again.
    let script = "mkdir -p /www; echo up > /www/index.html; \
                  (i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done) & \
                  exec httpd -f -p 8000 -h /www";
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, {script:?}]\n"),
    );
    let kubeconfig = kubeconfig_via(&p, &format!("https://127.0.0.1:{}", proxy.port));
    let port = free_port().to_string();
    let up = p.spawn_up(
        &["up", "--stream", "--port", &port],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(30), "the API server", || {
        p.run(&["get", "sessions"]).status.success()
    });
    let runtime_ok = || {
        p.get_json("uiresource", &name)
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    };
    let cluster_error = || {
        p.get_json("cluster", "default").map(|c| {
            c["status"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    };
    let kd_waiting = || {
        p.get_json("kd", &name).and_then(|k| {
            k["status"]["waiting"]["reason"]
                .as_str()
                .map(str::to_string)
        })
    };
    let pod_uids = || -> Vec<String> {
        p.get_json("kd", &name)
            .and_then(|k| k["status"]["pods"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|pod| pod["phase"] == "Running" && pod["deleting"] != true)
            .filter_map(|pod| pod["uid"].as_str().map(str::to_string))
            .collect()
    };
    // The tick numbers in the resource's log, in order.
    let ticks = || -> Vec<u64> {
        log_of(&p, &name)
            .lines()
            .filter_map(|l| {
                l.rsplit_once("tick ")
                    .and_then(|(_, n)| n.trim().parse().ok())
            })
            .collect()
    };
    wait_until(Duration::from_secs(120), "the pod running", runtime_ok);
    let before = pod_uids();
    assert_eq!(before.len(), 1, "{before:?}");
    wait_until(Duration::from_secs(60), "the forward serving", || {
        http_get(forward, "/").as_deref() == Some("up\n")
    });
    wait_until(Duration::from_secs(30), "the pod's log", || {
        !ticks().is_empty()
    });

    proxy.cut();
    // The health check (every 15 s) finds the API server gone.
    wait_until(Duration::from_secs(60), "the cluster error", || {
        cluster_error().is_some_and(|e| e.contains("cannot reach the Kubernetes cluster"))
    });
    wait_until(Duration::from_secs(10), "the discovery waiting", || {
        kd_waiting().is_some_and(|r| r.starts_with("ClusterUnavailable"))
    });
    assert!(
        log_of(&p, "(Tiltfile)").contains("Cluster status error"),
        "{}",
        log_of(&p, "(Tiltfile)")
    );
    // An update asked for during the outage waits for the cluster, and says so.
    let builds = || {
        p.get_json("uiresource", &name)
            .and_then(|u| u["status"]["buildHistory"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let builds_before = builds();
    assert!(p.run(&["trigger", &name]).status.success());
    wait_until(Duration::from_secs(10), "the update held", || {
        p.get_json("uiresource", &name).is_some_and(|u| {
            u["status"]["waiting"]["reason"] == "waiting-for-cluster"
                && u["status"]["waiting"]["on"][0]["kind"] == "Cluster"
                && u["status"]["waiting"]["on"][0]["name"] == "default"
                && u["status"]["updateStatus"] == "pending"
        })
    });
    assert_eq!(builds(), builds_before, "no update ran during the outage");

    proxy.restore();
    wait_until(Duration::from_secs(60), "the cluster healthy again", || {
        cluster_error().is_some_and(|e| e.is_empty())
    });
    wait_until(
        Duration::from_secs(10),
        "the discovery no longer waiting",
        || kd_waiting().is_none(),
    );
    wait_until(Duration::from_secs(60), "the held update ran", || {
        builds() > builds_before
            && p.get_json("uiresource", &name)
                .is_some_and(|u| u["status"]["waiting"].is_null())
    });
    // The port-forward reconnected, and the log stream resumed without repeating a line.
    wait_until(Duration::from_secs(60), "the forward serving again", || {
        http_get(forward, "/").as_deref() == Some("up\n")
    });
    let at_restore = ticks().last().copied().unwrap_or(0);
    wait_until(
        Duration::from_secs(60),
        "new log lines after the outage",
        || ticks().last().is_some_and(|n| *n > at_restore + 2),
    );
    let seen = ticks();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a log line shown twice: {seen:?}");
    // The pod watch resumed: a pod replaced behind Stilt's back (through the real address) is
    // seen, without restarting Stilt.
    kubectl(&[
        "delete",
        "pod",
        "-l",
        &format!("app={name}"),
        "--wait=false",
    ]);
    wait_until(Duration::from_secs(120), "the replacement pod seen", || {
        let now = pod_uids();
        now.len() == 1 && now != before
    });
    wait_until(
        Duration::from_secs(60),
        "the resource healthy again",
        runtime_ok,
    );
    assert!(up.child.is_some(), "the same stilt up throughout");
}

/// A dockerd of the test's own (never the main engine): its own socket, data-root, exec-root,
/// pidfile and bridge, no iptables rules, so it can be stopped and started at will. Not
/// `--bridge=none`: a dockerd started so deletes `docker0`, the main engine's bridge.
struct FaultDockerd {
    log: std::path::PathBuf,
    child: std::sync::Mutex<Option<std::process::Child>>,
}

const FAULT_DOCKER_HOST: &str = "unix:///run/stilt-fault-docker.sock";
const FAULT_DOCKER_PIDFILE: &str = "/run/stilt-fault-docker.pid";
const FAULT_DOCKER_DATA: &str = "/var/lib/stilt-fault-docker";
const FAULT_DOCKER_BRIDGE: &str = "stiltfault0";

/// The test dockerd's own bridge (dockerd uses a named bridge but does not create it).
fn ensure_fault_bridge() {
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("ip (iproute2)")
    };
    if ip(&["link", "show", FAULT_DOCKER_BRIDGE]).status.success() {
        return;
    }
    for args in [
        &["link", "add", FAULT_DOCKER_BRIDGE, "type", "bridge"][..],
        &["addr", "add", "172.31.254.1/24", "dev", FAULT_DOCKER_BRIDGE],
        &["link", "set", FAULT_DOCKER_BRIDGE, "up"],
    ] {
        let out = ip(args);
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl FaultDockerd {
    fn start(log: std::path::PathBuf) -> FaultDockerd {
        let d = FaultDockerd {
            log,
            child: Default::default(),
        };
        // One left by an aborted earlier run (ours: found by our own pidfile).
        d.stop();
        ensure_fault_bridge();
        d.launch();
        d
    }

    fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = std::process::Command::new("dockerd")
            .args([
                &format!("--host={FAULT_DOCKER_HOST}"),
                &format!("--data-root={FAULT_DOCKER_DATA}"),
                "--exec-root=/run/stilt-fault-docker",
                &format!("--pidfile={FAULT_DOCKER_PIDFILE}"),
                &format!("--bridge={FAULT_DOCKER_BRIDGE}"),
                "--iptables=false",
                "--ip6tables=false",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (scripts/docker-engine installs it)");
        *self.child.lock().unwrap() = Some(child);
        wait_until(Duration::from_secs(60), "the test's dockerd", || {
            self.docker(&["version", "--format", "{{.Server.Version}}"])
                .is_some()
        });
    }

    /// SIGTERM to the daemon and wait for it to exit (its containers stop with it).
    fn stop(&self) {
        let Some(pid) = std::fs::read_to_string(FAULT_DOCKER_PIDFILE)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let is_ours = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("stilt-fault-docker"));
        if !is_ours {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        wait_until(
            Duration::from_secs(60),
            "the test's dockerd to exit",
            || !pid_alive(pid),
        );
    }

    /// `docker ARGS` against this daemon; stdout on success.
    fn docker(&self, args: &[&str]) -> Option<String> {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", FAULT_DOCKER_HOST)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for FaultDockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_docker_engine_down_at_start_and_restarted_during_up_is_survived() {
    let p = Project::new(
        "docker_build('stilt-e2e-fault', '.', live_update=[sync('www', '/www')])\ndocker_compose('compose.yaml')\n",
    );
    let engine = FaultDockerd::start(p.home.path().join("dockerd.log"));
    // The engine has its own image store: give it the base image.
    let save = std::process::Command::new("docker")
        .args(["save", "stilt-test/busybox:latest"])
        .output()
        .unwrap();
    assert!(save.status.success(), "scripts/test-images builds it");
    let mut load = std::process::Command::new("docker")
        .args(["load"])
        .env("DOCKER_HOST", FAULT_DOCKER_HOST)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    load.stdin.take().unwrap().write_all(&save.stdout).unwrap();
    assert!(load.wait().unwrap().success());

    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY msg.txt /msg.txt\nCOPY www /www\n\
         CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo container started; while true; do sleep 1; done\"]\n",
    );
    p.write("msg.txt", "v0\n");
    p.write("www/index.html", "lu0\n");
    // No network: this engine has no bridge.
    p.write(
        "compose.yaml",
        "services:\n  app:\n    image: stilt-e2e-fault\n    network_mode: none\n",
    );
    // Not running yet when Stilt starts (a laptop's Docker still starting up).
    engine.stop();
    let port = free_port().to_string();
    let up = p.spawn_up(
        &["up", "--stream", "--port", &port],
        &[("DOCKER_HOST", FAULT_DOCKER_HOST)],
    );
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(30), "the API server", || {
        p.run(&["get", "sessions"]).status.success()
    });
    let container = || {
        p.get_json("dockercomposeservice", "app")?["status"]["containerID"]
            .as_str()
            .map(str::to_string)
    };
    let cat = |path: &str| engine.docker(&["exec", &container()?, "cat", path]);
    let content = || cat("/msg.txt");
    let builds = || -> Vec<serde_json::Value> {
        p.get_json("uiresource", "app")
            .and_then(|u| u["status"]["buildHistory"].as_array().cloned())
            .unwrap_or_default()
    };
    let held = || {
        p.get_json("uiresource", "app")
            .is_some_and(|u| u["status"]["waiting"]["reason"] == "waiting-for-cluster")
    };
    // As Tilt, a first update is not held by the engine being down: it fails and says why.
    wait_until(Duration::from_secs(60), "the first build to fail", || {
        builds().first().is_some_and(|b| {
            b["error"]
                .as_str()
                .unwrap_or_default()
                .contains("cannot reach the Docker engine")
        })
    });
    engine.launch();
    p.write("msg.txt", "v1\n");
    // An edit after the engine came up builds: the failed connection was not kept.
    wait_until(Duration::from_secs(120), "v1 in the container", || {
        content().as_deref() == Some("v1")
    });

    // Down: a build now fails and says so, or, when the health check saw the engine go first,
    // waits for it; which of the two depends on where the 15 s health poll happens to be.
    let built_before = builds().len();
    engine.stop();
    p.write("msg.txt", "v2\n");
    wait_until(Duration::from_secs(60), "the failed or held build", || {
        let failed = builds().len() > built_before
            && builds()
                .first()
                .is_some_and(|b| !b["error"].as_str().unwrap_or_default().is_empty());
        failed || held()
    });
    let n = builds().len();

    // Back: the next change builds and runs, in the same `stilt up`.
    engine.launch();
    p.write("msg.txt", "v3\n");
    wait_until(Duration::from_secs(120), "v3 in the container", || {
        content().as_deref() == Some("v3")
    });
    let history = builds();
    assert!(history.len() > n, "{history:?}");
    assert_eq!(
        history[0]["error"].as_str().unwrap_or_default(),
        "",
        "{history:?}"
    );

    // A live update into the running service.
    p.write("www/index.html", "lu1\n");
    wait_until(Duration::from_secs(60), "lu1 live-updated", || {
        cat("/www/index.html").as_deref() == Some("lu1")
    });
    let live = container().unwrap();
    let starts = || {
        log_of(&p, "app")
            .lines()
            .filter(|l| l.trim_end().ends_with("│ container started"))
            .count()
    };
    // At least two containers have run (v1's, and v3's after the rebuild; v1's may also have
    // been started again after the engine came back). A new container's log is picked up by a
    // 1 s poll, so its line can arrive after the live update: count once it has been still for
    // 3 s.
    let mut starts_before = usize::MAX;
    wait_until(
        Duration::from_secs(30),
        "the containers' log to settle",
        || {
            std::thread::sleep(Duration::from_secs(3));
            let now = starts();
            let settled = now == starts_before && now >= 2;
            starts_before = now;
            settled
        },
    );

    // The engine restarts under it: the same container runs again, with the live-updated file,
    // and its log is followed from the new start (no line shown twice).
    engine.stop();
    engine.launch();
    wait_until(
        Duration::from_secs(60),
        "the same container running again",
        || {
            engine
                .docker(&["inspect", "--format", "{{.State.Running}}", &live])
                .as_deref()
                == Some("true")
        },
    );
    assert_eq!(cat("/www/index.html").as_deref(), Some("lu1"));
    wait_until(Duration::from_secs(30), "its log followed again", || {
        starts() == starts_before + 1
    });

    // Live update resumes, into that container.
    p.write("www/index.html", "lu2\n");
    wait_until(Duration::from_secs(60), "lu2 live-updated", || {
        cat("/www/index.html").as_deref() == Some("lu2")
    });
    assert_eq!(container().as_deref(), Some(live.as_str()), "not recreated");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(starts(), starts_before + 1, "{}", log_of(&p, "app"));
    assert!(up.child.is_some(), "the same stilt up throughout");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_process_group_that_ignores_sigterm_is_killed_whole_on_stop() {
    // The leader and its background child both ignore SIGTERM (inherited), so only the SIGKILL
    // to the whole group after the grace period ends them.
    let p = Project::new(
        "local_resource('stubborn', serve_cmd='trap \"\" TERM; sleep 1000 & echo $$ $! > pids; wait')\n",
    );
    let mut up = p.up();
    wait_until(Duration::from_secs(30), "the pids", || {
        read_pids_on_one_line(&p).len() == 2
    });
    let pids = read_pids_on_one_line(&p);
    let t0 = std::time::Instant::now();
    up.interrupt();
    let took = t0.elapsed();
    for pid in pids {
        assert!(!pid_alive(pid), "{pid} survived the stop");
    }
    // Stilt's shutdown grace is 5 s: the SIGKILL came after it, not before.
    assert!(took >= Duration::from_secs(4), "{took:?}");
}

fn read_pids_on_one_line(p: &Project) -> Vec<i32> {
    std::fs::read_to_string(p.path("pids"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_container_killed_in_its_pod_gets_its_live_updated_files_back_without_a_rebuild() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-kill-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-kill', '.', live_update=[sync('www', '/www')])\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    // The server is not PID 1 (which ignores a SIGKILL from inside its namespace): killing it
    // ends the container, and the kubelet starts a new one in the same pod from the image.
    p.write(
        "Dockerfile",
        "FROM stilt-test/busybox:latest\nCOPY www /www\n\
         CMD [\"sh\", \"-c\", \"httpd -f -p 8000 -h /www; echo server gone\"]\n",
    );
    p.write("www/index.html", "image v1\n");
    p.write(
        "deploy.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-e2e-kill\n        ports: [{{containerPort: 8000}}]\n"
        ),
    );
    let up = p.up();
    let _log = LogOnFailure(&up);
    let pod_and_restarts = || {
        let out = kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
        ]);
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        match lines.as_slice() {
            [one] => {
                let f: Vec<&str> = one.split_whitespace().collect();
                (f.len() == 3).then(|| {
                    (
                        f[0].to_string(),
                        f[1].parse::<u32>().unwrap_or(0),
                        f[2] == "true",
                    )
                })
            }
            _ => None,
        }
    };
    wait_until(Duration::from_secs(180), "v1 through the forward", || {
        http_get(port, "/").as_deref() == Some("image v1\n")
    });
    p.write("www/index.html", "live v2\n");
    wait_until(Duration::from_secs(60), "v2 live-updated", || {
        http_get(port, "/").as_deref() == Some("live v2\n")
    });
    let (pod, restarts, _) = pod_and_restarts().expect("one running pod");
    let image_before = p.get_json("imagemap", "stilt-e2e-kill").unwrap()["status"]["image"].clone();
    let builds_before = p.get_json("uiresource", &name).unwrap()["status"]["buildHistory"]
        .as_array()
        .map_or(0, |b| b.len());

    kubectl(&[
        "exec",
        &pod,
        "-c",
        "web",
        "--",
        "sh",
        "-c",
        "kill -9 $(pidof httpd)",
    ]);
    wait_until(
        Duration::from_secs(120),
        "the container restarted in its pod",
        || pod_and_restarts().is_some_and(|(p2, r, ready)| p2 == pod && r > restarts && ready),
    );
    // The new container starts from the image (v1); Stilt syncs the live-updated file back.
    wait_until(
        Duration::from_secs(60),
        "v2 replayed into the new container",
        || http_get(port, "/").as_deref() == Some("live v2\n"),
    );
    assert_eq!(
        p.get_json("imagemap", "stilt-e2e-kill").unwrap()["status"]["image"],
        image_before,
        "replay, not a rebuild"
    );
    let builds_after = p.get_json("uiresource", &name).unwrap()["status"]["buildHistory"]
        .as_array()
        .map_or(0, |b| b.len());
    assert!(
        builds_after <= builds_before + 1,
        "{builds_before} → {builds_after}"
    );

    // Live update goes on into the new container.
    p.write("www/index.html", "live v3\n");
    wait_until(Duration::from_secs(60), "v3 live-updated", || {
        http_get(port, "/").as_deref() == Some("live v3\n")
    });
    assert_eq!(pod_and_restarts().map(|(p2, ..)| p2), Some(pod));
    assert!(p.run(&["down"]).status.success());
}

/// A TCP gate in front of a server: while open it forwards every connection to `upstream`;
/// closed, its listener is gone (connections are refused) and the connections it carried are
/// cut. Opened again on the same port.
struct Gate {
    port: u16,
    upstream: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    acceptor: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Gate {
    fn open_to(upstream: &str) -> Gate {
        let gate = Gate {
            port: free_port(),
            upstream: upstream.to_string(),
            stop: Default::default(),
            conns: Default::default(),
            acceptor: Default::default(),
        };
        gate.open();
        gate
    }

    fn open(&self) {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.stop.store(false, Ordering::SeqCst);
        let (stop, conns, upstream) =
            (self.stop.clone(), self.conns.clone(), self.upstream.clone());
        let acceptor = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut held = conns.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
            // The listener is dropped here: the port refuses connections.
        });
        *self.acceptor.lock().unwrap() = Some(acceptor);
    }

    fn close(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.acceptor.lock().unwrap().take() {
            t.join().unwrap();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "the gate's port still accepts"
        );
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_registry_down_during_a_push_fails_the_update_clearly_and_the_next_change_pushes() {
    require_cluster();
    // Pushes go through the gate; the cluster pulls from the registry itself.
    let gate = Gate::open_to("127.0.0.1:5000");
    let port = free_port();
    let name = format!("e2e-regdown-{port}");
    let _cleanup = DeploymentCleanup(name.clone());
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         default_registry('localhost:{gate}', host_from_cluster='localhost:5000')\n\
         k8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-regdown', '.')\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n",
        gate = gate.port
    ));
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "v1\n");
    p.write("deploy.yaml", &web_deployment(&name, "stilt-e2e-regdown"));
    let identity = NoRegistryDiscovery::create(&p, &name, "stilt-dev");
    let up = identity.spawn_up(&p);
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(30), "the API server", || {
        p.run(&["get", "sessions"]).status.success()
    });
    let builds = || -> Vec<serde_json::Value> {
        p.get_json("uiresource", &name)
            .and_then(|u| u["status"]["buildHistory"].as_array().cloned())
            .unwrap_or_default()
    };
    let pods = || {
        kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .trim()
        .to_string()
    };
    wait_until(Duration::from_secs(180), "v1 through the forward", || {
        http_get(port, "/").as_deref() == Some("v1\n")
    });
    // Pushed through the gate (the Tiltfile's registry), pulled under host_from_cluster.
    let pushed = format!("Pushing localhost:{}/stilt-e2e-regdown:tilt-", gate.port);
    assert!(log_of(&p, &name).contains(&pushed), "{}", log_of(&p, &name));
    let image = p.get_json("imagemap", "stilt-e2e-regdown").unwrap()["status"]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        image.starts_with("localhost:5000/stilt-e2e-regdown:tilt-"),
        "{image}"
    );
    let first_pod = pods();
    let n = builds().len();

    // Down: the update fails at the push, says which registry, and the running pod stays.
    gate.close();
    p.write("www/index.html", "v2\n");
    wait_until(Duration::from_secs(120), "the failed push", || {
        let b = builds();
        b.len() > n && !b[0]["error"].as_str().unwrap_or_default().is_empty()
    });
    let error = builds()[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let registry = format!("localhost:{}", gate.port);
    assert!(
        error.contains(&format!("pushing {registry}/stilt-e2e-regdown:tilt-"))
            && error.contains("connection refused"),
        "{error}"
    );
    let log = log_of(&p, &name);
    assert!(log.contains(&error), "{log}");
    assert_eq!(http_get(port, "/").as_deref(), Some("v1\n"));
    assert_eq!(pods(), first_pod, "the running pod is kept");
    let n = builds().len();

    // Back: the next change pushes the same image (its build is cached) and deploys it.
    gate.open();
    p.write("www/index.html", "v2\n");
    wait_until(Duration::from_secs(180), "v2 through the forward", || {
        http_get(port, "/").as_deref() == Some("v2\n")
    });
    let history = builds();
    assert!(history.len() > n, "{history:?}");
    assert_eq!(
        history[0]["error"].as_str().unwrap_or_default(),
        "",
        "{history:?}"
    );
    assert!(up.child.is_some(), "the same stilt up throughout");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_full_disk_fails_a_pod_sync_visibly_and_leaves_no_partial_file() {
    require_cluster();
    let port = free_port();
    let name = format!("e2e-diskfull-{port}");
    let _cleanup = DeploymentCleanup(name.clone());
    // data/ is in the build context (so it is watched) but not in the image: the rebuild a
    // failed live update falls back to makes the same image, and the pod that saw the failure
    // stays to be inspected.
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\n\
         docker_build('stilt-e2e-diskfull', '.', live_update=[sync('data', '/data')])\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "up\n");
    p.write("data/.keep", "");
    // /data: a 64 KiB tmpfs (the kubelet sizes a memory emptyDir by its sizeLimit).
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-e2e-diskfull\n        ports: [{{containerPort: 8000}}]\n        volumeMounts: [{{name: data, mountPath: /data}}]\n      volumes:\n      - name: data\n        emptyDir: {{medium: Memory, sizeLimit: 64Ki}}\n"),
    );
    let up = p.up();
    let _log = LogOnFailure(&up);
    wait_until(
        Duration::from_secs(180),
        "the page through the forward",
        || http_get(port, "/").as_deref() == Some("up\n"),
    );
    let pod = kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={name}"),
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .trim()
    .to_string();
    assert!(!pod.is_empty() && !pod.contains(' '), "{pod:?}");
    let in_pod = |args: &[&str]| {
        let mut a = vec!["exec", pod.as_str(), "-c", "web", "--"];
        a.extend_from_slice(args);
        kubectl(&a)
    };
    let disk = FullDisk {
        p: &p,
        resource: &name,
        live_update: format!("{name}:stilt-e2e-diskfull"),
        exec: &in_pod,
    };
    disk.assert_data_is_64_kib();
    // A small file syncs; 300 KB into 64 KiB fails, naming the file and the reason.
    disk.sync_a_small_file_then_fail_on_a_big_one();
    // Nothing half-written, no temporary file: checked in the container that saw the failure,
    // at once (before any rebuild) and again after the rebuild the failure falls back to.
    disk.assert_only_the_small_file();
    wait_until(
        Duration::from_secs(60),
        "the error in the resource log",
        || log_of(&p, &name).contains("No space left on device"),
    );
    disk.wait_for_the_fallback_rebuild();
    disk.assert_only_the_small_file();
    assert_eq!(in_pod(&["cat", "/data/small.txt"]), "small\n");
    assert_eq!(http_get(port, "/").as_deref(), Some("up\n"));

    // Once the file that did not fit is gone, live update works again in the same pod.
    disk.remove_the_big_file_and_sync_again();
}

/// Removes a compose project's containers and network, pass or fail.
struct ComposeCleanup(String);

impl Drop for ComposeCleanup {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            std::process::Command::new("docker")
                .args(args)
                .stderr(std::process::Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let label = format!("label=com.docker.compose.project={}", self.0);
        for id in docker(&["ps", "-aq", "--filter", &label]).split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &format!("{}_default", self.0)]);
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_full_disk_fails_a_compose_sync_visibly_and_leaves_no_partial_file() {
    let port = free_port();
    // As in the pod test: data/ is watched but not in the image, so the fallback rebuild makes
    // the same image and compose keeps the container that saw the failure.
    let p = Project::new(
        "docker_compose('compose.yaml')\n\
         docker_build('stilt-e2e-diskfull-dc', '.', live_update=[sync('data', '/data')])\n",
    );
    let _cleanup = ComposeCleanup(compose_project(&p));
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n");
    p.write("www/index.html", "up\n");
    p.write("data/.keep", "");
    p.write(
        "compose.yaml",
        &format!("services:\n  app:\n    image: stilt-e2e-diskfull-dc\n    ports: ['127.0.0.1:{port}:8000']\n    tmpfs: ['/data:size=65536']\n"),
    );
    let up = p.up();
    let _log = LogOnFailure(&up);
    wait_until(Duration::from_secs(120), "the page", || {
        http_get(port, "/").as_deref() == Some("up\n")
    });
    let container = p.get_json("dockercomposeservice", "app").unwrap()["status"]["containerID"]
        .as_str()
        .unwrap()
        .to_string();
    let in_container = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(["exec", &container])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let disk = FullDisk {
        p: &p,
        resource: "app",
        live_update: "app:stilt-e2e-diskfull-dc".into(),
        exec: &in_container,
    };
    disk.assert_data_is_64_kib();
    disk.sync_a_small_file_then_fail_on_a_big_one();
    disk.assert_only_the_small_file();
    assert!(
        log_of(&p, "app").contains("No space left on device"),
        "{}",
        log_of(&p, "app")
    );
    disk.wait_for_the_fallback_rebuild();
    assert_eq!(
        p.get_json("dockercomposeservice", "app").unwrap()["status"]["containerID"],
        container.as_str(),
        "the same container"
    );
    disk.assert_only_the_small_file();
    assert_eq!(http_get(port, "/").as_deref(), Some("up\n"));

    disk.remove_the_big_file_and_sync_again();
}

/// The steps both full-disk tests take: `/data` is a 64 KiB tmpfs synced from `data/`, in a
/// container reached by `exec` (argv → stdout).
struct FullDisk<'a> {
    p: &'a Project,
    resource: &'a str,
    live_update: String,
    exec: &'a dyn Fn(&[&str]) -> String,
}

impl FullDisk<'_> {
    fn assert_data_is_64_kib(&self) {
        let df = (self.exec)(&["df", "-k", "/data"]);
        assert!(
            df.lines()
                .nth(1)
                .is_some_and(|l| l.split_whitespace().nth(1) == Some("64")),
            "/data is not a 64 KiB tmpfs:\n{df}"
        );
    }

    fn live_update_failure(&self) -> Option<String> {
        self.p
            .get_json("liveupdate", &self.live_update)
            .and_then(|l| {
                l["status"]["failed"]["message"]
                    .as_str()
                    .map(str::to_string)
            })
    }

    /// A small file syncs; then 300 KB into 64 KiB fails, and the failure names the file and
    /// the reason.
    fn sync_a_small_file_then_fail_on_a_big_one(&self) {
        self.p.write("data/small.txt", "small\n");
        wait_until(Duration::from_secs(60), "the small file synced", || {
            (self.exec)(&["cat", "/data/small.txt"]) == "small\n"
        });
        assert_eq!(self.live_update_failure(), None);
        self.p.write("data/big.bin", &"x".repeat(300_000));
        // The status holds the failure only until the fallback rebuild starts (Tilt forgets it
        // then too); the resource's log keeps the line.
        let mut message = None;
        wait_until(Duration::from_secs(60), "the failed sync", || {
            message = self.live_update_failure().or_else(|| {
                log_of(self.p, self.resource)
                    .lines()
                    .find(|l| l.contains("UpdateFailed"))
                    .map(str::to_string)
            });
            message.is_some()
        });
        let message = message.unwrap();
        assert!(
            message.contains("/data/big.bin") && message.contains("No space left on device"),
            "{message}"
        );
    }

    /// Nothing half-written and no temporary file: `/data` holds the small file alone.
    fn assert_only_the_small_file(&self) {
        let ls = (self.exec)(&["ls", "-a", "/data"]);
        let mut names: Vec<&str> = ls.split_whitespace().collect();
        names.sort();
        assert_eq!(names, [".", "..", "small.txt"], "{ls}");
    }

    fn wait_for_the_fallback_rebuild(&self) {
        let ui = || self.p.get_json("uiresource", self.resource);
        wait_until(Duration::from_secs(120), "the fallback rebuild", || {
            ui().is_some_and(|u| {
                u["status"]["buildHistory"]
                    .as_array()
                    .is_some_and(|b| b.len() >= 2)
                    && u["status"]["updateStatus"] == "ok"
            })
        });
    }

    /// Once the file that did not fit is gone, live update works again in the same container.
    fn remove_the_big_file_and_sync_again(&self) {
        std::fs::remove_file(self.p.path("data/big.bin")).unwrap();
        self.p.write("data/small.txt", "small again\n");
        wait_until(Duration::from_secs(60), "the next sync", || {
            (self.exec)(&["cat", "/data/small.txt"]) == "small again\n"
        });
        self.assert_only_the_small_file();
    }
}
