//! `stilt lsp` driven like an editor drives it: the real binary, JSON-RPC over its stdin/stdout
//! with `Content-Length` framing. Needs no Docker or Kubernetes (the checks run no commands).

mod common;

use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::process::ChildStdin;
use std::process::Command;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Value>,
    next_id: i64,
    /// Messages read while waiting for another one.
    backlog: Vec<Value>,
}

fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

impl Client {
    fn start(home: &Path, extensions: &Path, args: &[&str]) -> Client {
        let mut child = Command::new(common::stilt_bin())
            .args(args)
            .env("STILT_HOME", home)
            .env("STILT_EXTENSIONS_DIR", extensions)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stilt lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let v: Value = serde_json::from_slice(&body).expect("a JSON message");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            next_id: 0,
            backlog: vec![],
        }
    }

    fn send(&mut self, msg: Value) {
        let body = serde_json::to_vec(&msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.stdin.write_all(&body).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and wait for its response; returns `result` (panics on an error).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let resp = self.wait_for(&format!("response to {method}"), |m| m["id"] == id);
        assert!(
            resp.get("error").is_none_or(Value::is_null),
            "{method}: {resp}"
        );
        resp["result"].clone()
    }

    /// The first message (read earlier or now) that `pred` accepts.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) if pred(&m) => return m,
                Ok(m) => self.backlog.push(m),
                Err(_) => panic!("no {what} within {WAIT:?}; got: {:#?}", self.backlog),
            }
        }
    }

    /// The diagnostics published for `uri` at document `version`.
    fn shutdown_and_exit(&mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.is_null(), "{r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "stilt lsp still running after exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status}");
    }

    fn diagnostics(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let m = self.wait_for(&format!("diagnostics for version {version}"), |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["version"] == version
        });
        m["params"]["diagnostics"].as_array().unwrap().clone()
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            }),
        );
    }
}

fn at(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
}

/// Line and column of the first `needle` in `text` (0-based), plus `skip` characters.
fn pos(text: &str, needle: &str, skip: u32) -> (u32, u32) {
    let i = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in text"));
    let line = text[..i].matches('\n').count() as u32;
    let col = (i - text[..i].rfind('\n').map_or(0, |n| n + 1)) as u32;
    (line, col + skip)
}

#[test]
fn an_editor_session_over_stdio() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proj");
    let exts = dir.path().join("extensions");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(exts.join("hello")).unwrap();
    std::fs::write(
        root.join("lib.star"),
        "# helpers\n\ndef helper(x):\n    \"\"\"Returns x.\"\"\"\n    return x\n",
    )
    .unwrap();
    std::fs::write(
        exts.join("hello/Tiltfile"),
        "def hi(greeting = 'hi'):\n    \"\"\"Says hello from the extension.\"\"\"\n    print(greeting)\n",
    )
    .unwrap();
    // On disk the Tiltfile is fine; the editor's unsaved text is what gets checked.
    let tiltfile = root.join("Tiltfile");
    std::fs::write(&tiltfile, "print('saved version')\n").unwrap();
    let uri = file_uri(&tiltfile);

    let mut c = Client::start(&dir.path().join("home"), &exts, &["lsp"]);
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": file_uri(&root), "capabilities": {}}),
    );
    let caps = &init["capabilities"];
    assert!(caps["completionProvider"].is_object(), "{init}");
    assert!(caps["signatureHelpProvider"].is_object(), "{init}");
    assert_eq!(caps["hoverProvider"], true, "{init}");
    assert!(!caps["definitionProvider"].is_null(), "{init}");
    assert_eq!(caps["textDocumentSync"]["save"]["includeText"], true);
    c.notify("initialized", json!({}));

    // 1. A runtime error (an unknown keyword argument) at its line, from the real loader.
    let broken = "load('./lib.star', 'helper')\n\
                  load('ext://hello', 'hi')\n\
                  k8s_yaml(blob('apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: web\\n'))\n\
                  helper(1)\n\
                  hi()\n\
                  k8s_resource('web', bogus_arg=1)\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "starlark", "version": 1, "text": broken}}),
    );
    let diags = c.diagnostics(&uri, 1);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["range"]["start"]["line"], 5, "{diags:#?}");
    assert_eq!(diags[0]["severity"], 1, "{diags:#?}");
    assert!(
        diags[0]["message"].as_str().unwrap().contains("bogus_arg"),
        "{diags:#?}"
    );

    // 2. Hover over a builtin: its documentation.
    let (l, ch) = pos(broken, "k8s_resource(", 3);
    let hover = c.request("textDocument/hover", at(&uri, l, ch));
    let shown = hover["contents"].to_string();
    assert!(shown.contains("k8s_resource"), "{hover}");
    // The doc comment of the builtin, parameter by parameter.
    assert!(shown.contains("Configures the resource"), "{hover}");
    assert!(shown.contains("ports to forward"), "{hover}");

    // 3. Go to definition through load() and ext://.
    let (l, ch) = pos(broken, "helper(1)", 2);
    let def = c.request("textDocument/definition", at(&uri, l, ch));
    let def = &def[0];
    assert_eq!(def["targetUri"], file_uri(&root.join("lib.star")), "{def}");
    assert_eq!(def["targetRange"]["start"]["line"], 2, "{def}");
    let (l, ch) = pos(broken, "hi()", 1);
    let def = c.request("textDocument/definition", at(&uri, l, ch));
    let def = &def[0];
    assert_eq!(
        def["targetUri"],
        file_uri(&exts.join("hello/Tiltfile")),
        "{def}"
    );
    assert_eq!(def["targetRange"]["start"]["line"], 0, "{def}");

    // 4. Completion of a half-typed builtin, with its docs.
    let typing = broken.replace("k8s_resource('web', bogus_arg=1)", "k8s_res");
    c.change(&uri, 2, &typing);
    let (l, ch) = pos(&typing, "k8s_res\n", 7);
    let items = c.request("textDocument/completion", at(&uri, l, ch));
    let items = items
        .as_array()
        .or_else(|| items["items"].as_array())
        .unwrap();
    let item = items
        .iter()
        .find(|i| i["label"] == "k8s_resource")
        .unwrap_or_else(|| panic!("k8s_resource among {} items", items.len()));
    let docs = item["documentation"].to_string();
    assert!(docs.contains("port_forwards"), "{item}");
    assert!(docs.contains("Configures the resource"), "{item}");

    // 5. Signature help inside `docker_build(`, with a syntax error published meanwhile.
    let sig_text = format!("{typing}docker_build(");
    c.change(&uri, 3, &sig_text);
    let diags = c.diagnostics(&uri, 3);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["range"]["start"]["line"], 6, "{diags:#?}");
    let (l, ch) = pos(&sig_text, "docker_build(", 13);
    let help = c.request("textDocument/signatureHelp", at(&uri, l, ch));
    let label = help["signatures"][0]["label"].as_str().unwrap();
    assert!(label.starts_with("docker_build(ref"), "{help}");
    assert!(label.contains("dockerfile"), "{help}");
    assert_eq!(help["activeParameter"], 0, "{help}");
    let sig = &help["signatures"][0];
    assert!(
        sig["documentation"]
            .to_string()
            .contains("Builds a container image"),
        "{help}"
    );
    assert!(
        sig["parameters"][0]["documentation"]
            .to_string()
            .contains("image name"),
        "{help}"
    );
    let sig_text = format!("{typing}docker_build('img', ");
    c.change(&uri, 4, &sig_text);
    let (l, ch) = pos(&sig_text, "docker_build(", 20);
    let help = c.request("textDocument/signatureHelp", at(&uri, l, ch));
    assert_eq!(help["activeParameter"], 1, "{help}");

    // ... and inside a call to a function an ext:// extension defines.
    let sig_text = format!("{typing}hi(");
    c.change(&uri, 5, &sig_text);
    // The cursor after the `hi(` on the last line.
    let (l, ch) = (sig_text.lines().count() as u32 - 1, 3);
    let help = c.request("textDocument/signatureHelp", at(&uri, l, ch));
    assert_eq!(
        help["signatures"][0]["label"], "hi(greeting='hi')",
        "{help}"
    );
    assert!(
        help["signatures"][0]["documentation"]
            .to_string()
            .contains("Says hello"),
        "{help}"
    );

    // 6. Fixed: no diagnostics. Then a save re-checks with the saved text.
    let good = broken.replace("k8s_resource('web', bogus_arg=1)", "print('ok')");
    c.change(&uri, 6, &good);
    assert_eq!(c.diagnostics(&uri, 6), Vec::<Value>::new());
    let saved = format!("{good}\nfail('stopped on save')\n");
    std::fs::write(&tiltfile, &saved).unwrap();
    c.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}, "text": saved}),
    );
    let diags = c.diagnostics(&uri, 6);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["range"]["start"]["line"], 7, "{diags:#?}");
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap()
            .contains("stopped on save")
    );

    // 7. A request it does not serve gets an error, not silence.
    c.next_id += 1;
    let id = c.next_id;
    c.send(json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/rename", "params": {}}));
    let resp = c.wait_for("rename error", |m| m["id"] == id);
    assert_eq!(resp["error"]["code"], -32601, "{resp}");

    // 8. Shutdown and exit: the process ends cleanly.
    let r = c.request("shutdown", Value::Null);
    assert!(r.is_null(), "{r}");
    c.notify("exit", Value::Null);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = c.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "stilt lsp still running after exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
}

/// Editor configs written for Tilt run `tilt lsp start [--verbose|--debug]`.
#[test]
fn tilts_command_line_starts_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path(), dir.path(), &["lsp", "start", "--verbose"]);
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert!(
        init["capabilities"]["signatureHelpProvider"].is_object(),
        "{init}"
    );
    c.notify("initialized", json!({}));
    c.shutdown_and_exit();
}

/// A request the starlark server cannot read stops the process (the editor restarts it)
/// instead of leaving the editor waiting for an answer that never comes.
#[test]
fn a_broken_backend_ends_the_server_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path(), dir.path(), &["lsp"]);
    c.request("initialize", json!({"capabilities": {}}));
    c.notify("initialized", json!({}));
    // An empty change is dropped, not passed on.
    let uri = file_uri(&dir.path().join("Tiltfile"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "starlark", "version": 1, "text": "x = 1\n"}}),
    );
    c.diagnostics(&uri, 1);
    c.change(&uri, 2, "y = 2\n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": []}),
    );
    let hover = c.request("textDocument/hover", at(&uri, 0, 0));
    assert!(hover.is_object(), "{hover}");
    // Parameters starlark_lsp cannot decode make it panic: the process ends with an error.
    c.send(json!({"jsonrpc": "2.0", "id": 99, "method": "textDocument/definition", "params": {}}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = c.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "stilt lsp hangs after its backend died"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{status}");
}
