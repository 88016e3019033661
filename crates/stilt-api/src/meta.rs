//! Object metadata and the sub-types shared by several kinds.

use crate::macros::api_struct;
use crate::time::{MicroTime, Time};
use std::collections::BTreeMap;

api_struct! {
    /// Standard object metadata (the subset of Kubernetes' ObjectMeta that Stilt stores).
    pub struct ObjectMeta {
        pub name: String,
        pub generate_name: String,
        pub namespace: String,
        pub uid: String,
        pub resource_version: String,
        pub generation: i64,
        pub creation_timestamp: Option<Time>,
        pub deletion_timestamp: Option<Time>,
        pub labels: BTreeMap<String, String>,
        pub annotations: BTreeMap<String, String>,
        pub owner_references: Vec<OwnerReference>,
        pub finalizers: Vec<String>,
        /// Accepted for kubectl compatibility; Stilt does not track field managers.
        pub managed_fields: Vec<serde_json::Value>,
    }
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn with_annotation(mut self, key: &str, value: impl Into<String>) -> Self {
        self.annotations.insert(key.to_string(), value.into());
        self
    }

    pub fn with_label(mut self, key: &str, value: impl Into<String>) -> Self {
        self.labels.insert(key.to_string(), value.into());
        self
    }

    /// The resource (manifest) the object belongs to: its [`ANNOTATION_RESOURCE`].
    pub fn resource(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_RESOURCE)
            .map(String::as_str)
    }

    /// The resource the object belongs to, else its own name: where its output is logged.
    pub fn resource_or_name(&self) -> String {
        self.resource().unwrap_or(&self.name).to_string()
    }
}

api_struct! {
    pub struct OwnerReference {
        @required pub api_version: String,
        @required pub kind: String,
        @required pub name: String,
        @required pub uid: String,
        pub controller: Option<bool>,
        pub block_owner_deletion: Option<bool>,
    }
}

/// Annotation naming the resource (manifest) an object belongs to.
pub const ANNOTATION_RESOURCE: &str = "tilt.dev/resource";
/// Annotation naming who drives an object (`buildcontrol`, `local_resource`, `cmd_image`, ...).
pub const ANNOTATION_MANAGED_BY: &str = "tilt.dev/managed-by";
/// Annotation naming the log span an object's output goes to.
pub const ANNOTATION_LOG_SPAN_ID: &str = "tilt.dev/log-span-id";
/// Annotation on LiveUpdate: `auto` or `manual`.
pub const ANNOTATION_UPDATE_MODE: &str = "tilt.dev/update-mode";
/// Label on UIButtons: the button's role (`stopbuild`, `toggle`, ...).
pub const ANNOTATION_BUTTON_TYPE: &str = "tilt.dev/uibutton-type";
/// Annotation naming the build target an object belongs to (`image:web`, `k8s:web`, …).
pub const ANNOTATION_TARGET_ID: &str = "tilt.dev/target-id";
/// Annotation on a Cmd a serve command runs: the kind that owns it (`CmdServer`).
pub const ANNOTATION_OWNER_KIND: &str = "tilt.dev/owner-kind";
/// On DockerImage/CmdImage: the image maps of the images it builds from, comma-separated, in
/// order.
pub const ANNOTATION_IMAGE_DEPS: &str = "stilt.dev/image-deps";

api_struct! {
    /// Where an object reads whether it is disabled.
    pub struct DisableSource {
        pub config_map: Option<ConfigMapDisableSource>,
        pub every_config_map: Vec<ConfigMapDisableSource>,
    }
}

api_struct! {
    pub struct ConfigMapDisableSource {
        @required pub name: String,
        @required pub key: String,
    }
}

api_struct! {
    pub struct DisableStatus {
        /// Deprecated by `state`, kept for compatibility.
        pub disabled: bool,
        pub last_update_time: Option<Time>,
        pub reason: String,
        /// `""`, `Enabled`, `Disabled` or `Error`.
        pub state: String,
    }
}

api_struct! {
    /// Restart when any of these objects report a newer event.
    pub struct RestartOnSpec {
        pub file_watches: Vec<String>,
        pub ui_buttons: Vec<String>,
    }
}

api_struct! {
    /// Start on a button click, but only after `startAfter`.
    pub struct StartOnSpec {
        pub start_after: Option<MicroTime>,
        pub ui_buttons: Vec<String>,
    }
}

api_struct! {
    pub struct StopOnSpec {
        pub ui_buttons: Vec<String>,
    }
}

api_struct! {
    /// A readiness probe with Kubernetes' timing semantics.
    pub struct Probe {
        pub handler: Handler,
        pub initial_delay_seconds: i32,
        /// Default 1.
        pub timeout_seconds: i32,
        /// Default 10.
        pub period_seconds: i32,
        /// Default 1.
        pub success_threshold: i32,
        /// Default 3.
        pub failure_threshold: i32,
    }
}

api_struct! {
    pub struct Handler {
        pub exec: Option<ExecAction>,
        pub http_get: Option<HTTPGetAction>,
        pub tcp_socket: Option<TCPSocketAction>,
    }
}

api_struct! {
    pub struct ExecAction {
        pub command: Vec<String>,
    }
}

api_struct! {
    pub struct HTTPGetAction {
        pub path: String,
        @required pub port: i32,
        pub host: String,
        /// `HTTP` (default) or `HTTPS`.
        pub scheme: String,
        pub http_headers: Vec<HTTPHeader>,
    }
}

api_struct! {
    pub struct HTTPHeader {
        @required pub name: String,
        @required pub value: String,
    }
}

api_struct! {
    pub struct TCPSocketAction {
        @required pub port: i32,
        pub host: String,
    }
}

api_struct! {
    /// Regular-expression matcher over Kubernetes object identity.
    pub struct ObjectSelector {
        pub api_version_regexp: String,
        pub kind_regexp: String,
        pub name_regexp: String,
        pub namespace_regexp: String,
    }
}

api_struct! {
    /// KEP-1755 local registry hosting, as published in `kube-public/local-registry-hosting`.
    pub struct RegistryHosting {
        @required pub host: String,
        pub host_from_cluster_network: String,
        pub host_from_container_runtime: String,
        pub help: String,
        pub single_name: String,
    }
}

api_struct! {
    /// A pointer to a Kubernetes object.
    pub struct ObjectRef {
        pub api_version: String,
        pub kind: String,
        pub namespace: String,
        pub name: String,
        pub uid: String,
    }
}

api_struct! {
    /// A Kubernetes-style condition.
    pub struct Condition {
        @required pub r#type: String,
        @required pub status: String,
        pub last_transition_time: Option<MicroTime>,
        pub reason: String,
        pub message: String,
    }
}
