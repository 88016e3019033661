//! The CLI as scripts written for Tilt drive it: positional resource names, Tilt's flags,
//! `TILT_PORT`, `dump engine`, and several instances side by side.

mod common;

use common::{Project, Up, free_port, wait_until};
use serde_json::Value;
use std::time::Duration;

const TWO_RESOURCES: &str = r#"
local_resource('north', cmd='echo north-ran')
local_resource('south', cmd='echo south-ran')
"#;

/// `stilt up ARGS...` with `TILT_PORT` set, as Tilt's own integration harness runs `tilt up`.
fn up_tilt_style(p: &Project, port: u16, args: &[&str]) -> Up {
    let port_text = port.to_string();
    let up = p.spawn_up(&[&["up"], args].concat(), &[("TILT_PORT", &port_text)]);
    wait_until(Duration::from_secs(30), "the API server", || {
        run_on(p, port, &["get", "sessions"]).status.success()
    });
    up
}

fn run_on(p: &Project, port: u16, args: &[&str]) -> std::process::Output {
    p.cmd(args)
        .env("TILT_PORT", port.to_string())
        .output()
        .unwrap()
}

fn disabled(p: &Project, port: u16, resource: &str) -> Option<bool> {
    let out = run_on(p, port, &["get", "uiresource", resource, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["status"]["disableStatus"]["state"] == "Disabled")
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn positional_args_name_the_resources_to_enable_and_tilt_flags_are_accepted() {
    let p = Project::new(TWO_RESOURCES);
    let port = free_port();
    let up = up_tilt_style(
        &p,
        port,
        &[
            "--legacy=false",
            "--debug",
            "--klog=1",
            "--web-mode=prod",
            "--update-mode=exec",
            "north",
        ],
    );
    wait_until(
        Duration::from_secs(30),
        "north enabled, south disabled",
        || disabled(&p, port, "north") == Some(false) && disabled(&p, port, "south") == Some(true),
    );
    wait_until(Duration::from_secs(30), "north's cmd ran", || {
        up.log_text().contains("north-ran")
    });
    // `stilt args south` (no `--`) re-runs the Tiltfile with new args: they pick the resources.
    let out = run_on(&p, port, &["args", "south"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        Duration::from_secs(30),
        "south enabled, north disabled",
        || disabled(&p, port, "north") == Some(true) && disabled(&p, port, "south") == Some(false),
    );
    wait_until(Duration::from_secs(30), "south's cmd ran", || {
        up.log_text().contains("south-ran")
    });
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_unknown_resource_name_fails_the_load_and_says_which() {
    let p = Project::new(TWO_RESOURCES);
    let out = p.ci(&["nosuch"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nosuch"), "{text}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn dump_engine_prints_every_object_as_json() {
    let p = Project::new(TWO_RESOURCES);
    let port = free_port();
    let _up = up_tilt_style(&p, port, &[]);
    let dump = || {
        let out = run_on(&p, port, &["dump", "engine"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let cmd_names = |v: &Value| -> Vec<String> {
        v["objects"]["Cmd"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    wait_until(
        Duration::from_secs(30),
        "the Tiltfile's Cmds in the dump",
        || cmd_names(&dump()).contains(&"north:update".to_string()),
    );
    let v = dump();
    assert!(v["objects"]["Session"][0]["status"].is_object(), "{v}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn two_instances_run_side_by_side_and_a_third_on_a_taken_port_is_refused() {
    let a = Project::new("local_resource('only-in-a', cmd='true')\n");
    let b = Project::new("local_resource('only-in-b', cmd='true')\n");
    // Same STILT_HOME for both, as a user's ~/.stilt.
    let home = a.home.path().to_path_buf();
    let (port_a, port_b) = (free_port(), free_port());
    let _up_a = up_tilt_style(&a, port_a, &[]);
    let home_text = home.display().to_string();
    let port_b_text = port_b.to_string();
    let _up_b = b.spawn_up(
        &["up", "--port", &port_b_text],
        &[("STILT_HOME", &home_text)],
    );
    let get = |port: u16, name: &str| {
        a.cmd(&["get", "uiresource", name, "--port", &port.to_string()])
            .output()
            .unwrap()
            .status
            .success()
    };
    wait_until(Duration::from_secs(30), "both instances answer", || {
        get(port_a, "only-in-a") && get(port_b, "only-in-b")
    });
    assert!(!get(port_a, "only-in-b") && !get(port_b, "only-in-a"));

    // A second `up` on a's port is refused, names the running one, and breaks nothing.
    let kubeconfig_before = std::fs::read_to_string(home.join("config")).unwrap();
    let out = a
        .cmd(&["up", "--stream", "--port", &port_a.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already running on port {port_a}")),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("config")).unwrap(),
        kubeconfig_before
    );
    assert!(get(port_a, "only-in-a"), "the first instance still answers");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn logs_filter_by_source_and_level_tail_and_print_json() {
    let p = Project::new(
        r#"
local_resource('svc', cmd='echo built-line', serve_cmd='echo served-line; sleep 300')
"#,
    );
    let port = free_port();
    let _up = up_tilt_style(&p, port, &[]);
    let text = |args: &[&str]| {
        let out = run_on(&p, port, &[&["logs", "svc"], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_until(Duration::from_secs(30), "both lines", || {
        let all = text(&[]);
        all.contains("built-line") && all.contains("served-line")
    });
    let build = text(&["--source", "build"]);
    assert!(
        build.contains("built-line") && !build.contains("served-line"),
        "{build}"
    );
    let runtime = text(&["--source", "runtime"]);
    assert!(
        runtime.contains("served-line") && !runtime.contains("built-line"),
        "{runtime}"
    );
    assert_eq!(text(&["--level", "error"]).trim(), "", "no error lines");
    let last = text(&["--tail", "1", "--source", "runtime", "--json"]);
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.len(), 1, "{last}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["resource"], "svc");
    assert_eq!(v["source"], "runtime");
    assert_eq!(v["level"], "info");
    assert_eq!(v["message"], "served-line");
    let bad = run_on(&p, port, &["logs", "--level", "debug"]);
    assert!(!bad.status.success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_web_port_held_by_another_program_stops_the_start_before_anything_runs() {
    let p = Project::new("local_resource('marker', cmd='touch ran-marker')\n");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = p.cmd(&["ci", "--port", &port]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("another process on port {port}")),
        "{err}"
    );
    assert!(
        err.contains("--port"),
        "says how to pick another port: {err}"
    );
    assert!(!p.path("ran-marker").exists(), "nothing ran");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn docker_tls_env_without_its_files_is_an_error_that_names_the_file() {
    let p = Project::new(
        r#"
docker_build('stilt-e2e-tls-env', '.')
docker_compose('compose.yaml')
"#,
    );
    p.write("Dockerfile", "FROM stilt-test/busybox:latest\n");
    p.write(
        "compose.yaml",
        "services:\n  app:\n    image: stilt-e2e-tls-env\n    command: sleep 300\n",
    );
    let port = free_port().to_string();
    let out = p
        .cmd(&["ci", "--port", &port, "--timeout", "60s"])
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", "/tmp/stilt-no-such-cert-path")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "unable to resolve docker endpoint: open /tmp/stilt-no-such-cert-path/ca.pem"
        ),
        "{text}"
    );
}
