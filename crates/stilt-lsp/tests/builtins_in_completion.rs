//! Completion cannot drift from the loader: every name the loader's globals hold (read from the
//! values, not their docs) is offered by the server, top-level names at an empty line and
//! namespace members after `ns.`; the everyday builtins come with documentation.

use std::collections::BTreeSet;

use lsp_server::Connection;
use lsp_server::Message;
use lsp_server::Notification;
use lsp_server::Request;
use lsp_server::RequestId;
use serde_json::Value;
use serde_json::json;

struct Session {
    conn: Connection,
    next: i32,
}

impl Session {
    fn start() -> (Session, std::thread::JoinHandle<()>) {
        let (client, server) = Connection::memory();
        let h = std::thread::spawn(move || {
            stilt_lsp::serve(server, stilt_lsp::CheckConfig::default()).unwrap();
        });
        let mut s = Session {
            conn: client,
            next: 0,
        };
        s.request("initialize", json!({"capabilities": {}}));
        s.notify("initialized", json!({}));
        (s, h)
    }

    fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification {
                method: method.into(),
                params,
            }))
            .unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request {
                id: id.clone(),
                method: method.into(),
                params,
            }))
            .unwrap();
        loop {
            match self
                .conn
                .receiver
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("a response")
            {
                Message::Response(r) if r.id == id => return r.result.unwrap_or(Value::Null),
                _ => {}
            }
        }
    }

    fn labels(&mut self, uri: &str, line: u32, character: u32) -> (BTreeSet<String>, Vec<Value>) {
        let r = self.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        );
        let items = r.as_array().cloned().unwrap_or_default();
        (
            items
                .iter()
                .filter_map(|i| i["label"].as_str().map(str::to_owned))
                .collect(),
            items,
        )
    }
}

#[test]
fn every_registered_builtin_is_offered_with_docs() {
    let names = stilt_tiltfile::editor::builtin_names();
    assert!(names.len() > 100, "{names:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Tiltfile");
    let uri = format!("file://{}", path.display());
    let namespaces: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.rsplit_once('.').map(|(ns, _)| ns))
        .collect();
    // Line 0 is a name being typed (top-level names); one line per namespace, `ns.x` (the
    // cursor after the dot). The text must parse: completion works on the last good parse.
    let mut text = String::from("k8s\n");
    for ns in &namespaces {
        text.push_str(&format!("{ns}.x\n"));
    }
    let (mut s, server) = Session::start();
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "starlark", "version": 1, "text": text}}),
    );

    let (top, items) = s.labels(&uri, 0, 3);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !n.contains('.') && !top.contains(*n))
        .collect();
    assert!(missing.is_empty(), "not offered at top level: {missing:?}");

    for (i, ns) in namespaces.iter().enumerate() {
        let line = i as u32 + 1;
        let (got, _) = s.labels(&uri, line, ns.len() as u32 + 1);
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| {
                n.rsplit_once('.')
                    .is_some_and(|(p, m)| p == *ns && !got.contains(m))
            })
            .collect();
        assert!(missing.is_empty(), "not offered after `{ns}.`: {missing:?}");
    }

    // The builtins Tiltfiles use most are documented beyond their signature.
    let documented = [
        "docker_build",
        "custom_build",
        "k8s_yaml",
        "k8s_resource",
        "local_resource",
        "docker_compose",
        "dc_resource",
        "sync",
        "run",
        "fall_back_on",
        "restart_container",
        "initial_sync",
        "local",
        "read_file",
        "watch_file",
        "helm",
        "kustomize",
        "allow_k8s_contexts",
        "default_registry",
        "include",
        "fail",
    ];
    for name in documented {
        let item = items
            .iter()
            .find(|i| i["label"] == name)
            .unwrap_or_else(|| panic!("{name} offered"));
        let detail = item["detail"].as_str().unwrap_or("");
        assert!(
            detail.len() > 10,
            "{name} has no documentation summary: {item}"
        );
    }
    for name in [
        "config.define_string",
        "config.parse",
        "os.getenv",
        "os.path.join",
    ] {
        let (ns, member) = name.rsplit_once('.').unwrap();
        let line = namespaces.iter().position(|n| *n == ns).unwrap() as u32 + 1;
        let r = s.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": ns.len() + 1}}),
        );
        let item = r
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["label"] == member)
            .cloned()
            .unwrap();
        assert!(
            item["detail"].as_str().unwrap_or("").len() > 10,
            "{name} has no documentation summary: {item}"
        );
    }

    s.request("shutdown", Value::Null);
    s.notify("exit", Value::Null);
    server.join().unwrap();
}
