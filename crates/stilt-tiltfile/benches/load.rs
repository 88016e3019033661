//! Load time of a generated Tiltfile with 200 resources, each `docker_build` + `k8s_yaml` +
//! `live_update` (+ a Service that joins the resource by selector). Prints numbers; no harness.
//!
//! Run: `cargo bench -p stilt-tiltfile --bench load` (optionally `-- <resources> <iterations>`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use stilt_tiltfile::FakeHost;
use stilt_tiltfile::LoadRequest;
use stilt_tiltfile::load;

fn generate(n: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stilt-tiltfile-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut tf = String::from("# generated\n");
    for i in 0..n {
        let svc = dir.join(format!("svc{i}"));
        std::fs::create_dir_all(svc.join("src")).unwrap();
        std::fs::write(
            svc.join("Dockerfile"),
            "FROM node:20\nWORKDIR /app\nCOPY . .\nCMD [\"node\", \"src/index.js\"]\n",
        )
        .unwrap();
        std::fs::write(svc.join(".dockerignore"), "node_modules\n").unwrap();
        std::fs::write(
            svc.join("k8s.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc{i}\nspec:\n  selector:\n    matchLabels:\n      app: svc{i}\n  template:\n    metadata:\n      labels:\n        app: svc{i}\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/svc{i}\n        ports:\n        - containerPort: 8080\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\nspec:\n  selector:\n    app: svc{i}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
            ),
        )
        .unwrap();
        writeln!(
            tf,
            "docker_build('registry.example.com/svc{i}', 'svc{i}', live_update=[\n    fall_back_on(['svc{i}/package.json']),\n    sync('svc{i}/src', '/app/src'),\n    run('npm install', trigger=['svc{i}/package.json']),\n])\nk8s_yaml('svc{i}/k8s.yaml')\nk8s_resource('svc{i}', port_forwards={}, labels=['group{}'])",
            10000 + i,
            i % 10
        )
        .unwrap();
    }
    std::fs::write(dir.join("Tiltfile"), tf).unwrap();
    dir
}

/// User+system CPU time of this process (Linux `/proc/self/stat`, clock ticks of 10 ms).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let iters: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = generate(n);
    let host = FakeHost {
        cwd: dir.clone(),
        run_unknown: false,
        ..FakeHost::default()
    };
    let req = LoadRequest::new(dir.join("Tiltfile"), &host);
    // Warm up (file cache).
    let first = load(&req).expect("load");
    let objects = first.objects.len();
    let mut phases = [Duration::ZERO; 2];
    let cpu0 = cpu_time();
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let r = load(&req).expect("load");
            let el = t.elapsed();
            phases[0] += r.timings.eval;
            phases[1] += r.timings.assemble;
            std::hint::black_box(r);
            el
        })
        .collect();
    let cpu = cpu0.zip(cpu_time()).map(|(a, b)| (b - a) / iters as u32);
    times.sort();
    let mean = times.iter().sum::<Duration>() / iters as u32;
    println!(
        "load: {n} resources (docker_build + k8s_yaml + live_update), {objects} objects, {} config files",
        first.config_files.len()
    );
    println!(
        "load: {iters} iterations: min {:.2?}  median {:.2?}  mean {:.2?}  max {:.2?}",
        times[0],
        times[iters / 2],
        mean,
        times[iters - 1]
    );
    if let Some(cpu) = cpu {
        println!(
            "load: mean CPU time per load (user+sys): {cpu:.2?} (wall times above include waiting for a shared CPU)"
        );
    }
    println!(
        "load: mean per phase: eval {:.2?}  assemble (objects built and decoded) {:.2?}",
        phases[0] / iters as u32,
        phases[1] / iters as u32
    );
    let _ = std::fs::remove_dir_all(&dir);
}
