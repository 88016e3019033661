//! The KubernetesApply reconciler.
//!
//! Reacts to its KubernetesApply and to what the apply depends on: the ImageMaps named in
//! `spec.imageMaps`, the disable ConfigMap, the Cluster, and the `restartOn` FileWatches and
//! UIButtons. It
//! - applies `spec.yaml` with the built images injected (or runs `spec.applyCmd`) and writes
//!   `status.resultYAML` / `appliedInputHash` / `lastApplyTime` / `error`;
//! - deletes what it applied when the object is disabled or deleted, and what an apply no longer
//!   contains (unless annotated `tilt.dev/down-policy: keep`);
//! - owns the KubernetesDiscovery of the same name (watches from the applied UIDs).
//!
//! When it applies follows Tilt: an object managed by the build queue
//! (`tilt.dev/managed-by: buildcontrol`, every Tiltfile resource) is applied only when the queue
//! asks — it writes a token into the `stilt.dev/apply-request` annotation, and the reconciler
//! answers by copying it to `stilt.dev/applied-request` once status is written
//! ([`request_apply`]). Any other KubernetesApply (e.g. `kubectl apply -f`) is applied once its
//! cluster and images are ready, and again when its spec, its images or a `restartOn` input
//! change.

use super::{is_owned_by, owned_by, resource_of};
use crate::Ctx;
use crate::controller::{self, Mapper, Outcome, Queue, Reconcile};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_k8s::inject::{DOWN_POLICY_ANNOTATION, ImageInjection, ImageLocator, prepare_for_apply};
use stilt_k8s::manifest::ObjectRef;
use stilt_k8s::{ApplyOptions, DeleteOptions};
use stilt_logs::Level;
use stilt_store::{PatchType, Selectors, StoreError, TypedStore, WatchFrom};

/// Written by the build queue: "apply now", with a token (the build's log span).
pub const ANN_APPLY_REQUEST: &str = "stilt.dev/apply-request";
/// Written by this reconciler: the token of the last request it answered.
pub const ANN_APPLIED_REQUEST: &str = "stilt.dev/applied-request";
const MANAGED_BY_BUILD: &str = "buildcontrol";
const KIND: &str = "KubernetesApply";

/// What was last applied for one KubernetesApply (kept in memory, as Tilt does).
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    pub spec: KubernetesApplySpec,
    /// The ImageMaps (spec and status) the apply used.
    pub image_maps: Vec<ImageMap>,
    /// The objects as the cluster returned them.
    pub applied: Vec<Value>,
    /// The apply command ran (its delete command undoes it).
    pub cmd_applied: bool,
    pub applied_at: Option<MicroTime>,
    /// The cluster could not be reached: try again.
    pub unreachable: bool,
    pub failures: u32,
}

/// Whether and why to apply now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Apply; `request` is the build queue's token to answer.
    Apply {
        request: Option<String>,
    },
    /// Not yet: a dependency is missing.
    Wait(String),
    UpToDate,
}

/// Tilt's `shouldDeployOnReconcile`, plus the build queue's requests.
pub(crate) fn decide(
    ka: &KubernetesApply,
    cluster: Option<&stilt_api::Cluster>,
    image_maps: &[(String, Option<ImageMap>)],
    last: Option<&Record>,
    last_restart: Option<MicroTime>,
) -> Decision {
    let a = &ka.metadata.annotations;
    if a.get(ANNOTATION_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_BUILD) {
        let req = a.get(ANN_APPLY_REQUEST).cloned().unwrap_or_default();
        let done = a.get(ANN_APPLIED_REQUEST).cloned().unwrap_or_default();
        return if !req.is_empty() && req != done {
            Decision::Apply { request: Some(req) }
        } else {
            Decision::UpToDate
        };
    }
    if !a.get(ANNOTATION_MANAGED_BY).is_none_or(String::is_empty) {
        // Someone else drives it.
        return Decision::UpToDate;
    }
    if let Some(c) = cluster {
        let ok = c
            .status
            .as_ref()
            .is_some_and(|s| s.error.is_empty() && s.connection.is_some());
        if !ok {
            return Decision::Wait(format!("waiting for cluster {}", c.metadata.name));
        }
    }
    for (name, im) in image_maps {
        if im
            .as_ref()
            .and_then(|m| m.status.as_ref())
            .is_none_or(|s| s.image.is_empty())
        {
            return Decision::Wait(format!("waiting for image {name}"));
        }
    }
    let apply = Decision::Apply { request: None };
    let Some(last) = last else {
        return apply;
    };
    let Some(at) = last.applied_at else {
        return apply;
    };
    let used: Vec<&ImageMap> = image_maps.iter().filter_map(|(_, m)| m.as_ref()).collect();
    let images_changed = used.len() != last.image_maps.len()
        || used
            .iter()
            .zip(&last.image_maps)
            .any(|(now, then)| now.spec != then.spec || now.status != then.status);
    if last.unreachable
        || last.spec != ka.spec
        || images_changed
        || last_restart.is_some_and(|t| t > at)
    {
        return apply;
    }
    Decision::UpToDate
}

/// Whether the object's disable source says it is disabled.
pub(crate) fn is_disabled(ctx: &Ctx, source: Option<&DisableSource>) -> bool {
    let Some(source) = source else { return false };
    let disabled = |c: &ConfigMapDisableSource| {
        ctx.store
            .get_typed::<ConfigMap>(&c.name)
            .is_ok_and(|m| m.data.get(&c.key).is_some_and(|v| v == "true"))
    };
    if let Some(c) = &source.config_map {
        return disabled(c);
    }
    !source.every_config_map.is_empty() && source.every_config_map.iter().all(disabled)
}

/// The newest `restartOn` event (FileWatch events, UIButton clicks).
fn last_restart(ctx: &Ctx, on: Option<&RestartOnSpec>) -> Option<MicroTime> {
    let on = on?;
    let files = on.file_watches.iter().filter_map(|n| {
        ctx.store
            .get_typed::<FileWatch>(n)
            .ok()?
            .status?
            .last_event_time
    });
    let clicks = on.ui_buttons.iter().filter_map(|n| {
        ctx.store
            .get_typed::<UIButton>(n)
            .ok()?
            .status?
            .last_clicked_at
    });
    files.chain(clicks).max()
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    /// Applies and deletes in flight (the name is looked at again when they finish).
    busy: HashSet<String>,
}

struct ApplyReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<State>>,
}

/// KubernetesApplys whose spec names the changed object (by `keys` of the spec).
fn kas_naming(
    ctx: &Ctx,
    keys: impl Fn(&KubernetesApplySpec) -> Vec<String> + Send + Sync + 'static,
) -> Mapper {
    crate::refindex::referencing(
        ctx,
        KIND,
        crate::refindex::spec_keys(keys),
        crate::refindex::own_name(),
    )
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(ApplyReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: Default::default(),
    });
    let by_image = kas_naming(&ctx, |s| s.image_maps.clone());
    let by_configmap = kas_naming(&ctx, |s| {
        s.disable_source
            .iter()
            .flat_map(|d| {
                d.config_map
                    .iter()
                    .chain(&d.every_config_map)
                    .map(|c| c.name.clone())
            })
            .collect()
    });
    let by_cluster = kas_naming(&ctx, |s| vec![s.cluster.clone()]);
    let by_filewatch = kas_naming(&ctx, |s| {
        s.restart_on
            .iter()
            .flat_map(|r| r.file_watches.clone())
            .collect()
    });
    let by_button = kas_naming(&ctx, |s| {
        s.restart_on
            .iter()
            .flat_map(|r| r.ui_buttons.clone())
            .collect()
    });
    controller::run(
        ctx,
        queue,
        vec![
            (KIND, controller::same_name()),
            ("KubernetesDiscovery", controller::owner_of(KIND)),
            ("ImageMap", by_image),
            ("ConfigMap", by_configmap),
            ("Cluster", by_cluster),
            ("FileWatch", by_filewatch),
            ("UIButton", by_button),
        ],
        r,
    );
}

impl Reconcile for ApplyReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        if self.state.lock().busy.contains(name) {
            return Outcome::Done;
        }
        let ka = match self.ctx.store.get_typed::<KubernetesApply>(name) {
            Ok(ka) if ka.metadata.deletion_timestamp.is_none() => ka,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                // Deleted: undo what it applied; its discovery goes with it.
                let record = self.state.lock().records.remove(name);
                if let Some(rec) = record {
                    self.spawn_delete(
                        name,
                        rec,
                        String::new(),
                        "garbage collecting Kubernetes objects",
                    );
                }
                return delete_owned_discovery(&self.ctx, name);
            }
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let disabled = is_disabled(&self.ctx, ka.spec.disable_source.as_ref());
        if let Err(e) = write_disable_status(&self.ctx, &ka, disabled) {
            return Outcome::Error(e);
        }
        if disabled {
            let record = self.state.lock().records.remove(name);
            if let Some(rec) = record {
                self.spawn_delete(
                    name,
                    rec,
                    resource_of(&ka.metadata),
                    "deleting disabled Kubernetes objects",
                );
                if let Err(e) = self
                    .ctx
                    .store
                    .update_status_with::<KubernetesApply>(name, |o| {
                        let s = o.status.get_or_insert_with(Default::default);
                        s.result_yaml.clear();
                        s.error.clear();
                        s.last_apply_time = None;
                        s.last_apply_start_time = None;
                        s.conditions.clear();
                    })
                {
                    return Outcome::Error(e.to_string());
                }
            }
            // A request while disabled is answered with nothing applied.
            if let Some(req) = ka.metadata.annotations.get(ANN_APPLY_REQUEST)
                && ka.metadata.annotations.get(ANN_APPLIED_REQUEST) != Some(req)
            {
                answer(&self.ctx, name, req);
            }
            return delete_owned_discovery(&self.ctx, name);
        }
        let cluster = (!ka.spec.cluster.is_empty())
            .then(|| {
                self.ctx
                    .store
                    .get_typed::<stilt_api::Cluster>(&ka.spec.cluster)
                    .ok()
            })
            .flatten();
        let image_maps: Vec<(String, Option<ImageMap>)> = ka
            .spec
            .image_maps
            .iter()
            .map(|n| (n.clone(), self.ctx.store.get_typed::<ImageMap>(n).ok()))
            .collect();
        let restart = last_restart(&self.ctx, ka.spec.restart_on.as_ref());
        let record = self.state.lock().records.get(name).cloned();
        match decide(&ka, cluster.as_ref(), &image_maps, record.as_ref(), restart) {
            Decision::Apply { request } => {
                self.spawn_apply(ka, request, image_maps, record.unwrap_or_default());
                Outcome::Done
            }
            Decision::Wait(_) | Decision::UpToDate => manage_discovery(&self.ctx, &ka),
        }
    }
}

impl ApplyReconciler {
    fn spawn_apply(
        &self,
        ka: KubernetesApply,
        request: Option<String>,
        image_maps: Vec<(String, Option<ImageMap>)>,
        previous: Record,
    ) {
        let name = ka.metadata.name.clone();
        self.state.lock().busy.insert(name.clone());
        let (ctx, state, queue) = (self.ctx.clone(), self.state.clone(), self.queue.clone());
        tokio::spawn(async move {
            let resource = resource_of(&ka.metadata);
            // The token is `<build span>@<nonce>`: the apply logs into the build's span.
            let span = request
                .as_ref()
                .map(|r| r.split('@').next().unwrap_or(r).to_string())
                .unwrap_or_else(|| {
                    ka.metadata
                        .annotations
                        .get(ANNOTATION_LOG_SPAN_ID)
                        .cloned()
                        .unwrap_or_else(|| format!("kubernetesapply:{name}"))
                });
            let mut record = run_apply(&ctx, &ka, &image_maps, &resource, &span).await;
            record.failures = if record.unreachable {
                previous.failures + 1
            } else {
                0
            };
            let ok = record.applied_at.is_some() && !record.unreachable;
            let dangling = if ok && ka_status_error(&ctx, &name).is_empty() {
                let others: HashSet<ObjectRef> = state
                    .lock()
                    .records
                    .iter()
                    .filter(|(n, _)| **n != name)
                    .flat_map(|(_, r)| refs(&r.applied))
                    .collect();
                let now: HashSet<ObjectRef> = refs(&record.applied).collect();
                previous
                    .applied
                    .iter()
                    .filter(|o| {
                        ObjectRef::of(o).is_ok_and(|r| {
                            let r = without_uid(r);
                            !now.contains(&r) && !others.contains(&r)
                        })
                    })
                    .cloned()
                    .collect::<Vec<_>>()
            } else {
                vec![]
            };
            let retry = record.unreachable.then(|| {
                controller::FIRST_BACKOFF
                    .saturating_mul(1 << record.failures.min(9))
                    .min(controller::MAX_BACKOFF)
            });
            // A failed apply keeps the previous objects as applied (they are still there).
            if !ok && record.applied.is_empty() {
                record.applied = previous.applied.clone();
            }
            state.lock().records.insert(name.clone(), record);
            if !dangling.is_empty() {
                delete_objects(
                    &ctx,
                    &dangling,
                    &resource,
                    &span,
                    "garbage collecting removed Kubernetes objects",
                )
                .await;
            }
            if let Some(req) = &request {
                answer(&ctx, &name, req);
            }
            state.lock().busy.remove(&name);
            match retry {
                Some(d) => queue.add_after(&name, d),
                None => queue.add(&name),
            }
        });
    }

    fn spawn_delete(&self, name: &str, rec: Record, resource: String, reason: &'static str) {
        if rec.applied.is_empty() && !rec.cmd_applied {
            return;
        }
        self.state.lock().busy.insert(name.to_string());
        let (ctx, state, queue) = (self.ctx.clone(), self.state.clone(), self.queue.clone());
        let name = name.to_string();
        tokio::spawn(async move {
            let span = format!("kubernetesapply:{name}");
            match (&rec.spec.delete_cmd, rec.cmd_applied) {
                (Some(cmd), true) => {
                    ctx.logs.line(
                        &resource,
                        &span,
                        Level::Info,
                        &format!("Beginning {reason}"),
                    );
                    let env = cluster_env(&ctx).await;
                    if let Err(e) = run_cmd(&ctx, cmd, &env, &resource, &span, None).await {
                        ctx.logs.line(
                            &resource,
                            &span,
                            Level::Error,
                            &format!("Error {reason}: {e}"),
                        );
                    }
                }
                _ => delete_objects(&ctx, &rec.applied, &resource, &span, reason).await,
            }
            state.lock().busy.remove(&name);
            queue.add(&name);
        });
    }
}

fn ka_status_error(ctx: &Ctx, name: &str) -> String {
    ctx.store
        .get_typed::<KubernetesApply>(name)
        .ok()
        .and_then(|k| k.status)
        .map(|s| s.error)
        .unwrap_or_default()
}

fn without_uid(mut r: ObjectRef) -> ObjectRef {
    r.uid.clear();
    r
}

fn refs(objects: &[Value]) -> impl Iterator<Item = ObjectRef> + '_ {
    objects
        .iter()
        .filter_map(|o| ObjectRef::of(o).ok())
        .map(without_uid)
}

/// Deletes applied objects (reverse apply order), keeping `tilt.dev/down-policy: keep` and
/// Namespaces.
async fn delete_objects(ctx: &Ctx, objects: &[Value], resource: &str, span: &str, reason: &str) {
    let mut victims: Vec<Value> = objects
        .iter()
        .filter(|o| {
            o["metadata"]["annotations"][DOWN_POLICY_ANNOTATION].as_str() != Some("keep")
                && o["kind"] != "Namespace"
        })
        .cloned()
        .collect();
    if victims.is_empty() {
        return;
    }
    stilt_k8s::manifest::sort_for_apply(&mut victims);
    victims.reverse();
    let refs: Vec<ObjectRef> = victims
        .iter()
        .filter_map(|o| ObjectRef::of(o).ok())
        .collect();
    ctx.logs
        .line(resource, span, Level::Info, &format!("Beginning {reason}"));
    let result = match ctx.k8s.cluster().await {
        Ok(c) => c
            .delete(&refs, &DeleteOptions::default())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            for r in &refs {
                ctx.logs.line(
                    resource,
                    span,
                    Level::Info,
                    &format!("  → {}:{} deleted", r.name, r.kind.to_lowercase()),
                );
            }
        }
        Err(e) => ctx.logs.line(
            resource,
            span,
            Level::Error,
            &format!("Error {reason}: {e}"),
        ),
    }
}

/// Copies the request token to `stilt.dev/applied-request`: the build queue's answer.
fn answer(ctx: &Ctx, name: &str, token: &str) {
    let patch = json!({"metadata": {"annotations": {ANN_APPLIED_REQUEST: token}}});
    if let Err(e) = ctx.store.patch(KIND, name, PatchType::Merge, &patch, false) {
        tracing::debug!("answering the apply request of {name}: {e}");
    }
}

fn write_disable_status(ctx: &Ctx, ka: &KubernetesApply, disabled: bool) -> Result<(), String> {
    let state = if disabled { "Disabled" } else { "Enabled" };
    let current = ka
        .status
        .as_ref()
        .and_then(|s| s.disable_status.as_ref())
        .map(|d| d.state.as_str());
    if current == Some(state) {
        return Ok(());
    }
    ctx.store
        .update_status_with::<KubernetesApply>(&ka.metadata.name, |o| {
            o.status.get_or_insert_with(Default::default).disable_status = Some(DisableStatus {
                disabled,
                last_update_time: Some(Time::now()),
                reason: if disabled {
                    "disabled by its ConfigMap".into()
                } else {
                    String::new()
                },
                state: state.into(),
            })
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Applies and writes status. Returns the record of what happened.
async fn run_apply(
    ctx: &Ctx,
    ka: &KubernetesApply,
    image_maps: &[(String, Option<ImageMap>)],
    resource: &str,
    span: &str,
) -> Record {
    let name = &ka.metadata.name;
    let started = MicroTime::now();
    if let Err(e) = ctx.store.update_status_with::<KubernetesApply>(name, |o| {
        o.status
            .get_or_insert_with(Default::default)
            .last_apply_start_time = Some(started)
    }) {
        tracing::warn!("recording the apply start of {name}: {e}");
    }
    let mut record = Record {
        spec: ka.spec.clone(),
        image_maps: image_maps.iter().filter_map(|(_, m)| m.clone()).collect(),
        ..Default::default()
    };
    let result = match ctx.k8s.cluster().await {
        Err(e) => {
            record.unreachable = true;
            Err(e)
        }
        Ok(cluster) => apply_with(ctx, cluster, ka, image_maps, resource, span, &mut record).await,
    };
    let finished = MicroTime::now();
    let hash = input_hash(&ka.spec, &record.image_maps);
    let (yaml, error, conditions) = match result {
        Ok(applied) => {
            let yaml = stilt_k8s::manifest::to_yaml(&applied).unwrap_or_default();
            ctx.logs
                .line(resource, span, Level::Info, "Objects applied to cluster:");
            for o in &applied {
                ctx.logs.line(
                    resource,
                    span,
                    Level::Info,
                    &format!(
                        "  → {}:{}",
                        o["metadata"]["name"].as_str().unwrap_or(""),
                        o["kind"].as_str().unwrap_or("").to_lowercase()
                    ),
                );
            }
            let conditions = job_complete(&applied);
            record.applied = applied;
            (yaml, String::new(), conditions)
        }
        Err(e) => {
            ctx.logs.line(resource, span, Level::Error, &e);
            (String::new(), e, vec![])
        }
    };
    record.applied_at = Some(finished);
    let written = ctx.store.update_status_with::<KubernetesApply>(name, |o| {
        let s = o.status.get_or_insert_with(Default::default);
        s.result_yaml = yaml.clone();
        s.error = error.clone();
        s.last_apply_start_time = Some(started);
        s.last_apply_time = Some(finished);
        s.applied_input_hash = if error.is_empty() {
            hash.clone()
        } else {
            String::new()
        };
        s.conditions = conditions.clone();
    });
    if let Err(e) = written {
        ctx.logs.line(
            resource,
            span,
            Level::Error,
            &format!("recording the apply of {name}: {e}"),
        );
    }
    record
}

async fn apply_with(
    ctx: &Ctx,
    cluster: Arc<dyn stilt_k8s::Cluster>,
    ka: &KubernetesApply,
    image_maps: &[(String, Option<ImageMap>)],
    resource: &str,
    span: &str,
    record: &mut Record,
) -> Result<Vec<Value>, String> {
    let timeout = ka
        .spec
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(30));
    if let Some(cmd) = &ka.spec.apply_cmd {
        // k8s_custom_deploy: the command applies; its stdout is the applied objects' YAML.
        let mut env = cluster_env(ctx).await;
        for (i, (name, im)) in image_maps.iter().enumerate() {
            let Some(s) = im.as_ref().and_then(|m| m.status.as_ref()) else {
                return Err(format!("image {name} has not been built"));
            };
            let image = if s.image_from_cluster.is_empty() {
                s.image.clone()
            } else {
                s.image_from_cluster.clone()
            };
            env.push((format!("TILT_IMAGE_MAP_{i}"), name.clone()));
            env.push((format!("TILT_IMAGE_{i}"), image));
        }
        record.cmd_applied = true;
        let out = run_cmd(ctx, cmd, &env, resource, span, Some(timeout)).await?;
        return stilt_k8s::manifest::parse_yaml(&out)
            .map_err(|e| format!("apply command returned malformed YAML: {e}"));
    }
    let objects = stilt_k8s::manifest::parse_yaml(&ka.spec.yaml)
        .map_err(|e| format!("{}: spec.yaml: {e}", ka.metadata.name))?;
    let mut injections = Vec::new();
    for (name, im) in image_maps {
        let Some(map) = im else {
            return Err(format!("ImageMap {name} does not exist"));
        };
        match ImageInjection::from_image_map(map).map_err(|e| e.to_string())? {
            Some(i) => injections.push(i),
            None => return Err(format!("image {name} has not been built")),
        }
    }
    let locators = ka
        .spec
        .image_locators
        .iter()
        .map(ImageLocator::from_api)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let prepared = prepare_for_apply(objects, &injections, &locators).map_err(|e| e.to_string())?;
    ctx.logs
        .line(resource, span, Level::Info, "Applying YAML to cluster");
    cluster
        .apply(
            &prepared,
            &ApplyOptions {
                timeout,
                server_side: ka.spec.server_side_apply,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// `KUBECONFIG` of the connection, for apply/delete commands.
async fn cluster_env(ctx: &Ctx) -> Vec<(String, String)> {
    match ctx.k8s.cluster().await {
        Ok(c) if !c.info().config_path.is_empty() => {
            vec![("KUBECONFIG".into(), c.info().config_path)]
        }
        _ => vec![],
    }
}

/// Tilt's `JobComplete` condition when an applied Job has already completed.
fn job_complete(applied: &[Value]) -> Vec<Condition> {
    let done = applied.iter().any(|o| {
        o["kind"] == "Job"
            && o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
    });
    if done {
        vec![Condition {
            r#type: "JobComplete".into(),
            status: "True".into(),
            last_transition_time: Some(MicroTime::now()),
            ..Default::default()
        }]
    } else {
        vec![]
    }
}

/// Runs an apply/delete command; returns its stdout (stderr goes to the log).
async fn run_cmd(
    ctx: &Ctx,
    cmd: &KubernetesApplyCmd,
    extra_env: &[(String, String)],
    resource: &str,
    span: &str,
    timeout: Option<Duration>,
) -> Result<String, String> {
    let Some((program, args)) = cmd.args.split_first() else {
        return Err("the command has no args".into());
    };
    ctx.logs.line(
        resource,
        span,
        Level::Info,
        &format!("Running cmd: {}", cmd.args.join(" ")),
    );
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if !cmd.dir.is_empty() {
        c.current_dir(&cmd.dir);
    }
    for (k, v) in ctx.process_env.iter().chain(extra_env) {
        c.env(k, v);
    }
    for kv in &cmd.env {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    let run = c.output();
    let out = match timeout {
        Some(t) => tokio::time::timeout(t, run).await.map_err(|_| {
            format!(
                "apply command timed out after {t:?} - see update_settings(k8s_upsert_timeout_secs=...)"
            )
        })?,
        None => run.await,
    }
    .map_err(|e| format!("running {}: {e}", cmd.args.join(" ")))?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        ctx.logs.line(resource, span, Level::Info, line);
    }
    if !out.status.success() {
        return Err(format!(
            "command {:?} exited with {}",
            cmd.args.join(" "),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A hash of the inputs of an apply (spec and the images injected).
fn input_hash(spec: &KubernetesApplySpec, image_maps: &[ImageMap]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(spec).unwrap_or_default().hash(&mut h);
    for m in image_maps {
        serde_json::to_string(&m.status)
            .unwrap_or_default()
            .hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix("ms") {
        return n.parse().ok().map(Duration::from_millis);
    }
    if let Some(n) = s.strip_suffix('s') {
        return n.parse().ok().map(Duration::from_secs_f64);
    }
    if let Some(n) = s.strip_suffix('m') {
        return n
            .parse::<f64>()
            .ok()
            .map(|m| Duration::from_secs_f64(m * 60.0));
    }
    None
}

/// The KubernetesDiscovery a KubernetesApply owns (Tilt's `toDesiredKubernetesDiscovery`):
/// watches for every applied object (by UID) and every namespace the YAML deploys to. `None`
/// when there is nothing to watch.
pub(crate) fn desired_discovery(
    ka: &KubernetesApply,
    default_namespace: &str,
) -> Option<KubernetesDiscovery> {
    let status = ka.status.clone().unwrap_or_default();
    let mut watches: Vec<KubernetesWatchRef> = Vec::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    let ns_or = |o: &Value, fallback: &str| {
        o["metadata"]["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(fallback)
            .to_string()
    };
    if !status.result_yaml.is_empty() && ka.spec.discovery_strategy != "selectors-only" {
        for o in stilt_k8s::manifest::parse_yaml(&status.result_yaml).unwrap_or_default() {
            let ns = ns_or(&o, "default");
            namespaces.insert(ns.clone());
            watches.push(KubernetesWatchRef {
                uid: o["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                namespace: ns,
                name: o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    let yaml = if ka.spec.yaml.is_empty() {
        &status.result_yaml
    } else {
        &ka.spec.yaml
    };
    for o in stilt_k8s::manifest::parse_yaml(yaml).unwrap_or_default() {
        let ns = ns_or(&o, default_namespace);
        if namespaces.insert(ns.clone()) {
            watches.push(KubernetesWatchRef {
                namespace: ns,
                ..Default::default()
            });
        }
    }
    if watches.is_empty() {
        return None;
    }
    let mut kd = KubernetesDiscovery::new(
        &ka.metadata.name,
        KubernetesDiscoverySpec {
            watches,
            extra_selectors: ka
                .spec
                .kubernetes_discovery_template_spec
                .as_ref()
                .map(|t| t.extra_selectors.clone())
                .unwrap_or_default(),
            port_forward_template_spec: ka.spec.port_forward_template_spec.clone(),
            pod_log_stream_template_spec: ka.spec.pod_log_stream_template_spec.clone(),
            cluster: ka.spec.cluster.clone(),
        },
    );
    for key in [ANNOTATION_RESOURCE, ANNOTATION_LOG_SPAN_ID] {
        if let Some(v) = ka.metadata.annotations.get(key) {
            kd.metadata.annotations.insert(key.into(), v.clone());
        }
    }
    kd.metadata.owner_references = vec![owned_by(KIND, &ka.metadata)];
    Some(kd)
}

/// Creates, updates or deletes the owned KubernetesDiscovery. A failed or empty apply leaves it
/// alone, so a transient deploy error does not tear down discovery.
fn manage_discovery(ctx: &Ctx, ka: &KubernetesApply) -> Outcome {
    let status = ka.status.clone().unwrap_or_default();
    if !status.error.is_empty() || status.result_yaml.is_empty() {
        return Outcome::Done;
    }
    let ns = ctx
        .k8s
        .connected_namespace()
        .unwrap_or_else(|| "default".into());
    let Some(desired) = desired_discovery(ka, &ns) else {
        return delete_owned_discovery(ctx, &ka.metadata.name);
    };
    match ctx
        .store
        .get_typed::<KubernetesDiscovery>(&ka.metadata.name)
    {
        Ok(current)
            if current.spec == desired.spec
                && current.metadata.owner_references == desired.metadata.owner_references
                && current.metadata.annotations == desired.metadata.annotations =>
        {
            Outcome::Done
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => match ctx.store.apply_typed(&desired) {
            Ok(_) => Outcome::Done,
            Err(StoreError::Conflict { .. }) => Outcome::RequeueAfter(Duration::from_secs(1)),
            Err(e) => Outcome::Error(format!("writing KubernetesDiscovery: {e}")),
        },
        Err(e) => Outcome::Error(e.to_string()),
    }
}

fn delete_owned_discovery(ctx: &Ctx, name: &str) -> Outcome {
    match ctx.store.get_typed::<KubernetesDiscovery>(name) {
        Ok(kd) if is_owned_by(&kd.metadata, KIND, name) => {
            match ctx.store.delete("KubernetesDiscovery", name) {
                Ok(_) | Err(StoreError::NotFound { .. }) => Outcome::Done,
                Err(e) => Outcome::Error(format!("deleting KubernetesDiscovery {name}: {e}")),
            }
        }
        _ => Outcome::Done,
    }
}

/// How long the build queue waits for its apply to be answered at most.
const REQUEST_DEADLINE: Duration = Duration::from_secs(600);

/// Asks the reconciler to apply the KubernetesApply `name` now, by writing a request token into
/// its annotations, and waits for the answer; the apply logs into `span`. Returns the apply's error, if any.
pub async fn request_apply(ctx: &Ctx, name: &str, span: &str) -> Result<(), String> {
    // Unique per request: a span name can come again (a resource's builds restart at 1 when it
    // is enabled again).
    let token = format!("{span}@{}", MicroTime::now().0.timestamp_micros());
    let token = token.as_str();
    let ask = || {
        let patch = json!({"metadata": {"annotations": {ANN_APPLY_REQUEST: token}}});
        ctx.store
            .patch(KIND, name, PatchType::Merge, &patch, false)
            .map(|_| ())
            .map_err(|e| format!("asking to apply {name}: {e}"))
    };
    let watch = ctx
        .store
        .watch(Some(KIND), Selectors::default(), WatchFrom::Beginning)
        .map_err(|e| e.to_string())?;
    ask()?;
    let mut stream = watch.stream;
    let wait = async {
        loop {
            let ev = match stream.next().await {
                Ok(ev) => ev,
                Err(_) => {
                    // Lagging: look at the object directly and watch again.
                    stream = ctx
                        .store
                        .watch(Some(KIND), Selectors::default(), WatchFrom::Beginning)
                        .map_err(|e| e.to_string())?
                        .stream;
                    match ctx.store.get_typed::<KubernetesApply>(name) {
                        Ok(ka) => ka,
                        Err(_) => return Err(format!("KubernetesApply {name} was deleted")),
                    };
                    continue;
                }
            };
            if ev.object["metadata"]["name"] != name {
                continue;
            }
            if ev.r#type == stilt_store::EventType::Deleted {
                return Err(format!("KubernetesApply {name} was deleted"));
            }
            let a = &ev.object["metadata"]["annotations"];
            if a[ANN_APPLIED_REQUEST] == token {
                let error = ev.object["status"]["error"].as_str().unwrap_or("");
                return if error.is_empty() {
                    Ok(())
                } else {
                    Err(error.to_string())
                };
            }
            // A Tiltfile reload replaced the annotations before the request was seen: ask again.
            if a[ANN_APPLY_REQUEST] != token {
                ask()?;
            }
        }
    };
    tokio::time::timeout(REQUEST_DEADLINE, wait)
        .await
        .map_err(|_| {
            format!("KubernetesApply {name} was not applied within {REQUEST_DEADLINE:?}")
        })?
}

#[cfg(test)]
mod tests;
