//! End to end: a coding agent's view through `stilt mcp`. A real `stilt up` runs local resources
//! (one that prints a secret the Tiltfile registered through a Kubernetes Secret, one that
//! fails); the real `stilt mcp` process is spoken to in MCP JSON-RPC over its stdin/stdout, as an
//! MCP client does: initialize, notifications/initialized, tools/list, tools/call.
//! Run with `cargo test -p stilt --test e2e_mcp -- --ignored` (the e2e tier of scripts/test; the
//! Secret is applied to the dev cluster, as Tilt registers secrets from the Secrets it deploys).

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const SECRET: &str = "mcp-supersecret-value";

/// An MCP client over a child's stdio: one JSON-RPC message per line.
struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl McpClient {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning stilt mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a request and returns the whole response (`result` or `error`), and its raw line.
    fn request(&mut self, method: &str, params: Value) -> (Value, String) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method} within 120s"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stilt mcp closed stdout during {method}")
                }
            };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
            assert_eq!(msg["jsonrpc"], "2.0", "{line}");
            if msg["id"] == id {
                return (msg, line);
            }
            // Notifications (e.g. logging) from the server are not answers.
        }
    }

    fn initialize(&mut self) -> Value {
        let (resp, _) = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "e2e", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        resp
    }

    fn tool_names(&mut self) -> Vec<String> {
        let (resp, line) = self.request("tools/list", json!({}));
        resp["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list: {line}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Calls a tool that must succeed; returns its structured result (JSON tools) or text, and
    /// the raw response line.
    fn call(&mut self, tool: &str, args: Value) -> (Value, String) {
        let (resp, line) = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let result = &resp["result"];
        assert!(
            result.is_object() && result["isError"] != true,
            "{tool} failed: {line}"
        );
        let out = if result["structuredContent"].is_null() {
            result["content"][0]["text"].clone()
        } else {
            result["structuredContent"].clone()
        };
        (out, line)
    }

    /// Closes stdin (the client leaves) and waits for the server to exit.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("stilt mcp did not exit after its client closed stdin");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes the test's Secret from the dev cluster, pass or fail.
struct SecretCleanup(String);

impl Drop for SecretCleanup {
    fn drop(&mut self) {
        kubectl(&[
            "delete",
            "secret",
            &self.0,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_agent_works_the_dev_loop_over_mcp() {
    require_cluster();
    let secret_name = format!("mcp-e2e-{}", std::process::id());
    let _cleanup = SecretCleanup(secret_name.clone());
    let p = Project::new(
        "allow_k8s_contexts('stilt-dev')\n\
         k8s_yaml('secret.yaml')\n\
         local_resource('greet', cmd='echo greeting-line; echo token=$(cat token.txt)', \
             serve_cmd='echo serving-greet; sleep 1000')\n\
         local_resource('broken', cmd='echo preparing; echo \"broken.c:7: error: missing semicolon\"; echo after-the-error; exit 3')\n\
         local_resource('compile', cmd='cat src.txt; grep -q good src.txt', deps=['src.txt'])\n\
         local_resource('crashy', serve_cmd='echo server-starting; echo \"FATAL: port 9 is taken\"; exit 1')\n",
    );
    p.write("token.txt", SECRET);
    p.write("src.txt", "good v1\n");
    p.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {secret_name}\nstringData:\n  token: {SECRET}\n"
        ),
    );
    let port = free_port();
    let port_arg = port.to_string();
    let _up = p.spawn_up(&["up", "--stream", "--port", &port_arg], &[]);
    wait_until(
        Duration::from_secs(60),
        "greet ok, broken failed, compile ok, crashy crashed",
        || {
            let ok = p.get_json("uiresource", "greet").is_some_and(|u| {
                u["status"]["updateStatus"] == "ok" && u["status"]["runtimeStatus"] == "ok"
            });
            let failed = p
                .get_json("uiresource", "broken")
                .is_some_and(|u| u["status"]["updateStatus"] == "error");
            ok && failed
        },
    );
    let first_span =
        p.get_json("uiresource", "greet").unwrap()["status"]["buildHistory"][0]["spanID"]
            .as_str()
            .unwrap()
            .to_string();

    // Read-only (the default).
    let mut mcp = McpClient::spawn(p.cmd(&["--port", &port_arg, "mcp"]));
    let init = mcp.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "stilt", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let tools = mcp.tool_names();
    for t in [
        "list_resources",
        "read_logs",
        "get_object",
        "wait_for_resource",
        "explain_failure",
    ] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }
    for t in ["trigger_resource", "enable_resource", "disable_resource"] {
        assert!(
            !tools.contains(&t.to_string()),
            "{t} offered read-only: {tools:?}"
        );
    }

    let (list, _) = mcp.call("list_resources", json!({}));
    let greet = resource(&list, "greet");
    assert_eq!(greet["status"], "ok", "{greet}");
    assert_eq!(greet["kind"], "local", "{greet}");
    assert_eq!(greet["runtimeStatus"], "ok", "{greet}");
    let broken = resource(&list, "broken");
    assert_eq!(broken["status"], "error", "{broken}");
    assert!(
        broken["lastError"]
            .as_str()
            .unwrap()
            .contains("exit status 3"),
        "{broken}"
    );

    // Logs: the printed line is there, the secret is not (redacted by the log store).
    let (logs, raw) = mcp.call("read_logs", json!({"resource": "greet"}));
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"greeting-line"), "{logs}");
    assert!(!raw.contains(SECRET), "the secret reached the agent: {raw}");
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("token=[redacted secret {secret_name}:token]")),
        "{logs}"
    );
    let (found, _) = mcp.call(
        "read_logs",
        json!({"resource": "greet", "search": "^greet(ing)?-LINE$", "regex": true}),
    );
    assert_eq!(found["lines"], json!(["greeting-line"]), "{found}");
    // (Stilt's "Running cmd:" echo holds the command's text too: anchor the search.)
    let (found, raw) = mcp.call(
        "read_logs",
        json!({"resource": "greet", "search": "^token=", "regex": true}),
    );
    assert_eq!(found["matched"], 1, "{found}");
    assert!(!raw.contains(SECRET), "{raw}");
    let (tail, _) = mcp.call("read_logs", json!({"resource": "broken", "tail": 1}));
    assert_eq!(tail["shown"], 1, "{tail}");
    assert_eq!(tail["truncated"], true, "{tail}");

    // The failure, explained: the program's error line and what surrounds it, with timings.
    let (why, _) = mcp.call("explain_failure", json!({"resource": "broken"}));
    assert_eq!(why["failure"], "update", "{why}");
    assert_eq!(
        why["errorLine"], "broken.c:7: error: missing semicolon",
        "{why}"
    );
    let log_lines = why["logLines"].as_array().unwrap();
    let at = |text: &str| log_lines.iter().position(|l| l == text);
    let error_at = at("broken.c:7: error: missing semicolon").expect("the error line");
    assert!(at("preparing").is_some_and(|i| i < error_at), "{why}");
    assert!(at("after-the-error").is_some_and(|i| i > error_at), "{why}");
    assert!(
        why["update"]["error"]
            .as_str()
            .unwrap()
            .contains("exit status 3"),
        "{why}"
    );
    assert!(
        !why["update"]["stages"].as_array().unwrap().is_empty(),
        "{why}"
    );
    assert!(why["update"]["durationMs"].is_i64(), "{why}");

    // A server that crashed after a good update: its newest runtime complaint.
    let (why, _) = mcp.call("explain_failure", json!({"resource": "crashy"}));
    assert_eq!(why["failure"], "runtime", "{why}");
    assert_eq!(why["errorLine"], "FATAL: port 9 is taken", "{why}");
    assert!(
        why["logLines"]
            .as_array()
            .unwrap()
            .contains(&json!("server-starting")),
        "{why}"
    );

    // Objects, as JSON and YAML; the applied Secret's value stays out.
    let (cmd, _) = mcp.call(
        "get_object",
        json!({"kind": "cmd", "name": "greet:serve", "format": "json"}),
    );
    assert_eq!(cmd["metadata"]["name"], "greet:serve", "{cmd}");
    assert!(
        cmd["status"]["running"]["pid"].as_i64().unwrap() > 0,
        "{cmd}"
    );
    let (yaml, _) = mcp.call(
        "get_object",
        json!({"kind": "uiresource", "name": "broken"}),
    );
    assert!(
        yaml.as_str().unwrap().contains("updateStatus: error"),
        "{yaml}"
    );
    let kapp = p.run(&["get", "kapp", "-o", "name"]).stdout;
    let kapp = String::from_utf8_lossy(&kapp);
    let kapp_name = kapp
        .lines()
        .next()
        .expect("a KubernetesApply")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (obj, raw) = mcp.call(
        "get_object",
        json!({"kind": "kubernetesapply", "name": kapp_name, "format": "json"}),
    );
    assert!(!raw.contains(SECRET), "{raw}");
    assert!(
        obj["spec"]["yaml"].as_str().unwrap().contains("redacted"),
        "{obj}"
    );

    // An edit, then a wait: the update the edit caused, failed; another edit, healthy.
    p.write("src.txt", "bad v2\n");
    let (waited, _) = mcp.call("wait_for_resource", json!({"resource": "compile"}));
    assert_eq!(waited["outcome"], "failed", "{waited}");
    assert_eq!(waited["fresh"], true, "{waited}");
    let (why, _) = mcp.call("explain_failure", json!({"resource": "compile"}));
    assert!(
        why["logLines"]
            .as_array()
            .unwrap()
            .contains(&json!("bad v2")),
        "{why}"
    );
    p.write("src.txt", "good v3\n");
    let (waited, _) = mcp.call("wait_for_resource", json!({"resource": "compile"}));
    assert_eq!(waited["outcome"], "healthy", "{waited}");
    assert_eq!(waited["fresh"], true, "{waited}");
    let (why, _) = mcp.call("explain_failure", json!({"resource": "compile"}));
    assert_eq!(why["failingNow"], false, "the failure is fixed: {why}");

    // Mutations are refused read-only, and nothing happens.
    let (refused, line) = mcp.request(
        "tools/call",
        json!({"name": "trigger_resource", "arguments": {"resource": "greet"}}),
    );
    assert!(refused["result"].is_null(), "{line}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-mutations"),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let span_now =
        p.get_json("uiresource", "greet").unwrap()["status"]["buildHistory"][0]["spanID"].clone();
    assert_eq!(
        span_now,
        first_span.as_str(),
        "a refused trigger ran an update"
    );
    assert!(mcp.close().success());

    // --port picks the instance, as for `stilt get`: there is none on another port.
    let other = free_port().to_string();
    let mut elsewhere = McpClient::spawn(p.cmd(&["--port", &other, "mcp"]));
    elsewhere.initialize();
    let (resp, line) = elsewhere.request(
        "tools/call",
        json!({"name": "list_resources", "arguments": {}}),
    );
    assert_eq!(resp["result"]["isError"], true, "{line}");
    assert!(line.contains(&format!("stilt-{other}")), "{line}");
    assert!(elsewhere.close().success());

    // With --allow-mutations: trigger, then wait for the new run to be healthy.
    let mut mcp = McpClient::spawn(p.cmd(&["--port", &port_arg, "mcp", "--allow-mutations"]));
    mcp.initialize();
    let tools = mcp.tool_names();
    for t in ["trigger_resource", "enable_resource", "disable_resource"] {
        assert!(tools.contains(&t.to_string()), "{t} missing: {tools:?}");
    }
    mcp.call("trigger_resource", json!({"resource": "greet"}));
    let (waited, _) = mcp.call(
        "wait_for_resource",
        json!({"resource": "greet", "timeout_seconds": 60}),
    );
    assert_eq!(waited["outcome"], "healthy", "{waited}");
    assert_eq!(waited["fresh"], true, "{waited}");
    assert_ne!(
        waited["resource"]["lastUpdate"]["spanId"],
        first_span.as_str(),
        "{waited}"
    );
    let (again, _) = mcp.call(
        "read_logs",
        json!({"resource": "greet", "search": "^greeting-line$", "regex": true}),
    );
    assert_eq!(again["matched"], 2, "a second run printed again: {again}");

    // Disable and enable: the waits say what happened.
    mcp.call("disable_resource", json!({"resource": "broken"}));
    let (waited, _) = mcp.call("wait_for_resource", json!({"resource": "broken"}));
    assert_eq!(waited["outcome"], "disabled", "{waited}");
    mcp.call("enable_resource", json!({"resource": "broken"}));
    let (waited, _) = mcp.call("wait_for_resource", json!({"resource": "broken"}));
    assert_eq!(waited["outcome"], "failed", "{waited}");
    assert!(mcp.close().success());
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn without_a_running_stilt_tools_fail_as_results_not_as_a_dead_server() {
    let p = Project::new("local_resource('x', cmd='true')\n");
    let mut mcp = McpClient::spawn(p.cmd(&["mcp"]));
    let init = mcp.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "stilt", "{init}");
    let (resp, line) = mcp.request(
        "tools/call",
        json!({"name": "list_resources", "arguments": {}}),
    );
    assert_eq!(resp["result"]["isError"], true, "{line}");
    assert!(
        resp["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no running Stilt found"),
        "{line}"
    );
    // The server is still there for the next call.
    assert!(mcp.tool_names().contains(&"list_resources".to_string()));
    assert!(mcp.close().success());
}
