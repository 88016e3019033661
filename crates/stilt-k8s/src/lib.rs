pub mod cluster;
pub mod discovery;
pub mod error;
pub mod image;
pub mod inject;
pub mod jsonpath;
mod kube_cluster;
pub mod manifest;
pub mod names;

pub use cluster::*;
pub use error::{K8sError, Result};
pub use kube_cluster::{KubeCluster, cluster_product, parse_registry_hosting};
