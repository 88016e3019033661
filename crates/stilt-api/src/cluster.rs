//! Cluster: a connection to Kubernetes or a Docker engine.

use crate::macros::{api_kind, api_struct};
use crate::meta::RegistryHosting;
use crate::time::MicroTime;

api_kind!(
    /// A cluster Stilt deploys to.
    Cluster, ClusterSpec, ClusterStatus
);

api_struct! {
    pub struct ClusterSpec {
        pub connection: Option<ClusterConnection>,
        pub default_registry: Option<RegistryHosting>,
    }
}

api_struct! {
    pub struct ClusterConnection {
        pub kubernetes: Option<KubernetesClusterConnection>,
        pub docker: Option<DockerClusterConnection>,
    }
}

api_struct! {
    pub struct KubernetesClusterConnection {
        pub context: String,
        pub namespace: String,
    }
}

api_struct! {
    pub struct DockerClusterConnection {
        pub host: String,
    }
}

api_struct! {
    pub struct ClusterStatus {
        pub arch: String,
        pub error: String,
        pub connected_at: Option<MicroTime>,
        pub registry: Option<RegistryHosting>,
        pub connection: Option<ClusterConnectionStatus>,
        pub version: String,
    }
}

api_struct! {
    pub struct ClusterConnectionStatus {
        pub kubernetes: Option<KubernetesClusterConnectionStatus>,
    }
}

api_struct! {
    pub struct KubernetesClusterConnectionStatus {
        pub context: String,
        pub namespace: String,
        pub cluster: String,
        pub product: String,
        pub config_path: String,
    }
}
