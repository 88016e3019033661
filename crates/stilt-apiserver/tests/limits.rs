//! The listening server does not let stalled or idle clients hold connections forever.

use std::io::Read;
use std::time::Duration;
use stilt_apiserver::{ApiServer, ServerOptions};
use stilt_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_sends_anything_is_disconnected() {
    let mut opts = ServerOptions::with_token("t");
    opts.header_read_timeout = Duration::from_millis(300);
    let serving = ApiServer::new(Store::default(), opts)
        .serve_loopback(0)
        .await
        .unwrap();
    let addr = serving.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        // The guard only turns a hang into a failure; the server closes after 300 ms.
        silent
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 64];
        match silent.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    })
    .await
    .unwrap();
    assert!(closed, "the silent connection is closed by the server");
}
