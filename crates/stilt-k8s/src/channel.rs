//! Live update into a Kubernetes container: the persistent channel, with Tilt's exec + `tar`
//! as the fallback.
//!
//! On first contact [`ContainerSyncer::connect`] starts the `stilt-syncer` helper with ONE exec
//! (`<dir>/stilt-syncer-<hash> serve`) and greets it. If it is not there yet it is copied in
//! with one `tar -x` exec (or `sh -c 'cat > …'` when the image has no tar), trying a few
//! directories (`/tmp/.stilt-syncer`, `/.stilt`, `/var/tmp/.stilt-syncer`) in case one is
//! read-only or `noexec`. From then on every write, delete and `run` step is a framed request on
//! that exec's stdin/stdout. The binary name carries a hash of its content, so a newer Stilt
//! never talks to an older helper.
//!
//! When the helper cannot be installed or started, the syncer falls back to Tilt's way: `rm -rf`
//! for deletions, `tar -C / -x -f -` with the files on stdin, each `run` as its own exec. A
//! channel that breaks (container restarted) is reopened once per call before falling back.
//!
//! Measured on the dev cluster (`benches/channel.rs`, busybox pod, one ~20-byte file, 100
//! iterations, 2 shared cores under load), two runs:
//!
//! | path | p50 | p95 |
//! |---|---|---|
//! | channel: write 1 file | 0.96 / 0.89 ms | 3.7 / 4.0 ms |
//! | channel: write + run `true` | 4.1 / 3.1 ms | 8.7 / 11.7 ms |
//! | exec + tar: write 1 file (Tilt's way) | 100 / 96 ms | 116 / 111 ms |
//! | exec `true` alone (the exec floor) | 93 / 91 ms | 103 / 102 ms |
//!
//! First contact (install with one tar exec + start + hello) took 280–390 ms; reopening when the
//! helper is already there ≈ 95 ms (one exec).

use crate::cluster::{Cluster, ContainerRef, ExecProcess, exec_collect, exec_streaming};
use crate::error::{K8sError, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_syncer::{Client, ClientError, Entry, RunSpec, Stream, WriteEntry};
use tokio::io::AsyncReadExt;

/// The static helper compiled by this crate's build script (empty when that build failed).
pub const EMBEDDED_HELPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stilt-syncer"));

/// Where the helper binary comes from and where it goes.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// The static `stilt-syncer` binary to copy in. `None`: exec + tar only.
    pub helper_binary: Option<Arc<Vec<u8>>>,
    /// Directories to try, in order.
    pub install_dirs: Vec<String>,
    /// How long the helper may take to answer its first hello.
    pub hello_timeout: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            helper_binary: None,
            install_dirs: vec![
                "/tmp/.stilt-syncer".into(),
                "/.stilt".into(),
                "/var/tmp/.stilt-syncer".into(),
            ],
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl ChannelOptions {
    /// Load the helper from a file.
    pub fn with_helper_file(mut self, path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| K8sError::Other(format!("reading helper {}: {e}", path.display())))?;
        self.helper_binary = Some(Arc::new(bytes));
        Ok(self)
    }

    /// Find the helper: `$STILT_SYNCER_BIN`, else the one built into Stilt, else a static
    /// `stilt-syncer` next to the running program.
    pub fn discover() -> Self {
        if std::env::var_os("STILT_SYNCER_BIN").is_none() && !EMBEDDED_HELPER.is_empty() {
            return ChannelOptions {
                helper_binary: Some(Arc::new(EMBEDDED_HELPER.to_vec())),
                ..ChannelOptions::default()
            };
        }
        let candidates: Vec<PathBuf> = std::env::var_os("STILT_SYNCER_BIN")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(|d| d.join(stilt_syncer::HELPER_NAME))),
            )
            .collect();
        let opts = ChannelOptions::default();
        for c in candidates {
            if c.is_file()
                && let Ok(o) = opts.clone().with_helper_file(&c)
            {
                return o;
            }
        }
        opts
    }
}

/// How a container is being updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// The persistent channel; `path` is the helper in the container.
    Channel { path: String },
    /// Exec + tar, and why the channel is not used.
    ExecTar { reason: String },
}

/// Timing of one update, for LiveUpdate status and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReport {
    pub mode: SyncMode,
    pub files: usize,
    pub deleted: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// The channel broke and was reopened during this update.
    pub reconnected: bool,
}

struct Channel {
    client: Client,
    path: String,
    _proc: Box<dyn Send + Sync>,
    _stderr: tokio::task::JoinHandle<()>,
}

/// Live-update access to one container.
pub struct ContainerSyncer {
    cluster: Arc<dyn Cluster>,
    target: ContainerRef,
    opts: ChannelOptions,
    channel: Option<Channel>,
    mode: SyncMode,
}

impl std::fmt::Debug for ContainerSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerSyncer")
            .field("target", &self.target)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Kubernetes' name for the architecture of an ELF binary (`None`: not ELF / unknown).
fn elf_arch(bin: &[u8]) -> Option<&'static str> {
    if bin.len() < 20 || &bin[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine, little-endian (every architecture we care about is).
    match u16::from_le_bytes([bin[18], bin[19]]) {
        0x3E => Some("amd64"),
        0xB7 => Some("arm64"),
        0x03 => Some("386"),
        0x28 => Some("arm"),
        0xF3 => Some("riscv64"),
        0x15 => Some("ppc64le"),
        0x16 => Some("s390x"),
        _ => None,
    }
}

fn helper_name(bin: &[u8]) -> String {
    let h = stilt_syncer::hash_bytes(bin);
    let hex: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", stilt_syncer::HELPER_NAME)
}

/// An in-memory tar of files (paths made relative to `/`), for `tar -C / -x -f -`.
pub fn tar_of(entries: &[WriteEntry]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for e in entries {
        let path = e.path.trim_start_matches('/');
        let mut h = tar::Header::new_gnu();
        let mtime = if e.mtime_ns > 0 {
            (e.mtime_ns / 1_000_000_000) as u64
        } else {
            now
        };
        h.set_mtime(mtime);
        let io = |e: std::io::Error| K8sError::Other(format!("building tar: {e}"));
        match e.kind {
            stilt_syncer::FileKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(if e.mode == 0 { 0o755 } else { e.mode });
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).map_err(io)?;
            }
            stilt_syncer::FileKind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                let target = String::from_utf8_lossy(&e.data).into_owned();
                b.append_link(&mut h, path, target).map_err(io)?;
            }
            _ => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if e.mode == 0 { 0o644 } else { e.mode });
                h.set_size(e.data.len() as u64);
                b.append_data(&mut h, path, &e.data[..]).map_err(io)?;
            }
        }
    }
    b.into_inner()
        .map_err(|e| K8sError::Other(format!("building tar: {e}")))
}

/// An exec carrying `bytes` of stdin gets 30 s plus 1 s per MB: a stuck exec (a process that
/// stopped reading its stdin) becomes an error instead of a hang.
async fn bounded<T>(fut: impl std::future::Future<Output = Result<T>>, bytes: usize) -> Result<T> {
    let limit = Duration::from_secs(30 + (bytes / (1 << 20)) as u64);
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(K8sError::Timeout(format!(
            "exec did not finish within {limit:?}"
        )))
    })
}

fn transport(e: ClientError) -> K8sError {
    K8sError::Exec(e.to_string())
}

impl ContainerSyncer {
    /// Open the channel (installing the helper if needed), or settle for exec + tar.
    pub async fn connect(
        cluster: Arc<dyn Cluster>,
        target: ContainerRef,
        opts: ChannelOptions,
    ) -> Result<ContainerSyncer> {
        let mut s = ContainerSyncer {
            cluster,
            target,
            opts,
            channel: None,
            mode: SyncMode::ExecTar {
                reason: "not connected".into(),
            },
        };
        s.open().await?;
        Ok(s)
    }

    /// Exec + tar only (what Tilt does).
    pub fn exec_tar(cluster: Arc<dyn Cluster>, target: ContainerRef) -> ContainerSyncer {
        ContainerSyncer {
            cluster,
            target,
            opts: ChannelOptions::default(),
            channel: None,
            mode: SyncMode::ExecTar {
                reason: "requested".into(),
            },
        }
    }

    /// The container.
    pub fn target(&self) -> &ContainerRef {
        &self.target
    }

    /// How updates travel.
    pub fn mode(&self) -> &SyncMode {
        &self.mode
    }

    /// (Re)open the channel; sets the mode. Errors only when the container cannot be reached
    /// at all (pod gone).
    async fn open(&mut self) -> Result<()> {
        self.channel = None;
        let Some(bin) = self.opts.helper_binary.clone() else {
            self.mode = SyncMode::ExecTar {
                reason: "no helper binary available".into(),
            };
            return Ok(());
        };
        let node_arch = self.cluster.info().arch;
        if let Some(bin_arch) = elf_arch(&bin)
            && !node_arch.is_empty()
            && node_arch != bin_arch
        {
            self.mode = SyncMode::ExecTar {
                reason: format!("helper is built for {bin_arch}, the cluster runs {node_arch}"),
            };
            return Ok(());
        }
        let name = helper_name(&bin);
        let mut reasons = Vec::new();
        for dir in self.opts.install_dirs.clone() {
            let path = format!("{dir}/{name}");
            // Already there (a previous session, another syncer)?
            match self.start_helper(&path).await {
                Ok(ch) => {
                    self.mode = SyncMode::Channel { path };
                    self.channel = Some(ch);
                    return Ok(());
                }
                Err(e) if e.is_not_found() && e.to_string().contains("pod") => return Err(e),
                Err(_) => {}
            }
            if let Err(e) = self.install(&dir, &name, &bin).await {
                if e.is_not_found() && e.to_string().contains("pod") {
                    return Err(e);
                }
                reasons.push(format!("{dir}: {e}"));
                continue;
            }
            match self.start_helper(&path).await {
                Ok(ch) => {
                    self.mode = SyncMode::Channel { path };
                    self.channel = Some(ch);
                    return Ok(());
                }
                Err(e) => reasons.push(format!("{path}: {e}")),
            }
        }
        self.mode = SyncMode::ExecTar {
            reason: format!("helper could not be installed: {}", reasons.join("; ")),
        };
        Ok(())
    }

    async fn install(&self, dir: &str, name: &str, bin: &[u8]) -> Result<()> {
        let tar_argv: Vec<String> = ["tar", "-C", "/", "-x", "-f", "-"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Probe with a few bytes first. A process that fails without reading a large stdin
        // (read-only filesystem) can leave the exec's stdin stuck on a full pipe; a tiny probe
        // fits in the buffers and tells us whether the directory is writable at all.
        let probe = tar_of(&[WriteEntry::file(format!("{dir}/.probe"), 0o644, "ok")])?;
        let tar_ok = match bounded(
            exec_collect(self.cluster.as_ref(), &self.target, &tar_argv, &probe),
            probe.len(),
        )
        .await
        {
            Ok(o) if o.exit_code == 0 => true,
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
                if err.contains("ead-only") || err.contains("ermission denied") {
                    return Err(K8sError::Exec(err));
                }
                false
            }
            Err(e) if e.is_not_found() && e.to_string().contains("pod") => return Err(e),
            Err(_) => false,
        };
        if tar_ok {
            let tar = tar_of(&[WriteEntry::file(
                format!("{dir}/{name}"),
                0o755,
                bin.to_vec(),
            )])?;
            let o = bounded(
                exec_collect(self.cluster.as_ref(), &self.target, &tar_argv, &tar),
                tar.len(),
            )
            .await?;
            if o.exit_code == 0 {
                return Ok(());
            }
            return Err(K8sError::Exec(format!(
                "tar -x: exit {}: {}",
                o.exit_code,
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        // No tar in the image: try a shell (probe first, for the same reason).
        let sh = |script: String| -> Vec<String> { vec!["sh".into(), "-c".into(), script] };
        let o = bounded(
            exec_collect(
                self.cluster.as_ref(),
                &self.target,
                &sh(format!("mkdir -p '{dir}' && test -w '{dir}'")),
                &[],
            ),
            0,
        )
        .await?;
        if o.exit_code != 0 {
            return Err(K8sError::Exec(format!(
                "no tar, and sh cannot write {dir}: exit {}: {}",
                o.exit_code,
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let script = format!(
            "cat > '{dir}/.{name}.tmp' && chmod 755 '{dir}/.{name}.tmp' && mv '{dir}/.{name}.tmp' '{dir}/{name}'"
        );
        let o = bounded(
            exec_collect(self.cluster.as_ref(), &self.target, &sh(script), bin),
            bin.len(),
        )
        .await?;
        if o.exit_code != 0 {
            return Err(K8sError::Exec(format!(
                "exit {}: {}",
                o.exit_code,
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        Ok(())
    }

    async fn start_helper(&self, path: &str) -> Result<Channel> {
        let p: ExecProcess = self
            .cluster
            .exec(&self.target, &[path.to_string(), "serve".into()])
            .await?;
        let ExecProcess {
            stdin,
            stdout,
            mut stderr,
            exit,
            guard,
        } = p;
        let stdin = stdin.ok_or_else(|| K8sError::Exec("no stdin".into()))?;
        let mut client = Client::new(stdout, stdin);
        // The hello races the exec's failure status (binary missing, noexec).
        let stderr_task = tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                tracing::debug!(
                    "stilt-syncer stderr: {}",
                    String::from_utf8_lossy(&chunk[..n])
                );
            }
        });
        // The hello races the exec's end (binary missing, noexec, wrong arch).
        let mut exit = tokio::spawn(exit);
        let hello = tokio::time::timeout(self.opts.hello_timeout, client.hello());
        tokio::select! {
            r = hello => match r {
                Ok(Ok(_info)) => Ok(Channel {
                    client,
                    path: path.to_string(),
                    _proc: guard,
                    _stderr: stderr_task,
                }),
                Ok(Err(e)) => {
                    let detail = match tokio::time::timeout(Duration::from_millis(500), exit).await {
                        Ok(Ok(Err(e))) => e.to_string(),
                        Ok(Ok(Ok(code))) => format!("exited with {code}"),
                        _ => e.to_string(),
                    };
                    Err(K8sError::Exec(format!("starting {path}: {detail}")))
                }
                Err(_) => Err(K8sError::Timeout(format!("{path} did not answer"))),
            },
            r = &mut exit => Err(K8sError::Exec(match r {
                Ok(Err(e)) => format!("starting {path}: {e}"),
                Ok(Ok(code)) => format!("{path} exited with {code} before answering"),
                Err(e) => format!("{path}: {e}"),
            })),
        }
    }

    /// Run `op` on the channel, reopening it once if it broke. `Ok(None)`: no channel (use the
    /// fallback).
    async fn with_channel<T>(
        &mut self,
        reconnected: &mut bool,
        mut op: impl for<'c> FnMut(
            &'c mut Client,
        ) -> futures::future::BoxFuture<
            'c,
            std::result::Result<T, ClientError>,
        >,
    ) -> Result<Option<T>> {
        for attempt in 0..2 {
            let Some(ch) = self.channel.as_mut() else {
                return Ok(None);
            };
            match op(&mut ch.client).await {
                Ok(v) => return Ok(Some(v)),
                Err(ClientError::Remote(m)) => return Err(K8sError::Exec(m)),
                Err(ClientError::Transport(e)) => {
                    tracing::info!("channel to {} broke ({e}); reopening", self.target);
                    *reconnected = true;
                    if attempt == 0 {
                        self.open().await?;
                    } else {
                        self.channel = None;
                        self.mode = SyncMode::ExecTar {
                            reason: format!("channel broke twice: {e}"),
                        };
                    }
                }
            }
        }
        Ok(None)
    }

    /// Delete `deletes` (rm -rf) then write `files`, in one round trip on the channel.
    pub async fn update(
        &mut self,
        deletes: &[String],
        files: Vec<WriteEntry>,
    ) -> Result<UpdateReport> {
        let start = Instant::now();
        let bytes = files.iter().map(|f| f.data.len()).sum();
        let (nf, nd) = (files.len(), deletes.len());
        let mut reconnected = false;
        let d = deletes.to_vec();
        let f2 = files.clone();
        let done = self
            .with_channel(&mut reconnected, |c| {
                let (d, f) = (d.clone(), f2.clone());
                Box::pin(async move { c.update(d, f).await })
            })
            .await?;
        if done.is_none() {
            self.update_exec_tar(deletes, &files).await?;
        }
        Ok(UpdateReport {
            mode: self.mode.clone(),
            files: nf,
            deleted: nd,
            bytes,
            elapsed: start.elapsed(),
            reconnected,
        })
    }

    async fn update_exec_tar(&self, deletes: &[String], files: &[WriteEntry]) -> Result<()> {
        if !deletes.is_empty() {
            let mut argv = vec!["rm".to_string(), "-rf".to_string()];
            argv.extend(deletes.iter().cloned());
            let o = bounded(
                exec_collect(self.cluster.as_ref(), &self.target, &argv, &[]),
                0,
            )
            .await?;
            if o.exit_code != 0 {
                return Err(K8sError::Exec(format!(
                    "rm -rf: exit {}: {}",
                    o.exit_code,
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
        }
        if !files.is_empty() {
            let tar = tar_of(files)?;
            let argv: Vec<String> = ["tar", "-C", "/", "-x", "-f", "-"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let o = bounded(
                exec_collect(self.cluster.as_ref(), &self.target, &argv, &tar),
                tar.len(),
            )
            .await
            .map_err(|e| match e {
                    K8sError::Exec(m) if m.contains("not found") => K8sError::Exec(format!(
                        "{m} (live update needs `tar` in the container image; include it, or ship the stilt-syncer helper)"
                    )),
                    e => e,
                })?;
            if o.exit_code != 0 {
                let hint = if o.exit_code == 2 {
                    " (permission denied? the container user must be able to write the sync paths)"
                } else {
                    ""
                };
                return Err(K8sError::Exec(format!(
                    "tar -x: exit {}: {}{hint}",
                    o.exit_code,
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
        }
        Ok(())
    }

    /// Run a command (a `run` step), streaming its output; returns the exit code.
    pub async fn run(
        &mut self,
        argv: &[String],
        on_output: impl FnMut(Stream, &[u8]) + Send + Clone + 'static,
    ) -> Result<i32> {
        let mut reconnected = false;
        let a = argv.to_vec();
        let cb = on_output.clone();
        let done = self
            .with_channel(&mut reconnected, move |c| {
                let spec = RunSpec {
                    argv: a.clone(),
                    ..Default::default()
                };
                let cb = cb.clone();
                Box::pin(async move { c.run_streaming(spec, cb).await })
            })
            .await?;
        if let Some(code) = done {
            return Ok(code);
        }
        let mut cb = on_output;
        let o = exec_streaming(self.cluster.as_ref(), &self.target, argv, &[], |err, d| {
            cb(if err { Stream::Stderr } else { Stream::Stdout }, d)
        })
        .await?;
        Ok(o.exit_code)
    }

    /// List a tree in the container (syncback). Needs the channel.
    pub async fn list(&mut self, root: &str, hash: bool) -> Result<Vec<Entry>> {
        let mut reconnected = false;
        let r = root.to_string();
        self.with_channel(&mut reconnected, move |c| {
            let r = r.clone();
            Box::pin(async move { c.list(r, hash).await })
        })
        .await?
        .ok_or_else(|| K8sError::Other("listing needs the stilt-syncer channel".into()))
    }

    /// Read several files, pipelined (syncback). Needs the channel.
    pub async fn read_many(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<std::result::Result<Vec<u8>, String>>> {
        let mut reconnected = false;
        let paths = paths.to_vec();
        self.with_channel(&mut reconnected, move |c| {
            let paths = paths.clone();
            Box::pin(async move { c.read_many(&paths).await })
        })
        .await?
        .ok_or_else(|| K8sError::Other("reading files needs the stilt-syncer channel".into()))
    }

    /// The target of a symbolic link (syncback). Needs the channel.
    pub async fn read_link(&mut self, path: &str) -> Result<String> {
        let mut reconnected = false;
        let p = path.to_string();
        self.with_channel(&mut reconnected, move |c| {
            let p = p.clone();
            Box::pin(async move { c.read_link(p).await })
        })
        .await?
        .ok_or_else(|| K8sError::Other("reading a link needs the stilt-syncer channel".into()))
    }

    /// Stat one path, with its content hash if asked (syncback). Needs the channel.
    pub async fn stat(&mut self, path: &str, hash: bool) -> Result<Option<Entry>> {
        let mut reconnected = false;
        let p = path.to_string();
        self.with_channel(&mut reconnected, move |c| {
            let p = p.clone();
            Box::pin(async move { c.stat(p, hash).await })
        })
        .await?
        .ok_or_else(|| K8sError::Other("stat needs the stilt-syncer channel".into()))
    }

    /// Read one file (channel, else `cat`).
    pub async fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        let mut reconnected = false;
        let p = path.to_string();
        if let Some(d) = self
            .with_channel(&mut reconnected, move |c| {
                let p = p.clone();
                Box::pin(async move { c.read(p).await })
            })
            .await?
        {
            return Ok(d);
        }
        let o = exec_collect(
            self.cluster.as_ref(),
            &self.target,
            &["cat".into(), path.into()],
            &[],
        )
        .await?;
        if o.exit_code != 0 {
            return Err(K8sError::Exec(
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ));
        }
        Ok(o.stdout)
    }

    /// Where the helper runs, if the channel is open.
    pub fn helper_path(&self) -> Option<&str> {
        self.channel.as_ref().map(|c| c.path.as_str())
    }

    /// Close the channel (the helper exits).
    pub async fn close(mut self) {
        if let Some(ch) = self.channel.take() {
            let _ = ch.client.shutdown().await;
        }
    }
}

/// Map a transport error of the syncer client (exposed for callers using the client directly).
pub fn client_error(e: ClientError) -> K8sError {
    transport(e)
}

/// One [`ContainerSyncer`] per container, opened on first use and reused (LiveUpdate and
/// syncback share them). Forget a container when its pod goes away.
#[derive(Clone)]
pub struct SyncerPool {
    cluster: Arc<dyn Cluster>,
    opts: ChannelOptions,
    syncers: Arc<
        std::sync::Mutex<
            std::collections::HashMap<ContainerRef, Arc<tokio::sync::Mutex<ContainerSyncer>>>,
        >,
    >,
}

impl std::fmt::Debug for SyncerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncerPool")
            .field("containers", &self.syncers.lock().unwrap().len())
            .finish()
    }
}

impl SyncerPool {
    pub fn new(cluster: Arc<dyn Cluster>, opts: ChannelOptions) -> Self {
        SyncerPool {
            cluster,
            opts,
            syncers: Default::default(),
        }
    }

    /// The syncer of a container, connecting it on first use. Lock it for a whole update.
    pub async fn get(
        &self,
        target: &ContainerRef,
    ) -> Result<Arc<tokio::sync::Mutex<ContainerSyncer>>> {
        if let Some(s) = self.syncers.lock().unwrap().get(target) {
            return Ok(s.clone());
        }
        let s = ContainerSyncer::connect(self.cluster.clone(), target.clone(), self.opts.clone())
            .await?;
        let s = Arc::new(tokio::sync::Mutex::new(s));
        // Two callers may race to connect: keep the first, drop ours.
        Ok(self
            .syncers
            .lock()
            .unwrap()
            .entry(target.clone())
            .or_insert(s)
            .clone())
    }

    /// Drop the syncer of a container (pod deleted/replaced); its channel closes.
    pub fn forget(&self, target: &ContainerRef) {
        self.syncers.lock().unwrap().remove(target);
    }

    /// Drop every syncer of a pod.
    pub fn forget_pod(&self, namespace: &str, pod: &str) {
        self.syncers
            .lock()
            .unwrap()
            .retain(|k, _| !(k.namespace == namespace && k.pod == pod));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_arch_and_tar() {
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(20, 0);
        elf[18] = 0x3E;
        assert_eq!(elf_arch(&elf), Some("amd64"));
        elf[18] = 0xB7;
        assert_eq!(elf_arch(&elf), Some("arm64"));
        assert_eq!(elf_arch(b"#!/bin/sh"), None);

        let t = tar_of(&[
            WriteEntry::file("/app/a.txt", 0o600, "a"),
            WriteEntry::dir("/app/d", 0),
            WriteEntry::symlink("/app/l", "a.txt"),
        ])
        .unwrap();
        let mut ar = tar::Archive::new(&t[..]);
        let names: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("app/a.txt".to_string(), 0o600),
                ("app/d".to_string(), 0o755),
                ("app/l".to_string(), 0o777)
            ]
        );
    }
}
