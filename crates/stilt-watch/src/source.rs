//! The event-source seam: something that can watch single directories
//! (non-recursively) and pushes [`RawEvent`]s into an [`EventSink`].
//!
//! [`InotifySource`](crate::inotify_source::InotifySource) is the real one. [`FakeSource`] lets
//! tests push events by hand and see which directories are watched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::batch::InFlight;
use crate::error::WatchError;

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Created; `dir` when the source knows it is a directory.
    Create { dir: Option<bool> },
    /// Content or metadata changed.
    Modify,
    /// A writer closed it: the writer is done with this file.
    Closed,
    /// Deleted; `dir` when known.
    Remove { dir: Option<bool> },
    /// Renamed away from this path (or a watched directory moved itself).
    RenameFrom,
    /// Renamed to this path.
    RenameTo,
    /// The kernel queue overflowed: events were lost, rescan everything.
    Rescan,
}

/// One event from a source.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub kind: RawKind,
    /// Empty for [`RawKind::Rescan`].
    pub path: PathBuf,
    /// When the source saw it.
    pub at: Instant,
    pub wall: SystemTime,
}

impl RawEvent {
    pub fn new(kind: RawKind, path: impl Into<PathBuf>) -> Self {
        RawEvent {
            kind,
            path: path.into(),
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

pub(crate) enum Msg {
    Raw(RawEvent),
    Error(WatchError),
    Control(Box<dyn FnOnce(&mut crate::watcher::Router) + Send>),
}

/// Where a source delivers events. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct EventSink {
    pub(crate) tx: std::sync::mpsc::Sender<Msg>,
    pub(crate) in_flight: InFlight,
}

impl EventSink {
    /// Deliver one event. Returns false when the hub has shut down.
    pub fn send(&self, ev: RawEvent) -> bool {
        self.in_flight.incr();
        if self.tx.send(Msg::Raw(ev)).is_err() {
            self.in_flight.decr();
            return false;
        }
        true
    }
    /// Report a runtime error (delivered to every watch).
    pub fn error(&self, e: WatchError) -> bool {
        self.tx.send(Msg::Error(e)).is_ok()
    }
}

/// Watches single directories. Implementations must not recurse.
pub trait EventSource: Send + 'static {
    /// Start watching the entries of `dir` (not its subdirectories).
    fn watch(&mut self, dir: &Path) -> Result<(), WatchError>;
    /// Stop watching `dir`. Errors (already gone) are ignored.
    fn unwatch(&mut self, dir: &Path);
}

/// Creates a source given the sink it must deliver to.
pub type SourceFactory =
    Box<dyn FnOnce(EventSink) -> Result<Box<dyn EventSource>, WatchError> + Send>;

/// A test source: records watched directories; events are pushed through
/// the [`FakeHandle`].
pub struct FakeSource {
    watched: Arc<Mutex<BTreeSet<PathBuf>>>,
    limit: Option<usize>,
}

/// The test's side of a [`FakeSource`].
#[derive(Clone)]
pub struct FakeHandle {
    watched: Arc<Mutex<BTreeSet<PathBuf>>>,
    sink: Arc<Mutex<Option<EventSink>>>,
}

impl FakeHandle {
    /// Directories currently watched.
    pub fn watched(&self) -> BTreeSet<PathBuf> {
        self.watched.lock().unwrap().clone()
    }
    /// Push an event as if the kernel reported it.
    pub fn push(&self, kind: RawKind, path: impl Into<PathBuf>) {
        let sink = self.sink.lock().unwrap();
        sink.as_ref()
            .expect("hub not started")
            .send(RawEvent::new(kind, path));
    }
}

impl FakeSource {
    /// A factory for `WatchHub::with_source` and the handle to drive it.
    /// `limit`: fail with [`WatchError::WatchLimit`] beyond this many dirs.
    pub fn create(limit: Option<usize>) -> (SourceFactory, FakeHandle) {
        let watched = Arc::new(Mutex::new(BTreeSet::new()));
        let sink_slot = Arc::new(Mutex::new(None));
        let handle = FakeHandle {
            watched: watched.clone(),
            sink: sink_slot.clone(),
        };
        let factory: SourceFactory = Box::new(move |sink| {
            *sink_slot.lock().unwrap() = Some(sink);
            Ok(Box::new(FakeSource { watched, limit }) as Box<dyn EventSource>)
        });
        (factory, handle)
    }
}

impl EventSource for FakeSource {
    fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        let mut w = self.watched.lock().unwrap();
        if let Some(limit) = self.limit
            && w.len() >= limit
            && !w.contains(dir)
        {
            return Err(WatchError::WatchLimit {
                path: dir.to_path_buf(),
                watched: w.len(),
                limit: limit.to_string(),
            });
        }
        w.insert(dir.to_path_buf());
        Ok(())
    }
    fn unwatch(&mut self, dir: &Path) {
        self.watched.lock().unwrap().remove(dir);
    }
}
