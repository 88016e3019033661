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
    /// A connection that does not send the headers of its next request within this long is
    /// closed (so idle and stalled clients do not hold sockets forever). 90 s like the Kubernetes
    /// API server's idle timeout, so pooled client connections are not cut sooner than there.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl ServerOptions {
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            bookmark_interval: Duration::from_secs(60),
            max_body_bytes: 20 << 20,
            header_read_timeout: Duration::from_secs(90),
            max_connections: 512,
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
        let timeout = self.state.opts.header_read_timeout;
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.state.opts.max_connections.max(1),
        ));
        let task = tokio::spawn(async move {
            let mut backoff = AcceptBackoff::default();
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => {
                        backoff.reset();
                        tcp
                    }
                    Err(e) => {
                        // Out of file descriptors (EMFILE) and the like: retrying at once would
                        // spin; wait for connections to close.
                        let pause = backoff.next(&e);
                        tracing::warn!("API server accept failed: {e}; retrying in {pause:?}");
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let handshake = timeout.min(TLS_HANDSHAKE_TIMEOUT);
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(timeout)
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

/// A client that has not finished the TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pauses between failed accepts: 10 ms doubling to 1 s; connection-level errors (the peer gave
/// up) need no pause.
#[derive(Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    pub fn next(&mut self, e: &std::io::Error) -> Duration {
        use std::io::ErrorKind::*;
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused
        ) {
            return Duration::ZERO;
        }
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(10)
            .saturating_mul(1 << (self.failures - 1).min(7))
            .min(Duration::from_secs(1))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_to_a_second() {
        let mut b = AcceptBackoff::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<u64> = (0..10)
            .map(|_| b.next(&emfile).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(b.next(&reset), Duration::ZERO);
        b.reset();
        assert_eq!(b.next(&emfile), Duration::from_millis(10));
    }
}
