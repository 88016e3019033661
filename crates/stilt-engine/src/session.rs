//! The Session reconciler: every resource's targets and their states, and — in `ci` mode —
//! whether the run is done and why it failed.

use crate::controller::{self, Mapper, Queue, Reconciler};
use crate::names::*;
use crate::tiltfile::TiltfileConfig;
use crate::{Ctx, Mode};
use std::sync::Arc;
use stilt_api::*;
use stilt_store::{StoreError, TypedStore};

struct SessionReconciler {
    ctx: Ctx,
    /// Re-queues the session when a CI deadline (timeout, readiness, grace period) comes up.
    queue: Queue,
}

/// Tilt's grace statuses of a failed Kubernetes target (`ci_settings(k8s_grace_period=…)`).
pub const GRACE_TOLERATED: &str = "Tolerated";
pub const GRACE_EXCEEDED: &str = "Exceeded";

/// Parses a Go duration (`30m`, `1h30m`, `2.5s`, `500ms`, `0`). `None` when malformed.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// Go's rendering of a duration as Tilt prints it in messages (`30m0s`, `5s`, `1h0m0s`).
pub fn format_go_duration(d: std::time::Duration) -> String {
    let total = d.as_secs_f64();
    if total < 1.0 && total > 0.0 {
        return format!("{}ms", d.as_millis());
    }
    let h = d.as_secs() / 3600;
    let m = (d.as_secs() % 3600) / 60;
    let sec = total - (h * 3600 + m * 60) as f64;
    let sec = if sec.fract() == 0.0 {
        format!("{}s", sec as u64)
    } else {
        format!("{sec}s")
    };
    match (h, m) {
        (0, 0) => sec,
        (0, m) => format!("{m}m{sec}"),
        (h, m) => format!("{h}h{m}m{sec}"),
    }
}

/// The CI limits of a session (`ci_settings`), parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CiLimits {
    pub timeout: Option<std::time::Duration>,
    pub readiness_timeout: Option<std::time::Duration>,
    pub k8s_grace_period: Option<std::time::Duration>,
}

impl CiLimits {
    pub fn from_spec(ci: Option<&SessionCISpec>) -> Self {
        let d = |v: &Option<String>| {
            v.as_deref()
                .and_then(parse_go_duration)
                .filter(|d| !d.is_zero())
        };
        match ci {
            None => CiLimits::default(),
            Some(ci) => CiLimits {
                timeout: d(&ci.timeout),
                readiness_timeout: d(&ci.readiness_timeout),
                k8s_grace_period: d(&ci.k8s_grace_period),
            },
        }
    }
}

/// Carries the Tiltfile's `ci_settings` (the loader's Session object) into the engine's
/// Session, which the engine owns. Called by the Tiltfile reconciler after a successful load.
pub fn apply_ci_settings(ctx: &Ctx, loaded: &[AnyObject]) {
    let Some(ci) = loaded.iter().find_map(|o| match o {
        AnyObject::Session(s) => Some(s.spec.ci.clone()),
        _ => None,
    }) else {
        return;
    };
    if let Ok(mut s) = ctx.store.get_typed::<Session>(SESSION_NAME)
        && s.spec.exit_condition == EXIT_CONDITION_CI
        && s.spec.ci != ci
    {
        s.spec.ci = ci;
        crate::storewrite::logged(ctx.store.update_typed(&s), || {
            "writing the Session's ci settings".to_string()
        });
    }
}

pub fn start(ctx: Ctx, cfg: &TiltfileConfig) -> Result<(), StoreError> {
    let exit_condition = if ctx.mode == Mode::Ci {
        EXIT_CONDITION_CI
    } else {
        EXIT_CONDITION_MANUAL
    };
    let path = std::path::absolute(&cfg.path).unwrap_or(cfg.path.clone());
    let session = Session::new(
        SESSION_NAME,
        SessionSpec {
            tiltfile_path: path.display().to_string(),
            exit_condition: exit_condition.into(),
            ..Default::default()
        },
    );
    ctx.store.apply_typed(&session)?;
    let mut s = ctx.store.get_typed::<Session>(SESSION_NAME)?;
    s.status = Some(SessionStatus {
        pid: std::process::id() as i64,
        start_time: MicroTime::now(),
        targets: vec![],
        done: false,
        error: String::new(),
    });
    ctx.store.update_status_typed(&s)?;
    // The UIs' global object (Tilt's UISession "Tiltfile").
    let mut ui = UISession::new(SESSION_NAME, EmptySpec {});
    ui.status = None;
    ctx.store.apply_typed(&ui)?;
    let mut ui = ctx.store.get_typed::<UISession>(SESSION_NAME)?;
    ui.status = Some(UISessionStatus {
        running_tilt_build: Some(TiltBuild {
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }),
        tilt_start_time: Some(Time::now()),
        tiltfile_key: path.display().to_string(),
        version_settings: Some(VersionSettings {
            check_updates: false,
        }),
        ..Default::default()
    });
    ctx.store.update_status_typed(&ui)?;
    let all: Mapper = Arc::new(|_, _| vec![SESSION_NAME.to_string()]);
    let queue = Queue::default();
    controller::run(
        ctx.clone(),
        queue.clone(),
        vec![
            ("UIResource", all.clone()),
            ("Tiltfile", all.clone()),
            ("Cmd", all),
        ],
        Arc::new(SessionReconciler { ctx, queue }),
    );
    Ok(())
}

fn waiting(reason: &str) -> TargetState {
    TargetState {
        waiting: Some(TargetStateWaiting {
            wait_reason: reason.into(),
        }),
        ..Default::default()
    }
}

impl SessionReconciler {
    fn targets(&self, k8s_grace_period: Option<std::time::Duration>) -> Vec<Target> {
        let mut targets = Vec::new();
        if let Ok(tf) = self.ctx.store.get_typed::<Tiltfile>(TILTFILE_OBJECT) {
            let state = match tf.status.as_ref() {
                Some(TiltfileStatus {
                    terminated: Some(t),
                    ..
                }) => TargetState {
                    terminated: Some(TargetStateTerminated {
                        start_time: t.started_at.unwrap_or_default(),
                        finish_time: t.finished_at.unwrap_or_default(),
                        error: t.error.clone(),
                        grace_status: String::new(),
                    }),
                    ..Default::default()
                },
                Some(TiltfileStatus {
                    running: Some(r), ..
                }) => TargetState {
                    active: Some(TargetStateActive {
                        start_time: r.started_at.unwrap_or_default(),
                        ready: false,
                    }),
                    ..Default::default()
                },
                _ => waiting("waiting-for-tiltfile"),
            };
            targets.push(Target {
                name: "tiltfile:update".into(),
                resources: vec![TILTFILE_RESOURCE.into()],
                r#type: TARGET_TYPE_JOB.into(),
                state,
            });
        }
        let mut uis = self
            .ctx
            .store
            .list_typed::<UIResource>()
            .unwrap_or_default();
        uis.sort_by_key(|u| u.status.as_ref().map_or(i32::MAX, |s| s.order));
        for ui in uis {
            let name = ui.metadata.name.clone();
            if name == TILTFILE_RESOURCE {
                continue;
            }
            let s = ui.status.clone().unwrap_or_default();
            let disabled = s
                .disable_status
                .as_ref()
                .is_some_and(|d| d.state == "Disabled");
            let update_state = if disabled {
                TargetState {
                    disabled: Some(TargetStateDisabled {}),
                    ..Default::default()
                }
            } else if let Some(b) = &s.current_build {
                TargetState {
                    active: Some(TargetStateActive {
                        start_time: b.start_time.unwrap_or_default(),
                        ready: false,
                    }),
                    ..Default::default()
                }
            } else if let Some(last) = s.build_history.first() {
                TargetState {
                    terminated: Some(TargetStateTerminated {
                        start_time: last.start_time.unwrap_or_default(),
                        finish_time: last.finish_time.unwrap_or_default(),
                        error: last.error.clone(),
                        grace_status: String::new(),
                    }),
                    ..Default::default()
                }
            } else if s.update_status == "pending" || s.waiting.is_some() {
                waiting(
                    s.waiting
                        .as_ref()
                        .map_or("waiting-for-build", |w| w.reason.as_str()),
                )
            } else {
                TargetState::default()
            };
            targets.push(Target {
                name: format!("{name}:update"),
                resources: vec![name.clone()],
                r#type: TARGET_TYPE_JOB.into(),
                state: update_state,
            });
            let kind = Manifest::kind_of(&ui);
            if matches!(kind, Some(ResourceType::K8s | ResourceType::DockerCompose)) {
                let job = Manifest::pod_readiness_of(&ui) == "succeeded";
                let deployed = s.build_history.iter().any(|b| b.error.is_empty());
                let state = if disabled {
                    TargetState {
                        disabled: Some(TargetStateDisabled {}),
                        ..Default::default()
                    }
                } else if !deployed {
                    if s.build_history.is_empty()
                        && s.current_build.is_none()
                        && s.update_status != "pending"
                    {
                        TargetState::default()
                    } else {
                        waiting("waiting-for-deploy")
                    }
                } else {
                    let since = s.last_deploy_time.unwrap_or_default();
                    match (s.runtime_status.as_str(), job) {
                        ("ok", true) => TargetState {
                            terminated: Some(TargetStateTerminated {
                                start_time: since,
                                finish_time: MicroTime::now(),
                                error: String::new(),
                                grace_status: String::new(),
                            }),
                            ..Default::default()
                        },
                        ("ok", false) => TargetState {
                            active: Some(TargetStateActive {
                                start_time: since,
                                ready: true,
                            }),
                            ..Default::default()
                        },
                        ("error", _) => TargetState {
                            terminated: Some(TargetStateTerminated {
                                start_time: since,
                                finish_time: MicroTime::now(),
                                error: "runtime error (see the resource's log)".into(),
                                grace_status: if kind == Some(ResourceType::K8s) {
                                    grace_status(since, k8s_grace_period, MicroTime::now())
                                } else {
                                    String::new()
                                },
                            }),
                            ..Default::default()
                        },
                        _ => TargetState {
                            active: Some(TargetStateActive {
                                start_time: since,
                                ready: false,
                            }),
                            ..Default::default()
                        },
                    }
                };
                targets.push(Target {
                    name: format!("{name}:runtime"),
                    resources: vec![name.clone()],
                    r#type: if job {
                        TARGET_TYPE_JOB.into()
                    } else {
                        TARGET_TYPE_SERVER.into()
                    },
                    state,
                });
            }
            if let Ok(serve) = self.ctx.store.get_typed::<Cmd>(&serve_cmd(&name)) {
                let st = serve.status.unwrap_or_default();
                let state = if disabled {
                    TargetState {
                        disabled: Some(TargetStateDisabled {}),
                        ..Default::default()
                    }
                } else if let Some(r) = st.running {
                    TargetState {
                        active: Some(TargetStateActive {
                            start_time: r.started_at,
                            ready: st.ready,
                        }),
                        ..Default::default()
                    }
                } else if let Some(t) = st.terminated {
                    TargetState {
                        terminated: Some(TargetStateTerminated {
                            start_time: t.started_at,
                            finish_time: t.finished_at,
                            error: format!("Process exited with exit code {}", t.exit_code),
                            grace_status: String::new(),
                        }),
                        ..Default::default()
                    }
                } else if s.build_history.is_empty()
                    && s.current_build.is_none()
                    && s.update_status != "pending"
                {
                    TargetState::default()
                } else {
                    waiting("waiting-for-update")
                };
                targets.push(Target {
                    name: format!("{name}:serve"),
                    resources: vec![name.clone()],
                    r#type: TARGET_TYPE_SERVER.into(),
                    state,
                });
            }
        }
        targets
    }
}

/// Seconds from `from` to `now` (0 when `now` is earlier).
fn elapsed(from: MicroTime, now: MicroTime) -> std::time::Duration {
    (now.0 - from.0).to_std().unwrap_or_default()
}

/// Tilt's grace status of a failing Kubernetes target deployed at `since`.
pub fn grace_status(
    since: MicroTime,
    grace: Option<std::time::Duration>,
    now: MicroTime,
) -> String {
    match grace {
        Some(g) if since != MicroTime::default() => {
            if elapsed(since, now) >= g {
                GRACE_EXCEEDED.into()
            } else {
                GRACE_TOLERATED.into()
            }
        }
        _ => String::new(),
    }
}

/// Tilt's `ci` rule: done with an error at the first failed target (a Kubernetes failure
/// still within `k8s_grace_period` is retried, one past it says so); done successfully when no
/// target is waiting or unready and at least one target besides the Tiltfile ran.
pub fn ci_verdict(targets: &[Target]) -> Option<String> {
    for t in targets {
        if let Some(term) = &t.state.terminated
            && !term.error.is_empty()
        {
            let err = match term.grace_status.as_str() {
                GRACE_TOLERATED => continue,
                GRACE_EXCEEDED => format!("exceeded grace period: {}", term.error),
                _ => term.error.clone(),
            };
            return Some(format!("{}: {err}", t.resources.join(",")));
        }
    }
    None
}

pub fn ci_done(targets: &[Target]) -> bool {
    let relevant: Vec<&Target> = targets
        .iter()
        .filter(|t| t.state != TargetState::default() && t.state.disabled.is_none())
        .collect();
    let others = relevant
        .iter()
        .filter(|t| t.name != "tiltfile:update")
        .count();
    others > 0
        && relevant.iter().all(
            |t| match (&t.state.waiting, &t.state.active, &t.state.terminated) {
                (Some(_), _, _) => false,
                (_, Some(a), _) => t.r#type == TARGET_TYPE_SERVER && a.ready,
                (_, _, Some(term)) => term.grace_status != GRACE_TOLERATED,
                _ => true,
            },
        )
}

/// Tilt's summary of what a timed-out run was still waiting for.
fn waiting_summary(targets: &[Target]) -> String {
    let (mut waiting, mut not_ready, mut retrying) = (vec![], vec![], vec![]);
    for t in targets {
        if let Some(w) = &t.state.waiting {
            waiting.push(format!("{} {}", t.name, w.wait_reason));
        } else if t.state.active.as_ref().is_some_and(|a| !a.ready) {
            not_ready.push(t.name.clone());
        } else if t
            .state
            .terminated
            .as_ref()
            .is_some_and(|x| x.grace_status == GRACE_TOLERATED)
        {
            retrying.push(t.name.clone());
        }
    }
    [
        ("waiting", waiting),
        ("not ready", not_ready),
        ("retrying", retrying),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(what, v)| format!("{} resources {what} ({})", v.len(), v.join(",")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The CI deadlines (`ci_settings`): `Err` with Tilt's message once one has passed, else how
/// long until the next one (to re-check then).
pub fn ci_deadlines(
    limits: &CiLimits,
    started: MicroTime,
    targets: &[Target],
    now: MicroTime,
) -> Result<Option<std::time::Duration>, String> {
    let mut next: Option<std::time::Duration> = None;
    let mut soonest = |d: std::time::Duration| {
        next = Some(next.map_or(d, |n: std::time::Duration| n.min(d)));
    };
    if let Some(rt) = limits.readiness_timeout {
        for t in targets {
            let Some(a) = &t.state.active else { continue };
            if a.ready || t.r#type == TARGET_TYPE_JOB || a.start_time == MicroTime::default() {
                continue;
            }
            let e = elapsed(a.start_time, now);
            if e > rt {
                return Err(format!(
                    "Readiness timeout after {}: target {} not ready",
                    format_go_duration(rt),
                    t.name
                ));
            }
            soonest(rt - e);
        }
    }
    if let Some(g) = limits.k8s_grace_period {
        for t in targets {
            if let Some(term) = &t.state.terminated
                && term.grace_status == GRACE_TOLERATED
            {
                soonest(g.saturating_sub(elapsed(term.start_time, now)));
            }
        }
    }
    if let Some(to) = limits.timeout {
        let e = elapsed(started, now);
        if e > to {
            return Err(format!(
                "Timeout after {}: {}",
                format_go_duration(to),
                waiting_summary(targets)
            ));
        }
        soonest(to - e);
    }
    Ok(next)
}

impl Reconciler for SessionReconciler {
    fn reconcile(&self, _name: &str) {
        let Ok(mut session) = self.ctx.store.get_typed::<Session>(SESSION_NAME) else {
            return;
        };
        let ci = session.spec.exit_condition == EXIT_CONDITION_CI;
        let limits = if ci {
            CiLimits::from_spec(session.spec.ci.as_ref())
        } else {
            CiLimits::default()
        };
        let mut status = session.status.clone().unwrap_or_default();
        status.targets = self.targets(limits.k8s_grace_period);
        if ci && !status.done {
            if let Some(err) = ci_verdict(&status.targets) {
                status.done = true;
                status.error = err;
            } else if ci_done(&status.targets) {
                status.done = true;
            } else {
                match ci_deadlines(
                    &limits,
                    status.start_time,
                    &status.targets,
                    MicroTime::now(),
                ) {
                    Err(e) => {
                        status.done = true;
                        status.error = e;
                    }
                    Ok(Some(next)) => self
                        .queue
                        .add_after(SESSION_NAME, next + std::time::Duration::from_millis(10)),
                    Ok(None) => {}
                }
            }
        }
        if session.status.as_ref() != Some(&status) {
            session.status = Some(status);
            crate::storewrite::logged(self.ctx.store.update_status_typed(&session), || {
                "writing the Session's status".to_string()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> MicroTime {
        MicroTime(chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap())
    }

    fn server(name: &str, state: TargetState) -> Target {
        Target {
            name: name.into(),
            resources: vec![name.split(':').next().unwrap().into()],
            r#type: TARGET_TYPE_SERVER.into(),
            state,
        }
    }

    /// A target in a few words: `w` waiting, `r` active and ready, `a` active not ready,
    /// `ok` terminated fine, `err` terminated with an error, `tol` an error within the grace
    /// period, `exc` one past it, `off` disabled, `-` never asked to run.
    fn target(name: &str, ty: &str, state: &str) -> Target {
        let t0 = MicroTime::now();
        let terminated = |error: &str, grace: &str| TargetStateTerminated {
            start_time: t0,
            finish_time: t0,
            error: error.into(),
            grace_status: grace.into(),
        };
        let state = match state {
            "w" => TargetState {
                waiting: Some(TargetStateWaiting {
                    wait_reason: "waiting-for-dep".into(),
                }),
                ..Default::default()
            },
            "r" | "a" => TargetState {
                active: Some(TargetStateActive {
                    start_time: t0,
                    ready: state == "r",
                }),
                ..Default::default()
            },
            "ok" => TargetState {
                terminated: Some(terminated("", "")),
                ..Default::default()
            },
            "err" => TargetState {
                terminated: Some(terminated("exit status 1", "")),
                ..Default::default()
            },
            "tol" => TargetState {
                terminated: Some(terminated("CrashLoopBackOff", GRACE_TOLERATED)),
                ..Default::default()
            },
            "exc" => TargetState {
                terminated: Some(terminated("CrashLoopBackOff", GRACE_EXCEEDED)),
                ..Default::default()
            },
            "off" => TargetState {
                disabled: Some(TargetStateDisabled {}),
                ..Default::default()
            },
            _ => TargetState::default(),
        };
        Target {
            name: name.into(),
            resources: vec![name.split(':').next().unwrap_or(name).into()],
            r#type: ty.into(),
            state,
        }
    }

    #[test]
    fn the_ci_verdict() {
        let tf = |s| target("tiltfile:update", TARGET_TYPE_JOB, s);
        let job = |s| target("build:update", TARGET_TYPE_JOB, s);
        let server = |s| target("web:runtime", TARGET_TYPE_SERVER, s);
        // (case, targets) → (error, done)
        let rows: Vec<(&str, Vec<Target>, Option<&str>, bool)> = vec![
            ("only the Tiltfile ran", vec![tf("ok")], None, false),
            ("a job succeeded", vec![tf("ok"), job("ok")], None, true),
            ("a job still running", vec![tf("ok"), job("a")], None, false),
            ("a job waiting", vec![tf("ok"), job("w")], None, false),
            (
                "a ready server",
                vec![tf("ok"), job("ok"), server("r")],
                None,
                true,
            ),
            (
                "a server not ready",
                vec![tf("ok"), server("a")],
                None,
                false,
            ),
            (
                "a failed job",
                vec![tf("ok"), job("err"), server("r")],
                Some("build: exit status 1"),
                true,
            ),
            (
                "a failure within the grace period is retried",
                vec![tf("ok"), server("tol")],
                None,
                false,
            ),
            (
                "past the grace period",
                vec![tf("ok"), server("exc")],
                Some("web: exceeded grace period: CrashLoopBackOff"),
                true,
            ),
            (
                "disabled and never-run targets do not count",
                vec![
                    tf("ok"),
                    job("ok"),
                    server("off"),
                    target("m:update", TARGET_TYPE_JOB, "-"),
                ],
                None,
                true,
            ),
            (
                "a broken Tiltfile",
                vec![tf("err")],
                Some("tiltfile: exit status 1"),
                false,
            ),
        ];
        for (case, targets, error, done) in rows {
            assert_eq!(ci_verdict(&targets).as_deref(), error, "{case}: error");
            if error.is_none() {
                assert_eq!(ci_done(&targets), done, "{case}: done");
            }
        }
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("30m", Some(1800.0)),
            ("1h30m", Some(5400.0)),
            ("2.5s", Some(2.5)),
            ("500ms", Some(0.5)),
            ("0", Some(0.0)),
            ("", None),
            ("5", None),
            ("5x", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s).map(|d| d.as_secs_f64()), want, "{s}");
        }
        assert_eq!(format_go_duration(Duration::from_secs(1800)), "30m0s");
        assert_eq!(format_go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_go_duration(Duration::from_secs(3725)), "1h2m5s");
    }

    #[test]
    fn deadlines_like_tilt() {
        let limits = CiLimits {
            timeout: Some(Duration::from_secs(60)),
            readiness_timeout: Some(Duration::from_secs(10)),
            k8s_grace_period: None,
        };
        let unready = server(
            "web:runtime",
            TargetState {
                active: Some(TargetStateActive {
                    start_time: at(0),
                    ready: false,
                }),
                ..Default::default()
            },
        );
        let targets = vec![unready];
        assert_eq!(
            ci_deadlines(&limits, at(0), &targets, at(4)),
            Ok(Some(Duration::from_secs(6)))
        );
        assert_eq!(
            ci_deadlines(&limits, at(0), &targets, at(11)),
            Err("Readiness timeout after 10s: target web:runtime not ready".into())
        );
        let no_readiness = CiLimits {
            readiness_timeout: None,
            ..limits
        };
        assert_eq!(
            ci_deadlines(&no_readiness, at(0), &targets, at(61)),
            Err("Timeout after 1m0s: 1 resources not ready (web:runtime)".into())
        );
        assert_eq!(
            ci_deadlines(&CiLimits::default(), at(0), &targets, at(99)),
            Ok(None)
        );
    }

    #[test]
    fn grace_period_tolerates_then_fails() {
        let g = Some(Duration::from_secs(30));
        assert_eq!(grace_status(at(0), g, at(10)), GRACE_TOLERATED);
        assert_eq!(grace_status(at(0), g, at(30)), GRACE_EXCEEDED);
        assert_eq!(grace_status(at(0), None, at(30)), "");
        let failing = |grace: &str| {
            vec![server(
                "web:runtime",
                TargetState {
                    terminated: Some(TargetStateTerminated {
                        start_time: at(0),
                        finish_time: at(1),
                        error: "boom".into(),
                        grace_status: grace.into(),
                    }),
                    ..Default::default()
                },
            )]
        };
        assert_eq!(ci_verdict(&failing(GRACE_TOLERATED)), None);
        assert!(!ci_done(&failing(GRACE_TOLERATED)));
        assert_eq!(
            ci_verdict(&failing(GRACE_EXCEEDED)).as_deref(),
            Some("web: exceeded grace period: boom")
        );
        assert_eq!(ci_verdict(&failing("")).as_deref(), Some("web: boom"));
    }
}
