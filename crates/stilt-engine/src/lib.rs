//! The Stilt engine: the reconcilers, one module per kind.
//!
//! Each controller watches the kinds it reads in the store, queues object names, and reconciles
//! them one at a time: it reads state, decides, starts I/O in tasks, and reports by writing status.
//! Controllers never call each other; they meet in the store by object name:
//!
//! * [`tiltfile`] runs the Tiltfile loader and applies its objects (diff, owner refs, GC).
//! * [`filewatch`] turns FileWatch specs into watches and file events into status.
//! * [`cmd`] runs Cmd processes (restart on change, readiness probes, disable).
//! * [`dcservice`] removes the containers of disabled or deleted compose services.
//! * [`build`] is the update queue: for every resource it decides when to update (deps, triggers,
//!   trigger modes, parallelism), runs the update, and writes UIResource status.
//! * [`cluster`] connects to the cluster of each Cluster object and writes what it found.
//! * [`k8s`] holds the KubernetesApply, KubernetesDiscovery, PortForward and PodLogStream
//!   reconcilers.
//! * [`leftovers`] records what this instance started and reaps what a crashed one left.
//! * [`extensionrepo`] makes extension repos' files available (git clone/fetch into the shared
//!   cache, pinned by ref); [`extension`] resolves each Extension to its Tiltfile in them.
//! * [`session`] summarizes every target into the Session object (the `ci` exit rule).
//!
//! Architecture invariant: adapters (processes, file events, Docker, Kubernetes) are reached through
//! narrow seams; this crate never serves HTTP and never evaluates Starlark (the Tiltfile loader is a
//! trait the binary implements).

pub mod build;
pub mod cluster;
pub mod cmd;
pub mod controller;
pub mod dcmonitor;
pub mod dcservice;
pub mod docker;
pub mod echo;
pub mod extension;
pub mod extensionrepo;
pub mod filewatch;
pub mod imagebuild;
pub mod imagecache;
pub mod imagedeps;
pub mod k8s;
pub mod leftovers;
pub mod liveupdate;
pub mod names;
pub mod podsync;
pub mod probe;
pub mod proc;
mod refindex;
pub mod session;
mod storewrite;
pub mod syncback;
pub mod tiltfile;

use std::sync::Arc;
use stilt_logs::LogStore;
use stilt_store::Store;

/// How the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `stilt up`: run until stopped, watch files.
    Up,
    /// `stilt ci`: run every resource once and finish (no file watching).
    Ci,
}

/// What every controller shares.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub logs: LogStore,
    pub mode: Mode,
    /// Environment added to every process Stilt starts (TILT_PORT, TILT_HOST, ...).
    pub process_env: Arc<Vec<(String, String)>>,
    /// The Docker engine and compose CLI, connected on first use.
    pub docker: Arc<docker::DockerAdapters>,
    /// The Kubernetes cluster, connected on first use.
    pub k8s: Arc<k8s::K8sAdapters>,
    /// The thread that owns the channels into pod containers (live update and syncback).
    pub pod_sync: Arc<podsync::PodSync>,
    /// Files syncback wrote, so their echo in the file watch is not synced back again.
    pub echo: Arc<echo::EchoGuard>,
    /// Persistent channels into Docker containers (live update and syncback).
    pub docker_channels: liveupdate::DockerChannels,
    /// The record of what this instance started, for the next start after a crash.
    pub leftovers: Arc<leftovers::Leftovers>,
    /// Where git extension repos are cloned (`$STILT_HOME/tilt_modules`).
    pub ext_cache: stilt_extrepo::Cache,
    /// Images built before, by input digest (reused instead of rebuilt).
    pub images: Arc<imagecache::BuiltImages>,
}

/// Settings of an engine.
pub struct EngineConfig {
    pub store: Store,
    pub logs: LogStore,
    pub mode: Mode,
    pub tiltfile: tiltfile::TiltfileConfig,
    pub loader: Arc<dyn tiltfile::Loader>,
    pub process_env: Vec<(String, String)>,
    pub docker: Arc<docker::DockerAdapters>,
    pub k8s: Arc<k8s::K8sAdapters>,
    /// Where process groups and compose services are recorded ([`leftovers::Leftovers::disabled`]:
    /// nowhere).
    pub leftovers: Arc<leftovers::Leftovers>,
    pub ext_cache: stilt_extrepo::Cache,
}

/// A running engine. Dropping it does not stop processes: call [`Engine::shutdown`].
pub struct Engine {
    ctx: Ctx,
    cmds: cmd::CmdController,
    build: build::BuildController,
    tiltfile: tiltfile::TiltfileController,
}

impl Engine {
    /// Starts every controller and creates the Tiltfile and Session objects.
    pub async fn start(cfg: EngineConfig) -> Result<Self, stilt_store::StoreError> {
        let ctx = Ctx {
            store: cfg.store,
            logs: cfg.logs,
            mode: cfg.mode,
            process_env: Arc::new(cfg.process_env),
            docker: cfg.docker,
            pod_sync: Arc::new(podsync::PodSync::new(cfg.k8s.clone())),
            k8s: cfg.k8s,
            echo: Default::default(),
            docker_channels: Default::default(),
            images: Arc::new(imagecache::BuiltImages::at(
                cfg.leftovers.dir().map(|d| d.join("images.json")),
            )),
            leftovers: cfg.leftovers,
            ext_cache: cfg.ext_cache,
        };
        let hub = if ctx.mode == Mode::Up {
            match stilt_watch::WatchHub::new() {
                Ok(hub) => Some(hub),
                Err(e) => {
                    // Everything else still runs; edits just are not seen. Say so where the
                    // user looks.
                    let message = format!(
                        "File watching is off: {e}. Edits will not update anything until Stilt restarts (raise fs.inotify.max_user_instances / max_user_watches if they are exhausted)."
                    );
                    tracing::error!("{message}");
                    ctx.logs.line(
                        names::TILTFILE_RESOURCE,
                        "filewatch",
                        stilt_logs::Level::Error,
                        &message,
                    );
                    None
                }
            }
        } else {
            None
        };
        filewatch::start(ctx.clone(), hub);
        let cmds = cmd::start(ctx.clone());
        liveupdate::start(ctx.clone());
        syncback::start(ctx.clone());
        dcservice::start(ctx.clone());
        cluster::start(ctx.clone());
        extensionrepo::start(ctx.clone());
        extension::start(ctx.clone());
        k8s::start(ctx.clone());
        imagebuild::start(ctx.clone());
        let build = build::start(ctx.clone());
        let tiltfile = tiltfile::start(ctx.clone(), cfg.tiltfile.clone(), cfg.loader)?;
        session::start(ctx.clone(), &cfg.tiltfile)?;
        Ok(Self {
            ctx,
            cmds,
            build,
            tiltfile,
        })
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Stops every process the engine started (SIGTERM to each process group, SIGKILL after the
    /// grace period) and waits for them.
    pub async fn shutdown(&self) {
        // A load still evaluating would keep the runtime (and the process) alive.
        self.tiltfile.shutdown();
        self.build.shutdown().await;
        self.cmds.shutdown().await;
    }
}
