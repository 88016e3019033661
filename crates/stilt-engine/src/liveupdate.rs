//! The LiveUpdate reconciler for Docker containers (compose services): syncs changed files with
//! one archive upload (no new process per change), deletes removed ones, runs the exec steps
//! whose trigger paths match, restarts the container when asked, and records stage timings.
//!
//! Changes it cannot sync (outside every sync, or matching a stop path / `fall_back_on`) are left
//! to the build controller, which rebuilds the image; a replaced container gets every change since
//! its image was built replayed.

use crate::Ctx;
use crate::controller::{self, Mapper, Queue, Reconciler};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use stilt_api::*;
use stilt_docker::ExecRequest;
use stilt_logs::Level;
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
}

struct LiveUpdateReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<HashMap<String, LuState>>>,
}

fn lus_where(pred: impl Fn(&LiveUpdate, &str) -> bool + Send + Sync + 'static) -> Mapper {
    Arc::new(move |ctx: &Ctx, obj: &Value| {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let service = obj["spec"]["service"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ctx.store
            .list_typed::<LiveUpdate>()
            .unwrap_or_default()
            .into_iter()
            .filter(|lu| {
                pred(lu, &name) || (!service.is_empty() && pred(lu, &format!("service:{service}")))
            })
            .map(|lu| lu.metadata.name)
            .collect()
    })
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(LiveUpdateReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: Default::default(),
    });
    let by_source = lus_where(|lu, name| {
        lu.spec
            .sources
            .iter()
            .any(|s| s.file_watch == name || s.image_map == name)
    });
    let by_service = lus_where(|lu, key| {
        lu.spec
            .selector
            .docker_compose
            .as_ref()
            .is_some_and(|d| key == format!("service:{}", d.service))
    });
    let by_discovery = lus_where(|lu, name| {
        lu.spec
            .selector
            .kubernetes
            .as_ref()
            .is_some_and(|k| k.discovery_name == name)
    });
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

fn write_lu_status(ctx: &Ctx, name: &str, f: impl Fn(&mut LiveUpdateStatus)) {
    let _ = ctx.store.update_status_with::<LiveUpdate>(name, |o| {
        f(o.status.get_or_insert_with(Default::default))
    });
}

impl Reconciler for LiveUpdateReconciler {
    fn reconcile(&self, name: &str) {
        let Ok(lu) = self.ctx.store.get_typed::<LiveUpdate>(name) else {
            self.state.lock().remove(name);
            return;
        };
        if lu.spec.selector.kubernetes.is_some() {
            self.reconcile_kubernetes(name, lu);
            return;
        }
        if let Some(sel) = lu.spec.selector.docker.clone() {
            self.reconcile_docker_image(name, lu, sel);
            return;
        }
        let Some(service) = lu
            .spec
            .selector
            .docker_compose
            .as_ref()
            .map(|d| d.service.clone())
        else {
            return;
        };
        let resource = lu
            .metadata
            .annotations
            .get(ANNOTATION_RESOURCE)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let Some(built) = build_start(&self.ctx, &lu) else {
            return;
        };
        let Some((container, container_name)) = compose_container(&self.ctx, &service) else {
            write_lu_status(&self.ctx, name, |s| {
                s.containers.retain(|c| c.waiting.is_some());
                if s.containers.is_empty() {
                    s.containers.push(LiveUpdateContainerStatus {
                        container_name: service.clone(),
                        waiting: Some(LiveUpdateContainerStateWaiting {
                            reason: "ContainerNotRunning".into(),
                            message: format!(
                                "waiting for a running container of service {service}"
                            ),
                        }),
                        ..Default::default()
                    });
                }
            });
            return;
        };
        let since = {
            let mut st = self.state.lock();
            let entry = st.entry(name.to_string()).or_default();
            if entry.busy {
                return;
            }
            // A container we have not synced into yet gets every change since its image's build.

            entry
                .synced
                .get(&container)
                .copied()
                .map_or(built, |t| t.max(built))
        };
        let (files, newest) = changes_since(&self.ctx, &lu, Some(since));
        let Some(newest) = newest else {
            write_lu_status(&self.ctx, name, |s| {
                if s.containers
                    .iter()
                    .all(|c| c.container_id != format!("docker://{container}"))
                {
                    s.containers = vec![LiveUpdateContainerStatus {
                        container_name: container_name.clone(),
                        container_id: format!("docker://{container}"),
                        ..Default::default()
                    }];
                }
            });
            self.state
                .lock()
                .entry(name.to_string())
                .or_default()
                .synced
                .entry(container.clone())
                .or_insert(built);
            return;
        };
        let pairs: Vec<(PathBuf, String)> = files
            .iter()
            .filter_map(|f| syncable(&lu.spec, f).map(|dest| (f.clone(), dest)))
            .collect();
        if pairs.len() < files.len() {
            // Some change needs a rebuild; the build controller does it.
            return;
        }
        self.state.lock().entry(name.to_string()).or_default().busy = true;
        let (ctx, state, queue, name) = (
            self.ctx.clone(),
            self.state.clone(),
            self.queue.clone(),
            name.to_string(),
        );
        let channels = self.ctx.docker_channels.clone();
        tokio::spawn(async move {
            let result = sync(
                &ctx, &channels, &lu, &resource, &container, &files, &pairs, newest,
            )
            .await;
            {
                let mut st = state.lock();
                let entry = st.entry(name.clone()).or_default();
                entry.busy = false;
                if result.is_ok() {
                    entry.synced.insert(container.clone(), newest);
                }
            }
            match result {
                Ok((exec_error, timings)) => write_lu_status(&ctx, &name, |s| {
                    s.failed = None;
                    s.containers = vec![LiveUpdateContainerStatus {
                        container_name: container_name.clone(),
                        container_id: format!("docker://{container}"),
                        last_file_time_synced: Some(newest),
                        last_exec_error: exec_error.clone(),
                        last_update_timings: Some(timings.clone()),
                        ..Default::default()
                    }];
                }),
                Err(e) => write_lu_status(&ctx, &name, |s| {
                    s.failed = Some(LiveUpdateStateFailed {
                        reason: "UpdateFailed".into(),
                        message: e.clone(),
                        last_transition_time: Some(MicroTime::now()),
                    })
                }),
            }
            queue.add(&name);
        });
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

impl LiveUpdateReconciler {
    /// `selector.docker`: every running container of the built image, found through the Docker
    /// API (no store object announces them, so the list is polled every second).
    fn reconcile_docker_image(&self, name: &str, lu: LiveUpdate, sel: LiveUpdateDockerSelector) {
        let resource = lu
            .metadata
            .annotations
            .get(ANNOTATION_RESOURCE)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let built = build_start(&self.ctx, &lu);
        let Some(image) = docker_selector_ref(&self.ctx, &lu, &sel.image) else {
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
            let outcome =
                update_image_containers(&ctx, &state, &lu, &resource, &image, built).await;
            state.lock().entry(name.clone()).or_default().busy = false;
            write_lu_status(&ctx, &name, |s| match &outcome {
                Ok(statuses) => {
                    s.failed = None;
                    s.containers = statuses.clone();
                }
                Err(e) => {
                    s.failed = Some(LiveUpdateStateFailed {
                        reason: "UpdateFailed".into(),
                        message: e.clone(),
                        last_transition_time: Some(MicroTime::now()),
                    })
                }
            });
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            queue.add(&name);
        });
    }
}

/// Syncs pending changes into each running container of `image`; returns their statuses.
async fn update_image_containers(
    ctx: &Ctx,
    state: &Arc<Mutex<HashMap<String, LuState>>>,
    lu: &LiveUpdate,
    resource: &str,
    image: &str,
    built: Option<MicroTime>,
) -> Result<Vec<LiveUpdateContainerStatus>, String> {
    let docker = ctx.docker.docker().await?;
    let filter = stilt_docker::types::ContainerFilter {
        image: Some(image.to_string()),
        ..Default::default()
    };
    let containers = docker
        .list_containers(&filter)
        .await
        .map_err(|e| format!("listing containers of {image}: {e}"))?;
    let name = &lu.metadata.name;
    let mut statuses = Vec::new();
    for c in containers.into_iter().filter(|c| c.state == "running") {
        let container_name = c.names.first().cloned().unwrap_or_else(|| c.id.clone());
        let synced = state
            .lock()
            .get(name)
            .and_then(|e| e.synced.get(&c.id).copied());
        let since = match (synced, built) {
            (Some(t), Some(b)) => Some(t.max(b)),
            (t, b) => t.or(b),
        };
        let mut status = LiveUpdateContainerStatus {
            container_name: container_name.clone(),
            container_id: format!("docker://{}", c.id),
            last_file_time_synced: synced,
            ..Default::default()
        };
        let (files, newest) = changes_since(ctx, lu, since);
        let pairs: Vec<(PathBuf, String)> = files
            .iter()
            .filter_map(|f| syncable(&lu.spec, f).map(|dest| (f.clone(), dest)))
            .collect();
        match newest {
            Some(newest) if pairs.len() == files.len() => {
                let (exec_error, timings) = sync(
                    ctx,
                    &ctx.docker_channels,
                    lu,
                    resource,
                    &c.id,
                    &files,
                    &pairs,
                    newest,
                )
                .await?;
                state
                    .lock()
                    .entry(name.clone())
                    .or_default()
                    .synced
                    .insert(c.id.clone(), newest);
                status.last_file_time_synced = Some(newest);
                status.last_exec_error = exec_error;
                status.last_update_timings = Some(timings);
            }
            Some(_) => {
                status.waiting = Some(LiveUpdateContainerStateWaiting {
                    reason: "NeedsRebuild".into(),
                    message: "a change outside every sync needs an image rebuild".into(),
                })
            }
            None => {
                if let Some(since) = since {
                    state
                        .lock()
                        .entry(name.clone())
                        .or_default()
                        .synced
                        .entry(c.id.clone())
                        .or_insert(since);
                }
            }
        }
        statuses.push(status);
    }
    Ok(statuses)
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
    pub async fn take(
        &self,
        docker: &dyn stilt_docker::DockerClient,
        container: &str,
    ) -> Option<stilt_syncer::Client> {
        if let Some(c) = self.open.lock().remove(container) {
            return Some(c);
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
        connected
    }

    pub fn give_back(&self, container: &str, client: stilt_syncer::Client) {
        if !client.is_broken() {
            self.open.lock().insert(container.to_string(), client);
        }
    }
}

/// Syncs over the persistent channel: one round trip for all writes and deletes, then the run
/// steps on the same channel. Returns the exec error (empty on success) and the bytes sent.
async fn sync_over_channel(
    client: &mut stilt_syncer::Client,
    ctx: &Ctx,
    lu: &LiveUpdate,
    resource: &str,
    span: &str,
    files: &[PathBuf],
    pairs: &[(PathBuf, String)],
) -> Result<(String, i64), String> {
    let (deletes, writes, bytes) = read_changes(pairs);
    client
        .update(deletes, writes)
        .await
        .map_err(|e| format!("syncing over the channel: {e}"))?;
    let base = Path::new(&lu.spec.base_path);
    for exec in lu.spec.execs.iter().filter(|e| triggered(e, base, files)) {
        if !exec.echo_off {
            ctx.logs.line(
                resource,
                span,
                Level::Info,
                &format!("Running: {:?}", exec.args),
            );
        }
        let out = client
            .run(stilt_syncer::RunSpec {
                argv: exec.args.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("running {:?}: {e}", exec.args))?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            ctx.logs.line(resource, span, Level::Info, line);
        }
        if out.exit_code != 0 {
            let err = format!(
                "command {:?} failed with exit code {}",
                exec.args, out.exit_code
            );
            return Ok((err, bytes));
        }
    }
    Ok((String::new(), bytes))
}

/// The container-side writes (with local modes) and deletions for changed local files, and the
/// bytes to send.
fn read_changes(pairs: &[(PathBuf, String)]) -> (Vec<String>, Vec<stilt_syncer::WriteEntry>, i64) {
    use std::os::unix::fs::PermissionsExt;
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    let mut bytes = 0i64;
    for (local, dest) in pairs {
        match std::fs::read(local) {
            Ok(data) => {
                let mode = std::fs::metadata(local)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(0o644);
                bytes += data.len() as i64;
                writes.push(stilt_syncer::WriteEntry::file(dest.clone(), mode, data));
            }
            Err(_) => deletes.push(dest.clone()),
        }
    }
    (deletes, writes, bytes)
}

fn ms_since(t0: MicroTime) -> f64 {
    (chrono::Utc::now() - t0.0).num_microseconds().unwrap_or(0) as f64 / 1e3
}

/// Copies the files into the container and runs the steps. Returns the exec error (if a step
/// failed: the files stay) and the stage timings, measured from the file event.
#[allow(clippy::too_many_arguments)]
async fn sync(
    ctx: &Ctx,
    channels: &DockerChannels,
    lu: &LiveUpdate,
    resource: &str,
    container: &str,
    files: &[PathBuf],
    pairs: &[(PathBuf, String)],
    event: MicroTime,
) -> Result<(String, LiveUpdateTimings), String> {
    let docker = ctx.docker.docker().await?;
    let span = format!("liveupdate:{}", lu.metadata.name);
    let clock = Instant::now();
    let batch_closed_ms = ms_since(event);
    if let Some(mut client) = channels.take(docker.as_ref(), container).await {
        let result = sync_over_channel(&mut client, ctx, lu, resource, &span, files, pairs).await;
        let transfer_done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
        channels.give_back(container, client);
        let (exec_error, bytes) = result?;
        if !exec_error.is_empty() {
            log_failed_update(ctx, resource, &span, &short_id(container), &exec_error);
        }
        if exec_error.is_empty() && lu.spec.restart == LIVE_UPDATE_RESTART_ALWAYS {
            docker
                .restart_container(container, 10)
                .await
                .map_err(|e| format!("restarting {container}: {e}"))?;
        }
        let done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
        ctx.logs.line(resource, &span, Level::Info, &format!("Live update: {} file(s) into {} over the persistent channel — event→batch {batch_closed_ms:.1} ms, synced {transfer_done_ms:.1} ms, steps {done_ms:.1} ms", files.len(), short_id(container)));
        let timings = LiveUpdateTimings {
            event_seen: Some(event),
            batch_closed_ms,
            archive_built_ms: batch_closed_ms,
            transfer_done_ms,
            run_steps_done_ms: done_ms,
            files: files.len() as i32,
            bytes,
        };
        return Ok((exec_error, timings));
    }
    let archive =
        stilt_docker::sync_archive(pairs).map_err(|e| format!("building the archive: {e}"))?;
    let archive_built_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let bytes = archive.tar.len() as i64;
    stilt_docker::apply_sync(docker.as_ref(), container, &archive)
        .await
        .map_err(|e| format!("syncing into {container}: {e}"))?;
    let transfer_done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let base = Path::new(&lu.spec.base_path);
    let mut exec_error = String::new();
    for exec in lu.spec.execs.iter().filter(|e| triggered(e, base, files)) {
        if !exec.echo_off {
            ctx.logs.line(
                resource,
                &span,
                Level::Info,
                &format!("Running: {:?}", exec.args),
            );
        }
        match docker
            .exec(container, &ExecRequest::new(exec.args.clone()), None)
            .await
        {
            Ok(out) => {
                for line in out.stdout_str().lines().chain(out.stderr_str().lines()) {
                    ctx.logs.line(resource, &span, Level::Info, line);
                }
                if !out.success() {
                    exec_error = format!(
                        "command {:?} failed with exit code {}",
                        exec.args, out.exit_code
                    );
                    log_failed_update(ctx, resource, &span, &short_id(container), &exec_error);
                    break;
                }
            }
            Err(e) => {
                exec_error = format!("running {:?}: {e}", exec.args);
                log_failed_update(ctx, resource, &span, &short_id(container), &exec_error);
                break;
            }
        }
    }
    if exec_error.is_empty() && lu.spec.restart == LIVE_UPDATE_RESTART_ALWAYS {
        docker
            .restart_container(container, 10)
            .await
            .map_err(|e| format!("restarting {container}: {e}"))?;
    }
    let run_steps_done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let timings = LiveUpdateTimings {
        event_seen: Some(event),
        batch_closed_ms,
        archive_built_ms,
        transfer_done_ms,
        run_steps_done_ms,
        files: files.len() as i32,
        bytes,
    };
    let shown: Vec<String> = pairs
        .iter()
        .take(3)
        .map(|(l, c)| format!("{} → {c}", l.strip_prefix(base).unwrap_or(l).display()))
        .collect();
    ctx.logs.line(
        resource,
        &span,
        Level::Info,
        &format!(
            "Live update: {} file(s) [{}{}] into {} — event→batch {batch_closed_ms:.1} ms, archive {archive_built_ms:.1} ms, transfer {transfer_done_ms:.1} ms, steps {run_steps_done_ms:.1} ms",
            files.len(),
            shown.join(", "),
            if pairs.len() > 3 { ", …" } else { "" },
            short_id(container)
        ),
    );
    Ok((exec_error, timings))
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

/// A pod container a Kubernetes-selected LiveUpdate targets.
#[derive(Clone)]
struct PodTarget {
    pod: String,
    namespace: String,
    container: String,
    container_id: String,
}

fn pod_targets(ctx: &Ctx, sel: &LiveUpdateKubernetesSelector) -> Vec<PodTarget> {
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
                out.push(PodTarget {
                    pod: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                    container: c.name.clone(),
                    container_id: c.id.clone(),
                });
            }
        }
    }
    out
}

impl LiveUpdateReconciler {
    fn reconcile_kubernetes(&self, name: &str, lu: LiveUpdate) {
        let sel = lu
            .spec
            .selector
            .kubernetes
            .clone()
            .expect("checked by the caller");
        let resource = lu
            .metadata
            .annotations
            .get(ANNOTATION_RESOURCE)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let Some(built) = build_start(&self.ctx, &lu) else {
            return;
        };
        let targets = pod_targets(&self.ctx, &sel);
        if targets.is_empty() {
            return;
        }
        let mut work = Vec::new();
        {
            let mut st = self.state.lock();
            let entry = st.entry(name.to_string()).or_default();
            if entry.busy {
                return;
            }
            for t in targets {
                // A pod we have not synced into (e.g. replaced by the cluster) gets every change
                // since the image was built: replay, no rebuild.
                let since = entry
                    .synced
                    .get(&t.container_id)
                    .copied()
                    .map_or(built, |s| s.max(built));
                work.push((t, since));
            }
        }
        let mut jobs = Vec::new();
        for (t, since) in work {
            let (files, newest) = changes_since(&self.ctx, &lu, Some(since));
            let Some(newest) = newest else { continue };
            let pairs: Vec<(PathBuf, String)> = files
                .iter()
                .filter_map(|f| syncable(&lu.spec, f).map(|d| (f.clone(), d)))
                .collect();
            if pairs.len() < files.len() {
                continue;
            }
            jobs.push((t, files, pairs, newest));
        }
        if jobs.is_empty() {
            return;
        }
        self.state.lock().entry(name.to_string()).or_default().busy = true;
        let (ctx, state, queue, name) = (
            self.ctx.clone(),
            self.state.clone(),
            self.queue.clone(),
            name.to_string(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut failure = None;
            for (t, files, pairs, newest) in jobs {
                let (job_ctx, job_lu, job_resource, job_target) =
                    (ctx.clone(), lu.clone(), resource.clone(), t.clone());
                let result = ctx
                    .pod_sync
                    .run(move |pool| {
                        Box::pin(async move {
                            sync_pod(
                                &job_ctx,
                                &pool,
                                &job_lu,
                                &job_resource,
                                &job_target,
                                &files,
                                &pairs,
                                newest,
                            )
                            .await
                        })
                    })
                    .await;
                match result {
                    Ok((exec_error, timings)) => {
                        state
                            .lock()
                            .entry(name.clone())
                            .or_default()
                            .synced
                            .insert(t.container_id.clone(), newest);
                        statuses.push(LiveUpdateContainerStatus {
                            container_name: t.container.clone(),
                            container_id: t.container_id.clone(),
                            pod_name: t.pod.clone(),
                            namespace: t.namespace.clone(),
                            last_file_time_synced: Some(newest),
                            last_exec_error: exec_error,
                            last_update_timings: Some(timings),
                            ..Default::default()
                        });
                    }
                    Err(e) => failure = Some(e),
                }
            }
            state.lock().entry(name.clone()).or_default().busy = false;
            write_lu_status(&ctx, &name, |s| {
                if !statuses.is_empty() {
                    s.containers = statuses.clone();
                }
                s.failed = failure.clone().map(|m| LiveUpdateStateFailed {
                    reason: "UpdateFailed".into(),
                    message: m,
                    last_transition_time: Some(MicroTime::now()),
                });
            });
            queue.add(&name);
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn sync_pod(
    ctx: &Ctx,
    pool: &stilt_k8s::SyncerPool,
    lu: &LiveUpdate,
    resource: &str,
    t: &PodTarget,
    files: &[PathBuf],
    pairs: &[(PathBuf, String)],
    event: MicroTime,
) -> Result<(String, LiveUpdateTimings), String> {
    let span = format!("liveupdate:{}", lu.metadata.name);
    let clock = Instant::now();
    let batch_closed_ms = ms_since(event);
    let (deletes, writes, bytes) = read_changes(pairs);
    let archive_built_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let target = stilt_k8s::ContainerRef::new(&t.namespace, &t.pod, &t.container);
    let syncer = pool
        .get(&target)
        .await
        .map_err(|e| format!("connecting to {}/{}: {e}", t.pod, t.container))?;
    let mut syncer = syncer.lock().await;
    let report = syncer
        .update(&deletes, writes)
        .await
        .map_err(|e| format!("syncing into {}/{}: {e}", t.pod, t.container))?;
    let transfer_done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let base = Path::new(&lu.spec.base_path);
    let mut exec_error = String::new();
    for exec in lu.spec.execs.iter().filter(|e| triggered(e, base, files)) {
        if !exec.echo_off {
            ctx.logs.line(
                resource,
                &span,
                Level::Info,
                &format!("Running: {:?}", exec.args),
            );
        }
        let (logs, res, sp) = (ctx.logs.clone(), resource.to_string(), span.clone());
        let code = syncer
            .run(&exec.args, move |_, out: &[u8]| {
                logs.append(&res, &sp, Level::Info, &String::from_utf8_lossy(out))
            })
            .await
            .map_err(|e| format!("running {:?}: {e}", exec.args));
        ctx.logs.flush(resource, &span);
        exec_error = match code {
            Ok(0) => continue,
            Ok(c) => format!("command {:?} failed with exit code {c}", exec.args),
            Err(e) => e,
        };
        log_failed_update(
            ctx,
            resource,
            &span,
            &format!("{}/{}", t.pod, t.container),
            &exec_error,
        );
        break;
    }
    let run_steps_done_ms = batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    ctx.logs.line(
        resource,
        &span,
        Level::Info,
        &format!(
            "Live update: {} file(s) into pod {}/{} via {:?} — event→batch {batch_closed_ms:.1} ms, transfer {transfer_done_ms:.1} ms, steps {run_steps_done_ms:.1} ms",
            files.len(),
            t.pod,
            t.container,
            report.mode
        ),
    );
    Ok((
        exec_error,
        LiveUpdateTimings {
            event_seen: Some(event),
            batch_closed_ms,
            archive_built_ms,
            transfer_done_ms,
            run_steps_done_ms,
            files: files.len() as i32,
            bytes,
        },
    ))
}

/// A run step that failed, in Tilt's words (the files were synced; the next change tries again).
fn log_failed_update(ctx: &Ctx, resource: &str, span: &str, container: &str, error: &str) {
    ctx.logs.line(
        resource,
        span,
        Level::Error,
        &format!("  → Failed to update container {container}: {error}"),
    );
}

fn short_id(container: &str) -> String {
    container[..container.len().min(12)].to_string()
}
