//! The router without a disk: FakeSource (events pushed by hand) + MemFs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stilt_watch::fs::MemFs;
use stilt_watch::ignore::DockerIgnore;
use stilt_watch::source::{FakeHandle, FakeSource, RawKind};
use stilt_watch::{Ignores, WatchError, WatchHandle, WatchHub, WatchSpec};

struct World {
    fs: Arc<MemFs>,
    src: FakeHandle,
    hub: WatchHub,
}

fn world(limit: Option<usize>) -> World {
    let fs = Arc::new(MemFs::new());
    let (factory, src) = FakeSource::create(limit);
    let hub = WatchHub::with_source(factory, fs.clone()).unwrap();
    World { fs, src, hub }
}

fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
    paths.iter().map(PathBuf::from).collect()
}

fn ignores(base: &str, pats: &[&str]) -> Ignores {
    Ignores::new([DockerIgnore::from_patterns(base, "test", pats)
        .unwrap()
        .into()])
}

/// Collect paths from batches until `want` is covered or 2 s pass.
async fn collect(h: &mut WatchHandle, want: &[&str]) -> BTreeSet<PathBuf> {
    let want = set(want);
    let mut got = BTreeSet::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !want.is_subset(&got) {
            match h.recv().await {
                Some(b) => got.extend(b.paths),
                None => break,
            }
        }
    })
    .await;
    got
}

/// Nothing more arrives within 100 ms.
async fn quiet(h: &mut WatchHandle) -> BTreeSet<PathBuf> {
    let mut got = BTreeSet::new();
    while let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(100), h.recv()).await {
        got.extend(b.paths);
    }
    got
}

#[tokio::test]
async fn registers_every_directory_but_pruned_ones() {
    let w = world(None);
    for f in [
        "/p/a.txt",
        "/p/src/main.rs",
        "/p/src/deep/x.rs",
        "/p/node_modules/dep/index.js",
        "/p/.git/HEAD",
    ] {
        w.fs.write(f);
    }
    let spec = WatchSpec::new(["/p"]).ignores(ignores("/p", &["node_modules", ".git"]));
    let h = w.hub.watch(spec).await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p", "/p/src", "/p/src/deep"]));
    assert_eq!(h.stats().dirs, 3);
}

#[tokio::test]
async fn exception_keeps_an_ignored_dir_watched() {
    let w = world(None);
    w.fs.write("/p/vendor/keep/k.go");
    w.fs.write("/p/vendor/other/o.go");
    let spec = WatchSpec::new(["/p"]).ignores(ignores("/p", &["vendor", "!vendor/keep"]));
    let mut h = w.hub.watch(spec).await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p", "/p/vendor", "/p/vendor/keep"]));
    w.src.push(RawKind::Modify, "/p/vendor/keep/k.go");
    w.src
        .push(RawKind::Create { dir: Some(false) }, "/p/vendor/new.go");
    assert_eq!(
        collect(&mut h, &["/p/vendor/keep/k.go"]).await,
        set(&["/p/vendor/keep/k.go"])
    );
}

#[tokio::test]
async fn events_are_filtered_by_ignores_and_roots() {
    let w = world(None);
    w.fs.write("/p/a.txt");
    w.fs.write("/p/b.log");
    w.fs.write("/other/x");
    let mut h = w
        .hub
        .watch(WatchSpec::new(["/p"]).ignores(ignores("/p", &["*.log"])))
        .await
        .unwrap();
    w.src.push(RawKind::Modify, "/p/b.log");
    w.src.push(RawKind::Modify, "/other/x");
    w.src.push(RawKind::Modify, "/p/a.txt");
    assert_eq!(collect(&mut h, &["/p/a.txt"]).await, set(&["/p/a.txt"]));
    assert!(quiet(&mut h).await.is_empty());
}

#[tokio::test]
async fn new_directory_is_watched_and_scanned() {
    let w = world(None);
    w.fs.mkdir_p("/p");
    let mut h = w.hub.watch(WatchSpec::new(["/p"])).await.unwrap();
    // Created with content before our watch could land.
    w.fs.write("/p/new/sub/f.txt");
    w.fs.write("/p/new/g.txt");
    w.src.push(RawKind::Create { dir: Some(true) }, "/p/new");
    let got = collect(&mut h, &["/p/new/g.txt", "/p/new/sub/f.txt"]).await;
    assert_eq!(
        got,
        set(&["/p/new", "/p/new/g.txt", "/p/new/sub", "/p/new/sub/f.txt"])
    );
    assert!(w.src.watched().contains(Path::new("/p/new/sub")));
}

#[tokio::test]
async fn new_ignored_directory_is_not_watched() {
    let w = world(None);
    w.fs.mkdir_p("/p");
    let mut h = w
        .hub
        .watch(WatchSpec::new(["/p"]).ignores(ignores("/p", &["**/node_modules"])))
        .await
        .unwrap();
    w.fs.write("/p/node_modules/x.js");
    w.src
        .push(RawKind::Create { dir: Some(true) }, "/p/node_modules");
    w.hub.flush().await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p"]));
    assert!(quiet(&mut h).await.is_empty());
}

#[tokio::test]
async fn deleting_a_directory_drops_its_subtree() {
    let w = world(None);
    w.fs.write("/p/d/e/f.txt");
    let mut h = w.hub.watch(WatchSpec::new(["/p"])).await.unwrap();
    assert_eq!(w.src.watched().len(), 3);
    w.fs.remove("/p/d");
    w.src.push(RawKind::RenameFrom, "/p/d");
    assert_eq!(collect(&mut h, &["/p/d"]).await, set(&["/p/d"]));
    assert_eq!(w.src.watched(), set(&["/p"]));
}

#[tokio::test]
async fn sets_share_directories_and_unwatch_on_drop() {
    let w = world(None);
    w.fs.write("/p/a/x");
    w.fs.write("/p/b/y");
    let mut h1 = w.hub.watch(WatchSpec::new(["/p"])).await.unwrap();
    let mut h2 = w.hub.watch(WatchSpec::new(["/p/a"])).await.unwrap();
    assert_eq!(w.hub.watched_dirs().await.unwrap(), 3);
    w.src.push(RawKind::Modify, "/p/a/x");
    w.src.push(RawKind::Modify, "/p/b/y");
    assert_eq!(
        collect(&mut h1, &["/p/a/x", "/p/b/y"]).await,
        set(&["/p/a/x", "/p/b/y"])
    );
    assert_eq!(collect(&mut h2, &["/p/a/x"]).await, set(&["/p/a/x"]));
    assert!(quiet(&mut h2).await.is_empty());
    drop(h1);
    w.hub.flush().await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p/a"]));
    drop(h2);
    w.hub.flush().await.unwrap();
    assert!(w.src.watched().is_empty());
}

#[tokio::test]
async fn file_root_is_watched_through_its_parent() {
    let w = world(None);
    w.fs.write("/p/Tiltfile");
    w.fs.write("/p/other");
    let mut h = w.hub.watch(WatchSpec::new(["/p/Tiltfile"])).await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p"]));
    w.src.push(RawKind::Modify, "/p/other");
    w.src.push(RawKind::RenameTo, "/p/Tiltfile");
    assert_eq!(
        collect(&mut h, &["/p/Tiltfile"]).await,
        set(&["/p/Tiltfile"])
    );
}

#[tokio::test]
async fn missing_root_is_picked_up_when_created() {
    let w = world(None);
    w.fs.mkdir_p("/p");
    let mut h = w.hub.watch(WatchSpec::new(["/p/later/dir"])).await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p"]));
    w.fs.write("/p/later/dir/f");
    w.src.push(RawKind::Create { dir: Some(true) }, "/p/later");
    let got = collect(&mut h, &["/p/later/dir/f"]).await;
    assert!(got.contains(Path::new("/p/later/dir/f")), "{got:?}");
    assert!(w.src.watched().contains(Path::new("/p/later/dir")));
}

#[tokio::test]
async fn overflow_rescans_and_reports_recent_changes() {
    let w = world(None);
    w.fs.write("/p/old.txt");
    w.fs.write("/p/d/old2.txt");
    w.fs.write("/p/gone/x");
    w.fs.age_all(Duration::from_secs(3600));
    let mut h = w.hub.watch(WatchSpec::new(["/p"])).await.unwrap();
    // Some activity starts a burst, then events are lost.
    w.src.push(RawKind::Modify, "/p/old.txt");
    let _ = collect(&mut h, &["/p/old.txt"]).await;
    w.fs.write("/p/d/new.txt");
    w.fs.remove("/p/gone");
    w.src.push(RawKind::Rescan, "");
    let mut got = BTreeSet::new();
    let mut rescanned = false;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(b) = h.recv().await {
            rescanned |= b.rescanned;
            got.extend(b.paths);
            if got.contains(Path::new("/p/gone")) && got.contains(Path::new("/p/d/new.txt")) {
                break;
            }
        }
    })
    .await;
    assert!(rescanned);
    // new file, its directory (entries changed), the vanished dir, and the
    // root's parent-touched entries; never the old untouched file in d/.
    assert!(got.contains(Path::new("/p/d/new.txt")), "{got:?}");
    assert!(got.contains(Path::new("/p/gone")), "{got:?}");
    assert!(!got.contains(Path::new("/p/d/old2.txt")), "{got:?}");
    assert!(!w.src.watched().contains(Path::new("/p/gone")));
}

#[tokio::test]
async fn watch_limit_is_a_clear_error() {
    let w = world(Some(2));
    w.fs.write("/p/a/b/c/f");
    let err = w.hub.watch(WatchSpec::new(["/p"])).await.err().unwrap();
    assert!(matches!(err, WatchError::WatchLimit { .. }));
    let msg = err.to_string();
    assert!(msg.contains("fs.inotify.max_user_watches"), "{msg}");
    // The failed set left nothing behind.
    assert!(w.src.watched().is_empty());
}

#[tokio::test]
async fn runtime_watch_limit_is_reported_in_a_batch() {
    let w = world(Some(1));
    w.fs.mkdir_p("/p");
    let mut h = w.hub.watch(WatchSpec::new(["/p"])).await.unwrap();
    w.fs.write("/p/new/f");
    w.src.push(RawKind::Create { dir: Some(true) }, "/p/new");
    let b = tokio::time::timeout(Duration::from_secs(2), h.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.errors.len(), 1, "{b:?}");
    assert!(b.errors[0].to_string().contains("max_user_watches"));
}

#[tokio::test]
async fn explicit_root_is_not_pruned() {
    let w = world(None);
    w.fs.write("/p/build/out.o");
    let spec = WatchSpec::new(["/p/build"]).ignores(ignores("/p", &["build"]));
    let _h = w.hub.watch(spec).await.unwrap();
    assert_eq!(w.src.watched(), set(&["/p/build"]));
}
