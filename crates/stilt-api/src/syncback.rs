//! Syncback (a Stilt kind): copies files a running container produced back to the local tree.
//!
//! Tilt does this with the `syncback` extension (rsync over `kubectl exec`); Stilt serves
//! `load('ext://syncback', 'syncback')` itself and the loader turns each call into one of these.

use crate::macros::{api_kind, api_struct};
use crate::time::MicroTime;

api_kind!(
    /// Copies files from a running container back to the local tree, on trigger.
    Syncback, SyncbackSpec, SyncbackStatus
);

api_struct! {
    pub struct SyncbackSpec {
        /// Where the files come from: exactly one of kubernetes, dockerCompose.
        @required pub source: SyncbackSource,
        /// Directory in the container (absolute); `paths` are relative to it.
        @required pub src_dir: String,
        /// Local directory (absolute) the files are copied into. Nothing outside it is touched.
        @required pub target_dir: String,
        /// Only these paths (files or directories, relative to srcDir) are synced; empty: all.
        pub paths: Vec<String>,
        /// Patterns (dockerignore syntax, relative to srcDir) never synced in either direction.
        pub ignores: Vec<String>,
        /// Delete local files that no longer exist in the container (never the protected ones).
        pub delete: bool,
        /// Only report what would change.
        pub dry_run: bool,
        /// Sync again every `intervalSeconds` (0: only when triggered).
        pub interval_seconds: i32,
        /// Paths (relative to targetDir, any depth by name) never written or deleted. The loader
        /// fills in Tilt's defaults: .git, .gitignore, .dockerignore, Dockerfile, .tiltignore,
        /// Tiltfile, tilt_modules.
        pub protected: Vec<String>,
    }
}

api_struct! {
    pub struct SyncbackSource {
        pub kubernetes: Option<SyncbackKubernetesSource>,
        pub docker_compose: Option<SyncbackDockerComposeSource>,
    }
}

api_struct! {
    pub struct SyncbackKubernetesSource {
        /// `TYPE/NAME` (deploy/web, statefulset/db, pod/web-abc) or a pod name.
        @required pub object: String,
        pub namespace: String,
        /// Container name; empty: the pod's first container.
        pub container: String,
    }
}

api_struct! {
    pub struct SyncbackDockerComposeSource {
        /// The compose service whose running container is read.
        @required pub service: String,
    }
}

api_struct! {
    pub struct SyncbackStatus {
        /// The last completed run.
        pub last_run: Option<SyncbackRun>,
    }
}

api_struct! {
    pub struct SyncbackRun {
        pub start_time: Option<MicroTime>,
        pub finish_time: Option<MicroTime>,
        /// `namespace/pod` or the Docker container ID read from.
        pub pod: String,
        pub container: String,
        pub dry_run: bool,
        pub files_copied: i32,
        pub files_deleted: i32,
        /// Local files moved to a new name instead of copied again.
        pub files_renamed: i32,
        /// File bytes read from the container.
        pub bytes_transferred: i64,
        /// Files already equal, by size and mtime or by content hash.
        pub files_unchanged: i32,
        pub duration_ms: f64,
        /// What changed (or would, in dry run): `copy a/b`, `delete c`, `rename d -> e`; at most 100.
        pub changes: Vec<String>,
        pub error: String,
    }
}
