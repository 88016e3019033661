//! The adapter trait reconcilers depend on.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::error::Result;
use crate::tarball::{SyncArchive, rm_command};
use crate::types::*;

/// A stream of container events; ends when the engine closes it.
pub type EventStream = BoxStream<'static, Result<ContainerEvent>>;
/// A stream of log lines; ends when the container stops (follow) or the logs are exhausted.
pub type LogStream = BoxStream<'static, Result<LogLine>>;

/// A long-lived exec with raw stdio (the transport for an in-container helper speaking a framed
/// protocol, e.g. stilt-syncer). Write requests to `stdin`, read responses from `stdout`;
/// dropping or shutting down `stdin` closes the process' stdin.
pub struct AttachedExec {
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    /// Raw stdout bytes (demultiplexed from stderr).
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    /// stderr, line by line.
    pub stderr: mpsc::Receiver<String>,
    /// The exit code, once stdout has closed.
    pub exit: oneshot::Receiver<Result<i64>>,
}

impl std::fmt::Debug for AttachedExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachedExec")
    }
}

/// Everything Stilt asks of a Docker engine. Object-safe: use `Arc<dyn DockerClient>`.
///
/// Implementations: [`crate::BollardDocker`] (the real engine) and [`crate::FakeDocker`]
/// (in memory, for unit tests of reconcilers).
#[async_trait]
pub trait DockerClient: Send + Sync {
    /// Engine version and capabilities.
    async fn engine_info(&self) -> Result<EngineInfo>;

    /// Build an image, tag it `<ref>:tilt-<hash>` (and `extra_tags`), return the ID and tag.
    /// Progress lines go to `progress`. On failure the error carries the builder's message.
    async fn build(&self, req: BuildRequest, progress: Option<LineSink>) -> Result<BuildResult>;

    /// `docker tag <image> <target>` (`image` is a ref or ID).
    async fn tag(&self, image: &str, target: &str) -> Result<()>;

    /// `docker push <ref>` with streamed progress lines.
    async fn push(&self, image_ref: &str, progress: Option<LineSink>) -> Result<()>;

    /// Image inspect; `Ok(None)` when the image does not exist.
    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>>;

    /// Whether an image (ref or ID) exists locally.
    async fn image_exists(&self, image: &str) -> Result<bool> {
        Ok(self.inspect_image(image).await?.is_some())
    }

    /// Remove an image (ref or ID). Missing images are not an error.
    async fn remove_image(&self, image: &str, force: bool) -> Result<()>;

    /// `docker ps` by labels / image / name.
    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerSummary>>;

    /// `docker inspect <container>`; `Err(NotFound)` when missing.
    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo>;

    /// Create a container; returns its ID.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;

    async fn start_container(&self, id: &str) -> Result<()>;

    /// Stop with a grace period (seconds) before SIGKILL.
    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()>;

    /// Restart in place (live update's `restart_container()` for Docker/Compose).
    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()>;

    /// Remove a container (`force` kills it first). Missing containers are not an error.
    async fn remove_container(&self, id: &str, force: bool) -> Result<()>;

    /// Container events (create/start/die/stop/health…) matching the filter, from now on
    /// (or from `since`).
    async fn events(&self, filter: &EventFilter) -> Result<EventStream>;

    /// Container logs as lines, stdout and stderr demultiplexed.
    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<LogStream>;

    /// Run a command in a running container. Output lines are streamed to `output` as they
    /// arrive and also collected in the result with the exit code.
    async fn exec(
        &self,
        id: &str,
        req: &ExecRequest,
        output: Option<mpsc::Sender<ExecLine>>,
    ) -> Result<ExecOutput>;

    /// Start a long-lived exec and hand back its stdin/stdout as byte streams (no line
    /// splitting, no collection). `req.stdin` is ignored: write to [`AttachedExec::stdin`].
    async fn exec_attach(&self, id: &str, req: &ExecRequest) -> Result<AttachedExec>;

    /// PUT a tar archive into the container, extracted under `path` (a directory that must
    /// exist; use `/` with archives whose entry names are full paths). No process is started.
    async fn upload_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()>;

    /// GET an archive of `path` from the container. Entry names are relative to the parent of
    /// `path` (Docker's convention: downloading `/www` yields `www`, `www/index.html`, …).
    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<ArchiveEntry>>;
}

/// Apply a live-update payload the way Tilt does: one `rm -rf` exec for deletions (if any), then
/// one archive upload at `/` (if any). Returns the `rm` exec output when one ran.
pub async fn apply_sync(
    client: &dyn DockerClient,
    container: &str,
    archive: &SyncArchive,
) -> Result<Option<ExecOutput>> {
    let mut rm_out = None;
    if let Some(cmd) = rm_command(&archive.deletions) {
        let out = client.exec(container, &ExecRequest::new(cmd), None).await?;
        if !out.success() {
            return Err(crate::DockerError::Other(format!(
                "rm -rf in container {container} exited {}: {}",
                out.exit_code,
                out.stderr_str().trim()
            )));
        }
        rm_out = Some(out);
    }
    if archive.entries > 0 {
        client
            .upload_archive(container, "/", archive.tar.clone())
            .await?;
    }
    Ok(rm_out)
}
