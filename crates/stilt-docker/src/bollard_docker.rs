//! [`DockerClient`] over a real engine, through one reused bollard client.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BErr;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{BuildInfoAux, ContainerCreateBody, HealthConfig, HostConfig, PortBinding};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateContainerOptionsBuilder,
    DownloadFromContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
    TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::client::{AttachedExec, DockerClient, EventStream, LogStream};
use crate::error::{DockerError, Result};
use crate::lines::LineSplitter;
use crate::session_build;
use crate::tag::{split_repo_tag, tilt_tagged_ref};
use crate::tarball::{self, read_tar};
use crate::types::*;

/// The real engine. Cheap to share (`Arc<BollardDocker>`); all calls reuse one HTTP client
/// and its connection pool, and no CLI process is ever spawned.
pub struct BollardDocker {
    docker: Docker,
    /// Same transport and pool, with a long response-header timeout for calls whose first
    /// response byte can come late (builds of big contexts, pushes, large archives, streams).
    long: Docker,
    info: EngineInfo,
    /// Set after BuildKit failed for an infrastructure reason; later `Auto` builds go classic.
    buildkit_broken: AtomicBool,
}

impl std::fmt::Debug for BollardDocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BollardDocker")
            .field("info", &self.info)
            .finish()
    }
}

/// Response-header timeout of the `long` handle. bollard's default (2 min) bounds the other calls.
const LONG_TIMEOUT: Duration = Duration::from_secs(60 * 60);

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "stilt-{}-{nanos:x}-{}",
        std::process::id(),
        SESSION_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn send_line(sink: Option<&LineSink>, line: impl Into<String>) {
    if let Some(s) = sink {
        let _ = s.send(line.into()).await;
    }
}

fn to_map(m: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default().into_iter().collect()
}

/// Whether a BuildKit failure message points at the BuildKit machinery rather than at the
/// user's Dockerfile (those are retried with the classic builder in `Auto` mode).
fn is_buildkit_infra_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "buildkit not supported",
        "buildkit is not supported",
        "no active session",
        "session not found",
        "failed to get session",
        "grpc",
        "transport is closing",
        "rpc error: code = unavailable",
        "rpc error: code = unimplemented",
        "error reading from server: eof",
        "unknown builder version",
        "builder version",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Whether the daemon cannot do BuildKit at all (then `Auto` stops trying for this client).
fn is_buildkit_unsupported(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("not supported")
        || m.contains("unknown builder version")
        || m.contains("code = unimplemented")
        || m.contains("session")
            && (m.contains("missing") || m.contains("requires") || m.contains("version"))
}

enum Attempt {
    /// BuildKit machinery failed; worth retrying with the classic builder.
    Infra(String),
    Fail(DockerError),
}

/// Turns BuildKit status messages into `docker build --progress=plain`-like lines.
#[derive(Default)]
struct BuildKitProgress {
    index: HashMap<String, usize>,
    started: HashMap<usize, bool>,
    done: HashMap<usize, bool>,
    logs: HashMap<usize, LineSplitter>,
    /// By vertex number (the order BuildKit first mentioned them).
    stages: std::collections::BTreeMap<usize, BuildStage>,
}

/// A protobuf timestamp's (seconds, nanos) as a `SystemTime`.
fn system_time(seconds: i64, nanos: i32) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(seconds).ok()?;
    let nanos = u32::try_from(nanos).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

impl BuildKitProgress {
    fn idx(&mut self, digest: &str) -> usize {
        let n = self.index.len() + 1;
        *self.index.entry(digest.to_string()).or_insert(n)
    }

    fn lines(&mut self, sr: &bollard::moby::buildkit::v1::StatusResponse) -> Vec<String> {
        let mut out = Vec::new();
        for v in &sr.vertexes {
            let i = self.idx(&v.digest);
            let stage = self.stages.entry(i).or_default();
            stage.name.clone_from(&v.name);
            stage.cached |= v.cached;
            if let Some(t) = v
                .started
                .as_ref()
                .and_then(|t| system_time(t.seconds, t.nanos))
            {
                stage.started_at.get_or_insert(t);
            }
            // BuildKit may send several completion times; the last one counts.
            if let Some(t) = v
                .completed
                .as_ref()
                .and_then(|t| system_time(t.seconds, t.nanos))
            {
                stage.finished_at = Some(t);
            }
            if !v.error.is_empty() {
                stage.error.clone_from(&v.error);
            }
            if (v.started.is_some() || v.cached) && !self.started.get(&i).copied().unwrap_or(false)
            {
                self.started.insert(i, true);
                out.push(format!("#{i} {}", v.name));
            }
            if self.done.get(&i).copied().unwrap_or(false) {
                continue;
            }
            if !v.error.is_empty() {
                self.done.insert(i, true);
                out.push(format!("#{i} ERROR: {}", v.error));
            } else if v.cached {
                self.done.insert(i, true);
                out.push(format!("#{i} CACHED"));
            } else if let (Some(s), Some(c)) = (&v.started, &v.completed) {
                self.done.insert(i, true);
                let secs = (c.seconds - s.seconds) as f64 + f64::from(c.nanos - s.nanos) / 1e9;
                out.push(format!("#{i} DONE {secs:.1}s"));
            }
        }
        for l in &sr.logs {
            let i = self.idx(&l.vertex);
            for line in self.logs.entry(i).or_default().push(&l.msg) {
                out.push(format!("#{i} {line}"));
            }
        }
        for w in &sr.warnings {
            let i = self.idx(&w.vertex);
            out.push(format!(
                "#{i} WARNING: {}",
                String::from_utf8_lossy(&w.short)
            ));
        }
        out
    }
}

/// `std::io::Write` that hands 256 KiB chunks to an async channel (tar → HTTP body).
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "build request closed"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()
    }
}

/// With `DOCKER_TLS_VERIFY` set, the Docker CLI (and so Tilt) loads the client's TLS files from
/// `DOCKER_CERT_PATH` (default `~/.docker`) before it connects, whatever the host, and refuses to
/// go on when one is missing. Stilt says the same instead of quietly connecting without TLS.
fn check_tls_env(env: impl Fn(&str) -> Option<String>) -> std::result::Result<(), String> {
    if env("DOCKER_TLS_VERIFY").is_none_or(|v| v.is_empty()) {
        return Ok(());
    }
    let dir = env("DOCKER_CERT_PATH")
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env("HOME").unwrap_or_default()).join(".docker")
        });
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        let path = dir.join(file);
        if let Err(e) = std::fs::metadata(&path) {
            return Err(format!(
                "unable to resolve docker endpoint: open {}: {e} (DOCKER_TLS_VERIFY is set; DOCKER_CERT_PATH must hold ca.pem, cert.pem and key.pem)",
                path.display()
            ));
        }
    }
    Ok(())
}

impl BollardDocker {
    /// Connect using `DOCKER_HOST` or the local socket, negotiate the API version once
    /// (Docker 20.10 speaks 1.41), and read the engine's version.
    pub async fn connect() -> Result<Self> {
        check_tls_env(|k| std::env::var(k).ok()).map_err(DockerError::Unavailable)?;
        let d =
            Docker::connect_with_defaults().map_err(|e| DockerError::Unavailable(e.to_string()))?;
        Self::from_docker(d).await
    }

    /// Wrap an existing bollard client (version negotiation is done here).
    pub async fn from_docker(d: Docker) -> Result<Self> {
        let d = d.negotiate_version().await.map_err(unavailable)?;
        let v = d.version().await.map_err(unavailable)?;
        let api_version = v.api_version.clone().unwrap_or_default();
        let os = v.os.clone().unwrap_or_default();
        let buildkit = os == "linux" && api_at_least(&api_version, 1, 39);
        let long = d.clone().with_timeout(LONG_TIMEOUT);
        Ok(BollardDocker {
            docker: d,
            long,
            info: EngineInfo {
                version: v.version.unwrap_or_default(),
                api_version,
                os,
                buildkit,
            },
            buildkit_broken: AtomicBool::new(false),
        })
    }

    /// The underlying bollard client (for the composition root; reconcilers use the trait).
    pub fn inner(&self) -> &Docker {
        &self.docker
    }

    async fn build_with(
        &self,
        req: &BuildRequest,
        kind: BuilderKind,
        progress: Option<&LineSink>,
    ) -> std::result::Result<String, Attempt> {
        let (df_name, _) =
            tarball::plan_dockerfile(&req.context.dir, &req.dockerfile).map_err(Attempt::Fail)?;

        // Stream the context tar from a blocking thread into the request body.
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let (done_tx, done_rx) = oneshot::channel::<Result<tarball::ContextTarInfo>>();
        let ctx = req.context.clone();
        let df = req.dockerfile.clone();
        tokio::task::spawn_blocking(move || {
            let w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let res = tarball::write_context_tar(&ctx, &df, w).and_then(|(mut w, info)| {
                w.flush()?;
                Ok(info)
            });
            if let Err(e) = &res {
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
            let _ = done_tx.send(res);
        });
        let body = stream::poll_fn(move |cx| rx.poll_recv(cx));

        let buildargs: HashMap<String, String> = req.build_args.clone().into_iter().collect();
        let labels: HashMap<String, String> = req.labels.clone().into_iter().collect();
        let mut b = BuildImageOptionsBuilder::new()
            .dockerfile(&df_name)
            .rm(true)
            .forcerm(true)
            .nocache(req.no_cache)
            .buildargs(&buildargs)
            .labels(&labels)
            .target(req.target.as_deref().unwrap_or(""))
            .platform(req.platform.as_deref().unwrap_or(""));
        if req.pull {
            b = b.pull("1");
        }
        if let Some(n) = &req.network {
            b = b.networkmode(n);
        }
        // More than one host goes through `session_build` (see there).
        if let Some(h) = req.extra_hosts.first() {
            b = b.extrahosts(h);
        }
        if !req.cache_from.is_empty() {
            b = b.cachefrom(&req.cache_from);
        }
        b = match kind {
            BuilderKind::BuildKit => b
                .version(BuilderVersion::BuilderBuildKit)
                .session(&unique_session_id()),
            BuilderKind::Classic => b.version(BuilderVersion::BuilderV1),
        };

        let mut stream =
            self.long
                .build_image(b.build(), None, Some(bollard::body_try_stream(body)));
        let mut image_id: Option<String> = None;
        let mut bk = BuildKitProgress::default();
        let mut saw_buildkit = false;
        let mut text = LineSplitter::default();
        let mut failure: Option<BErr> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = &info.stream {
                        for line in text.push(s.as_bytes()) {
                            send_line(progress, line).await;
                        }
                    }
                    if let Some(s) = &info.status {
                        send_line(progress, s.clone()).await;
                    }
                    match &info.aux {
                        Some(BuildInfoAux::Default(id)) => {
                            if let Some(id) = &id.id {
                                image_id = Some(id.clone());
                            }
                        }
                        Some(BuildInfoAux::BuildKit(sr)) => {
                            saw_buildkit = true;
                            for line in bk.lines(sr) {
                                send_line(progress, line).await;
                            }
                        }
                        None => {}
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(stream);
        req.stages.set(
            bk.stages
                .into_values()
                .filter(|s| !s.name.is_empty())
                .collect(),
        );
        if let Some(rest) = text.finish() {
            send_line(progress, rest).await;
        }
        // A context that could not be archived is the real cause of any failure.
        if let Ok(Err(e)) = done_rx.await {
            return Err(Attempt::Fail(e));
        }
        if let Some(e) = failure {
            return Err(classify_build_error(e, kind, saw_buildkit));
        }
        match image_id {
            Some(id) => Ok(id),
            None => Err(match kind {
                BuilderKind::BuildKit if !saw_buildkit => {
                    Attempt::Infra("BuildKit build returned no image ID".into())
                }
                _ => Attempt::Fail(DockerError::Build(
                    "build finished without reporting an image ID".into(),
                )),
            }),
        }
    }

    /// A build whose secrets, SSH agent or extra hosts only a BuildKit session can serve.
    async fn build_in_session(
        &self,
        req: &BuildRequest,
        progress: Option<&LineSink>,
    ) -> Result<BuildResult> {
        if !self.info.buildkit || req.builder == BuilderPreference::Classic {
            return Err(DockerError::Build(
                "Docker SSH secrets only work on Buildkit, but Buildkit has been disabled".into(),
            ));
        }
        send_line(
            progress,
            "Building with a BuildKit session (secret/ssh/extra_hosts): step output is not streamed",
        )
        .await;
        let temp = session_build::temp_tag(
            &req.image_ref,
            SESSION_COUNTER.fetch_add(1, Ordering::Relaxed),
        );
        let image_id = session_build::build(&self.long, req, &temp).await?;
        let tagged_ref = tilt_tagged_ref(&req.image_ref, &image_id)?;
        self.tag(&image_id, &tagged_ref).await?;
        for t in &req.extra_tags {
            self.tag(&image_id, t).await?;
        }
        // Only the temporary name goes: the image keeps its other tags.
        let _ = self
            .docker
            .remove_image(
                &temp,
                Some(RemoveImageOptionsBuilder::new().noprune(true).build()),
                None,
            )
            .await;
        send_line(progress, format!("Built {image_id}")).await;
        Ok(BuildResult {
            image_id,
            tagged_ref,
            extra_tags: req.extra_tags.clone(),
            builder: BuilderKind::BuildKit,
        })
    }

    async fn collect_exec_output(
        &self,
        mut output: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = std::result::Result<LogOutput, BErr>> + Send>,
        >,
        sink: Option<&mpsc::Sender<ExecLine>>,
        result: &mut ExecOutput,
    ) -> Result<()> {
        let mut out_lines = LineSplitter::default();
        let mut err_lines = LineSplitter::default();
        while let Some(item) = output.next().await {
            let (stream, bytes) = match item.map_err(DockerError::from)? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (StdStream::Stdout, message)
                }
                LogOutput::StdErr { message } => (StdStream::Stderr, message),
                LogOutput::StdIn { .. } => continue,
            };
            let (buf, splitter) = match stream {
                StdStream::Stdout => (&mut result.stdout, &mut out_lines),
                StdStream::Stderr => (&mut result.stderr, &mut err_lines),
            };
            let room = ExecOutput::CAP.saturating_sub(buf.len());
            if bytes.len() > room {
                result.truncated = true;
            }
            buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if let Some(s) = sink {
                for text in splitter.push(&bytes) {
                    let _ = s.send(ExecLine { stream, text }).await;
                }
            }
        }
        if let Some(s) = sink {
            for (stream, sp) in [
                (StdStream::Stdout, &mut out_lines),
                (StdStream::Stderr, &mut err_lines),
            ] {
                if let Some(text) = sp.finish() {
                    let _ = s.send(ExecLine { stream, text }).await;
                }
            }
        }
        Ok(())
    }
}

/// In `Auto` mode an injected Dockerfile (inline, or outside the context) goes to the classic
/// builder unless it needs BuildKit: with a tar-uploaded context BuildKit ignores
/// `.dockerignore`, so the injected file would show up in `COPY .`. The classic builder drops
/// it (we list it in the context's `.dockerignore`).
fn auto_prefers_buildkit(req: &BuildRequest) -> Result<bool> {
    let (_, injected) = tarball::plan_dockerfile(&req.context.dir, &req.dockerfile)?;
    Ok(match injected {
        None => true,
        Some(contents) => tarball::needs_buildkit(&String::from_utf8_lossy(&contents)),
    })
}

fn api_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

fn unavailable(e: BErr) -> DockerError {
    match DockerError::from(e) {
        DockerError::Other(m) | DockerError::Io(m) => DockerError::Unavailable(m),
        other => other,
    }
}

fn classify_build_error(e: BErr, kind: BuilderKind, saw_buildkit: bool) -> Attempt {
    let bk = kind == BuilderKind::BuildKit;
    match e {
        BErr::DockerStreamError { error } => {
            if bk && is_buildkit_infra_error(&error) {
                Attempt::Infra(error)
            } else {
                Attempt::Fail(DockerError::Build(error))
            }
        }
        BErr::DockerResponseServerError {
            status_code,
            message,
        } => {
            if bk && is_buildkit_infra_error(&message) {
                Attempt::Infra(message)
            } else if status_code == 404 {
                Attempt::Fail(DockerError::NotFound(message))
            } else {
                Attempt::Fail(DockerError::Build(message))
            }
        }
        BErr::MissingSessionBuildkitError {} | BErr::MissingVersionBuildkitError {} => {
            Attempt::Infra(e.to_string())
        }
        other => match DockerError::from(other) {
            DockerError::Unavailable(m) => Attempt::Fail(DockerError::Unavailable(m)),
            err if bk && !saw_buildkit => Attempt::Infra(err.to_string()),
            err => Attempt::Fail(err),
        },
    }
}

fn label_filters(labels: &[(String, Option<String>)]) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect()
}

fn port_key(p: &PortMapping) -> String {
    let proto = if p.protocol.is_empty() {
        "tcp"
    } else {
        &p.protocol
    };
    format!("{}/{proto}", p.container_port)
}

/// Parse a logs line with Docker's timestamp prefix (`2026-01-01T00:00:00.123456789Z text`).
fn split_timestamp(line: String, timestamps: bool) -> (Option<String>, String) {
    if !timestamps {
        return (None, line);
    }
    match line.split_once(' ') {
        Some((ts, rest)) if ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T') => {
            (Some(ts.to_string()), rest.to_string())
        }
        _ => (None, line),
    }
}

#[async_trait]
impl DockerClient for BollardDocker {
    async fn engine_info(&self) -> Result<EngineInfo> {
        Ok(self.info.clone())
    }

    async fn build(&self, req: BuildRequest, progress: Option<LineSink>) -> Result<BuildResult> {
        let progress = progress.as_ref();
        if session_build::needs_session(&req) {
            return self.build_in_session(&req, progress).await;
        }
        let use_buildkit = match req.builder {
            BuilderPreference::Auto => {
                self.info.buildkit
                    && !self.buildkit_broken.load(Ordering::Relaxed)
                    && auto_prefers_buildkit(&req)?
            }
            BuilderPreference::BuildKit => true,
            BuilderPreference::Classic => false,
        };
        let fail = |a: Attempt| match a {
            Attempt::Infra(m) => DockerError::Build(m),
            Attempt::Fail(e) => e,
        };
        let (image_id, builder) = if use_buildkit {
            match self.build_with(&req, BuilderKind::BuildKit, progress).await {
                Ok(id) => (id, BuilderKind::BuildKit),
                Err(Attempt::Infra(msg)) if req.builder == BuilderPreference::Auto => {
                    // Only a BuildKit the daemon cannot do sticks; transient trouble (a dropped
                    // session, a reset connection) retries this build alone.
                    if is_buildkit_unsupported(&msg) {
                        self.buildkit_broken.store(true, Ordering::Relaxed);
                    }
                    send_line(
                        progress,
                        format!("BuildKit failed ({msg}); retrying with the classic builder"),
                    )
                    .await;
                    let id = self
                        .build_with(&req, BuilderKind::Classic, progress)
                        .await
                        .map_err(fail)?;
                    (id, BuilderKind::Classic)
                }
                Err(a) => return Err(fail(a)),
            }
        } else {
            let id = self
                .build_with(&req, BuilderKind::Classic, progress)
                .await
                .map_err(fail)?;
            (id, BuilderKind::Classic)
        };
        let tagged_ref = tilt_tagged_ref(&req.image_ref, &image_id)?;
        self.tag(&image_id, &tagged_ref).await?;
        for t in &req.extra_tags {
            self.tag(&image_id, t).await?;
        }
        Ok(BuildResult {
            image_id,
            tagged_ref,
            extra_tags: req.extra_tags.clone(),
            builder,
        })
    }

    async fn tag(&self, image: &str, target: &str) -> Result<()> {
        let (repo, tag) = split_repo_tag(target);
        self.docker
            .tag_image(
                image,
                Some(TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build()),
            )
            .await
            .map_err(DockerError::from)
    }

    async fn push(&self, image_ref: &str, progress: Option<LineSink>) -> Result<()> {
        let (repo, tag) = split_repo_tag(image_ref);
        let mut s = self.long.push_image(
            &repo,
            Some(PushImageOptionsBuilder::new().tag(&tag).build()),
            None,
        );
        while let Some(item) = s.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        let line = match info.progress_detail {
                            Some(p) if p.total.unwrap_or(0) > 0 => format!(
                                "{status} {}/{}",
                                p.current.unwrap_or(0),
                                p.total.unwrap_or(0)
                            ),
                            _ => status,
                        };
                        send_line(progress.as_ref(), line).await;
                    }
                }
                Err(BErr::DockerStreamError { error }) => return Err(DockerError::Push(error)),
                Err(BErr::DockerResponseServerError {
                    status_code: 404,
                    message,
                }) => return Err(DockerError::NotFound(message)),
                Err(BErr::DockerResponseServerError { message, .. }) => {
                    return Err(DockerError::Push(message));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                repo_tags: i.repo_tags.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                labels: to_map(i.config.and_then(|c| c.labels)),
                created: i.created.map(|c| c.to_string()),
                size: i.size,
            })),
            Err(e) => match DockerError::from(e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn remove_image(&self, image: &str, force: bool) -> Result<()> {
        match self
            .docker
            .remove_image(
                image,
                Some(RemoveImageOptionsBuilder::new().force(force).build()),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match DockerError::from(e) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerSummary>> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if !filter.labels.is_empty() {
            filters.insert("label".into(), label_filters(&filter.labels));
        }
        if let Some(img) = &filter.image {
            filters.insert("ancestor".into(), vec![img.clone()]);
        }
        if let Some(n) = &filter.name {
            filters.insert("name".into(), vec![format!("^/{n}$")]);
        }
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(filter.all)
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                names: c
                    .names
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .collect(),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                labels: to_map(c.labels),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        let c = self.docker.inspect_container(id, None).await?;
        let st = c.state.unwrap_or_default();
        let health = st
            .health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none");
        let mut ports = Vec::new();
        if let Some(map) = c.network_settings.and_then(|n| n.ports) {
            let mut keys: Vec<_> = map.into_iter().collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, bindings) in keys {
                let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                let container_port = port.parse().unwrap_or(0);
                match bindings {
                    Some(bs) if !bs.is_empty() => {
                        for b in bs {
                            ports.push(PortMapping {
                                container_port,
                                protocol: proto.to_string(),
                                host_ip: b.host_ip.filter(|s| !s.is_empty()),
                                host_port: b.host_port.and_then(|p| p.parse().ok()),
                            });
                        }
                    }
                    _ => ports.push(PortMapping {
                        container_port,
                        protocol: proto.to_string(),
                        host_ip: None,
                        host_port: None,
                    }),
                }
            }
        }
        let config = c.config.unwrap_or_default();
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            state: ContainerState {
                status: st.status.map(|s| s.to_string()).unwrap_or_default(),
                running: st.running.unwrap_or(false),
                restarting: st.restarting.unwrap_or(false),
                oom_killed: st.oom_killed.unwrap_or(false),
                exit_code: st.exit_code,
                error: st.error.filter(|e| !e.is_empty()),
                started_at: st.started_at,
                finished_at: st.finished_at,
            },
            health,
            ports,
            labels: to_map(config.labels),
            restart_count: c.restart_count.unwrap_or(0),
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut port_bindings = HashMap::new();
        let mut exposed = Vec::new();
        for p in &spec.ports {
            let key = port_key(p);
            exposed.push(key.clone());
            port_bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(p.host_port.map(|p| p.to_string()).unwrap_or_default()),
                }]),
            );
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
            entrypoint: spec.entrypoint.clone(),
            env: (!spec.env.is_empty())
                .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: (!spec.labels.is_empty()).then(|| spec.labels.clone().into_iter().collect()),
            working_dir: spec.working_dir.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: spec.healthcheck.as_ref().map(|(test, every)| HealthConfig {
                test: Some(test.clone()),
                interval: Some(every.as_nanos() as i64),
                timeout: Some(every.as_nanos() as i64 * 3),
                retries: Some(3),
                start_period: None,
                start_interval: None,
            }),
            host_config: Some(HostConfig {
                port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = spec
            .name
            .as_ref()
            .map(|n| CreateContainerOptionsBuilder::new().name(n).build());
        let r = self.docker.create_container(opts, body).await?;
        Ok(r.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(DockerError::from)
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        match self
            .docker
            .stop_container(
                id,
                Some(
                    StopContainerOptionsBuilder::new()
                        .t(timeout_secs as i32)
                        .build(),
                ),
            )
            .await
        {
            // 304: already stopped.
            Err(BErr::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r.map_err(DockerError::from),
        }
    }

    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        self.docker
            .restart_container(
                id,
                Some(
                    RestartContainerOptionsBuilder::new()
                        .t(timeout_secs as i32)
                        .build(),
                ),
            )
            .await
            .map_err(DockerError::from)
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        match self
            .docker
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(force)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match DockerError::from(e) {
                e if e.is_not_found() => Ok(()),
                DockerError::Engine {
                    status: 409,
                    message,
                } if message.contains("already in progress") => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn events(&self, filter: &EventFilter) -> Result<EventStream> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("type".into(), vec!["container".into()]);
        if !filter.labels.is_empty() {
            filters.insert("label".into(), label_filters(&filter.labels));
        }
        if let Some(c) = &filter.container {
            filters.insert("container".into(), vec![c.clone()]);
        }
        let mut b = EventsOptionsBuilder::new().filters(&filters);
        if let Some(s) = filter.since {
            b = b.since(&s.to_string());
        }
        let s = self.long.events(Some(b.build())).map(|item| {
            let m = item.map_err(DockerError::from)?;
            let actor = m.actor.unwrap_or_default();
            let attributes = to_map(actor.attributes);
            let action = m.action.unwrap_or_default();
            Ok(ContainerEvent {
                container_id: actor.id.unwrap_or_default(),
                kind: ContainerEventKind::from_action(&action, &attributes),
                action,
                attributes,
                time_nanos: m
                    .time_nano
                    .or(m.time.map(|t| t * 1_000_000_000))
                    .unwrap_or(0),
            })
        });
        Ok(s.boxed())
    }

    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<LogStream> {
        // Fail early (and typed) when the container does not exist.
        self.docker.inspect_container(id, None).await?;
        let mut b = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(opts.follow)
            .timestamps(opts.timestamps);
        if let Some(s) = opts.since {
            b = b.since(s as i32);
        }
        b = b.tail(
            &opts
                .tail
                .map_or_else(|| "all".to_string(), |t| t.to_string()),
        );
        let inner = self.long.logs(id, Some(b.build())).boxed();
        let timestamps = opts.timestamps;
        struct St {
            inner: futures_util::stream::BoxStream<'static, std::result::Result<LogOutput, BErr>>,
            out: LineSplitter,
            err: LineSplitter,
            pending: VecDeque<Result<LogLine>>,
            done: bool,
        }
        let st = St {
            inner,
            out: LineSplitter::default(),
            err: LineSplitter::default(),
            pending: VecDeque::new(),
            done: false,
        };
        let s = stream::unfold(st, move |mut st| async move {
            loop {
                if let Some(item) = st.pending.pop_front() {
                    return Some((item, st));
                }
                if st.done {
                    return None;
                }
                match st.inner.next().await {
                    Some(Ok(o)) => {
                        let (stream, bytes) = match o {
                            LogOutput::StdErr { message } => (StdStream::Stderr, message),
                            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                (StdStream::Stdout, message)
                            }
                            LogOutput::StdIn { .. } => continue,
                        };
                        let sp = match stream {
                            StdStream::Stdout => &mut st.out,
                            StdStream::Stderr => &mut st.err,
                        };
                        for line in sp.push(&bytes) {
                            let (timestamp, text) = split_timestamp(line, timestamps);
                            st.pending.push_back(Ok(LogLine {
                                stream,
                                timestamp,
                                text,
                            }));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        st.pending.push_back(Err(e.into()));
                    }
                    None => {
                        st.done = true;
                        for (stream, sp) in [
                            (StdStream::Stdout, &mut st.out),
                            (StdStream::Stderr, &mut st.err),
                        ] {
                            if let Some(line) = sp.finish() {
                                let (timestamp, text) = split_timestamp(line, timestamps);
                                st.pending.push_back(Ok(LogLine {
                                    stream,
                                    timestamp,
                                    text,
                                }));
                            }
                        }
                    }
                }
            }
        });
        Ok(s.boxed())
    }

    async fn exec(
        &self,
        id: &str,
        req: &ExecRequest,
        output: Option<mpsc::Sender<ExecLine>>,
    ) -> Result<ExecOutput> {
        if req.cmd.is_empty() {
            return Err(DockerError::Other("exec: empty command".into()));
        }
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions::<String> {
                    cmd: Some(req.cmd.clone()),
                    attach_stdin: Some(req.stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: (!req.env.is_empty())
                        .then(|| req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    working_dir: req.working_dir.clone(),
                    user: req.user.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await?;
        let mut result = ExecOutput::default();
        match started {
            StartExecResults::Attached {
                output: out,
                mut input,
            } => {
                let writer = req.stdin.clone().map(|data| {
                    tokio::spawn(async move {
                        input.write_all(&data).await?;
                        input.shutdown().await
                    })
                });
                self.collect_exec_output(out, output.as_ref(), &mut result)
                    .await?;
                if let Some(w) = writer {
                    match w.await {
                        Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
                            return Err(DockerError::io("writing exec stdin", e));
                        }
                        _ => {}
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        // The exit code is recorded just after the output stream closes.
        for attempt in 0..100 {
            let insp = self.docker.inspect_exec(&created.id).await?;
            if insp.running != Some(true) {
                result.exit_code = insp.exit_code.unwrap_or(-1);
                return Ok(result);
            }
            tokio::time::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 })).await;
        }
        Err(DockerError::Other(format!(
            "exec {} in {id}: output closed but the process is still running",
            created.id
        )))
    }

    async fn exec_attach(&self, id: &str, req: &ExecRequest) -> Result<AttachedExec> {
        if req.cmd.is_empty() {
            return Err(DockerError::Other("exec: empty command".into()));
        }
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions::<String> {
                    cmd: Some(req.cmd.clone()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: (!req.env.is_empty())
                        .then(|| req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    working_dir: req.working_dir.clone(),
                    user: req.user.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let started = self
            .long
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(64 * 1024),
                }),
            )
            .await?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(DockerError::Other("exec did not attach".into()));
        };
        let (mut out_w, out_r) = tokio::io::duplex(256 * 1024);
        let (err_tx, err_rx) = mpsc::channel(256);
        let (exit_tx, exit_rx) = oneshot::channel();
        let docker = self.docker.clone();
        let exec_id = created.id.clone();
        tokio::spawn(async move {
            let mut err_lines = LineSplitter::default();
            let mut failure = None;
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        // A reader that went away is fine: keep draining for the exit code.
                        let _ = out_w.write_all(&message).await;
                    }
                    Ok(LogOutput::StdErr { message }) => {
                        for line in err_lines.push(&message) {
                            let _ = err_tx.send(line).await;
                        }
                    }
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        failure = Some(DockerError::from(e));
                        break;
                    }
                }
            }
            if let Some(rest) = err_lines.finish() {
                let _ = err_tx.send(rest).await;
            }
            let _ = out_w.shutdown().await;
            drop(out_w);
            let code = match failure {
                Some(e) => Err(e),
                None => {
                    let mut code = Err(DockerError::Other("exec still running".into()));
                    for attempt in 0..100 {
                        match docker.inspect_exec(&exec_id).await {
                            Ok(i) if i.running != Some(true) => {
                                code = Ok(i.exit_code.unwrap_or(-1));
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                code = Err(e.into());
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(if attempt < 10 {
                            2
                        } else {
                            20
                        }))
                        .await;
                    }
                    code
                }
            };
            let _ = exit_tx.send(code);
        });
        Ok(AttachedExec {
            stdin: Box::new(input),
            stdout: Box::new(out_r),
            stderr: err_rx,
            exit: exit_rx,
        })
    }

    async fn upload_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()> {
        self.long
            .upload_to_container(
                id,
                Some(UploadToContainerOptionsBuilder::new().path(path).build()),
                bollard::body_full(tar),
            )
            .await
            .map_err(DockerError::from)
    }

    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<ArchiveEntry>> {
        let mut s = self.long.download_from_container(
            id,
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path(path)
                    .build(),
            ),
        );
        let mut buf = Vec::new();
        while let Some(chunk) = s.next().await {
            buf.extend_from_slice(&chunk?);
        }
        read_tar(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare() {
        assert!(api_at_least("1.41", 1, 39));
        assert!(!api_at_least("1.38", 1, 39));
        assert!(api_at_least("2.0", 1, 39));
    }

    #[test]
    fn timestamps_split() {
        assert_eq!(
            split_timestamp("2026-11-23T15:14:05.123456789Z hello world".into(), true),
            (
                Some("2026-11-23T15:14:05.123456789Z".into()),
                "hello world".into()
            )
        );
        assert_eq!(
            split_timestamp("plain".into(), true),
            (None, "plain".into())
        );
        assert_eq!(split_timestamp("a b".into(), false), (None, "a b".into()));
    }

    #[test]
    fn build_errors_classify_into_user_and_infra() {
        let infra =
            |e: BErr, kind, saw| matches!(classify_build_error(e, kind, saw), Attempt::Infra(_));
        assert!(infra(
            BErr::MissingSessionBuildkitError {},
            BuilderKind::BuildKit,
            false
        ));
        assert!(infra(
            BErr::DockerResponseServerError {
                status_code: 500,
                message: "no active session for x".into()
            },
            BuilderKind::BuildKit,
            false
        ));
        // Dockerfile errors are the user's, whatever the builder.
        let user = BErr::DockerStreamError {
            error: "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 2: unknown instruction: BOGUS".into(),
        };
        match classify_build_error(user, BuilderKind::BuildKit, true) {
            Attempt::Fail(DockerError::Build(m)) => {
                assert!(m.ends_with("unknown instruction: BOGUS"))
            }
            _ => panic!("user error must not fall back"),
        }
        // The classic builder never falls back.
        assert!(!infra(
            BErr::DockerResponseServerError {
                status_code: 500,
                message: "grpc thing".into()
            },
            BuilderKind::Classic,
            false
        ));
    }

    #[test]
    fn only_unsupported_buildkit_sticks() {
        assert!(is_buildkit_unsupported("buildkit not supported by daemon"));
        assert!(is_buildkit_unsupported(
            &BErr::MissingSessionBuildkitError {}.to_string()
        ));
        assert!(!is_buildkit_unsupported(
            "rpc error: code = Unavailable desc = transport is closing"
        ));
    }

    #[test]
    fn buildkit_infra_errors_are_recognised() {
        assert!(is_buildkit_infra_error(
            "no active session for abc: context deadline exceeded"
        ));
        assert!(!is_buildkit_infra_error(
            "dockerfile parse error line 2: unknown instruction: BOGUS"
        ));
    }
}

#[cfg(test)]
mod tls_env_tests {
    use super::check_tls_env;

    #[test]
    fn tls_verify_needs_the_client_files_as_the_docker_cli_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let env = |verify: &'static str, cert: String| {
            move |k: &str| match k {
                "DOCKER_TLS_VERIFY" => Some(verify.to_string()),
                "DOCKER_CERT_PATH" => Some(cert.clone()),
                _ => None,
            }
        };
        assert!(
            check_tls_env(env("", path.clone())).is_ok(),
            "unset: no TLS"
        );
        let err = check_tls_env(env("1", path.clone())).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "unable to resolve docker endpoint: open {path}/ca.pem"
            )),
            "{err}"
        );
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        assert!(check_tls_env(env("1", path)).is_ok());
    }
}
