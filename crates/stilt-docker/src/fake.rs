//! [`FakeDocker`]: an in-memory [`DockerClient`] for reconcilers' unit tests.
//!
//! It keeps images (content-addressed IDs computed from the context's paths, modes and bytes,
//! so an unchanged context gets the same `tilt-<hash>` tag, as with a warm Docker cache),
//! containers with an in-memory filesystem (upload/download archives land there), an event
//! log, log lines, and a record of every call. Exec runs a few builtins against that
//! filesystem (`cat`, `rm -rf`, `test -e|-f|-d`, `ls`, `echo`, `mkdir -p`, `true`, `false`,
//! `sh -c 'exit N'`) unless a handler is installed with [`FakeDocker::set_exec_handler`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> stilt_docker::Result<()> {
//! use std::sync::Arc;
//! use stilt_docker::*;
//!
//! let fake = FakeDocker::new();
//! fake.add_image("busybox:latest");
//! let docker: Arc<dyn DockerClient> = Arc::new(fake.clone()); // what the reconciler gets
//!
//! let id = docker
//!     .create_container(&ContainerSpec { image: "busybox".into(), ..Default::default() })
//!     .await?;
//! docker.start_container(&id).await?;
//! let tar = tar_from_bytes(&[("/app/main.py", 0o644, b"print(1)".as_slice())])?;
//! docker.upload_archive(&id, "/", tar).await?;
//!
//! // Assertions on what the code under test did:
//! assert_eq!(fake.with_fs(&id, |fs| fs.read("/app/main.py"))?.unwrap(), "print(1)");
//! assert!(fake.calls().iter().any(|c| c.starts_with("upload_archive")));
//! fake.crash(&id, 137)?; // and drive events: `die` with exitCode 137
//! assert!(!docker.inspect_container(&id).await?.state.running);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{broadcast, mpsc};

use crate::client::{AttachedExec, DockerClient, EventStream, LogStream};
use crate::error::{DockerError, Result};
use crate::lines::LineSplitter;
use crate::tag::{ref_without_tag, tilt_tagged_ref};
use crate::tarball::{self, read_tar};
use crate::types::*;

/// A scripted exec: gets the container's filesystem and the request, returns the output.
pub type FakeExecHandler =
    Arc<dyn Fn(&mut FakeFs, &ExecRequest) -> Option<ExecOutput> + Send + Sync>;

/// Plays the process of an attached exec ([`DockerClient::exec_attach`]): gets the request and
/// the container side of the stdio pipe (reads = the process' stdin, writes = its stdout) and
/// returns the exit code. The default echoes stdin to stdout (`cat`) and exits 0.
pub type FakeAttachHandler = Arc<
    dyn Fn(ExecRequest, tokio::io::DuplexStream) -> futures_util::future::BoxFuture<'static, i64>
        + Send
        + Sync,
>;

/// A node of a fake container filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeNode {
    File { data: Bytes, mode: u32 },
    Dir { mode: u32 },
    Symlink(String),
}

/// A fake container's filesystem: absolute path → node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeFs {
    pub nodes: BTreeMap<String, FakeNode>,
}

impl FakeFs {
    fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), FakeNode::Dir { mode: 0o755 });
        FakeFs { nodes }
    }

    fn norm(path: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for seg in path.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        format!("/{}", parts.join("/"))
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut cur = String::new();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for s in &segs[..segs.len().saturating_sub(1)] {
            cur.push('/');
            cur.push_str(s);
            self.nodes
                .entry(cur.clone())
                .or_insert(FakeNode::Dir { mode: 0o755 });
        }
    }

    /// Write a file (parents are created).
    pub fn write(&mut self, path: &str, data: impl Into<Bytes>, mode: u32) {
        let p = Self::norm(path);
        self.ensure_parents(&p);
        self.nodes.insert(
            p,
            FakeNode::File {
                data: data.into(),
                mode,
            },
        );
    }

    /// File contents, if `path` is a file.
    pub fn read(&self, path: &str) -> Option<Bytes> {
        match self.nodes.get(&Self::norm(path)) {
            Some(FakeNode::File { data, .. }) => Some(data.clone()),
            _ => None,
        }
    }

    pub fn exists(&self, path: &str) -> bool {
        self.nodes.contains_key(&Self::norm(path))
    }

    /// Remove `path` and everything under it; false if nothing was there.
    pub fn remove_all(&mut self, path: &str) -> bool {
        let p = Self::norm(path);
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        let before = self.nodes.len();
        self.nodes.retain(|k, _| k != &p && !k.starts_with(&prefix));
        self.nodes.len() != before
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let p = Self::norm(dir);
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        self.nodes
            .keys()
            .filter(|k| k.starts_with(&prefix) && k.len() > prefix.len())
            .filter(|k| !k[prefix.len()..].contains('/'))
            .map(|k| k[prefix.len()..].to_string())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct FakeImage {
    id: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    id: String,
    name: String,
    spec: ContainerSpec,
    image_id: String,
    state: ContainerState,
    health: Option<String>,
    ports: Vec<PortMapping>,
    fs: FakeFs,
    logs: Vec<LogLine>,
    restart_count: i64,
}

/// What a container "prints" when it starts (the fake's stand-in for running its command).
pub type FakeStartHook = Arc<dyn Fn(&ContainerSpec) -> Vec<(StdStream, String)> + Send + Sync>;

#[derive(Default)]
struct State {
    images: BTreeMap<String, FakeImage>,
    /// ref (with tag) → image ID
    tags: BTreeMap<String, String>,
    containers: BTreeMap<String, FakeContainer>,
    events: Vec<ContainerEvent>,
    calls: Vec<String>,
    next_id: u64,
    next_port: u16,
    exec_handler: Option<FakeExecHandler>,
    attach_handler: Option<FakeAttachHandler>,
    start_hook: Option<FakeStartHook>,
    build_error: Option<String>,
    push_error: Option<String>,
    pushed: Vec<String>,
}

/// In-memory Docker engine. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeDocker {
    st: Arc<Mutex<State>>,
    events_tx: broadcast::Sender<ContainerEvent>,
    logs_tx: broadcast::Sender<(String, LogLine)>,
}

impl Default for FakeDocker {
    fn default() -> Self {
        Self::new()
    }
}

const KNOWN_INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Docker's classic parser message for an unknown instruction, reproduced.
fn check_dockerfile(text: &str) -> std::result::Result<(), String> {
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if continued {
            continued = t.ends_with('\\');
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        continued = t.ends_with('\\');
        let word = t.split_whitespace().next().unwrap_or("");
        if !KNOWN_INSTRUCTIONS.contains(&word.to_ascii_uppercase().as_str()) {
            return Err(format!(
                "dockerfile parse error line {}: unknown instruction: {}",
                i + 1,
                word.to_ascii_uppercase()
            ));
        }
    }
    Ok(())
}

fn fake_digest(parts: &[&[u8]]) -> String {
    let mut hex = String::from("sha256:");
    for seed in 0..4u64 {
        let mut h = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for p in parts {
            h = tarball::fnv1a64(h, p);
            h = tarball::fnv1a64(h, &(p.len() as u64).to_le_bytes());
        }
        hex.push_str(&format!("{h:016x}"));
    }
    hex
}

impl FakeDocker {
    pub fn new() -> Self {
        let (events_tx, _) = broadcast::channel(1024);
        let (logs_tx, _) = broadcast::channel(1024);
        FakeDocker {
            st: Arc::new(Mutex::new(State {
                next_port: 32768,
                ..Default::default()
            })),
            events_tx,
            logs_tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call made, one line each (`build web`, `exec <id> cat /a`, `upload_archive <id> /`…).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Refs pushed so far.
    pub fn pushed(&self) -> Vec<String> {
        self.lock().pushed.clone()
    }

    /// Make the next builds fail with this message (`None` to clear).
    pub fn set_build_error(&self, msg: Option<&str>) {
        self.lock().build_error = msg.map(str::to_string);
    }

    /// Make pushes fail with this message (`None` to clear).
    pub fn set_push_error(&self, msg: Option<&str>) {
        self.lock().push_error = msg.map(str::to_string);
    }

    /// Handle execs before the builtins; return `None` to fall through to them.
    pub fn set_exec_handler(
        &self,
        f: impl Fn(&mut FakeFs, &ExecRequest) -> Option<ExecOutput> + Send + Sync + 'static,
    ) {
        self.lock().exec_handler = Some(Arc::new(f));
    }

    /// Play the process behind [`DockerClient::exec_attach`] (e.g. an in-container helper).
    pub fn set_attach_handler<F, Fut>(&self, f: F)
    where
        F: Fn(ExecRequest, tokio::io::DuplexStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = i64> + Send + 'static,
    {
        use futures_util::FutureExt;
        self.lock().attach_handler = Some(Arc::new(move |r, io| f(r, io).boxed()));
    }

    /// Lines a container "prints" whenever it starts.
    pub fn set_start_hook(
        &self,
        f: impl Fn(&ContainerSpec) -> Vec<(StdStream, String)> + Send + Sync + 'static,
    ) {
        self.lock().start_hook = Some(Arc::new(f));
    }

    /// Register an image (e.g. a base image) under `image_ref`; returns its ID.
    pub fn add_image(&self, image_ref: &str) -> String {
        let id = fake_digest(&[b"image", image_ref.as_bytes()]);
        let mut st = self.lock();
        st.images.insert(
            id.clone(),
            FakeImage {
                id: id.clone(),
                labels: BTreeMap::new(),
            },
        );
        st.tags.insert(normalize_ref(image_ref), id.clone());
        id
    }

    /// Read or modify a container's filesystem directly.
    pub fn with_fs<R>(&self, container: &str, f: impl FnOnce(&mut FakeFs) -> R) -> Result<R> {
        let mut st = self.lock();
        let id = resolve_container(&st, container)?;
        Ok(f(&mut st.containers.get_mut(&id).expect("resolved").fs))
    }

    /// Append a log line as if the container printed it.
    pub fn emit_log(&self, container: &str, stream: StdStream, text: &str) -> Result<()> {
        let mut st = self.lock();
        let id = resolve_container(&st, container)?;
        let line = LogLine {
            stream,
            timestamp: Some(fake_timestamp()),
            text: text.to_string(),
        };
        st.containers
            .get_mut(&id)
            .expect("resolved")
            .logs
            .push(line.clone());
        let _ = self.logs_tx.send((id, line));
        Ok(())
    }

    /// Set the health status (emits `health_status: <s>`).
    pub fn set_health(&self, container: &str, status: &str) -> Result<()> {
        let mut st = self.lock();
        let id = resolve_container(&st, container)?;
        st.containers.get_mut(&id).expect("resolved").health = Some(status.to_string());
        self.emit(&mut st, &id, &format!("health_status: {status}"), None);
        Ok(())
    }

    /// Simulate the main process exiting with `code` (emits `die`).
    pub fn crash(&self, container: &str, code: i64) -> Result<()> {
        let mut st = self.lock();
        let id = resolve_container(&st, container)?;
        self.finish(&mut st, &id, code);
        Ok(())
    }

    fn emit(&self, st: &mut State, id: &str, action: &str, exit_code: Option<i64>) {
        let Some(c) = st.containers.get(id) else {
            return;
        };
        let mut attributes = c.spec.labels.clone();
        attributes.insert("name".into(), c.name.clone());
        attributes.insert("image".into(), c.spec.image.clone());
        if let Some(code) = exit_code {
            attributes.insert("exitCode".into(), code.to_string());
        }
        let time_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let ev = ContainerEvent {
            container_id: id.to_string(),
            kind: ContainerEventKind::from_action(action, &attributes),
            action: action.to_string(),
            attributes,
            time_nanos,
        };
        st.events.push(ev.clone());
        let _ = self.events_tx.send(ev);
    }

    fn finish(&self, st: &mut State, id: &str, code: i64) {
        if let Some(c) = st.containers.get_mut(id) {
            if !c.state.running {
                return;
            }
            c.state.running = false;
            c.state.status = "exited".into();
            c.state.exit_code = Some(code);
            c.state.finished_at = Some(fake_timestamp());
        }
        self.emit(st, id, "die", Some(code));
    }

    fn start_locked(&self, st: &mut State, id: &str) -> Result<()> {
        let hook = st.start_hook.clone();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| DockerError::NotFound(format!("No such container: {id}")))?;
        if c.state.running {
            return Ok(());
        }
        c.state = ContainerState {
            status: "running".into(),
            running: true,
            exit_code: Some(0),
            started_at: Some(fake_timestamp()),
            ..Default::default()
        };
        if c.spec.healthcheck.is_some() {
            c.health = Some("starting".into());
        }
        let lines = hook.map(|h| h(&c.spec)).unwrap_or_default();
        for (stream, text) in lines {
            let line = LogLine {
                stream,
                timestamp: Some(fake_timestamp()),
                text,
            };
            c.logs.push(line.clone());
            let _ = self.logs_tx.send((id.to_string(), line));
        }
        self.emit(st, id, "start", None);
        Ok(())
    }
}

fn fake_timestamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Not calendar-accurate; only its shape matters to consumers of the fake.
    format!(
        "1970-01-01T00:00:00.{:09}Z+{}",
        d.subsec_nanos(),
        d.as_secs()
    )
}

fn normalize_ref(r: &str) -> String {
    if crate::tag::ref_tag(r).is_some() || r.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

fn resolve_image(st: &State, image: &str) -> Option<String> {
    if let Some(id) = st.tags.get(&normalize_ref(image)) {
        return Some(id.clone());
    }
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    if hex.len() >= 12 {
        return st
            .images
            .keys()
            .find(|id| id.trim_start_matches("sha256:").starts_with(hex))
            .cloned();
    }
    None
}

fn resolve_container(st: &State, c: &str) -> Result<String> {
    let c = c.trim_start_matches('/');
    if st.containers.contains_key(c) {
        return Ok(c.to_string());
    }
    st.containers
        .values()
        .find(|x| x.name == c || (c.len() >= 6 && x.id.starts_with(c)))
        .map(|x| x.id.clone())
        .ok_or_else(|| DockerError::NotFound(format!("No such container: {c}")))
}

fn exec_builtin(fs: &mut FakeFs, req: &ExecRequest) -> ExecOutput {
    let mut out = ExecOutput::default();
    let args: Vec<&str> = req.cmd.iter().map(String::as_str).collect();
    let err = |out: &mut ExecOutput, code: i64, msg: String| {
        out.exit_code = code;
        out.stderr.extend_from_slice(msg.as_bytes());
    };
    match args.as_slice() {
        ["true"] => {}
        ["false"] => out.exit_code = 1,
        ["cat"] => out.stdout = req.stdin.clone().unwrap_or_default().to_vec(),
        ["cat", files @ ..] => {
            for f in files {
                match fs.read(f) {
                    Some(d) => out.stdout.extend_from_slice(&d),
                    None => err(
                        &mut out,
                        1,
                        format!("cat: can't open '{f}': No such file or directory\n"),
                    ),
                }
            }
        }
        ["rm", rest @ ..] => {
            let paths = rest.iter().filter(|a| !a.starts_with('-'));
            let force = rest.iter().any(|a| a.starts_with('-') && a.contains('f'));
            for p in paths {
                if !fs.remove_all(p) && !force {
                    err(
                        &mut out,
                        1,
                        format!("rm: can't remove '{p}': No such file or directory\n"),
                    );
                }
            }
        }
        ["test", flag, p] => {
            let node = fs.nodes.get(&FakeFs::norm(p));
            let ok = match *flag {
                "-e" => node.is_some(),
                "-f" => matches!(node, Some(FakeNode::File { .. })),
                "-d" => matches!(node, Some(FakeNode::Dir { .. })),
                _ => false,
            };
            out.exit_code = if ok { 0 } else { 1 };
        }
        ["ls", p] => match fs.nodes.get(&FakeFs::norm(p)) {
            Some(FakeNode::Dir { .. }) => {
                for c in fs.children(p) {
                    out.stdout.extend_from_slice(format!("{c}\n").as_bytes());
                }
            }
            Some(_) => out.stdout.extend_from_slice(format!("{p}\n").as_bytes()),
            None => err(&mut out, 1, format!("ls: {p}: No such file or directory\n")),
        },
        ["echo", rest @ ..] => out.stdout = format!("{}\n", rest.join(" ")).into_bytes(),
        ["mkdir", "-p", dirs @ ..] => {
            for d in dirs {
                let p = FakeFs::norm(d);
                fs.ensure_parents(&format!("{p}/x"));
            }
        }
        ["sh", "-c", script] if script.trim().starts_with("exit ") => {
            out.exit_code = script.trim()[5..].trim().parse().unwrap_or(2);
        }
        _ => err(
            &mut out,
            127,
            format!(
                "OCI runtime exec failed: exec: \"{}\": executable file not found in $PATH\n",
                args.first().unwrap_or(&"")
            ),
        ),
    }
    out
}

#[async_trait]
impl DockerClient for FakeDocker {
    async fn engine_info(&self) -> Result<EngineInfo> {
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            buildkit: true,
        })
    }

    async fn build(&self, req: BuildRequest, progress: Option<LineSink>) -> Result<BuildResult> {
        self.lock().calls.push(format!("build {}", req.image_ref));
        let ctx = req.context.clone();
        let df = req.dockerfile.clone();
        let (tar, info) = tokio::task::spawn_blocking(move || tarball::context_tar(&ctx, &df))
            .await
            .map_err(|e| DockerError::Other(e.to_string()))??;
        let entries = read_tar(&tar)?;
        let dockerfile = entries
            .iter()
            .find(|e| e.path == info.dockerfile_name)
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
            .ok_or_else(|| DockerError::Build("Cannot locate specified Dockerfile".into()))?;
        if let Some(p) = &progress {
            let _ = p
                .send(format!(
                    "fake build of {} ({} entries)",
                    req.image_ref,
                    entries.len()
                ))
                .await;
        }
        if let Some(e) = self.lock().build_error.clone() {
            return Err(DockerError::Build(e));
        }
        check_dockerfile(&dockerfile).map_err(DockerError::Build)?;
        // Content-addressed like Docker's cache: paths, kinds, modes and bytes (not mtimes).
        let mut parts: Vec<Vec<u8>> = vec![dockerfile.into_bytes()];
        for e in &entries {
            parts.push(format!("{}|{:?}|{:o}", e.path, e.kind, e.mode).into_bytes());
            parts.push(e.data.to_vec());
        }
        for (k, v) in req.build_args.iter().chain(req.labels.iter()) {
            parts.push(format!("{k}={v}").into_bytes());
        }
        parts.push(req.target.clone().unwrap_or_default().into_bytes());
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let image_id = fake_digest(&refs);
        let tagged_ref = tilt_tagged_ref(&req.image_ref, &image_id)?;
        {
            let mut st = self.lock();
            st.images.insert(
                image_id.clone(),
                FakeImage {
                    id: image_id.clone(),
                    labels: req.labels.clone(),
                },
            );
            st.tags.insert(tagged_ref.clone(), image_id.clone());
            for t in &req.extra_tags {
                st.tags.insert(normalize_ref(t), image_id.clone());
            }
        }
        let builder = match req.builder {
            BuilderPreference::Classic => BuilderKind::Classic,
            _ => BuilderKind::BuildKit,
        };
        Ok(BuildResult {
            image_id,
            tagged_ref,
            extra_tags: req.extra_tags.clone(),
            builder,
        })
    }

    async fn tag(&self, image: &str, target: &str) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("tag {image} {target}"));
        let id = resolve_image(&st, image)
            .ok_or_else(|| DockerError::NotFound(format!("No such image: {image}")))?;
        st.tags.insert(normalize_ref(target), id);
        Ok(())
    }

    async fn push(&self, image_ref: &str, progress: Option<LineSink>) -> Result<()> {
        let err = {
            let mut st = self.lock();
            st.calls.push(format!("push {image_ref}"));
            if resolve_image(&st, image_ref).is_none() {
                return Err(DockerError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    ref_without_tag(image_ref)
                )));
            }
            st.push_error.clone()
        };
        if let Some(e) = err {
            return Err(DockerError::Push(e));
        }
        if let Some(p) = progress {
            let _ = p.send(format!("Pushed {image_ref}")).await;
        }
        self.lock().pushed.push(image_ref.to_string());
        Ok(())
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        let st = self.lock();
        let Some(id) = resolve_image(&st, image) else {
            return Ok(None);
        };
        let img = &st.images[&id];
        Ok(Some(ImageInfo {
            id: img.id.clone(),
            repo_tags: st
                .tags
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect(),
            repo_digests: vec![],
            labels: img.labels.clone(),
            created: None,
            size: Some(0),
        }))
    }

    async fn remove_image(&self, image: &str, _force: bool) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("remove_image {image}"));
        let n = normalize_ref(image);
        if st.tags.remove(&n).is_none()
            && let Some(id) = resolve_image(&st, image)
        {
            st.tags.retain(|_, v| *v != id);
            st.images.remove(&id);
        }
        Ok(())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerSummary>> {
        let st = self.lock();
        let image_id = filter.image.as_ref().and_then(|i| resolve_image(&st, i));
        Ok(st
            .containers
            .values()
            .filter(|c| filter.all || c.state.running)
            .filter(|c| filter.matches_labels(&c.spec.labels))
            .filter(|c| filter.name.as_ref().is_none_or(|n| &c.name == n))
            .filter(|c| match &filter.image {
                None => true,
                Some(i) => &c.spec.image == i || image_id.as_ref() == Some(&c.image_id),
            })
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                names: vec![c.name.clone()],
                image: c.spec.image.clone(),
                image_id: c.image_id.clone(),
                labels: c.spec.labels.clone(),
                state: c.state.status.clone(),
                status: c.state.status.clone(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        let st = self.lock();
        let id = resolve_container(&st, id)?;
        let c = &st.containers[&id];
        Ok(ContainerInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            image: c.spec.image.clone(),
            image_id: c.image_id.clone(),
            state: c.state.clone(),
            health: c.health.clone(),
            ports: c.ports.clone(),
            labels: c.spec.labels.clone(),
            restart_count: c.restart_count,
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut st = self.lock();
        st.calls.push(format!("create_container {}", spec.image));
        let image_id = resolve_image(&st, &spec.image).ok_or_else(|| {
            DockerError::NotFound(format!("No such image: {}", normalize_ref(&spec.image)))
        })?;
        if let Some(n) = &spec.name
            && st.containers.values().any(|c| &c.name == n)
        {
            return Err(DockerError::Engine {
                status: 409,
                message: format!("Conflict. The container name \"/{n}\" is already in use"),
            });
        }
        st.next_id += 1;
        let id = fake_digest(&[b"container", &st.next_id.to_le_bytes()])
            .trim_start_matches("sha256:")
            .to_string();
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("fake_{}", st.next_id));
        let mut ports = Vec::new();
        for p in &spec.ports {
            let host_port = match p.host_port {
                Some(hp) => hp,
                None => {
                    st.next_port += 1;
                    st.next_port
                }
            };
            ports.push(PortMapping {
                container_port: p.container_port,
                protocol: if p.protocol.is_empty() {
                    "tcp".into()
                } else {
                    p.protocol.clone()
                },
                host_ip: Some(p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into())),
                host_port: Some(host_port),
            });
        }
        st.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name,
                spec: spec.clone(),
                image_id,
                state: ContainerState {
                    status: "created".into(),
                    ..Default::default()
                },
                health: None,
                ports,
                fs: FakeFs::new(),
                logs: Vec::new(),
                restart_count: 0,
            },
        );
        self.emit(&mut st, &id, "create", None);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("start_container {id}"));
        let id = resolve_container(&st, id)?;
        self.start_locked(&mut st, &id)
    }

    async fn stop_container(&self, id: &str, _timeout_secs: i64) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("stop_container {id}"));
        let id = resolve_container(&st, id)?;
        if st.containers[&id].state.running {
            self.emit(&mut st, &id, "kill", None);
            self.finish(&mut st, &id, 137);
            self.emit(&mut st, &id, "stop", None);
        }
        Ok(())
    }

    async fn restart_container(&self, id: &str, _timeout_secs: i64) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("restart_container {id}"));
        let id = resolve_container(&st, id)?;
        self.finish(&mut st, &id, 0);
        self.emit(&mut st, &id, "stop", None);
        // Like Docker, a manual restart does not count in RestartCount (only the restart policy's).
        self.start_locked(&mut st, &id)?;
        self.emit(&mut st, &id, "restart", None);
        Ok(())
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(format!("remove_container {id}"));
        let Ok(id) = resolve_container(&st, id) else {
            return Ok(());
        };
        if st.containers[&id].state.running {
            if !force {
                return Err(DockerError::Engine {
                    status: 409,
                    message: format!(
                        "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                    ),
                });
            }
            self.emit(&mut st, &id, "kill", None);
            self.finish(&mut st, &id, 137);
        }
        self.emit(&mut st, &id, "destroy", None);
        st.containers.remove(&id);
        Ok(())
    }

    async fn events(&self, filter: &EventFilter) -> Result<EventStream> {
        // Subscribe under the lock so no event is both replayed and received live.
        let (rx, backlog) = {
            let st = self.lock();
            let rx = self.events_tx.subscribe();
            let backlog: VecDeque<ContainerEvent> = match filter.since {
                Some(since) => st
                    .events
                    .iter()
                    .filter(|e| e.time_nanos >= since * 1_000_000_000)
                    .cloned()
                    .collect(),
                None => VecDeque::new(),
            };
            (rx, backlog)
        };
        let filter = filter.clone();
        let matches = move |e: &ContainerEvent| {
            filter.labels.iter().all(|(k, v)| match v {
                None => e.attributes.contains_key(k),
                Some(v) => e.attributes.get(k) == Some(v),
            }) && filter
                .container
                .as_ref()
                .is_none_or(|c| &e.container_id == c || e.attributes.get("name") == Some(c))
        };
        let s = stream::unfold((rx, backlog), move |(mut rx, mut backlog)| {
            let matches = matches.clone();
            async move {
                loop {
                    let ev = match backlog.pop_front() {
                        Some(e) => e,
                        None => match rx.recv().await {
                            Ok(e) => e,
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                return Some((
                                    Err(DockerError::Other(format!("fake events lagged by {n}"))),
                                    (rx, backlog),
                                ));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                    };
                    if matches(&ev) {
                        return Some((Ok(ev), (rx, backlog)));
                    }
                }
            }
        });
        Ok(s.boxed())
    }

    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<LogStream> {
        let (rx, ev_rx, id, backlog, running) = {
            let st = self.lock();
            let rx = self.logs_tx.subscribe();
            let ev_rx = self.events_tx.subscribe();
            let id = resolve_container(&st, id)?;
            let c = &st.containers[&id];
            let mut lines: Vec<LogLine> = c.logs.clone();
            if let Some(t) = opts.tail {
                let skip = lines.len().saturating_sub(t as usize);
                lines.drain(..skip);
            }
            (rx, ev_rx, id, lines, c.state.running)
        };
        let timestamps = opts.timestamps;
        let strip = move |mut l: LogLine| {
            if !timestamps {
                l.timestamp = None;
            }
            l
        };
        let backlog = stream::iter(backlog.into_iter().map(strip).map(Ok));
        if !opts.follow || !running {
            return Ok(backlog.boxed());
        }
        let live = stream::unfold((rx, ev_rx, id), move |(mut rx, mut ev_rx, id)| async move {
            loop {
                tokio::select! {
                    l = rx.recv() => match l {
                        Ok((cid, line)) if cid == id => return Some((Ok(strip(line)), (rx, ev_rx, id))),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    e = ev_rx.recv() => match e {
                        Ok(ev) if ev.container_id == id && matches!(ev.kind, ContainerEventKind::Die { .. } | ContainerEventKind::Destroy) => return None,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                }
            }
        });
        Ok(backlog.chain(live).boxed())
    }

    async fn exec(
        &self,
        id: &str,
        req: &ExecRequest,
        output: Option<mpsc::Sender<ExecLine>>,
    ) -> Result<ExecOutput> {
        let out = {
            let mut st = self.lock();
            st.calls.push(format!("exec {id} {}", req.cmd.join(" ")));
            let cid = resolve_container(&st, id)?;
            let handler = st.exec_handler.clone();
            let c = st.containers.get_mut(&cid).expect("resolved");
            if !c.state.running {
                return Err(DockerError::Engine {
                    status: 409,
                    message: format!("Container {cid} is not running"),
                });
            }
            handler
                .and_then(|h| h(&mut c.fs, req))
                .unwrap_or_else(|| exec_builtin(&mut c.fs, req))
        };
        if let Some(tx) = output {
            for (stream, bytes) in [
                (StdStream::Stdout, &out.stdout),
                (StdStream::Stderr, &out.stderr),
            ] {
                let mut sp = LineSplitter::default();
                let mut lines = sp.push(bytes);
                lines.extend(sp.finish());
                for text in lines {
                    let _ = tx.send(ExecLine { stream, text }).await;
                }
            }
        }
        Ok(out)
    }

    async fn exec_attach(&self, id: &str, req: &ExecRequest) -> Result<AttachedExec> {
        let handler = {
            let mut st = self.lock();
            st.calls
                .push(format!("exec_attach {id} {}", req.cmd.join(" ")));
            let cid = resolve_container(&st, id)?;
            if !st.containers[&cid].state.running {
                return Err(DockerError::Engine {
                    status: 409,
                    message: format!("Container {cid} is not running"),
                });
            }
            st.attach_handler.clone()
        };
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let (read, write) = tokio::io::split(ours);
        let (_err_tx, err_rx) = mpsc::channel(1);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let req = req.clone();
        tokio::spawn(async move {
            let code = match handler {
                Some(h) => h(req, theirs).await,
                None => {
                    let (mut r, mut w) = tokio::io::split(theirs);
                    match tokio::io::copy(&mut r, &mut w).await {
                        Ok(_) => 0,
                        Err(_) => 1,
                    }
                }
            };
            let _ = exit_tx.send(Ok(code));
        });
        Ok(AttachedExec {
            stdin: Box::new(write),
            stdout: Box::new(read),
            stderr: err_rx,
            exit: exit_rx,
        })
    }

    async fn upload_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()> {
        let entries = read_tar(&tar)?;
        let mut st = self.lock();
        st.calls.push(format!(
            "upload_archive {id} {path} ({} entries)",
            entries.len()
        ));
        let cid = resolve_container(&st, id)?;
        let fs = &mut st.containers.get_mut(&cid).expect("resolved").fs;
        let base = FakeFs::norm(path);
        if !matches!(fs.nodes.get(&base), Some(FakeNode::Dir { .. })) {
            return Err(DockerError::NotFound(format!(
                "Could not find the file {path} in container {id}"
            )));
        }
        for e in entries {
            let p = FakeFs::norm(&format!("{base}/{}", e.path));
            fs.ensure_parents(&p);
            let node = match e.kind {
                EntryKind::Dir => FakeNode::Dir { mode: e.mode },
                EntryKind::Symlink(t) | EntryKind::Hardlink(t) => FakeNode::Symlink(t),
                _ => FakeNode::File {
                    data: e.data,
                    mode: e.mode,
                },
            };
            fs.nodes.insert(p, node);
        }
        Ok(())
    }

    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<ArchiveEntry>> {
        let mut st = self.lock();
        st.calls.push(format!("download_archive {id} {path}"));
        let cid = resolve_container(&st, id)?;
        let fs = &st.containers[&cid].fs;
        let p = FakeFs::norm(path);
        if !fs.exists(&p) {
            return Err(DockerError::NotFound(format!(
                "Could not find the file {path} in container {id}"
            )));
        }
        let parent_len = p.rfind('/').map_or(0, |i| i + 1);
        let prefix = format!("{p}/");
        Ok(fs
            .nodes
            .iter()
            .filter(|(k, _)| **k == p || k.starts_with(&prefix))
            .map(|(k, n)| {
                let (kind, mode, data) = match n {
                    FakeNode::File { data, mode } => (EntryKind::File, *mode, data.clone()),
                    FakeNode::Dir { mode } => (EntryKind::Dir, *mode, Bytes::new()),
                    FakeNode::Symlink(t) => (EntryKind::Symlink(t.clone()), 0o777, Bytes::new()),
                };
                ArchiveEntry {
                    path: k[parent_len..].to_string(),
                    kind,
                    mode,
                    size: data.len() as u64,
                    mtime: 0,
                    data,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_check_matches_docker_message() {
        assert_eq!(
            check_dockerfile("FROM x\nBOGUS y\n").unwrap_err(),
            "dockerfile parse error line 2: unknown instruction: BOGUS"
        );
        assert!(check_dockerfile("# c\nFROM x\nRUN a \\\n  b\n\ncopy . /\n").is_ok());
    }

    #[test]
    fn fake_fs_ops() {
        let mut fs = FakeFs::new();
        fs.write("/a/b/c.txt", "x", 0o644);
        assert!(fs.exists("/a/b"));
        assert_eq!(fs.children("/a"), vec!["b"]);
        assert!(fs.remove_all("/a"));
        assert!(!fs.exists("/a/b/c.txt"));
        assert!(fs.exists("/"));
    }
}
