//! "Wait until it is healthy or failed after my edit", decided from one look at the UIResource
//! (pure; the tool polls).
//!
//! An edit is seen by the file watcher within a moment and shows as pending changes, then as a
//! running update. So the wait is for the edit's update — the one running when the call
//! arrives, else the next one to start (`since`; an optional look-back lets older ones count) —
//! and for the resource to settle after it: nothing running, pending, queued or waiting, and a
//! runtime that is no longer starting. An update that finished before the call does not count
//! by default: it may be the one before the edit. If no update comes while the resource sits
//! settled for a quiet period (the edit's update already finished, the edit did not touch this
//! resource, or it is a manual one), the current state is the answer, marked as not fresh.

use chrono::{DateTime, Utc};
use serde::Serialize;
use stilt_api::UIResource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Healthy,
    Failed,
    Disabled,
    /// No update has run (a manual resource nobody triggered).
    Idle,
}

/// What one look decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep waiting.
    Wait,
    /// Done: the outcome, and whether it comes from an update that started after `since`.
    Done { outcome: Outcome, fresh: bool },
}

/// Updates that started at or after this count as the edit's: the call's time less the
/// look-back, or the start of the update running at the call, whichever is earlier.
pub fn since(ui: &UIResource, call: DateTime<Utc>, lookback: chrono::Duration) -> DateTime<Utc> {
    let running = ui
        .status
        .as_ref()
        .and_then(|s| s.current_build.as_ref())
        .and_then(|b| b.start_time)
        .map(|t| t.0);
    let back = call - lookback;
    running.map_or(back, |r| r.min(back))
}

/// Runtime statuses that mean "still starting": wait for them to become ok or error.
fn runtime_starting(runtime: &str) -> bool {
    matches!(runtime, "pending" | "unknown")
}

pub fn decide(
    ui: &UIResource,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    quiet_until: DateTime<Utc>,
) -> Decision {
    if super::summary::is_disabled(ui) {
        return Decision::Done {
            outcome: Outcome::Disabled,
            fresh: false,
        };
    }
    let st = ui.status.clone().unwrap_or_default();
    let busy = st.current_build.is_some()
        || matches!(st.update_status.as_str(), "in_progress" | "pending")
        || st.has_pending_changes
        || st.queued
        || st.waiting.is_some();
    if busy {
        return Decision::Wait;
    }
    let last = st.build_history.first();
    let fresh = last
        .and_then(|b| b.start_time)
        .is_some_and(|t| t.0 >= since);
    let update_failed = last.is_some_and(|b| !b.error.is_empty());
    let outcome = if last.is_none() && st.runtime_status != "error" {
        Some(Outcome::Idle)
    } else if update_failed || st.runtime_status == "error" {
        Some(Outcome::Failed)
    } else if runtime_starting(&st.runtime_status) {
        None
    } else {
        Some(Outcome::Healthy)
    };
    match outcome {
        // A failed update is final; a runtime still starting after a good one is not yet.
        Some(outcome) if fresh => Decision::Done {
            outcome,
            fresh: true,
        },
        Some(outcome) if now >= quiet_until => Decision::Done {
            outcome,
            fresh: false,
        },
        _ => Decision::Wait,
    }
}

/// A healthy answer must hold for a moment: right after an update the runtime status can still
/// be the old server's (the new one is started just after the update is recorded). A failure
/// is final at once. Fed one decision per look; says when to answer.
#[derive(Debug, Default)]
pub struct Confirm {
    healthy_since: Option<std::time::Instant>,
}

/// How long a healthy state must hold.
pub const HOLD: std::time::Duration = std::time::Duration::from_millis(1000);

impl Confirm {
    pub fn answer(&mut self, d: Decision, now: std::time::Instant) -> Option<(Outcome, bool)> {
        match d {
            Decision::Done {
                outcome: Outcome::Healthy,
                fresh,
            } => {
                let since = *self.healthy_since.get_or_insert(now);
                (now - since >= HOLD).then_some((Outcome::Healthy, fresh))
            }
            Decision::Done { outcome, fresh } => Some((outcome, fresh)),
            Decision::Wait => {
                self.healthy_since = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::summary::tests::ui;
    use serde_json::json;

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-01T00:00:{s:02}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn res(status: serde_json::Value) -> UIResource {
        ui(json!({"metadata": {"name": "web"}, "status": status}))
    }

    fn built_at(s: u32, error: &str, runtime: &str) -> serde_json::Value {
        json!({
            "updateStatus": if error.is_empty() { "ok" } else { "error" },
            "runtimeStatus": runtime,
            "buildHistory": [{"spanID": "b", "error": error,
                "startTime": format!("2026-01-01T00:00:{s:02}.000000Z"),
                "finishTime": format!("2026-01-01T00:00:{:02}.000000Z", s + 1)}]
        })
    }

    #[test]
    fn decides_from_one_look() {
        let since = t(10);
        let quiet_until = t(20);
        let done = |outcome, fresh| Decision::Done { outcome, fresh };
        // (status, now, decision)
        let cases = [
            // An update that started after `since` and succeeded: healthy.
            (built_at(12, "", "ok"), t(13), done(Outcome::Healthy, true)),
            (
                built_at(12, "", "not_applicable"),
                t(13),
                done(Outcome::Healthy, true),
            ),
            // ... but its server is still starting: wait.
            (built_at(12, "", "pending"), t(13), Decision::Wait),
            // Failed update after `since`: failed at once.
            (
                built_at(12, "boom", "ok"),
                t(13),
                done(Outcome::Failed, true),
            ),
            (
                built_at(12, "", "error"),
                t(13),
                done(Outcome::Failed, true),
            ),
            // Only an older update: wait for the edit's update during the quiet period...
            (built_at(5, "", "ok"), t(13), Decision::Wait),
            // ... then answer with the current state, not fresh.
            (built_at(5, "", "ok"), t(20), done(Outcome::Healthy, false)),
            (
                built_at(5, "boom", "ok"),
                t(25),
                done(Outcome::Failed, false),
            ),
            // Busy: an update runs, changes are pending, or it waits for a dependency.
            (
                json!({"updateStatus": "in_progress", "currentBuild": {"spanID": "b2"}}),
                t(30),
                Decision::Wait,
            ),
            (
                json!({"updateStatus": "ok", "hasPendingChanges": true,
                       "buildHistory": [{"spanID": "b", "startTime": "2026-01-01T00:00:12.000000Z"}]}),
                t(30),
                Decision::Wait,
            ),
            (
                json!({"updateStatus": "pending", "waiting": {"reason": "waiting-for-dep"}}),
                t(30),
                Decision::Wait,
            ),
            // Never updated (manual): idle once quiet.
            (
                json!({"updateStatus": "none", "runtimeStatus": "none"}),
                t(13),
                Decision::Wait,
            ),
            (
                json!({"updateStatus": "none", "runtimeStatus": "none"}),
                t(21),
                done(Outcome::Idle, false),
            ),
            // Disabled: nothing will happen.
            (
                json!({"disableStatus": {"state": "Disabled"}, "updateStatus": "none"}),
                t(11),
                done(Outcome::Disabled, false),
            ),
        ];
        for (status, now, want) in cases {
            let u = res(status.clone());
            assert_eq!(
                decide(&u, since, now, quiet_until),
                want,
                "{status} at {now}"
            );
        }
    }

    #[test]
    fn the_edits_update_is_the_running_one_or_the_next() {
        let call = t(30);
        let running = res(
            json!({"currentBuild": {"spanID": "b", "startTime": "2026-01-01T00:00:28.000000Z"}}),
        );
        let idle = res(json!({"updateStatus": "ok"}));
        // (resource, look-back seconds) → since
        let cases = [
            (&idle, 0, t(30)),
            (&idle, 5, t(25)),
            (&running, 0, t(28)),
            (&running, 10, t(20)),
        ];
        for (u, back, want) in cases {
            assert_eq!(
                since(u, call, chrono::Duration::seconds(back)),
                want,
                "{back}"
            );
        }
    }

    #[test]
    fn healthy_must_hold_and_failure_is_at_once() {
        let start = std::time::Instant::now();
        let at = |ms| start + std::time::Duration::from_millis(ms);
        let healthy = Decision::Done {
            outcome: Outcome::Healthy,
            fresh: true,
        };
        let mut c = Confirm::default();
        assert_eq!(c.answer(healthy, at(0)), None);
        assert_eq!(c.answer(healthy, at(500)), None);
        // The new server is starting: the clock starts again.
        assert_eq!(c.answer(Decision::Wait, at(700)), None);
        assert_eq!(c.answer(healthy, at(900)), None);
        assert_eq!(c.answer(healthy, at(1900)), Some((Outcome::Healthy, true)));
        let failed = Decision::Done {
            outcome: Outcome::Failed,
            fresh: true,
        };
        assert_eq!(
            Confirm::default().answer(failed, at(0)),
            Some((Outcome::Failed, true))
        );
    }
}
