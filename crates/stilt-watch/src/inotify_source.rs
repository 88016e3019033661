//! The real event source: one inotify instance, every directory watched on its own (the router
//! does the recursion), for changes only.
//!
//! Not notify's watcher: notify 8 subscribes every watch to `IN_OPEN`, so each `open()` in a
//! watched tree (a build reading its context, an editor, a compiler, the Tiltfile loader
//! itself) queued an event and woke the reader thread, only for the event to be dropped. Tilt's
//! fsnotify does not ask for opens either.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::time::Instant;

use crate::error::{WatchError, sysctl};
use crate::source::{EventSink, EventSource, RawEvent, RawKind, SourceFactory};

/// What each directory is watched for: its entries created, written, closed after writing,
/// removed or renamed, and its own removal or move. No opens, reads or read-only closes.
pub fn watch_mask() -> WatchMask {
    WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MODIFY
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// What one kernel event means to the router, in the order the kernel's flags are read.
fn kinds_of(mask: EventMask) -> Vec<RawKind> {
    if mask.contains(EventMask::Q_OVERFLOW) {
        return vec![RawKind::Rescan];
    }
    let is_dir = Some(mask.contains(EventMask::ISDIR));
    let mut out = Vec::new();
    if mask.intersects(EventMask::MOVED_FROM | EventMask::MOVE_SELF) {
        out.push(RawKind::RenameFrom);
    }
    if mask.contains(EventMask::MOVED_TO) {
        out.push(RawKind::RenameTo);
    }
    if mask.contains(EventMask::CREATE) {
        out.push(RawKind::Create { dir: is_dir });
    }
    if mask.contains(EventMask::DELETE) {
        out.push(RawKind::Remove { dir: is_dir });
    }
    if mask.contains(EventMask::DELETE_SELF) {
        // Only directories are watched.
        out.push(RawKind::Remove { dir: Some(true) });
    }
    if mask.intersects(EventMask::MODIFY | EventMask::ATTRIB) {
        out.push(RawKind::Modify);
    }
    if mask.contains(EventMask::CLOSE_WRITE) {
        out.push(RawKind::Closed);
    }
    out
}

/// Watched directories by descriptor. Two paths to one directory (a symlink) share a
/// descriptor: its events are reported under both.
#[derive(Default)]
struct Dirs {
    by_wd: HashMap<i32, Vec<PathBuf>>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

impl Dirs {
    /// The kernel dropped `wd` (its directory went away). A path of it that is watched again
    /// by now (deleted and recreated) keeps its new descriptor.
    fn forget_wd(&mut self, wd: i32) {
        for p in self.by_wd.remove(&wd).unwrap_or_default() {
            if self
                .by_path
                .get(&p)
                .is_some_and(|w| w.get_watch_descriptor_id() == wd)
            {
                self.by_path.remove(&p);
            }
        }
    }
}

pub struct InotifySource {
    watches: Watches,
    dirs: Arc<Mutex<Dirs>>,
    /// An eventfd the reader polls beside inotify: written once to stop it.
    stop: Arc<OwnedFd>,
    reader: Option<JoinHandle<()>>,
    kernel_events: Arc<AtomicU64>,
}

impl InotifySource {
    pub fn factory() -> SourceFactory {
        Box::new(|sink| Ok(Box::new(InotifySource::new(sink)?) as Box<dyn EventSource>))
    }

    pub fn new(sink: EventSink) -> Result<Self, WatchError> {
        let inotify = Inotify::init().map_err(|e| io_error(e, Path::new(""), 0))?;
        // SAFETY: eventfd returns a new descriptor or -1; only a new one is owned.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if stop < 0 {
            return Err(io_error(io::Error::last_os_error(), Path::new(""), 0));
        }
        // SAFETY: `stop` is a fresh descriptor nothing else owns.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(stop) });
        let dirs = Arc::new(Mutex::new(Dirs::default()));
        let kernel_events = Arc::new(AtomicU64::new(0));
        let watches = inotify.watches();
        let reader = {
            let (dirs, stop, kernel_events) = (dirs.clone(), stop.clone(), kernel_events.clone());
            std::thread::Builder::new()
                .name("stilt-inotify".into())
                .spawn(move || read_loop(inotify, &stop, &dirs, &sink, &kernel_events))
                .map_err(|e| io_error(e, Path::new(""), 0))?
        };
        Ok(InotifySource {
            watches,
            dirs,
            stop,
            reader: Some(reader),
            kernel_events,
        })
    }

    /// Events the kernel has delivered so far (a diagnostic: reads in a watched tree add none).
    pub fn kernel_events(&self) -> u64 {
        self.kernel_events.load(Ordering::Relaxed)
    }
}

impl EventSource for InotifySource {
    fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        // Held across the add: an event for the new descriptor waits until its path is known.
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if dirs.by_path.contains_key(dir) {
            return Ok(());
        }
        let watched = dirs.by_path.len();
        let wd = self
            .watches
            .add(dir, watch_mask())
            .map_err(|e| io_error(e, dir, watched))?;
        dirs.by_wd
            .entry(wd.get_watch_descriptor_id())
            .or_default()
            .push(dir.to_path_buf());
        dirs.by_path.insert(dir.to_path_buf(), wd);
        Ok(())
    }

    fn unwatch(&mut self, dir: &Path) {
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(wd) = dirs.by_path.remove(dir) else {
            return;
        };
        let id = wd.get_watch_descriptor_id();
        let others = dirs.by_wd.get_mut(&id).map(|paths| {
            paths.retain(|p| p != dir);
            paths.len()
        });
        if others.unwrap_or(0) == 0 {
            dirs.by_wd.remove(&id);
            // Already gone (the directory was deleted) is fine.
            let _ = self.watches.remove(wd);
        }
    }
}

impl Drop for InotifySource {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd this source owns.
        unsafe {
            libc::write(
                self.stop.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn read_loop(
    mut inotify: Inotify,
    stop: &OwnedFd,
    dirs: &Mutex<Dirs>,
    sink: &EventSink,
    kernel_events: &AtomicU64,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match wait_readable(inotify.as_raw_fd(), stop.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                sink.error(io_error(e, Path::new(""), 0));
                return;
            }
        }
        let events = match inotify.read_events(&mut buffer) {
            Ok(events) => events,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                sink.error(io_error(e, Path::new(""), 0));
                return;
            }
        };
        let (at, wall) = (Instant::now(), SystemTime::now());
        let mut out = Vec::new();
        {
            let mut dirs = dirs.lock().unwrap_or_else(|p| p.into_inner());
            for ev in events {
                kernel_events.fetch_add(1, Ordering::Relaxed);
                let wd = ev.wd.get_watch_descriptor_id();
                if ev.mask.contains(EventMask::IGNORED) {
                    dirs.forget_wd(wd);
                    continue;
                }
                let kinds = kinds_of(ev.mask);
                if kinds == [RawKind::Rescan] {
                    out.push(RawEvent::new(RawKind::Rescan, PathBuf::new()));
                    continue;
                }
                for dir in dirs.by_wd.get(&wd).into_iter().flatten() {
                    let path = ev.name.map_or_else(|| dir.clone(), |n| dir.join(n));
                    out.extend(kinds.iter().map(|&kind| RawEvent {
                        kind,
                        path: path.clone(),
                        at,
                        wall,
                    }));
                }
            }
        }
        for ev in out {
            if !sink.send(ev) {
                return;
            }
        }
    }
}

/// Blocks until inotify has events (`true`) or the source is stopping (`false`).
fn wait_readable(inotify: RawFd, stop: RawFd) -> io::Result<bool> {
    let mut fds = [
        libc::pollfd {
            fd: inotify,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n >= 0 {
            return Ok(fds[1].revents == 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn io_error(e: io::Error, path: &Path, watched: usize) -> WatchError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => WatchError::WatchLimit {
            path: path.to_path_buf(),
            watched,
            limit: sysctl("max_user_watches"),
        },
        Some(libc::EMFILE) => WatchError::InstanceLimit {
            limit: sysctl("max_user_instances"),
        },
        Some(libc::ENOENT) => WatchError::Io {
            path: path.to_path_buf(),
            message: "no such file or directory".into(),
        },
        _ => WatchError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_to_errors_naming_the_sysctl() {
        let e = io_error(
            io::Error::from_raw_os_error(libc::ENOSPC),
            Path::new("/x"),
            7,
        );
        let msg = e.to_string();
        assert!(matches!(e, WatchError::WatchLimit { watched: 7, .. }));
        assert!(
            msg.contains("/x") && msg.contains("fs.inotify.max_user_watches"),
            "{msg}"
        );
        let e = io_error(io::Error::from_raw_os_error(libc::EMFILE), Path::new(""), 0);
        assert!(
            e.to_string().contains("fs.inotify.max_user_instances"),
            "{e}"
        );
        let e = io_error(
            io::Error::from_raw_os_error(libc::ENOENT),
            Path::new("/y"),
            0,
        );
        assert!(matches!(e, WatchError::Io { .. }) && e.to_string().contains("/y"));
    }

    #[test]
    fn kernel_flags_become_router_events() {
        use RawKind::*;
        let table: &[(EventMask, &[RawKind])] = &[
            (EventMask::CREATE, &[Create { dir: Some(false) }]),
            (
                EventMask::CREATE | EventMask::ISDIR,
                &[Create { dir: Some(true) }],
            ),
            (EventMask::DELETE, &[Remove { dir: Some(false) }]),
            (
                EventMask::DELETE | EventMask::ISDIR,
                &[Remove { dir: Some(true) }],
            ),
            (EventMask::DELETE_SELF, &[Remove { dir: Some(true) }]),
            (EventMask::MOVED_FROM, &[RenameFrom]),
            (EventMask::MOVE_SELF, &[RenameFrom]),
            (EventMask::MOVED_TO, &[RenameTo]),
            (EventMask::MODIFY, &[Modify]),
            (EventMask::ATTRIB, &[Modify]),
            (EventMask::CLOSE_WRITE, &[Closed]),
            (EventMask::Q_OVERFLOW, &[Rescan]),
            // Not subscribed to, and meaningless if they came.
            (EventMask::OPEN, &[]),
            (EventMask::ACCESS, &[]),
            (EventMask::CLOSE_NOWRITE, &[]),
        ];
        for (mask, want) in table {
            assert_eq!(&kinds_of(*mask), want, "{mask:?}");
        }
    }

    /// On the real file system: a hundred reads of a watched directory and its file reach the
    /// source as no kernel events at all; the write after them is reported.
    #[test]
    fn reads_in_a_watched_directory_wake_nothing_and_a_write_is_reported() {
        use crate::batch::InFlight;
        use crate::source::Msg;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "a").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut source = InotifySource::new(EventSink {
            tx,
            in_flight: InFlight::default(),
        })
        .unwrap();
        source.watch(dir.path()).unwrap();
        for _ in 0..100 {
            std::fs::read(&file).unwrap();
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
        std::fs::write(&file, "b").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = vec![];
        while !seen.contains(&(RawKind::Closed, file.clone())) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(Msg::Raw(ev)) => seen.push((ev.kind, ev.path)),
                Ok(_) => {}
                Err(e) => panic!("no close-after-write for {file:?} ({e}); saw {seen:?}"),
            }
        }
        // The write's modify(s) and its close; nothing for the reads.
        assert!(
            source.kernel_events() <= 3,
            "{} kernel events: {seen:?}",
            source.kernel_events()
        );
        assert!(seen.contains(&(RawKind::Modify, file.clone())), "{seen:?}");
    }

    /// A directory deleted and recreated is watched under a new descriptor before the kernel's
    /// "dropped" for the old one is read: forgetting the old one must not unwatch the new.
    #[test]
    fn forgetting_an_old_descriptor_keeps_the_paths_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let inotify = Inotify::init().unwrap();
        let new = inotify.watches().add(dir.path(), watch_mask()).unwrap();
        let new_id = new.get_watch_descriptor_id();
        let old_id = new_id + 1000;
        let mut dirs = Dirs::default();
        dirs.by_wd.insert(old_id, vec![dir.path().to_path_buf()]);
        dirs.by_wd.insert(new_id, vec![dir.path().to_path_buf()]);
        dirs.by_path.insert(dir.path().to_path_buf(), new);
        dirs.forget_wd(old_id);
        assert_eq!(
            dirs.by_path
                .get(dir.path())
                .map(WatchDescriptor::get_watch_descriptor_id),
            Some(new_id)
        );
        dirs.forget_wd(new_id);
        assert!(dirs.by_path.is_empty() && dirs.by_wd.is_empty());
    }

    #[test]
    fn the_mask_asks_for_changes_not_reads() {
        let m = watch_mask();
        for read in [WatchMask::OPEN, WatchMask::ACCESS, WatchMask::CLOSE_NOWRITE] {
            assert!(!m.intersects(read), "{read:?}");
        }
    }
}
