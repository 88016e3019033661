//! The watcher: one inotify instance shared by many watch sets.
//!
//! Pipeline: **source** (notify, one inotify instance, non-recursive watches)
//! → **router** (a dedicated thread that owns all watch registrations, walks
//! new directories, prunes ignored ones, and routes each event to the watch
//! sets that cover it and do not ignore it) → **batcher** (one tokio task per
//! watch set, see [`crate::batch`]) → the [`WatchHandle`]'s channel.
//!
//! Registration: each watch set's roots are walked by us, one inotify watch
//! per directory, skipping directories its ignores can prune
//! ([`Ignores::can_skip_dir`]). A directory needed by several sets is
//! watched once. When a directory is created (or renamed into place) under a
//! root, it is watched and then listed, so files created before the watch
//! landed are reported too; when a watched directory is deleted or renamed
//! away, its watches (and its subtree's) are dropped and the directory path
//! is reported. A root that is a file is watched through its parent
//! directory (so atomic saves by rename are seen); a root that does not exist
//! yet is watched through its nearest existing ancestor until it appears.
//!
//! Queue overflow (`IN_Q_OVERFLOW`, notify's rescan flag): the batch is
//! marked [`Batch::rescanned`](crate::Batch::rescanned), every set re-walks its roots (adding
//! missing watches, dropping vanished ones), and reports what *may* have
//! changed without keeping a per-file snapshot: every file whose ctime or
//! mtime is not older than the start of the current event burst (minus 2 s
//! of slack; a burst starts after 1 s without events), every directory whose
//! mtime is that recent, roots included (its entries changed, so deletions
//! inside it are covered by reporting the directory), and every watched
//! directory that vanished. Consumers must treat a directory path as "this
//! subtree may have changed". No snapshot keeps idle memory flat for
//! 100k-file trees; the price is that a rescan can over-report.
//!
//! Reported paths are files *and* directories (created, modified, deleted,
//! renamed from, renamed to). Events for paths matched by the set's ignores
//! are dropped; symlinks are reported as entries and never followed (except
//! for a root itself).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::batch::{
    Batch, BatchConfig, Change, ChangeSender, InFlight, change_channel, run_batcher,
};
use crate::error::WatchError;
use crate::fs::{EntryKind, Fs, RealFs};
use crate::ignore::Ignores;
use crate::inotify_source::InotifySource;
use crate::source::{EventSink, EventSource, Msg, RawEvent, RawKind, SourceFactory};

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchSpec {
    /// Files or directories (absolute; relative paths are resolved against
    /// the current directory). Directories are watched recursively.
    pub paths: Vec<PathBuf>,
    /// Paths to ignore; ignored directories are not watched at all when the
    /// rules allow it.
    pub ignores: Ignores,
    /// Batching parameters.
    pub batch: BatchConfig,
}

impl WatchSpec {
    pub fn new<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Self {
        WatchSpec {
            paths: paths.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
    pub fn ignores(mut self, ignores: Ignores) -> Self {
        self.ignores = ignores;
        self
    }
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }
}

/// Figures from registering a watch set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchStats {
    /// Directories this set needs (shared ones included).
    pub dirs: usize,
    /// Directories watched by the whole hub after this set was added.
    pub hub_dirs: usize,
    /// Time to walk and register.
    pub elapsed: Duration,
}

struct HubInner {
    tx: std::sync::mpsc::Sender<Msg>,
    in_flight: InFlight,
    next_id: AtomicU64,
}

impl Drop for HubInner {
    fn drop(&mut self) {
        let _ = self
            .tx
            .send(Msg::Control(Box::new(|r: &mut Router| r.stop = true)));
    }
}

/// One inotify instance shared by many watch sets. Cheap to clone; the
/// background thread stops when the hub and all its handles are dropped.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
}

impl WatchHub {
    /// A hub on the real file system with inotify.
    pub fn new() -> Result<Self, WatchError> {
        Self::with_source(InotifySource::factory(), Arc::new(RealFs))
    }

    /// A hub on any event source and file system (tests use
    /// [`FakeSource`](crate::source::FakeSource) and [`MemFs`](crate::fs::MemFs)).
    pub fn with_source(factory: SourceFactory, fs: Arc<dyn Fs>) -> Result<Self, WatchError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let in_flight = InFlight::default();
        let source = factory(EventSink {
            tx: tx.clone(),
            in_flight: in_flight.clone(),
        })?;
        let router = Router {
            source,
            fs,
            sets: HashMap::new(),
            dirs: BTreeMap::new(),
            in_flight: in_flight.clone(),
            busy_since: UNIX_EPOCH,
            last_event_wall: UNIX_EPOCH,
            stop: false,
        };
        std::thread::Builder::new()
            .name("stilt-watch".into())
            .spawn(move || router.run(rx))
            .map_err(|e| WatchError::Io {
                path: PathBuf::new(),
                message: format!("spawning the watcher thread: {e}"),
            })?;
        Ok(WatchHub {
            inner: Arc::new(HubInner {
                tx,
                in_flight,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// Start watching. Resolves once every directory is registered; events
    /// from then on are delivered as [`Batch`]es on the handle. Must be
    /// called inside a tokio runtime (the batcher is a tokio task). Dropping
    /// the handle stops the watch.
    pub async fn watch(&self, spec: WatchSpec) -> Result<WatchHandle, WatchError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (ctx, crx) = change_channel();
        let (btx, brx) = mpsc::channel(16);
        tokio::spawn(run_batcher(
            crx,
            btx,
            spec.batch,
            self.inner.in_flight.clone(),
        ));
        let (reply_tx, reply_rx) = oneshot::channel();
        let roots: Vec<PathBuf> = spec.paths.iter().map(|p| absolute(p)).collect();
        let ignores = spec.ignores;
        self.control(move |r| {
            let _ = reply_tx.send(r.add_set(id, roots, ignores, ctx));
        })?;
        let stats = reply_rx.await.map_err(|_| WatchError::Stopped)??;
        Ok(WatchHandle {
            id,
            hub: self.inner.clone(),
            rx: brx,
            stats,
        })
    }

    /// Wait until the router has handled everything sent to it so far.
    pub async fn flush(&self) -> Result<(), WatchError> {
        let (tx, rx) = oneshot::channel();
        self.control(move |_| {
            let _ = tx.send(());
        })?;
        rx.await.map_err(|_| WatchError::Stopped)
    }

    /// Number of directories currently watched (inotify watches).
    pub async fn watched_dirs(&self) -> Result<usize, WatchError> {
        let (tx, rx) = oneshot::channel();
        self.control(move |r| {
            let _ = tx.send(r.dirs.len());
        })?;
        rx.await.map_err(|_| WatchError::Stopped)
    }

    fn control(&self, f: impl FnOnce(&mut Router) + Send + 'static) -> Result<(), WatchError> {
        self.inner
            .tx
            .send(Msg::Control(Box::new(f)))
            .map_err(|_| WatchError::Stopped)
    }
}

/// A running watch. Receive batches with [`recv`](Self::recv); drop to stop.
pub struct WatchHandle {
    id: u64,
    hub: Arc<HubInner>,
    rx: mpsc::Receiver<Box<Batch>>,
    stats: WatchStats,
}

impl WatchHandle {
    /// The next batch; `None` once the hub has stopped. Cancel-safe, for `select!`.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.rx.recv().await.map(|b| *b)
    }
    pub fn try_recv(&mut self) -> Option<Batch> {
        self.rx.try_recv().ok().map(|b| *b)
    }
    pub fn stats(&self) -> WatchStats {
        self.stats
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self
            .hub
            .tx
            .send(Msg::Control(Box::new(move |r: &mut Router| {
                r.remove_set(id)
            })));
    }
}

/// Lexically normalised absolute path.
fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

struct SetState {
    roots: Vec<PathBuf>,
    ignores: Ignores,
    tx: ChangeSender,
    /// Roots that do not exist yet.
    pending: Vec<PathBuf>,
}

impl SetState {
    fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }
    fn wants_dir(&self, d: &Path) -> bool {
        self.roots.iter().any(|r| d == r) || (self.covers(d) && !self.ignores.can_skip_dir(d))
    }
}

#[derive(Clone, Copy)]
struct Stamp {
    at: Instant,
    wall: SystemTime,
}

enum WalkMode {
    /// Initial registration: report nothing.
    Quiet,
    /// A new directory appeared: report everything found.
    Report(Stamp),
    /// After overflow: report what changed since `since`; record visited dirs.
    Rescan {
        stamp: Stamp,
        since: SystemTime,
        seen: HashSet<PathBuf>,
    },
}

impl WalkMode {
    fn stamp(&self) -> Option<Stamp> {
        match self {
            WalkMode::Quiet => None,
            WalkMode::Report(s) | WalkMode::Rescan { stamp: s, .. } => Some(*s),
        }
    }
}

pub(crate) struct Router {
    source: Box<dyn EventSource>,
    fs: Arc<dyn Fs>,
    sets: HashMap<u64, SetState>,
    /// Watched directory → ids of the sets that need it.
    dirs: BTreeMap<PathBuf, Vec<u64>>,
    in_flight: InFlight,
    busy_since: SystemTime,
    last_event_wall: SystemTime,
    pub(crate) stop: bool,
}

impl Router {
    fn run(mut self, rx: std::sync::mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Raw(ev) => {
                    self.handle_raw(ev);
                    self.in_flight.decr();
                }
                Msg::Error(e) => {
                    let stamp = now();
                    for s in self.sets.values() {
                        let _ = s.tx.send(Change::Error {
                            error: e.clone(),
                            at: stamp.at,
                            wall: stamp.wall,
                        });
                    }
                }
                Msg::Control(f) => f(&mut self),
            }
            if self.stop {
                break;
            }
        }
    }

    fn add_set(
        &mut self,
        id: u64,
        roots: Vec<PathBuf>,
        ignores: Ignores,
        tx: ChangeSender,
    ) -> Result<WatchStats, WatchError> {
        let started = std::time::Instant::now();
        self.sets.insert(
            id,
            SetState {
                roots: roots.clone(),
                ignores,
                tx,
                pending: Vec::new(),
            },
        );
        for root in &roots {
            let mut mode = WalkMode::Quiet;
            if let Err(e) = self.resolve_root(id, root, &mut mode) {
                self.remove_set(id);
                return Err(e);
            }
        }
        let dirs = self.dirs.values().filter(|v| v.contains(&id)).count();
        Ok(WatchStats {
            dirs,
            hub_dirs: self.dirs.len(),
            elapsed: started.elapsed(),
        })
    }

    pub(crate) fn remove_set(&mut self, id: u64) {
        self.sets.remove(&id);
        let mut gone = Vec::new();
        for (d, ids) in self.dirs.iter_mut() {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                gone.push(d.clone());
            }
        }
        for d in gone {
            self.dirs.remove(&d);
            self.source.unwatch(&d);
        }
    }

    /// Register `dir` for set `id`. `Ok(false)` when it vanished meanwhile.
    fn register(&mut self, id: u64, dir: &Path) -> Result<bool, WatchError> {
        if let Some(ids) = self.dirs.get_mut(dir) {
            if !ids.contains(&id) {
                ids.push(id);
            }
            return Ok(true);
        }
        match self.source.watch(dir) {
            Ok(()) => {
                self.dirs.insert(dir.to_path_buf(), vec![id]);
                Ok(true)
            }
            Err(e @ WatchError::WatchLimit { .. }) => Err(e),
            Err(e) => match self.fs.stat(dir, false) {
                Err(_) => Ok(false),
                Ok(_) => Err(e),
            },
        }
    }

    fn unregister(&mut self, id: u64, dir: &Path) {
        if let Some(ids) = self.dirs.get_mut(dir) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.dirs.remove(dir);
                self.source.unwatch(dir);
            }
        }
    }

    /// Drop the watches of `dir` and everything below it; returns the sets
    /// that had any of them.
    fn drop_subtree(&mut self, dir: &Path) -> Vec<u64> {
        let keys: Vec<PathBuf> = self
            .dirs
            .range(dir.to_path_buf()..)
            .take_while(|(k, _)| k.starts_with(dir))
            .map(|(k, _)| k.clone())
            .collect();
        let mut ids = Vec::new();
        for k in keys {
            if let Some(v) = self.dirs.remove(&k) {
                for i in v {
                    if !ids.contains(&i) {
                        ids.push(i);
                    }
                }
                self.source.unwatch(&k);
            }
        }
        ids
    }

    fn send(&self, id: u64, path: &Path, stamp: Stamp) {
        self.send_path(id, path, stamp, false);
    }

    /// `settled`: the event says the writer is done with `path` (see [`Change::Path`]).
    fn send_path(&self, id: u64, path: &Path, stamp: Stamp, settled: bool) {
        if let Some(s) = self.sets.get(&id) {
            let _ = s.tx.send(Change::Path {
                path: path.to_path_buf(),
                at: stamp.at,
                wall: stamp.wall,
                settled,
            });
        }
    }

    fn send_error(&self, id: u64, error: WatchError, stamp: Stamp) {
        if let Some(s) = self.sets.get(&id) {
            let _ = s.tx.send(Change::Error {
                error,
                at: stamp.at,
                wall: stamp.wall,
            });
        }
    }

    /// Make sure `root` of set `id` is watched as well as it can be now.
    fn resolve_root(
        &mut self,
        id: u64,
        root: &Path,
        mode: &mut WalkMode,
    ) -> Result<(), WatchError> {
        let stat = self.fs.stat(root, true);
        if let Some(s) = self.sets.get_mut(&id) {
            s.pending.retain(|p| p != root);
        }
        match stat {
            Ok(st) if st.kind == EntryKind::Dir => self.walk(id, root, mode),
            Ok(_) => {
                if let Some(parent) = root.parent()
                    && self.register(id, parent)?
                    && let WalkMode::Rescan { seen, .. } = mode
                {
                    seen.insert(parent.to_path_buf());
                }
                if let Some(stamp) = mode.stamp() {
                    let report = match mode {
                        WalkMode::Rescan { since, .. } => stat
                            .as_ref()
                            .is_ok_and(|s| s.ctime >= *since || s.mtime >= *since),
                        _ => true,
                    };
                    if report {
                        self.send(id, root, stamp);
                    }
                }
                Ok(())
            }
            Err(_) => {
                // Watch the nearest existing ancestor. If the next component
                // toward the root appears meanwhile (a `mkdir -p` racing us),
                // go again from there so its creation event is not lost.
                for _ in 0..64 {
                    let mut anchor = root.parent();
                    let mut registered = None;
                    while let Some(a) = anchor {
                        if self
                            .fs
                            .stat(a, true)
                            .is_ok_and(|s| s.kind == EntryKind::Dir)
                            && self.register(id, a)?
                        {
                            if let WalkMode::Rescan { seen, .. } = mode {
                                seen.insert(a.to_path_buf());
                            }
                            registered = Some(a.to_path_buf());
                            break;
                        }
                        anchor = a.parent();
                    }
                    let Some(a) = registered else { break };
                    let next = root
                        .strip_prefix(&a)
                        .ok()
                        .and_then(|rest| rest.components().next())
                        .map(|c| a.join(c));
                    match next {
                        Some(n) if self.fs.stat(&n, true).is_ok() => {
                            if n == root {
                                return self.resolve_root(id, root, mode);
                            }
                        }
                        _ => break,
                    }
                }
                if let Some(s) = self.sets.get_mut(&id) {
                    s.pending.push(root.to_path_buf());
                }
                Ok(())
            }
        }
    }

    /// Walk `start` (a directory), registering every directory the set
    /// does not prune.
    fn walk(&mut self, id: u64, start: &Path, mode: &mut WalkMode) -> Result<(), WatchError> {
        let Some(set) = self.sets.get(&id) else {
            return Ok(());
        };
        let ignores = set.ignores.clone();
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if !self.register(id, &dir)? {
                continue;
            }
            if let WalkMode::Rescan { seen, since, stamp } = mode {
                seen.insert(dir.clone());
                // Entries of this directory changed (possibly deletions we
                // cannot name): report the directory itself, roots included.
                if self
                    .fs
                    .stat(&dir, false)
                    .is_ok_and(|s| s.mtime >= *since || s.ctime >= *since)
                {
                    let stamp = *stamp;
                    self.send(id, &dir, stamp);
                }
            }
            let Ok(entries) = self.fs.read_dir(&dir) else {
                continue;
            };
            for (name, kind) in entries {
                let p = dir.join(&name);
                if kind == EntryKind::Dir {
                    if ignores.can_skip_dir(&p) {
                        continue;
                    }
                    if let WalkMode::Report(stamp) = mode
                        && !ignores.is_ignored(&p, true)
                    {
                        let stamp = *stamp;
                        self.send(id, &p, stamp);
                    }
                    stack.push(p);
                    continue;
                }
                match mode {
                    WalkMode::Quiet => {}
                    WalkMode::Report(stamp) => {
                        if !ignores.is_ignored(&p, false) {
                            let stamp = *stamp;
                            self.send(id, &p, stamp);
                        }
                    }
                    WalkMode::Rescan { since, stamp, .. } => {
                        let changed = self
                            .fs
                            .stat(&p, false)
                            .is_ok_and(|s| s.ctime >= *since || s.mtime >= *since);
                        if changed && !ignores.is_ignored(&p, false) {
                            let stamp = *stamp;
                            self.send(id, &p, stamp);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn candidates(&self, p: &Path) -> Vec<u64> {
        let mut ids: Vec<u64> = Vec::new();
        let parent = p.parent().and_then(|d| self.dirs.get(d));
        for v in parent.into_iter().chain(self.dirs.get(p)) {
            for &i in v {
                if !ids.contains(&i) {
                    ids.push(i);
                }
            }
        }
        ids
    }

    fn report(&self, ids: &[u64], p: &Path, is_dir: bool, stamp: Stamp, settled: bool) {
        for &id in ids {
            if let Some(s) = self.sets.get(&id)
                && s.covers(p)
                && !s.ignores.is_ignored(p, is_dir)
            {
                self.send_path(id, p, stamp, settled);
            }
        }
    }

    fn handle_raw(&mut self, ev: RawEvent) {
        let stamp = Stamp {
            at: ev.at,
            wall: ev.wall,
        };
        let idle = ev
            .wall
            .duration_since(self.last_event_wall)
            .is_ok_and(|d| d > Duration::from_secs(1));
        if idle {
            self.busy_since = ev.wall;
        }
        self.last_event_wall = ev.wall;

        if ev.kind == RawKind::Rescan {
            let ids: Vec<u64> = self.sets.keys().copied().collect();
            for id in ids {
                self.rescan(id, stamp);
            }
            return;
        }
        let p = ev.path.as_path();
        let ids = self.candidates(p);
        if ids.is_empty() {
            return;
        }
        match ev.kind {
            RawKind::Create { .. } | RawKind::RenameTo => {
                let is_dir = self
                    .fs
                    .stat(p, false)
                    .is_ok_and(|s| s.kind == EntryKind::Dir);
                for &id in &ids {
                    let Some(s) = self.sets.get(&id) else {
                        continue;
                    };
                    if is_dir
                        && s.wants_dir(p)
                        && !self.dirs.get(p).is_some_and(|v| v.contains(&id))
                    {
                        let mut mode = WalkMode::Report(stamp);
                        if let Err(e) = self.walk(id, p, &mut mode) {
                            self.send_error(id, e, stamp);
                        }
                    }
                    let pending: Vec<PathBuf> = self
                        .sets
                        .get(&id)
                        .map(|s| {
                            s.pending
                                .iter()
                                .filter(|r| r.starts_with(p))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    for r in pending {
                        let mut mode = WalkMode::Report(stamp);
                        if let Err(e) = self.resolve_root(id, &r, &mut mode) {
                            self.send_error(id, e, stamp);
                        }
                    }
                }
                // A creation or a rename into place may be one step of a larger change.
                self.report(&ids, p, is_dir, stamp, false);
            }
            RawKind::Modify => self.report(&ids, p, false, stamp, false),
            RawKind::Closed => self.report(&ids, p, false, stamp, true),
            RawKind::Rescan => {}
            RawKind::Remove { .. } | RawKind::RenameFrom => {
                let was_dir = self.dirs.contains_key(p)
                    || matches!(ev.kind, RawKind::Remove { dir: Some(true) });
                let mut all = ids;
                for i in self.drop_subtree(p) {
                    if !all.contains(&i) {
                        all.push(i);
                    }
                }
                // Roots inside the removed path now wait for it to come back.
                for &id in &all {
                    let lost: Vec<PathBuf> = self
                        .sets
                        .get(&id)
                        .map(|s| {
                            s.roots
                                .iter()
                                .filter(|r| r.starts_with(p))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    for r in lost {
                        let mut mode = WalkMode::Quiet;
                        if let Err(e) = self.resolve_root(id, &r, &mut mode) {
                            self.send_error(id, e, stamp);
                        }
                    }
                }
                // A deletion is often the first step of a larger change (remove, then write):
                // it does not settle the batch.
                self.report(&all, p, was_dir, stamp, false);
            }
        }
    }

    fn rescan(&mut self, id: u64, stamp: Stamp) {
        let Some(set) = self.sets.get(&id) else {
            return;
        };
        let _ = set.tx.send(Change::Rescan {
            at: stamp.at,
            wall: stamp.wall,
        });
        let roots = set.roots.clone();
        let since = self
            .busy_since
            .checked_sub(Duration::from_secs(2))
            .unwrap_or(UNIX_EPOCH);
        let before: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|(_, v)| v.contains(&id))
            .map(|(k, _)| k.clone())
            .collect();
        let mut mode = WalkMode::Rescan {
            stamp,
            since,
            seen: HashSet::new(),
        };
        for r in &roots {
            if let Err(e) = self.resolve_root(id, r, &mut mode) {
                self.send_error(id, e, stamp);
            }
        }
        let WalkMode::Rescan { seen, .. } = mode else {
            return;
        };
        for d in before {
            if !seen.contains(&d) {
                self.unregister(id, &d);
                if self.sets.get(&id).is_some_and(|s| s.covers(&d)) {
                    self.send(id, &d, stamp);
                }
            }
        }
    }
}

fn now() -> Stamp {
    Stamp {
        at: Instant::now(),
        wall: SystemTime::now(),
    }
}
