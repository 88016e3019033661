//! A local port forwarded to a pod: listens on `host:local_port` and forwards each accepted
//! connection through its own port-forward stream to the pod's container port. The pod can be
//! swapped ([`PortForwarder::set_pod`]) without rebinding; when opening a stream fails (pod
//! being replaced) it retries with backoff (Tilt: 50 ms doubling, capped) before giving up on
//! that one connection, and reports the error in [`ForwardState`].
//!
//! Opening a stream costs a round trip through the API server to the kubelet (tens of ms), which
//! a client would otherwise wait for on every connection. So after each accepted connection the
//! next one's stream is opened ahead ([`Spare`]) and handed to the next connection to the same
//! pod; it is closed after [`SPARE_TTL`] unused, so an idle forward holds none. (The kubelet
//! connects to the container port when a stream opens: the server sees the connection early.)

use crate::cluster::Cluster;
use crate::cluster::Duplex;
use crate::error::{K8sError, Result};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// What to forward.
#[derive(Debug, Clone)]
pub struct ForwardSpec {
    pub namespace: String,
    pub pod: String,
    /// Local address (`localhost` means 127.0.0.1; empty too).
    pub host: String,
    /// 0 = any free port (see [`PortForwarder::local_addr`]).
    pub local_port: u16,
    pub container_port: u16,
}

/// Current state, for PortForward status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardState {
    pub namespace: String,
    pub pod: String,
    pub local_addr: Option<SocketAddr>,
    pub container_port: u16,
    /// When the current pod was first reached.
    pub started_at: Option<DateTime<Utc>>,
    /// Last error reaching the pod; cleared by the next success.
    pub error: Option<String>,
    /// Connections forwarded so far.
    pub connections: u64,
}

/// A running forward; stops when dropped.
pub struct PortForwarder {
    target: watch::Sender<(String, String)>,
    state: watch::Receiver<ForwardState>,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    spare: SpareSlot,
}

/// How long a stream opened ahead waits for a connection before it is closed.
pub const SPARE_TTL: Duration = Duration::from_secs(10);

/// A stream opened ahead for the next connection to `target` (namespace, pod).
struct Spare {
    target: (String, String),
    opened: Instant,
    stream: Box<dyn Duplex>,
}

type SpareSlot = Arc<Mutex<Option<Spare>>>;

/// The spare stream, if it is for `target` and fresh; a stale one is dropped (closed).
fn take_spare(slot: &SpareSlot, target: &(String, String)) -> Option<Box<dyn Duplex>> {
    let spare = slot.lock().ok()?.take()?;
    (spare.target == *target && spare.opened.elapsed() < SPARE_TTL).then_some(spare.stream)
}

/// Opens a stream to `target` ahead of the next connection, unless one is there; it is closed
/// after [`SPARE_TTL`] if no connection takes it.
async fn open_spare(
    slot: SpareSlot,
    cluster: Arc<dyn Cluster>,
    target: (String, String),
    container_port: u16,
) {
    if slot.lock().map_or(true, |s| s.is_some()) {
        return;
    }
    let Ok(stream) = cluster
        .port_forward(&target.0, &target.1, container_port)
        .await
    else {
        return;
    };
    let opened = Instant::now();
    {
        let Ok(mut s) = slot.lock() else { return };
        if s.is_some() {
            return;
        }
        *s = Some(Spare {
            target,
            opened,
            stream,
        });
    }
    tokio::time::sleep(SPARE_TTL).await;
    if let Ok(mut s) = slot.lock()
        && s.as_ref().is_some_and(|s| s.opened == opened)
    {
        *s = None;
    }
}

impl std::fmt::Debug for PortForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwarder")
            .field("local_addr", &self.local_addr)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl Drop for PortForwarder {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut s) = self.spare.lock() {
            *s = None;
        }
    }
}

/// Max time spent retrying to open a stream for one accepted connection.
const OPEN_RETRY_BUDGET: Duration = Duration::from_secs(3);

impl PortForwarder {
    /// Bind and start forwarding.
    pub async fn start(cluster: Arc<dyn Cluster>, spec: ForwardSpec) -> Result<PortForwarder> {
        let host = match spec.host.as_str() {
            "" | "localhost" => "127.0.0.1",
            h => h,
        };
        let port = spec.local_port;
        let listener = TcpListener::bind((host, port))
            .await
            .map_err(|e| K8sError::Other(format!("listen on {host}:{port}: {e}")))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| K8sError::Other(e.to_string()))?;
        let (target_tx, target_rx) = watch::channel((spec.namespace.clone(), spec.pod.clone()));
        let (state_tx, state_rx) = watch::channel(ForwardState {
            namespace: spec.namespace.clone(),
            pod: spec.pod.clone(),
            local_addr: Some(local_addr),
            container_port: spec.container_port,
            ..Default::default()
        });
        let state_tx = Arc::new(state_tx);
        let container_port = spec.container_port;
        let spare: SpareSlot = Default::default();
        let spares = spare.clone();
        let task = tokio::spawn(async move {
            // Reset status when the pod changes.
            let mut changes = target_rx.clone();
            let st = state_tx.clone();
            // Ends when the PortForwarder (the sender) is dropped.
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    let (ns, pod) = changes.borrow().clone();
                    st.send_modify(|s| {
                        s.namespace = ns;
                        s.pod = pod;
                        s.started_at = None;
                        s.error = None;
                    });
                }
            });
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let _ = conn.set_nodelay(true);
                let cluster = cluster.clone();
                let target = target_rx.clone();
                let st = state_tx.clone();
                let spares = spares.clone();
                tokio::spawn(async move {
                    let (ns, pod) = target.borrow().clone();
                    let ahead = take_spare(&spares, &(ns.clone(), pod.clone()));
                    let mut delay = Duration::from_millis(50);
                    let deadline = tokio::time::Instant::now() + OPEN_RETRY_BUDGET;
                    let mut remote = loop {
                        if let Some(stream) = ahead {
                            break stream;
                        }
                        // Always use the newest target (it may change while we retry).
                        let (ns2, pod2) = target.borrow().clone();
                        match cluster.port_forward(&ns2, &pod2, container_port).await {
                            Ok(r) => break r,
                            Err(e) => {
                                let msg =
                                    format!("forwarding to {ns2}/{pod2}:{container_port}: {e}");
                                st.send_modify(|s| s.error = Some(msg));
                                if tokio::time::Instant::now() + delay > deadline {
                                    return;
                                }
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(15));
                            }
                        }
                    };
                    st.send_modify(|s| {
                        if s.pod == pod && s.namespace == ns && s.started_at.is_none() {
                            s.started_at = Some(Utc::now());
                        }
                        s.error = None;
                        s.connections += 1;
                    });
                    let next = target.borrow().clone();
                    tokio::spawn(open_spare(spares, cluster, next, container_port));
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut remote).await;
                });
            }
        });
        Ok(PortForwarder {
            target: target_tx,
            state: state_rx,
            local_addr,
            task,
            spare,
        })
    }

    /// Forward new connections to another pod (existing connections stay where they are).
    pub fn set_pod(&self, namespace: &str, pod: &str) {
        let _ = self.target.send((namespace.to_string(), pod.to_string()));
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the state.
    pub fn state(&self) -> ForwardState {
        self.state.borrow().clone()
    }

    /// Watch the state.
    pub fn subscribe(&self) -> watch::Receiver<ForwardState> {
        self.state.clone()
    }
}
