//! `stilt doctor`: what this machine offers Stilt (Docker, Compose, kubectl, the Kubernetes
//! context and the registry its cluster publishes) and what is missing, with how to get it.
//! Gathering runs the tools; [`report`] (pure) turns the facts into lines.

use anyhow::Result;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// What `doctor` found. `None`: the tool or cluster did not answer.
#[derive(Debug, Clone)]
pub struct Facts {
    pub stilt: String,
    pub docker_client: Option<String>,
    /// The engine's version, or why it did not answer.
    pub docker_server: Result<String, String>,
    /// (command, version)
    pub compose: Option<(String, String)>,
    pub kubectl: Option<String>,
    pub context: Option<KubeFacts>,
}

#[derive(Debug, Clone)]
pub struct KubeFacts {
    pub context: String,
    pub cluster: String,
    pub namespace: String,
    /// The server's version, or why the cluster did not answer.
    pub server: Result<String, String>,
    /// The registry the cluster publishes (kube-public/local-registry-hosting).
    pub registry: Option<String>,
}

/// The report: one line per fact, then what is missing and how to get it.
pub fn report(f: &Facts) -> Vec<String> {
    let mut out = vec![format!("Stilt:      v{}", f.stilt)];
    let mut missing: Vec<String> = Vec::new();
    match (&f.docker_client, &f.docker_server) {
        (Some(c), Ok(s)) => out.push(format!("Docker:     client {c}, engine {s}")),
        (Some(c), Err(e)) => {
            out.push(format!(
                "Docker:     client {c}, engine not reachable ({e})"
            ));
            missing.push(
                "a running Docker engine: start it (or set DOCKER_HOST) to build images and run Compose projects".into(),
            );
        }
        (None, _) => {
            out.push("Docker:     not installed".into());
            missing.push(
                "Docker: install Docker Engine (https://docs.docker.com/engine/install/) to build images and run Compose projects".into(),
            );
        }
    }
    match &f.compose {
        Some((cmd, v)) => out.push(format!("Compose:    {v} ({cmd})")),
        None => {
            out.push("Compose:    not installed".into());
            missing.push(
                "Docker Compose, for docker_compose(): the `docker compose` plugin or `docker-compose` (apt install docker-compose)".into(),
            );
        }
    }
    match &f.kubectl {
        Some(v) => out.push(format!("kubectl:    {v}")),
        None => {
            out.push("kubectl:    not installed".into());
            missing.push(
                "kubectl, for k8s_yaml() and k8s_context() (https://kubernetes.io/docs/tasks/tools/)".into(),
            );
        }
    }
    match &f.context {
        None => {
            out.push("Kubernetes: no current context".into());
            missing.push(
                "a Kubernetes cluster, for k8s resources: a local one (kind, k3d, minikube, Docker Desktop) and `kubectl config use-context`".into(),
            );
        }
        Some(k) => {
            let ns = if k.namespace.is_empty() {
                "default"
            } else {
                &k.namespace
            };
            out.push(format!(
                "Kubernetes: context \"{}\" (cluster \"{}\", namespace \"{ns}\")",
                k.context, k.cluster
            ));
            let dev = stilt_tiltfile::is_dev_cluster(&k.context)
                || stilt_tiltfile::is_dev_cluster(&k.cluster);
            out.push(if dev {
                "  allowed:  yes, a local development cluster".into()
            } else {
                format!(
                    "  allowed:  only where the Tiltfile says allow_k8s_contexts('{}') (not a known local cluster)",
                    k.context
                )
            });
            match &k.server {
                Ok(v) => out.push(format!("  server:   {v}")),
                Err(e) => {
                    out.push(format!("  server:   not reachable ({e})"));
                    missing.push(format!(
                        "a reachable cluster for context \"{}\": start it, or pick another with --context",
                        k.context
                    ));
                }
            }
            match (&k.registry, &k.server) {
                (Some(r), _) => out.push(format!("  registry: {r} (published by the cluster)")),
                (None, Ok(_)) => out.push(
                    "  registry: none published (images are pushed to default_registry(), or loaded into the cluster's runtime)".into(),
                ),
                (None, Err(_)) => {}
            }
        }
    }
    if missing.is_empty() {
        out.push("Nothing missing.".into());
    } else {
        out.push("Missing:".into());
        out.extend(missing.into_iter().map(|m| format!("  - {m}")));
    }
    out
}

pub fn doctor() -> Result<ExitCode> {
    let facts = gather();
    for l in report(&facts) {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}

/// stdout of a command that exited 0, trimmed.
fn output(argv: &[&str]) -> Option<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn gather() -> Facts {
    let docker_client =
        output(&["docker", "version", "--format", "{{.Client.Version}}"]).filter(|v| !v.is_empty());
    let docker_server = match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(first_line(&String::from_utf8_lossy(&o.stderr))),
        Err(e) => Err(e.to_string()),
    };
    let compose = output(&["docker", "compose", "version", "--short"])
        .map(|v| ("docker compose".to_string(), v))
        .or_else(|| {
            output(&["docker-compose", "version", "--short"])
                .map(|v| ("docker-compose".to_string(), v))
        });
    let kubectl = output(&["kubectl", "version", "--client", "-o", "json"]).and_then(|j| {
        serde_json::from_str::<serde_json::Value>(&j).ok()?["clientVersion"]["gitVersion"]
            .as_str()
            .map(str::to_string)
    });
    Facts {
        stilt: env!("CARGO_PKG_VERSION").to_string(),
        docker_client,
        docker_server,
        compose,
        kubectl,
        context: kube_facts(),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no answer")
        .to_string()
}

fn kube_facts() -> Option<KubeFacts> {
    let kc = stilt_k8s::kubeconfig::read(None).ok()?;
    let context = kc.current_context.clone().filter(|c| !c.is_empty())?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone());
    let cluster = ctx.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let namespace = ctx.and_then(|c| c.namespace).unwrap_or_default();
    let connected = crate::up::runtime().ok().map(|rt| {
        rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                stilt_k8s::KubeCluster::connect(None, None),
            )
            .await
        })
    });
    let (server, registry) = match connected {
        Some(Ok(Ok(c))) => {
            use stilt_k8s::Cluster;
            let info = c.info();
            (
                Ok(info.server_version.clone()),
                info.registry.map(|r| r.host),
            )
        }
        Some(Ok(Err(e))) => (Err(first_line(&e.to_string())), None),
        Some(Err(_)) => (Err("no answer within 10s".into()), None),
        None => (Err("could not start a runtime".into()), None),
    };
    Some(KubeFacts {
        context,
        cluster,
        namespace,
        server,
        registry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_there() -> Facts {
        Facts {
            stilt: "0.1.0".into(),
            docker_client: Some("28.2.2".into()),
            docker_server: Ok("20.10.24".into()),
            compose: Some(("docker-compose".into(), "1.29.2".into())),
            kubectl: Some("v1.32.4".into()),
            context: Some(KubeFacts {
                context: "kind-dev".into(),
                cluster: "kind-dev".into(),
                namespace: String::new(),
                server: Ok("v1.35.4".into()),
                registry: Some("localhost:5000".into()),
            }),
        }
    }

    #[test]
    fn reports_versions_context_and_what_is_missing() {
        let has = |lines: &[String], s: &str| lines.iter().any(|l| l.contains(s));
        let ok = report(&all_there());
        for want in [
            "Docker:     client 28.2.2, engine 20.10.24",
            "Compose:    1.29.2 (docker-compose)",
            "kubectl:    v1.32.4",
            "context \"kind-dev\" (cluster \"kind-dev\", namespace \"default\")",
            "allowed:  yes",
            "registry: localhost:5000",
            "Nothing missing.",
        ] {
            assert!(has(&ok, want), "{want:?} in {ok:#?}");
        }

        // (what breaks, a line it must show, a "Missing" hint it must give)
        type Breaks = fn(&mut Facts);
        let cases: [(Breaks, &str, &str); 5] = [
            (
                |f| f.docker_client = None,
                "Docker:     not installed",
                "install Docker Engine",
            ),
            (
                |f| f.docker_server = Err("Cannot connect".into()),
                "engine not reachable (Cannot connect)",
                "a running Docker engine",
            ),
            (
                |f| f.compose = None,
                "Compose:    not installed",
                "docker-compose",
            ),
            (
                |f| f.kubectl = None,
                "kubectl:    not installed",
                "kubectl, for",
            ),
            (
                |f| f.context = None,
                "no current context",
                "a Kubernetes cluster",
            ),
        ];
        for (breaks, line, hint) in cases {
            let mut f = all_there();
            breaks(&mut f);
            let r = report(&f);
            assert!(has(&r, line), "{line:?} in {r:#?}");
            assert!(has(&r, "Missing:"), "{r:#?}");
            assert!(has(&r, hint), "{hint:?} in {r:#?}");
            assert!(!has(&r, "Nothing missing."), "{r:#?}");
        }
    }

    #[test]
    fn a_context_that_is_not_a_dev_cluster_needs_allow_k8s_contexts() {
        let mut f = all_there();
        let k = f.context.as_mut().unwrap();
        k.context = "prod-east".into();
        k.cluster = "prod-east".into();
        k.registry = None;
        let r = report(&f);
        assert!(
            r.iter()
                .any(|l| l.contains("allow_k8s_contexts('prod-east')")),
            "{r:#?}"
        );
        assert!(
            r.iter().any(|l| l.contains("registry: none published")),
            "{r:#?}"
        );
    }
}
