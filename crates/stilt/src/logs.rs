//! Logs: the `/stilt/v1/logs` route a running Stilt serves, `stilt logs`, and the terminal stream
//! of `stilt up --stream` / `stilt ci`.

use crate::client::Client;
use anyhow::Result;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use stilt_logs::{Level, Line, LogStore};

#[derive(Deserialize, Default)]
struct LogQuery {
    /// Comma-separated resource names.
    resources: Option<String>,
    follow: Option<bool>,
    /// Seconds: only lines newer than this.
    since_seconds: Option<u64>,
    /// `warn` or `error`: only lines of exactly that level (Tilt's `--level`).
    level: Option<String>,
    /// `all`, `build` or `runtime` (Tilt's `--source`).
    source: Option<String>,
    /// Only the last N matching lines of what is already there (then new ones when following).
    tail: Option<usize>,
}

/// Which lines a `stilt logs` request asks for.
#[derive(Clone, Debug, Default)]
struct LogFilter {
    resources: Vec<String>,
    since: Option<SystemTime>,
    level: Option<Level>,
    source: Source,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Source {
    #[default]
    All,
    Build,
    Runtime,
}

/// Build output, as Tilt classifies it: a build's span (live updates and syncback runs are part
/// of Stilt's update, as they are of Tilt's build); pods, serve processes and containers are runtime.
fn is_build_span(span: &str) -> bool {
    ["build:", "cmdimage:", "liveupdate:", "syncback:"]
        .iter()
        .any(|p| span.starts_with(p))
}

impl LogFilter {
    fn parse(q: &LogQuery) -> Result<Self, String> {
        let level = match q.level.as_deref() {
            None | Some("") => None,
            Some("warn") => Some(Level::Warn),
            Some("error") => Some(Level::Error),
            Some(other) => return Err(format!("--level {other:?}: use \"warn\" or \"error\"")),
        };
        let source = match q.source.as_deref() {
            None | Some("") | Some("all") => Source::All,
            Some("build") => Source::Build,
            Some("runtime") => Source::Runtime,
            Some(other) => {
                return Err(format!(
                    "--source {other:?}: use \"all\", \"build\" or \"runtime\""
                ));
            }
        };
        let resources = q
            .resources
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let since = q
            .since_seconds
            .map(|s| SystemTime::now() - Duration::from_secs(s));
        Ok(Self {
            resources,
            since,
            level,
            source,
        })
    }

    fn keeps(&self, l: &Line) -> bool {
        let build = is_build_span(&l.span);
        (self.resources.is_empty() || self.resources.iter().any(|r| **r == *l.resource))
            && self.since.is_none_or(|s| l.time >= s)
            && self.level.is_none_or(|lv| lv == l.level)
            && match self.source {
                Source::All => true,
                Source::Build => build,
                Source::Runtime => !build,
            }
    }
}

fn line_json(l: &Line) -> Bytes {
    let time = chrono::DateTime::<chrono::Utc>::from(l.time)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut v = serde_json::to_vec(&json!({"seq": l.seq, "resource": &*l.resource, "span": &*l.span, "level": l.level.as_str(), "time": time, "text": l.text})).expect("JSON");
    v.push(b'\n');
    Bytes::from(v)
}

/// Routes added to the API server (same bearer token).
pub fn routes(logs: LogStore) -> Router {
    Router::new()
        .route("/stilt/v1/logs", get(serve_logs))
        .with_state(logs)
}

async fn serve_logs(
    State(logs): State<LogStore>,
    Query(q): Query<LogQuery>,
) -> axum::response::Response {
    let filter = match LogFilter::parse(&q) {
        Ok(f) => f,
        Err(msg) => return (axum::http::StatusCode::BAD_REQUEST, msg).into_response(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let follow = q.follow.unwrap_or(false);
    let mut tail = q.tail;
    tokio::spawn(async move {
        let mut sub = logs.subscribe();
        let mut from = 0;
        loop {
            let read = logs.read(from, None);
            from = read.next;
            let kept: Vec<&Line> = read.lines.iter().filter(|l| filter.keeps(l)).collect();
            // The tail applies to what is already there, not to lines that arrive later.
            let skip = tail.take().map_or(0, |n| kept.len().saturating_sub(n));
            for l in kept.into_iter().skip(skip) {
                if tx.send(line_json(l)).await.is_err() {
                    return;
                }
            }
            if !follow || sub.changed().await.is_err() {
                return;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        [("content-type", "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `stilt logs [R...] [-f] [--since 5m] [--tail N] [--level warn|error] [--source build|runtime] [--json]`
pub fn logs(a: crate::args::LogsArgs) -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut q = vec![format!("follow={}", a.follow)];
    if !a.resources.is_empty() {
        q.push(format!("resources={}", a.resources.join(",")));
    }
    if let Some(s) = &a.since {
        q.push(format!(
            "since_seconds={}",
            crate::objects::parse_duration(s)?.as_secs()
        ));
    }
    if let Some(level) = &a.level {
        q.push(format!("level={level}"));
    }
    if let Some(source) = &a.source {
        q.push(format!("source={source}"));
    }
    // Tilt's `--tail -1` means everything.
    if let Some(n) = a.tail.filter(|n| *n >= 0) {
        q.push(format!("tail={n}"));
    }
    let printer = Printer::new();
    client.watch(
        &format!("/stilt/v1/logs?{}", q.join("&")),
        "application/x-ndjson",
        |v: Value| {
            if a.json {
                println!("{}", tilt_json_line(&v));
                return Ok(true);
            }
            printer.print(
                v["resource"].as_str().unwrap_or(""),
                level_of(&v),
                v["text"].as_str().unwrap_or(""),
            );
            Ok(true)
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn level_of(v: &Value) -> Level {
    match v["level"].as_str() {
        Some("ERROR") => Level::Error,
        Some("WARN") => Level::Warn,
        _ => Level::Info,
    }
}

/// A line in the shape of Tilt's `tilt logs --json`.
fn tilt_json_line(v: &Value) -> Value {
    let span = v["span"].as_str().unwrap_or_default();
    json!({
        "time": v["time"],
        "resource": v["resource"],
        "level": v["level"].as_str().unwrap_or("INFO").to_lowercase(),
        "message": v["text"],
        "spanID": span,
        "source": if is_build_span(span) { "build" } else { "runtime" },
    })
}

/// Formats lines as Tilt's stream mode does: the resource name right-aligned in 13 columns
/// (longer names cut to 12 + `…`), then ` │ `; Tiltfile lines unprefixed. Colour on a terminal.
pub struct Printer {
    color: bool,
}

impl Printer {
    pub fn new() -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self { color }
    }

    pub fn format(&self, resource: &str, level: Level, text: &str) -> String {
        let prefix = if resource.is_empty() || resource == stilt_engine::names::TILTFILE_RESOURCE {
            String::new()
        } else {
            let name: String = if resource.chars().count() > 13 {
                resource.chars().take(12).chain(['…']).collect()
            } else {
                resource.to_string()
            };
            let padded = format!("{name:>13}");
            if self.color {
                let colors = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];
                let c = colors[resource.bytes().map(usize::from).sum::<usize>() % colors.len()];
                format!("\x1b[{c}m{padded}\x1b[0m │ ")
            } else {
                format!("{padded} │ ")
            }
        };
        let text = match (self.color, level) {
            (true, Level::Error) => format!("\x1b[31m{text}\x1b[0m"),
            (true, Level::Warn) => format!("\x1b[33m{text}\x1b[0m"),
            _ => text.to_string(),
        };
        format!("{prefix}{text}")
    }

    pub fn print(&self, resource: &str, level: Level, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.format(resource, level, text));
    }
}

/// Prints every new log line to stdout until aborted.
pub fn stream_to_terminal(logs: LogStore) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let printer = Printer::new();
        let mut sub = logs.subscribe();
        let mut from = 0;
        loop {
            let read = logs.read(from, None);
            from = read.next;
            for l in &read.lines {
                printer.print(&l.resource, l.level, &l.text);
            }
            if sub.changed().await.is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(resource: &str, span: &str, level: Level) -> Line {
        Line {
            seq: 0,
            resource: resource.into(),
            span: span.into(),
            level,
            time: SystemTime::now(),
            text: "x".into(),
        }
    }

    #[test]
    fn filters_by_level_and_source_as_tilt_does() {
        let q = |level: &str, source: &str| LogQuery {
            level: Some(level.into()),
            source: Some(source.into()),
            ..Default::default()
        };
        let cases = [
            // (level, source, resource, span, line level, kept)
            ("", "all", "web", "pod:ns/web-1", Level::Info, true),
            ("", "build", "web", "pod:ns/web-1", Level::Info, false),
            ("", "build", "web", "build:web:1", Level::Info, true),
            ("", "build", "web", "liveupdate:web:1", Level::Info, true),
            ("", "runtime", "web", "build:web:1", Level::Info, false),
            ("", "runtime", "web", "cmd:web:serve", Level::Info, true),
            ("", "runtime", "(Tiltfile)", "tiltfile:1", Level::Info, true),
            ("warn", "all", "web", "build:web:1", Level::Warn, true),
            ("warn", "all", "web", "build:web:1", Level::Error, false),
            ("error", "all", "web", "build:web:1", Level::Error, true),
            ("error", "all", "web", "build:web:1", Level::Info, false),
        ];
        for (level, source, resource, span, line_level, kept) in cases {
            let f = LogFilter::parse(&q(level, source)).unwrap();
            assert_eq!(
                f.keeps(&line(resource, span, line_level)),
                kept,
                "{level}/{source} {resource} {span} {line_level:?}"
            );
        }
        assert!(LogFilter::parse(&q("debug", "all")).is_err());
        assert!(LogFilter::parse(&q("", "pods")).is_err());
    }

    #[test]
    fn prefixes_like_tilt() {
        let p = Printer { color: false };
        assert_eq!(
            p.format("ttl-job", Level::Info, "job-success"),
            "      ttl-job │ job-success"
        );
        assert_eq!(
            p.format("k8s-server-example", Level::Info, "Initial Build"),
            "k8s-server-e… │ Initial Build"
        );
        assert_eq!(p.format("(Tiltfile)", Level::Info, "Loading"), "Loading");
    }
}
