//! Save-to-running figures of a real `stilt up`. Prints numbers; asserts nothing.
//!
//!   cargo bench -p stilt --bench latency              # local: save → cmd start, 100k-file watch
//!   STILT_BENCH_DOCKER=1 cargo bench -p stilt --bench latency   # + save → visible in a container
//!   STILT_BENCH_K8S=1 …                                          # + save → visible in a pod (dev cluster)
//!
//! The persistent-channel fast path uses the static helper embedded by stilt-k8s's build script
//! (STILT_SYNCER_BIN=path overrides it; STILT_EMBED_HELPER=0 at build time leaves it out).
//!
//! STILT_BENCH_IDLE_SECS (default 60) sets the idle-CPU window; STILT_BENCH_SKIP_LOCAL=1 skips
//! the local-process and big-tree parts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn stilt() -> &'static str {
    env!("CARGO_BIN_EXE_stilt")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Up {
    child: Child,
    home: PathBuf,
}

impl Up {
    fn start(dir: &Path) -> Up {
        // Outside the project: a log inside a build context would trigger rebuilds.
        let home = std::env::temp_dir().join(format!(
            "stilt-bench-home-{}",
            dir.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&home).unwrap();
        let log = std::fs::File::create(home.join("up.log")).unwrap();
        let child = Command::new(stilt())
            .args(["up", "--stream", "--port", &free_port().to_string()])
            .current_dir(dir)
            .env("STILT_HOME", &home)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Up { child, home }
    }

    fn get(&self, args: &[&str]) -> String {
        let out = Command::new(stilt())
            .args(args)
            .env("STILT_HOME", &self.home)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Up) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {what}; log:\n{}",
            std::fs::read_to_string(self.home.join("up.log")).unwrap_or_default()
        );
    }

    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        kb / 1024.0
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
    }
}

/// Save → the resource's cmd starts (the cmd records its own start time).
fn save_to_cmd_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.txt"), "0").unwrap();
    std::fs::write(
        dir.path().join("Tiltfile"),
        "local_resource('c', cmd='date +%s%N >> starts.txt', deps=['src'])\n",
    )
    .unwrap();
    let up = Up::start(dir.path());
    let starts = dir.path().join("starts.txt");
    let count = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    up.wait_for("the initial build", Duration::from_secs(60), |_| {
        count(&starts) >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut lat = Vec::new();
    for i in 0..100 {
        let before = count(&starts);
        let t0 = now_ns();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dir.path().join("src/a.txt"))
            .unwrap();
        write!(f, "{i}").unwrap();
        drop(f);
        up.wait_for("the cmd to start", Duration::from_secs(20), |_| {
            count(&starts) > before
        });
        let last: u128 = std::fs::read_to_string(&starts)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        lat.push((last.saturating_sub(t0)) as f64 / 1e6);
        // Tilt's 250 ms settle after a local cmd, plus margin, so saves do not coalesce.
        std::thread::sleep(Duration::from_millis(400));
    }
    println!(
        "save → cmd start (100 saves):           p50 {:.1} ms  p95 {:.1} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.95)
    );
}

/// Watch start-up, RSS and idle CPU with a 100,000-file tree in 10,000 directories watched.
fn big_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for d in 0..10_000 {
        let sub = tree.join(format!("d{:02}/d{d}", d % 100));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..10 {
            std::fs::write(sub.join(format!("f{f}.txt")), "x").unwrap();
        }
    }
    std::fs::write(
        dir.path().join("Tiltfile"),
        "local_resource('big', cmd='true', deps=['tree'])\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let up = Up::start(dir.path());
    up.wait_for("the watch to start", Duration::from_secs(120), |u| {
        u.get(&[
            "get",
            "filewatch",
            "local:big",
            "-o",
            "jsonpath={.status.monitorStartTime}",
        ])
        .len()
            > 5
    });
    let ready = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "100k files / 10k dirs: watch ready {:.2} s after start (incl. process start, API, Tiltfile load)",
        ready.as_secs_f64()
    );
    println!("100k files / 10k dirs: RSS {:.1} MB", up.rss_mb());
    let idle: u64 = std::env::var("STILT_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let ticks_per_sec = 100.0;
    let c0 = up.cpu_ticks();
    std::thread::sleep(Duration::from_secs(idle));
    let c1 = up.cpu_ticks();
    println!(
        "idle CPU over {idle} s: {:.2} %  (RSS {:.1} MB)",
        (c1 - c0) as f64 / ticks_per_sec / idle as f64 * 100.0,
        up.rss_mb()
    );
}

/// Save → new content visible in a compose container (live update).
fn save_to_container() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = dir.path();
    std::fs::create_dir_all(p.join("www/many")).unwrap();
    std::fs::write(p.join("www/index.html"), "v0").unwrap();
    for i in 0..1000 {
        std::fs::write(p.join(format!("www/many/f{i}.txt")), "0").unwrap();
    }
    std::fs::write(p.join("Dockerfile"), "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n").unwrap();
    std::fs::write(p.join("docker-compose.yml"), format!("version: \"3\"\nservices:\n  web:\n    image: stilt-bench-web\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n")).unwrap();
    std::fs::write(p.join("Tiltfile"), "docker_compose('docker-compose.yml')\ndocker_build('stilt-bench-web', '.', live_update=[sync('www', '/www')])\n").unwrap();
    let up = Up::start(p);
    let get = |path: &str| -> Option<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
    };
    up.wait_for("the container", Duration::from_secs(180), |_| {
        get("/index.html").as_deref() == Some("v0")
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut lat = Vec::new();
    for i in 1..=100 {
        let want = format!("v{i}");
        let t0 = Instant::now();
        std::fs::write(p.join("www/index.html"), &want).unwrap();
        up.wait_for("the edit in the container", Duration::from_secs(30), |_| {
            get("/index.html").as_deref() == Some(want.as_str())
        });
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "save → visible in container (100 edits): p50 {:.1} ms  p95 {:.1} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.95)
    );
    let t0 = Instant::now();
    for i in 0..1000 {
        std::fs::write(p.join(format!("www/many/f{i}.txt")), "1").unwrap();
    }
    up.wait_for(
        "1,000 files in the container",
        Duration::from_secs(60),
        |_| {
            get("/many/f999.txt").as_deref() == Some("1")
                && get("/many/f0.txt").as_deref() == Some("1")
        },
    );
    println!(
        "one edit of 1,000 files → all visible:   {:.0} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let _ = Command::new("docker-compose")
        .args(["down"])
        .current_dir(p)
        .output();
}

fn http_get_sized(port: u16, path: &str) -> Option<String> {
    use std::io::{BufRead, BufReader, Read};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut r = BufReader::new(s);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

/// Save → new content visible in a pod (live update over the persistent channel), through a
/// port-forward. Needs the dev cluster (`eval "$(scripts/dev-cluster env)"`).
fn save_to_pod() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = dir.path();
    let name = format!("bench-lu-{port}");
    std::fs::create_dir_all(p.join("www")).unwrap();
    std::fs::write(p.join("www/index.html"), "v0").unwrap();
    std::fs::write(p.join("Dockerfile"), "FROM stilt-test/busybox:latest\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n").unwrap();
    std::fs::write(
        p.join("deploy.yaml"),
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: stilt-bench-lu\n"),
    )
    .unwrap();
    std::fs::write(
        p.join("Tiltfile"),
        format!("allow_k8s_contexts('stilt-dev')\nk8s_yaml('deploy.yaml')\ndocker_build('stilt-bench-lu', '.', live_update=[sync('www', '/www')])\nk8s_resource('{name}', port_forwards=['{port}:8000'])\n"),
    )
    .unwrap();
    let up = Up::start(p);
    // Read by Content-Length: through a port-forward the close of the connection arrives late.
    let get = |path: &str| -> Option<String> { http_get_sized(port, path) };
    up.wait_for("the pod", Duration::from_secs(240), |_| {
        get("/index.html").as_deref() == Some("v0")
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut lat = Vec::new();
    for i in 1..=100 {
        let want = format!("v{i}");
        let t0 = Instant::now();
        std::fs::write(p.join("www/index.html"), &want).unwrap();
        up.wait_for("the edit in the pod", Duration::from_secs(30), |_| {
            get("/index.html").as_deref() == Some(want.as_str())
        });
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "save → visible in pod (100 edits):       p50 {:.1} ms  p95 {:.1} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.95)
    );
    let _ = Command::new(stilt())
        .args(["down"])
        .current_dir(p)
        .env("STILT_HOME", &up.home)
        .output();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var("STILT_BENCH_SKIP_LOCAL").is_err() {
        save_to_cmd_start();
        big_tree();
    }
    if std::env::var("STILT_BENCH_DOCKER").is_ok() {
        save_to_container();
    }
    if std::env::var("STILT_BENCH_K8S").is_ok() {
        save_to_pod();
    }
}
