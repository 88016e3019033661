//! A UIResource as an agent wants to read it: one flat record per resource with the combined
//! status the terminal view shows, the update and runtime statuses it comes from, the last
//! update's timing and error, and whether changes wait to be applied.

use crate::tui::model::{Status, status_of};
use chrono::{DateTime, Utc};
use serde::Serialize;
use stilt_api::{UIBuildTerminated, UIResource};

/// Error lines kept in a summary (the whole error is in `explain_failure`).
const ERROR_LINES: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    /// `local`, `k8s`, `dc`, `tiltfile`, … (the Tiltfile's resource type).
    pub kind: String,
    /// ok, updating, pending, error, disabled or idle: update and runtime status combined.
    pub status: &'static str,
    pub update_status: String,
    pub runtime_status: String,
    pub disabled: bool,
    /// Files changed since the last update that no update has applied yet.
    pub pending_changes: bool,
    pub queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// When the running update started (RFC 3339), if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updating_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update: Option<UpdateSummary>,
    /// The last update's error, first lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Updates in the build history (the newest few are kept).
    pub updates_recorded: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_status: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSummary {
    pub span_id: String,
    pub start_time: Option<String>,
    pub finish_time: Option<String>,
    pub duration_ms: Option<i64>,
    pub ok: bool,
}

pub fn update_summary(b: &UIBuildTerminated) -> UpdateSummary {
    UpdateSummary {
        span_id: b.span_id.clone(),
        start_time: b.start_time.map(|t| t.to_string()),
        finish_time: b.finish_time.map(|t| t.to_string()),
        duration_ms: duration_ms(b.start_time.map(|t| t.0), b.finish_time.map(|t| t.0)),
        ok: b.error.is_empty(),
    }
}

pub fn duration_ms(start: Option<DateTime<Utc>>, finish: Option<DateTime<Utc>>) -> Option<i64> {
    Some((finish? - start?).num_milliseconds())
}

/// The first `n` non-blank lines of a text.
pub fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn is_disabled(ui: &UIResource) -> bool {
    ui.status
        .as_ref()
        .and_then(|s| s.disable_status.as_ref())
        .is_some_and(|d| d.state == "Disabled")
}

pub fn combined_status(ui: &UIResource) -> Status {
    let st = ui.status.clone().unwrap_or_default();
    status_of(
        &st.update_status,
        &st.runtime_status,
        is_disabled(ui),
        st.queued,
    )
}

pub fn summarize(ui: &UIResource) -> Summary {
    let st = ui.status.clone().unwrap_or_default();
    let last = st.build_history.first();
    Summary {
        name: ui.metadata.name.clone(),
        kind: ui
            .metadata
            .annotations
            .get(stilt_engine::names::ANN_RESOURCE_TYPE)
            .cloned()
            .or_else(|| st.specs.iter().map(|s| s.r#type.clone()).next())
            .unwrap_or_default(),
        status: combined_status(ui).label(),
        update_status: st.update_status.clone(),
        runtime_status: st.runtime_status.clone(),
        disabled: is_disabled(ui),
        pending_changes: st.has_pending_changes,
        queued: st.queued,
        waiting: st.waiting.as_ref().map(|w| w.reason.clone()),
        updating_since: st
            .current_build
            .as_ref()
            .and_then(|b| b.start_time)
            .map(|t| t.to_string()),
        last_update: last.map(update_summary),
        last_error: last
            .map(|b| first_lines(&b.error, ERROR_LINES))
            .filter(|e| !e.is_empty()),
        updates_recorded: st.build_history.len(),
        pod_status: st
            .k8s_resource_info
            .as_ref()
            .map(|k| k.pod_status.clone())
            .filter(|s| !s.is_empty()),
        links: st.endpoint_links.iter().map(|l| l.url.clone()).collect(),
    }
}

/// Resources in the UIs' order: the Tiltfile first, then the Tiltfile's resource order.
pub fn summarize_all(mut resources: Vec<UIResource>) -> Vec<Summary> {
    resources.sort_by_key(|u| {
        let tiltfile = u.metadata.name == stilt_engine::names::TILTFILE_RESOURCE;
        let order = u.status.as_ref().map(|s| s.order).unwrap_or_default();
        (!tiltfile, order, u.metadata.name.clone())
    });
    resources.iter().map(summarize).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A UIResource from the JSON the API serves.
    pub fn ui(v: serde_json::Value) -> UIResource {
        serde_json::from_value(v).expect("a UIResource")
    }

    #[test]
    fn summarises_status_timing_and_error() {
        let failed = ui(json!({
            "metadata": {"name": "api", "annotations": {"stilt.dev/resource-type": "local"}},
            "status": {
                "updateStatus": "error", "runtimeStatus": "not_applicable", "order": 2,
                "hasPendingChanges": true,
                "buildHistory": [{
                    "error": "Command \"make\" failed: exit status 2\n\n  more\nline 3\nline 4\nline 5\nline 6",
                    "startTime": "2026-01-01T00:00:00.000000Z",
                    "finishTime": "2026-01-01T00:00:01.250000Z",
                    "spanID": "build:api:1"
                }],
                "disableStatus": {"state": "Enabled", "enabledCount": 1}
            }
        }));
        let s = summarize(&failed);
        assert_eq!(s.name, "api");
        assert_eq!(s.kind, "local");
        assert_eq!(s.status, "error");
        assert!(s.pending_changes);
        assert!(!s.disabled);
        assert_eq!(
            s.last_error.as_deref(),
            Some("Command \"make\" failed: exit status 2\n  more\nline 3\nline 4\nline 5")
        );
        let last = s.last_update.unwrap();
        assert_eq!(last.duration_ms, Some(1250));
        assert!(!last.ok);
        assert_eq!(last.span_id, "build:api:1");
        assert_eq!(s.updates_recorded, 1);
    }

    #[test]
    fn combined_status_follows_the_terminal_view() {
        // (update, runtime, disabled, updating) → status label
        let cases = [
            ("ok", "ok", false, false, "ok"),
            ("ok", "not_applicable", false, false, "ok"),
            ("ok", "error", false, false, "error"),
            ("in_progress", "error", false, true, "updating"),
            ("pending", "none", false, false, "pending"),
            ("none", "none", false, false, "idle"),
            ("error", "ok", true, false, "disabled"),
        ];
        for (update, runtime, disabled, updating, want) in cases {
            let mut status = json!({
                "updateStatus": update, "runtimeStatus": runtime,
                "disableStatus": {"state": if disabled { "Disabled" } else { "Enabled" }},
            });
            if updating {
                status["currentBuild"] =
                    json!({"startTime": "2026-01-01T00:00:00.000000Z", "spanID": "build:x:2"});
            }
            let s = summarize(&ui(json!({"metadata": {"name": "x"}, "status": status})));
            assert_eq!(s.status, want, "{update}/{runtime} disabled={disabled}");
            assert_eq!(s.disabled, disabled);
            assert_eq!(s.updating_since.is_some(), updating);
        }
    }

    #[test]
    fn the_tiltfile_comes_first_then_the_tiltfile_order() {
        let mk = |name: &str, order: i32| {
            ui(json!({"metadata": {"name": name}, "status": {"order": order}}))
        };
        let names: Vec<String> = summarize_all(vec![
            mk("b", 2),
            mk("a", 3),
            mk("(Tiltfile)", 9),
            mk("c", 1),
        ])
        .into_iter()
        .map(|s| s.name)
        .collect();
        assert_eq!(names, ["(Tiltfile)", "c", "b", "a"]);
    }
}
