//! The Kubernetes-style HTTP API over the Stilt store.
//!
//! One generic set of routes serves every kind from the `stilt-api` registry: discovery
//! (`/api`, `/apis`, `/apis/tilt.dev/v1alpha1`), OpenAPI v3 (for `kubectl explain` and strict
//! field validation), list/get/create/update/patch/delete, the status subresource, `meta.k8s.io`
//! Tables (for `kubectl get`), and watches (NDJSON, resumable, bookmarks, 410 on expiry).
//! Requests need `Authorization: Bearer <token>`.
//!
//! Architecture invariant: no per-kind handlers and no knowledge of controllers; the server is a
//! view of the store. It listens on loopback only; the router is also a `tower::Service`, so a
//! `kube::Client` can use it in-process with no socket.

mod discovery;
mod error;
mod handlers;
mod kubeconfig;
mod openapi;
mod table;
mod tls;
mod watch;

pub use error::ApiError;
pub use kubeconfig::{
    CONTEXT, Kubeconfig, kubeconfig_contexts, read_kubeconfig, remove_kubeconfig_context,
    write_kubeconfig,
};
pub use tls::self_signed;

use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stilt_store::Store;

/// Settings of the API server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The bearer token every request must carry.
    pub token: String,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Largest request body accepted (Tilt uses 20 MB for Helm charts full of CRDs).
    pub max_body_bytes: usize,
}

impl ServerOptions {
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            bookmark_interval: Duration::from_secs(60),
            max_body_bytes: 20 << 20,
        }
    }
}

/// A random bearer token.
pub fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Store,
    pub opts: Arc<ServerOptions>,
}

/// Routes the binary adds beside the API (e.g. logs), behind the same bearer-token check.
pub type ExtraRoutes = Router;

/// A running HTTPS listener.
pub struct Serving {
    pub addr: SocketAddr,
    /// The self-signed certificate clients must trust (PEM).
    pub cert_pem: String,
    pub task: tokio::task::JoinHandle<()>,
}

impl Serving {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// The API server: a router over a store.
pub struct ApiServer {
    state: AppState,
    extra: Option<ExtraRoutes>,
}

impl ApiServer {
    pub fn new(store: Store, opts: ServerOptions) -> Self {
        Self {
            state: AppState {
                store,
                opts: Arc::new(opts),
            },
            extra: None,
        }
    }

    /// Serves `routes` too, behind the same bearer-token check.
    pub fn with_extra_routes(mut self, routes: ExtraRoutes) -> Self {
        self.extra = Some(routes);
        self
    }

    /// The HTTP routes (a `tower::Service`).
    pub fn router(&self) -> Router {
        handlers::router(self.state.clone(), self.extra.clone())
    }

    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves HTTPS in the background with a
    /// fresh self-signed certificate. Returns the address and the certificate (PEM) clients trust.
    pub async fn serve_loopback(&self, port: u16) -> std::io::Result<Serving> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let tls = tls::self_signed().map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let router = self.router();
        let task = tokio::spawn(async move {
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!("API server accept failed: {e}");
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(Serving {
            addr,
            cert_pem: tls.cert_pem,
            task,
        })
    }
}
