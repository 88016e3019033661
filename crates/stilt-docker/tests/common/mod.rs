//! Shared harness for the contract tests: the same test body runs against `FakeDocker`
//! (always) and against the real engine (when `STILT_TEST_DOCKER=1`; then a missing engine is
//! a loud failure, never a silent skip).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stilt_docker::*;

pub const BASE_IMAGE: &str = "stilt-test/busybox:latest";

pub struct Harness {
    pub client: Arc<dyn DockerClient>,
    pub real: bool,
    pub fake: Option<FakeDocker>,
    /// Unique per test run: label value and name prefix.
    pub run: String,
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn real_requested() -> bool {
    std::env::var("STILT_TEST_DOCKER").is_ok_and(|v| v == "1")
}

/// The real engine, or `None` when `STILT_TEST_DOCKER` is not `1`.
/// Panics (fails the test) when it is `1` and no engine answers.
pub async fn real_harness() -> Option<Harness> {
    if !real_requested() {
        eprintln!(
            "real-engine contract skipped: set STILT_TEST_DOCKER=1 (after scripts/docker-engine up)"
        );
        return None;
    }
    let client = match BollardDocker::connect().await {
        Ok(c) => c,
        Err(e) => panic!(
            "STILT_TEST_DOCKER=1 but no Docker engine answered: {e}\n(run scripts/docker-engine up)"
        ),
    };
    let client: Arc<dyn DockerClient> = Arc::new(client);
    ensure_base_image(client.as_ref()).await;
    Some(Harness {
        client,
        real: true,
        fake: None,
        run: unique("stilt-contract"),
    })
}

/// `FakeDocker` with the base image registered and a start hook that "runs" the `echo`s of
/// an `sh -c '…'` command (so log tests have output).
pub fn fake_harness() -> Harness {
    let fake = FakeDocker::new();
    fake.add_image(BASE_IMAGE);
    fake.set_start_hook(|spec| {
        let mut out = Vec::new();
        if let [sh, c, script] = spec.cmd.as_slice()
            && sh == "sh"
            && c == "-c"
        {
            for part in script.split(';') {
                let part = part.trim();
                if let Some(rest) = part.strip_prefix("echo ") {
                    match rest.strip_suffix(">&2") {
                        Some(e) => out.push((StdStream::Stderr, e.trim().to_string())),
                        None => out.push((StdStream::Stdout, rest.trim().to_string())),
                    }
                }
            }
        }
        out
    });
    Harness {
        client: Arc::new(fake.clone()),
        real: false,
        fake: Some(fake),
        run: unique("stilt-contract"),
    }
}

/// Build `stilt-test/busybox:latest` from Debian's static busybox if nobody has yet
/// (colleagues' `scripts/test-images` normally does this).
pub async fn ensure_base_image(client: &dyn DockerClient) {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _g = LOCK.lock().await;
    if client
        .image_exists(BASE_IMAGE)
        .await
        .expect("inspect base image")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .unwrap();
    let mut req = BuildRequest::new("stilt-test/busybox", BuildContext::new(dir.path()));
    req.extra_tags = vec![BASE_IMAGE.to_string()];
    client.build(req, None).await.expect("build base image");
}

/// Removes a container when dropped (even when the test panics).
pub struct ContainerGuard {
    pub client: Arc<dyn DockerClient>,
    pub id: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let client = self.client.clone();
        let id = self.id.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { client.remove_container(&id, true).await })
        })
        .join();
    }
}

pub fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// Plain HTTP/1.0 GET against 127.0.0.1; `None` until something answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Poll `f` until it returns `Some` or `secs` pass.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Generates `<name>::fake` (always) and `<name>::real` (env-gated) from one body.
#[macro_export]
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fake() {
                super::$name(&super::common::fake_harness()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "real engine: STILT_TEST_DOCKER=1 and --ignored (scripts/test e2e)"]
            async fn real() {
                if let Some(h) = super::common::real_harness().await {
                    super::$name(&h).await
                }
            }
        }
    };
}
