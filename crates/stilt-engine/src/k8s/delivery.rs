//! How a built image reaches a cluster, as Tilt decides it: through the registry the cluster
//! publishes (or `default_registry`); else, for clusters without one, `kind load` into a kind
//! cluster, `minikube image load` into minikube, nothing at all where the cluster's container
//! runtime is the local Docker engine (Docker Desktop, Rancher Desktop, OrbStack whose nodes run
//! on `docker`), and otherwise a push of the image under its own name (a remote cluster pulls it
//! from its registry).

use stilt_api::RegistryHosting;

#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Tag into this registry and push; the cluster pulls from there.
    Registry(RegistryHosting),
    /// `kind load docker-image <ref> --name <name>`.
    KindLoad { name: String },
    /// `minikube image load <ref> -p <profile>`.
    MinikubeLoad { profile: String },
    /// The cluster runs on the engine that built the image: nothing to do.
    SameEngine,
    /// `docker push <ref>` to the registry its name points at.
    PushAsNamed,
}

/// Whether Docker is reached at its default local socket (so a desktop cluster's runtime is
/// the engine Stilt builds with).
fn default_docker_host(docker_host: Option<&str>) -> bool {
    matches!(
        docker_host.map(str::trim),
        None | Some("") | Some("unix:///var/run/docker.sock")
    )
}

/// The delivery for a cluster of `product` (Cluster status `product`) named `cluster` in the
/// kubeconfig whose nodes run `runtime` (the scheme of the node's `containerRuntimeVersion`:
/// `docker`, `containerd`, …), given the registry it has (if any) and `$DOCKER_HOST`.
pub fn delivery(
    registry: Option<RegistryHosting>,
    product: &str,
    cluster: &str,
    runtime: &str,
    docker_host: Option<&str>,
) -> Delivery {
    if let Some(r) = registry.filter(|r| !r.host.is_empty()) {
        return Delivery::Registry(r);
    }
    match product {
        "kind" => Delivery::KindLoad {
            name: cluster.strip_prefix("kind-").unwrap_or(cluster).to_string(),
        },
        "minikube" => Delivery::MinikubeLoad {
            profile: cluster.to_string(),
        },
        // As Tilt: a desktop cluster shares the build's images only when its nodes run on
        // Docker itself (Docker Desktop's containerd-backed clusters do not).
        "docker-desktop" | "rancher-desktop" | "orbstack"
            if runtime == "docker" && default_docker_host(docker_host) =>
        {
            Delivery::SameEngine
        }
        _ => Delivery::PushAsNamed,
    }
}

/// The command that loads `image` for the deliveries done by a CLI.
pub fn load_command(d: &Delivery, image: &str) -> Option<Vec<String>> {
    let v = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect());
    match d {
        Delivery::KindLoad { name } => v(&["kind", "load", "docker-image", image, "--name", name]),
        Delivery::MinikubeLoad { profile } => {
            v(&["minikube", "image", "load", image, "-p", profile])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries() {
        let reg = RegistryHosting {
            host: "localhost:5000".into(),
            ..Default::default()
        };
        let kind = |n: &str| Delivery::KindLoad { name: n.into() };
        let (same, push) = (Delivery::SameEngine, Delivery::PushAsNamed);
        // (registry, product, kubeconfig cluster, node runtime, $DOCKER_HOST) → delivery
        type Case<'a> = (
            Option<RegistryHosting>,
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            Delivery,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (Some(reg.clone()), "kind", "kind-dev", "containerd", None, Delivery::Registry(reg.clone())),
            (Some(reg.clone()), "gke", "gke_p_z_c", "containerd", None, Delivery::Registry(reg)),
            (None, "kind", "kind-dev", "containerd", None, kind("dev")),
            (None, "kind", "kind", "containerd", None, kind("kind")),
            (None, "minikube", "minikube", "docker", None, Delivery::MinikubeLoad { profile: "minikube".into() }),
            (None, "docker-desktop", "docker-desktop", "docker", None, same.clone()),
            (None, "docker-desktop", "docker-desktop", "docker", Some("unix:///var/run/docker.sock"), same.clone()),
            // Docker Desktop's containerd-backed Kubernetes keeps its own image store.
            (None, "docker-desktop", "docker-desktop", "containerd", None, push.clone()),
            // Building on another engine: the desktop cluster cannot see the image.
            (None, "docker-desktop", "docker-desktop", "docker", Some("tcp://builder:2376"), push.clone()),
            (None, "orbstack", "orbstack", "docker", Some(""), same),
            (None, "gke", "gke_p_z_c", "containerd", None, push.clone()),
            (None, "unknown", "prod", "", None, push.clone()),
            // An empty published registry is no registry.
            (Some(RegistryHosting::default()), "unknown", "prod", "containerd", None, push),
        ];
        for (i, (r, product, cluster, runtime, host, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                delivery(r, product, cluster, runtime, host),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn load_commands() {
        assert_eq!(
            load_command(&Delivery::KindLoad { name: "dev".into() }, "app:tilt-1").unwrap(),
            [
                "kind",
                "load",
                "docker-image",
                "app:tilt-1",
                "--name",
                "dev"
            ]
        );
        assert_eq!(
            load_command(
                &Delivery::MinikubeLoad {
                    profile: "mk".into()
                },
                "app:tilt-1"
            )
            .unwrap(),
            ["minikube", "image", "load", "app:tilt-1", "-p", "mk"]
        );
        assert_eq!(load_command(&Delivery::PushAsNamed, "app"), None);
    }
}
