//! Real-disk integration tests: notify/inotify on a tempdir.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stilt_watch::ignore::DockerIgnore;
use stilt_watch::{Batch, Ignores, WatchHandle, WatchHub, WatchSpec};

fn ignores(base: &Path, pats: &[&str]) -> Ignores {
    Ignores::new([DockerIgnore::from_patterns(base, "test", pats)
        .unwrap()
        .into()])
}

/// Receive batches until every path of `want` was seen (or 5 s).
async fn until_seen(h: &mut WatchHandle, want: &[PathBuf]) -> (BTreeSet<PathBuf>, Vec<Batch>) {
    until_seen_for(h, want, Duration::from_secs(5)).await
}

async fn until_seen_for(
    h: &mut WatchHandle,
    want: &[PathBuf],
    limit: Duration,
) -> (BTreeSet<PathBuf>, Vec<Batch>) {
    let mut got = BTreeSet::new();
    let mut batches = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        while !want.iter().all(|p| got.contains(p)) {
            match h.recv().await {
                Some(b) => {
                    got.extend(b.paths.iter().cloned());
                    batches.push(b);
                }
                None => break,
            }
        }
    })
    .await;
    (got, batches)
}

async fn drain(h: &mut WatchHandle, for_ms: u64) -> BTreeSet<PathBuf> {
    let mut got = BTreeSet::new();
    while let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(for_ms), h.recv()).await {
        got.extend(b.paths);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_is_delivered_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let f = root.join("main.go");
    std::fs::write(&f, "a").unwrap();
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    let t0 = tokio::time::Instant::now();
    std::fs::write(&f, "b").unwrap();
    let (got, batches) = until_seen(&mut h, std::slice::from_ref(&f)).await;
    assert!(got.contains(&f), "{got:?}");
    let b = &batches[0];
    assert!(b.first_event >= t0 && b.closed >= b.first_event);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_dir_then_file_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    let deep = root.join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    let f = deep.join("f.txt");
    std::fs::write(&f, "x").unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&f)).await;
    assert!(got.contains(&f), "{got:?}");
    // and later edits in the new dir are seen through its own watch
    let g = deep.join("g.txt");
    std::fs::write(&g, "y").unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&g)).await;
    assert!(got.contains(&g), "{got:?}");
    assert_eq!(hub.watched_dirs().await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_dir_is_not_watched_and_exception_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for d in ["node_modules/dep", "vendor/keep", "vendor/other", "src"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let hub = WatchHub::new().unwrap();
    let spec = WatchSpec::new([&root])
        .ignores(ignores(&root, &["node_modules", "vendor", "!vendor/keep"]));
    let mut h = hub.watch(spec).await.unwrap();
    // root, src, vendor, vendor/keep -- not node_modules, node_modules/dep, vendor/other
    assert_eq!(h.stats().dirs, 4);
    std::fs::write(root.join("node_modules/dep/x.js"), "x").unwrap();
    std::fs::write(root.join("vendor/other/o.go"), "x").unwrap();
    std::fs::write(root.join("vendor/v.go"), "x").unwrap();
    let keep = root.join("vendor/keep/k.go");
    std::fs::write(&keep, "x").unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&keep)).await;
    let more = drain(&mut h, 100).await;
    let all: BTreeSet<_> = got.union(&more).cloned().collect();
    assert_eq!(all, BTreeSet::from([keep]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_files_arrive_in_very_few_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    let files: Vec<PathBuf> = (0..10_000)
        .map(|i| root.join(format!("d{}/f{i}.txt", i % 100)))
        .collect();
    let writer = {
        let files = files.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            for i in 0..100 {
                std::fs::create_dir(root.join(format!("d{i}"))).unwrap();
            }
            for f in &files {
                std::fs::write(f, "x").unwrap();
            }
            t.elapsed()
        })
    };
    let (got, batches) = until_seen_for(&mut h, &files, Duration::from_secs(60)).await;
    let took = writer.join().unwrap();
    let missing = files.iter().filter(|f| !got.contains(*f)).count();
    assert_eq!(missing, 0);
    let sizes: Vec<(usize, Duration)> = batches
        .iter()
        .map(|b| (b.paths.len(), b.closed - b.first_event))
        .collect();
    eprintln!(
        "10k files written in {took:?}: {} batches, (size, duration) {sizes:?}",
        batches.len()
    );
    // One batch when the writer finishes within the 2 s cap (it does on an
    // idle machine); on a loaded machine the cap splits it, and the growing
    // quiet window allows only a few extra splits.
    let cap_splits = (took.as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        batches.len() <= cap_splits + 3,
        "{} batches for a {took:?} burst: {sizes:?}",
        batches.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_rename_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let a = root.join("a.txt");
    let b = root.join("b.txt");
    let d = root.join("d");
    let d2 = root.join("d2");
    std::fs::write(&a, "a").unwrap();
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("in.txt"), "x").unwrap();
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    std::fs::rename(&a, &b).unwrap();
    let (got, _) = until_seen(&mut h, &[a.clone(), b.clone()]).await;
    assert!(got.contains(&a) && got.contains(&b), "{got:?}");

    std::fs::remove_file(&b).unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&b)).await;
    assert!(got.contains(&b));

    // Directory rename: both sides, plus the files now under the new name;
    // later edits under the new name are seen with the new path.
    std::fs::rename(&d, &d2).unwrap();
    let (got, _) = until_seen(&mut h, &[d.clone(), d2.clone(), d2.join("in.txt")]).await;
    assert!(got.contains(&d) && got.contains(&d2), "{got:?}");
    assert!(got.contains(&d2.join("in.txt")), "{got:?}");
    drain(&mut h, 50).await;
    std::fs::write(d2.join("in.txt"), "y").unwrap();
    let (got, _) = until_seen(&mut h, &[d2.join("in.txt")]).await;
    assert_eq!(got, BTreeSet::from([d2.join("in.txt")]));

    // Directory delete.
    std::fs::remove_dir_all(&d2).unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&d2)).await;
    assert!(got.contains(&d2), "{got:?}");
    assert_eq!(hub.watched_dirs().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_save_of_a_file_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let tf = root.join("Tiltfile");
    std::fs::write(&tf, "1").unwrap();
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&tf])).await.unwrap();
    let tmp = root.join(".Tiltfile.swp");
    std::fs::write(&tmp, "2").unwrap();
    std::fs::rename(&tmp, &tf).unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&tf)).await;
    let more = drain(&mut h, 100).await;
    assert!(got.contains(&tf));
    assert!(
        !got.contains(&tmp) && !more.contains(&tmp),
        "sibling leaked: {got:?} {more:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sets_share_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for i in 0..200 {
        std::fs::create_dir_all(root.join(format!("svc{i}/src"))).unwrap();
    }
    let hub = WatchHub::new().unwrap();
    let mut handles = Vec::new();
    // More sets than fs.inotify.max_user_instances (128 by default).
    for i in 0..200 {
        handles.push(
            hub.watch(WatchSpec::new([root.join(format!("svc{i}"))]))
                .await
                .unwrap(),
        );
    }
    assert_eq!(hub.watched_dirs().await.unwrap(), 400);
    let f = root.join("svc150/src/x");
    std::fs::write(&f, "x").unwrap();
    let (got, _) = until_seen(&mut handles[150], std::slice::from_ref(&f)).await;
    assert!(got.contains(&f));
    handles.truncate(10);
    hub.flush().await.unwrap();
    assert_eq!(hub.watched_dirs().await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("later/deeper");
    let hub = WatchHub::new().unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let f = root.join("f.txt");
    std::fs::write(&f, "x").unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&f)).await;
    assert!(got.contains(&f), "{got:?}");
    // Nothing outside the root leaks through the anchor directories.
    std::fs::write(dir.path().join("later/sibling"), "x").unwrap();
    let g = root.join("g.txt");
    std::fs::write(&g, "x").unwrap();
    let (got, _) = until_seen(&mut h, std::slice::from_ref(&g)).await;
    assert!(!got.contains(&dir.path().join("later/sibling")), "{got:?}");
}

/// Overflow on the real file system: a Rescan is injected into a real
/// inotify source (a kernel overflow cannot be forced from a test). The
/// rescan batch reports files changed since the burst began (by ctime),
/// vanished directories, and not old untouched files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_rescan_on_disk() {
    use std::sync::{Arc, Mutex};
    use stilt_watch::fs::RealFs;
    use stilt_watch::inotify_source::InotifySource;
    use stilt_watch::source::{EventSink, EventSource, RawEvent, RawKind};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let old = root.join("old.txt");
    std::fs::write(&old, "old").unwrap();
    std::fs::create_dir(root.join("gone")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    // Let `old` age past the 2 s slack before the burst starts.
    tokio::time::sleep(Duration::from_millis(3500)).await;

    let slot: Arc<Mutex<Option<EventSink>>> = Arc::default();
    let slot2 = slot.clone();
    let hub = WatchHub::with_source(
        Box::new(move |sink: EventSink| {
            *slot2.lock().unwrap() = Some(sink.clone());
            Ok(Box::new(InotifySource::new(sink)?) as Box<dyn EventSource>)
        }),
        Arc::new(RealFs),
    )
    .unwrap();
    let mut h = hub.watch(WatchSpec::new([&root])).await.unwrap();
    let changed = root.join("sub/changed.txt");
    std::fs::write(&changed, "new").unwrap();
    std::fs::remove_dir(root.join("gone")).unwrap();
    until_seen(&mut h, &[changed.clone(), root.join("gone")]).await;
    drain(&mut h, 50).await;

    let sink = slot.lock().unwrap().clone().unwrap();
    sink.send(RawEvent::new(RawKind::Rescan, ""));
    let b = tokio::time::timeout(Duration::from_secs(5), h.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(b.rescanned);
    assert!(b.paths.contains(&changed), "{:?}", b.paths);
    assert!(
        b.paths.contains(&root.join("sub")),
        "dir with changed entries: {:?}",
        b.paths
    );
    assert!(!b.paths.contains(&old), "old file reported: {:?}", b.paths);
    assert_eq!(hub.watched_dirs().await.unwrap(), 2);
}
