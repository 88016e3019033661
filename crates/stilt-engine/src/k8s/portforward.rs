//! The PortForward reconciler: one local listener per `spec.forwards` entry, forwarding each
//! connection to the pod named in `spec.podName`.
//!
//! The API rejects `containerPort: 0` here, as Tilt's does: the KubernetesDiscovery reconciler
//! fills it in from the pod ([`populate_container_ports`], Tilt's `PopulatePortForwards`) when
//! it creates the PortForward from its template. A spec change replaces the listeners; a listener that cannot bind yet
//! (the previous pod's forward still closing) is retried with backoff (50 ms doubling to 15 s),
//! and `status.forwardStatuses` says how each forward is doing.

use super::{AbortOnDrop, resource_of};
use crate::Ctx;
use crate::controller::{self, Mapper, Outcome, Queue, Reconcile};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_k8s::{ForwardSpec, PortForwarder};
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

const KIND: &str = "PortForward";

/// Fills `containerPort: 0` from the pod's declared ports, else with the local port.
pub(crate) fn populate_container_ports(forwards: &[Forward], pod: &Pod) -> Vec<Forward> {
    let declared: Vec<i32> = pod
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().copied())
        .collect();
    forwards
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if f.container_port == 0
                && let Some(first) = declared.first()
            {
                f.container_port = if declared.contains(&f.local_port) {
                    f.local_port
                } else {
                    *first
                };
            }
            if f.container_port == 0 {
                f.container_port = f.local_port;
            }
            f
        })
        .collect()
}

struct Active {
    spec: PortForwardSpec,
    _task: AbortOnDrop,
}

struct PortForwardReconciler {
    ctx: Ctx,
    active: Mutex<HashMap<String, Active>>,
}

pub fn start(ctx: Ctx) {
    let r = Arc::new(PortForwardReconciler {
        ctx: ctx.clone(),
        active: Default::default(),
    });
    let by_cluster: Mapper = Arc::new(|ctx: &Ctx, obj: &Value| {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        ctx.store
            .list_typed::<PortForward>()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.spec.cluster == name)
            .map(|p| p.metadata.name)
            .collect()
    });
    controller::run(
        ctx,
        Queue::default(),
        vec![(KIND, controller::same_name()), ("Cluster", by_cluster)],
        r,
    );
}

impl Reconcile for PortForwardReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let pf = match self.ctx.store.get_typed::<PortForward>(name) {
            Ok(pf) if pf.metadata.deletion_timestamp.is_none() => Some(pf),
            Ok(_) | Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let mut active = self.active.lock();
        let Some(pf) = pf else {
            // Dropping the task closes the listeners.
            active.remove(name);
            return Outcome::Done;
        };
        if active.get(name).is_some_and(|a| a.spec == pf.spec) {
            return Outcome::Done;
        }
        active.remove(name);
        let task = tokio::spawn(supervise(self.ctx.clone(), pf.clone()));
        active.insert(
            name.to_string(),
            Active {
                spec: pf.spec,
                _task: AbortOnDrop(task),
            },
        );
        Outcome::Done
    }
}

fn write_status(ctx: &Ctx, name: &str, statuses: &[ForwardStatus]) {
    if let Err(e) = ctx.store.update_status_with::<PortForward>(name, |o| {
        o.status
            .get_or_insert_with(Default::default)
            .forward_statuses = statuses.to_vec();
    }) {
        tracing::warn!("writing the status of PortForward {name}: {e}");
    }
}

/// Starts every forward (retrying what cannot start yet), then keeps status current.
async fn supervise(ctx: Ctx, pf: PortForward) {
    let name = pf.metadata.name.clone();
    let resource = resource_of(&pf.metadata);
    let span = format!("portforward:{name}");
    let mut delay = Duration::from_millis(50);
    let cap = Duration::from_secs(15);
    let cluster = loop {
        match ctx.k8s.cluster().await {
            Ok(c) => break c,
            Err(e) => {
                let statuses: Vec<ForwardStatus> = pf
                    .spec
                    .forwards
                    .iter()
                    .map(|f| ForwardStatus {
                        local_port: f.local_port,
                        container_port: f.container_port,
                        error: e.clone(),
                        ..Default::default()
                    })
                    .collect();
                write_status(&ctx, &name, &statuses);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cap);
            }
        }
    };
    let forwards = pf.spec.forwards.clone();
    let mut running: Vec<Option<PortForwarder>> = forwards.iter().map(|_| None).collect();
    let mut errors: Vec<String> = forwards.iter().map(|_| String::new()).collect();
    let mut logged: Vec<String> = errors.clone();
    let mut bound: Vec<Option<MicroTime>> = forwards.iter().map(|_| None).collect();
    delay = Duration::from_millis(50);
    loop {
        for (i, f) in forwards.iter().enumerate() {
            if running[i].is_some() {
                continue;
            }
            let spec = ForwardSpec {
                namespace: pf.spec.namespace.clone(),
                pod: pf.spec.pod_name.clone(),
                host: f.host.clone(),
                local_port: f.local_port as u16,
                container_port: f.container_port as u16,
            };
            match PortForwarder::start(cluster.clone(), spec).await {
                Ok(p) => {
                    running[i] = Some(p);
                    bound[i] = Some(MicroTime::now());
                    errors[i].clear();
                }
                Err(e) => errors[i] = e.to_string(),
            }
            if errors[i] != logged[i] && !errors[i].is_empty() {
                ctx.logs.line(
                    &resource,
                    &span,
                    Level::Warn,
                    &format!(
                        "Reconnecting... Error port-forwarding {} ({} -> {}): {}",
                        resource, f.local_port, f.container_port, errors[i]
                    ),
                );
            }
            logged[i] = errors[i].clone();
        }
        write_status(&ctx, &name, &statuses(&forwards, &running, &bound, &errors));
        if running.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(cap);
    }
    let mut changes: Vec<_> = running
        .iter()
        .flatten()
        .map(PortForwarder::subscribe)
        .collect();
    loop {
        let next =
            futures_util::future::select_all(changes.iter_mut().map(|c| Box::pin(c.changed())))
                .await;
        if next.0.is_err() {
            return;
        }
        for (i, p) in running.iter().enumerate() {
            if let Some(p) = p {
                errors[i] = p.state().error.unwrap_or_default();
            }
        }
        write_status(&ctx, &name, &statuses(&forwards, &running, &bound, &errors));
    }
}

fn statuses(
    forwards: &[Forward],
    running: &[Option<PortForwarder>],
    bound: &[Option<MicroTime>],
    errors: &[String],
) -> Vec<ForwardStatus> {
    forwards
        .iter()
        .zip(running)
        .zip(bound)
        .zip(errors)
        .map(|(((f, p), at), e)| ForwardStatus {
            local_port: p
                .as_ref()
                .map_or(f.local_port, |p| p.local_addr().port() as i32),
            container_port: f.container_port,
            addresses: p
                .as_ref()
                .map(|p| vec![p.local_addr().ip().to_string()])
                .unwrap_or_default(),
            started_at: *at,
            error: e.clone(),
        })
        .collect()
}
