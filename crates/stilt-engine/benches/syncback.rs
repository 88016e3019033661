//! Syncback of 10,000 files of which 1 % changed: bytes and time against copying everything.
//!
//! `cargo bench -p stilt-engine --bench syncback` runs the real helper code (`stilt-syncer`'s
//! server) over a socket pair, with a temp dir as the container's file system. With
//! `STILT_BENCH_DOCKER=1`, it also runs against a real container of
//! `stilt-test/busybox` through the Docker API channel live update uses; with
//! `STILT_BENCH_K8S=1` (after `eval "$(scripts/dev-cluster env)"`), against a pod of the dev
//! cluster through the pod channel (Kubernetes exec).

use std::path::Path;
use std::process::Command;
use std::time::Instant;
use stilt_api::{SyncbackRun, SyncbackSpec};
use stilt_engine::echo::EchoGuard;
use stilt_engine::syncback::transfer::{self, Remote};

const FILES: usize = 10_000;
const CHANGED: usize = FILES / 100;

/// File `i`'s content: 200 B – 8 KiB, varied so sizes are not all equal.
fn body(i: usize, version: u32) -> Vec<u8> {
    let size = 200 + (i * 7919) % 8000;
    let mut v = format!("file {i} version {version}\n").into_bytes();
    v.resize(size, b'a' + (i % 26) as u8);
    v
}

fn rel(i: usize) -> String {
    format!("d{:02}/sub{}/f{i}.txt", i % 50, i % 7)
}

fn spec(src: &str, target: &Path) -> SyncbackSpec {
    SyncbackSpec {
        src_dir: src.into(),
        target_dir: target.display().to_string(),
        delete: true,
        protected: vec![".git".into(), "Tiltfile".into()],
        ..Default::default()
    }
}

async fn measure<R: Remote>(remote: &mut R, src: &str, target: &Path) -> SyncbackRun {
    let t = Instant::now();
    let mut r = transfer::run(remote, &spec(src, target), &EchoGuard::default(), |_| {}).await;
    assert_eq!(r.error, "", "syncback failed");
    r.duration_ms = t.elapsed().as_secs_f64() * 1e3;
    r
}

fn print(label: &str, full: &SyncbackRun, incr: &SyncbackRun, noop: &SyncbackRun) {
    println!("syncback [{label}] {FILES} files, {CHANGED} changed:");
    println!(
        "  full copy:    {:>6} files {:>11} bytes {:>8.0} ms",
        full.files_copied, full.bytes_transferred, full.duration_ms
    );
    println!(
        "  1% changed:   {:>6} files {:>11} bytes {:>8.0} ms  ({:.2} % of the full copy's bytes, {:.1} % of its time)",
        incr.files_copied,
        incr.bytes_transferred,
        incr.duration_ms,
        100.0 * incr.bytes_transferred as f64 / full.bytes_transferred as f64,
        100.0 * incr.duration_ms / full.duration_ms
    );
    println!(
        "  no change:    {:>6} files {:>11} bytes {:>8.0} ms",
        noop.files_copied, noop.bytes_transferred, noop.duration_ms
    );
}

/// Half the changed files keep their size (found by hash), half grow.
fn change_plan() -> Vec<(usize, Vec<u8>)> {
    (0..CHANGED)
        .map(|k| {
            let i = k * 100 + 3;
            let mut b = body(i, 2);
            if k % 2 == 1 {
                b.extend_from_slice(b"grown\n");
            }
            (i, b)
        })
        .collect()
}

async fn in_process() {
    let container = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        let p = container.path().join("app").join(rel(i));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body(i, 1)).unwrap();
    }
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let opts = stilt_syncer::ServeOptions {
        root: Some(container.path().to_path_buf()),
    };
    let b2 = b.try_clone().unwrap();
    std::thread::spawn(move || stilt_syncer::serve(b, b2, &opts));
    a.set_nonblocking(true).unwrap();
    let (r, w) = tokio::io::split(tokio::net::UnixStream::from_std(a).unwrap());
    let mut client = stilt_syncer::Client::new(r, w);
    client.hello().await.unwrap();

    let full = measure(&mut client, "/app", local.path()).await;
    // Let mtimes move on, as a real build step would.
    std::thread::sleep(std::time::Duration::from_millis(20));
    for (i, b) in change_plan() {
        std::fs::write(container.path().join("app").join(rel(i)), b).unwrap();
    }
    let incr = measure(&mut client, "/app", local.path()).await;
    let noop = measure(&mut client, "/app", local.path()).await;
    assert_eq!(incr.files_copied as usize, CHANGED);
    print("helper over a socket pair", &full, &incr, &noop);
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn in_docker() {
    let id = docker(&[
        "run",
        "-d",
        "--rm",
        "stilt-test/busybox:latest",
        "sleep",
        "3600",
    ]);
    docker(&["exec", &id, "sh", "-c", &fill_script()]);
    let local = tempfile::tempdir().unwrap();
    let client = stilt_docker::BollardDocker::connect()
        .await
        .expect("docker");
    let channels = stilt_engine::liveupdate::DockerChannels::default();
    let (mut remote, _) = channels.take(&client, &id).await.expect(
        "the stilt-syncer helper in the container (embedded by stilt-k8s, or STILT_SYNCER_BIN)",
    );
    let full = measure(&mut remote, "/app", local.path()).await;
    docker(&["exec", &id, "sh", "-c", &change_script()]);
    let incr = measure(&mut remote, "/app", local.path()).await;
    let noop = measure(&mut remote, "/app", local.path()).await;
    assert_eq!(incr.files_copied as usize, CHANGED);
    print("real container, Docker API channel", &full, &incr, &noop);
    docker(&["rm", "-f", &id]);
}

fn kubectl(args: &[&str]) -> String {
    let bin = std::env::var("STILT_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(bin).args(args).output().expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fill_script() -> String {
    format!(
        "i=0; while [ $i -lt {FILES} ]; do d=/app/d$(printf %02d $((i % 50)))/sub$((i % 7)); mkdir -p $d; \
         head -c $((200 + (i * 7919) % 8000)) /dev/zero | tr '\\0' a > $d/f$i.txt; i=$((i+1)); done"
    )
}

fn change_script() -> String {
    change_plan()
        .iter()
        .map(|(i, b)| {
            format!(
                "head -c {} /dev/zero | tr '\\0' b > /app/{};",
                b.len(),
                rel(*i)
            )
        })
        .collect()
}

/// Runs on a current-thread runtime: pod channels are not `Send`.
async fn in_pod() {
    let registry =
        std::env::var("STILT_CLUSTER_REGISTRY").unwrap_or_else(|_| "localhost:5000".into());
    let image = format!("{registry}/stilt-bench-busybox:latest");
    docker(&["tag", "stilt-test/busybox:latest", &image]);
    docker(&["push", &image]);
    let pod = "stilt-bench-syncback";
    let _ = Command::new(std::env::var("STILT_KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args(["delete", "pod", pod, "--ignore-not-found", "--wait=true"])
        .output();
    kubectl(&[
        "run",
        pod,
        "--image",
        &image,
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=120s",
    ]);
    kubectl(&["exec", pod, "--", "sh", "-c", &fill_script()]);
    let cluster: std::sync::Arc<dyn stilt_k8s::Cluster> = std::sync::Arc::new(
        stilt_k8s::KubeCluster::connect(None, None)
            .await
            .expect("the dev cluster"),
    );
    let target = stilt_k8s::ContainerRef::new("default", pod, pod);
    let mut syncer =
        stilt_k8s::ContainerSyncer::connect(cluster, target, stilt_k8s::ChannelOptions::discover())
            .await
            .expect("a channel into the pod");
    let local = tempfile::tempdir().unwrap();
    let full = measure(&mut syncer, "/app", local.path()).await;
    kubectl(&["exec", pod, "--", "sh", "-c", &change_script()]);
    let incr = measure(&mut syncer, "/app", local.path()).await;
    let noop = measure(&mut syncer, "/app", local.path()).await;
    assert_eq!(incr.files_copied as usize, CHANGED);
    print(
        "pod of the dev cluster, Kubernetes exec channel",
        &full,
        &incr,
        &noop,
    );
    syncer.close().await;
    kubectl(&["delete", "pod", pod, "--wait=false"]);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(in_process());
    if std::env::var("STILT_BENCH_DOCKER").is_ok_and(|v| v == "1") {
        rt.block_on(in_docker());
    }
    if std::env::var("STILT_BENCH_K8S").is_ok_and(|v| v == "1") {
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        local.block_on(in_pod());
    }
}
