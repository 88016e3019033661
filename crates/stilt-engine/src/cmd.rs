//! The Cmd reconciler: runs each Cmd's process, restarts it when its spec, its restartOn inputs or
//! its restart count change, probes readiness, stops it when disabled or deleted.
//!
//! Cmds annotated `tilt.dev/managed-by` are run by the build controller (like Tilt's
//! `local_resource` update commands), not here.

use crate::Ctx;
use crate::controller::{self, Mapper, Queue, Reconciler};
use crate::names::ANN_RESTART_COUNT;
use crate::probe;
use crate::proc::{self, Output, ProcSpec, Stopper};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::TypedStore;

struct Process {
    key: String,
    finished: bool,
    run_id: u64,
    stopper: Stopper,
    out: Output,
}

/// A Cmd whose process could not start, retried with backoff while its inputs stay the same.
struct SpawnFailure {
    key: String,
    attempts: u32,
    retry_at: Instant,
}

#[derive(Default)]
struct State {
    procs: HashMap<String, Process>,
    failures: HashMap<String, SpawnFailure>,
    next_run: u64,
}

/// Like Tilt's restart backoff: 1 s, doubling, at most 5 minutes.
pub fn spawn_backoff(attempts: u32) -> Duration {
    const MAX: Duration = Duration::from_secs(300);
    Duration::from_secs(1)
        .checked_mul(1u32 << attempts.saturating_sub(1).min(16))
        .unwrap_or(MAX)
        .min(MAX)
}

/// Handle to the Cmd controller (for shutdown).
#[derive(Clone)]
pub struct CmdController {
    state: Arc<Mutex<State>>,
}

impl CmdController {
    /// Stops every process this controller started.
    pub async fn shutdown(&self) {
        let procs: Vec<(Stopper, Output)> = self
            .state
            .lock()
            .procs
            .drain()
            .map(|(_, p)| (p.stopper, p.out))
            .collect();
        let stops: Vec<_> = procs
            .into_iter()
            .map(|(s, o)| {
                tokio::spawn(async move { s.stop(Duration::from_secs(5), Some(&o)).await })
            })
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }
}

struct CmdReconciler {
    ctx: Ctx,
    state: Arc<Mutex<State>>,
    queue: Queue,
}

/// Cmds that reference the changed object in restartOn / startOn / disableSource.
fn referencing(ctx: &Ctx, field: &'static str) -> Mapper {
    let keys = crate::refindex::spec_keys(move |s: &CmdSpec| match field {
        "fileWatches" => s
            .restart_on
            .iter()
            .flat_map(|r| r.file_watches.clone())
            .collect(),
        "uiButtons" => s
            .restart_on
            .iter()
            .flat_map(|r| r.ui_buttons.clone())
            .chain(s.start_on.iter().flat_map(|r| r.ui_buttons.clone()))
            .collect(),
        _ => disable_config_map(s.disable_source.as_ref())
            .into_iter()
            .collect(),
    });
    crate::refindex::referencing(ctx, "Cmd", keys, crate::refindex::own_name())
}

pub fn disable_config_map(ds: Option<&DisableSource>) -> Option<String> {
    ds.and_then(|d| d.config_map.as_ref())
        .map(|c| c.name.clone())
}

/// Whether a disable source says "disabled".
pub fn is_disabled(ctx: &Ctx, ds: Option<&DisableSource>) -> bool {
    let Some(cm) = ds.and_then(|d| d.config_map.as_ref()) else {
        return false;
    };
    ctx.store
        .get_typed::<ConfigMap>(&cm.name)
        .is_ok_and(|c| c.data.get(&cm.key).is_some_and(|v| v == "true"))
}

pub fn start(ctx: Ctx) -> CmdController {
    let queue = Queue::default();
    let state = Arc::new(Mutex::new(State::default()));
    let r = Arc::new(CmdReconciler {
        ctx: ctx.clone(),
        state: state.clone(),
        queue: queue.clone(),
    });
    controller::run(
        ctx.clone(),
        queue,
        vec![
            ("Cmd", controller::same_name()),
            ("FileWatch", referencing(&ctx, "fileWatches")),
            ("UIButton", referencing(&ctx, "uiButtons")),
            ("ConfigMap", referencing(&ctx, "configMap")),
        ],
        r,
    );
    CmdController { state }
}

impl CmdReconciler {
    /// Everything whose change means "run the process anew".
    fn restart_key(&self, cmd: &Cmd) -> String {
        let mut key = serde_json::to_string(&(
            &cmd.spec.args,
            &cmd.spec.dir,
            &cmd.spec.env,
            &cmd.spec.readiness_probe,
        ))
        .unwrap_or_default();
        // A Cmd deleted and created again under the same name (between two reconciles) is a
        // new object: its process is a new one too.
        key.push_str(&cmd.metadata.uid);
        key.push_str(
            cmd.metadata
                .annotations
                .get(ANN_RESTART_COUNT)
                .map(String::as_str)
                .unwrap_or(""),
        );
        if let Some(r) = &cmd.spec.restart_on {
            for fw in &r.file_watches {
                if let Ok(f) = self.ctx.store.get_typed::<FileWatch>(fw) {
                    key.push_str(
                        &f.status
                            .and_then(|s| s.last_event_time)
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                    );
                }
            }
            for b in &r.ui_buttons {
                key.push_str(&self.last_click(b));
            }
        }
        // Each click of a startOn button starts the Cmd again (with that click's inputs).
        if let Some(s) = &cmd.spec.start_on {
            for b in &s.ui_buttons {
                key.push_str(&self.last_click(b));
            }
        }
        key
    }

    /// The inputs of the most recently clicked button that (re)starts this Cmd, as `NAME=value`
    /// (Tilt's cmd controller passes them to the process's environment).
    fn button_env(&self, cmd: &Cmd) -> Vec<String> {
        let names = cmd
            .spec
            .restart_on
            .iter()
            .flat_map(|r| r.ui_buttons.iter())
            .chain(cmd.spec.start_on.iter().flat_map(|s| s.ui_buttons.iter()));
        let latest = names
            .filter_map(|b| self.ctx.store.get_typed::<UIButton>(b).ok())
            .filter(|b| {
                b.status
                    .as_ref()
                    .is_some_and(|s| s.last_clicked_at.is_some())
            })
            .max_by_key(|b| {
                b.status
                    .as_ref()
                    .and_then(|s| s.last_clicked_at)
                    .map(|t| t.to_string())
            });
        latest.map(|b| input_env(&b)).unwrap_or_default()
    }

    fn last_click(&self, button: &str) -> String {
        self.ctx
            .store
            .get_typed::<UIButton>(button)
            .ok()
            .and_then(|b| b.status)
            .and_then(|s| s.last_clicked_at)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    fn write_status(&self, name: &str, f: impl Fn(&mut CmdStatus)) {
        write_cmd_status(&self.ctx, name, f);
    }

    /// Stops the process and forgets any spawn backoff.
    fn stop(&self, name: &str) {
        self.state.lock().failures.remove(name);
        self.stop_process(name);
    }

    fn stop_process(&self, name: &str) {
        if let Some(p) = self.state.lock().procs.remove(name).filter(|p| !p.finished) {
            tokio::spawn(async move { p.stopper.stop(proc::DEFAULT_GRACE, Some(&p.out)).await });
        }
    }
}

/// A button's inputs as `NAME=value`, in spec order (Tilt's `stringValue`): text and hidden
/// values as given, a bool as `true`/`false` or its trueString/falseString, a choice only when it
/// is one of the choices (else the first choice).
pub fn input_env(b: &UIButton) -> Vec<String> {
    let statuses = b
        .status
        .as_ref()
        .map(|s| s.inputs.as_slice())
        .unwrap_or_default();
    b.spec
        .inputs
        .iter()
        .map(|spec| {
            let st = statuses.iter().find(|s| s.name == spec.name);
            let value = match st {
                Some(UIInputStatus { text: Some(t), .. }) => t.value.clone(),
                Some(UIInputStatus { bool: Some(v), .. }) => {
                    let b = spec.bool.clone().unwrap_or_default();
                    if v.value {
                        b.true_string.unwrap_or_else(|| "true".into())
                    } else {
                        b.false_string.unwrap_or_else(|| "false".into())
                    }
                }
                Some(UIInputStatus {
                    hidden: Some(h), ..
                }) => h.value.clone(),
                Some(UIInputStatus {
                    choice: Some(c), ..
                }) => {
                    let choices = spec
                        .choice
                        .as_ref()
                        .map(|c| c.choices.clone())
                        .unwrap_or_default();
                    if choices.contains(&c.value) {
                        c.value.clone()
                    } else {
                        choices.first().cloned().unwrap_or_default()
                    }
                }
                _ => String::new(),
            };
            format!("{}={value}", spec.name)
        })
        .collect()
}

/// Read-modify-write of a Cmd's status (retries on conflict).
pub fn write_cmd_status(ctx: &Ctx, name: &str, f: impl Fn(&mut CmdStatus)) {
    crate::storewrite::logged(
        ctx.store
            .update_status_with::<Cmd>(name, |o| f(o.status.get_or_insert_with(Default::default))),
        || format!("writing the status of Cmd {name}"),
    );
}

impl Reconciler for CmdReconciler {
    fn reconcile(&self, name: &str) {
        let Ok(cmd) = self.ctx.store.get_typed::<Cmd>(name) else {
            self.stop(name);
            return;
        };
        // Engine-managed Cmds (local_resource update and serve commands) run here only once the
        // build controller has released them with a restart count.
        let held = cmd.metadata.annotations.contains_key(ANNOTATION_MANAGED_BY)
            && !cmd.metadata.annotations.contains_key(ANN_RESTART_COUNT);
        if held || cmd.metadata.deletion_timestamp.is_some() {
            self.stop(name);
            return;
        }
        if is_disabled(&self.ctx, cmd.spec.disable_source.as_ref()) {
            self.stop(name);
            self.write_status(name, |s| {
                s.running = None;
                s.ready = false;
                s.waiting = Some(CmdStateWaiting {
                    reason: "disabled".into(),
                });
                s.disable_status = Some(DisableStatus {
                    disabled: true,
                    state: "Disabled".into(),
                    reason: "disabled by ConfigMap".into(),
                    ..Default::default()
                });
            });
            return;
        }
        if let Some(start_on) = &cmd.spec.start_on {
            let after = start_on
                .start_after
                .map(|t| t.to_string())
                .unwrap_or_default();
            let clicked = start_on
                .ui_buttons
                .iter()
                .map(|b| self.last_click(b))
                .max()
                .unwrap_or_default();
            if clicked.is_empty() || clicked <= after {
                self.write_status(name, |s| {
                    s.waiting = Some(CmdStateWaiting {
                        reason: "cmd-await-start".into(),
                    })
                });
                return;
            }
        }
        let key = self.restart_key(&cmd);
        if self
            .state
            .lock()
            .procs
            .get(name)
            .is_some_and(|p| p.key == key)
        {
            return;
        }
        {
            let mut state = self.state.lock();
            match state.failures.get(name) {
                // Waiting out the backoff; a delayed reconcile is queued.
                Some(f) if f.key == key && Instant::now() < f.retry_at => return,
                Some(f) if f.key != key => {
                    state.failures.remove(name);
                }
                _ => {}
            }
        }
        self.stop_process(name);
        self.launch(cmd, key);
    }
}

impl CmdReconciler {
    fn launch(&self, cmd: Cmd, key: String) {
        let name = cmd.metadata.name.clone();
        let resource = cmd.metadata.resource_or_name();
        let out = Output {
            logs: self.ctx.logs.clone(),
            resource: resource.clone(),
            span: format!("cmd:{name}"),
        };
        let mut env = cmd.spec.env.clone();
        env.extend(self.button_env(&cmd));
        let spec = ProcSpec {
            args: cmd.spec.args.clone(),
            dir: (!cmd.spec.dir.is_empty()).then(|| cmd.spec.dir.clone().into()),
            env,
        };
        out.logs.line(
            &resource,
            &out.span,
            Level::Info,
            &format!("Running cmd: {}", cmd.spec.args.join(" ")),
        );
        let started = MicroTime::now();
        let mut running = match proc::try_spawn(
            &spec,
            &self.ctx.process_env,
            out.clone(),
            &self.ctx.leftovers,
        ) {
            Ok(r) => {
                self.state.lock().failures.remove(&name);
                r
            }
            Err(problem) => {
                let message = problem.describe(dir_field(&cmd));
                let delay = {
                    let mut state = self.state.lock();
                    let attempts = state
                        .failures
                        .get(&name)
                        .filter(|f| f.key == key)
                        .map_or(1, |f| f.attempts + 1);
                    let delay = spawn_backoff(attempts);
                    state.failures.insert(
                        name.clone(),
                        SpawnFailure {
                            key,
                            attempts,
                            retry_at: Instant::now() + delay,
                        },
                    );
                    delay
                };
                out.logs.line(
                    &resource,
                    &out.span,
                    Level::Error,
                    &format!(
                        "Failed to start: {message} (retrying in {}s)",
                        delay.as_secs()
                    ),
                );
                self.write_status(&name, |s| {
                    s.waiting = None;
                    s.running = None;
                    s.ready = false;
                    s.terminated = Some(CmdStateTerminated {
                        pid: 0,
                        exit_code: 1,
                        started_at: started,
                        finished_at: MicroTime::now(),
                        reason: format!("failed to start: {message}"),
                    });
                });
                self.queue.add_after(&name, delay);
                return;
            }
        };
        let run_id = {
            let mut st = self.state.lock();
            st.next_run += 1;
            let run_id = st.next_run;
            st.procs.insert(
                name.clone(),
                Process {
                    key,
                    finished: false,
                    run_id,
                    stopper: running.stopper(),
                    out: out.clone(),
                },
            );
            run_id
        };
        let pid = running.pid;
        let has_probe = cmd.spec.readiness_probe.is_some();
        self.write_status(&name, |s| {
            s.waiting = None;
            s.terminated = None;
            s.running = Some(CmdStateRunning {
                pid,
                started_at: started,
            });
            s.ready = !has_probe;
            s.disable_status = None;
        });
        let current = {
            let state = self.state.clone();
            let name = name.clone();
            move || {
                state
                    .lock()
                    .procs
                    .get(&name)
                    .is_some_and(|p| p.run_id == run_id)
            }
        };
        if let Some(probe) = cmd.spec.readiness_probe.clone() {
            let ctx = self.ctx.clone();
            let (name, out, current, stopper) = (
                name.clone(),
                out.clone(),
                current.clone(),
                running.stopper(),
            );
            tokio::spawn(async move { probe_loop(ctx, name, probe, out, current, stopper).await });
        }
        let ctx = self.ctx.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            let exit = running.wait().await;
            // The entry stays (marked finished) so the same inputs do not start it again.
            let is_current = current();
            if is_current && let Some(p) = state.lock().procs.get_mut(&name) {
                p.finished = true;
            }
            let level = if exit.code == 0 {
                Level::Info
            } else {
                Level::Error
            };
            let msg = if exit.reason == "killed" {
                "Process killed".to_string()
            } else {
                format!("Process exited with code {}", exit.code)
            };
            if is_current {
                out.logs.line(&out.resource, &out.span, level, &msg);
                write_cmd_status(&ctx, &name, |s| {
                    s.running = None;
                    s.ready = false;
                    s.terminated = Some(CmdStateTerminated {
                        pid,
                        exit_code: exit.code,
                        started_at: started,
                        finished_at: MicroTime::now(),
                        reason: exit.reason.clone(),
                    });
                });
            }
        });
    }
}

/// What the user called the working directory of this Cmd.
fn dir_field(cmd: &Cmd) -> &'static str {
    let managed = cmd.metadata.annotations.get(ANNOTATION_MANAGED_BY);
    if managed.is_some_and(|m| m == "local_resource") && cmd.metadata.name.ends_with(":serve") {
        "serve_dir"
    } else {
        "dir"
    }
}

async fn probe_loop(
    ctx: Ctx,
    name: String,
    probe: Probe,
    out: Output,
    current: impl Fn() -> bool,
    stopper: Stopper,
) {
    let t = probe::timing(&probe);
    tokio::time::sleep(t.initial_delay).await;
    let mut tracker = probe::Tracker::default();
    let mut exit = stopper;
    let mut first = true;
    loop {
        if !current() {
            return;
        }
        let result = probe::attempt(&probe, &ctx.process_env, &out, &ctx.leftovers).await;
        let flipped = tracker.record(&t, result.is_ok());
        // Like Tilt: every transition is logged, and the first result counts as one (from
        // "unknown"), so a probe that never passes says why.
        if flipped.is_some() || (first && result.is_err()) {
            let (word, level, detail) = match &result {
                Ok(d) => ("success", Level::Info, d),
                Err(e) => ("failure", Level::Warn, e),
            };
            for line in detail.lines() {
                out.logs.line(
                    &out.resource,
                    &out.span,
                    level,
                    &format!("[readiness probe: {word}] {line}"),
                );
            }
        }
        first = false;
        if let Some(ready) = flipped
            && current()
        {
            write_cmd_status(&ctx, &name, |s| {
                if s.running.is_some() {
                    s.ready = ready;
                }
            });
        }
        let _ = &mut exit;
        tokio::time::sleep(t.period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::testing::{ctx_with_adapters, eventually};

    /// The process has exited (gone, or a zombie not yet reaped).
    fn gone(pid: i64) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    }

    fn running_pid(ctx: &Ctx, name: &str) -> Option<i64> {
        ctx.store
            .get_typed::<Cmd>(name)
            .ok()?
            .status?
            .running
            .map(|r| r.pid as i64)
    }

    /// Found by a collection DELETE that the Tiltfile's objects come back from: the Cmd is gone
    /// and back before its reconcile runs. The new object gets a new process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cmd_deleted_and_created_again_gets_a_new_process() {
        let ctx = ctx_with_adapters(Default::default());
        let _cmds = start(ctx.clone());
        let cmd = Cmd::new(
            "sleeper",
            CmdSpec {
                args: vec!["sleep".into(), "30".into()],
                ..Default::default()
            },
        );
        ctx.store.create_typed(&cmd).unwrap();
        let first = eventually("the first process", || running_pid(&ctx, "sleeper")).await;
        ctx.store.delete("Cmd", "sleeper").unwrap();
        ctx.store.create_typed(&cmd).unwrap();
        let second = eventually("a new process", || {
            running_pid(&ctx, "sleeper").filter(|p| *p != first)
        })
        .await;
        eventually("the first process gone", || gone(first).then_some(())).await;
        ctx.store.delete("Cmd", "sleeper").unwrap();
        eventually("the second process gone", || gone(second).then_some(())).await;
    }

    #[test]
    fn spawn_failures_back_off_exponentially_up_to_five_minutes() {
        let secs: Vec<u64> = [1, 2, 3, 4, 9, 10, 40]
            .into_iter()
            .map(|n| spawn_backoff(n).as_secs())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 256, 300, 300]);
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn button_inputs_become_env() {
        let spec = |name: &str| UIInputSpec {
            name: name.into(),
            ..Default::default()
        };
        let status = |name: &str| UIInputStatus {
            name: name.into(),
            ..Default::default()
        };
        let choices = || {
            Some(UIChoiceInputSpec {
                choices: vec!["a".into(), "b".into()],
            })
        };
        let mut b = UIButton::default();
        b.spec.inputs = vec![
            UIInputSpec {
                text: Some(Default::default()),
                ..spec("T")
            },
            UIInputSpec {
                bool: Some(Default::default()),
                ..spec("B")
            },
            UIInputSpec {
                bool: Some(UIBoolInputSpec {
                    true_string: Some("yes".into()),
                    false_string: Some("no".into()),
                    ..Default::default()
                }),
                ..spec("B2")
            },
            UIInputSpec {
                choice: choices(),
                ..spec("C")
            },
            UIInputSpec {
                choice: choices(),
                ..spec("C2")
            },
            UIInputSpec {
                hidden: Some(UIHiddenInputSpec { value: "h".into() }),
                ..spec("H")
            },
            spec("MISSING"),
        ];
        b.status = Some(UIButtonStatus {
            inputs: vec![
                UIInputStatus {
                    text: Some(UITextInputStatus {
                        value: "hi there".into(),
                    }),
                    ..status("T")
                },
                UIInputStatus {
                    bool: Some(UIBoolInputStatus { value: true }),
                    ..status("B")
                },
                UIInputStatus {
                    bool: Some(UIBoolInputStatus { value: false }),
                    ..status("B2")
                },
                UIInputStatus {
                    choice: Some(UIChoiceInputStatus { value: "b".into() }),
                    ..status("C")
                },
                UIInputStatus {
                    choice: Some(UIChoiceInputStatus {
                        value: "zzz".into(),
                    }),
                    ..status("C2")
                },
                UIInputStatus {
                    hidden: Some(UIHiddenInputStatus { value: "h".into() }),
                    ..status("H")
                },
            ],
            ..Default::default()
        });
        assert_eq!(
            input_env(&b),
            [
                "T=hi there",
                "B=true",
                "B2=no",
                "C=b",
                "C2=a",
                "H=h",
                "MISSING="
            ]
        );
    }
}
