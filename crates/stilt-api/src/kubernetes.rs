//! KubernetesApply, KubernetesDiscovery, PortForward and PodLogStream.

use crate::macros::{api_kind, api_struct};
use crate::meta::{Condition, DisableSource, DisableStatus, ObjectSelector, RestartOnSpec};
use crate::time::{MicroTime, Time};
use std::collections::BTreeMap;

api_kind!(
    /// YAML (or commands) to deploy to a cluster, with Stilt-built images injected.
    KubernetesApply, KubernetesApplySpec, KubernetesApplyStatus
);

api_struct! {
    pub struct KubernetesApplySpec {
        /// The YAML to apply. Exactly one of `yaml` or `applyCmd` must be set.
        pub yaml: String,
        /// ImageMaps whose images are injected into the YAML.
        pub image_maps: Vec<String>,
        pub image_locators: Vec<KubernetesImageLocator>,
        /// How long to wait for an apply (default 30s).
        pub timeout: Option<String>,
        pub kubernetes_discovery_template_spec: Option<KubernetesDiscoveryTemplateSpec>,
        pub port_forward_template_spec: Option<PortForwardTemplateSpec>,
        pub pod_log_stream_template_spec: Option<PodLogStreamTemplateSpec>,
        /// `""`/`default` or `selectors-only`.
        pub discovery_strategy: String,
        pub disable_source: Option<DisableSource>,
        pub apply_cmd: Option<KubernetesApplyCmd>,
        pub delete_cmd: Option<KubernetesApplyCmd>,
        pub restart_on: Option<RestartOnSpec>,
        /// The Cluster object to deploy to (default `default`).
        pub cluster: String,
        /// Server-side apply (`update_settings(k8s_server_side_apply='true')`); false, the
        /// default, is client-side apply as in Tilt.
        pub server_side_apply: bool,
    }
}

api_struct! {
    pub struct KubernetesImageLocator {
        @required pub object_selector: ObjectSelector,
        /// JSONPath to the image field (e.g. `{.spec.image}`).
        @required pub path: String,
        pub object: Option<KubernetesImageObjectDescriptor>,
    }
}

api_struct! {
    pub struct KubernetesImageObjectDescriptor {
        @required pub repo_field: String,
        @required pub tag_field: String,
    }
}

api_struct! {
    pub struct KubernetesDiscoveryTemplateSpec {
        pub extra_selectors: Vec<LabelSelector>,
    }
}

api_struct! {
    /// A Kubernetes label selector.
    pub struct LabelSelector {
        pub match_labels: BTreeMap<String, String>,
        pub match_expressions: Vec<LabelSelectorRequirement>,
    }
}

api_struct! {
    pub struct LabelSelectorRequirement {
        @required pub key: String,
        @required pub operator: String,
        pub values: Vec<String>,
    }
}

api_struct! {
    pub struct PortForwardTemplateSpec {
        @required pub forwards: Vec<Forward>,
    }
}

api_struct! {
    pub struct PodLogStreamTemplateSpec {
        pub since_time: Option<Time>,
        pub only_containers: Vec<String>,
        pub ignore_containers: Vec<String>,
    }
}

api_struct! {
    pub struct KubernetesApplyCmd {
        @required pub args: Vec<String>,
        pub dir: String,
        pub env: Vec<String>,
    }
}

api_struct! {
    pub struct KubernetesApplyStatus {
        /// The YAML of the objects as the cluster returned them after the apply.
        #[serde(rename = "resultYAML")] pub result_yaml: String,
        pub error: String,
        pub last_apply_time: Option<MicroTime>,
        pub last_apply_start_time: Option<MicroTime>,
        /// Hash of the inputs of the last apply; unchanged inputs are not re-applied.
        pub applied_input_hash: String,
        pub disable_status: Option<DisableStatus>,
        pub conditions: Vec<Condition>,
    }
}

api_kind!(
    /// Finds the pods of applied objects (by owner references) and extra selectors.
    KubernetesDiscovery, KubernetesDiscoverySpec, KubernetesDiscoveryStatus
);

api_struct! {
    pub struct KubernetesDiscoverySpec {
        @required pub watches: Vec<KubernetesWatchRef>,
        pub extra_selectors: Vec<LabelSelector>,
        pub port_forward_template_spec: Option<PortForwardTemplateSpec>,
        pub pod_log_stream_template_spec: Option<PodLogStreamTemplateSpec>,
        pub cluster: String,
    }
}

api_struct! {
    pub struct KubernetesWatchRef {
        pub uid: String,
        @required pub namespace: String,
        pub name: String,
    }
}

api_struct! {
    pub struct KubernetesDiscoveryStatus {
        pub monitor_start_time: Option<MicroTime>,
        pub pods: Vec<Pod>,
        pub waiting: Option<KubernetesDiscoveryStateWaiting>,
        pub running: Option<KubernetesDiscoveryStateRunning>,
    }
}

api_struct! {
    pub struct KubernetesDiscoveryStateWaiting {
        @required pub reason: String,
    }
}

api_struct! {
    pub struct KubernetesDiscoveryStateRunning {
        @required pub start_time: MicroTime,
    }
}

api_struct! {
    /// What Stilt knows about a discovered pod.
    pub struct Pod {
        @required pub name: String,
        @required pub namespace: String,
        @required pub created_at: Time,
        @required pub phase: String,
        pub deleting: bool,
        pub conditions: Vec<PodCondition>,
        pub init_containers: Vec<Container>,
        pub containers: Vec<Container>,
        pub uid: String,
        #[serde(rename = "ancestorUID")] pub ancestor_uid: String,
        pub pod_template_spec_hash: String,
        pub status: String,
        pub errors: Vec<String>,
        pub owner: Option<PodOwner>,
    }
}

api_struct! {
    pub struct PodCondition {
        @required pub r#type: String,
        @required pub status: String,
        pub last_transition_time: Option<Time>,
        pub reason: String,
        pub message: String,
    }
}

api_struct! {
    pub struct PodOwner {
        pub name: String,
        pub api_version: String,
        pub kind: String,
        pub creation_timestamp: Option<Time>,
    }
}

api_struct! {
    pub struct Container {
        @required pub name: String,
        pub id: String,
        pub ready: bool,
        pub image: String,
        pub restarts: i32,
        pub state: ContainerState,
        pub ports: Vec<i32>,
    }
}

api_struct! {
    pub struct ContainerState {
        pub waiting: Option<ContainerStateWaiting>,
        pub running: Option<ContainerStateRunning>,
        pub terminated: Option<ContainerStateTerminated>,
    }
}

api_struct! {
    pub struct ContainerStateWaiting {
        @required pub reason: String,
    }
}

api_struct! {
    pub struct ContainerStateRunning {
        @required pub started_at: Time,
    }
}

api_struct! {
    pub struct ContainerStateTerminated {
        @required pub started_at: Time,
        @required pub finished_at: Time,
        pub reason: String,
        @required pub exit_code: i32,
    }
}

api_kind!(
    /// Forwards local ports to a pod.
    PortForward, PortForwardSpec, PortForwardStatus
);

api_struct! {
    pub struct PortForwardSpec {
        @required pub pod_name: String,
        pub namespace: String,
        @required pub forwards: Vec<Forward>,
        pub cluster: String,
    }
}

api_struct! {
    pub struct Forward {
        /// Local port (0: same as the container port).
        pub local_port: i32,
        @required pub container_port: i32,
        /// Local address to listen on (default 127.0.0.1).
        pub host: String,
        pub name: String,
        pub path: String,
    }
}

api_struct! {
    pub struct PortForwardStatus {
        pub forward_statuses: Vec<ForwardStatus>,
    }
}

api_struct! {
    pub struct ForwardStatus {
        @required pub local_port: i32,
        @required pub container_port: i32,
        pub addresses: Vec<String>,
        pub started_at: Option<MicroTime>,
        pub error: String,
    }
}

api_kind!(
    /// Streams a pod's container logs into its resource's log.
    PodLogStream, PodLogStreamSpec, PodLogStreamStatus
);

api_struct! {
    pub struct PodLogStreamSpec {
        @required pub pod: String,
        pub namespace: String,
        pub since_time: Option<Time>,
        pub only_containers: Vec<String>,
        pub ignore_containers: Vec<String>,
        pub cluster: String,
    }
}

api_struct! {
    pub struct PodLogStreamStatus {
        pub container_statuses: Vec<ContainerLogStreamStatus>,
        pub error: String,
    }
}

api_struct! {
    pub struct ContainerLogStreamStatus {
        @required pub name: String,
        pub active: bool,
        pub terminated: bool,
        pub error: String,
    }
}
