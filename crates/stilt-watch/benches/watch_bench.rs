//! Watcher benchmark: `cargo bench -p stilt-watch --bench watch_bench`.
//!
//! Generates a tree (default 100,000 files in 10,000 leaf directories) in a
//! temp dir and prints:
//! * watch start-up time (until every directory is registered),
//! * RSS after start-up (VmRSS from /proc/self/status),
//! * save → batch latency p50/p95 over N saves,
//! * a 10,000-file burst written by another thread: batches and delivery time,
//! * every watched file read once by another thread: the watcher's CPU meanwhile (reads are
//!   not changes, and should cost the watcher nothing),
//! * idle CPU % over an idle period (getrusage before/after).
//!
//! Environment knobs: `STILT_BENCH_FILES` (100000), `STILT_BENCH_DIRS`
//! (10000), `STILT_BENCH_SAVES` (100), `STILT_BENCH_BURST` (10000), `STILT_BENCH_IDLE_SECS` (60),
//! `STILT_BENCH_DIR` (parent of the temp tree; default the system temp dir).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stilt_watch::{BatchConfig, WatchHub, WatchSpec};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime only writes into the struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Reads every file once on another thread; prints the rest of the process's CPU meanwhile
/// (the watcher's) and any batch the reads caused.
async fn reads(handle: &mut stilt_watch::WatchHandle, files: &[PathBuf]) {
    let count = files.len();
    let files = files.to_vec();
    let c0 = cpu_time();
    let reader = std::thread::spawn(move || {
        let t0 = thread_cpu_time();
        for f in &files {
            std::hint::black_box(std::fs::read(f).unwrap());
        }
        drop(files);
        thread_cpu_time() - t0
    });
    let own = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    // Whatever the reads queued is handled within this.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let watcher = (cpu_time() - c0).saturating_sub(own);
    let batches = std::iter::from_fn(|| handle.try_recv()).count();
    println!(
        "reading all {} watched files once: watcher CPU {:.1} ms meanwhile (the reader's own {:.0} ms), batches {batches}",
        count,
        ms(watcher),
        ms(own)
    );
}

fn make_tree(root: &Path, files: usize, dirs: usize) -> Vec<PathBuf> {
    // dirs leaf directories spread over sqrt(dirs) top-level directories.
    let top = (dirs as f64).sqrt().ceil() as usize;
    let mut leaves = Vec::with_capacity(dirs);
    for i in 0..dirs {
        let d = root.join(format!("t{}", i % top)).join(format!("d{i}"));
        std::fs::create_dir_all(&d).unwrap();
        leaves.push(d);
    }
    let mut out = Vec::with_capacity(files);
    for i in 0..files {
        let f = leaves[i % dirs].join(format!("f{i}.txt"));
        std::fs::write(&f, b"x").unwrap();
        out.push(f);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn saves(
    hub: &WatchHub,
    root: &Path,
    files: &[PathBuf],
    n: usize,
    batch: BatchConfig,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut h = hub
        .watch(WatchSpec::new([root]).batch(batch))
        .await
        .unwrap();
    let mut to_event = Vec::new();
    let mut to_batch = Vec::new();
    for i in 0..n {
        let f = &files[(i * 7919) % files.len()];
        let t0 = tokio::time::Instant::now();
        std::fs::write(f, format!("save {i}")).unwrap();
        loop {
            let b = tokio::time::timeout(Duration::from_secs(15), h.recv())
                .await
                .expect("batch within 15 s")
                .expect("hub alive");
            if b.paths.iter().any(|p| p == f) {
                to_batch.push(t0.elapsed());
                to_event.push(b.first_event.saturating_duration_since(t0));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        while h.try_recv().is_some() {}
    }
    to_event.sort();
    to_batch.sort();
    (to_event, to_batch)
}

/// A `git checkout`: another process rewrites `n` files as fast as it can. Prints how many
/// batches carried them and when the last one was delivered.
async fn burst(handle: &mut stilt_watch::WatchHandle, files: &[PathBuf], n: usize) {
    while handle.try_recv().is_some() {}
    let written: Vec<PathBuf> = (0..n.min(files.len()))
        .map(|i| files[(i * 7) % files.len()].clone())
        .collect();
    let mut pending: std::collections::HashSet<PathBuf> = written.iter().cloned().collect();
    let t0 = tokio::time::Instant::now();
    let writer = std::thread::spawn(move || {
        for f in &written {
            std::fs::write(f, b"checked out").unwrap();
        }
        Instant::now()
    });
    let mut batches = Vec::new();
    while !pending.is_empty() {
        let b = tokio::time::timeout(Duration::from_secs(30), handle.recv())
            .await
            .expect("the burst within 30 s")
            .expect("hub alive");
        let before = pending.len();
        for p in &b.paths {
            pending.remove(p);
        }
        // A batch of the saves above, still closing, is not part of the burst.
        if pending.len() < before {
            batches.push(before - pending.len());
        }
    }
    let delivered = t0.elapsed();
    let delivered_at = Instant::now();
    let writes_done = writer.join().unwrap();
    println!(
        "burst of {n} files: {} batch(es) (largest {} paths); last batch {:.0} ms after the first write, {:.0} ms after the last",
        batches.len(),
        batches.iter().max().unwrap_or(&0),
        ms(delivered),
        ms(delivered_at.saturating_duration_since(writes_done)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n_files = env_usize("STILT_BENCH_FILES", 100_000);
    let n_dirs = env_usize("STILT_BENCH_DIRS", 10_000);
    let n_saves = env_usize("STILT_BENCH_SAVES", 100);
    let idle_secs = env_usize("STILT_BENCH_IDLE_SECS", 60);
    let tmp = match std::env::var("STILT_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let root = tmp.path().join("tree");

    let t = Instant::now();
    let files = make_tree(&root, n_files, n_dirs);
    println!(
        "tree: {n_files} files in {n_dirs} leaf dirs, generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rss0 = vm_rss_kb();
        let hub = WatchHub::new().unwrap();
        let t = Instant::now();
        let mut handle = hub.watch(WatchSpec::new([&root])).await.unwrap();
        let startup = t.elapsed();
        let rss1 = vm_rss_kb();
        println!(
            "startup: {:.0} ms to register {} directories (router-measured {:.0} ms)",
            ms(startup),
            handle.stats().dirs,
            ms(handle.stats().elapsed)
        );
        println!(
            "rss: {:.1} MB after start-up (before watching: {:.1} MB)",
            rss1 as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );

        let (ev, b) = saves(&hub, &root, &files, n_saves, BatchConfig::default()).await;
        println!(
            "save -> batch delivered ({} saves, default batching): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            b.len(),
            ms(percentile(&b, 0.5)),
            ms(percentile(&b, 0.95)),
            ms(*b.last().unwrap())
        );
        println!(
            "save -> first event seen: p50 {:.2} ms, p95 {:.2} ms",
            ms(percentile(&ev, 0.5)),
            ms(percentile(&ev, 0.95))
        );
        let tilt = BatchConfig::fixed(Duration::from_millis(200), Duration::from_secs(10));
        let (_, tb) = saves(&hub, &root, &files, n_saves.min(10), tilt).await;
        println!(
            "  for comparison, Tilt's fixed 200 ms window: p50 {:.1} ms",
            ms(percentile(&tb, 0.5))
        );

        burst(&mut handle, &files, env_usize("STILT_BENCH_BURST", 10_000)).await;

        // Drain, then read, then idle.
        while handle.try_recv().is_some() {}
        tokio::time::sleep(Duration::from_millis(200)).await;
        while handle.try_recv().is_some() {}
        reads(&mut handle, &files).await;
        let c0 = cpu_time();
        let w0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(idle_secs as u64)).await;
        let cpu = cpu_time() - c0;
        let wall = w0.elapsed();
        println!(
            "idle: {:.3} % CPU over {:.0} s ({:.1} ms CPU); rss {:.1} MB",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            wall.as_secs_f64(),
            ms(cpu),
            vm_rss_kb() as f64 / 1024.0
        );
        let stray = std::iter::from_fn(|| handle.try_recv()).count();
        println!("batches while idle: {stray}");
    });
}
