//! Object names and annotations the engine reads and writes.

/// The resource of the Tiltfile itself.
pub const TILTFILE_RESOURCE: &str = "(Tiltfile)";
/// Tiltfile object and Session name.
pub const TILTFILE_OBJECT: &str = "(Tiltfile)";
pub const SESSION_NAME: &str = "Tiltfile";
/// The ConfigMap that queues manual triggers: `data[<resource>] = <reason>`.
pub const TRIGGER_QUEUE: &str = "tilt-trigger-queue";

/// The resource information on each UIResource (`stilt.dev/resource-type`, …) is declared
/// with its reader and writer in `stilt_api::manifest`.
pub use stilt_api::manifest::{ANN_RESOURCE_DEPS, ANN_RESOURCE_TYPE};
/// `update_settings(max_parallel_updates=)`, recorded on the Tiltfile object by its reconciler.
pub const ANN_MAX_PARALLEL: &str = "stilt.dev/max-parallel-updates";
/// `default_registry(host)`, recorded on the Tiltfile object by its reconciler.
pub const ANN_DEFAULT_REGISTRY: &str = "stilt.dev/default-registry";
/// Bumped by the engine to restart a Cmd whose spec did not change.
pub const ANN_RESTART_COUNT: &str = "stilt.dev/restart-count";

pub fn disable_configmap(resource: &str) -> String {
    format!("{resource}-disable")
}

pub fn update_cmd(resource: &str) -> String {
    format!("{resource}:update")
}

pub fn serve_cmd(resource: &str) -> String {
    format!("{resource}:serve")
}
