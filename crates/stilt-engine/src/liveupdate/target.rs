//! Where a live update lands: one container, reached one of three ways. The update itself — copy,
//! run the triggered steps, restart when asked, time each stage, log it — is written once
//! ([`update_container`]) over the [`LiveUpdateTarget`] trait:
//!
//! - [`DockerChannel`]: a Docker container with the stilt-syncer helper running in it (one
//!   attached exec, kept open): one round trip for all writes and deletes, steps on the channel;
//! - [`DockerArchive`]: a Docker container where the helper cannot run: one archive upload,
//!   deletions and steps by `docker exec`;
//! - [`PodChannel`]: a pod container, through the pod channel (the helper, or Tilt's exec + tar).

use super::{DockerChannels, triggered};
use crate::Ctx;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_api::*;
use stilt_docker::ExecRequest;
use stilt_logs::Level;

/// Where a step's output goes, as it comes.
pub(crate) type OutputSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// What a transfer sent.
pub(crate) struct Sent {
    pub bytes: i64,
    /// Time spent preparing the payload (reading files, building the archive) before sending.
    pub prepared: Duration,
}

/// One container a live update writes into and runs steps in.
pub(crate) trait LiveUpdateTarget {
    /// The container as logs name it.
    fn label(&self) -> String;
    /// How the files travel, for the log.
    fn via(&self) -> String;
    /// Writes the changed files (a missing local file is deleted in the container).
    async fn transfer(&mut self, pairs: &[(PathBuf, String)]) -> Result<Sent, String>;
    /// Runs one step; its output goes to `out` as it comes. Returns the exit code.
    async fn run(&mut self, argv: &[String], out: OutputSink) -> Result<i64, String>;
    /// `restart_container()`.
    async fn restart(&mut self) -> Result<(), String>;
}

/// The container-side writes (with local modes) and deletions for changed local files, and the
/// bytes to send.
pub(crate) fn read_changes(
    pairs: &[(PathBuf, String)],
) -> (Vec<String>, Vec<stilt_syncer::WriteEntry>, i64) {
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

/// Copies the files into the container and runs the triggered steps (stopping at the first that
/// fails: the files stay), restarts it when asked. Returns the step error (empty on success) and
/// the stage timings, measured from the file event.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn update_container<T: LiveUpdateTarget>(
    ctx: &Ctx,
    lu: &LiveUpdate,
    resource: &str,
    target: &mut T,
    files: &[PathBuf],
    pairs: &[(PathBuf, String)],
    event: MicroTime,
) -> Result<(String, LiveUpdateTimings), String> {
    let span = format!("liveupdate:{}", lu.metadata.name);
    let clock = Instant::now();
    let batch_closed_ms = ms_since(event);
    let since_batch = || batch_closed_ms + clock.elapsed().as_secs_f64() * 1e3;
    let sent = target.transfer(pairs).await?;
    let archive_built_ms = batch_closed_ms + sent.prepared.as_secs_f64() * 1e3;
    let transfer_done_ms = since_batch();
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
        let code = target
            .run(
                &exec.args,
                Arc::new(move |out: &[u8]| {
                    logs.append(&res, &sp, Level::Info, &String::from_utf8_lossy(out))
                }),
            )
            .await;
        ctx.logs.flush(resource, &span);
        exec_error = match code {
            Ok(0) => continue,
            Ok(c) => format!("command {:?} failed with exit code {c}", exec.args),
            Err(e) => format!("running {:?}: {e}", exec.args),
        };
        ctx.logs.line(
            resource,
            &span,
            Level::Error,
            &format!(
                "  → Failed to update container {}: {exec_error}",
                target.label()
            ),
        );
        break;
    }
    if exec_error.is_empty() && lu.spec.restart == LIVE_UPDATE_RESTART_ALWAYS {
        target.restart().await?;
    }
    let run_steps_done_ms = since_batch();
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
            "Live update: {} file(s) [{}{}] into {} via {} — event→batch {batch_closed_ms:.1} ms, prepared {archive_built_ms:.1} ms, transfer {transfer_done_ms:.1} ms, steps {run_steps_done_ms:.1} ms",
            files.len(),
            shown.join(", "),
            if pairs.len() > 3 { ", …" } else { "" },
            target.label(),
            target.via(),
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
            bytes: sent.bytes,
        },
    ))
}

pub(crate) fn short_id(container: &str) -> String {
    container[..container.len().min(12)].to_string()
}

async fn restart_docker(
    docker: &dyn stilt_docker::DockerClient,
    container: &str,
) -> Result<(), String> {
    docker
        .restart_container(container, 10)
        .await
        .map_err(|e| format!("restarting {container}: {e}"))
}

/// A Docker container with the helper: the channel goes back to the pool when done.
pub(crate) struct DockerChannel {
    pub docker: Arc<dyn stilt_docker::DockerClient>,
    pub channels: DockerChannels,
    pub container: String,
    pub client: Option<stilt_syncer::Client>,
}

impl Drop for DockerChannel {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.channels.give_back(&self.container, client);
        }
    }
}

impl DockerChannel {
    fn client(&mut self) -> &mut stilt_syncer::Client {
        self.client.as_mut().expect("held until dropped")
    }

    /// A transport error happened: the channel must be reopened.
    pub fn is_broken(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.is_broken())
    }
}

impl LiveUpdateTarget for DockerChannel {
    fn label(&self) -> String {
        short_id(&self.container)
    }

    fn via(&self) -> String {
        "the persistent channel".into()
    }

    async fn transfer(&mut self, pairs: &[(PathBuf, String)]) -> Result<Sent, String> {
        let clock = Instant::now();
        let (deletes, writes, bytes) = read_changes(pairs);
        let prepared = clock.elapsed();
        self.client()
            .update(deletes, writes)
            .await
            .map_err(|e| format!("syncing over the channel: {e}"))?;
        Ok(Sent { bytes, prepared })
    }

    async fn run(&mut self, argv: &[String], out: OutputSink) -> Result<i64, String> {
        let spec = stilt_syncer::RunSpec {
            argv: argv.to_vec(),
            ..Default::default()
        };
        self.client()
            .run_streaming(spec, |_, data| out(data))
            .await
            .map(i64::from)
            .map_err(|e| e.to_string())
    }

    async fn restart(&mut self) -> Result<(), String> {
        restart_docker(self.docker.as_ref(), &self.container).await
    }
}

/// A Docker container without the helper: archive upload and `docker exec`.
pub(crate) struct DockerArchive {
    pub docker: Arc<dyn stilt_docker::DockerClient>,
    pub container: String,
}

impl LiveUpdateTarget for DockerArchive {
    fn label(&self) -> String {
        short_id(&self.container)
    }

    fn via(&self) -> String {
        "an archive upload".into()
    }

    async fn transfer(&mut self, pairs: &[(PathBuf, String)]) -> Result<Sent, String> {
        let clock = Instant::now();
        let archive =
            stilt_docker::sync_archive(pairs).map_err(|e| format!("building the archive: {e}"))?;
        let prepared = clock.elapsed();
        stilt_docker::apply_sync(self.docker.as_ref(), &self.container, &archive)
            .await
            .map_err(|e| format!("syncing into {}: {e}", self.container))?;
        Ok(Sent {
            bytes: archive.tar.len() as i64,
            prepared,
        })
    }

    async fn run(&mut self, argv: &[String], out: OutputSink) -> Result<i64, String> {
        let done = self
            .docker
            .exec(&self.container, &ExecRequest::new(argv.to_vec()), None)
            .await
            .map_err(|e| e.to_string())?;
        out(done.stdout_str().as_bytes());
        out(done.stderr_str().as_bytes());
        Ok(done.exit_code)
    }

    async fn restart(&mut self) -> Result<(), String> {
        restart_docker(self.docker.as_ref(), &self.container).await
    }
}

/// A pod container through the pod channel.
pub(crate) struct PodChannel<'a> {
    pub syncer: &'a mut stilt_k8s::ContainerSyncer,
    pub pod: String,
    pub container: String,
    pub mode: Option<String>,
}

impl LiveUpdateTarget for PodChannel<'_> {
    fn label(&self) -> String {
        format!("{}/{}", self.pod, self.container)
    }

    fn via(&self) -> String {
        self.mode
            .clone()
            .unwrap_or_else(|| "the pod channel".into())
    }

    async fn transfer(&mut self, pairs: &[(PathBuf, String)]) -> Result<Sent, String> {
        let clock = Instant::now();
        let (deletes, writes, bytes) = read_changes(pairs);
        let prepared = clock.elapsed();
        let report = self
            .syncer
            .update(&deletes, writes)
            .await
            .map_err(|e| format!("syncing into {}: {e}", self.label()))?;
        self.mode = Some(format!("{:?}", report.mode));
        Ok(Sent { bytes, prepared })
    }

    async fn run(&mut self, argv: &[String], out: OutputSink) -> Result<i64, String> {
        self.syncer
            .run(argv, move |_, data: &[u8]| out(data))
            .await
            .map(i64::from)
            .map_err(|e| e.to_string())
    }

    /// Restarting a pod's container is not a live update in Tilt either (it needs
    /// `docker_build_with_restart`): the steps ran, nothing more is done.
    async fn restart(&mut self) -> Result<(), String> {
        Ok(())
    }
}
