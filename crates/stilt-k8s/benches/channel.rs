//! Latency of writing one small file into a pod: the persistent stilt-syncer channel vs Tilt's
//! exec + tar, p50/p95 over 100 iterations each. Needs the dev cluster:
//!
//! ```sh
//! eval "$(scripts/dev-cluster env)"
//! STILT_TEST_K8S=1 cargo bench -p stilt-k8s --bench channel
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stilt_k8s::inject::{ImageInjection, prepare_for_apply};
use stilt_k8s::manifest::parse_yaml;
use stilt_k8s::*;

const ITERATIONS: usize = 100;
const WARMUP: usize = 5;

fn summary(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    format!(
        "{name:<34} n={:<4} p50={:>8.2?} p95={:>8.2?} min={:>8.2?} max={:>8.2?} mean={:>8.2?}",
        v.len(),
        pct(0.50),
        pct(0.95),
        v[0],
        v[v.len() - 1],
        mean
    )
}

/// Time `body` ITERATIONS times after WARMUP untimed runs (`$i` is the iteration number).
macro_rules! measure {
    ($i:ident => $body:block) => {{
        for $i in 0..WARMUP {
            $body
        }
        let mut out = Vec::with_capacity(ITERATIONS);
        for $i in 0..ITERATIONS {
            let t = Instant::now();
            $body
            out.push(t.elapsed());
        }
        out
    }};
}

fn main() {
    if !common::enabled() {
        eprintln!("channel bench skipped: set STILT_TEST_K8S=1 (needs scripts/dev-cluster up)");
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
    let kube = common::connect().await;
    let cluster: Arc<dyn Cluster> = kube.clone();
    let ns = common::namespace("stilt-k8s-bench");
    let registry = cluster
        .info()
        .registry
        .map(|r| r.host)
        .unwrap_or_else(|| "localhost:5000".into());
    let objs = prepare_for_apply(
        parse_yaml(&common::workload_yaml(&ns, "bench")).unwrap(),
        &[ImageInjection::new(
            "stilt-test/busybox",
            &format!("{registry}/stilt-test/busybox:latest"),
        )
        .unwrap()],
        &[],
    )
    .unwrap();
    let applied = cluster
        .apply(&objs, &ApplyOptions::default())
        .await
        .unwrap();
    let uid = applied[1]["metadata"]["uid"].as_str().unwrap().to_string();
    let mut pods = cluster
        .watch_pods(PodWatchSpec {
            namespaces: vec![ns.clone()],
            ancestor_uids: [uid].into(),
            extra_selectors: vec![],
        })
        .await
        .unwrap();
    let pod = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(ev) = pods.next().await {
            if let PodEvent::Upsert(p) = ev
                && p.pod.containers.first().is_some_and(|c| c.ready)
            {
                return p.pod.name;
            }
        }
        panic!("watch ended")
    })
    .await
    .expect("pod ready");
    let target = ContainerRef::new(&ns, &pod, "web");

    let helper = common::helper_binary();
    let opts = ChannelOptions::default().with_helper_file(&helper).unwrap();
    let t = Instant::now();
    let chan = ContainerSyncer::connect(cluster.clone(), target.clone(), opts.clone())
        .await
        .unwrap();
    let first_contact = t.elapsed();
    assert!(
        matches!(chan.mode(), SyncMode::Channel { .. }),
        "{:?}",
        chan.mode()
    );
    chan.close().await;
    let t = Instant::now();
    let mut chan = ContainerSyncer::connect(cluster.clone(), target.clone(), opts)
        .await
        .unwrap();
    let reconnect = t.elapsed();
    let mut tar = ContainerSyncer::exec_tar(cluster.clone(), target.clone());

    let payload = |i: usize| format!("print('hello {i}')\n").into_bytes();
    let chan_write = measure!(i => {
        chan.update(&[], vec![WriteEntry::file("/app/main.py", 0o644, payload(i))])
            .await
            .unwrap();
    });
    let chan_write_run = measure!(i => {
        chan.update(&[], vec![WriteEntry::file("/app/main.py", 0o644, payload(i))])
            .await
            .unwrap();
        let code = chan.run(&argv(["true"]), |_, _| {}).await.unwrap();
        assert_eq!(code, 0);
    });
    let tar_write = measure!(i => {
        tar.update(&[], vec![WriteEntry::file("/app/main.py", 0o644, payload(i))])
            .await
            .unwrap();
    });
    let exec_true = measure!(_i => {
        let o = exec_collect(cluster.as_ref(), &target, &argv(["true"]), b"").await.unwrap();
        assert_eq!(o.exit_code, 0);
    });
    // The channel's last write is overwritten by exec+tar's; both wrote payload(ITERATIONS-1).
    let got = chan.read("/app/main.py").await.unwrap();
    assert_eq!(got, payload(ITERATIONS - 1));

    println!(
        "stilt-k8s channel benchmark ({ITERATIONS} iterations after {WARMUP} warm-up, pod {ns}/{pod})"
    );
    println!(
        "  helper first contact (install + start): {first_contact:.2?}; reopen with helper present: {reconnect:.2?}"
    );
    println!("  {}", summary("channel: write 1 small file", chan_write));
    println!(
        "  {}",
        summary("channel: write + run `true`", chan_write_run)
    );
    println!("  {}", summary("exec+tar: write 1 small file", tar_write));
    println!("  {}", summary("exec `true` (exec floor)", exec_true));
    chan.close().await;
    common::cleanup(cluster.as_ref(), &ns).await;
}
