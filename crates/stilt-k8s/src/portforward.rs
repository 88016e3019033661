//! A local port forwarded to a pod: listens on `host:local_port` and forwards each accepted
//! connection through its own port-forward stream to the pod's container port. The pod can be
//! swapped ([`PortForwarder::set_pod`]) without rebinding; when opening a stream fails (pod
//! being replaced) it retries with backoff (Tilt: 50 ms doubling, capped) before giving up on
//! that one connection, and reports the error in [`ForwardState`].
//!
//! Streams go through one tunnel per pod (`pftunnel`) where the API server offers it, else
//! through a WebSocket each. Opening one still costs a round trip to the kubelet (about a
//! millisecond through the tunnel, tens of ms for a new WebSocket), which a client would
//! otherwise wait for on every connection. So after each accepted connection
//! streams are opened ahead ([`Spares`]: as many as connections came within [`SPARE_TTL`], one to
//! [`MAX_SPARES`]) and handed to the next connections to the same pod; each is closed after
//! [`SPARE_TTL`] unused, so an idle forward holds none. (The kubelet connects to the container
//! port when a stream opens: the server sees those connections early.)

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
/// The most streams kept open ahead (a browser opens about six connections at once).
pub const MAX_SPARES: usize = 8;

/// A stream opened ahead for the next connection to `target` (namespace, pod).
struct Spare {
    target: (String, String),
    opened: Instant,
    stream: Box<dyn Duplex>,
}

/// Streams opened ahead, and how many connections asked lately (which sets how many to keep:
/// one for a client that connects now and then, up to [`MAX_SPARES`] for a burst).
#[derive(Default)]
struct Spares {
    ready: Vec<Spare>,
    opening: usize,
    /// Accept times within [`SPARE_TTL`].
    recent: std::collections::VecDeque<Instant>,
}

impl Spares {
    /// How many streams to keep ahead: the connections within [`SPARE_TTL`] (as long as a
    /// stream opened ahead is kept), at least one.
    fn wanted(&mut self, now: Instant) -> usize {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > SPARE_TTL)
        {
            self.recent.pop_front();
        }
        self.recent.len().clamp(1, MAX_SPARES)
    }

    /// A fresh stream to `target`, if one is ready (stale and other-pod ones are dropped). The
    /// oldest goes first: the kubelet connected to the container when the stream opened, and a
    /// server handling one connection at a time is waiting on the one it accepted first.
    fn take(&mut self, target: &(String, String), now: Instant) -> Option<Box<dyn Duplex>> {
        self.recent.push_back(now);
        self.ready
            .retain(|s| s.target == *target && now.duration_since(s.opened) < SPARE_TTL);
        (!self.ready.is_empty()).then(|| self.ready.remove(0).stream)
    }
}

type SpareSlot = Arc<Mutex<Spares>>;

/// Opens streams to `target` until as many are ready or opening as recent demand asks for;
/// each is closed after [`SPARE_TTL`] if no connection takes it.
fn open_spares(
    slot: &SpareSlot,
    cluster: &Arc<dyn Cluster>,
    target: &(String, String),
    container_port: u16,
) {
    let missing = {
        let Ok(mut s) = slot.lock() else { return };
        let wanted = s.wanted(Instant::now());
        let missing = wanted.saturating_sub(s.ready.len() + s.opening);
        s.opening += missing;
        missing
    };
    for _ in 0..missing {
        let (slot, cluster, target) = (slot.clone(), cluster.clone(), target.clone());
        tokio::spawn(async move {
            let opened = cluster
                .port_forward(&target.0, &target.1, container_port)
                .await;
            let at = Instant::now();
            {
                let Ok(mut s) = slot.lock() else { return };
                s.opening = s.opening.saturating_sub(1);
                let Ok(stream) = opened else { return };
                s.ready.push(Spare {
                    target,
                    opened: at,
                    stream,
                });
            }
            tokio::time::sleep(SPARE_TTL).await;
            if let Ok(mut s) = slot.lock() {
                s.ready.retain(|sp| sp.opened != at);
            }
        });
    }
}

impl Drop for PortForwarder {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut s) = self.spare.lock() {
            s.ready.clear();
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
                    let ahead = spares
                        .lock()
                        .ok()
                        .and_then(|mut s| s.take(&(ns.clone(), pod.clone()), Instant::now()));
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
                    open_spares(&spares, &cluster, &next, container_port);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spare(pod: &str, opened: Instant) -> Spare {
        Spare {
            target: ("default".into(), pod.into()),
            opened,
            stream: Box::new(tokio::io::duplex(8).0),
        }
    }

    #[test]
    fn as_many_ahead_as_connections_came_while_streams_are_kept() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let p1 = ("default".to_string(), "p1".to_string());
        let mut s = Spares::default();
        assert_eq!(s.wanted(at(0)), 1, "at least one after any connection");
        for ms in [0, 10, 20] {
            assert!(s.take(&p1, at(ms)).is_none());
        }
        assert_eq!(s.wanted(at(30)), 3);
        for ms in 100..120 {
            s.take(&p1, at(ms));
        }
        assert_eq!(s.wanted(at(130)), MAX_SPARES);
        assert_eq!(
            s.wanted(at(10_200)),
            1,
            "once no stream opened for the burst is kept"
        );
    }

    #[test]
    fn only_fresh_streams_to_the_current_pod_are_handed_out() {
        let t0 = Instant::now();
        let p1 = ("default".to_string(), "p1".to_string());
        let mut s = Spares::default();
        s.ready.push(spare("p1", t0));
        s.ready.push(spare("p0", t0));
        assert!(s.take(&p1, t0 + Duration::from_secs(1)).is_some());
        assert!(s.ready.is_empty(), "the other pod's stream is dropped");
        s.ready.push(spare("p1", t0));
        assert!(s.take(&p1, t0 + SPARE_TTL).is_none(), "stale");
        assert!(s.ready.is_empty());
    }

    #[test]
    fn the_oldest_stream_is_handed_out_first() {
        let t0 = Instant::now();
        let p1 = ("default".to_string(), "p1".to_string());
        let mut s = Spares::default();
        s.ready.push(spare("p1", t0));
        s.ready.push(spare("p1", t0 + Duration::from_millis(5)));
        assert!(s.take(&p1, t0 + Duration::from_millis(10)).is_some());
        assert_eq!(s.ready.len(), 1);
        assert_eq!(s.ready[0].opened, t0 + Duration::from_millis(5));
    }
}
