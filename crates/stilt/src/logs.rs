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

async fn serve_logs(State(logs): State<LogStore>, Query(q): Query<LogQuery>) -> impl IntoResponse {
    let resources: Vec<String> = q
        .resources
        .map(|r| {
            r.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let since = q
        .since_seconds
        .map(|s| SystemTime::now() - Duration::from_secs(s));
    let keep = move |l: &Line| {
        (resources.is_empty() || resources.iter().any(|r| **r == *l.resource))
            && since.is_none_or(|s| l.time >= s)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let follow = q.follow.unwrap_or(false);
    tokio::spawn(async move {
        let mut sub = logs.subscribe();
        let mut from = 0;
        loop {
            let read = logs.read(from, None);
            from = read.next;
            for l in read.lines.iter().filter(|l| keep(l)) {
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
}

/// `stilt logs [R...] [-f] [--since 5m]`
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
    let printer = Printer::new();
    client.watch(
        &format!("/stilt/v1/logs?{}", q.join("&")),
        "application/x-ndjson",
        |v: Value| {
            let level = match v["level"].as_str() {
                Some("ERROR") => Level::Error,
                Some("WARN") => Level::Warn,
                _ => Level::Info,
            };
            printer.print(
                v["resource"].as_str().unwrap_or(""),
                level,
                v["text"].as_str().unwrap_or(""),
            );
            Ok(true)
        },
    )?;
    Ok(ExitCode::SUCCESS)
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
