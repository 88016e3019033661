//! The DockerComposeService lifecycle Tilt's `dockercomposeservice` reconciler owns besides
//! `up`: a disabled service's container is stopped and removed (`rm --stop --force`), and so is
//! the container of a service the Tiltfile no longer declares. Bringing a re-enabled service
//! back is the build controller's job (enabling resets its build state, so it updates again).

use crate::Ctx;
use crate::cmd::{disable_config_map, is_disabled};
use crate::controller::{self, Mapper, Queue, Reconciler};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::TypedStore;

/// What to do about one service, decided from what the store says now and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Stop and remove the service's container.
    Remove,
    /// Record that the service is enabled again (its container comes back with its update).
    Enabled,
}

/// The decision for a service that still exists: disabled ⇒ remove once per disabling, and again
/// if a container shows up running meanwhile (an `up` that was under way when it was disabled).
pub fn decide(disabled: bool, removed: bool, running: bool) -> Action {
    match (disabled, removed) {
        (true, false) => Action::Remove,
        (true, true) if running => Action::Remove,
        (false, true) => Action::Enabled,
        _ => Action::Nothing,
    }
}

#[derive(Default)]
struct State {
    /// Last spec seen per DockerComposeService, to clean up after it is deleted.
    specs: HashMap<String, DockerComposeServiceSpec>,
    /// Services whose container was removed because they are disabled.
    removed: HashSet<String>,
    /// Services with an `rm` under way.
    removing: HashSet<String>,
}

struct DcServiceReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<State>>,
}

/// DockerComposeServices whose disable source is the changed ConfigMap.
fn by_disable_source(ctx: &Ctx) -> Mapper {
    let keys = crate::refindex::spec_keys(|s: &DockerComposeServiceSpec| {
        disable_config_map(s.disable_source.as_ref())
            .into_iter()
            .collect()
    });
    crate::refindex::referencing(
        ctx,
        "DockerComposeService",
        keys,
        crate::refindex::own_name(),
    )
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(DcServiceReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: Arc::default(),
    });
    controller::run(
        ctx.clone(),
        queue,
        vec![
            ("DockerComposeService", controller::same_name()),
            ("ConfigMap", by_disable_source(&ctx)),
        ],
        r,
    );
}

impl Reconciler for DcServiceReconciler {
    fn reconcile(&self, name: &str) {
        let dcs = match self.ctx.store.get_typed::<DockerComposeService>(name) {
            Ok(d) => d,
            Err(_) => {
                // Deleted: remove its container unless another object now runs that service
                // (a renamed resource).
                let mut st = self.state.lock();
                st.removed.remove(name);
                let Some(spec) = st.specs.remove(name) else {
                    return;
                };
                drop(st);
                let still_declared = self
                    .ctx
                    .store
                    .list_typed::<DockerComposeService>()
                    .unwrap_or_default()
                    .iter()
                    .any(|d| {
                        d.spec.service == spec.service && d.spec.project.name == spec.project.name
                    });
                if !still_declared {
                    self.spawn_remove_deleted(spec);
                }
                return;
            }
        };
        let disabled = is_disabled(&self.ctx, dcs.spec.disable_source.as_ref());
        let running = dcs
            .status
            .as_ref()
            .and_then(|s| s.container_state.as_ref())
            .is_some_and(|c| c.running);
        let mut st = self.state.lock();
        st.specs.insert(name.to_string(), dcs.spec.clone());
        if st.removing.contains(name) {
            return;
        }
        match decide(disabled, st.removed.contains(name), running) {
            Action::Nothing => {}
            Action::Enabled => {
                st.removed.remove(name);
                drop(st);
                self.write_disable_status(name, false);
            }
            Action::Remove => {
                st.removed.insert(name.to_string());
                st.removing.insert(name.to_string());
                drop(st);
                self.write_disable_status(name, true);
                self.spawn_rm(name, dcs.spec.clone(), dcs.metadata.resource_or_name());
            }
        }
    }
}

impl DcServiceReconciler {
    fn write_disable_status(&self, name: &str, disabled: bool) {
        let _ = self
            .ctx
            .store
            .update_status_with::<DockerComposeService>(name, |o| {
                o.status.get_or_insert_with(Default::default).disable_status =
                    Some(DisableStatus {
                        disabled,
                        last_update_time: Some(Time::now()),
                        reason: if disabled {
                            "disabled by ConfigMap".into()
                        } else {
                            "enabled by ConfigMap".into()
                        },
                        state: if disabled { "Disabled" } else { "Enabled" }.into(),
                    });
            });
    }

    /// The container of a service the Tiltfile dropped. The compose files may no longer name
    /// the service (compose would refuse `rm`), so its containers are found by their labels
    /// and removed through the engine.
    fn spawn_remove_deleted(&self, spec: DockerComposeServiceSpec) {
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let result = async {
                let compose = ctx.docker.compose().await?;
                let docker = ctx.docker.docker().await?;
                let project = crate::docker::project_spec(&spec.project);
                let containers = compose.ps(&project).await.map_err(|e| e.to_string())?;
                for c in containers.iter().filter(|c| c.service == spec.service) {
                    docker
                        .remove_container(&c.id, true)
                        .await
                        .map_err(|e| e.to_string())?;
                    ctx.logs.line(
                        "(Tiltfile)",
                        "dcservice",
                        Level::Info,
                        &format!(
                            "Removed container {} of dropped service {}",
                            c.name, spec.service
                        ),
                    );
                }
                Ok::<(), String>(())
            }
            .await;
            if let Err(e) = result {
                ctx.logs.line(
                    "(Tiltfile)",
                    "dcservice",
                    Level::Error,
                    &format!("removing the container of service {}: {e}", spec.service),
                );
            }
        });
    }

    /// `compose rm --stop --force <service>`, its output into the resource's log.
    fn spawn_rm(&self, name: &str, spec: DockerComposeServiceSpec, resource: String) {
        let (ctx, state, queue, name) = (
            self.ctx.clone(),
            self.state.clone(),
            self.queue.clone(),
            name.to_string(),
        );
        tokio::spawn(async move {
            let result = async {
                let compose = ctx.docker.compose().await?;
                let project = crate::docker::project_spec(&spec.project);
                let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
                let (logs, r) = (ctx.logs.clone(), resource.clone());
                let pump = tokio::spawn(async move {
                    while let Some(line) = rx.recv().await {
                        logs.line(&r, &format!("dcservice:{r}"), Level::Info, line.trim_end());
                    }
                });
                let r = compose
                    .rm(&project, std::slice::from_ref(&spec.service), Some(tx))
                    .await
                    .map_err(|e| e.to_string());
                let _ = pump.await;
                r
            }
            .await;
            if let Err(e) = &result {
                ctx.logs.line(
                    &resource,
                    &format!("dcservice:{resource}"),
                    Level::Error,
                    &format!("docker compose rm {}: {e}", spec.service),
                );
            }
            crate::docker::clear_container(&ctx, &name);
            state.lock().removing.remove(&name);
            // Look again: the service may have been enabled, or an `up` may have raced us.
            queue.add(&name);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let cases = [
            // (disabled, removed, running) → action
            ((false, false, true), Action::Nothing),
            ((false, false, false), Action::Nothing),
            ((true, false, true), Action::Remove),
            ((true, false, false), Action::Remove),
            ((true, true, false), Action::Nothing),
            ((true, true, true), Action::Remove),
            ((false, true, false), Action::Enabled),
            ((false, true, true), Action::Enabled),
        ];
        for ((d, r, run), want) in cases {
            assert_eq!(
                decide(d, r, run),
                want,
                "disabled={d} removed={r} running={run}"
            );
        }
    }
}
