//! End to end: `stilt up` / `stilt ci` with real processes, files and ports.
//! Run with `cargo test -p stilt --test e2e_local -- --ignored` (the e2e tier of scripts/test).

mod common;

use common::*;
use std::time::Duration;

const E2E: &str = "e2e tier: scripts/test e2e";

fn serve(port: u16, dir: &str) -> String {
    format!(
        "'\"{}\" internal serve-dir --port {port} {dir}'",
        stilt_bin()
    )
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn editing_a_watched_file_reruns_cmd_and_restarts_serve() {
    let port = free_port();
    let p = Project::new(&format!(
        "local_resource('app', cmd='mkdir -p out && cp src/msg.txt out/msg.txt', deps=['src'], serve_cmd={}, \
         readiness_probe=probe(period_secs=1, http_get=http_get_action(port={port}, path='/msg.txt')))\n",
        serve(port, "out")
    ));
    p.write("src/msg.txt", "v1\n");
    let _up = p.up();
    wait_until(Duration::from_secs(30), "v1 served", || {
        http_get(port, "/msg.txt").as_deref() == Some("v1\n")
    });
    let first_pid = p.get_json("cmd", "app:serve").unwrap()["status"]["running"]["pid"]
        .as_i64()
        .unwrap();
    p.write("src/msg.txt", "v2\n");
    wait_until(Duration::from_secs(30), "v2 served", || {
        http_get(port, "/msg.txt").as_deref() == Some("v2\n")
    });
    wait_until(Duration::from_secs(10), "a restarted serve_cmd", || {
        p.get_json("cmd", "app:serve")
            .and_then(|c| c["status"]["running"]["pid"].as_i64())
            .is_some_and(|pid| pid != first_pid)
    });
    wait_until(
        Duration::from_secs(20),
        "the resource to be healthy again",
        || {
            p.get_json("uiresource", "app")
                .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
        },
    );
    let ui = p.get_json("uiresource", "app").unwrap();
    assert!(
        ui["status"]["buildHistory"].as_array().unwrap().len() >= 2,
        "{ui}"
    );
    assert_eq!(ui["status"]["updateStatus"], "ok");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn resource_deps_order_first_builds() {
    // Declared in reverse: without resource_deps, c would build first.
    let p = Project::new(
        "local_resource('c', cmd='echo c >> order.txt', resource_deps=['b'])\n\
         local_resource('b', cmd='sleep 0.3; echo b >> order.txt', resource_deps=['a'])\n\
         local_resource('a', cmd='sleep 0.3; echo a >> order.txt')\n",
    );
    let out = p.ci(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(p.path("order.txt")).unwrap(),
        "a\nb\nc\n"
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn manual_resources_wait_for_a_trigger() {
    let p = Project::new(
        "local_resource('m', cmd='echo run >> runs.txt', trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False)\n",
    );
    let _up = p.up();
    wait_until(Duration::from_secs(20), "the resource to load", || {
        p.get_json("uiresource", "m").is_some()
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !p.path("runs.txt").exists(),
        "a manual resource without auto_init must not run by itself"
    );
    assert_eq!(
        p.get_json("uiresource", "m").unwrap()["status"]["triggerMode"],
        2
    );
    let out = p.run(&["trigger", "m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(Duration::from_secs(20), "the triggered run", || {
        std::fs::read_to_string(p.path("runs.txt")).is_ok_and(|s| s == "run\n")
    });
    assert!(!p.run(&["trigger", "nope"]).status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn disable_stops_and_enable_restarts_a_server() {
    let port = free_port();
    let p = Project::new(&format!(
        "local_resource('srv', serve_cmd={}, readiness_probe=probe(period_secs=1, tcp_socket=tcp_socket_action(port={port})))\n",
        serve(port, ".")
    ));
    p.write("index.html", "hi\n");
    let _up = p.up();
    wait_until(Duration::from_secs(30), "serving", || {
        http_get(port, "/").is_some()
    });
    assert!(p.run(&["disable", "srv"]).status.success());
    wait_until(Duration::from_secs(40), "the server to stop", || {
        http_get(port, "/").is_none()
    });
    wait_until(Duration::from_secs(10), "disabled status", || {
        p.get_json("uiresource", "srv")
            .is_some_and(|u| u["status"]["disableStatus"]["state"] == "Disabled")
    });
    assert!(p.run(&["enable", "srv"]).status.success());
    wait_until(Duration::from_secs(30), "serving again", || {
        http_get(port, "/").is_some()
    });
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn readiness_transitions_and_a_crashing_server_is_an_error() {
    let port = free_port();
    let p = Project::new(&format!(
        "local_resource('slow', serve_cmd='sleep 1.5; exec {}', readiness_probe=probe(period_secs=1, http_get=http_get_action(port={port})))\n\
         local_resource('crash', serve_cmd='echo starting; sleep 0.5; exit 3')\n",
        serve(port, ".").trim_matches('\'')
    ));
    p.write("index.html", "ready\n");
    let _up = p.up();
    wait_until(Duration::from_secs(20), "slow to be pending", || {
        p.get_json("uiresource", "slow")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "pending")
    });
    wait_until(Duration::from_secs(30), "slow to be ready", || {
        p.get_json("uiresource", "slow")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "ok")
    });
    wait_until(Duration::from_secs(20), "crash to be an error", || {
        p.get_json("uiresource", "crash")
            .is_some_and(|u| u["status"]["runtimeStatus"] == "error")
    });
    let cmd = p.get_json("cmd", "crash:serve").unwrap();
    assert_eq!(cmd["status"]["terminated"]["exitCode"], 3);
    let logs = p.run(&["logs", "crash"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("starting"));
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ci_exits_0_when_healthy_and_1_at_the_first_failure() {
    let port = free_port();
    let ok = Project::new(&format!(
        "local_resource('build', cmd='echo built > index.html')\n\
         local_resource('web', serve_cmd={}, resource_deps=['build'], readiness_probe=probe(period_secs=1, http_get=http_get_action(port={port})))\n",
        serve(port, ".")
    ));
    let out = ok.ci(&[]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = Project::new(
        "local_resource('fine', cmd='true')\nlocal_resource('broken', cmd='echo going down; exit 7')\n",
    );
    let out = bad.ci(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken") && stderr.contains("exit status 7"),
        "{stderr}"
    );
    let broken_tiltfile = Project::new("local_resource('x', cmd='true'\n");
    let out = broken_tiltfile.ci(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Tiltfile:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ctrl_c_leaves_no_process_behind() {
    let p = Project::new(
        "local_resource('bg', serve_cmd='sleep 1000 & echo $! >> pids.txt; echo $$ >> pids.txt; wait')\n",
    );
    let mut up = p.up();
    wait_until(Duration::from_secs(20), "the server to start", || {
        read_pids(&p.path("pids.txt")).len() == 2
    });
    let pids = read_pids(&p.path("pids.txt"));
    assert!(pids.iter().all(|&pid| pid_alive(pid)));
    let status = up.interrupt();
    assert!(status.success(), "{status:?}: {}", up.log_text());
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} outlived stilt up");
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_broken_tiltfile_keeps_the_last_good_state_running() {
    let port = free_port();
    let good = format!("local_resource('srv', serve_cmd={})\n", serve(port, "."));
    let p = Project::new(&good);
    p.write("index.html", "still here\n");
    let _up = p.up();
    wait_until(Duration::from_secs(30), "serving", || {
        http_get(port, "/").is_some()
    });
    p.write("Tiltfile", &format!("{good}local_resource('oops', cmd=)\n"));
    wait_until(Duration::from_secs(20), "the load error", || {
        p.get_json("tiltfile", "(Tiltfile)").is_some_and(|t| {
            t["status"]["terminated"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("Tiltfile:2"))
        })
    });
    assert_eq!(http_get(port, "/").as_deref(), Some("still here\n"));
    assert!(p.get_json("uiresource", "srv").is_some());
    p.write(
        "Tiltfile",
        &format!("{good}local_resource('fixed', cmd='touch fixed.txt')\n"),
    );
    wait_until(Duration::from_secs(30), "the fixed Tiltfile to run", || {
        p.path("fixed.txt").exists()
    });
    let served = http_get(port, "/");
    assert_eq!(
        served.as_deref(),
        Some("still here\n"),
        "{}",
        _up.log_text()
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn stilt_demo_runs_in_ci_mode() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let out = std::process::Command::new(stilt_bin())
        .args([
            "demo",
            "--ci",
            "--dir",
            dir.path().to_str().unwrap(),
            "--app-port",
            &port,
            "--port",
            &free_port().to_string(),
        ])
        .env("STILT_HOME", home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("build/index.html").exists());
    let _ = E2E;
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn stilt_args_reruns_the_tiltfile_live() {
    let p = Project::new(
        "config.define_string('greeting')\ncfg = config.parse()\nlocal_resource('hello', cmd='echo %s >> greetings.txt' % cfg.get('greeting', 'none'))\n",
    );
    let _up = p.up();
    wait_until(Duration::from_secs(20), "the first run", || {
        std::fs::read_to_string(p.path("greetings.txt")).is_ok_and(|s| s == "none\n")
    });
    let out = p.run(&["args", "--", "--greeting=hi"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(Duration::from_secs(20), "a run with the new args", || {
        std::fs::read_to_string(p.path("greetings.txt")).is_ok_and(|s| s == "none\nhi\n")
    });
    assert_eq!(
        p.get_json("tiltfile", "(Tiltfile)").unwrap()["spec"]["args"][0],
        "--greeting=hi"
    );
}

/// `ci_settings` reaches `stilt ci`: a server that never gets ready fails at
/// `readiness_timeout`, and a run that never settles fails at `timeout` (before the CLI's
/// default 30m), both with Tilt's messages.
#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ci_settings_timeouts_end_the_run() {
    let port = free_port();
    let unready = Project::new(&format!(
        "ci_settings(readiness_timeout='2s')\n\
         local_resource('web', serve_cmd='sleep 600', readiness_probe=probe(period_secs=1, http_get=http_get_action(port={port})))\n"
    ));
    let t0 = std::time::Instant::now();
    let out = unready.ci(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Readiness timeout after 2s: target web:serve not ready"),
        "{stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));

    let slow = Project::new("ci_settings(timeout='3s')\nlocal_resource('slow', cmd='sleep 600')\n");
    let out = slow.ci(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Timeout after 3s: "), "{stderr}");
    assert!(stderr.contains("slow:update"), "{stderr}");
}
