//! ImageMap, DockerImage and CmdImage.

use crate::macros::{api_kind, api_struct};
use crate::time::MicroTime;

api_kind!(
    /// Maps an image reference in the YAML to the image Stilt built.
    ImageMap, ImageMapSpec, ImageMapStatus
);

api_struct! {
    pub struct ImageMapSpec {
        /// The image reference to replace (e.g. `gcr.io/foo/bar`).
        @required pub selector: String,
        pub match_exact: bool,
        pub match_in_env_vars: bool,
        pub override_command: Option<ImageMapOverrideCommand>,
        pub override_args: Option<ImageMapOverrideArgs>,
    }
}

api_struct! {
    pub struct ImageMapOverrideCommand {
        pub command: Vec<String>,
    }
}

api_struct! {
    pub struct ImageMapOverrideArgs {
        pub args: Vec<String>,
    }
}

api_struct! {
    pub struct ImageMapStatus {
        /// The reference to inject (as the cluster sees it).
        pub image: String,
        pub image_from_local: String,
        pub image_from_cluster: String,
        pub build_start_time: Option<MicroTime>,
    }
}

api_kind!(
    /// An image built with the Docker engine.
    DockerImage, DockerImageSpec, DockerImageStatus
);

api_struct! {
    pub struct DockerImageSpec {
        @required pub r#ref: String,
        pub dockerfile_contents: String,
        pub context: String,
        pub context_ignores: Vec<crate::filewatch::IgnoreDef>,
        pub args: Vec<String>,
        pub target: String,
        pub ssh_agent_configs: Vec<String>,
        pub secrets: Vec<String>,
        pub network: String,
        pub pull: bool,
        pub cache_from: Vec<String>,
        pub platform: String,
        pub extra_tags: Vec<String>,
        pub image_maps: Vec<String>,
        pub cluster: String,
        /// `push` or `base-image`.
        pub cluster_needs: String,
        pub extra_hosts: Vec<String>,
    }
}

api_struct! {
    pub struct DockerImageStatus {
        pub r#ref: String,
        pub waiting: Option<DockerImageStateWaiting>,
        pub building: Option<DockerImageStateBuilding>,
        pub completed: Option<DockerImageStateCompleted>,
        pub stage_statuses: Vec<DockerImageStageStatus>,
    }
}

api_struct! {
    pub struct DockerImageStateWaiting {
        @required pub reason: String,
    }
}

api_struct! {
    pub struct DockerImageStateBuilding {
        pub reason: String,
        @required pub started_at: MicroTime,
    }
}

api_struct! {
    pub struct DockerImageStateCompleted {
        pub error: String,
        @required pub started_at: MicroTime,
        @required pub finished_at: MicroTime,
    }
}

api_struct! {
    pub struct DockerImageStageStatus {
        @required pub name: String,
        pub cached: bool,
        pub started_at: Option<MicroTime>,
        pub finished_at: Option<MicroTime>,
        pub error: String,
    }
}

api_kind!(
    /// An image built by a custom command (`custom_build`).
    CmdImage, CmdImageSpec, CmdImageStatus
);

api_struct! {
    pub struct CmdImageSpec {
        @required pub r#ref: String,
        pub args: Vec<String>,
        pub dir: String,
        pub env: Vec<String>,
        pub image_maps: Vec<String>,
        /// `local-docker`, `local-docker-and-remote` or `remote`.
        pub output_mode: String,
        pub output_tag: String,
        pub outputs_image_ref_to: String,
        pub cluster: String,
        pub cluster_needs: String,
    }
}

api_struct! {
    pub struct CmdImageStatus {
        pub r#ref: String,
        pub waiting: Option<CmdImageStateWaiting>,
        pub building: Option<CmdImageStateBuilding>,
        pub completed: Option<CmdImageStateCompleted>,
    }
}

api_struct! {
    pub struct CmdImageStateWaiting {
        @required pub reason: String,
    }
}

api_struct! {
    pub struct CmdImageStateBuilding {
        pub reason: String,
        @required pub started_at: MicroTime,
    }
}

api_struct! {
    pub struct CmdImageStateCompleted {
        pub error: String,
        @required pub started_at: MicroTime,
        @required pub finished_at: MicroTime,
    }
}
