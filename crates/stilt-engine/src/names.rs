//! Object names and annotations the engine reads and writes.

/// The resource of the Tiltfile itself.
pub const TILTFILE_RESOURCE: &str = "(Tiltfile)";
/// Tiltfile object and Session name.
pub const TILTFILE_OBJECT: &str = "(Tiltfile)";
pub const SESSION_NAME: &str = "Tiltfile";
/// The ConfigMap that queues manual triggers: `data[<resource>] = <reason>`.
pub const TRIGGER_QUEUE: &str = "tilt-trigger-queue";

/// Resource information the loader puts on each UIResource (beyond Tilt's own fields).
pub const ANN_RESOURCE_TYPE: &str = "stilt.dev/resource-type";
pub const ANN_TRIGGER_MODE: &str = "stilt.dev/trigger-mode";
pub const ANN_AUTO_INIT: &str = "stilt.dev/auto-init";
pub const ANN_RESOURCE_DEPS: &str = "stilt.dev/resource-deps";
pub const ANN_ALLOW_PARALLEL: &str = "stilt.dev/allow-parallel";
pub const ANN_POD_READINESS: &str = "stilt.dev/pod-readiness";
pub const ANN_IMAGE_MAPS: &str = "stilt.dev/image-maps";
/// On DockerImage/CmdImage: the image maps of the images it builds from, in order.
pub const ANN_IMAGE_DEPS: &str = "stilt.dev/image-deps";
pub const ANN_ORDER: &str = "stilt.dev/order";
pub const ANN_LINKS: &str = "stilt.dev/links";
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
