//! The LiveUpdate reconciler: finds the containers a LiveUpdate's selector names (a compose
//! service's container, the running containers of a Docker image, the pods of a
//! KubernetesDiscovery), decides per container what it is missing ([`plan`], pure), and syncs it
//! through the one update path of [`target`]: changed files copied, removed ones deleted, the
//! exec steps whose trigger paths match run, the container restarted when asked, stage timings
//! recorded in the status.
//!
//! Changes it cannot sync (outside every sync, or matching a stop path / `fall_back_on`) are left
//! to the build controller, which rebuilds the image; a replaced container gets every change since
//! its image was built replayed.

use crate::Ctx;
use crate::controller::{self, Queue, Reconciler};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stilt_api::*;
use stilt_docker::ExecRequest;

mod target;

use stilt_store::TypedStore;

/// Where a local file goes in the container, if a sync covers it and no stop path does.
pub fn syncable(spec: &LiveUpdateSpec, file: &Path) -> Option<String> {
    let base = Path::new(&spec.base_path);
    let stopped = spec
        .stop_paths
        .iter()
        .any(|s| file.starts_with(base.join(s)));
    if stopped {
        return None;
    }
    spec.syncs.iter().find_map(|s| {
        let local = base.join(&s.local_path);
        file.strip_prefix(&local).ok().map(|rest| {
            let dest = Path::new(&s.container_path).join(rest);
            dest.display().to_string().trim_end_matches('/').to_string()
        })
    })
}

fn triggered(exec: &LiveUpdateExec, base: &Path, files: &[PathBuf]) -> bool {
    exec.trigger_paths.is_empty()
        || files.iter().any(|f| {
            exec.trigger_paths
                .iter()
                .any(|t| f.starts_with(base.join(t)))
        })
}

#[derive(Default)]
struct LuState {
    busy: bool,
    /// container ID → newest file event time synced into it.
    synced: HashMap<String, MicroTime>,
    /// Containers that got files (`initial_sync()` is for the others).
    got_files: BTreeSet<String>,
    /// Containers whose channel was opened ahead of the first edit.
    warmed: BTreeSet<String>,
}

struct LiveUpdateReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<HashMap<String, LuState>>>,
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(LiveUpdateReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: Default::default(),
    });
    use crate::refindex::{own_name, referencing, spec_keys};
    let by_source = referencing(
        &ctx,
        "LiveUpdate",
        spec_keys(|spec: &LiveUpdateSpec| {
            spec.sources
                .iter()
                .flat_map(|s| [s.file_watch.clone(), s.image_map.clone()])
                .filter(|n| !n.is_empty())
                .collect()
        }),
        own_name(),
    );
    let by_service = referencing(
        &ctx,
        "LiveUpdate",
        spec_keys(|spec: &LiveUpdateSpec| {
            spec.selector
                .docker_compose
                .iter()
                .map(|d| d.service.clone())
                .collect()
        }),
        Arc::new(|obj| {
            obj["spec"]["service"]
                .as_str()
                .map(|s| vec![s.to_string()])
                .unwrap_or_default()
        }),
    );
    let by_discovery = referencing(
        &ctx,
        "LiveUpdate",
        spec_keys(|spec: &LiveUpdateSpec| {
            spec.selector
                .kubernetes
                .iter()
                .map(|k| k.discovery_name.clone())
                .collect()
        }),
        own_name(),
    );
    controller::run(
        ctx,
        queue,
        vec![
            ("KubernetesDiscovery", by_discovery),
            ("LiveUpdate", controller::same_name()),
            ("FileWatch", by_source.clone()),
            ("ImageMap", by_source),
            ("DockerComposeService", by_service),
        ],
        r,
    );
}

/// The running container of a compose-selected LiveUpdate: (container ID, name).
pub(crate) fn compose_container(ctx: &Ctx, service: &str) -> Option<(String, String)> {
    ctx.store
        .list_typed::<DockerComposeService>()
        .ok()?
        .into_iter()
        .find(|d| d.spec.service == service)
        .and_then(|d| d.status)
        .filter(|s| {
            s.container_state.as_ref().is_some_and(|c| c.running) && !s.container_id.is_empty()
        })
        .map(|s| (s.container_id, s.container_name))
}

/// Files changed (per the sources' FileWatches) after `since`, and the newest event time.
fn changes_since(
    ctx: &Ctx,
    lu: &LiveUpdate,
    since: Option<MicroTime>,
) -> (Vec<PathBuf>, Option<MicroTime>) {
    let mut files = BTreeSet::new();
    let mut newest = None;
    for src in &lu.spec.sources {
        let Ok(fw) = ctx.store.get_typed::<FileWatch>(&src.file_watch) else {
            continue;
        };
        for ev in fw.status.map(|s| s.file_events).unwrap_or_default() {
            if since.is_none_or(|s| ev.time > s) {
                newest = newest.max(Some(ev.time));
                files.extend(ev.seen_files.into_iter().map(PathBuf::from));
            }
        }
    }
    (expand_dirs(files), newest)
}

/// `initial_sync()`: every file under the sync paths that the sources' FileWatches do not ignore
/// and no stop path covers, for a container that never got a sync.
fn initial_files(ctx: &Ctx, lu: &LiveUpdate) -> Vec<PathBuf> {
    let ignores: Vec<stilt_watch::Ignores> = lu
        .spec
        .sources
        .iter()
        .filter_map(|s| ctx.store.get_typed::<FileWatch>(&s.file_watch).ok())
        .filter_map(|fw| crate::filewatch::ignores(&fw.spec).ok())
        .collect();
    let ignored = |p: &Path, is_dir: bool| ignores.iter().any(|i| i.is_ignored(p, is_dir));
    fn walk(dir: &Path, ignored: &dyn Fn(&Path, bool) -> bool, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if ignored(&p, is_dir) {
                continue;
            }
            if is_dir {
                walk(&p, ignored, out);
            } else {
                out.insert(p);
            }
        }
    }
    let base = Path::new(&lu.spec.base_path);
    let mut out = BTreeSet::new();
    for sync in &lu.spec.syncs {
        let local = base.join(&sync.local_path);
        if local.is_dir() {
            walk(&local, &ignored, &mut out);
        } else if local.is_file() {
            out.insert(local);
        }
    }
    out.into_iter()
        .filter(|f| syncable(&lu.spec, f).is_some())
        .collect()
}

/// A changed directory stands for everything in it, as in Tilt (whose archive of a directory
/// is recursive): `touch src` syncs src's files. Otherwise its path, not being a readable file,
/// would count as deleted.
fn expand_dirs(paths: BTreeSet<PathBuf>) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, out),
                Ok(_) => {
                    out.insert(p);
                }
                Err(_) => {}
            }
        }
    }
    let mut out = BTreeSet::new();
    for p in paths {
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            walk(&p, &mut out);
        } else {
            out.insert(p);
        }
    }
    out.into_iter().collect()
}

/// When the images this LiveUpdate's sources come from were last built. Without an image
/// source (k8s_custom_deploy's `image_selector`), when its KubernetesApply last started applying.
fn build_start(ctx: &Ctx, lu: &LiveUpdate) -> Option<MicroTime> {
    let built = lu
        .spec
        .sources
        .iter()
        .filter(|s| !s.image_map.is_empty())
        .filter_map(|s| ctx.store.get_typed::<ImageMap>(&s.image_map).ok()?.status)
        .filter(|s| !s.image.is_empty())
        .filter_map(|s| s.build_start_time)
        .max();
    if built.is_some() || lu.spec.sources.iter().any(|s| !s.image_map.is_empty()) {
        return built;
    }
    let apply = &lu.spec.selector.kubernetes.as_ref()?.apply_name;
    ctx.store
        .get_typed::<KubernetesApply>(apply)
        .ok()?
        .status?
        .last_apply_start_time
}

/// Whether `lu` has a failure that still stands: one recorded after its image was last built.
/// A build that started after the failure may have replaced or repaired the container, so the
/// next change is tried as a live update again (Tilt forgets such failures the same way).
pub(crate) fn has_standing_failure(ctx: &Ctx, lu: &LiveUpdate) -> bool {
    let Some(failed) = lu.status.as_ref().and_then(|s| s.failed.as_ref()) else {
        return false;
    };
    !failure_predates(failed, build_start(ctx, lu))
}

/// Whether a build started after `failed` was recorded.
pub(crate) fn failure_predates(failed: &LiveUpdateStateFailed, built: Option<MicroTime>) -> bool {
    matches!((failed.last_transition_time, built), (Some(at), Some(built)) if built > at)
}

fn write_lu_status(ctx: &Ctx, name: &str, f: impl Fn(&mut LiveUpdateStatus)) {
    crate::storewrite::logged(
        ctx.store.update_status_with::<LiveUpdate>(name, |o| {
            f(o.status.get_or_insert_with(Default::default))
        }),
        || format!("writing the status of LiveUpdate {name}"),
    );
}

/// A container a LiveUpdate targets, however its selector found it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Container {
    /// What sync state is kept by: the Docker container ID, or the pod container's ID.
    pub id: String,
    pub name: String,
    /// `containerID` in the status (`docker://<id>`, or the pod's `containerd://…`).
    pub status_id: String,
    pub pod: String,
    pub namespace: String,
}

impl Container {
    fn docker(id: &str, name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            status_id: format!("docker://{id}"),
            pod: String::new(),
            namespace: String::new(),
        }
    }

    fn is_pod(&self) -> bool {
        !self.pod.is_empty()
    }
}

/// The containers a LiveUpdate's selector names now.
enum Found {
    /// The image is not built yet: nothing to update.
    NotBuilt,
    /// No container runs yet; the message says what is awaited.
    NotRunning(String),
    Containers {
        built: Option<MicroTime>,
        containers: Vec<Container>,
    },
}

/// What to do for one container (pure; see [`plan`]).
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Nothing changed since it was last synced.
    UpToDate,
    /// A change outside every sync (or under a stop path): the build controller rebuilds.
    NeedsRebuild,
    /// Copy these (local, container) pairs; the container is then synced up to `newest`.
    Sync {
        files: Vec<PathBuf>,
        pairs: Vec<(PathBuf, String)>,
        newest: MicroTime,
    },
}

/// Changes after `since` are due: the later of the last sync into this container and the build
/// of its image (a container we never synced into gets every change since the build: replay,
/// no rebuild).
pub(crate) fn since_for(synced: Option<MicroTime>, built: Option<MicroTime>) -> Option<MicroTime> {
    synced.max(built)
}

/// The step for a container given the files changed since it was synced.
pub(crate) fn plan(spec: &LiveUpdateSpec, files: Vec<PathBuf>, newest: Option<MicroTime>) -> Step {
    let Some(newest) = newest else {
        return Step::UpToDate;
    };
    let pairs: Vec<(PathBuf, String)> = files
        .iter()
        .filter_map(|f| syncable(spec, f).map(|dest| (f.clone(), dest)))
        .collect();
    if pairs.len() < files.len() {
        return Step::NeedsRebuild;
    }
    Step::Sync {
        files,
        pairs,
        newest,
    }
}

impl Reconciler for LiveUpdateReconciler {
    fn reconcile(&self, name: &str) {
        let Ok(lu) = self.ctx.store.get_typed::<LiveUpdate>(name) else {
            self.state.lock().remove(name);
            return;
        };
        {
            let mut st = self.state.lock();
            let entry = st.entry(name.to_string()).or_default();
            if entry.busy {
                return;
            }
            entry.busy = true;
        }
        let (ctx, state, queue, name) = (
            self.ctx.clone(),
            self.state.clone(),
            self.queue.clone(),
            name.to_string(),
        );
        tokio::spawn(async move {
            let updated = update(&ctx, &state, &lu).await;
            state.lock().entry(name.clone()).or_default().busy = false;
            // No store object announces a `selector.docker` container: poll.
            let poll = lu.spec.selector.docker.is_some();
            if poll {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            // Changes that came while updating get their own pass.
            if updated || poll {
                queue.add(&name);
            }
        });
    }
}

/// The containers `lu` targets now.
async fn find(ctx: &Ctx, lu: &LiveUpdate) -> Result<Found, String> {
    let sel = &lu.spec.selector;
    if let Some(k) = &sel.kubernetes {
        let Some(built) = build_start(ctx, lu) else {
            return Ok(Found::NotBuilt);
        };
        let containers = pod_containers(ctx, k);
        if containers.is_empty() {
            return Ok(Found::NotRunning(format!(
                "waiting for a running pod of {}",
                k.discovery_name
            )));
        }
        return Ok(Found::Containers {
            built: Some(built),
            containers,
        });
    }
    if let Some(d) = &sel.docker {
        let Some(image) = docker_selector_ref(ctx, lu, &d.image) else {
            return Ok(Found::NotBuilt);
        };
        let docker = ctx.docker.docker().await?;
        let filter = stilt_docker::types::ContainerFilter {
            image: Some(image.clone()),
            ..Default::default()
        };
        let containers: Vec<Container> = docker
            .list_containers(&filter)
            .await
            .map_err(|e| format!("listing containers of {image}: {e}"))?
            .into_iter()
            .filter(|c| c.state == "running")
            .map(|c| {
                let name = c.names.first().cloned().unwrap_or_else(|| c.id.clone());
                Container::docker(&c.id, &name)
            })
            .collect();
        return Ok(Found::Containers {
            built: build_start(ctx, lu),
            containers,
        });
    }
    let Some(service) = sel.docker_compose.as_ref().map(|d| d.service.clone()) else {
        return Ok(Found::NotBuilt);
    };
    let Some(built) = build_start(ctx, lu) else {
        return Ok(Found::NotBuilt);
    };
    Ok(match compose_container(ctx, &service) {
        Some((id, name)) => Found::Containers {
            built: Some(built),
            containers: vec![Container::docker(&id, &name)],
        },
        None => Found::NotRunning(format!(
            "waiting for a running container of service {service}"
        )),
    })
}

/// One pass: finds the containers, syncs what each is missing, writes the status. Returns
/// whether anything was synced.
async fn update(ctx: &Ctx, state: &Arc<Mutex<HashMap<String, LuState>>>, lu: &LiveUpdate) -> bool {
    let name = lu.metadata.name.clone();
    let resource = lu.metadata.resource_or_name();
    let (built, containers) = match find(ctx, lu).await {
        Ok(Found::NotBuilt) => return false,
        Ok(Found::NotRunning(message)) => {
            write_lu_status(ctx, &name, |s| {
                s.containers = vec![LiveUpdateContainerStatus {
                    waiting: Some(LiveUpdateContainerStateWaiting {
                        reason: "ContainerNotRunning".into(),
                        message: message.clone(),
                    }),
                    ..Default::default()
                }];
            });
            return false;
        }
        Ok(Found::Containers { built, containers }) => (built, containers),
        Err(e) => {
            write_failed(ctx, &name, &e);
            return false;
        }
    };
    let previous = ctx
        .store
        .get_typed::<LiveUpdate>(&name)
        .ok()
        .and_then(|l| l.status)
        .map(|s| s.containers)
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let mut synced_any = false;
    let mut failure: Option<String> = None;
    for c in containers {
        let synced = state
            .lock()
            .get(&name)
            .and_then(|e| e.synced.get(&c.id).copied());
        let since = since_for(synced, built);
        let never_synced = !state
            .lock()
            .get(&name)
            .is_some_and(|e| e.got_files.contains(&c.id));
        let initial = (lu.spec.initial_sync.is_some() && never_synced)
            .then(|| initial_files(ctx, lu))
            .filter(|files| !files.is_empty());
        let (files, newest) = match initial {
            // Everything under the syncs, as of now: later changes come as events after it.
            Some(files) => (files, Some(MicroTime::now())),
            None => changes_since(ctx, lu, since),
        };
        let mut status = previous
            .iter()
            .find(|p| p.container_id == c.status_id && p.waiting.is_none())
            .cloned()
            .unwrap_or_else(|| LiveUpdateContainerStatus {
                container_name: c.name.clone(),
                container_id: c.status_id.clone(),
                pod_name: c.pod.clone(),
                namespace: c.namespace.clone(),
                last_file_time_synced: synced,
                ..Default::default()
            });
        match plan(&lu.spec, files, newest) {
            Step::UpToDate => {
                let mut st = state.lock();
                let entry = st.entry(name.clone()).or_default();
                if let Some(since) = since {
                    entry.synced.entry(c.id.clone()).or_insert(since);
                }
                if entry.warmed.insert(c.id.clone()) {
                    tokio::spawn(warm_channel(ctx.clone(), c.clone()));
                }
            }
            Step::NeedsRebuild => {
                status.waiting = Some(LiveUpdateContainerStateWaiting {
                    reason: "NeedsRebuild".into(),
                    message: "a change outside every sync needs an image rebuild".into(),
                });
            }
            Step::Sync {
                files,
                pairs,
                newest,
            } => {
                synced_any = true;
                match sync_into(ctx, lu, &resource, &c, files, pairs, newest).await {
                    Ok((exec_error, timings)) => {
                        {
                            let mut st = state.lock();
                            let entry = st.entry(name.clone()).or_default();
                            entry.synced.insert(c.id.clone(), newest);
                            entry.got_files.insert(c.id.clone());
                        }
                        status.waiting = None;
                        status.last_file_time_synced = Some(newest);
                        status.last_exec_error = exec_error;
                        status.last_update_timings = Some(timings);
                    }
                    Err(e) => failure = Some(e),
                }
            }
        }
        statuses.push(status);
    }
    // A new failure goes to the resource's log too (Tilt's line): the status alone is seen by
    // no one, and the rebuild it falls back to says nothing of why.
    let was = ctx
        .store
        .get_typed::<LiveUpdate>(&name)
        .ok()
        .and_then(|l| l.status)
        .and_then(|s| s.failed)
        .map(|f| f.message);
    if let Some(m) = &failure
        && was.as_ref() != Some(m)
    {
        ctx.logs.line(
            &resource,
            &format!("liveupdate:{name}"),
            stilt_logs::Level::Info,
            &format!("LiveUpdate {name:?} UpdateFailed: {m}"),
        );
    }
    write_lu_status(ctx, &name, |s| {
        s.containers = statuses.clone();
        if synced_any {
            s.failed = failure.as_ref().map(|m| failed(m));
        } else if s
            .failed
            .as_ref()
            .is_some_and(|f| failure_predates(f, built))
        {
            s.failed = None;
        }
    });
    synced_any
}

fn failed(message: &str) -> LiveUpdateStateFailed {
    LiveUpdateStateFailed {
        reason: "UpdateFailed".into(),
        message: message.to_string(),
        last_transition_time: Some(MicroTime::now()),
    }
}

fn write_failed(ctx: &Ctx, name: &str, message: &str) {
    write_lu_status(ctx, name, |s| s.failed = Some(failed(message)));
}

/// Opens the channel into a container as soon as it runs, so the first edit is as fast as any
/// later one (installing the helper is most of a first sync's time).
async fn warm_channel(ctx: Ctx, c: Container) {
    if c.is_pod() {
        let _ = ctx
            .pod_sync
            .run(move |pool| {
                Box::pin(async move {
                    let at = stilt_k8s::ContainerRef::new(&c.namespace, &c.pod, &c.name);
                    pool.get(&at).await.map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .await
            .map_err(|e| tracing::debug!("opening the pod channel ahead of an edit: {e}"));
        return;
    }
    let Ok(docker) = ctx.docker.docker().await else {
        return;
    };
    if let Some((client, _)) = ctx.docker_channels.take(docker.as_ref(), &c.id).await {
        ctx.docker_channels.give_back(&c.id, client);
    }
}

/// Syncs into one container the way it can be reached.
async fn sync_into(
    ctx: &Ctx,
    lu: &LiveUpdate,
    resource: &str,
    c: &Container,
    files: Vec<PathBuf>,
    pairs: Vec<(PathBuf, String)>,
    newest: MicroTime,
) -> Result<(String, LiveUpdateTimings), String> {
    if c.is_pod() {
        let (job_ctx, job_lu, job_resource, c) =
            (ctx.clone(), lu.clone(), resource.to_string(), c.clone());
        return ctx
            .pod_sync
            .run(move |pool| {
                Box::pin(async move {
                    let at = stilt_k8s::ContainerRef::new(&c.namespace, &c.pod, &c.name);
                    let syncer = pool
                        .get(&at)
                        .await
                        .map_err(|e| format!("connecting to {}/{}: {e}", c.pod, c.name))?;
                    let mut syncer = syncer.lock().await;
                    let mut target = target::PodChannel {
                        syncer: &mut syncer,
                        pod: c.pod.clone(),
                        container: c.name.clone(),
                        mode: None,
                    };
                    target::update_container(
                        &job_ctx,
                        &job_lu,
                        &job_resource,
                        &mut target,
                        &files,
                        &pairs,
                        newest,
                    )
                    .await
                })
            })
            .await;
    }
    let docker = ctx.docker.docker().await?;
    let mut may_reopen = true;
    loop {
        let Some((client, kept)) = ctx.docker_channels.take(docker.as_ref(), &c.id).await else {
            let mut target = target::DockerArchive {
                docker,
                container: c.id.clone(),
            };
            return target::update_container(
                ctx,
                lu,
                resource,
                &mut target,
                &files,
                &pairs,
                newest,
            )
            .await;
        };
        let mut target = target::DockerChannel {
            docker: docker.clone(),
            channels: ctx.docker_channels.clone(),
            container: c.id.clone(),
            client: Some(client),
        };
        let result =
            target::update_container(ctx, lu, resource, &mut target, &files, &pairs, newest).await;
        // A channel kept open from an earlier update dies with its container's process (the
        // container or the engine restarted): open a new one once rather than fail the update.
        let stale = result.is_err() && kept && target.is_broken();
        drop(target);
        if stale && may_reopen {
            may_reopen = false;
            continue;
        }
        return result;
    }
}

/// The image reference whose running containers a `selector.docker` LiveUpdate updates: the
/// selector itself when it has a tag, else the current build of the matching source ImageMap.
fn docker_selector_ref(ctx: &Ctx, lu: &LiveUpdate, image: &str) -> Option<String> {
    let tagged = image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    if tagged {
        return Some(image.to_string());
    }
    lu.spec
        .sources
        .iter()
        .filter(|s| !s.image_map.is_empty())
        .filter_map(|s| ctx.store.get_typed::<ImageMap>(&s.image_map).ok())
        .filter(|m| crate::imagedeps::selects(image, false, &m.spec.selector))
        .filter_map(|m| m.status)
        .map(|s| {
            if s.image_from_local.is_empty() {
                s.image
            } else {
                s.image_from_local
            }
        })
        .find(|r| !r.is_empty())
}

/// The running containers of a Kubernetes-selected LiveUpdate, from its KubernetesDiscovery.
fn pod_containers(ctx: &Ctx, sel: &LiveUpdateKubernetesSelector) -> Vec<Container> {
    let Ok(kd) = ctx
        .store
        .get_typed::<KubernetesDiscovery>(&sel.discovery_name)
    else {
        return vec![];
    };
    let image_map = if sel.image_map_name.is_empty() {
        None
    } else {
        ctx.store.get_typed::<ImageMap>(&sel.image_map_name).ok()
    };
    let built = image_map
        .and_then(|m| m.status)
        .map(|s| s.image)
        .unwrap_or_default();
    let repo = |r: &str| {
        r.rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or(r.to_string(), |(n, _)| n.to_string())
    };
    let mut out = Vec::new();
    for pod in kd.status.map(|s| s.pods).unwrap_or_default() {
        if pod.deleting || pod.phase != "Running" {
            continue;
        }
        for c in &pod.containers {
            let wanted = if !sel.container_name.is_empty() {
                c.name == sel.container_name
            } else if !built.is_empty() {
                // Only pods running the current build are updated (older ones are going away).
                c.image == built
            } else {
                !sel.image.is_empty() && repo(&c.image).ends_with(&repo(&sel.image))
            };
            if wanted && c.state.running.is_some() {
                out.push(Container {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    status_id: c.id.clone(),
                    pod: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                });
            }
        }
    }
    out
}

/// Persistent channels into Docker containers (the stilt-syncer helper over one attached exec),
/// by container ID. A channel is taken out while in use, so no lock is held across an await.
#[derive(Default, Clone)]
pub struct DockerChannels {
    open: Arc<Mutex<HashMap<String, stilt_syncer::Client>>>,
    /// Containers where the helper could not be installed: they use archive upload + exec.
    unusable: Arc<Mutex<BTreeSet<String>>>,
}

const DOCKER_HELPER_PATH: &str = "/tmp/.stilt-syncer/stilt-syncer";

impl DockerChannels {
    /// The channel into `container`, and whether it was kept open from before (it may have died
    /// since) rather than opened now.
    pub async fn take(
        &self,
        docker: &dyn stilt_docker::DockerClient,
        container: &str,
    ) -> Option<(stilt_syncer::Client, bool)> {
        if let Some(c) = self.open.lock().remove(container) {
            return Some((c, true));
        }
        if self.unusable.lock().contains(container) {
            return None;
        }
        let helper = stilt_k8s::ChannelOptions::discover().helper_binary?;
        let connected = async {
            let tar =
                stilt_docker::tar_from_bytes(&[(DOCKER_HELPER_PATH, 0o755, helper.as_slice())])
                    .ok()?;
            docker.upload_archive(container, "/", tar).await.ok()?;
            let att = docker
                .exec_attach(container, &ExecRequest::new([DOCKER_HELPER_PATH]))
                .await
                .ok()?;
            let mut client = stilt_syncer::Client::new(att.stdout, att.stdin);
            tokio::time::timeout(std::time::Duration::from_secs(5), client.hello())
                .await
                .ok()?
                .ok()?;
            Some(client)
        }
        .await;
        if connected.is_none() {
            self.unusable.lock().insert(container.to_string());
        }
        connected.map(|c| (c, false))
    }

    pub fn give_back(&self, container: &str, client: stilt_syncer::Client) {
        if !client.is_broken() {
            self.open.lock().insert(container.to_string(), client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_directory_stands_for_its_files() {
        let d = std::env::temp_dir().join(format!("stilt-lu-expand-{}", std::process::id()));
        std::fs::create_dir_all(d.join("www/sub")).unwrap();
        std::fs::write(d.join("www/a.html"), "a").unwrap();
        std::fs::write(d.join("www/sub/b.css"), "b").unwrap();
        let changed: BTreeSet<PathBuf> = [d.join("www"), d.join("gone.txt")].into();
        assert_eq!(
            expand_dirs(changed),
            vec![
                d.join("gone.txt"),
                d.join("www/a.html"),
                d.join("www/sub/b.css")
            ]
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn sync_targets_and_stop_paths() {
        let spec = LiveUpdateSpec {
            base_path: "/src".into(),
            syncs: vec![LiveUpdateSync {
                local_path: "app".into(),
                container_path: "/srv/app".into(),
            }],
            stop_paths: vec!["app/package.json".into()],
            ..Default::default()
        };
        assert_eq!(
            syncable(&spec, Path::new("/src/app/main.py")).as_deref(),
            Some("/srv/app/main.py")
        );
        assert_eq!(syncable(&spec, Path::new("/src/app/package.json")), None);
        assert_eq!(syncable(&spec, Path::new("/src/Dockerfile")), None);
    }
}

#[cfg(test)]
mod reconciler_tests;
