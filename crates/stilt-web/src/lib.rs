//! Stilt's web UI server (what Tilt serves on `localhost:10350`).
//!
//! * `/` and every non-asset path: the single-page UI, embedded in the binary from the committed
//!   bundle in `frontend/dist` (see `README.md` for how to rebuild it). The per-process CSRF token
//!   is injected into `index.html`.
//! * `/ws/view?csrf=<token>`: the live view. One full snapshot, then deltas of UIResource,
//!   UISession, UIButton and ConfigMap objects and of the log store, batched (at most
//!   one message per [`WebConfig::batch_interval`]). A client may subscribe to the objects behind
//!   one resource (annotation `tilt.dev/resource`). See [`view`] for the protocol.
//! * `GET /api/view`: the same snapshot as JSON; `GET /api/websocket_token`: the token.
//! * `POST /api/trigger`, `/api/override/trigger_mode`, `/api/disable`, `/api/button`: the UI's
//!   actions, each a store write following the engine's conventions (see [`actions`]).
//!
//! Security: binds 127.0.0.1 by default; when bound to loopback, requests whose `Host` is not a
//! loopback name are refused (DNS rebinding); every POST and the websocket need the token, and a
//! present `Origin` must match `Host`.
//!
//! Architecture invariant: a view. It reads the store and the log store and writes only the
//! objects a user's click changes (trigger queue, disable ConfigMaps, UIButton status, trigger
//! mode). It never talks to Docker, Kubernetes or processes, and knows nothing of reconcilers.

pub mod actions;
pub mod assets;
mod http;
pub mod view;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stilt_logs::LogStore;
use stilt_store::Store;
use tokio::task::JoinHandle;

/// What [`serve`] needs.
#[derive(Clone)]
pub struct WebConfig {
    /// Address to bind: `127.0.0.1` (default) or `localhost` stay on loopback.
    pub host: String,
    /// Port to bind (default 10350); 0 picks a free port.
    pub port: u16,
    pub store: Store,
    pub logs: LogStore,
    /// CSRF token for POSTs and the websocket; random when `None`.
    pub token: Option<String>,
    /// Longest time a change waits before it is pushed; also the shortest gap between messages.
    pub batch_interval: Duration,
    /// Most log lines in one websocket message (the rest follow at once).
    pub max_lines_per_message: usize,
    /// Serve the UI from this directory (a `vite build` output) instead of the embedded bundle;
    /// for front-end development without rebuilding the binary.
    pub assets_dir: Option<std::path::PathBuf>,
}

impl WebConfig {
    pub fn new(store: Store, logs: LogStore) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 10350,
            store,
            logs,
            token: None,
            batch_interval: Duration::from_millis(50),
            max_lines_per_message: 20_000,
            assets_dir: None,
        }
    }
}

/// A running web server.
pub struct WebServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The CSRF token clients must present.
    pub token: String,
    /// The server task; it ends after [`WebServer::shutdown`] or if serving fails.
    pub task: JoinHandle<io::Result<()>>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl WebServer {
    /// `http://host:port/`, with `localhost` for loopback addresses.
    pub fn url(&self) -> String {
        if self.addr.ip().is_loopback() {
            format!("http://localhost:{}/", self.addr.port())
        } else {
            format!("http://{}/", self.addr)
        }
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

pub(crate) struct Shared {
    pub store: Store,
    pub logs: LogStore,
    pub token: String,
    /// Refuse requests whose Host is not a loopback name.
    pub loopback_only: bool,
    pub batch_interval: Duration,
    pub max_lines_per_message: usize,
    pub assets_dir: Option<std::path::PathBuf>,
    /// Becomes true when the server shuts down; websocket loops end on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A random URL-safe token.
pub fn random_token() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Binds `host:port` and serves the UI in a background task.
pub async fn serve(cfg: WebConfig) -> io::Result<WebServer> {
    let host = if cfg.host.is_empty() || cfg.host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        cfg.host.clone()
    };
    let listener = tokio::net::TcpListener::bind((host.as_str(), cfg.port))
        .await
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                io::Error::new(
                    e.kind(),
                    format!(
                        "Stilt cannot start because you already have another process on port {}\nIf you want to run several instances side by side, use the --port flag or the STILT_PORT / TILT_PORT env variable to set another port",
                        cfg.port
                    ),
                )
            } else {
                io::Error::new(e.kind(), format!("binding {host}:{}: {e}", cfg.port))
            }
        })?;
    let addr = listener.local_addr()?;
    let token = cfg.token.clone().unwrap_or_else(random_token);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        shutdown: stop_rx.clone(),
        store: cfg.store,
        logs: cfg.logs,
        token: token.clone(),
        loopback_only: is_loopback_host(&host),
        batch_interval: cfg.batch_interval,
        max_lines_per_message: cfg.max_lines_per_message.max(1),
        assets_dir: cfg.assets_dir,
    });
    let app = http::router(shared);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(WebServer {
        addr,
        token,
        task,
        stop: Some(stop_tx),
    })
}
