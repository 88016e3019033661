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
    controller::run(
        ctx.clone(),
        Queue::default(),
        vec![
            ("UIResource", all.clone()),
            ("Tiltfile", all.clone()),
            ("Cmd", all),
        ],
        Arc::new(SessionReconciler { ctx }),
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
    fn targets(&self) -> Vec<Target> {
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
            let kind = ui
                .metadata
                .annotations
                .get(ANN_RESOURCE_TYPE)
                .map(String::as_str)
                .unwrap_or("");
            if kind == "k8s" || kind == "docker-compose" {
                let job = ui
                    .metadata
                    .annotations
                    .get(ANN_POD_READINESS)
                    .is_some_and(|r| r == "succeeded");
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
                                grace_status: String::new(),
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

/// Tilt's `ci` rule: done with an error at the first failed target; done successfully when no
/// target is waiting or unready and at least one target besides the Tiltfile ran.
pub fn ci_verdict(targets: &[Target]) -> Option<String> {
    for t in targets {
        if let Some(term) = &t.state.terminated
            && !term.error.is_empty()
        {
            return Some(format!("{}: {}", t.resources.join(","), term.error));
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
                (_, _, Some(_)) => true,
                _ => true,
            },
        )
}

impl Reconciler for SessionReconciler {
    fn reconcile(&self, _name: &str) {
        let targets = self.targets();
        let Ok(mut session) = self.ctx.store.get_typed::<Session>(SESSION_NAME) else {
            return;
        };
        let mut status = session.status.clone().unwrap_or_default();
        status.targets = targets;
        if session.spec.exit_condition == EXIT_CONDITION_CI && !status.done {
            if let Some(err) = ci_verdict(&status.targets) {
                status.done = true;
                status.error = err;
            } else if ci_done(&status.targets) {
                status.done = true;
            }
        }
        if session.status.as_ref() != Some(&status) {
            session.status = Some(status);
            let _ = self.ctx.store.update_status_typed(&session);
        }
    }
}
