//! LiveUpdate: sync changed files into running containers (the seed spec is the contract).

use crate::macros::{api_kind, api_struct};
use crate::time::MicroTime;

api_kind!(
    /// Syncs file changes into running containers and runs commands there.
    LiveUpdate, LiveUpdateSpec, LiveUpdateStatus
);

api_struct! {
    pub struct LiveUpdateSpec {
        /// Absolute local path that all relative paths are computed from. Must not be empty.
        @required pub base_path: String,
        @required pub selector: LiveUpdateSelector,
        pub sources: Vec<LiveUpdateSource>,
        /// Relative paths whose change stops live update and forces a rebuild.
        pub stop_paths: Vec<String>,
        pub syncs: Vec<LiveUpdateSync>,
        pub execs: Vec<LiveUpdateExec>,
        /// `none` (default) or `always`: restart the container after syncs and execs.
        pub restart: String,
        /// When set (Tiltfile `initial_sync()`), every new container first gets all files under
        /// all sync paths, before any change.
        pub initial_sync: Option<LiveUpdateInitialSync>,
    }
}

api_struct! {
    /// Marker: sync everything under the sync paths to each new container (Tilt's
    /// `LiveUpdateInitialSync`, currently without fields).
    pub struct LiveUpdateInitialSync {
    }
}

pub const LIVE_UPDATE_RESTART_NONE: &str = "none";
pub const LIVE_UPDATE_RESTART_ALWAYS: &str = "always";

api_struct! {
    pub struct LiveUpdateSelector {
        pub kubernetes: Option<LiveUpdateKubernetesSelector>,
        pub docker_compose: Option<LiveUpdateDockerComposeSelector>,
        /// Stilt extension: every running Docker container started from the image built for
        /// `image` (containers outside compose, e.g. from `docker run`).
        pub docker: Option<LiveUpdateDockerSelector>,
    }
}

api_struct! {
    pub struct LiveUpdateDockerSelector {
        /// The image the containers run. Matched by repository against the ImageMaps of the
        /// sources; containers running its current build are updated. With a tag, matched
        /// exactly (e.g. `app:dev`) and no build is needed.
        @required pub image: String,
    }
}

api_struct! {
    pub struct LiveUpdateKubernetesSelector {
        /// The KubernetesDiscovery that finds the pods.
        @required pub discovery_name: String,
        /// Only pods of this KubernetesApply are updated.
        pub apply_name: String,
        /// Exactly one of image, containerName (or imageMapName) must be set.
        pub image: String,
        pub container_name: String,
        pub image_map_name: String,
    }
}

api_struct! {
    pub struct LiveUpdateDockerComposeSelector {
        @required pub service: String,
    }
}

api_struct! {
    pub struct LiveUpdateSource {
        /// The FileWatch whose events are synced.
        pub file_watch: String,
        /// The ImageMap whose build already contains changes before its build start.
        pub image_map: String,
    }
}

api_struct! {
    pub struct LiveUpdateSync {
        /// Relative to basePath.
        @required pub local_path: String,
        /// Absolute path in the container.
        @required pub container_path: String,
    }
}

api_struct! {
    pub struct LiveUpdateExec {
        /// The command; at least one element.
        @required pub args: Vec<String>,
        /// Relative paths that trigger this command; empty means every change.
        pub trigger_paths: Vec<String>,
        pub echo_off: bool,
    }
}

api_struct! {
    pub struct LiveUpdateStatus {
        pub containers: Vec<LiveUpdateContainerStatus>,
        pub failed: Option<LiveUpdateStateFailed>,
    }
}

api_struct! {
    pub struct LiveUpdateContainerStatus {
        @required pub container_name: String,
        #[serde(rename = "containerID")] pub container_id: String,
        @required pub pod_name: String,
        @required pub namespace: String,
        /// Timestamp of the newest file event synced (the FileEvent's time).
        pub last_file_time_synced: Option<MicroTime>,
        pub last_exec_error: String,
        pub waiting: Option<LiveUpdateContainerStateWaiting>,
        /// Stage timings of the last update (Stilt extension).
        pub last_update_timings: Option<LiveUpdateTimings>,
    }
}

api_struct! {
    /// Milliseconds from the first file event to each stage of the last update (Stilt extension).
    pub struct LiveUpdateTimings {
        pub event_seen: Option<MicroTime>,
        pub batch_closed_ms: f64,
        pub archive_built_ms: f64,
        pub transfer_done_ms: f64,
        pub run_steps_done_ms: f64,
        pub files: i32,
        pub bytes: i64,
    }
}

api_struct! {
    pub struct LiveUpdateContainerStateWaiting {
        @required pub reason: String,
        pub message: String,
    }
}

api_struct! {
    pub struct LiveUpdateStateFailed {
        pub reason: String,
        pub message: String,
        pub last_transition_time: Option<MicroTime>,
    }
}
