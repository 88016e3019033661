//! The event-source seam: something that can watch single directories
//! (non-recursively) and pushes [`RawEvent`]s into an [`EventSink`].
//!
//! [`NotifySource`] is the real one (notify 8, inotify). [`FakeSource`] lets
//! tests push events by hand and see which directories are watched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::batch::InFlight;
use crate::error::{WatchError, sysctl};

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

/// The real source: one notify 8 `INotifyWatcher` (one inotify instance),
/// every directory registered with `RecursiveMode::NonRecursive`.
pub struct NotifySource {
    watcher: notify::INotifyWatcher,
    watched: usize,
}

impl NotifySource {
    pub fn factory() -> SourceFactory {
        Box::new(|sink| Ok(Box::new(NotifySource::new(sink)?) as Box<dyn EventSource>))
    }

    pub fn new(sink: EventSink) -> Result<Self, WatchError> {
        use notify::Watcher;
        let watcher = notify::INotifyWatcher::new(
            move |res: notify::Result<notify::Event>| match res {
                Ok(ev) => {
                    for raw in translate(ev) {
                        sink.send(raw);
                    }
                }
                Err(e) => {
                    sink.error(map_error(e, Path::new(""), 0));
                }
            },
            notify::Config::default(),
        )
        .map_err(|e| map_error(e, Path::new(""), 0))?;
        Ok(NotifySource {
            watcher,
            watched: 0,
        })
    }
}

impl EventSource for NotifySource {
    fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        use notify::Watcher;
        match self.watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched += 1;
                Ok(())
            }
            Err(e) => Err(map_error(e, dir, self.watched)),
        }
    }

    fn unwatch(&mut self, dir: &Path) {
        use notify::Watcher;
        if self.watcher.unwatch(dir).is_ok() {
            self.watched = self.watched.saturating_sub(1);
        }
    }
}

fn map_error(e: notify::Error, path: &Path, watched: usize) -> WatchError {
    let path = e
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| path.to_path_buf());
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::WatchLimit {
            path,
            watched,
            limit: sysctl("max_user_watches"),
        },
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => {
            WatchError::InstanceLimit {
                limit: sysctl("max_user_instances"),
            }
        }
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
            WatchError::WatchLimit {
                path,
                watched,
                limit: sysctl("max_user_watches"),
            }
        }
        notify::ErrorKind::PathNotFound => WatchError::Io {
            path,
            message: "no such file or directory".into(),
        },
        _ => WatchError::Io {
            path,
            message: e.to_string(),
        },
    }
}

/// notify event → our raw events. Access events other than close-after-write
/// are dropped here, as is the rename "Both" event (From and To are also sent).
fn translate(ev: notify::Event) -> Vec<RawEvent> {
    use notify::event::{
        AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
    };
    if ev.need_rescan() {
        return vec![RawEvent::new(RawKind::Rescan, PathBuf::new())];
    }
    let kind = match ev.kind {
        EventKind::Create(k) => RawKind::Create {
            dir: match k {
                CreateKind::Folder => Some(true),
                CreateKind::File => Some(false),
                _ => None,
            },
        },
        EventKind::Remove(k) => RawKind::Remove {
            dir: match k {
                RemoveKind::Folder => Some(true),
                RemoveKind::File => Some(false),
                _ => None,
            },
        },
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => RawKind::RenameFrom,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => RawKind::RenameTo,
        EventKind::Modify(ModifyKind::Name(_)) => return Vec::new(),
        EventKind::Modify(_) => RawKind::Modify,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => RawKind::Closed,
        _ => return Vec::new(),
    };
    let at = Instant::now();
    let wall = SystemTime::now();
    ev.paths
        .into_iter()
        .map(|path| RawEvent {
            kind,
            path,
            at,
            wall,
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_to_errors_naming_the_sysctl() {
        let e = map_error(
            notify::Error::new(notify::ErrorKind::MaxFilesWatch).add_path("/x".into()),
            Path::new("/y"),
            7,
        );
        let msg = e.to_string();
        assert!(matches!(e, WatchError::WatchLimit { watched: 7, .. }));
        assert!(
            msg.contains("/x") && msg.contains("fs.inotify.max_user_watches"),
            "{msg}"
        );

        let e = map_error(
            notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            Path::new("/y"),
            0,
        );
        assert!(matches!(e, WatchError::WatchLimit { .. }), "{e}");

        let e = map_error(
            notify::Error::io(std::io::Error::from_raw_os_error(libc::EMFILE)),
            Path::new(""),
            0,
        );
        assert!(
            e.to_string().contains("fs.inotify.max_user_instances"),
            "{e}"
        );
    }

    #[test]
    fn translate_keeps_changes_and_drops_reads() {
        use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
        let ev = |k| notify::Event::new(k).add_path("/p/a".into());
        assert!(translate(ev(EventKind::Access(AccessKind::Open(AccessMode::Any)))).is_empty());
        assert!(translate(ev(EventKind::Access(AccessKind::Close(AccessMode::Read)))).is_empty());
        assert_eq!(
            translate(ev(EventKind::Access(AccessKind::Close(AccessMode::Write))))[0].kind,
            RawKind::Closed
        );
        assert_eq!(
            translate(ev(EventKind::Modify(ModifyKind::Name(RenameMode::From))))[0].kind,
            RawKind::RenameFrom
        );
        assert!(translate(ev(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))).is_empty());
        let rescan = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(translate(rescan)[0].kind, RawKind::Rescan);
    }
}
