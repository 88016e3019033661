//! Live-update fast path latency against a real engine (prints numbers; no harness).
//!
//!   STILT_TEST_DOCKER=1 cargo bench -p stilt-docker --bench upload
//!
//! Measures, over 100 iterations each (after 5 warm-ups): `sync_archive` + `upload_archive` of
//! one small file into a running container; an exec `cat` round trip; Tilt's mechanism (one exec
//! of `tar -x` fed on stdin) for comparison; a round trip over one long-lived attached exec (the
//! channel an in-container helper rides on); then one upload of 1,000 small files.

use std::time::{Duration, Instant};

use stilt_docker::*;

const BASE_IMAGE: &str = "stilt-test/busybox:latest";
const ITERS: usize = 100;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
    println!(
        "{name:<44} n={:<4} p50={:>7.2} ms  p95={:>7.2} ms  min={:>7.2} ms  max={:>7.2} ms",
        v.len(),
        ms(pct(50)),
        ms(pct(95)),
        ms(v[0]),
        ms(v[v.len() - 1])
    );
}

async fn ensure_base_image(d: &dyn DockerClient) {
    if d.image_exists(BASE_IMAGE).await.unwrap() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).expect("/bin/busybox");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .unwrap();
    let mut req = BuildRequest::new("stilt-test/busybox", BuildContext::new(dir.path()));
    req.extra_tags = vec![BASE_IMAGE.into()];
    d.build(req, None).await.unwrap();
}

fn main() {
    if std::env::var("STILT_TEST_DOCKER").map_or(true, |v| v != "1") {
        println!("upload bench skipped: set STILT_TEST_DOCKER=1 with a running engine");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let d = BollardDocker::connect()
        .await
        .expect("STILT_TEST_DOCKER=1 but no Docker engine answered");
    ensure_base_image(&d).await;
    let id = d
        .create_container(&ContainerSpec {
            image: BASE_IMAGE.into(),
            cmd: vec!["sleep".into(), "3600".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    d.start_container(&id).await.unwrap();
    d.exec(&id, &ExecRequest::new(["mkdir", "-p", "/app"]), None)
        .await
        .unwrap();
    let info = d.engine_info().await.unwrap();
    println!(
        "engine {} (API {}), container {}",
        info.version,
        info.api_version,
        &id[..12]
    );

    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("main.py");
    let pairs = [(file.clone(), "/app/main.py".to_string())];

    // 1. One small file: archive + PUT /archive (no process started in the container).
    let mut upload = Vec::new();
    let mut archive_only = Vec::new();
    for i in 0..ITERS + 5 {
        std::fs::write(&file, format!("print('save {i}')\n")).unwrap();
        let t = Instant::now();
        let a = sync_archive(&pairs).unwrap();
        let built = t.elapsed();
        d.upload_archive(&id, "/", a.tar).await.unwrap();
        if i >= 5 {
            archive_only.push(built);
            upload.push(t.elapsed());
        }
    }

    // 2. exec `cat` round trip (create + start + stream + inspect exit code).
    let mut cat = Vec::new();
    let expect = format!("print('save {}')\n", ITERS + 4);
    for i in 0..ITERS + 5 {
        let t = Instant::now();
        let out = d
            .exec(&id, &ExecRequest::new(["cat", "/app/main.py"]), None)
            .await
            .unwrap();
        let el = t.elapsed();
        assert_eq!(out.stdout_str(), expect);
        if i >= 5 {
            cat.push(el);
        }
    }

    // 3. Upload then read back (save → bytes verifiably in the container).
    let mut upload_verify = Vec::new();
    for i in 0..ITERS + 5 {
        let body = format!("print('verify {i}')\n");
        std::fs::write(&file, &body).unwrap();
        let t = Instant::now();
        let a = sync_archive(&pairs).unwrap();
        d.upload_archive(&id, "/", a.tar).await.unwrap();
        let out = d
            .exec(&id, &ExecRequest::new(["cat", "/app/main.py"]), None)
            .await
            .unwrap();
        let el = t.elapsed();
        assert_eq!(out.stdout_str(), body);
        if i >= 5 {
            upload_verify.push(el);
        }
    }

    // 4. Tilt's way for comparison: exec `tar -C / -x -f -` with the archive on stdin.
    let mut exec_tar = Vec::new();
    for i in 0..ITERS + 5 {
        std::fs::write(&file, format!("print('tar {i}')\n")).unwrap();
        let t = Instant::now();
        let a = sync_archive(&pairs).unwrap();
        let out = d
            .exec(
                &id,
                &ExecRequest::new(["tar", "-C", "/", "-x", "-f", "-"]).stdin(a.tar),
                None,
            )
            .await
            .unwrap();
        let el = t.elapsed();
        assert!(out.success(), "{}", out.stderr_str());
        if i >= 5 {
            exec_tar.push(el);
        }
    }

    // 5. One long-lived exec (`cat`) as a persistent channel: write 200 bytes, read them back.
    let mut attach = Vec::new();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let t = Instant::now();
        let mut a = d
            .exec_attach(&id, &ExecRequest::new(["cat"]))
            .await
            .unwrap();
        let open = t.elapsed();
        let msg = vec![b'x'; 200];
        let mut buf = vec![0u8; msg.len()];
        for i in 0..ITERS + 5 {
            let t = Instant::now();
            a.stdin.write_all(&msg).await.unwrap();
            a.stdin.flush().await.unwrap();
            a.stdout.read_exact(&mut buf).await.unwrap();
            if i >= 5 {
                attach.push(t.elapsed());
            }
        }
        a.stdin.shutdown().await.unwrap();
        assert_eq!(a.exit.await.unwrap().unwrap(), 0);
        println!("exec_attach open: {:.2} ms", open.as_secs_f64() * 1e3);
    }

    stats("sync_archive (1 file, build tar only)", archive_only);
    stats("sync_archive + upload_archive (1 file)", upload);
    stats("exec `cat` round trip", cat);
    stats("upload_archive + exec `cat` verify", upload_verify);
    stats("Tilt-style exec `tar -x` on stdin (1 file)", exec_tar);
    stats("exec_attach round trip (200 B, persistent)", attach);

    // 5. 1,000 small files in 20 directories, one archive, one PUT.
    let many = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        let p = many.path().join(format!("pkg{:02}/mod{i:04}.py", i % 20));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("X = {i}\n# {}\n", "x".repeat(200))).unwrap();
    }
    let mut thousand = Vec::new();
    let mut build_only = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let a = sync_archive(&[(many.path(), "/app/many")]).unwrap();
        build_only.push(t.elapsed());
        size = a.tar.len();
        assert_eq!(a.entries, 1021);
        d.upload_archive(&id, "/", a.tar).await.unwrap();
        thousand.push(t.elapsed());
    }
    let count = d
        .exec(
            &id,
            &ExecRequest::new(["sh", "-c", "find /app/many -type f | wc -l"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(count.stdout_str().trim(), "1000");
    println!("1,000 files: tar of {} KiB, 1,021 entries", size / 1024);
    stats("sync_archive (1,000 files, build tar only)", build_only);
    stats("sync_archive + upload_archive (1,000 files)", thousand);

    d.remove_container(&id, true).await.unwrap();
}
