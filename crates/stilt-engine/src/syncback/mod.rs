//! Syncback: copies files a running container produced back to the local tree, natively (no
//! rsync on either side) over the channel live update already keeps open.
//!
//! A run is a resource update (manual trigger, `stilt trigger`): the build controller calls
//! [`run`]. With `intervalSeconds` set, the reconciler here also runs it on a timer, quietly
//! unless something changed. Files it writes are remembered in the echo guard, so the file
//! watch does not live-update them straight back.

pub mod archive;
pub mod local;
pub mod plan;
pub mod source;
pub mod transfer;

use crate::Ctx;
use crate::controller::{self, Queue, Reconciler};
use crate::names::disable_configmap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::TypedStore;

/// Changes listed one per line in the log; the summary line counts them all.
const MAX_LOGGED_CHANGES: usize = 50;

/// One run at a time per Syncback (a trigger and the timer may meet).
fn run_lock(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::LazyLock::new(Default::default);
    LOCKS.lock().entry(name.to_string()).or_default().clone()
}

fn syncback_of(ctx: &Ctx, resource: &str) -> Option<Syncback> {
    ctx.store
        .list_typed::<Syncback>()
        .ok()?
        .into_iter()
        .find(|s| s.metadata.resource() == Some(resource))
}

/// Runs the resource's syncback once, logging the report and writing it to status.
pub async fn run(ctx: &Ctx, resource: &str, span: &str) -> Result<(), String> {
    let sb = syncback_of(ctx, resource)
        .ok_or_else(|| format!("no Syncback object for resource {resource}"))?;
    let report = run_once(ctx, &sb, resource, span, true).await;
    if report.error.is_empty() {
        Ok(())
    } else {
        Err(report.error)
    }
}

async fn run_once(
    ctx: &Ctx,
    sb: &Syncback,
    resource: &str,
    span: &str,
    manual: bool,
) -> SyncbackRun {
    let lock = run_lock(&sb.metadata.name);
    let _running = lock.lock().await;
    let started = MicroTime::now();
    let log = |level: Level, msg: &str| ctx.logs.line(resource, span, level, msg);
    let mut report = match read_source(ctx, sb, resource, span, manual).await {
        Ok(r) => r,
        Err(e) => SyncbackRun {
            dry_run: sb.spec.dry_run,
            error: e,
            ..Default::default()
        },
    };
    report.start_time = Some(started);
    report.finish_time = Some(MicroTime::now());
    let changed = report.files_copied + report.files_deleted + report.files_renamed > 0
        || !report.changes.is_empty();
    if report.error.is_empty() {
        if manual || changed {
            log(Level::Info, &summary(&report));
        }
    } else {
        // On the timer, a failure is logged when it starts, not every interval.
        let previous = sb.status.as_ref().and_then(|s| s.last_run.as_ref());
        if manual || previous.is_none_or(|p| p.error != report.error) {
            log(Level::Error, &format!("Syncback failed: {}", report.error));
        }
    }
    let written = report.clone();
    crate::storewrite::logged(
        ctx.store
            .update_status_with::<Syncback>(&sb.metadata.name, |o| {
                o.status.get_or_insert_with(Default::default).last_run = Some(written.clone());
            }),
        || format!("writing the status of Syncback {}", sb.metadata.name),
    );
    report
}

fn summary(r: &SyncbackRun) -> String {
    let dry = if r.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    let verb = if r.dry_run { "would copy" } else { "copied" };
    format!(
        "Syncback{dry}: {verb} {} file(s), deleted {}, renamed {}, {} unchanged; {} bytes transferred in {:.0} ms",
        r.files_copied,
        r.files_deleted,
        r.files_renamed,
        r.files_unchanged,
        r.bytes_transferred,
        r.duration_ms
    )
}

/// Picks the container and runs the transfer on the right thread for its channel.
async fn read_source(
    ctx: &Ctx,
    sb: &Syncback,
    resource: &str,
    span: &str,
    announce: bool,
) -> Result<SyncbackRun, String> {
    let spec = sb.spec.clone();
    let verbose = announce;
    let (logs, res, sp) = (ctx.logs.clone(), resource.to_string(), span.to_string());
    let mut shown = 0;
    let on_change = move |c: &str| {
        shown += 1;
        if verbose && shown <= MAX_LOGGED_CHANGES {
            logs.line(&res, &sp, Level::Info, &format!("  {c}"));
        } else if verbose && shown == MAX_LOGGED_CHANGES + 1 {
            logs.line(&res, &sp, Level::Info, "  … (the summary counts the rest)");
        }
    };
    let say_source = |what: String| {
        if announce {
            let msg = format!(
                "Syncing back {} from {what} into {}",
                spec.src_dir, spec.target_dir
            );
            ctx.logs.line(resource, span, Level::Info, &msg);
        }
    };
    if let Some(k) = &spec.source.kubernetes {
        let cluster = ctx.k8s.cluster().await?;
        let target = source::pick_pod(cluster.clone(), k).await?;
        say_source(format!(
            "pod {}/{} container {}",
            target.namespace, target.pod, target.container
        ));
        let echo = ctx.echo.clone();
        let (pod, container) = (
            format!("{}/{}", target.namespace, target.pod),
            target.container.clone(),
        );
        let warn = {
            let (logs, res, sp) = (ctx.logs.clone(), resource.to_string(), span.to_string());
            move |m: &str| logs.line(&res, &sp, Level::Warn, m)
        };
        let mut report = ctx
            .pod_sync
            .run(move |pool| {
                Box::pin(async move {
                    let syncer = pool
                        .get(&target)
                        .await
                        .map_err(|e| format!("connecting to {target}: {e}"))?;
                    let mut syncer = syncer.lock().await;
                    if let stilt_k8s::SyncMode::ExecTar { reason } = syncer.mode().clone() {
                        drop(syncer);
                        warn(&format!(
                            "Stilt's helper cannot run in {target} ({reason}): reading all of {} with tar",
                            spec.src_dir
                        ));
                        return tar_fallback(&cluster, &target, &spec, &echo, on_change).await;
                    }
                    Ok(transfer::run(&mut *syncer, &spec, &echo, on_change).await)
                })
            })
            .await?;
        report.pod = pod;
        report.container = container;
        return Ok(report);
    }
    let service = spec
        .source
        .docker_compose
        .as_ref()
        .map(|d| d.service.clone())
        .ok_or("spec.source: no kubernetes or dockerCompose source")?;
    let (id, name) = crate::liveupdate::compose_container(ctx, &service)
        .ok_or_else(|| format!("no running container of compose service {service}"))?;
    say_source(format!("container {name} (service {service})"));
    let docker = ctx.docker.docker().await?;
    let mut report = match ctx.docker_channels.take(docker.as_ref(), &id).await {
        Some((mut client, _)) => {
            let report = transfer::run(&mut client, &spec, &ctx.echo, on_change).await;
            ctx.docker_channels.give_back(&id, client);
            report
        }
        None => {
            ctx.logs.line(
                resource,
                span,
                Level::Warn,
                &format!(
                    "Stilt's helper cannot run in container {name}: downloading all of {} to compare",
                    spec.src_dir
                ),
            );
            let mut remote =
                archive::ArchiveRemote::download(docker.as_ref(), &id, &spec.src_dir).await?;
            let mut report = transfer::run(&mut remote, &spec, &ctx.echo, on_change).await;
            // The whole directory crossed, not just the changed files.
            report.bytes_transferred = remote.downloaded as i64;
            report
        }
    };
    report.pod = id.chars().take(12).collect();
    report.container = name;
    Ok(report)
}

/// Syncback from a pod container without the helper: one `tar` of srcDir over exec.
async fn tar_fallback(
    cluster: &Arc<dyn stilt_k8s::Cluster>,
    target: &stilt_k8s::ContainerRef,
    spec: &SyncbackSpec,
    echo: &crate::echo::EchoGuard,
    on_change: impl FnMut(&str),
) -> Result<SyncbackRun, String> {
    let argv = stilt_k8s::argv(["tar", "cf", "-", "-C", spec.src_dir.as_str(), "."]);
    let out = stilt_k8s::exec_collect(cluster.as_ref(), target, &argv, &[])
        .await
        .map_err(|e| format!("running tar in {target}: {e}"))?;
    if out.exit_code != 0 {
        return Err(format!(
            "tar in {target} exited with {}: {}",
            out.exit_code,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut remote = archive::ArchiveRemote::from_tar(&spec.src_dir, &out.stdout)?;
    let mut report = transfer::run(&mut remote, spec, echo, on_change).await;
    report.bytes_transferred = out.stdout.len() as i64;
    Ok(report)
}

/// Runs syncbacks with `intervalSeconds` on their timer (the opt-in continuous mode).
struct ContinuousReconciler {
    ctx: Ctx,
    timers: Mutex<HashMap<String, (i32, tokio::task::JoinHandle<()>)>>,
}

pub fn start(ctx: Ctx) {
    let r = Arc::new(ContinuousReconciler {
        ctx: ctx.clone(),
        timers: Default::default(),
    });
    controller::run(
        ctx,
        Queue::default(),
        vec![("Syncback", controller::same_name())],
        r,
    );
}

impl Reconciler for ContinuousReconciler {
    fn reconcile(&self, name: &str) {
        let interval = self
            .ctx
            .store
            .get_typed::<Syncback>(name)
            .map(|s| s.spec.interval_seconds)
            .unwrap_or(0);
        let mut timers = self.timers.lock();
        if timers.get(name).is_some_and(|(i, _)| *i == interval) {
            return;
        }
        if let Some((_, t)) = timers.remove(name) {
            t.abort();
        }
        if interval <= 0 || self.ctx.mode != crate::Mode::Up {
            return;
        }
        let (ctx, name_owned) = (self.ctx.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let period = std::time::Duration::from_secs(interval as u64);
            loop {
                tokio::time::sleep(period).await;
                let Ok(sb) = ctx.store.get_typed::<Syncback>(&name_owned) else {
                    return;
                };
                let resource = sb.metadata.resource_or_name();
                let disabled = ctx
                    .store
                    .get_typed::<ConfigMap>(&disable_configmap(&resource))
                    .is_ok_and(|c| c.data.get(DISABLE_KEY).is_some_and(|v| v == "true"));
                if !disabled {
                    let span = format!("syncback:{name_owned}");
                    run_once(&ctx, &sb, &resource, &span, false).await;
                }
            }
        });
        timers.insert(name.to_string(), (interval, task));
    }
}
