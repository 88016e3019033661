//! The JSON-RPC front: the editor talks to this loop over stdio; starlark_lsp's server runs on a
//! thread behind an in-memory connection and gets every message except those Stilt answers
//! itself: signature help, completion after `namespace.` and hover over namespaced builtins
//! (starlark_lsp only knows top-level names). `didSave` becomes a `didChange` with the saved
//! text (starlark_lsp re-checks on change only), and the `initialize` answer gains the
//! capabilities Stilt adds.

use std::collections::HashMap;
use std::sync::Arc;

use lsp_server::Connection;
use lsp_server::Message;
use lsp_server::Notification;
use lsp_server::Request;
use lsp_server::RequestId;
use lsp_server::Response;
use serde_json::Value;
use serde_json::json;

use crate::check::CheckConfig;
use crate::context::OpenFiles;
use crate::context::TiltContext;
use crate::docs::Builtins;
use crate::text;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("language server I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("language server: {0}")]
    Server(String),
}

/// Serve on stdin/stdout until the editor says `exit` (or closes stdin).
pub fn serve_stdio(check: CheckConfig) -> Result<(), ServeError> {
    let (client, io_threads) = Connection::stdio();
    serve(client, check)?;
    io_threads.join()?;
    Ok(())
}

/// Open documents' text (what signature help and member completion read), also shared by path
/// with the checks (a load reads the unsaved text of every open file it loads).
#[derive(Default)]
struct Documents {
    text: HashMap<String, (String, Option<i64>)>,
    open: OpenFiles,
}

impl Documents {
    fn get(&self, uri: &str) -> Option<&str> {
        self.text.get(uri).map(|(t, _)| t.as_str())
    }

    fn set(&mut self, uri: String, text: String, version: Option<i64>) {
        if let Some(p) = file_path(&uri) {
            self.open.lock().unwrap().insert(p, text.clone());
        }
        self.text.insert(uri, (text, version));
    }

    fn remove(&mut self, uri: &str) {
        if let Some(p) = file_path(uri) {
            self.open.lock().unwrap().remove(&p);
        }
        self.text.remove(uri);
    }
}

/// The path of a `file:` URI (percent-decoded).
fn file_path(uri: &str) -> Option<std::path::PathBuf> {
    let uri: lsp_types::Uri = uri.parse().ok()?;
    match starlark_lsp::server::LspUri::try_from(uri).ok()? {
        starlark_lsp::server::LspUri::File(p) => Some(p),
        _ => None,
    }
}

/// Serve over `client` (stdio, or a test's in-memory connection).
pub fn serve(client: Connection, check: CheckConfig) -> Result<(), ServeError> {
    let builtins = Arc::new(Builtins::from_loader());
    let (front, back) = Connection::memory();
    let mut docs = Documents::default();
    let mut ctx = TiltContext::new(builtins.clone(), check);
    ctx.open = docs.open.clone();
    // The front's copy shares the open files and the ext:// resolutions with the backend's.
    let front_ctx = ctx.clone();
    // Disconnects when the backend thread ends, however it ends (a panic included), so the
    // loop below stops instead of forwarding to nobody while the editor waits for answers.
    let (alive, backend_gone) = crossbeam_channel::bounded::<()>(0);
    let backend = std::thread::Builder::new()
        .name("starlark-lsp".into())
        .spawn(move || {
            let _alive = alive;
            starlark_lsp::server::server_with_connection(back, ctx).map_err(|e| e.to_string())
        })?;

    let init_id: Arc<std::sync::Mutex<Option<RequestId>>> = Default::default();
    let to_client = client.sender.clone();
    let from_backend = front.receiver.clone();
    let init = init_id.clone();
    let pump = std::thread::Builder::new()
        .name("lsp-to-client".into())
        .spawn(move || {
            for msg in from_backend {
                let msg = match msg {
                    Message::Response(mut r)
                        if init.lock().unwrap().as_ref().is_some_and(|id| *id == r.id) =>
                    {
                        if let Some(result) = r.result.as_mut() {
                            add_capabilities(result);
                        }
                        Message::Response(r)
                    }
                    m => m,
                };
                if to_client.send(msg).is_err() {
                    break;
                }
            }
        })?;

    // Whether the loop ended because the backend did (not the editor: exit or closed stdin).
    let mut backend_stopped = false;
    loop {
        let msg = crossbeam_channel::select! {
            recv(client.receiver) -> m => match m {
                Ok(m) => m,
                Err(_) => break,
            },
            recv(backend_gone) -> _ => {
                backend_stopped = true;
                break;
            }
        };
        match msg {
            Message::Request(req) => {
                if req.method == "initialize" {
                    *init_id.lock().unwrap() = Some(req.id.clone());
                }
                if let Some(result) = answer(&builtins, &front_ctx, &docs, &req) {
                    let _ = client.sender.send(Message::Response(Response {
                        id: req.id,
                        result: Some(result),
                        error: None,
                    }));
                } else if BACKEND_REQUESTS.contains(&req.method.as_str()) {
                    forward(&front, Message::Request(req));
                } else {
                    // starlark_lsp leaves other requests unanswered; a client would wait.
                    let _ = client.sender.send(Message::Response(Response::new_err(
                        req.id,
                        lsp_server::ErrorCode::MethodNotFound as i32,
                        format!("stilt lsp does not handle {}", req.method),
                    )));
                }
            }
            Message::Notification(n) => {
                let exit = n.method == "exit";
                if let Some(n) = track(&mut docs, n) {
                    forward(&front, Message::Notification(n));
                }
                if exit {
                    break;
                }
            }
            m @ Message::Response(_) => forward(&front, m),
        }
    }
    drop(front);
    let served = backend
        .join()
        .map_err(|_| ServeError::Server("the starlark server panicked".into()))?;
    let _ = pump.join();
    drop(client);
    served.map_err(ServeError::Server)?;
    if backend_stopped {
        return Err(ServeError::Server(
            "the starlark server stopped before the editor said exit".into(),
        ));
    }
    Ok(())
}

/// The requests starlark_lsp answers.
const BACKEND_REQUESTS: &[&str] = &[
    "initialize",
    "shutdown",
    "textDocument/definition",
    "textDocument/completion",
    "textDocument/hover",
    "starlark/fileContents",
];

fn forward(front: &Connection, m: Message) {
    // A backend that is gone ends the loop through `backend_gone`.
    let _ = front.sender.send(m);
}

/// Signature help (trigger characters `(` and `,`) and saves with their text.
fn add_capabilities(result: &mut Value) {
    let caps = &mut result["capabilities"];
    caps["signatureHelpProvider"] = json!({
        "triggerCharacters": ["(", ","],
        "retriggerCharacters": ["="],
    });
    caps["textDocumentSync"] = json!({
        "openClose": true,
        "change": 1,
        "save": { "includeText": true },
    });
    caps["completionProvider"] = json!({ "triggerCharacters": ["."] });
    result["serverInfo"] = json!({ "name": "stilt", "version": env!("CARGO_PKG_VERSION") });
}

/// Keep the open documents' text; a save is passed on as a change (re-check with the saved
/// text). Returns the notification for the backend, if any.
fn track(docs: &mut Documents, mut n: Notification) -> Option<Notification> {
    let uri = n.params["textDocument"]["uri"].as_str().map(str::to_owned);
    let version = n.params["textDocument"]["version"].as_i64();
    match (n.method.as_str(), uri) {
        ("textDocument/didOpen", Some(uri)) => {
            let t = n.params["textDocument"]["text"].as_str().unwrap_or("");
            docs.set(uri, t.to_owned(), version);
        }
        ("textDocument/didChange", Some(uri)) => {
            // Full sync: the last change holds the whole text (starlark_lsp reads the first).
            let t = n.params["contentChanges"]
                .as_array()
                .and_then(|c| c.last())
                .and_then(|c| c["text"].as_str())?
                .to_owned();
            docs.set(uri.clone(), t.clone(), version);
            n.params["contentChanges"] = json!([{ "text": t }]);
        }
        ("textDocument/didClose", Some(uri)) => {
            docs.remove(&uri);
        }
        ("textDocument/didSave", Some(uri)) => {
            let (held, version) = docs.text.get(&uri).cloned().unwrap_or_default();
            let text = n.params["text"].as_str().map_or(held, str::to_owned);
            docs.set(uri.clone(), text.clone(), version);
            n = Notification {
                method: "textDocument/didChange".into(),
                params: json!({
                    "textDocument": { "uri": uri, "version": version.unwrap_or(0) },
                    "contentChanges": [{ "text": text }],
                }),
            };
        }
        _ => {}
    }
    Some(n)
}

/// `load` is a statement, not a builtin: its hover text is here.
const LOAD_DOC: &str = "## load\n\n```python\nload(path, *symbols, **aliases)\n```\n\n\
Runs another Starlark file once per load and binds the names it exports here: \
`load('./lib/helpers.star', 'helper', h2 = 'other_helper')`.\n\n\
`path` is relative to this file (a folder means its `Tiltfile`), or `ext://name` for an \
extension (from the default repo, https://github.com/tilt-dev/tilt-extensions, or a repo \
registered with `v1alpha1.extension_repo`; `stilt up` fetches it into `$STILT_HOME/tilt_modules`). \
The loaded file is watched: changing it re-runs the Tiltfile.";

/// The requests Stilt answers itself (`None`: starlark_lsp's).
fn answer(
    builtins: &Builtins,
    ctx: &TiltContext,
    docs: &Documents,
    req: &Request,
) -> Option<Value> {
    let p = &req.params;
    let at = || -> Option<(&str, usize)> {
        let text = docs.get(p["textDocument"]["uri"].as_str()?)?;
        let line = p["position"]["line"].as_u64()? as u32;
        let character = p["position"]["character"].as_u64()? as u32;
        Some((text, text::offset_of(text, line, character)))
    };
    if req.method == "textDocument/signatureHelp" {
        // Always answered: `null` when the cursor is in no builtin's call.
        let help = at().and_then(|(text, cursor)| {
            let site = text::call_at(text, cursor)?;
            builtins.signature_help(&site).or_else(|| {
                // A function written in Starlark: here, or load()ed (extensions included).
                let file = file_path(p["textDocument"]["uri"].as_str()?)?;
                // While a call is being typed the document does not parse; the text before
                // its line still has the defs and loads top-level code can use.
                let head = &text[..text[..site.start].rfind('\n').map_or(0, |i| i + 1)];
                let f = ctx
                    .starlark_function(&file, text, &site.callee)
                    .or_else(|| ctx.starlark_function(&file, head, &site.callee))?;
                Some(crate::docs::signature(&site.callee, &f, &site.arg))
            })
        });
        return Some(serde_json::to_value(help).unwrap_or(Value::Null));
    }
    let (text, cursor) = at()?;
    match req.method.as_str() {
        "textDocument/completion" => {
            let (ns, partial) = text::member_prefix(text, cursor)?;
            let items = builtins.member_completions(&ns, &partial)?;
            serde_json::to_value(items).ok()
        }
        "textDocument/hover" => {
            let (word, range) = text::dotted_at(text, cursor)?;
            let is_load = word == "load" && text[range.end..].trim_start().starts_with('(');
            let doc = if is_load {
                LOAD_DOC.to_owned()
            } else if word.contains('.') {
                builtins.hover(&word)?
            } else {
                return None;
            };
            let (sl, sc) = text::position_of(text, range.start);
            let (el, ec) = text::position_of(text, range.end);
            Some(json!({
                "contents": { "kind": "markdown", "value": doc },
                "range": {
                    "start": { "line": sl, "character": sc },
                    "end": { "line": el, "character": ec },
                },
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, text_uri: &str, line: u32, character: u32) -> Request {
        Request {
            id: RequestId::from(1),
            method: method.into(),
            params: json!({
                "textDocument": { "uri": text_uri },
                "position": { "line": line, "character": character },
            }),
        }
    }

    #[test]
    fn stilt_answers_signatures_members_and_dotted_hovers_and_forwards_the_rest() {
        let b = Builtins::from_loader();
        let ctx = TiltContext::new(Arc::new(b.clone()), CheckConfig::default());
        let mut docs = Documents::default();
        let text =
            "docker_build('img', \nx = os.path.jo\nk8s_res\nos.getcwd()\nload('ext://x', 'y')\n";
        track(
            &mut docs,
            Notification {
                method: "textDocument/didOpen".into(),
                params: json!({"textDocument": {"uri": "file:///t/Tiltfile", "version": 1, "text": text}}),
            },
        );
        let u = "file:///t/Tiltfile";
        let sig = answer(
            &b,
            &ctx,
            &docs,
            &req("textDocument/signatureHelp", u, 0, 20),
        )
        .unwrap();
        assert_eq!(sig["activeParameter"], 1, "{sig}");
        let members = answer(&b, &ctx, &docs, &req("textDocument/completion", u, 1, 14)).unwrap();
        assert!(
            members
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["label"] == "join"),
            "{members}"
        );
        // A plain name is starlark_lsp's to complete.
        assert!(answer(&b, &ctx, &docs, &req("textDocument/completion", u, 2, 7)).is_none());
        let hover = answer(&b, &ctx, &docs, &req("textDocument/hover", u, 3, 5)).unwrap();
        assert!(
            hover["contents"]["value"]
                .as_str()
                .unwrap()
                .contains("getcwd")
        );
        assert_eq!(hover["range"]["start"]["character"], 0);
        let hover = answer(&b, &ctx, &docs, &req("textDocument/hover", u, 4, 2)).unwrap();
        assert!(
            hover["contents"]["value"]
                .as_str()
                .unwrap()
                .contains("ext://name")
        );
        assert!(answer(&b, &ctx, &docs, &req("textDocument/definition", u, 0, 3)).is_none());
        // Unknown documents: no signature; a hover is starlark_lsp's.
        // A function written in the document (which does not parse while the call is typed).
        track(
            &mut docs,
            Notification {
                method: "textDocument/didOpen".into(),
                params: json!({"textDocument": {"uri": "file:///t/Other", "version": 1,
                    "text": "def mine(a, b = 1):\n    '''Mine.'''\n    pass\n\nmine(1, \n"}}),
            },
        );
        let o = "file:///t/Other";
        let sig = answer(&b, &ctx, &docs, &req("textDocument/signatureHelp", o, 4, 8)).unwrap();
        assert_eq!(sig["signatures"][0]["label"], "mine(a, b=1)", "{sig}");
        assert_eq!(sig["activeParameter"], 1, "{sig}");
        assert_eq!(
            sig["signatures"][0]["documentation"]["value"], "Mine.",
            "{sig}"
        );
        let none = answer(
            &b,
            &ctx,
            &docs,
            &req("textDocument/signatureHelp", "file:///x", 0, 0),
        );
        assert_eq!(none, Some(Value::Null));
        assert!(
            answer(
                &b,
                &ctx,
                &docs,
                &req("textDocument/hover", "file:///x", 0, 0)
            )
            .is_none()
        );
    }

    #[test]
    fn a_save_is_a_change_with_the_saved_text() {
        let mut docs = Documents::default();
        let open = |t: &str| Notification {
            method: "textDocument/didOpen".into(),
            params: json!({"textDocument": {"uri": "file:///T", "version": 3, "text": t}}),
        };
        track(&mut docs, open("a"));
        let n = track(
            &mut docs,
            Notification {
                method: "textDocument/didSave".into(),
                params: json!({"textDocument": {"uri": "file:///T"}, "text": "b"}),
            },
        )
        .unwrap();
        assert_eq!(n.method, "textDocument/didChange");
        assert_eq!(n.params["contentChanges"][0]["text"], "b");
        assert_eq!(n.params["textDocument"]["version"], 3);
        // Without text: the text we hold.
        let n = track(
            &mut docs,
            Notification {
                method: "textDocument/didSave".into(),
                params: json!({"textDocument": {"uri": "file:///T"}}),
            },
        )
        .unwrap();
        assert_eq!(n.params["contentChanges"][0]["text"], "b");
        // The checks see the saved text by path.
        let open = docs.open.lock().unwrap().clone();
        assert_eq!(
            open.get(std::path::Path::new("/T")).map(String::as_str),
            Some("b")
        );
        track(
            &mut docs,
            Notification {
                method: "textDocument/didClose".into(),
                params: json!({"textDocument": {"uri": "file:///T"}}),
            },
        );
        assert!(docs.open.lock().unwrap().is_empty());
    }
}
