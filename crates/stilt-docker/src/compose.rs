//! Docker Compose, through its CLI (there is no Compose engine API).
//!
//! [`ComposeCli`] detects `docker compose` (v2) or `docker-compose` (v1; what Debian ships),
//! honouring `TILT_DOCKER_COMPOSE_CMD` / `STILT_DOCKER_COMPOSE_CMD`. `config` is parsed into
//! small normalized structs ([`ComposeProject`]); `up` injects Stilt-built image refs with a
//! generated override file; containers are discovered through the engine by the labels
//! `com.docker.compose.project` / `com.docker.compose.service` (so `ps` needs no CLI).
//! [`FakeCompose`] does the same against a [`FakeDocker`](crate::FakeDocker).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::client::DockerClient;
use crate::error::{DockerError, Result};
use crate::types::{ContainerFilter, ContainerSpec, LineSink, PortMapping};

/// Label compose puts on containers: project name.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// Label compose puts on containers: service name.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// Label compose puts on containers: `True` for `run` containers.
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";

/// Which compose CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeFlavor {
    /// `docker compose` (the v2 plugin).
    V2,
    /// `docker-compose` (the v1 Python tool).
    V1,
}

/// Which project (the `docker_compose()` Tiltfile call's arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeProjectSpec {
    pub config_paths: Vec<PathBuf>,
    /// Empty = compose's default (normalized name of the first file's directory).
    pub project_name: String,
    /// Defaults to the first file's directory.
    pub project_dir: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    pub profiles: Vec<String>,
}

impl ComposeProjectSpec {
    pub fn new(config_path: impl Into<PathBuf>) -> Self {
        ComposeProjectSpec {
            config_paths: vec![config_path.into()],
            ..Default::default()
        }
    }

    pub fn project_name(mut self, name: impl Into<String>) -> Self {
        self.project_name = name.into();
        self
    }

    /// The directory relative paths resolve against.
    pub fn effective_dir(&self) -> PathBuf {
        if let Some(d) = &self.project_dir {
            return d.clone();
        }
        self.config_paths
            .first()
            .and_then(|p| p.parent())
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The project name passed to every command (so all commands and label lookups agree):
    /// the explicit name, else `$COMPOSE_PROJECT_NAME`, else the directory's name normalized
    /// as compose does (lowercase, only `a-z0-9_-`).
    pub fn effective_name(&self) -> String {
        let raw = if !self.project_name.is_empty() {
            self.project_name.clone()
        } else if let Ok(n) = std::env::var("COMPOSE_PROJECT_NAME")
            && !n.is_empty()
        {
            n
        } else {
            let dir = self.effective_dir();
            let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
            abs.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        normalize_project_name(&raw)
    }
}

/// Compose's project-name normalization: lowercase, keep `a-z 0-9 _ -`.
pub fn normalize_project_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect()
}

/// A normalized project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeProject {
    pub name: String,
    pub services: BTreeMap<String, ComposeService>,
}

/// A service, reduced to what Stilt needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeService {
    pub name: String,
    pub image: Option<String>,
    pub build: Option<ComposeBuild>,
    pub ports: Vec<ComposePort>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<ComposeHealthcheck>,
    pub container_name: Option<String>,
}

/// `build:` of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeBuild {
    /// Absolute (resolved against the project directory).
    pub context: PathBuf,
    /// Relative to `context`, as written (`None` = `Dockerfile`).
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
}

/// A port mapping of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposePort {
    pub target: u16,
    /// `None` = not published, or published on a random host port.
    pub published: Option<u16>,
    pub host_ip: Option<String>,
    pub protocol: String,
}

/// `healthcheck:` of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeHealthcheck {
    /// Normalized to exec form: `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u64>,
    pub disable: bool,
}

/// A container of the project, found by labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub project: String,
    pub image: String,
    pub state: String,
    pub status: String,
}

/// How to bring a service up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// service → image ref built by Stilt; written to an override file so compose uses it.
    pub images: BTreeMap<String, String>,
    /// Run `compose build <service>` first (a `build:` service no Stilt image covers).
    pub build: bool,
    /// `--wait` (v2 only; v1 has no such flag and it is skipped with a note).
    pub wait: bool,
}

/// Everything Stilt asks of Docker Compose. Object-safe.
#[async_trait]
pub trait ComposeClient: Send + Sync {
    /// Which CLI is in use.
    fn flavor(&self) -> ComposeFlavor;

    /// Load and normalize the project (`compose config`).
    async fn config(&self, project: &ComposeProjectSpec) -> Result<ComposeProject>;

    /// `up -d --no-deps --no-build <service>` (after an optional `build`), with Stilt's images.
    async fn up(
        &self,
        project: &ComposeProjectSpec,
        service: &str,
        opts: &UpOptions,
        output: Option<LineSink>,
    ) -> Result<()>;

    /// Stop and remove the containers of some services (`rm --stop --force`).
    async fn rm(
        &self,
        project: &ComposeProjectSpec,
        services: &[String],
        output: Option<LineSink>,
    ) -> Result<()>;

    /// `down` the whole project; `remove_volumes` also removes its named volumes (`down -v`).
    async fn down(
        &self,
        project: &ComposeProjectSpec,
        remove_volumes: bool,
        output: Option<LineSink>,
    ) -> Result<()>;

    /// The project's containers (all states), by labels.
    async fn ps(&self, project: &ComposeProjectSpec) -> Result<Vec<ComposeContainer>>;
}

// ---------------------------------------------------------------------------------------------
// Parsing (shared by the CLI wrapper and the fake).

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kv_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                out.insert(k.clone(), scalar_string(v).unwrap_or_default());
            }
        }
        Some(Value::Array(items)) => {
            for it in items {
                if let Some(s) = scalar_string(it) {
                    let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
        _ => {}
    }
    out
}

fn parse_port_range(s: &str) -> Result<Vec<u16>> {
    let bad = || DockerError::Other(format!("invalid port {s:?}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            Ok((a..=b).collect())
        }
        None => Ok(vec![s.parse().map_err(|_| bad())?]),
    }
}

/// Parse compose's short port syntax: `[[ip:]published:]target[/proto]` (ranges expand).
pub fn parse_short_port(spec: &str) -> Result<Vec<ComposePort>> {
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (front, target) = match rest.rsplit_once(':') {
        Some((f, t)) => (Some(f), t),
        None => (None, rest),
    };
    let (host_ip, published) = match front {
        None => (None, None),
        Some(f) => match f.rsplit_once(':') {
            Some((ip, p)) => (
                Some(ip.trim_matches(|c| c == '[' || c == ']').to_string()),
                Some(p),
            ),
            None => (None, Some(f)),
        },
    };
    let targets = parse_port_range(target)?;
    let published: Vec<Option<u16>> = match published.filter(|p| !p.is_empty()) {
        None => vec![None; targets.len()],
        Some(p) => {
            let ps = parse_port_range(p)?;
            if ps.len() == targets.len() {
                ps.into_iter().map(Some).collect()
            } else {
                vec![None; targets.len()]
            }
        }
    };
    Ok(targets
        .into_iter()
        .zip(published)
        .map(|(target, published)| ComposePort {
            target,
            published,
            host_ip: host_ip.clone().filter(|s| !s.is_empty()),
            protocol: proto.to_string(),
        })
        .collect())
}

fn parse_ports(v: Option<&Value>) -> Result<Vec<ComposePort>> {
    let mut out = Vec::new();
    let Some(Value::Array(items)) = v else {
        return Ok(out);
    };
    for it in items {
        match it {
            Value::String(s) => out.extend(parse_short_port(s)?),
            Value::Number(n) => out.extend(parse_short_port(&n.to_string())?),
            Value::Object(m) => {
                let target = m
                    .get("target")
                    .and_then(scalar_string)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| DockerError::Other(format!("port without target: {it}")))?;
                out.push(ComposePort {
                    target,
                    published: m
                        .get("published")
                        .and_then(scalar_string)
                        .and_then(|s| s.parse().ok()),
                    host_ip: m
                        .get("host_ip")
                        .and_then(scalar_string)
                        .filter(|s| !s.is_empty()),
                    protocol: m
                        .get("protocol")
                        .and_then(scalar_string)
                        .unwrap_or_else(|| "tcp".into()),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parse_healthcheck(v: Option<&Value>) -> Option<ComposeHealthcheck> {
    let m = v?.as_object()?;
    let test = match m.get("test") {
        Some(Value::String(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(scalar_string).collect(),
        _ => Vec::new(),
    };
    Some(ComposeHealthcheck {
        test,
        interval: m.get("interval").and_then(scalar_string),
        timeout: m.get("timeout").and_then(scalar_string),
        start_period: m.get("start_period").and_then(scalar_string),
        retries: m.get("retries").and_then(Value::as_u64),
        disable: m.get("disable").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        let joined = base.join(pb);
        std::fs::canonicalize(&joined).unwrap_or(joined)
    }
}

/// Parse `compose config` output (v1 YAML or v2 JSON; also raw compose files) into a project.
/// Relative build contexts resolve against `base_dir`.
pub fn parse_config(text: &str, project_name: &str, base_dir: &Path) -> Result<ComposeProject> {
    let doc: Value = serde_saphyr::from_str(text)
        .map_err(|e| DockerError::Other(format!("parsing compose config: {e}")))?;
    let mut project = ComposeProject {
        name: doc
            .get("name")
            .and_then(scalar_string)
            .unwrap_or_else(|| project_name.to_string()),
        services: BTreeMap::new(),
    };
    let Some(Value::Object(services)) = doc.get("services") else {
        return Ok(project);
    };
    for (name, svc) in services {
        let build = match svc.get("build") {
            Some(Value::String(ctx)) => Some(ComposeBuild {
                context: resolve(base_dir, ctx),
                ..Default::default()
            }),
            Some(Value::Object(b)) => Some(ComposeBuild {
                context: resolve(
                    base_dir,
                    &b.get("context")
                        .and_then(scalar_string)
                        .unwrap_or(".".into()),
                ),
                dockerfile: b.get("dockerfile").and_then(scalar_string),
                target: b.get("target").and_then(scalar_string),
                args: kv_map(b.get("args")),
            }),
            _ => None,
        };
        project.services.insert(
            name.clone(),
            ComposeService {
                name: name.clone(),
                image: svc.get("image").and_then(scalar_string),
                build,
                ports: parse_ports(svc.get("ports"))?,
                labels: kv_map(svc.get("labels")),
                healthcheck: parse_healthcheck(svc.get("healthcheck")),
                container_name: svc.get("container_name").and_then(scalar_string),
            },
        );
    }
    Ok(project)
}

/// Merge `overlay` into `base` the way multiple `-f` files combine (service fields replace).
fn merge_projects(base: &mut ComposeProject, overlay: ComposeProject) {
    for (name, s) in overlay.services {
        match base.services.get_mut(&name) {
            None => {
                base.services.insert(name, s);
            }
            Some(b) => {
                if s.image.is_some() {
                    b.image = s.image;
                }
                if s.build.is_some() {
                    b.build = s.build;
                }
                if !s.ports.is_empty() {
                    b.ports.extend(s.ports);
                }
                b.labels.extend(s.labels);
                if s.healthcheck.is_some() {
                    b.healthcheck = s.healthcheck;
                }
                if s.container_name.is_some() {
                    b.container_name = s.container_name;
                }
            }
        }
    }
}

/// The override file that makes compose run Stilt's images.
pub fn override_yaml(images: &BTreeMap<String, String>) -> String {
    let mut s = String::from("services:\n");
    for (svc, image) in images {
        s.push_str(&format!(
            "  {}:\n    image: {}\n",
            serde_json::to_string(svc).unwrap_or_default(),
            serde_json::to_string(image).unwrap_or_default()
        ));
    }
    s
}

async fn discover(
    docker: &dyn DockerClient,
    project: &str,
    service: Option<&str>,
) -> Result<Vec<ComposeContainer>> {
    let mut f = ContainerFilter::default()
        .label(LABEL_PROJECT, project)
        .all(true);
    if let Some(s) = service {
        f = f.label(LABEL_SERVICE, s);
    }
    let mut out: Vec<ComposeContainer> = docker
        .list_containers(&f)
        .await?
        .into_iter()
        .filter(|c| c.labels.get(LABEL_ONEOFF).is_none_or(|v| v != "True"))
        .map(|c| ComposeContainer {
            service: c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            project: project.to_string(),
            name: c.names.first().cloned().unwrap_or_default(),
            id: c.id,
            image: c.image,
            state: c.state,
            status: c.status,
        })
        .collect();
    out.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The CLI wrapper.

/// Compose through its CLI; containers through the engine.
pub struct ComposeCli {
    program: Vec<String>,
    flavor: ComposeFlavor,
    docker: Arc<dyn DockerClient>,
    /// One `up` at a time (Tilt serializes them too).
    up_lock: tokio::sync::Mutex<()>,
}

async fn runs_ok(program: &[&str]) -> bool {
    tokio::process::Command::new(program[0])
        .args(&program[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

impl ComposeCli {
    /// Detect the CLI: `$STILT_DOCKER_COMPOSE_CMD` / `$TILT_DOCKER_COMPOSE_CMD` (whitespace-split;
    /// v1 when its last word is `docker-compose`), else `docker compose` if it answers
    /// `version`, else `docker-compose`.
    pub async fn detect(docker: Arc<dyn DockerClient>) -> Result<Self> {
        for var in ["STILT_DOCKER_COMPOSE_CMD", "TILT_DOCKER_COMPOSE_CMD"] {
            if let Ok(cmd) = std::env::var(var)
                && !cmd.trim().is_empty()
            {
                let program: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                let flavor = if program
                    .last()
                    .is_some_and(|p| p.ends_with("docker-compose"))
                {
                    ComposeFlavor::V1
                } else {
                    ComposeFlavor::V2
                };
                return Ok(Self::with_program(program, flavor, docker));
            }
        }
        if runs_ok(&["docker", "compose", "version"]).await {
            return Ok(Self::with_program(
                vec!["docker".into(), "compose".into()],
                ComposeFlavor::V2,
                docker,
            ));
        }
        if runs_ok(&["docker-compose", "version"]).await {
            return Ok(Self::with_program(
                vec!["docker-compose".into()],
                ComposeFlavor::V1,
                docker,
            ));
        }
        Err(DockerError::Unavailable(
            "neither `docker compose` nor `docker-compose` is installed".into(),
        ))
    }

    pub fn with_program(
        program: Vec<String>,
        flavor: ComposeFlavor,
        docker: Arc<dyn DockerClient>,
    ) -> Self {
        ComposeCli {
            program,
            flavor,
            docker,
            up_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn base_args(&self, p: &ComposeProjectSpec, extra_files: &[PathBuf]) -> Vec<String> {
        let mut a = vec![
            "--project-name".to_string(),
            p.effective_name(),
            "--project-directory".to_string(),
            p.effective_dir().to_string_lossy().into_owned(),
        ];
        for f in p.config_paths.iter().chain(extra_files) {
            a.push("-f".into());
            a.push(f.to_string_lossy().into_owned());
        }
        if let Some(e) = &p.env_file {
            a.push("--env-file".into());
            a.push(e.to_string_lossy().into_owned());
        }
        for prof in &p.profiles {
            a.push("--profile".into());
            a.push(prof.clone());
        }
        a
    }

    /// Run the CLI; stream stdout+stderr lines to `output`; return stdout.
    async fn run(&self, args: Vec<String>, output: Option<&LineSink>) -> Result<String> {
        let display = format!("{} {}", self.program.join(" "), args.join(" "));
        let mut child = tokio::process::Command::new(&self.program[0])
            .args(&self.program[1..])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DockerError::io(format!("running {display}"), e))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        async fn pump(
            r: impl AsyncRead + Unpin,
            sink: Option<LineSink>,
        ) -> std::io::Result<Vec<String>> {
            let mut lines = BufReader::new(r).lines();
            let mut all = Vec::new();
            while let Some(l) = lines.next_line().await? {
                if let Some(s) = &sink {
                    let _ = s.send(l.clone()).await;
                }
                all.push(l);
            }
            Ok(all)
        }
        let (out, err) = tokio::join!(pump(stdout, output.cloned()), pump(stderr, output.cloned()));
        let status = child
            .wait()
            .await
            .map_err(|e| DockerError::io(format!("waiting for {display}"), e))?;
        let out = out.map_err(|e| DockerError::io(format!("reading {display}"), e))?;
        let err = err.map_err(|e| DockerError::io(format!("reading {display}"), e))?;
        if !status.success() {
            return Err(DockerError::Compose {
                command: display,
                code: status.code(),
                stderr: err.join("\n"),
            });
        }
        Ok(out.join("\n"))
    }

    fn override_path(p: &ComposeProjectSpec, service: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "stilt-compose-{}-{}-{}.override.yml",
            p.effective_name(),
            normalize_project_name(service),
            std::process::id()
        ))
    }
}

#[async_trait]
impl ComposeClient for ComposeCli {
    fn flavor(&self) -> ComposeFlavor {
        self.flavor.clone()
    }

    async fn config(&self, project: &ComposeProjectSpec) -> Result<ComposeProject> {
        let mut args = self.base_args(project, &[]);
        args.push("config".into());
        if self.flavor == ComposeFlavor::V2 {
            args.push("--format".into());
            args.push("json".into());
        }
        let out = self.run(args, None).await?;
        parse_config(&out, &project.effective_name(), &project.effective_dir())
    }

    async fn up(
        &self,
        project: &ComposeProjectSpec,
        service: &str,
        opts: &UpOptions,
        output: Option<LineSink>,
    ) -> Result<()> {
        let _g = self.up_lock.lock().await;
        let mut extra = Vec::new();
        let images: BTreeMap<String, String> = opts
            .images
            .iter()
            .filter(|(s, _)| s.as_str() == service)
            .map(|(s, i)| (s.clone(), i.clone()))
            .collect();
        let override_file = if images.is_empty() {
            None
        } else {
            let path = Self::override_path(project, service);
            tokio::fs::write(&path, override_yaml(&images))
                .await
                .map_err(|e| DockerError::io(format!("writing {}", path.display()), e))?;
            extra.push(path.clone());
            Some(path)
        };
        let result = async {
            if opts.build {
                let mut args = self.base_args(project, &extra);
                args.extend(["build".to_string(), service.to_string()]);
                self.run(args, output.as_ref()).await?;
            }
            let mut args = self.base_args(project, &extra);
            args.extend(["up", "-d", "--no-deps", "--no-build"].map(String::from));
            if opts.wait {
                if self.flavor == ComposeFlavor::V2 {
                    args.push("--wait".into());
                } else if let Some(o) = &output {
                    let _ = o
                        .send("note: docker-compose v1 has no --wait; not waiting".into())
                        .await;
                }
            }
            args.push(service.to_string());
            self.run(args, output.as_ref()).await.map(|_| ())
        }
        .await;
        if let Some(p) = override_file {
            let _ = tokio::fs::remove_file(p).await;
        }
        result
    }

    async fn rm(
        &self,
        project: &ComposeProjectSpec,
        services: &[String],
        output: Option<LineSink>,
    ) -> Result<()> {
        let mut args = self.base_args(project, &[]);
        args.extend(["rm", "--stop", "--force"].map(String::from));
        args.extend(services.iter().cloned());
        self.run(args, output.as_ref()).await.map(|_| ())
    }

    async fn down(
        &self,
        project: &ComposeProjectSpec,
        remove_volumes: bool,
        output: Option<LineSink>,
    ) -> Result<()> {
        let mut args = self.base_args(project, &[]);
        args.extend(["down", "--remove-orphans"].map(String::from));
        if remove_volumes {
            args.push("--volumes".into());
        }
        self.run(args, output.as_ref()).await.map(|_| ())
    }

    async fn ps(&self, project: &ComposeProjectSpec) -> Result<Vec<ComposeContainer>> {
        discover(self.docker.as_ref(), &project.effective_name(), None).await
    }
}

// ---------------------------------------------------------------------------------------------
// The fake.

/// In-memory compose over a [`FakeDocker`](crate::FakeDocker): `config` parses the files
/// themselves (same parser), `up` creates and starts a labelled fake container, `down`/`rm`
/// remove them. Records every call.
#[derive(Clone)]
pub struct FakeCompose {
    docker: crate::FakeDocker,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeCompose {
    pub fn new(docker: crate::FakeDocker) -> Self {
        FakeCompose {
            docker,
            calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, s: String) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    fn load(&self, p: &ComposeProjectSpec) -> Result<ComposeProject> {
        let name = p.effective_name();
        let dir = p.effective_dir();
        let mut project = ComposeProject {
            name: name.clone(),
            services: BTreeMap::new(),
        };
        for f in &p.config_paths {
            let text = std::fs::read_to_string(f)
                .map_err(|e| DockerError::io(format!("reading {}", f.display()), e))?;
            merge_projects(&mut project, parse_config(&text, &name, &dir)?);
        }
        project.name = name;
        Ok(project)
    }
}

#[async_trait]
impl ComposeClient for FakeCompose {
    fn flavor(&self) -> ComposeFlavor {
        ComposeFlavor::V2
    }

    async fn config(&self, project: &ComposeProjectSpec) -> Result<ComposeProject> {
        self.record(format!("config {}", project.effective_name()));
        self.load(project)
    }

    async fn up(
        &self,
        project: &ComposeProjectSpec,
        service: &str,
        opts: &UpOptions,
        output: Option<LineSink>,
    ) -> Result<()> {
        self.record(format!("up {} {service}", project.effective_name()));
        let p = self.load(project)?;
        let svc = p
            .services
            .get(service)
            .ok_or_else(|| DockerError::Compose {
                command: format!("up {service}"),
                code: Some(1),
                stderr: format!("no such service: {service}"),
            })?;
        let image = opts
            .images
            .get(service)
            .cloned()
            .or_else(|| svc.image.clone())
            .unwrap_or_else(|| format!("{}-{service}", p.name));
        if opts.build && !opts.images.contains_key(service) {
            self.docker.add_image(&image);
        }
        // Recreate: compose replaces the service's container.
        for c in discover(&self.docker, &p.name, Some(service)).await? {
            self.docker.remove_container(&c.id, true).await?;
        }
        let mut labels = svc.labels.clone();
        labels.insert(LABEL_PROJECT.into(), p.name.clone());
        labels.insert(LABEL_SERVICE.into(), service.to_string());
        labels.insert(LABEL_ONEOFF.into(), "False".into());
        let spec = ContainerSpec {
            image,
            name: Some(
                svc.container_name
                    .clone()
                    .unwrap_or_else(|| format!("{}-{service}-1", p.name)),
            ),
            labels,
            ports: svc
                .ports
                .iter()
                .map(|p| PortMapping {
                    container_port: p.target,
                    protocol: p.protocol.clone(),
                    host_ip: p.host_ip.clone(),
                    host_port: p.published,
                })
                .collect(),
            ..Default::default()
        };
        let id = self.docker.create_container(&spec).await?;
        self.docker.start_container(&id).await?;
        if let Some(o) = output {
            let _ = o
                .send(format!("Started {}", spec.name.unwrap_or_default()))
                .await;
        }
        Ok(())
    }

    async fn rm(
        &self,
        project: &ComposeProjectSpec,
        services: &[String],
        _output: Option<LineSink>,
    ) -> Result<()> {
        self.record(format!(
            "rm {} {}",
            project.effective_name(),
            services.join(" ")
        ));
        for s in services {
            for c in discover(&self.docker, &project.effective_name(), Some(s)).await? {
                self.docker.remove_container(&c.id, true).await?;
            }
        }
        Ok(())
    }

    async fn down(
        &self,
        project: &ComposeProjectSpec,
        remove_volumes: bool,
        _output: Option<LineSink>,
    ) -> Result<()> {
        let volumes = if remove_volumes { " -v" } else { "" };
        self.record(format!("down{volumes} {}", project.effective_name()));
        for c in discover(&self.docker, &project.effective_name(), None).await? {
            self.docker.remove_container(&c.id, true).await?;
        }
        Ok(())
    }

    async fn ps(&self, project: &ComposeProjectSpec) -> Result<Vec<ComposeContainer>> {
        discover(&self.docker, &project.effective_name(), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports() {
        let p = parse_short_port("127.0.0.1:18080:8000/tcp").unwrap();
        assert_eq!(
            p,
            vec![ComposePort {
                target: 8000,
                published: Some(18080),
                host_ip: Some("127.0.0.1".into()),
                protocol: "tcp".into()
            }]
        );
        let p = parse_short_port("9000").unwrap();
        assert_eq!(
            (p[0].target, p[0].published, p[0].host_ip.clone()),
            (9000, None, None)
        );
        let p = parse_short_port("127.0.0.1::8000").unwrap();
        assert_eq!(
            (p[0].published, p[0].host_ip.as_deref()),
            (None, Some("127.0.0.1"))
        );
        let p = parse_short_port("3000-3001:4000-4001/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[1].target, p[1].published, p[1].protocol.as_str()),
            (4001, Some(3001), "udp")
        );
        assert!(parse_short_port("x:y").is_err());
    }

    // What docker-compose 1.29 `config` printed for a sample project (see the contract test).
    const V1_CONFIG: &str = r#"services:
  other:
    command: sleep 1000
    healthcheck:
      test: test -e /
    image: stilt-test/busybox:latest
    labels:
      x: "y"
  web:
    build:
      args:
        A: '1'
      context: /tmp/cp/web
      dockerfile: Dockerfile
    healthcheck:
      interval: 1s
      test:
      - CMD
      - test
      - -e
      - /www/index.html
    image: stilt-compose-web
    labels:
      app: web
    ports:
    - 127.0.0.1:18080:8000/tcp
    - target: 9000
version: '3.9'
"#;

    // The shape `docker compose config --format json` (v2) prints.
    const V2_CONFIG: &str = r#"{"name":"cp","services":{"web":{"build":{"context":"/tmp/cp/web","dockerfile":"Dockerfile","args":{"A":"1"}},
      "image":"stilt-compose-web","labels":{"app":"web"},
      "ports":[{"mode":"ingress","host_ip":"127.0.0.1","target":8000,"published":"18080","protocol":"tcp"},{"mode":"ingress","target":9000,"protocol":"tcp"}],
      "healthcheck":{"test":["CMD","test","-e","/www/index.html"],"interval":"1s"}},
      "other":{"image":"stilt-test/busybox:latest","labels":{"x":"y"},"healthcheck":{"test":["CMD-SHELL","test -e /"]}}}}"#;

    #[test]
    fn v1_and_v2_config_normalize_the_same() {
        let a = parse_config(V1_CONFIG, "cp", Path::new("/tmp/cp")).unwrap();
        let b = parse_config(V2_CONFIG, "ignored", Path::new("/tmp/cp")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name, "cp");
        let web = &a.services["web"];
        assert_eq!(web.image.as_deref(), Some("stilt-compose-web"));
        let build = web.build.as_ref().unwrap();
        assert_eq!(build.context, PathBuf::from("/tmp/cp/web"));
        assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile"));
        assert_eq!(build.args.get("A").map(String::as_str), Some("1"));
        assert_eq!(web.ports.len(), 2);
        assert_eq!(web.ports[0].published, Some(18080));
        assert_eq!(web.ports[1].target, 9000);
        assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            web.healthcheck.as_ref().unwrap().test,
            vec!["CMD", "test", "-e", "/www/index.html"]
        );
        assert_eq!(
            a.services["other"].healthcheck.as_ref().unwrap().test,
            vec!["CMD-SHELL", "test -e /"]
        );
    }

    #[test]
    fn raw_files_with_list_labels_and_relative_context() {
        let raw = "services:\n  api:\n    build: ./api\n    labels: [\"a=b\", \"c\"]\n    ports: [8080]\n";
        let p = parse_config(raw, "proj", Path::new("/nonexistent/base")).unwrap();
        let api = &p.services["api"];
        assert_eq!(
            api.build.as_ref().unwrap().context,
            PathBuf::from("/nonexistent/base/api")
        );
        assert_eq!(api.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(api.labels.get("c").map(String::as_str), Some(""));
        assert_eq!(api.ports[0].target, 8080);
    }

    #[test]
    fn project_names_normalize() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        let spec = ComposeProjectSpec::new("/tmp/Some Dir/docker-compose.yml");
        assert_eq!(spec.effective_dir(), PathBuf::from("/tmp/Some Dir"));
        assert_eq!(spec.clone().project_name("X_y").effective_name(), "x_y");
    }

    #[test]
    fn override_file_is_valid_yaml() {
        let mut m = BTreeMap::new();
        m.insert("web".to_string(), "web:tilt-0123456789abcdef".to_string());
        let y = override_yaml(&m);
        let p = parse_config(&y, "p", Path::new("/")).unwrap();
        assert_eq!(
            p.services["web"].image.as_deref(),
            Some("web:tilt-0123456789abcdef")
        );
    }
}
