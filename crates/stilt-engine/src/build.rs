//! The update queue (Tilt's build controller) and the UIResource status it reports.
//!
//! One decision pass looks at every resource: what changed since its last update (file events,
//! spec changes, manual triggers), whether it may start (first builds wait for resource_deps to
//! have been ready once; at most `max_parallel_updates` at a time; local resources run alone
//! unless `allow_parallel`), and starts updates as tasks. Status of every resource is written to
//! its UIResource; the Session controller summarizes those.

use crate::controller::{self, Mapper, Queue, Reconciler};
use crate::names::*;
use crate::proc::{self, Output, ProcSpec};
use crate::{Ctx, Mode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

const MAX_BUILD_HISTORY: usize = 10;
const DECIDE: &str = "decide";

/// Per-resource bookkeeping the engine keeps in memory.
#[derive(Default, Clone, Debug)]
struct ResourceState {
    builds: u64,
    building: bool,
    last_start: Option<MicroTime>,
    /// Generation of the update/serve Cmds at the last update start.
    last_inputs: String,
    ever_ready: bool,
    succeeded_once: bool,
    /// A file change or trigger seen while building: run again afterwards.
    dirty_while_building: bool,
}

#[derive(Default)]
struct State {
    resources: HashMap<String, ResourceState>,
    /// Container monitors of compose services, by DockerComposeService name.
    monitors: HashMap<String, tokio::task::JoinHandle<()>>,
    running: HashMap<String, proc::Stopper>,
    shutting_down: bool,
    pacing: Pacing,
}

/// Spaces decision passes when they come back to back. A pass reads every resource, so under a
/// storm of store events (a load creating thousands of objects, every controller writing its
/// first status) passes ran one after another and took a core between them. A pass may start
/// no sooner than its predecessor's duration after that one ended: at most half a core, and no
/// wait at all for a pass after a quiet spell.
#[derive(Default)]
struct Pacing {
    last_end: Option<std::time::Instant>,
    last_cost: Duration,
    /// A deferred pass is already scheduled.
    deferred: bool,
}

impl Pacing {
    /// How long the next pass must wait, if it must.
    fn wait(&self, now: std::time::Instant) -> Option<Duration> {
        let ready_at = self.last_end? + self.last_cost;
        (ready_at > now).then(|| ready_at - now)
    }
}

#[derive(Clone)]
pub struct BuildController {
    state: Arc<Mutex<State>>,
}

impl BuildController {
    pub async fn shutdown(&self) {
        let stoppers: Vec<proc::Stopper> = {
            let mut st = self.state.lock();
            st.shutting_down = true;
            st.running.drain().map(|(_, s)| s).collect()
        };
        for s in stoppers {
            s.stop(Duration::from_secs(5), None).await;
        }
    }
}

struct BuildReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<State>>,
}

pub fn start(ctx: Ctx) -> BuildController {
    let queue = Queue::default();
    let state = Arc::new(Mutex::new(State::default()));
    let r = Arc::new(BuildReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: state.clone(),
    });
    let decide: Mapper = Arc::new(|_, _| vec![DECIDE.to_string()]);
    controller::run(
        ctx,
        queue,
        [
            "UIResource",
            "Cmd",
            "FileWatch",
            "ConfigMap",
            "Tiltfile",
            "KubernetesDiscovery",
            "PodLogStream",
            "DockerComposeService",
            "LiveUpdate",
            "Cluster",
        ]
        .into_iter()
        .map(|k| (k, decide.clone()))
        .collect(),
        r,
    );
    BuildController { state }
}

/// Tilt's trigger mode numbers: auto 0, manual+auto_init 1, manual 2, auto without auto_init 3.
fn trigger_mode_number(m: &Manifest) -> i32 {
    match (m.is_manual(), m.auto_init) {
        (false, true) => 0,
        (true, true) => 1,
        (true, false) => 2,
        (false, false) => 3,
    }
}

impl BuildReconciler {
    /// The resources' manifests with their places in the Tiltfile, in that order.
    fn manifests(&self) -> Vec<(Manifest, usize)> {
        let mut ms: Vec<(Manifest, usize)> = self
            .ctx
            .store
            .list_typed::<UIResource>()
            .unwrap_or_default()
            .iter()
            .filter(|ui| ui.metadata.name != TILTFILE_RESOURCE)
            .filter_map(Manifest::from_ui_resource)
            .collect();
        ms.sort_by(|(a, ao), (b, bo)| (ao, &a.name).cmp(&(bo, &b.name)));
        ms
    }

    /// The resource's Cluster, when its connection has an error.
    fn cluster_down(&self, m: &Manifest) -> Option<String> {
        let name = cluster_of(m)?;
        let cluster = self.ctx.store.get_typed::<Cluster>(name).ok()?;
        cluster
            .status
            .is_some_and(|s| !s.error.is_empty())
            .then(|| name.to_string())
    }

    fn triggered(&self, name: &str) -> Option<String> {
        self.ctx
            .store
            .get_typed::<ConfigMap>(TRIGGER_QUEUE)
            .ok()
            .and_then(|c| c.data.get(name).cloned())
    }

    /// Newest file event of the resource's FileWatches after `since`, and the files.
    fn pending_files(
        &self,
        pass: &PassReads,
        name: &str,
        since: Option<MicroTime>,
    ) -> (Option<MicroTime>, Vec<String>) {
        let mut newest = None;
        let mut files = Vec::new();
        for fw in pass.watches.get(name).into_iter().flatten() {
            for ev in fw.status.iter().flat_map(|s| &s.file_events) {
                if since.is_none_or(|s| ev.time > s) {
                    newest = newest.max(Some(ev.time));
                    files.extend(ev.seen_files.iter().cloned());
                }
            }
        }
        // Files a healthy LiveUpdate of this resource can sync are not a reason to rebuild.
        let lus: Vec<&LiveUpdate> = pass
            .live_updates
            .get(name)
            .into_iter()
            .flatten()
            .filter(|lu| !crate::liveupdate::has_standing_failure(&self.ctx, lu))
            .collect();
        if !lus.is_empty() {
            let before = files.len();
            files.retain(|f| {
                !lus.iter().any(|lu| {
                    crate::liveupdate::syncable(&lu.spec, std::path::Path::new(f)).is_some()
                })
            });
            if files.is_empty() && before > 0 {
                newest = None;
            }
        }
        files.sort();
        files.dedup();
        (newest, files)
    }

    /// The specs whose change (on a Tiltfile reload) means the resource must update again.
    fn inputs_key(&self, pass: &PassReads, name: &str) -> String {
        let store = &self.ctx.store;
        let mut parts: Vec<String> = [update_cmd(name), serve_cmd(name)]
            .iter()
            .map(|c| {
                store
                    .get_typed::<Cmd>(c)
                    .map(|c| serde_json::to_string(&c.spec).unwrap_or_default())
                    .unwrap_or_default()
            })
            .collect();
        parts.extend(pass.deploy_specs.get(name).into_iter().flatten().cloned());
        parts.join("|")
    }

    /// Whether a resource is ready now (for resource_deps and the Ready condition).
    fn runtime(&self, pass: &PassReads, m: &Manifest, rs: &ResourceState) -> (&'static str, bool) {
        if pass.disabled(&m.name) {
            return ("none", false);
        }
        match m.kind.as_str() {
            "local" => match self.ctx.store.get_typed::<Cmd>(&serve_cmd(&m.name)) {
                Ok(serve) => match serve.status {
                    Some(s) if s.running.is_some() && s.ready => ("ok", true),
                    Some(s) if s.running.is_some() => ("pending", false),
                    Some(s) if s.terminated.is_some() && rs.builds > 0 => ("error", false),
                    _ if rs.builds > 0 => ("pending", false),
                    _ => ("pending", false),
                },
                Err(_) => ("not_applicable", rs.succeeded_once),
            },
            "k8s" => crate::k8s::runtime(
                &self.ctx,
                &crate::k8s::Deployed {
                    applies: pass.applies.get(&m.name).map_or(&[], Vec::as_slice),
                    discovery: pass.discoveries.get(&m.name).and_then(|d| d.first()),
                },
                &m.pod_readiness,
                rs.succeeded_once,
            ),
            "docker-compose" => {
                let dcs = pass.compose_services.get(&m.name).and_then(|d| d.first());
                match dcs.and_then(|d| d.status.clone()) {
                    Some(s) if !s.apply_error.is_empty() => ("error", false),
                    Some(s) => match s.container_state {
                        Some(c) if c.running => ("ok", true),
                        Some(c) if c.status == "exited" || c.status == "dead" => ("error", false),
                        _ => ("pending", false),
                    },
                    None => ("pending", false),
                }
            }
            "syncback" => ("not_applicable", rs.succeeded_once),
            _ => ("unknown", rs.succeeded_once),
        }
    }
}

impl Reconciler for BuildReconciler {
    fn reconcile(&self, _name: &str) {
        let began = std::time::Instant::now();
        {
            let mut st = self.state.lock();
            if st.shutting_down {
                return;
            }
            if let Some(wait) = st.pacing.wait(began) {
                if !st.pacing.deferred {
                    st.pacing.deferred = true;
                    self.queue.add_after(DECIDE, wait);
                }
                return;
            }
            st.pacing.deferred = false;
        }
        self.pass();
        let mut st = self.state.lock();
        let end = std::time::Instant::now();
        st.pacing.last_cost = end - began;
        st.pacing.last_end = Some(end);
    }
}

impl BuildReconciler {
    /// One decision pass over every resource.
    fn pass(&self) {
        let manifests = self.manifests();
        let tiltfile_busy = self
            .ctx
            .store
            .get_typed::<Tiltfile>(TILTFILE_OBJECT)
            .ok()
            .is_none_or(|t| t.status.as_ref().is_none_or(|s| s.terminated.is_none()));
        let max_parallel: usize = self
            .ctx
            .store
            .get_typed::<Tiltfile>(TILTFILE_OBJECT)
            .ok()
            .and_then(|t| {
                t.metadata
                    .annotations
                    .get(ANN_MAX_PARALLEL)
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(3);
        // Observe (store reads), then decide (pure), then execute (writes and tasks).
        let snapshot: HashMap<String, ResourceState> = self.state.lock().resources.clone();
        // Read once per pass, not once per resource (that was quadratic in resources).
        let pass = PassReads::read(&self.ctx);
        let orders: HashMap<&str, usize> = manifests
            .iter()
            .map(|(m, o)| (m.name.as_str(), *o))
            .collect();
        // Each resource's runtime, read once: the decision and the status written use the same.
        let mut runtimes: HashMap<String, (&'static str, bool)> = HashMap::new();
        let observed: Vec<Observed> = manifests
            .iter()
            .map(|(m, _)| {
                let rs = snapshot.get(&m.name).cloned().unwrap_or_default();
                let (newest_change, files) = self.pending_files(&pass, &m.name, rs.last_start);
                let runtime = self.runtime(&pass, m, &rs);
                runtimes.insert(m.name.clone(), runtime);
                Observed {
                    manifest: m.clone(),
                    disabled: pass.disabled(&m.name),
                    ready: runtime.1,
                    trigger: self.triggered(&m.name),
                    newest_change,
                    files,
                    inputs: self.inputs_key(&pass, &m.name),
                    cluster_down: self.cluster_down(m),
                }
            })
            .collect();
        let settings = DecideSettings {
            mode: self.ctx.mode,
            tiltfile_busy,
            max_parallel,
            now: MicroTime::now(),
        };
        let Decisions { to_start, statuses } = {
            let mut st = self.state.lock();
            decide(&settings, &observed, &mut st.resources)
        };
        for (m, rs, waiting, disabled) in statuses {
            let pending = if m.is_manual() {
                self.pending_files(&pass, &m.name, rs.last_start_before).1
            } else {
                vec![]
            };
            let queue = QueueView {
                order: orders.get(m.name.as_str()).copied().unwrap_or(usize::MAX),
                waiting,
                disabled,
                pending_files: pending,
                runtime: runtimes.get(&m.name).copied().unwrap_or(("unknown", false)),
            };
            self.write_ui_status(&m, &rs.state, queue);
        }
        for (m, reason) in to_start {
            if self.triggered(&m.name).is_some() {
                crate::tiltfile::consume_trigger(&self.ctx, &m.name);
            }
            let ctx = self.ctx.clone();
            let state = self.state.clone();
            let queue = self.queue.clone();
            tokio::spawn(async move {
                let span = format!(
                    "build:{}:{}",
                    m.name,
                    state.lock().resources.get(&m.name).map_or(0, |r| r.builds)
                );
                let started = state
                    .lock()
                    .resources
                    .get(&m.name)
                    .and_then(|r| r.last_start)
                    .unwrap_or_else(MicroTime::now);
                record_build_start(&ctx, &m.name, &span, started);
                ctx.logs.line(&m.name, &span, Level::Info, &reason);
                let result = run_update(&ctx, &state, &m, &span).await;
                let error = result.err().unwrap_or_default();
                if !error.is_empty() {
                    // Every failure is in the resource's log, also one before anything ran
                    // ("cannot reach the Kubernetes cluster").
                    ctx.logs.line(
                        &m.name,
                        &span,
                        Level::Error,
                        &format!("Build Failed: {error}"),
                    );
                }
                {
                    let mut st = state.lock();
                    if let Some(rs) = st.resources.get_mut(&m.name) {
                        rs.building = false;
                        if error.is_empty() {
                            rs.succeeded_once = true;
                        }
                    }
                }
                record_build_end(&ctx, &m.name, &span, started, &error);
                queue.add(DECIDE);
            });
        }
    }
}

/// What a decision pass reads of every resource, read once per pass: each kind is listed once
/// and grouped by resource, where asking per resource listed it once per resource.
struct PassReads {
    watches: HashMap<String, Vec<FileWatch>>,
    live_updates: HashMap<String, Vec<LiveUpdate>>,
    compose_services: HashMap<String, Vec<DockerComposeService>>,
    applies: HashMap<String, Vec<KubernetesApply>>,
    discoveries: HashMap<String, Vec<KubernetesDiscovery>>,
    /// The specs (JSON) of the resource's images and deploys, in a fixed order: a reload that
    /// changes one updates the resource again.
    deploy_specs: HashMap<String, Vec<String>>,
    /// The disable ConfigMaps that say "disabled".
    disabled_maps: std::collections::HashSet<String>,
}

fn by_resource<T: Resource>(ctx: &Ctx) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for obj in ctx.store.list_typed::<T>().unwrap_or_default() {
        if let Some(r) = obj.meta().resource() {
            out.entry(r.to_string()).or_default().push(obj);
        }
    }
    out
}

impl PassReads {
    fn read(ctx: &Ctx) -> Self {
        let compose_services = by_resource::<DockerComposeService>(ctx);
        let applies = by_resource::<KubernetesApply>(ctx);
        let mut deploy_specs: HashMap<String, Vec<String>> = HashMap::new();
        let mut add =
            |r: &String, spec: String| deploy_specs.entry(r.clone()).or_default().push(spec);
        for (r, objs) in by_resource::<DockerImage>(ctx) {
            objs.iter().for_each(|o| add(&r, json(&o.spec)));
        }
        for (r, objs) in by_resource::<CmdImage>(ctx) {
            objs.iter().for_each(|o| add(&r, json(&o.spec)));
        }
        // A reload that regenerates the YAML re-applies it.
        for (r, objs) in &applies {
            objs.iter().for_each(|o| add(r, json(&o.spec)));
        }
        for (r, objs) in &compose_services {
            objs.iter().for_each(|o| add(r, json(&o.spec)));
        }
        let disabled_maps: std::collections::HashSet<String> = ctx
            .store
            .list_typed::<ConfigMap>()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.data.get(DISABLE_KEY).is_some_and(|v| v == "true"))
            .map(|c| c.metadata.name)
            .collect();
        Self {
            watches: by_resource(ctx),
            live_updates: by_resource(ctx),
            compose_services,
            applies,
            discoveries: by_resource(ctx),
            deploy_specs,
            disabled_maps,
        }
    }

    fn disabled(&self, resource: &str) -> bool {
        self.disabled_maps.contains(&disable_configmap(resource))
    }
}

fn json<T: serde::Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

/// The hold on a resource whose cluster connection has an error (Tilt's `HoldReasonCluster`).
const WAITING_FOR_CLUSTER: &str = "waiting-for-cluster";

/// The Cluster object a resource deploys through, as Tilt's `Manifest.ClusterName`.
fn cluster_of(m: &Manifest) -> Option<&'static str> {
    match m.kind.as_str() {
        "k8s" => Some("default"),
        "docker-compose" => Some("docker"),
        _ => None,
    }
}

fn waiting_on(kind: &str, name: &str) -> UIResourceStateWaitingOnRef {
    UIResourceStateWaitingOnRef {
        group: GROUP.into(),
        api_version: VERSION.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

/// What the queue observed about one resource (read from the store before deciding).
#[derive(Clone, Debug)]
struct Observed {
    manifest: Manifest,
    disabled: bool,
    ready: bool,
    trigger: Option<String>,
    /// Newest file event since the last update start that is a reason to update.
    newest_change: Option<MicroTime>,
    files: Vec<String>,
    /// The specs whose change means the resource must update (see `inputs_key`).
    inputs: String,
    /// The Cluster the resource deploys to, when that connection has an error: its updates
    /// wait for it (Tilt's `waiting-for-cluster` hold).
    cluster_down: Option<String>,
}

struct DecideSettings {
    mode: Mode,
    tiltfile_busy: bool,
    max_parallel: usize,
    now: MicroTime,
}

/// A resource's state after deciding, and its last start before it (for pending files).
#[derive(Clone, Debug)]
struct Decided {
    state: ResourceState,
    last_start_before: Option<MicroTime>,
}

/// A resource, its state, why it waits, and whether it is disabled.
type DecidedStatus = (Manifest, Decided, Option<String>, bool);

struct Decisions {
    /// Updates to start, with their reason.
    to_start: Vec<(Manifest, String)>,
    statuses: Vec<DecidedStatus>,
}

/// The queue's decision pass (pure): which resources update now and why, and why the others
/// wait. Updates `resources` (builds, starts, readiness seen).
fn decide(
    settings: &DecideSettings,
    observed: &[Observed],
    resources: &mut HashMap<String, ResourceState>,
) -> Decisions {
    let names: Vec<String> = observed.iter().map(|o| o.manifest.name.clone()).collect();
    resources.retain(|k, _| names.contains(k));
    let mut building: usize = resources.values().filter(|r| r.building).count();
    let exclusive_running = observed.iter().any(|o| {
        o.manifest.kind == ResourceType::Local
            && !o.manifest.allow_parallel
            && resources.get(&o.manifest.name).is_some_and(|r| r.building)
    });
    let mut to_start = Vec::new();
    let mut statuses: Vec<DecidedStatus> = Vec::new();
    for o in observed {
        let m = &o.manifest;
        let rs = resources.entry(m.name.clone()).or_default().clone();
        let disabled = o.disabled;
        if disabled
            && matches!(m.kind, ResourceType::K8s | ResourceType::DockerCompose)
            && !rs.building
            && rs.builds > 0
        {
            // Disabling deletes what was deployed (a compose service's container is removed);
            // enabling deploys it again, like a first update.
            let r = resources.get_mut(&m.name).expect("inserted");
            r.builds = 0;
            r.succeeded_once = false;
        }
        if o.ready {
            resources.get_mut(&m.name).expect("inserted").ever_ready = true;
        }
        let up = settings.mode == Mode::Up;
        let reason: Option<String> = if disabled {
            None
        } else if let Some(t) = &o.trigger {
            Some(format!("Triggered ({t})"))
        } else if rs.builds == 0 {
            (m.auto_init || (!m.is_manual() && o.newest_change.is_some()))
                .then(|| "Initial Build".to_string())
        } else if !m.is_manual() && o.newest_change.is_some() && up {
            Some(files_changed_message(&o.files))
        } else if !m.is_manual() && rs.last_inputs != o.inputs && up {
            Some("Resource configuration changed".to_string())
        } else {
            None
        };
        let mut waiting: Option<String> = None;
        let mut serial_started = false;
        if let Some(reason) = reason {
            if rs.building {
                resources
                    .get_mut(&m.name)
                    .expect("inserted")
                    .dirty_while_building = true;
            } else if settings.tiltfile_busy {
                waiting = Some("waiting-for-tiltfile".into());
            } else if o.cluster_down.is_some() && rs.builds > 0 {
                // As Tilt, whose health check reports only after its first updates have
                // started: a first update is never held, so with the cluster down at start it
                // fails and says why (and `ci` exits 1) rather than racing the first check.
                waiting = Some(WAITING_FOR_CLUSTER.into());
            } else if rs.builds == 0
                && !m
                    .resource_deps
                    .iter()
                    .all(|d| !names.contains(d) || resources.get(d).is_some_and(|r| r.ever_ready))
            {
                waiting = Some("waiting-for-dep".into());
            } else if building >= settings.max_parallel
                || exclusive_running
                || (m.kind == ResourceType::Local && !m.allow_parallel && building > 0)
            {
                waiting = Some("waiting-for-slot".into());
            } else {
                building += 1;
                let r = resources.get_mut(&m.name).expect("inserted");
                r.building = true;
                r.builds += 1;
                r.last_start = Some(settings.now);
                r.last_inputs = o.inputs.clone();
                r.dirty_while_building = false;
                to_start.push((m.clone(), reason));
                // A serial local resource runs alone.
                serial_started = m.kind == ResourceType::Local && !m.allow_parallel;
            }
        }
        let decided = Decided {
            state: resources.get(&m.name).cloned().unwrap_or_default(),
            last_start_before: rs.last_start,
        };
        statuses.push((m.clone(), decided, waiting, disabled));
        if serial_started {
            break;
        }
    }
    Decisions { to_start, statuses }
}

fn files_changed_message(files: &[String]) -> String {
    let cwd = std::env::current_dir().ok();
    let shown: Vec<String> = files
        .iter()
        .take(5)
        .map(|f| {
            cwd.as_ref()
                .and_then(|c| std::path::Path::new(f).strip_prefix(c).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| f.clone())
        })
        .collect();
    let more = if files.len() > 5 { " ..." } else { "" };
    format!(
        "{} File{} Changed: [{}{more}]",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        shown.join(" ")
    )
}

/// Runs a resource's update: for a local resource its `cmd`, then (on success) a restart of its
/// `serve_cmd`.
async fn run_update(
    ctx: &Ctx,
    state: &Arc<Mutex<State>>,
    m: &Manifest,
    span: &str,
) -> Result<(), String> {
    match m.kind.as_str() {
        "local" => {
            if let Ok(cmd) = ctx.store.get_typed::<Cmd>(&update_cmd(&m.name)) {
                run_update_cmd(ctx, state, m, span, &cmd).await?;
            }
            if let Ok(serve) = ctx.store.get_typed::<Cmd>(&serve_cmd(&m.name)) {
                restart_serve(ctx, &serve);
            }
            Ok(())
        }
        "k8s" => {
            crate::k8s::build_and_push(ctx, &m.name, &m.image_maps, span).await?;
            let ka = ctx
                .store
                .list_typed::<KubernetesApply>()
                .unwrap_or_default()
                .into_iter()
                .find(|k| k.metadata.resource() == Some(m.name.as_str()))
                .ok_or_else(|| format!("no KubernetesApply for resource {}", m.name))?;
            // The KubernetesApply reconciler applies; the queue only asks, through the store.
            crate::k8s::apply::request_apply(ctx, &ka.metadata.name, span).await
        }
        "docker-compose" => {
            crate::docker::build_images(ctx, &m.name, &m.image_maps, span).await?;
            let dcs = ctx
                .store
                .list_typed::<DockerComposeService>()
                .unwrap_or_default()
                .into_iter()
                .find(|d| d.metadata.resource() == Some(m.name.as_str()))
                .ok_or_else(|| format!("no DockerComposeService for resource {}", m.name))?;
            ctx.logs.line(
                &m.name,
                span,
                Level::Info,
                &format!("Starting Docker Compose service {}", dcs.spec.service),
            );
            crate::docker::compose_up(ctx, &dcs, &m.name, span).await?;
            let mut st = state.lock();
            let monitor = st
                .monitors
                .get(&dcs.metadata.name)
                .is_none_or(|t| t.is_finished());
            if monitor {
                st.monitors.insert(
                    dcs.metadata.name.clone(),
                    crate::dcmonitor::monitor(
                        ctx.clone(),
                        dcs.metadata.name.clone(),
                        m.name.clone(),
                    ),
                );
            }
            Ok(())
        }
        "syncback" => crate::syncback::run(ctx, &m.name, span).await,
        other => {
            ctx.logs.line(
                &m.name,
                span,
                Level::Warn,
                &format!("{other} resources are not supported by this engine yet"),
            );
            Err(format!(
                "{other} resources are not supported by this engine yet"
            ))
        }
    }
}

async fn run_update_cmd(
    ctx: &Ctx,
    state: &Arc<Mutex<State>>,
    m: &Manifest,
    span: &str,
    cmd: &Cmd,
) -> Result<(), String> {
    let out = Output {
        logs: ctx.logs.clone(),
        resource: m.name.clone(),
        span: span.to_string(),
    };
    let spec = ProcSpec {
        args: cmd.spec.args.clone(),
        dir: (!cmd.spec.dir.is_empty()).then(|| cmd.spec.dir.clone().into()),
        env: cmd.spec.env.clone(),
    };
    ctx.logs.line(
        &m.name,
        span,
        Level::Info,
        &format!("Running cmd: {}", cmd.spec.args.join(" ")),
    );
    let started = MicroTime::now();
    let mut running = match proc::spawn(&spec, &ctx.process_env, out, &ctx.leftovers) {
        Ok(r) => r,
        Err(e) => {
            ctx.logs.line(&m.name, span, Level::Error, &e.to_string());
            return Err(e.to_string());
        }
    };
    let pid = running.pid;
    state
        .lock()
        .running
        .insert(cmd.metadata.name.clone(), running.stopper());
    crate::cmd::write_cmd_status(ctx, &cmd.metadata.name, |s| {
        s.waiting = None;
        s.terminated = None;
        s.running = Some(CmdStateRunning {
            pid,
            started_at: started,
        });
    });
    let exit = running.wait().await;
    state.lock().running.remove(&cmd.metadata.name);
    crate::cmd::write_cmd_status(ctx, &cmd.metadata.name, |s| {
        s.running = None;
        s.ready = exit.code == 0;
        s.terminated = Some(CmdStateTerminated {
            pid,
            exit_code: exit.code,
            started_at: started,
            finished_at: MicroTime::now(),
            reason: exit.reason.clone(),
        });
    });
    if exit.code == 0 {
        // Let file events caused by the command settle (Tilt waits 250 ms).
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok(())
    } else {
        let msg = format!(
            "Command {:?} failed: exit status {}",
            cmd.spec.args.join(" "),
            exit.code
        );
        ctx.logs.line(&m.name, span, Level::Error, &msg);
        Err(msg)
    }
}

/// Tells the Cmd controller to (re)start the serve process.
fn restart_serve(ctx: &Ctx, serve: &Cmd) {
    for _ in 0..5 {
        let Ok(mut c) = ctx.store.get_typed::<Cmd>(&serve.metadata.name) else {
            return;
        };
        let n: u64 = c
            .metadata
            .annotations
            .get(ANN_RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        c.metadata
            .annotations
            .insert(ANN_RESTART_COUNT.into(), (n + 1).to_string());
        match ctx.store.update_typed(&c) {
            Err(StoreError::Conflict { .. }) => continue,
            _ => return,
        }
    }
}

pub(crate) fn write_ui(ctx: &Ctx, name: &str, f: impl Fn(&mut UIResourceStatus)) {
    if let Err(e) = ctx.store.update_status_with::<UIResource>(name, |o| {
        f(o.status.get_or_insert_with(Default::default))
    }) {
        tracing::warn!("writing the status of UIResource {name}: {e}");
    }
}

/// Marks a build as started in the resource's UIResource.
pub fn record_build_start(ctx: &Ctx, resource: &str, span: &str, started: MicroTime) {
    write_ui(ctx, resource, |s| {
        s.current_build = Some(UIBuildRunning {
            start_time: Some(started),
            span_id: span.to_string(),
        });
        s.update_status = "in_progress".into();
        s.pending_build_since = None;
        s.queued = false;
    });
}

/// Moves the current build into the history.
pub fn record_build_end(ctx: &Ctx, resource: &str, span: &str, started: MicroTime, error: &str) {
    let finished = MicroTime::now();
    write_ui(ctx, resource, |s| {
        s.current_build = None;
        s.build_history.insert(
            0,
            UIBuildTerminated {
                error: error.to_string(),
                start_time: Some(started),
                finish_time: Some(finished),
                span_id: span.to_string(),
                stages: vec![UIBuildStage {
                    name: "update".into(),
                    start_time: Some(started),
                    finish_time: Some(finished),
                }],
                ..Default::default()
            },
        );
        s.build_history.truncate(MAX_BUILD_HISTORY);
        s.update_status = if error.is_empty() {
            "ok".into()
        } else {
            "error".into()
        };
        if error.is_empty() {
            s.last_deploy_time = Some(finished);
        }
    });
}

/// What the queue shows on a resource's UIResource besides its runtime state.
struct QueueView {
    /// The resource's place in the Tiltfile.
    order: usize,
    /// Why it waits, if it does.
    waiting: Option<String>,
    disabled: bool,
    /// Changed files a manual resource has not been updated for.
    pending_files: Vec<String>,
    /// The runtime status and whether the resource is ready, as observed before deciding.
    runtime: (&'static str, bool),
}

impl BuildReconciler {
    fn write_ui_status(&self, m: &Manifest, rs: &ResourceState, queue: QueueView) {
        let QueueView {
            order,
            waiting,
            disabled,
            pending_files,
            runtime: (runtime, ready),
        } = queue;
        let serve_pid = self
            .ctx
            .store
            .get_typed::<Cmd>(&serve_cmd(&m.name))
            .ok()
            .and_then(|c| c.status)
            .and_then(|s| s.running)
            .map(|r| r.pid as i64);
        let deps = m.resource_deps.clone();
        let cluster = cluster_of(m);
        write_ui(&self.ctx, &m.name, |s| {
            s.trigger_mode = trigger_mode_number(m);
            s.order = i32::try_from(order).unwrap_or(i32::MAX);
            s.endpoint_links = m.endpoint_links();
            s.runtime_status = runtime.into();
            s.has_pending_changes = !pending_files.is_empty();
            if m.kind == ResourceType::Local {
                s.local_resource_info = Some(UIResourceLocal {
                    pid: serve_pid.unwrap_or(0),
                    is_test: false,
                });
            }
            if s.current_build.is_none() {
                if disabled {
                    s.update_status = "none".into();
                } else if waiting.is_some() {
                    s.update_status = "pending".into();
                } else if rs.builds == 0 {
                    s.update_status = if m.auto_init {
                        "pending".into()
                    } else {
                        "none".into()
                    };
                }
            }
            s.queued = waiting.as_deref() == Some("waiting-for-slot");
            s.waiting = waiting.as_ref().map(|reason| UIResourceStateWaiting {
                reason: reason.clone(),
                on: match reason.as_str() {
                    "waiting-for-dep" => deps.iter().map(|d| waiting_on("UIResource", d)).collect(),
                    WAITING_FOR_CLUSTER => {
                        cluster.iter().map(|c| waiting_on("Cluster", c)).collect()
                    }
                    _ => vec![],
                },
            });
            s.disable_status = Some(DisableResourceStatus {
                enabled_count: if disabled { 0 } else { 1 },
                disabled_count: if disabled { 1 } else { 0 },
                state: if disabled {
                    "Disabled".into()
                } else {
                    "Enabled".into()
                },
                sources: vec![DisableSource {
                    config_map: Some(ConfigMapDisableSource {
                        name: disable_configmap(&m.name),
                        key: DISABLE_KEY.into(),
                    }),
                    ..Default::default()
                }],
            });
            let up_to_date = s.update_status == "ok" || s.update_status == "not_applicable";
            let ready_now = ready || (runtime == "not_applicable" && up_to_date);
            let cond = |t: &str, ok: bool| Condition {
                r#type: t.into(),
                status: if ok { "True".into() } else { "False".into() },
                ..Default::default()
            };
            let mut conds = vec![cond("Ready", ready_now), cond("UpToDate", up_to_date)];
            for (new, old) in conds.iter_mut().zip(s.conditions.iter()) {
                if new.r#type == old.r#type && new.status == old.status {
                    new.last_transition_time = old.last_transition_time;
                }
            }
            for c in conds.iter_mut() {
                if c.last_transition_time.is_none() {
                    c.last_transition_time = Some(MicroTime::now());
                }
            }
            s.conditions = conds;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, kind: &str) -> Manifest {
        Manifest {
            name: name.into(),
            kind: ResourceType::parse(kind).unwrap(),
            trigger_mode: "auto".into(),
            auto_init: true,
            ..Default::default()
        }
    }

    fn seen(m: Manifest) -> Observed {
        Observed {
            manifest: m,
            disabled: false,
            ready: false,
            trigger: None,
            newest_change: None,
            files: vec![],
            inputs: "in".into(),
            cluster_down: None,
        }
    }

    fn built(builds: u64) -> ResourceState {
        ResourceState {
            builds,
            last_inputs: "in".into(),
            ever_ready: builds > 0,
            succeeded_once: builds > 0,
            ..Default::default()
        }
    }

    type Row = (
        &'static str,
        Mode,
        bool,
        usize,
        Vec<Observed>,
        Vec<(&'static str, ResourceState)>,
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, &'static str)>,
    );

    #[test]
    fn passes_back_to_back_wait_as_long_as_the_last_one_took() {
        let t0 = std::time::Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            Pacing::default().wait(t0),
            None,
            "the first pass runs at once"
        );
        let p = Pacing {
            last_end: Some(t0),
            last_cost: ms(20),
            deferred: false,
        };
        // (now, wait)
        for (now, want) in [
            (t0, Some(ms(20))),
            (t0 + ms(5), Some(ms(15))),
            (t0 + ms(20), None),
            (t0 + ms(500), None),
        ] {
            assert_eq!(p.wait(now), want, "{:?}", now - t0);
        }
    }

    /// (case, mode, Tiltfile busy, max parallel, observed, states before) → (started with
    /// reason, waiting with reason).
    #[test]
    fn the_decision_pass() {
        let now = MicroTime::now();
        let with = |m: Manifest, f: &dyn Fn(&mut Observed)| {
            let mut o = seen(m);
            f(&mut o);
            o
        };
        let manual = Manifest {
            trigger_mode: "manual".into(),
            auto_init: false,
            ..manifest("m", "local")
        };
        let dependent = Manifest {
            resource_deps: vec!["db".into()],
            ..manifest("app", "k8s")
        };
        let rows: Vec<Row> = vec![
            (
                "first update",
                Mode::Up,
                false,
                3,
                vec![seen(manifest("web", "k8s"))],
                vec![],
                vec![("web", "Initial Build")],
                vec![],
            ),
            (
                "manual without auto_init waits for a trigger",
                Mode::Up,
                false,
                3,
                vec![seen(manual.clone())],
                vec![],
                vec![],
                vec![],
            ),
            (
                "a trigger",
                Mode::Up,
                false,
                3,
                vec![with(manual.clone(), &|o| o.trigger = Some("cli".into()))],
                vec![],
                vec![("m", "Triggered (cli)")],
                vec![],
            ),
            (
                "the Tiltfile is loading",
                Mode::Up,
                true,
                3,
                vec![seen(manifest("web", "k8s"))],
                vec![],
                vec![],
                vec![("web", "waiting-for-tiltfile")],
            ),
            (
                "the cluster connection has an error",
                Mode::Up,
                false,
                3,
                vec![
                    with(manifest("web", "k8s"), &|o| {
                        o.cluster_down = Some("default".into());
                        o.newest_change = Some(now);
                        o.files = vec!["a.txt".into()];
                    }),
                    seen(manifest("tool", "local")),
                ],
                vec![(
                    "web",
                    ResourceState {
                        builds: 1,
                        last_inputs: "in".into(),
                        ..Default::default()
                    },
                )],
                vec![("tool", "Initial Build")],
                vec![("web", "waiting-for-cluster")],
            ),
            (
                "a first update runs into the cluster error",
                Mode::Up,
                false,
                3,
                vec![with(manifest("web", "k8s"), &|o| {
                    o.cluster_down = Some("default".into())
                })],
                vec![],
                vec![("web", "Initial Build")],
                vec![],
            ),
            (
                "a dependency never ready",
                Mode::Up,
                false,
                3,
                vec![seen(manifest("db", "k8s")), seen(dependent.clone())],
                vec![(
                    "db",
                    ResourceState {
                        builds: 1,
                        building: true,
                        ..Default::default()
                    },
                )],
                vec![],
                vec![("app", "waiting-for-dep")],
            ),
            (
                "a ready dependency",
                Mode::Up,
                false,
                3,
                vec![seen(manifest("db", "k8s")), seen(dependent.clone())],
                vec![("db", built(1))],
                vec![("app", "Initial Build")],
                vec![],
            ),
            (
                "one slot",
                Mode::Up,
                false,
                1,
                vec![seen(manifest("a", "k8s")), seen(manifest("b", "k8s"))],
                vec![],
                vec![("a", "Initial Build")],
                vec![("b", "waiting-for-slot")],
            ),
            (
                "a file change",
                Mode::Up,
                false,
                3,
                vec![with(manifest("web", "k8s"), &|o| {
                    o.newest_change = Some(now);
                    o.files = vec!["a.txt".into()];
                })],
                vec![("web", built(1))],
                vec![("web", "1 File Changed: [a.txt]")],
                vec![],
            ),
            (
                "no file changes under ci",
                Mode::Ci,
                false,
                3,
                vec![with(manifest("web", "k8s"), &|o| {
                    o.newest_change = Some(now);
                    o.files = vec!["a.txt".into()];
                })],
                vec![("web", built(1))],
                vec![],
                vec![],
            ),
            (
                "a reload changed the YAML",
                Mode::Up,
                false,
                3,
                vec![with(manifest("web", "k8s"), &|o| {
                    o.inputs = "new yaml".into()
                })],
                vec![("web", built(1))],
                vec![("web", "Resource configuration changed")],
                vec![],
            ),
            (
                "disabled",
                Mode::Up,
                false,
                3,
                vec![with(manifest("web", "k8s"), &|o| o.disabled = true)],
                vec![],
                vec![],
                vec![],
            ),
            (
                "a serial local resource runs alone",
                Mode::Up,
                false,
                3,
                vec![seen(manifest("l1", "local")), seen(manifest("l2", "local"))],
                vec![],
                vec![("l1", "Initial Build")],
                vec![],
            ),
        ];
        for (case, mode, busy, max_parallel, observed, before, started, waiting) in rows {
            let settings = DecideSettings {
                mode,
                tiltfile_busy: busy,
                max_parallel,
                now,
            };
            let mut resources: HashMap<String, ResourceState> = before
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect();
            let d = decide(&settings, &observed, &mut resources);
            let got: Vec<(String, String)> = d
                .to_start
                .iter()
                .map(|(m, r)| (m.name.clone(), r.clone()))
                .collect();
            let want: Vec<(String, String)> = started
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string()))
                .collect();
            assert_eq!(got, want, "{case}: started");
            let got: Vec<(String, String)> = d
                .statuses
                .iter()
                .filter_map(|(m, _, w, _)| Some((m.name.clone(), w.clone()?)))
                .collect();
            let want: Vec<(String, String)> = waiting
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string()))
                .collect();
            assert_eq!(got, want, "{case}: waiting");
        }
    }

    /// Disabling a deployed Kubernetes resource forgets its updates: enabling deploys again.
    #[test]
    fn enabling_a_disabled_kubernetes_resource_deploys_it_again() {
        let settings = DecideSettings {
            mode: Mode::Up,
            tiltfile_busy: false,
            max_parallel: 3,
            now: MicroTime::now(),
        };
        for kind in ["k8s", "docker-compose"] {
            let mut resources: HashMap<String, ResourceState> =
                [("web".to_string(), built(2))].into();
            let mut o = seen(manifest("web", kind));
            o.disabled = true;
            assert!(
                decide(&settings, &[o.clone()], &mut resources)
                    .to_start
                    .is_empty()
            );
            assert_eq!(resources["web"].builds, 0, "{kind}");
            o.disabled = false;
            let d = decide(&settings, &[o], &mut resources);
            assert_eq!(d.to_start[0].1, "Initial Build", "{kind}");
        }
    }
}
