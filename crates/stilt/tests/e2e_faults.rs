//! End to end: faults a user can cause (missing directories and programs, runaway Tiltfiles,
//! commands that background children) must stay visible, bounded and stoppable.
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
