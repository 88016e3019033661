//! FileWatch: a set of watched paths and the file events seen under them.

use crate::macros::{api_kind, api_struct};
use crate::meta::DisableSource;
use crate::time::MicroTime;

api_kind!(
    /// Watches files and directories and records batches of changes.
    FileWatch, FileWatchSpec, FileWatchStatus
);

api_struct! {
    pub struct FileWatchSpec {
        /// Absolute paths of files or directories (directories are watched recursively).
        @required pub watched_paths: Vec<String>,
        pub ignores: Vec<IgnoreDef>,
        pub disable_source: Option<DisableSource>,
    }
}

api_struct! {
    /// Dockerignore-style patterns relative to `basePath`; no patterns ignores all of `basePath`.
    pub struct IgnoreDef {
        @required pub base_path: String,
        pub patterns: Vec<String>,
    }
}

api_struct! {
    pub struct FileWatchStatus {
        pub monitor_start_time: Option<MicroTime>,
        pub last_event_time: Option<MicroTime>,
        /// The most recent batches, newest last (at most 20).
        pub file_events: Vec<FileEvent>,
        pub error: String,
        pub disable_status: Option<crate::meta::DisableStatus>,
    }
}

api_struct! {
    pub struct FileEvent {
        @required pub time: MicroTime,
        @required pub seen_files: Vec<String>,
    }
}

/// How many file events a FileWatch keeps in status.
pub const MAX_FILE_EVENTS: usize = 20;
