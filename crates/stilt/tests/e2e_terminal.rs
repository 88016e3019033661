//! End to end: the live terminal view of `stilt up`, driven in tmux (send-keys, capture-pane)
//! against real processes — statuses as a resource fails and recovers, t triggers, d disables,
//! enter follows a log, space names the web UI, q stops everything; TERM=dumb and a tiny
//! terminal get the plain stream; 300 resources scroll. Plus the CLI parity commands:
//! `--namespace` / `--context` against the dev cluster, `down --delete-volumes` on the Docker
//! engine, `enable --only` / `-l`, and `stilt doctor`.
//! Captures are saved to artifacts/terminal/*.txt.
//! Needs tmux; the cluster tests need the dev cluster, the compose test dockerd and the
//! `stilt-test/busybox` image.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A tmux server of its own (its own socket) running one command in a pane of a fixed size.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Runs `stilt ARGS` in `p`'s directory under `term`; when it exits, the pane stays and
    /// says `stilt exited CODE`.
    fn start(p: &Project, args: &[&str], term: &str, width: u16, height: u16) -> Tmux {
        let id = free_port();
        let t = Tmux {
            socket: format!("stilt-e2e-{id}"),
            session: format!("s{id}"),
        };
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            // The trap keeps the shell (and the pane) alive through a Ctrl-C meant for Stilt.
            "trap true INT; export STILT_HOME='{}' TERM='{term}' NO_COLOR=1; '{}' {}; echo \"stilt exited $?\"; sleep 600",
            p.home.path().display(),
            stilt_bin(),
            quoted.join(" ")
        );
        let ok = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args([
                "-s",
                &t.session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg("-c")
            .arg(p.dir.path())
            .args(["sh", "-c", &script])
            .status()
            .expect("tmux (scripts/test installs it)");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    /// The pane's text (what the user sees).
    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                &self.session,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the program writes to the pane during `d` (tmux pipe-pane).
    fn output_during(&self, d: Duration) -> Vec<u8> {
        let file = std::env::temp_dir().join(format!("{}.out", self.socket));
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .args(["-L", &self.socket])
                .args(args)
                .status()
                .unwrap()
        };
        tmux(&[
            "pipe-pane",
            "-o",
            "-t",
            &self.session,
            &format!("cat > '{}'", file.display()),
        ]);
        std::thread::sleep(d);
        tmux(&["pipe-pane", "-t", &self.session]);
        std::thread::sleep(Duration::from_millis(200));
        let out = std::fs::read(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        out
    }

    fn send(&self, key: &str) {
        Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", &self.session, key])
            .status()
            .unwrap();
    }

    /// Waits until the screen satisfies `f`; the last screen in the panic message.
    fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let screen = self.capture();
            if f(&screen) {
                return screen;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The screen line of a resource's row (the line where it is named after its status icon).
fn row_of<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let mut words = l.split_whitespace();
        words.next().is_some_and(|icon| icon.chars().count() == 1) && words.next() == Some(name)
    })
}

fn row_has(screen: &str, name: &str, word: &str) -> bool {
    row_of(screen, name).is_some_and(|l| l.split_whitespace().any(|w| w == word))
}

fn save_capture(name: &str, text: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/terminal");
    std::fs::create_dir_all(&dir).unwrap();
    let trimmed: Vec<&str> = text.lines().map(str::trim_end).collect();
    std::fs::write(
        dir.join(name),
        trimmed.join("\n").trim_end().to_string() + "\n",
    )
    .unwrap();
}

fn lines_in(p: &Project, file: &str) -> usize {
    std::fs::read_to_string(p.path(file))
        .unwrap_or_default()
        .lines()
        .count()
}

const LIVE_TILTFILE: &str = "\
local_resource('counter', cmd='echo run >> runs.txt; echo counted-run')
local_resource('server', serve_cmd='echo $$ > server.pid; echo serving-now; exec sleep 1000')
local_resource('flaky', cmd='test -f fixed || (echo flaky-broke-here; exit 1)', deps=['fixed'])
";

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn the_live_view_shows_statuses_and_its_keys_act_on_the_real_resources() {
    let p = Project::new(LIVE_TILTFILE);
    let port = free_port();
    let tmux = Tmux::start(
        &p,
        &["up", "--port", &port.to_string()],
        "xterm-256color",
        110,
        30,
    );
    // Statuses: counter ok, server ok (serving), flaky in error with its error under it.
    let screen = tmux.wait_for(
        "the three resources with their statuses",
        Duration::from_secs(60),
        |s| {
            row_has(s, "counter", "ok")
                && row_has(s, "server", "ok")
                && row_has(s, "flaky", "error")
        },
    );
    assert!(screen.contains("4 resources"), "{screen}");
    assert!(
        screen.contains(&format!("http://localhost:{port}/")),
        "{screen}"
    );
    assert!(row_has(&screen, "counter", "local"), "{screen}");
    let flaky_at = screen
        .lines()
        .position(|l| row_of(l, "flaky").is_some())
        .unwrap();
    let under = screen.lines().nth(flaky_at + 1).unwrap_or("");
    assert!(
        !under.trim().is_empty() && row_of(under, "counter").is_none(),
        "an error line under flaky:\n{screen}"
    );
    save_capture("status.txt", &screen);

    // t on the selected row (↓ from the Tiltfile to counter) runs it again.
    assert_eq!(lines_in(&p, "runs.txt"), 1);
    tmux.send("Down");
    tmux.send("t");
    wait_until(
        Duration::from_secs(30),
        "counter to run a second time",
        || lines_in(&p, "runs.txt") == 2,
    );
    tmux.wait_for("the trigger note", Duration::from_secs(10), |s| {
        s.contains("Triggered counter")
    });

    // d on server disables it: its process stops and the UIResource says Disabled.
    let pid: i32 = std::fs::read_to_string(p.path("server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    tmux.send("Down");
    tmux.send("d");
    let screen = tmux.wait_for("server disabled", Duration::from_secs(30), |s| {
        row_has(s, "server", "disabled")
    });
    save_capture("disabled.txt", &screen);
    wait_until(
        Duration::from_secs(30),
        "the disabled server's process to stop",
        || !pid_alive(pid),
    );
    let ui = p.get_json("uiresource", "server").unwrap();
    assert_eq!(ui["status"]["disableStatus"]["state"], "Disabled", "{ui}");
    tmux.send("d");
    tmux.wait_for(
        "server enabled and serving again",
        Duration::from_secs(30),
        |s| row_has(s, "server", "ok"),
    );
    let ui = p.get_json("uiresource", "server").unwrap();
    assert_eq!(ui["status"]["disableStatus"]["state"], "Enabled", "{ui}");

    // flaky recovers when its dependency appears.
    p.write("fixed", "yes\n");
    let screen = tmux.wait_for("flaky to recover", Duration::from_secs(30), |s| {
        row_has(s, "flaky", "ok")
    });
    assert!(!screen.contains("flaky-broke-here") || row_has(&screen, "flaky", "ok"));

    // enter follows flaky's log (its failure and the run that fixed it); esc goes back.
    tmux.send("Down");
    tmux.send("Enter");
    let screen = tmux.wait_for("flaky's log", Duration::from_secs(10), |s| {
        s.contains("log of flaky") && s.contains("flaky-broke-here")
    });
    assert!(
        !screen.contains("counted-run"),
        "only flaky's lines:\n{screen}"
    );
    save_capture("log.txt", &screen);
    tmux.send("Escape");
    tmux.wait_for("the table again", Duration::from_secs(10), |s| {
        row_of(s, "counter").is_some()
    });

    // ... and fails again when it goes away: the row turns back to error.
    std::fs::remove_file(p.path("fixed")).unwrap();
    let screen = tmux.wait_for("flaky to fail again", Duration::from_secs(30), |s| {
        row_has(s, "flaky", "error")
    });
    assert!(screen.contains("3 ok, 1 error"), "{screen}");

    // space opens the web UI, or names it where no browser opener is installed.
    tmux.send("Space");
    let url = format!("http://localhost:{port}/");
    tmux.wait_for("the web UI note", Duration::from_secs(10), |s| {
        s.contains(&format!("web UI: {url}")) || s.contains(&format!("Opened {url}"))
    });

    // q stops Stilt cleanly: exit 0, the server process is gone.
    let pid: i32 = std::fs::read_to_string(p.path("server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    tmux.send("q");
    let screen = tmux.wait_for("stilt to exit", Duration::from_secs(60), |s| {
        s.contains("stilt exited")
    });
    assert!(screen.contains("stilt exited 0"), "{screen}");
    assert!(screen.contains("stilt: stopping"), "{screen}");
    assert!(!pid_alive(pid), "the serve_cmd process outlived stilt");
    save_capture("quit.txt", &screen);
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn s_switches_the_live_view_to_the_log_stream() {
    let p = Project::new(LIVE_TILTFILE);
    let tmux = Tmux::start(
        &p,
        &["up", "--port", &free_port().to_string()],
        "xterm",
        100,
        30,
    );
    tmux.wait_for("the table", Duration::from_secs(60), |s| {
        row_has(s, "counter", "ok")
    });
    tmux.send("s");
    let screen = tmux.wait_for("the stream", Duration::from_secs(10), |s| {
        s.contains("counted-run") && s.contains("flaky-broke-here")
    });
    assert!(row_of(&screen, "counter").is_none(), "{screen}");
    save_capture("stream.txt", &screen);
    tmux.send("C-c");
    let screen = tmux.wait_for("stilt to exit", Duration::from_secs(60), |s| {
        s.contains("stilt exited")
    });
    assert!(screen.contains("stilt exited 0"), "{screen}");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn a_dumb_or_tiny_terminal_gets_the_plain_stream() {
    for (term, w, h) in [("dumb", 100, 30), ("xterm", 30, 20), ("xterm", 100, 4)] {
        let p = Project::new(LIVE_TILTFILE);
        let tmux = Tmux::start(&p, &["up", "--port", &free_port().to_string()], term, w, h);
        let screen = tmux.wait_for("streamed log lines", Duration::from_secs(60), |s| {
            s.contains("counted-run") || s.contains("serving-now")
        });
        assert!(
            !screen.contains("resources"),
            "{term} {w}x{h}: no table header\n{screen}"
        );
        assert!(
            !screen.contains("q quit"),
            "{term} {w}x{h}: no key help\n{screen}"
        );
        if term == "dumb" {
            save_capture("dumb.txt", &screen);
        }
        tmux.send("C-c");
        tmux.wait_for("stilt to exit", Duration::from_secs(60), |s| {
            s.contains("stilt exited 0")
        });
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn three_hundred_resources_scroll() {
    let p = Project::new(
        "for i in range(300):\n    local_resource('r' + str(1000 + i)[1:], cmd='true', trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False)\n",
    );
    let tmux = Tmux::start(
        &p,
        &["up", "--port", &free_port().to_string()],
        "xterm",
        100,
        25,
    );
    // (While the Tiltfile's objects arrive, rows without their order yet sort first.)
    let screen = tmux.wait_for("the first page", Duration::from_secs(60), |s| {
        s.contains("301 resources") && row_of(s, "r000").is_some() && row_of(s, "r021").is_some()
    });
    assert_eq!(screen.lines().count(), 25, "{screen}");
    assert!(row_of(&screen, "r022").is_none(), "{screen}");
    assert!(row_has(&screen, "r000", "idle"), "{screen}");
    // No flicker: while nothing changes but the Tiltfile's age, what Stilt writes to the terminal
    // in 3 s is a few cells, far less than one repaint of the screen.
    let written = tmux.output_during(Duration::from_secs(3));
    let visible: usize = screen.lines().map(|l| l.trim_end().len()).sum();
    assert!(
        written.len() < visible / 2,
        "{} bytes written while idle (one screen is {visible}): {:?}",
        written.len(),
        String::from_utf8_lossy(&written)
    );
    tmux.send("End");
    let screen = tmux.wait_for("the last page", Duration::from_secs(10), |s| {
        row_of(s, "r299").is_some()
    });
    assert!(row_of(&screen, "r000").is_none(), "{screen}");
    // 23 table lines: r277..r299.
    assert!(
        row_of(&screen, "r277").is_some() && row_of(&screen, "r276").is_none(),
        "{screen}"
    );
    save_capture("300-end.txt", &screen);
    tmux.send("PageUp");
    let screen = tmux.wait_for("a page up", Duration::from_secs(10), |s| {
        row_of(s, "r299").is_none()
    });
    assert!(row_of(&screen, "r276").is_some(), "{screen}");
    // Triggering the selected row (r276) runs that resource, found through the scrolled view.
    tmux.send("t");
    wait_until(Duration::from_secs(30), "r276 to run", || {
        p.get_json("uiresource", "r276")
            .is_some_and(|u| u["status"]["updateStatus"] == "ok")
    });
    assert_ne!(
        p.get_json("uiresource", "r275").unwrap()["status"]["updateStatus"],
        "ok"
    );
    tmux.send("Home");
    tmux.wait_for("the first page again", Duration::from_secs(10), |s| {
        row_of(s, "r000").is_some()
    });
    tmux.send("q");
    tmux.wait_for("stilt to exit", Duration::from_secs(60), |s| {
        s.contains("stilt exited 0")
    });
}

// ---------------------------------------------------------------------------------------------
// CLI parity

fn out_text(o: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn namespace_puts_objects_there_and_the_context_guard_still_applies() {
    require_cluster();
    let ctx = kubectl(&["config", "current-context"]).trim().to_string();
    assert!(!ctx.is_empty());
    let ns = format!("stilt-e2e-ns-{}", free_port());
    kubectl(&["create", "namespace", &ns]);
    struct DeleteNs(String);
    impl Drop for DeleteNs {
        fn drop(&mut self) {
            kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
        }
    }
    let _cleanup = DeleteNs(ns.clone());
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e2e-ns-cm\ndata:\n  k: v\n";

    // Not a known dev cluster and not allowed: refused, for the context chosen with --context.
    let refused = Project::new("k8s_yaml('cm.yaml')\n");
    refused.write("cm.yaml", cm);
    let out = refused.ci(&["--context", &ctx, "--namespace", &ns, "--timeout", "2m"]);
    assert!(!out.status.success(), "{}", out_text(&out));
    assert!(
        out_text(&out).contains("might be production"),
        "{}",
        out_text(&out)
    );
    assert!(kubectl(&["get", "configmap", "e2e-ns-cm", "-n", &ns, "-o", "name"]).is_empty());

    // An unknown context is an error naming it.
    let out = refused.ci(&["--context", "no-such-context"]);
    assert!(!out.status.success());
    assert!(
        out_text(&out).contains("\"no-such-context\""),
        "{}",
        out_text(&out)
    );

    // Allowed: the ConfigMap lands in the chosen namespace; k8s_namespace() says so too.
    let p = Project::new(&format!(
        "allow_k8s_contexts('{ctx}')\nk8s_yaml('cm.yaml')\nprint('namespace is ' + k8s_namespace())\n"
    ));
    p.write("cm.yaml", cm);
    let out = p.ci(&["--context", &ctx, "--namespace", &ns, "--timeout", "2m"]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        out_text(&out).contains(&format!("namespace is {ns}")),
        "{}",
        out_text(&out)
    );
    let got = kubectl(&[
        "get",
        "configmap",
        "e2e-ns-cm",
        "-n",
        &ns,
        "-o",
        "jsonpath={.data.k}",
    ]);
    assert_eq!(got, "v");
    assert!(
        kubectl(&[
            "get",
            "configmap",
            "e2e-ns-cm",
            "-n",
            "default",
            "-o",
            "name"
        ])
        .is_empty(),
        "not in the context's own namespace"
    );
    // The kubeconfig Stilt wrote holds only the chosen context, with that namespace.
    let written = std::fs::read_dir(p.home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("kubeconfig-"))
        .expect("a kubeconfig-<port>.json in STILT_HOME");
    let kc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(written.path()).unwrap()).unwrap();
    assert_eq!(kc["current-context"], ctx.as_str());
    assert_eq!(kc["contexts"].as_array().unwrap().len(), 1);
    assert_eq!(kc["contexts"][0]["context"]["namespace"], ns.as_str());

    // `down --namespace` deletes it from there.
    let out = p.run(&["down", "--context", &ctx, "--namespace", &ns]);
    assert!(out.status.success(), "{}", out_text(&out));
    wait_until(
        Duration::from_secs(30),
        "the ConfigMap to be deleted",
        || kubectl(&["get", "configmap", "e2e-ns-cm", "-n", &ns, "-o", "name"]).is_empty(),
    );
}

fn volume_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["volume", "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn down_delete_volumes_removes_the_named_compose_volumes() {
    let p = Project::new("docker_compose('compose.yaml')\n");
    p.write(
        "compose.yaml",
        "services:\n  store:\n    image: stilt-test/busybox:latest\n    command: [sh, -c, 'echo kept > /data/x; sleep 1000']\n    volumes:\n      - data:/data\nvolumes:\n  data: {}\n",
    );
    let volume = format!("{}_data", compose_project(&p));
    struct RmVolume(String);
    impl Drop for RmVolume {
        fn drop(&mut self) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &self.0])
                .output();
        }
    }
    let _cleanup = RmVolume(volume.clone());
    let out = p.ci(&["--timeout", "2m"]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(volume_exists(&volume), "compose created {volume}");
    // Plain down keeps volumes (as compose does) ...
    let out = p.run(&["down"]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        volume_exists(&volume),
        "down without --delete-volumes keeps {volume}"
    );
    // ... --delete-volumes removes them.
    let out = p.ci(&["--timeout", "2m"]);
    assert!(out.status.success(), "{}", out_text(&out));
    let out = p.run(&["down", "--delete-volumes"]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("and its volumes"));
    assert!(!volume_exists(&volume), "{volume} is gone");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn enable_only_and_labels_choose_what_runs() {
    let p = Project::new(
        "local_resource('a', serve_cmd='sleep 1000', labels=['front'])\n\
         local_resource('b', serve_cmd='sleep 1000', labels=['front'])\n\
         local_resource('c', serve_cmd='sleep 1000', labels=['back'])\n",
    );
    let _up = p.up();
    let state = |n: &str| {
        p.get_json("uiresource", n).map(|u| {
            u["status"]["disableStatus"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
    };
    wait_until(Duration::from_secs(30), "all enabled", || {
        ["a", "b", "c"]
            .iter()
            .all(|n| state(n).as_deref() == Some("Enabled"))
    });
    let out = p.run(&["enable", "--only", "c"]);
    assert!(out.status.success(), "{}", out_text(&out));
    wait_until(Duration::from_secs(30), "only c enabled", || {
        state("a").as_deref() == Some("Disabled")
            && state("b").as_deref() == Some("Disabled")
            && state("c").as_deref() == Some("Enabled")
    });
    let out = p.run(&["enable", "-l", "front"]);
    assert!(out.status.success(), "{}", out_text(&out));
    wait_until(Duration::from_secs(30), "the front label enabled", || {
        ["a", "b", "c"]
            .iter()
            .all(|n| state(n).as_deref() == Some("Enabled"))
    });
    let out = p.run(&["disable", "-l", "back"]);
    assert!(out.status.success(), "{}", out_text(&out));
    wait_until(Duration::from_secs(30), "the back label disabled", || {
        state("c").as_deref() == Some("Disabled") && state("a").as_deref() == Some("Enabled")
    });
    let out = p.run(&["disable", "--only", "a"]);
    assert!(!out.status.success(), "--only is for enable");
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn doctor_reports_the_tools_and_the_cluster_of_this_machine() {
    require_cluster();
    let p = Project::new("");
    let out = p.run(&["doctor"]);
    assert!(out.status.success(), "{}", out_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let docker = Command::new("docker")
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .unwrap();
    let docker = String::from_utf8_lossy(&docker.stdout).trim().to_string();
    assert!(
        text.contains(&format!("Docker:     client {docker}, engine")),
        "{text}"
    );
    let ctx = kubectl(&["config", "current-context"]).trim().to_string();
    assert!(text.contains(&format!("context \"{ctx}\"")), "{text}");
    assert!(text.contains("kubectl:    v"), "{text}");
    assert!(text.contains("Compose:    "), "{text}");
    // The dev cluster publishes its registry (KEP-1755).
    let hosting = kubectl(&[
        "get",
        "configmap",
        "local-registry-hosting",
        "-n",
        "kube-public",
        "-o",
        "jsonpath={.data.localRegistryHosting\\.v1}",
    ]);
    let host = hosting
        .lines()
        .find_map(|l| l.trim().strip_prefix("host:"))
        .map(|h| h.trim().trim_matches('"').to_string())
        .expect("the dev cluster publishes a registry");
    assert!(text.contains(&format!("registry: {host}")), "{text}");
    assert!(
        text.contains(&format!("allow_k8s_contexts('{ctx}')")),
        "{text}"
    );
    save_capture("doctor.txt", &text);
}
