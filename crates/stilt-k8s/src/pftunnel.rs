//! One port-forward connection per pod carrying a stream pair per forwarded connection, as
//! kubectl and Tilt do: SPDY (the kubelet's port-forward protocol) tunnelled through one
//! WebSocket to the API server (`SPDY/3.1+portforward.k8s.io`, Kubernetes ≥ 1.30).
//!
//! Opening a forwarded connection is then two SYN_STREAM frames on a connection already open
//! (about a millisecond), where a WebSocket per connection costs a TLS and upgrade round trip
//! through the API server (tens of milliseconds) each time.
//!
//! Each forwarded connection is a [`tokio::io::DuplexStream`] pumped to its SPDY data stream.
//! The kubelet reports a failure to reach the container port on the pair's error stream; the
//! connection is then closed (and the error logged). The session reads frames in one task, so
//! a client that stops reading stalls the other connections of the same pod, as in kubectl.

use crate::spdy::{self, Frame, HeaderWriter};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// The WebSocket subprotocol of the SPDY tunnel.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// How long the kubelet may take to answer a new stream.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames from the server waiting for a slow local reader before the session stalls.
const STREAM_BUFFER: usize = 256;
/// Bytes buffered between a forwarded connection and its stream.
const PIPE_BYTES: usize = 64 * 1024;
/// Keep-alive ping period (kubectl's).
const PING_EVERY: Duration = Duration::from_secs(10);

/// What the session tells a stream.
enum Incoming {
    Data(Bytes),
    /// The server will send no more (FIN) or reset the stream.
    End,
}

struct StreamSlot {
    incoming: mpsc::Sender<Incoming>,
    reply: Option<oneshot::Sender<()>>,
}

struct Shared {
    /// Frames to send, in order; the writer task owns the WebSocket's sink.
    out: mpsc::UnboundedSender<Bytes>,
    state: std::sync::Mutex<State>,
    closed: AtomicBool,
    request_ids: AtomicU32,
}

#[derive(Default)]
struct State {
    headers: HeaderWriter,
    next_stream: u32,
    streams: HashMap<u32, StreamSlot>,
}

/// An open tunnel to one pod.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

impl Session {
    /// Runs the SPDY session over an upgraded WebSocket.
    pub fn start<S>(ws: tokio_tungstenite::WebSocketStream<S>) -> Session
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut source) = ws.split();
        let (out, mut to_send) = mpsc::unbounded_channel::<Bytes>();
        let shared = Arc::new(Shared {
            out,
            state: std::sync::Mutex::new(State {
                next_stream: 1,
                ..Default::default()
            }),
            closed: AtomicBool::new(false),
            request_ids: AtomicU32::new(0),
        });
        let writer_shared = shared.clone();
        tokio::spawn(async move {
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.tick().await;
            let mut ping_id: u32 = 1;
            loop {
                let frame = tokio::select! {
                    f = to_send.recv() => match f {
                        Some(f) => f,
                        None => break,
                    },
                    _ = ping.tick() => {
                        ping_id = ping_id.wrapping_add(2);
                        spdy::ping(ping_id)
                    }
                };
                if sink.send(Message::Binary(frame)).await.is_err() {
                    break;
                }
            }
            writer_shared.close();
            let _ = sink.close().await;
        });
        let reader_shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            while let Some(msg) = source.next().await {
                tracing::trace!("port-forward tunnel message: {msg:?}");
                let Ok(msg) = msg else { break };
                match msg {
                    Message::Binary(b) => buf.extend_from_slice(&b),
                    Message::Close(_) => break,
                    _ => continue,
                }
                while let Some(frame) = spdy::parse(&mut buf) {
                    if !reader_shared.dispatch(frame).await {
                        reader_shared.close();
                        return;
                    }
                }
            }
            reader_shared.close();
        });
        Session { shared }
    }

    /// Whether the session can still open streams.
    pub fn is_open(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }

    /// Opens a forwarded connection to `port` in the pod.
    pub async fn open(&self, port: u16) -> Result<tokio::io::DuplexStream, String> {
        let request = self
            .shared
            .request_ids
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let port_text = port.to_string();
        let (error_tx, mut error_rx) = mpsc::channel(8);
        let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
        let (reply_tx, reply_rx) = oneshot::channel();
        let data_stream = {
            let mut st = self.shared.lock();
            if self.shared.closed.load(Ordering::Acquire) {
                return Err("the port-forward tunnel is closed".into());
            }
            let error_stream = st.next_stream;
            let data_stream = error_stream + 2;
            st.next_stream += 4;
            st.streams.insert(
                error_stream,
                StreamSlot {
                    incoming: error_tx,
                    reply: None,
                },
            );
            st.streams.insert(
                data_stream,
                StreamSlot {
                    incoming: data_tx,
                    reply: Some(reply_tx),
                },
            );
            // Header blocks share one zlib stream: encode and queue under the same lock.
            let headers = |kind: &'static str| {
                [
                    ("streamtype", kind),
                    ("port", port_text.as_str()),
                    ("requestid", request.as_str()),
                ]
            };
            let frames = [
                st.headers.syn_stream(error_stream, &headers("error")),
                // The client only reads the error stream.
                spdy::data(error_stream, true, &[]),
                st.headers.syn_stream(data_stream, &headers("data")),
            ];
            for f in frames {
                if self.shared.out.send(f).is_err() {
                    return Err("the port-forward tunnel is closed".into());
                }
            }
            data_stream
        };
        match tokio::time::timeout(REPLY_TIMEOUT, reply_rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                self.shared.forget(data_stream);
                return Err("the kubelet refused the port-forward stream".into());
            }
            Err(_) => {
                self.shared.forget(data_stream);
                return Err("no answer to the port-forward stream within 10 s".into());
            }
        }
        let (local, remote) = tokio::io::duplex(PIPE_BYTES);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let (mut from_client, mut to_client) = tokio::io::split(remote);
            let up = {
                let shared = shared.clone();
                async move {
                    let mut chunk = vec![0u8; spdy::MAX_DATA];
                    loop {
                        match from_client.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                let _ = shared.out.send(spdy::data(data_stream, true, &[]));
                                return;
                            }
                            Ok(n) => {
                                if shared
                                    .out
                                    .send(spdy::data(data_stream, false, &chunk[..n]))
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                }
            };
            let down = async {
                let mut data_rx = data_rx;
                loop {
                    tokio::select! {
                        got = data_rx.recv() => match got {
                            Some(Incoming::Data(b)) => {
                                if to_client.write_all(&b).await.is_err() {
                                    // The client is gone: stop the server's side.
                                    let _ = shared.out.send(spdy::rst_stream(data_stream, spdy::CANCEL));
                                    return;
                                }
                            }
                            Some(Incoming::End) | None => {
                                let _ = to_client.shutdown().await;
                                return;
                            }
                        },
                        Some(Incoming::Data(text)) = error_rx.recv() => {
                            tracing::debug!(
                                "port-forward to port {port}: {}",
                                String::from_utf8_lossy(&text)
                            );
                            let _ = shared.out.send(spdy::rst_stream(data_stream, spdy::CANCEL));
                            let _ = to_client.shutdown().await;
                            return;
                        }
                    }
                }
            };
            tokio::join!(up, down);
            shared.forget(data_stream);
        });
        Ok(local)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map consistent (inserts and removes only).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a frame to its stream; `false` ends the session.
    async fn dispatch(&self, frame: Frame) -> bool {
        tracing::trace!("port-forward tunnel: {frame:?}");
        match frame {
            Frame::SynReply { stream, .. } => {
                if let Some(reply) = self
                    .lock()
                    .streams
                    .get_mut(&stream)
                    .and_then(|s| s.reply.take())
                {
                    let _ = reply.send(());
                }
            }
            Frame::Data { stream, fin, data } => {
                let incoming = self.lock().streams.get(&stream).map(|s| s.incoming.clone());
                if let Some(tx) = incoming {
                    if !data.is_empty() {
                        let _ = tx.send(Incoming::Data(data)).await;
                    }
                    if fin {
                        let _ = tx.send(Incoming::End).await;
                    }
                }
            }
            Frame::RstStream { stream, .. } => {
                let slot = self.lock().streams.remove(&stream);
                if let Some(slot) = slot {
                    // Dropping a pending reply tells the opener the stream was refused.
                    let _ = slot.incoming.try_send(Incoming::End);
                }
            }
            Frame::Ping { id } => {
                // Our own pings (odd ids) come back as answers; the server's are echoed.
                if id % 2 == 0 {
                    let _ = self.out.send(spdy::ping(id));
                }
            }
            Frame::GoAway { .. } => return false,
            Frame::Skipped { .. } => {}
        }
        true
    }

    fn forget(&self, data_stream: u32) {
        let mut st = self.lock();
        st.streams.remove(&data_stream);
        st.streams.remove(&(data_stream - 2));
    }

    /// Ends every stream; the session opens no more.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let streams = std::mem::take(&mut self.lock().streams);
        for (_, slot) in streams {
            let _ = slot.incoming.try_send(Incoming::End);
        }
    }
}

/// The tunnels of one cluster connection, one per pod, opened on first use.
#[derive(Default)]
pub struct Tunnels {
    sessions: tokio::sync::Mutex<HashMap<(String, String), Session>>,
    /// The API server did not offer the tunnel: until then, connections go the old way.
    unsupported_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// How long a cluster that refused the tunnel is not asked again.
const RETRY_UNSUPPORTED: Duration = Duration::from_secs(60);

impl Tunnels {
    /// A connection to `port` of the pod through its tunnel; `None` when there is no tunnel to
    /// the pod (the caller opens a WebSocket of its own instead).
    pub async fn open(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> crate::error::Result<Option<tokio::io::DuplexStream>> {
        let skip =
            |u: &Option<tokio::time::Instant>| u.is_some_and(|t| tokio::time::Instant::now() < t);
        if skip(
            &self
                .unsupported_until
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            return Ok(None);
        }
        let key = (namespace.to_string(), pod.to_string());
        let session = {
            let mut sessions = self.sessions.lock().await;
            sessions.retain(|_, s| s.is_open());
            match sessions.get(&key) {
                Some(s) => s.clone(),
                None => match connect(client, namespace, pod).await {
                    Ok(s) => {
                        tracing::debug!("port-forward tunnel to {namespace}/{pod} open");
                        sessions.insert(key, s.clone());
                        s
                    }
                    Err(refused) => {
                        tracing::debug!(
                            "no port-forward tunnel to {namespace}/{pod}: {}",
                            refused.reason
                        );
                        if refused.unsupported {
                            *self
                                .unsupported_until
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()) =
                                Some(tokio::time::Instant::now() + RETRY_UNSUPPORTED);
                        }
                        return Ok(None);
                    }
                },
            }
        };
        session
            .open(port)
            .await
            .map(Some)
            .map_err(crate::error::K8sError::Other)
    }
}

/// Why a tunnel could not be opened.
struct Refused {
    /// The API server does not speak the tunnel protocol (as opposed to a missing pod, a
    /// denied request or a network failure).
    unsupported: bool,
    reason: String,
}

/// Upgrades a request for the pod's port-forward to the SPDY tunnel.
async fn connect(client: &kube::Client, namespace: &str, pod: &str) -> Result<Session, Refused> {
    use http::header;
    use tokio_tungstenite::tungstenite::handshake::client::generate_key;
    let failed = |unsupported: bool, reason: String| Refused {
        unsupported,
        reason,
    };
    let key = generate_key();
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}/portforward"
    ))
    .header(header::CONNECTION, "Upgrade")
    .header(header::UPGRADE, "websocket")
    .header(header::SEC_WEBSOCKET_VERSION, "13")
    .header(header::SEC_WEBSOCKET_KEY, &key)
    .header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
    .body(kube::client::Body::from(Vec::new()))
    .map_err(|e| failed(false, e.to_string()))?;
    let response = client
        .send(request)
        .await
        .map_err(|e| failed(false, e.to_string()))?;
    let status = response.status();
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        let denied = matches!(status.as_u16(), 401 | 403 | 404);
        return Err(failed(!denied, format!("the API server answered {status}")));
    }
    let protocol = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if protocol != PROTOCOL {
        return Err(failed(
            true,
            format!("the API server chose protocol {protocol:?}"),
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| failed(false, e.to_string()))?;
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        hyper_util::rt::TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    Ok(Session::start(ws))
}
