//! "Why did it fail?": which failure of a resource to explain, and the explanation — the log
//! lines around the first error of that update, the update's error and stage timings, and the
//! recent build history — decided from the UIResource and a log window (pure).

use super::logwin::Window;
use super::summary::{UpdateSummary, duration_ms, first_lines, update_summary};
use serde::Serialize;
use stilt_api::{UIBuildTerminated, UIResource};

/// Lines of log shown before / after the first error.
pub const BEFORE: usize = 15;
pub const AFTER: usize = 10;
/// Build history entries listed.
const HISTORY: usize = 5;

/// Which failure to explain.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// An update failed: read the lines of its span.
    Update { span: String },
    /// The update succeeded but what runs is failing (a crashed server, a pod in error): read
    /// the newest runtime lines.
    Runtime,
    /// Nothing failed.
    None,
}

fn last_failed(ui: &UIResource) -> Option<&UIBuildTerminated> {
    ui.status
        .as_ref()?
        .build_history
        .iter()
        .find(|b| !b.error.is_empty())
}

/// The failure to explain: a runtime error when the newest update succeeded; else the newest
/// failed update still in the history (even when a later one succeeded: the agent asked about
/// the last failure); else a runtime error; else nothing.
pub fn target(ui: &UIResource) -> Target {
    let st = ui.status.clone().unwrap_or_default();
    let runtime_failing = st.runtime_status == "error";
    let newest_ok = st.build_history.first().is_some_and(|b| b.error.is_empty());
    if runtime_failing && newest_ok {
        return Target::Runtime;
    }
    match last_failed(ui) {
        Some(b) => Target::Update {
            span: b.span_id.clone(),
        },
        None if runtime_failing => Target::Runtime,
        None => Target::None,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub resource: String,
    /// `update`, `runtime` or `none`.
    pub failure: &'static str,
    /// One sentence for the agent.
    pub summary: String,
    /// Whether the resource is failing now (a later update may have fixed an older failure).
    pub failing_now: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<FailedUpdate>,
    /// The first error line (as in `logLines`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_line: Option<String>,
    /// Log lines around the first error (or the last lines when no line reads as an error).
    pub log_lines: Vec<String>,
    /// Newest first.
    pub history: Vec<UpdateSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedUpdate {
    #[serde(flatten)]
    pub timing: UpdateSummary,
    pub error: String,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub duration_ms: Option<i64>,
}

pub fn explain(ui: &UIResource, target: &Target, window: Option<Window>) -> Explanation {
    let st = ui.status.clone().unwrap_or_default();
    let failing_now = super::summary::combined_status(ui) == crate::tui::model::Status::Error;
    let window = window.unwrap_or(Window {
        lines: vec![],
        error_index: None,
        span_lines: 0,
    });
    let error_line = window
        .error_index
        .and_then(|i| window.lines.get(i))
        .map(|l| l.render());
    let log_lines: Vec<String> = window.lines.iter().map(|l| l.render()).collect();
    let name = ui.metadata.name.clone();
    let (failure, update, summary) = match target {
        Target::Update { span } => {
            let b = st.build_history.iter().find(|b| &b.span_id == span);
            let update = b.map(|b| FailedUpdate {
                timing: update_summary(b),
                error: b.error.clone(),
                stages: b
                    .stages
                    .iter()
                    .map(|s| Stage {
                        name: s.name.clone(),
                        duration_ms: duration_ms(
                            s.start_time.map(|t| t.0),
                            s.finish_time.map(|t| t.0),
                        ),
                    })
                    .collect(),
            });
            let error = b.map(|b| first_lines(&b.error, 1)).unwrap_or_default();
            let when = b
                .and_then(|b| b.start_time)
                .map(|t| format!(" (started {t})"))
                .unwrap_or_default();
            let mut summary = format!("update {span} of {name} failed{when}: {error}");
            if !failing_now {
                summary.push_str("; the resource is not failing now (a later update succeeded or it is disabled)");
            }
            ("update", update, summary)
        }
        Target::Runtime => {
            let what = st
                .k8s_resource_info
                .as_ref()
                .map(|k| k.pod_status.clone())
                .filter(|s| !s.is_empty())
                .map(|p| format!(" (pod status {p})"))
                .unwrap_or_default();
            let first = error_line
                .as_deref()
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            (
                "runtime",
                None,
                format!("{name} updated fine but its runtime is failing{what}{first}"),
            )
        }
        Target::None => (
            "none",
            None,
            format!(
                "{name} has no failure on record (update {:?}, runtime {:?})",
                st.update_status, st.runtime_status
            ),
        ),
    };
    Explanation {
        resource: name,
        failure,
        summary,
        failing_now,
        update,
        error_line,
        log_lines,
        history: st
            .build_history
            .iter()
            .take(HISTORY)
            .map(update_summary)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::logwin::LogLine;
    use crate::mcp::summary::tests::ui;
    use serde_json::json;

    fn build(span: &str, error: &str) -> serde_json::Value {
        json!({
            "spanID": span, "error": error,
            "startTime": "2026-01-01T00:00:00.000000Z",
            "finishTime": "2026-01-01T00:00:02.000000Z",
            "stages": [{"name": "update", "startTime": "2026-01-01T00:00:00.000000Z",
                        "finishTime": "2026-01-01T00:00:02.000000Z"}]
        })
    }

    fn res(update: &str, runtime: &str, history: Vec<serde_json::Value>) -> UIResource {
        ui(json!({"metadata": {"name": "web"}, "status": {
            "updateStatus": update, "runtimeStatus": runtime, "buildHistory": history}}))
    }

    #[test]
    fn picks_the_failure_to_explain() {
        let span = |s: &str| Target::Update { span: s.into() };
        let cases = [
            // newest failed
            (
                res(
                    "error",
                    "not_applicable",
                    vec![build("b:2", "boom"), build("b:1", "")],
                ),
                span("b:2"),
            ),
            // an older failure, fixed since: still the last failure
            (
                res("ok", "ok", vec![build("b:2", ""), build("b:1", "boom")]),
                span("b:1"),
            ),
            // the update is fine, the server crashed
            (
                res("ok", "error", vec![build("b:2", ""), build("b:1", "boom")]),
                Target::Runtime,
            ),
            (res("none", "error", vec![]), Target::Runtime),
            (res("ok", "ok", vec![build("b:1", "")]), Target::None),
        ];
        for (u, want) in cases {
            assert_eq!(target(&u), want, "{:?}", u.status);
        }
    }

    #[test]
    fn explains_a_failed_update_with_its_log_window_and_stages() {
        let u = res(
            "error",
            "not_applicable",
            vec![
                build("b:2", "Command \"make\" failed: exit status 2"),
                build("b:1", ""),
            ],
        );
        let t = target(&u);
        let line = |level: &str, text: &str| LogLine {
            span: "b:2".into(),
            level: level.into(),
            time: String::new(),
            text: text.into(),
        };
        let window = Window {
            lines: vec![
                line("INFO", "compiling"),
                line("INFO", "main.c:3: error: x undeclared"),
                line("ERROR", "Command \"make\" failed: exit status 2"),
            ],
            error_index: Some(1),
            span_lines: 3,
        };
        let e = explain(&u, &t, Some(window));
        assert_eq!(e.failure, "update");
        assert!(e.failing_now);
        assert_eq!(
            e.error_line.as_deref(),
            Some("main.c:3: error: x undeclared")
        );
        assert_eq!(
            e.log_lines,
            [
                "compiling",
                "main.c:3: error: x undeclared",
                "ERROR: Command \"make\" failed: exit status 2"
            ]
        );
        assert!(
            e.summary.contains("update b:2 of web failed") && e.summary.contains("exit status 2"),
            "{}",
            e.summary
        );
        let update = e.update.unwrap();
        assert_eq!(update.timing.duration_ms, Some(2000));
        assert_eq!(update.stages.len(), 1);
        assert_eq!(update.stages[0].name, "update");
        assert_eq!(update.stages[0].duration_ms, Some(2000));
        assert_eq!(e.history.len(), 2);
        assert!(!e.history[0].ok && e.history[1].ok);
    }

    #[test]
    fn says_when_there_is_nothing_to_explain_or_the_failure_is_old() {
        let healthy = res("ok", "ok", vec![build("b:1", "")]);
        let e = explain(&healthy, &target(&healthy), None);
        assert_eq!(e.failure, "none");
        assert!(!e.failing_now);
        assert!(e.summary.contains("no failure on record"), "{}", e.summary);
        let fixed = res("ok", "ok", vec![build("b:2", ""), build("b:1", "boom")]);
        let e = explain(&fixed, &target(&fixed), None);
        assert!(e.summary.contains("not failing now"), "{}", e.summary);
    }
}
