//! DockerComposeService and DockerComposeLogStream.

use crate::macros::{api_kind, api_struct};
use crate::meta::{DisableSource, DisableStatus};
use crate::time::MicroTime;

api_kind!(
    /// One service of a Docker Compose project.
    DockerComposeService, DockerComposeServiceSpec, DockerComposeServiceStatus
);

api_struct! {
    pub struct DockerComposeServiceSpec {
        @required pub service: String,
        @required pub project: DockerComposeProject,
        pub image_maps: Vec<String>,
        pub disable_source: Option<DisableSource>,
    }
}

api_struct! {
    pub struct DockerComposeProject {
        pub config_paths: Vec<String>,
        pub project_path: String,
        pub yaml: String,
        pub name: String,
        pub env_file: String,
        pub profiles: Vec<String>,
        pub wait: bool,
    }
}

api_struct! {
    pub struct DockerComposeServiceStatus {
        pub disable_status: Option<DisableStatus>,
        pub port_bindings: Vec<DockerPortBinding>,
        pub container_state: Option<DockerContainerState>,
        #[serde(rename = "containerID")] pub container_id: String,
        pub container_name: String,
        pub apply_error: String,
        pub last_apply_start_time: Option<MicroTime>,
        pub last_apply_finish_time: Option<MicroTime>,
    }
}

api_struct! {
    pub struct DockerPortBinding {
        pub container_port: i32,
        pub host_port: i32,
        #[serde(rename = "hostIP")] pub host_ip: String,
    }
}

api_struct! {
    pub struct DockerContainerState {
        pub status: String,
        pub running: bool,
        pub error: String,
        pub exit_code: i32,
        pub started_at: Option<MicroTime>,
        pub finished_at: Option<MicroTime>,
        pub health_status: String,
    }
}

api_kind!(
    /// Streams a compose service's container logs into its resource's log.
    DockerComposeLogStream, DockerComposeLogStreamSpec, DockerComposeLogStreamStatus
);

api_struct! {
    pub struct DockerComposeLogStreamSpec {
        @required pub service: String,
        @required pub project: DockerComposeProject,
        pub since_time: Option<MicroTime>,
    }
}

api_struct! {
    pub struct DockerComposeLogStreamStatus {
        pub started_at: Option<MicroTime>,
        pub error: String,
    }
}
