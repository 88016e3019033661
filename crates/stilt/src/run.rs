//! The composition root shared by `up`, `ci` and `demo`: store, log store, API server, engine and
//! the terminal stream. The only place real adapters are chosen.

use crate::loader::StarlarkLoader;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stilt_apiserver::{ApiServer, Kubeconfig, ServerOptions, random_token};
use stilt_engine::leftovers::{Leftovers, REAP_GRACE, reap_leftovers_and_record};
use stilt_engine::tiltfile::TiltfileConfig;
use stilt_engine::{Engine, EngineConfig, Mode};
use stilt_logs::LogStore;
use stilt_store::Store;

pub struct RunOptions {
    pub mode: Mode,
    pub file: PathBuf,
    pub args: Vec<String>,
    pub web_host: String,
    pub web_port: u16,
    pub api_port: u16,
    pub stream: bool,
    /// The claim of the web port, taken before anything else (see [`claim`]).
    pub instance: crate::instance::InstanceLock,
}

/// Claims the instance's web port and, with `--context` / `--namespace`, writes the instance's
/// kubeconfig and points `KUBECONFIG` at it. Runs before the runtime starts: a second `up` on a
/// taken port changes nothing, not even the first one's kubeconfig.
pub fn claim(port: u16, kube: &crate::args::KubeFlags) -> Result<crate::instance::InstanceLock> {
    let home = crate::home::stilt_home();
    let instance = crate::instance::InstanceLock::acquire(&home, port)?;
    crate::kubectx::apply(kube, &crate::kubectx::path_for(&home, port))?;
    Ok(instance)
}

pub struct Running {
    pub store: Store,
    pub logs: LogStore,
    pub web: Option<stilt_web::WebServer>,
    pub engine: Engine,
    pub stream: Option<tokio::task::JoinHandle<()>>,
    /// Released (and the kubeconfig context removed) when the instance stops.
    pub instance: crate::instance::InstanceLock,
    /// Emptied by a clean stop.
    pub leftovers: Arc<Leftovers>,
}

pub async fn start(opts: RunOptions) -> Result<Running> {
    let file = std::path::absolute(&opts.file)?;
    if !file.exists() {
        anyhow::bail!(
            "no Tiltfile at {} (use -f to point at one, or run `stilt demo`)",
            file.display()
        );
    }
    // While the servers start, on the other core.
    stilt_tiltfile::warm_up(
        &file,
        match opts.mode {
            Mode::Up => "up",
            Mode::Ci => "ci",
        },
    );
    // The instance lock was claimed (run::claim) before anything started.
    let mut instance = opts.instance;
    let docker = Arc::new(stilt_engine::docker::DockerAdapters::default());
    // Whatever a crashed instance on this port left running is stopped before anything of this
    // one starts (a server it left would hold the port the new one needs).
    let leftovers = reap_leftovers(&instance, &docker).await?;
    let store = Store::default();
    let logs = LogStore::default();
    let token = random_token();
    let server = ApiServer::new(store.clone(), ServerOptions::with_token(token.clone()))
        .with_extra_routes(crate::logs::routes(logs.clone()));
    let serving = server
        .serve_loopback(opts.api_port)
        .await
        .context("starting the API server")?;
    let path = instance.publish(&Kubeconfig {
        server: serving.url(),
        token,
        ca_pem: serving.cert_pem.clone(),
    })?;
    eprintln!(
        "stilt: API server on {} (kubeconfig {}, context \"{}\")",
        serving.url(),
        path.display(),
        crate::instance::context_name(opts.web_port)
    );
    let stream = opts
        .stream
        .then(|| crate::logs::stream_to_terminal(logs.clone()));
    let process_env = vec![
        ("TILT_PORT".to_string(), opts.web_port.to_string()),
        ("TILT_HOST".to_string(), opts.web_host.clone()),
        ("TILT_DISABLE_ANALYTICS".to_string(), "1".to_string()),
    ];
    let loader = Arc::new(StarlarkLoader {
        web_host: opts.web_host.clone(),
        web_port: opts.web_port,
        start_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    // The web port is claimed before anything runs: a port another program holds stops the
    // start with nothing started.
    // `--port 0` turns the web UI off, as in Tilt.
    let web = if opts.web_port != 0 {
        let mut cfg = stilt_web::WebConfig::new(store.clone(), logs.clone());
        cfg.host = opts.web_host.clone();
        cfg.port = opts.web_port;
        let web = stilt_web::serve(cfg).await.context("starting the web UI")?;
        eprintln!("stilt: web UI on {}", web.url());
        Some(web)
    } else {
        None
    };
    crate::memory::spawn_trimmer();
    let engine = Engine::start(EngineConfig {
        store: store.clone(),
        logs: logs.clone(),
        mode: opts.mode,
        tiltfile: TiltfileConfig {
            path: file,
            args: opts.args,
        },
        loader,
        process_env,
        docker,
        k8s: Arc::new(stilt_engine::k8s::K8sAdapters::default()),
        leftovers: leftovers.clone(),
        ext_cache: stilt_extrepo::Cache::in_home(&crate::home::stilt_home()),
    })
    .await
    .context("starting the engine")?;
    Ok(Running {
        store,
        logs,
        web,
        engine,
        stream,
        instance,
        leftovers,
    })
}

async fn reap_leftovers(
    instance: &crate::instance::InstanceLock,
    docker: &stilt_engine::docker::DockerAdapters,
) -> Result<Arc<Leftovers>> {
    let path = instance.leftovers_path();
    let (reaped, leftovers) =
        reap_leftovers_and_record(&path, async |c| match docker.docker().await {
            Ok(d) => d
                .inspect_container(&c.container_id)
                .await
                .is_ok_and(|i| i.state.running),
            Err(_) => false,
        })
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    for cmd in &reaped.stopped {
        eprintln!("stilt: stopped a process the previous Stilt left running: {cmd}");
    }
    for cmd in &reaped.killed {
        eprintln!(
            "stilt: ... {cmd} ignored SIGTERM for {}s and was killed",
            REAP_GRACE.as_secs()
        );
    }
    for c in &reaped.compose_running {
        eprintln!(
            "stilt: compose service {} of project {} is still running (container {}); it is adopted if unchanged",
            c.service,
            c.project,
            &c.container_id[..c.container_id.len().min(12)]
        );
    }
    Ok(leftovers)
}

impl Running {
    /// Stops every process, then lets the terminal stream print what they said last.
    pub async fn stop(self) {
        if let Some(web) = self.web {
            let _ = web.shutdown().await;
        }
        self.engine.shutdown().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(s) = self.stream {
            s.abort();
        }
        // Every process group is gone now; a record left behind would only mean a crash.
        if self.leftovers.groups().is_empty() {
            self.leftovers.finish();
        }
        drop(self.instance);
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
