//! The log store: everything resources print, line by line, in one ordered sequence.
//!
//! * Each line belongs to a resource (`web`, `(Tiltfile)`) and a span (`build:3`, `pod:default/web-1`).
//! * Memory is bounded by [`LogOptions::max_bytes`]. Past it the oldest lines are dropped — except
//!   the first error line of each resource, which is pinned so `stilt ci` and the UI can always
//!   show why a resource failed.
//! * Registered secrets are replaced by `[redacted secret NAME]` before a line is stored, so no
//!   reader can ever see them.
//! * Readers pull by checkpoint (a sequence number) and wait on [`LogStore::subscribe`]; a slow
//!   reader never blocks writers: when lines it has not read are dropped, its read says so.
//!
//! Architecture invariant: no I/O, no knowledge of API objects or of where lines come from.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One line of output.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Position in the store; strictly increasing.
    pub seq: u64,
    pub resource: Arc<str>,
    pub span: Arc<str>,
    pub level: Level,
    pub time: SystemTime,
    pub text: String,
}

impl Line {
    fn bytes(&self) -> usize {
        self.text.len() + 64
    }
}

#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Upper bound on the memory used by stored lines (approximate).
    pub max_bytes: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
        }
    }
}

/// The answer to [`LogStore::read`].
#[derive(Clone, Debug, Default)]
pub struct Read {
    pub lines: Vec<Line>,
    /// Pass this to the next read.
    pub next: u64,
    /// Lines after the requested checkpoint were dropped before they were read.
    pub truncated: bool,
}

#[derive(Default)]
struct Inner {
    lines: VecDeque<Line>,
    /// First error line of each resource, kept even after it leaves `lines`.
    first_errors: HashMap<Arc<str>, Line>,
    partial: HashMap<(Arc<str>, Arc<str>), (Level, String)>,
    secrets: Vec<(String, String)>,
    bytes: usize,
    next_seq: u64,
    dropped_before: u64,
}

/// The log store. Cheap to clone; clones share one store.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    opts: Arc<LogOptions>,
    notify: Arc<watch::Sender<u64>>,
}

impl Default for LogStore {
    fn default() -> Self {
        Self::new(LogOptions::default())
    }
}

impl LogStore {
    pub fn new(opts: LogOptions) -> Self {
        let (tx, _) = watch::channel(0);
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            opts: Arc::new(opts),
            notify: Arc::new(tx),
        }
    }

    /// Registers a secret value: lines show `[redacted secret NAME]` instead of it, its base64
    /// form (as Tilt scrubs) or, for a multi-line value such as a PEM key, any of its lines (each
    /// line is stored on its own). Lines already stored are scrubbed too.
    pub fn add_secret(&self, name: &str, value: &str) {
        let mut inner = self.inner.lock();
        let mut added = false;
        for needle in secret_forms(value) {
            if !inner.secrets.iter().any(|(_, v)| *v == needle) {
                inner.secrets.push((name.to_string(), needle));
                added = true;
            }
        }
        if !added {
            return;
        }
        // Longest first, so a value is replaced before any line of it.
        inner
            .secrets
            .sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let Inner {
            lines,
            first_errors,
            partial,
            secrets,
            bytes,
            ..
        } = &mut *inner;
        for line in lines.iter_mut() {
            let before = line.bytes();
            if let Some(text) = scrub(secrets, &line.text) {
                line.text = text;
                *bytes = *bytes - before + line.bytes();
            }
        }
        for line in first_errors.values_mut() {
            if let Some(text) = scrub(secrets, &line.text) {
                line.text = text;
            }
        }
        for (_, text) in partial.values_mut() {
            if let Some(t) = scrub(secrets, text) {
                *text = t;
            }
        }
        let cp = inner.next_seq;
        drop(inner);
        self.notify.send_replace(cp);
    }

    /// `text` with every registered secret replaced, for output that does not go through the
    /// store (error messages written into API objects).
    pub fn redact(&self, text: &str) -> String {
        scrub(&self.inner.lock().secrets, text).unwrap_or_else(|| text.to_string())
    }

    /// Appends output. Complete lines are stored at once; a trailing fragment waits for the rest
    /// of its line (per resource and span) or for [`LogStore::flush`].
    pub fn append(&self, resource: &str, span: &str, level: Level, text: &str) {
        let mut inner = self.inner.lock();
        let key: (Arc<str>, Arc<str>) = (Arc::from(resource), Arc::from(span));
        let mut buf = match inner.partial.remove(&key) {
            Some((_, mut prefix)) => {
                prefix.push_str(text);
                prefix
            }
            None => text.to_string(),
        };
        let complete = buf.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let rest = buf.split_off(complete);
        for line in buf.lines() {
            self.push(
                &mut inner,
                &key.0,
                &key.1,
                level,
                line.strip_suffix('\r').unwrap_or(line),
            );
        }
        if !rest.is_empty() {
            inner.partial.insert(key, (level, rest));
        }
        drop(inner);
        self.notify.send_replace(self.checkpoint());
    }

    /// Stores a complete line.
    pub fn line(&self, resource: &str, span: &str, level: Level, text: &str) {
        let mut inner = self.inner.lock();
        self.push(
            &mut inner,
            &Arc::from(resource),
            &Arc::from(span),
            level,
            text,
        );
        let cp = inner.next_seq;
        drop(inner);
        self.notify.send_replace(cp);
    }

    /// Stores any unterminated fragment of a span as a line.
    pub fn flush(&self, resource: &str, span: &str) {
        let mut inner = self.inner.lock();
        let key: (Arc<str>, Arc<str>) = (Arc::from(resource), Arc::from(span));
        if let Some((level, text)) = inner.partial.remove(&key) {
            self.push(&mut inner, &key.0, &key.1, level, &text);
        }
        let cp = inner.next_seq;
        drop(inner);
        self.notify.send_replace(cp);
    }

    fn push(
        &self,
        inner: &mut Inner,
        resource: &Arc<str>,
        span: &Arc<str>,
        level: Level,
        text: &str,
    ) {
        let text = scrub(&inner.secrets, text).unwrap_or_else(|| text.to_string());
        let line = Line {
            seq: inner.next_seq,
            resource: resource.clone(),
            span: span.clone(),
            level,
            time: SystemTime::now(),
            text,
        };
        inner.next_seq += 1;
        if level == Level::Error && !inner.first_errors.contains_key(resource) {
            inner.first_errors.insert(resource.clone(), line.clone());
        }
        inner.bytes += line.bytes();
        inner.lines.push_back(line);
        while inner.bytes > self.opts.max_bytes && inner.lines.len() > 1 {
            let old = inner.lines.pop_front().expect("non-empty");
            inner.bytes -= old.bytes();
            inner.dropped_before = old.seq + 1;
        }
    }

    /// The checkpoint after the newest line.
    pub fn checkpoint(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// Lines at or after `from`, optionally of one resource. Pinned first errors that were dropped
    /// from the main sequence are included when they fall in range.
    pub fn read(&self, from: u64, resource: Option<&str>) -> Read {
        let inner = self.inner.lock();
        let truncated = from < inner.dropped_before;
        let mut lines: Vec<Line> = Vec::new();
        if truncated {
            let mut pinned: Vec<&Line> = inner
                .first_errors
                .values()
                .filter(|l| {
                    l.seq >= from
                        && l.seq < inner.dropped_before
                        && resource.is_none_or(|r| &*l.resource == r)
                })
                .collect();
            pinned.sort_by_key(|l| l.seq);
            lines.extend(pinned.into_iter().cloned());
        }
        let start = inner.lines.partition_point(|l| l.seq < from);
        lines.extend(
            inner
                .lines
                .range(start..)
                .filter(|l| resource.is_none_or(|r| &*l.resource == r))
                .cloned(),
        );
        Read {
            lines,
            next: inner.next_seq,
            truncated,
        }
    }

    /// The first error line a resource ever logged.
    pub fn first_error(&self, resource: &str) -> Option<Line> {
        self.inner.lock().first_errors.get(resource).cloned()
    }

    /// Wakes when the checkpoint moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

/// Shorter values would mangle ordinary output (Tilt's minimum).
const MIN_SECRET_LEN: usize = 5;

/// What to look for in output for one secret value.
fn secret_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string(), base64(value.as_bytes())];
    if value.contains('\n') {
        forms.extend(
            value
                .lines()
                .map(|l| l.trim_end_matches('\r').trim())
                // PEM armor lines are the same in every key.
                .filter(|l| !(l.starts_with("-----") && l.ends_with("-----")))
                .map(str::to_string),
        );
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms
}

/// `text` with every secret replaced, or None when it holds none.
fn scrub(secrets: &[(String, String)], text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for (name, value) in secrets {
        let current = out.as_deref().unwrap_or(text);
        if current.contains(value.as_str()) {
            out = Some(current.replace(value.as_str(), &format!("[redacted secret {name}]")));
        }
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_assembled_per_span() {
        let logs = LogStore::default();
        logs.append("web", "build:1", Level::Info, "hel");
        logs.append("api", "build:1", Level::Info, "other\n");
        logs.append("web", "build:1", Level::Info, "lo\nwor");
        logs.flush("web", "build:1");
        let texts: Vec<_> = logs
            .read(0, None)
            .lines
            .into_iter()
            .map(|l| format!("{}:{}", l.resource, l.text))
            .collect();
        assert_eq!(texts, ["api:other", "web:hello", "web:wor"]);
        assert_eq!(logs.read(0, Some("web")).lines.len(), 2);
    }

    #[test]
    fn secrets_are_redacted_before_storage() {
        let logs = LogStore::default();
        logs.add_secret("db-password", "hunter22");
        logs.line("web", "s", Level::Info, "connecting with hunter22 now");
        assert_eq!(
            logs.read(0, None).lines[0].text,
            "connecting with [redacted secret db-password] now"
        );
    }

    #[test]
    fn multi_line_and_base64_forms_are_redacted_and_so_are_lines_stored_before() {
        let logs = LogStore::default();
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
        logs.append("(Tiltfile)", "load", Level::Info, &format!("key is {pem}"));
        logs.line("web", "s", Level::Error, "token c2VjcmV0LXRva2Vu leaked");
        logs.add_secret("tls:key", pem);
        logs.add_secret("api:token", "secret-token");
        logs.append("web", "s", Level::Info, pem);
        let texts: Vec<String> = logs
            .read(0, None)
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect();
        let all = texts.join("\n");
        assert!(!all.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "{all}");
        assert!(!all.contains("BKcwggSjAgEAAoIBAQC7"), "{all}");
        assert!(!all.contains("c2VjcmV0LXRva2Vu"), "{all}");
        assert!(all.contains("[redacted secret tls:key]"), "{all}");
        assert!(
            logs.first_error("web")
                .unwrap()
                .text
                .contains("[redacted secret api:token]")
        );
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64(b"secret-token"), "c2VjcmV0LXRva2Vu");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn memory_is_bounded_but_the_first_error_survives() {
        let logs = LogStore::new(LogOptions { max_bytes: 10_000 });
        logs.line("web", "s", Level::Error, "the first error");
        for i in 0..10_000 {
            logs.line("web", "s", Level::Info, &format!("line {i}"));
        }
        assert!(logs.bytes() <= 10_000);
        let read = logs.read(0, Some("web"));
        assert!(read.truncated);
        assert_eq!(read.lines[0].text, "the first error");
        assert_eq!(read.lines.last().unwrap().text, "line 9999");
        assert_eq!(logs.first_error("web").unwrap().text, "the first error");
    }

    #[tokio::test]
    async fn readers_wake_on_new_lines() {
        let logs = LogStore::default();
        let mut sub = logs.subscribe();
        let writer = logs.clone();
        tokio::spawn(async move { writer.line("web", "s", Level::Info, "hi") });
        sub.changed().await.unwrap();
        assert_eq!(logs.read(0, None).lines.len(), 1);
    }
}
