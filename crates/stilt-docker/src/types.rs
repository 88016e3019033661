//! Plain data exchanged with the adapter. No bollard types leak through these.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Path predicate over a path **relative to the build context** (`true` = include).
/// The `.dockerignore` matcher lives elsewhere; callers hand it in as this closure.
pub type PathFilter = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// Where progress lines go (build output, push progress, compose CLI output).
/// Sends never block the operation for long: a closed receiver is ignored.
pub type LineSink = mpsc::Sender<String>;

/// The build context: a directory plus the caller's include predicate.
#[derive(Clone)]
pub struct BuildContext {
    /// Absolute (or cwd-relative) directory that is tarred.
    pub dir: PathBuf,
    /// `true` = include this relative path. `None` = include everything.
    pub filter: Option<PathFilter>,
    /// Optional pruning hint: `true` = do not descend into this relative directory at all.
    /// Without it, excluded directories are still walked so re-included children
    /// (`!dir/keep` in dockerignore terms) can be found.
    pub prune_dir: Option<PathFilter>,
}

impl BuildContext {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BuildContext {
            dir: dir.into(),
            filter: None,
            prune_dir: None,
        }
    }

    pub fn with_filter(mut self, f: impl Fn(&Path) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    pub fn with_prune_dir(mut self, f: impl Fn(&Path) -> bool + Send + Sync + 'static) -> Self {
        self.prune_dir = Some(Arc::new(f));
        self
    }

    pub(crate) fn includes(&self, rel: &Path) -> bool {
        self.filter.as_ref().is_none_or(|f| f(rel))
    }

    pub(crate) fn prunes(&self, rel: &Path) -> bool {
        self.prune_dir.as_ref().is_some_and(|f| f(rel))
    }
}

impl fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("dir", &self.dir)
            .field("filter", &self.filter.is_some())
            .field("prune_dir", &self.prune_dir.is_some())
            .finish()
    }
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file on disk. Inside the context it is referenced in place (and always sent, even if the
    /// filter excludes it); outside the context it is injected like inline contents.
    Path(PathBuf),
    /// Inline contents (`docker_build(dockerfile_contents=…)`), injected as a tar entry with a
    /// unique, content-derived name.
    Contents(String),
}

/// Which builder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderPreference {
    /// BuildKit when the daemon supports it; falls back to the classic builder on infrastructure
    /// errors (never on user errors such as a bad Dockerfile). An injected Dockerfile (inline
    /// contents, or a file outside the context) uses the classic builder unless it needs
    /// BuildKit syntax, because BuildKit ignores `.dockerignore` for uploaded contexts and the
    /// injected file would otherwise be visible to `COPY .`.
    #[default]
    Auto,
    /// BuildKit only (an injected Dockerfile is then visible to `COPY .` as
    /// `.stilt-dockerfile-<hash>`).
    BuildKit,
    Classic,
}

/// The builder that actually produced an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    BuildKit,
    Classic,
}

/// One `docker_build`.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The image ref the user declared (`web`, `localhost:5000/web`, `web:v1`). Any tag or digest
    /// is dropped when the `tilt-<hash>` tag is applied.
    pub image_ref: String,
    pub context: BuildContext,
    pub dockerfile: DockerfileSource,
    pub build_args: BTreeMap<String, String>,
    /// Multi-stage target (`--target`); empty = last stage.
    pub target: Option<String>,
    /// Extra refs to tag the result with (`extra_tag=`), verbatim.
    pub extra_tags: Vec<String>,
    /// Image labels. Tilt adds `dev.tilt.built=true` (see [`BuildRequest::new`]).
    pub labels: BTreeMap<String, String>,
    pub builder: BuilderPreference,
    /// `--network` for RUN steps.
    pub network: Option<String>,
    pub platform: Option<String>,
    pub pull: bool,
    pub no_cache: bool,
    /// `--add-host` entries, `host:ip` (`extra_hosts=`).
    pub extra_hosts: Vec<String>,
    /// Images to use as cache sources (`cache_from=`).
    pub cache_from: Vec<String>,
    /// BuildKit secrets in `docker build --secret` syntax (`id=x,src=path`, `id=x,env=VAR`).
    /// Non-empty secrets or `ssh` make the build go through a BuildKit session.
    pub secrets: Vec<String>,
    /// SSH agent forwards in `docker build --ssh` syntax (`default`).
    pub ssh: Vec<String>,
    /// Where the build reports its BuildKit stages (read after it, failed or not).
    pub stages: StageLog,
}

/// One step of a BuildKit build (Tilt's DockerImage `stageStatuses`): a Dockerfile instruction
/// (`[2/3] COPY www /www`) or one of BuildKit's own (`[internal] load build definition …`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildStage {
    pub name: String,
    pub cached: bool,
    pub started_at: Option<std::time::SystemTime>,
    pub finished_at: Option<std::time::SystemTime>,
    pub error: String,
}

/// The stages a build went through, in the order BuildKit reported them. The classic builder
/// reports none.
#[derive(Debug, Clone, Default)]
pub struct StageLog(Arc<std::sync::Mutex<Vec<BuildStage>>>);

impl StageLog {
    pub fn stages(&self) -> Vec<BuildStage> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn set(&self, stages: Vec<BuildStage>) {
        if let Ok(mut s) = self.0.lock() {
            *s = stages;
        }
    }
}

impl BuildRequest {
    /// A request with Tilt's default labels (`dev.tilt.built=true`, `dev.tilt.gc=true`) and the
    /// `Dockerfile` of the context.
    pub fn new(image_ref: impl Into<String>, context: BuildContext) -> Self {
        let dockerfile = DockerfileSource::Path(context.dir.join("Dockerfile"));
        let mut labels = BTreeMap::new();
        labels.insert("dev.tilt.built".to_string(), "true".to_string());
        labels.insert("dev.tilt.gc".to_string(), "true".to_string());
        BuildRequest {
            image_ref: image_ref.into(),
            context,
            dockerfile,
            build_args: BTreeMap::new(),
            target: None,
            extra_tags: Vec::new(),
            labels,
            builder: BuilderPreference::Auto,
            network: None,
            platform: None,
            pull: false,
            no_cache: false,
            extra_hosts: Vec::new(),
            cache_from: Vec::new(),
            secrets: Vec::new(),
            ssh: Vec::new(),
            stages: StageLog::default(),
        }
    }

    /// A digest of everything that decides what this build produces: the context as it would be
    /// sent, the Dockerfile and every option. `None` when the result may differ with the same
    /// inputs (`pull`, `no_cache`, secrets read at build time, an SSH agent): such a build must run.
    pub fn input_digest(&self) -> crate::Result<Option<String>> {
        use sha2::Digest;
        if self.pull || self.no_cache || !self.secrets.is_empty() || !self.ssh.is_empty() {
            return Ok(None);
        }
        let dockerfile = match &self.dockerfile {
            DockerfileSource::Contents(c) => c.clone(),
            DockerfileSource::Path(p) => std::fs::read_to_string(p)
                .map_err(|e| crate::DockerError::io(format!("reading {}", p.display()), e))?,
        };
        let options = format!(
            "{:?}",
            (
                &self.image_ref,
                &dockerfile,
                &self.build_args,
                &self.target,
                &self.extra_tags,
                &self.labels,
                &self.network,
                &self.platform,
                &self.extra_hosts,
                &self.cache_from,
            )
        );
        let context = crate::tarball::context_digest(&self.context, &self.dockerfile)?;
        let mut h = sha2::Sha256::new();
        h.update(options.as_bytes());
        h.update(context.as_bytes());
        Ok(Some(crate::tarball::hex(&h.finalize())))
    }

    pub fn dockerfile_contents(mut self, contents: impl Into<String>) -> Self {
        self.dockerfile = DockerfileSource::Contents(contents.into());
        self
    }

    pub fn dockerfile_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.dockerfile = DockerfileSource::Path(path.into());
        self
    }

    pub fn build_arg(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.build_args.insert(k.into(), v.into());
        self
    }

    pub fn builder(mut self, b: BuilderPreference) -> Self {
        self.builder = b;
        self
    }
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:<64 hex>`.
    pub image_id: String,
    /// `<ref without tag>:tilt-<first 16 hex of the ID>`; the image carries this tag.
    pub tagged_ref: String,
    /// The `extra_tags` that were applied.
    pub extra_tags: Vec<String>,
    pub builder: BuilderKind,
}

/// `docker image inspect`, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub created: Option<String>,
    pub size: Option<i64>,
}

/// Which containers to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    /// `key` or `key=value` label matches (all must hold).
    pub labels: Vec<(String, Option<String>)>,
    /// Containers created from this image (Docker's `ancestor` filter: ref or ID).
    pub image: Option<String>,
    /// Exact container name (without leading `/`).
    pub name: Option<String>,
    /// Include stopped containers.
    pub all: bool,
}

impl ContainerFilter {
    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.labels.push((k.into(), Some(v.into())));
        self
    }
    pub fn label_key(mut self, k: impl Into<String>) -> Self {
        self.labels.push((k.into(), None));
        self
    }
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }
    pub fn all(mut self, all: bool) -> Self {
        self.all = all;
        self
    }
    pub(crate) fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| match v {
            None => labels.contains_key(k),
            Some(v) => labels.get(k) == Some(v),
        })
    }
}

/// One row of `docker ps`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSummary {
    pub id: String,
    /// Names without the leading `/`.
    pub names: Vec<String>,
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub state: String,
    /// Human status (`Up 3 seconds (healthy)`).
    pub status: String,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortMapping {
    pub container_port: u16,
    /// `tcp` / `udp` / `sctp`.
    pub protocol: String,
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
}

/// Container runtime state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    pub running: bool,
    pub restarting: bool,
    pub oom_killed: bool,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    /// RFC 3339 as Docker reports it.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// `docker inspect <container>`, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The image ref from the container's config (`web:tilt-…`).
    pub image: String,
    /// `sha256:…`.
    pub image_id: String,
    pub state: ContainerState,
    /// `starting` / `healthy` / `unhealthy`; `None` when the container has no healthcheck.
    pub health: Option<String>,
    pub ports: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub restart_count: i64,
}

/// What to run (tests and simple tools; reconcilers do not create containers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    pub image: String,
    pub name: Option<String>,
    /// Overrides the image's CMD when non-empty.
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    /// Ports to publish; `host_port: None` picks a free port.
    pub ports: Vec<PortMapping>,
    /// Exec-form healthcheck test (`["CMD", …]` or `["CMD-SHELL", "…"]`) and interval.
    pub healthcheck: Option<(Vec<String>, std::time::Duration)>,
}

/// Which events to stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `key` / `key=value` label filters (all must hold).
    pub labels: Vec<(String, Option<String>)>,
    /// Only this container (ID or name).
    pub container: Option<String>,
    /// Unix seconds; replay events since then.
    pub since: Option<i64>,
}

impl EventFilter {
    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.labels.push((k.into(), Some(v.into())));
        self
    }
}

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    Create,
    Start,
    /// The main process exited.
    Die {
        exit_code: Option<i64>,
    },
    Stop,
    Kill,
    Restart,
    Destroy,
    Oom,
    /// `health_status: healthy|unhealthy|starting`.
    Health(String),
    /// Any other action, verbatim (`exec_start: …`, `attach`, `rename` …).
    Other(String),
}

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub container_id: String,
    pub kind: ContainerEventKind,
    /// Docker's raw action string.
    pub action: String,
    /// Actor attributes: labels plus `name`, `image`, `exitCode` …
    pub attributes: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub time_nanos: i64,
}

impl ContainerEventKind {
    /// Parse Docker's `Action` (`die`, `health_status: healthy` …).
    pub fn from_action(action: &str, attributes: &BTreeMap<String, String>) -> Self {
        if let Some(rest) = action.strip_prefix("health_status") {
            return ContainerEventKind::Health(rest.trim_start_matches(':').trim().to_string());
        }
        match action {
            "create" => ContainerEventKind::Create,
            "start" => ContainerEventKind::Start,
            "die" => ContainerEventKind::Die {
                exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            },
            "stop" => ContainerEventKind::Stop,
            "kill" => ContainerEventKind::Kill,
            "restart" => ContainerEventKind::Restart,
            "destroy" => ContainerEventKind::Destroy,
            "oom" => ContainerEventKind::Oom,
            other => ContainerEventKind::Other(other.to_string()),
        }
    }
}

/// Output stream of a log or exec line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    Stdout,
    Stderr,
}

/// One line of container logs (without the trailing newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: StdStream,
    /// RFC 3339 nano timestamp Docker prefixed the line with (when requested).
    pub timestamp: Option<String>,
    pub text: String,
}

/// Which logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    /// Unix seconds.
    pub since: Option<i64>,
    /// Number of last lines (`None` = all).
    pub tail: Option<u64>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            follow: true,
            timestamps: true,
            since: None,
            tail: None,
        }
    }
}

/// A command to run in a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// Bytes written to the process' stdin, which is then closed.
    pub stdin: Option<Bytes>,
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ExecRequest {
    pub fn new<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            cmd: cmd.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    pub fn stdin(mut self, bytes: impl Into<Bytes>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
}

/// One line of exec output, streamed as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    pub stream: StdStream,
    pub text: String,
}

/// The outcome of an exec. Output is collected as well as streamed (capped at
/// [`ExecOutput::CAP`] bytes per stream; `truncated` says when the cap was hit).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
}

impl ExecOutput {
    pub const CAP: usize = 4 << 20;

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// A kind of tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    Other,
}

/// One entry of an archive downloaded from (or built for) a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path as stored in the tar (relative, `/`-separated, no trailing slash).
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Unix seconds.
    pub mtime: u64,
    /// File contents (empty for non-files).
    pub data: Bytes,
}

/// Engine facts discovered at connect time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
    pub os: String,
    /// Whether BuildKit builds can be attempted.
    pub buildkit: bool,
}
