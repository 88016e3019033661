//! Errors. A [`WatchError`] returned by `WatchHub::new` or `WatchHub::watch`
//! is fatal for that call; the same type delivered inside a `Batch` is a
//! runtime error: it is reported and the watch keeps running.

use std::path::PathBuf;

/// Something went wrong while watching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// `inotify_add_watch` failed with ENOSPC.
    #[error(
        "cannot watch {path}: the inotify watch limit is reached (fs.inotify.max_user_watches = {limit}; \
         this process watches {watched} directories). Raise it, e.g. \
         `sudo sysctl fs.inotify.max_user_watches=524288` (persist in /etc/sysctl.d/), \
         or ignore large directories (.tiltignore / watch_settings(ignore=...))"
    )]
    WatchLimit {
        path: PathBuf,
        watched: usize,
        limit: String,
    },
    /// `inotify_init` failed with EMFILE.
    #[error(
        "cannot create an inotify instance: the per-user limit is reached \
         (fs.inotify.max_user_instances = {limit}). Stop other watchers or raise it, e.g. \
         `sudo sysctl fs.inotify.max_user_instances=512`"
    )]
    InstanceLimit { limit: String },
    /// Any other I/O failure.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The hub's background thread is gone.
    #[error("the file watcher has stopped")]
    Stopped,
}

pub(crate) fn sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
