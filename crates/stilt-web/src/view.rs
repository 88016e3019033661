//! The `/ws/view` protocol: the UI's live view of the store and the log store.
//!
//! Server → client, one JSON text message per batch:
//! ```json
//! { "full": true,                      // replace every object the client holds
//!   "objects": [ {apiVersion, kind, metadata, spec, status}, … ],   // created or changed
//!   "deleted": [ ["UIResource", "web"], … ],
//!   "logs": { "from": 0, "to": 120, "truncated": false,
//!             "names": ["web"], "spans": ["build:1"],
//!             "lines": [[seq, nameIndex, spanIndex, level(0 info|1 warn|2 error), unixMillis, "text"], …] },
//!   "more": false,                     // more log lines follow at once (backfill in chunks)
//!   "time": 1700000000000 }            // server clock, unix millis
//! ```
//! The first message is a full snapshot; later ones are deltas, at most one per batch interval.
//! Objects always sent: UIResource, UISession, UIButton, ConfigMap, Cluster, Session. Other
//! kinds (ToggleButton included) are sent only for the resources the client subscribed to (annotation
//! `tilt.dev/resource`), by sending `{"subscribe": ["web"]}`; objects of resources it no longer
//! subscribes to arrive as `deleted`.
//!
//! `logs.from` is the checkpoint the lines start at and `logs.to` the one to continue from;
//! `truncated` says lines between the client's checkpoint and the first line were dropped by the
//! bounded log store.

use crate::Shared;
use axum::extract::ws::{Message, WebSocket};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use stilt_logs::{Level, Line};
use stilt_store::{Event, EventType, Selectors, WatchEnd, WatchFrom};
use tokio::time::Instant;

/// Kinds every client gets.
pub const CORE_KINDS: &[&str] = &[
    "UIResource",
    "UISession",
    "UIButton",
    "ConfigMap",
    "Cluster",
    "Session",
];

type Key = (&'static str, String);

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn resource_of(v: &Value) -> Option<&str> {
    v.get("metadata")?
        .get("annotations")?
        .get(stilt_api::ANNOTATION_RESOURCE)?
        .as_str()
}

fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Serialize)]
struct Msg<'a> {
    full: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    objects: Vec<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deleted: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<WireLogs<'a>>,
    more: bool,
    time: i64,
}

#[derive(Serialize)]
struct WireLogs<'a> {
    from: u64,
    to: u64,
    truncated: bool,
    names: Vec<&'a str>,
    spans: Vec<&'a str>,
    lines: Vec<WireLine<'a>>,
}

#[derive(Serialize)]
struct WireLine<'a>(u64, u32, u32, u8, i64, &'a str);

fn level_code(l: Level) -> u8 {
    match l {
        Level::Info => 0,
        Level::Warn => 1,
        Level::Error => 2,
    }
}

fn wire_logs(lines: &[Line], from: u64, to: u64, truncated: bool) -> WireLogs<'_> {
    let mut names: Vec<&str> = Vec::new();
    let mut spans: Vec<&str> = Vec::new();
    let mut name_ix: HashMap<&str, u32> = HashMap::new();
    let mut span_ix: HashMap<&str, u32> = HashMap::new();
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let n = *name_ix.entry(&l.resource).or_insert_with(|| {
            names.push(&l.resource);
            (names.len() - 1) as u32
        });
        let s = *span_ix.entry(&l.span).or_insert_with(|| {
            spans.push(&l.span);
            (spans.len() - 1) as u32
        });
        out.push(WireLine(
            l.seq,
            n,
            s,
            level_code(l.level),
            unix_millis(l.time),
            &l.text,
        ));
    }
    WireLogs {
        from,
        to,
        truncated,
        names,
        spans,
        lines: out,
    }
}

/// The whole view as one JSON document (`GET /api/view`): every core object and every log line.
pub(crate) fn snapshot_json(shared: &Shared) -> String {
    let mut objects: Vec<Arc<Value>> = Vec::new();
    for kind in CORE_KINDS {
        if let Ok((items, _)) = shared.store.list(kind, &Selectors::default()) {
            objects.extend(items);
        }
    }
    let read = shared.logs.read(0, None);
    let msg = Msg {
        full: true,
        objects: objects.iter().map(|o| &**o).collect(),
        deleted: Vec::new(),
        logs: Some(wire_logs(&read.lines, 0, read.next, read.truncated)),
        more: false,
        time: unix_millis(SystemTime::now()),
    };
    serde_json::to_string(&msg).expect("view serializes")
}

#[derive(Deserialize)]
struct ClientMsg {
    #[serde(default)]
    subscribe: Option<Vec<String>>,
}

/// One websocket client's mirror of what it has been sent, and what it still needs.
struct Conn {
    /// Core objects as last seen.
    core: HashMap<Key, Arc<Value>>,
    /// Non-core objects that name a resource, as last seen.
    related: HashMap<Key, Arc<Value>>,
    subscribed: HashSet<String>,
    /// Related objects the client holds.
    sent_related: HashSet<Key>,
    /// Changes not yet sent: `None` means deleted.
    pending: HashMap<Key, Option<Arc<Value>>>,
    full: bool,
    log_cp: u64,
    log_buf: VecDeque<Line>,
    log_truncated: bool,
    log_dirty: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            core: HashMap::new(),
            related: HashMap::new(),
            subscribed: HashSet::new(),
            sent_related: HashSet::new(),
            pending: HashMap::new(),
            full: true,
            log_cp: 0,
            log_buf: VecDeque::new(),
            log_truncated: false,
            log_dirty: true,
        }
    }

    fn reset(&mut self, initial: Vec<Event>) {
        self.core.clear();
        self.related.clear();
        self.pending.clear();
        self.sent_related.clear();
        self.full = true;
        for ev in initial {
            self.on_event(ev);
        }
        // A full message carries everything; pending entries would only repeat it.
        self.pending.clear();
    }

    fn on_event(&mut self, ev: Event) {
        let key: Key = (ev.kind, name_of(&ev.object).to_string());
        let gone = ev.r#type == EventType::Deleted;
        if CORE_KINDS.contains(&ev.kind) {
            if gone {
                self.core.remove(&key);
                self.pending.insert(key, None);
            } else {
                self.core.insert(key.clone(), ev.object.clone());
                self.pending.insert(key, Some(ev.object));
            }
            return;
        }
        let resource = resource_of(&ev.object).map(str::to_string);
        if gone || resource.is_none() {
            self.related.remove(&key);
        } else {
            self.related.insert(key.clone(), ev.object.clone());
        }
        let wanted = !gone
            && resource
                .as_deref()
                .is_some_and(|r| self.subscribed.contains(r));
        if wanted {
            self.sent_related.insert(key.clone());
            self.pending.insert(key, Some(ev.object));
        } else if self.sent_related.remove(&key) {
            self.pending.insert(key, None);
        }
    }

    fn subscribe(&mut self, resources: Vec<String>) {
        self.subscribed = resources.into_iter().collect();
        let want: HashSet<Key> = self
            .related
            .iter()
            .filter(|(_, v)| resource_of(v).is_some_and(|r| self.subscribed.contains(r)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in self.sent_related.difference(&want) {
            self.pending.insert(k.clone(), None);
        }
        for k in want.difference(&self.sent_related) {
            self.pending
                .insert(k.clone(), Some(self.related[k].clone()));
        }
        self.sent_related = want;
    }

    fn has_work(&self) -> bool {
        self.full || !self.pending.is_empty() || self.log_dirty || !self.log_buf.is_empty()
    }

    /// Builds the next message, if there is anything to say; `more` is true when log lines are
    /// still waiting.
    fn next_message(&mut self, shared: &Shared) -> Option<(String, bool)> {
        if self.log_buf.is_empty() && self.log_dirty {
            let read = shared.logs.read(self.log_cp, None);
            self.log_truncated |= read.truncated;
            self.log_buf.extend(read.lines);
            if self.log_buf.is_empty() {
                self.log_cp = read.next;
            }
            self.log_dirty = false;
        }
        let take = self.log_buf.len().min(shared.max_lines_per_message);
        let lines: Vec<Line> = self.log_buf.drain(..take).collect();
        let from = self.log_cp;
        if let Some(last) = lines.last() {
            self.log_cp = last.seq + 1;
        }
        let more = !self.log_buf.is_empty();
        let logs = if lines.is_empty() && !self.log_truncated {
            None
        } else {
            let truncated = std::mem::take(&mut self.log_truncated);
            Some(wire_logs(&lines, from, self.log_cp, truncated))
        };

        let full = std::mem::take(&mut self.full);
        if !full && self.pending.is_empty() && logs.is_none() {
            return None;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut objects: Vec<&Value> = Vec::new();
        let mut deleted: Vec<(&str, &str)> = Vec::new();
        if full {
            objects.extend(self.core.values().map(|v| &**v));
            objects.extend(
                self.sent_related
                    .iter()
                    .filter_map(|k| self.related.get(k))
                    .map(|v| &**v),
            );
        } else {
            for (k, v) in &pending {
                match v {
                    Some(v) => objects.push(v),
                    None => deleted.push((k.0, &k.1)),
                }
            }
        }
        let msg = Msg {
            full,
            objects,
            deleted,
            logs,
            more,
            time: unix_millis(SystemTime::now()),
        };
        Some((serde_json::to_string(&msg).expect("view serializes"), more))
    }
}

/// Serves one websocket client until it goes away or the server shuts down.
pub(crate) async fn run(shared: Arc<Shared>, mut socket: WebSocket) {
    if let Err(e) = serve_conn(&shared, &mut socket).await {
        tracing::debug!("view websocket ended: {e}");
    }
}

async fn serve_conn(shared: &Shared, socket: &mut WebSocket) -> Result<(), axum::Error> {
    let mut shutdown = shared.shutdown.clone();
    let mut log_rx = shared.logs.subscribe();
    log_rx.mark_unchanged();
    let mut conn = Conn::new();
    let Ok(watch) = shared
        .store
        .watch(None, Selectors::default(), WatchFrom::Beginning)
    else {
        return Ok(());
    };
    let mut stream = watch.stream;
    conn.reset(watch.initial);
    let mut deadline: Option<Instant> = Some(Instant::now());
    let mut last_sent = Instant::now() - shared.batch_interval;
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return Ok(());
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ClientMsg { subscribe: Some(subs) }) = serde_json::from_str(&text) {
                        conn.subscribe(subs);
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => {}
            },
            _ = sleep => {
                deadline = None;
                if let Some((text, more)) = conn.next_message(shared) {
                    socket.send(Message::Text(text.into())).await?;
                    last_sent = Instant::now();
                    deadline = more.then(Instant::now);
                }
                continue;
            }
            ev = stream.next() => match ev {
                Ok(ev) => conn.on_event(ev),
                Err(WatchEnd::Lagged) => {
                    match shared.store.watch(None, Selectors::default(), WatchFrom::Beginning) {
                        Ok(w) => {
                            stream = w.stream;
                            conn.reset(w.initial);
                        }
                        Err(_) => return Ok(()),
                    }
                }
                Err(WatchEnd::Closed) => return Ok(()),
            },
            r = log_rx.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                conn.log_dirty = true;
            }
        }
        if deadline.is_none() && conn.has_work() {
            deadline = Some(last_sent + shared.batch_interval);
        }
    }
}
