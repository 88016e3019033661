//! The UI's listener: at most `max` connections served at once (further ones wait in the
//! backlog), and a failing accept (EMFILE) pauses instead of spinning.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    failures: u32,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
            failures: 0,
        }
    }
}

/// 10 ms doubling to 1 s after consecutive failures.
pub fn accept_pause(failures: u32) -> Duration {
    Duration::from_millis(10)
        .saturating_mul(1 << failures.saturating_sub(1).min(7))
        .min(Duration::from_secs(1))
}

impl axum::serve::Listener for CappedListener {
    type Io = SlotStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.failures = 0;
                    return (
                        SlotStream {
                            stream,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    use io::ErrorKind::*;
                    if matches!(
                        e.kind(),
                        ConnectionAborted | ConnectionReset | ConnectionRefused
                    ) {
                        continue;
                    }
                    self.failures = self.failures.saturating_add(1);
                    let pause = accept_pause(self.failures);
                    tracing::warn!("web UI accept failed: {e}; retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding one of the listener's slots until it closes.
pub struct SlotStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for SlotStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SlotStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[test]
    fn accept_failures_back_off_to_a_second() {
        let pauses: Vec<u64> = (1..=9)
            .map(|n| accept_pause(n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    }

    #[tokio::test]
    async fn a_connection_beyond_the_cap_waits_for_a_slot() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = CappedListener::new(tcp, 1);
        let _a = TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await;
        let _b = TcpStream::connect(addr).await.unwrap();
        // With the only slot taken, the second accept does not complete…
        let mut second = Box::pin(listener.accept());
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        // …until the first connection closes.
        drop(first);
        let _ = second.await;
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| match Pin::new(&mut f).poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }
}
