//! Builds that need a BuildKit session serving more than credentials: `secret=`, `ssh=`, or
//! more than one `extra_hosts=` entry (the engine's `/build` endpoint takes `extrahosts` as a
//! repeated query parameter, which bollard's options cannot express).
//!
//! Docker's `/build` endpoint only asks the client's session for credentials; secrets and the
//! SSH agent must be served by the session too. bollard serves them in its BuildKit `solve`
//! path (the engine's `/grpc` + `/session` endpoints, exporter `moby`), so these builds go
//! there. That path reports no step-by-step progress: the log gets one line before and after.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{DockerError, Result};
use crate::types::BuildRequest;

/// Where a build secret's bytes come from (`docker build --secret` syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    File(PathBuf),
    Env(String),
}

/// Parses one `secret=` entry the way Docker's CLI (and Tilt) do: CSV of `type=file|env`, `id=`,
/// `src=`/`source=`, `env=`. Without a source, the id names an environment variable when one is
/// set (in `env`), else a file.
pub fn parse_secret(
    spec: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, SecretFrom)> {
    let bad = |m: String| DockerError::Build(format!("could not parse secret {spec:?}: {m}"));
    let (mut typ, mut id, mut src, mut var) = (String::new(), String::new(), None, None);
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(format!(
                "invalid field '{field}' must be a key=value pair"
            )));
        };
        match k.to_ascii_lowercase().as_str() {
            "type" if v == "file" || v == "env" => typ = v.to_owned(),
            "type" => return Err(bad(format!("unsupported secret type {v:?}"))),
            "id" => id = v.to_owned(),
            "source" | "src" => src = Some(v.to_owned()),
            "env" => var = Some(v.to_owned()),
            _ => return Err(bad(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if typ == "env" && var.is_none() {
        var = src.take();
    }
    if id.is_empty() {
        return Err(bad("secret ID missing".into()));
    }
    let from = match (src, var) {
        (Some(p), _) => SecretFrom::File(PathBuf::from(p)),
        (None, Some(v)) => SecretFrom::Env(v),
        (None, None) if env(&id).is_some() => SecretFrom::Env(id.clone()),
        (None, None) => SecretFrom::File(PathBuf::from(&id)),
    };
    Ok((id, from))
}

/// Checks one `ssh=` entry. Only the default agent (`$SSH_AUTH_SOCK`) can be forwarded.
pub fn check_ssh(spec: &str) -> Result<()> {
    let (id, paths) = spec.split_once('=').unwrap_or((spec, ""));
    if id == "default" && paths.is_empty() {
        return Ok(());
    }
    Err(DockerError::Build(format!(
        "ssh {spec:?}: Stilt forwards only the default SSH agent ($SSH_AUTH_SOCK); use ssh='default'"
    )))
}

/// Parses one `extra_hosts=` entry (`host:ip`; the IP may be IPv6).
pub fn parse_extra_host(spec: &str) -> Result<(String, IpAddr)> {
    let bad = || DockerError::Build(format!("invalid extra host {spec:?}: expected host:ip"));
    let (host, ip) = spec.split_once(':').ok_or_else(bad)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), ip.parse().map_err(|_| bad())?))
}

/// Whether a build must go through [`build`] rather than the engine's `/build` endpoint.
pub fn needs_session(req: &BuildRequest) -> bool {
    !req.secrets.is_empty() || !req.ssh.is_empty() || req.extra_hosts.len() > 1
}

/// Frontend attributes common to the build (exposed for tests).
pub(crate) fn frontend_options(
    req: &BuildRequest,
    dockerfile_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<bollard::grpc::build::ImageBuildFrontendOptions> {
    use bollard::grpc::build::{
        ImageBuildFrontendOptions, ImageBuildHostIp, ImageBuildNetworkMode, ImageBuildPlatform,
        SecretSource,
    };
    let mut b = ImageBuildFrontendOptions::builder()
        .dockerfile(std::path::Path::new(dockerfile_name))
        .pull(req.pull)
        .nocache(req.no_cache);
    if let Some(t) = req.target.as_deref().filter(|t| !t.is_empty()) {
        b = b.target(t);
    }
    for (k, v) in &req.build_args {
        b = b.buildarg(k, v);
    }
    for (k, v) in &req.labels {
        b = b.label(k, v);
    }
    if let Some(p) = req.platform.as_deref().filter(|p| !p.is_empty()) {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or_default().to_owned();
        let architecture = parts.next().unwrap_or_default().to_owned();
        let variant = parts.next().map(str::to_owned);
        if os.is_empty() || architecture.is_empty() {
            return Err(DockerError::Build(format!("invalid platform {p:?}")));
        }
        b = b.platforms(&ImageBuildPlatform {
            architecture,
            os,
            variant,
        });
    }
    if let Some(n) = req.network.as_deref().filter(|n| !n.is_empty()) {
        let mode = match n {
            "host" => ImageBuildNetworkMode::Host,
            "none" => ImageBuildNetworkMode::None,
            "default" | "bridge" => ImageBuildNetworkMode::Bridge,
            other => ImageBuildNetworkMode::Container(
                other.strip_prefix("container:").unwrap_or(other).to_owned(),
            ),
        };
        b = b.force_network_mode(&mode);
    }
    for h in &req.extra_hosts {
        let (host, ip) = parse_extra_host(h)?;
        b = b.extrahost(&ImageBuildHostIp { host, ip });
    }
    for c in &req.cache_from {
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("ref".to_owned(), c.clone());
        b = b.cachefrom(&bollard::moby::buildkit::v1::CacheOptionsEntry {
            r#type: "registry".into(),
            attrs,
        });
    }
    for s in &req.secrets {
        let (id, from) = parse_secret(s, env)?;
        let src = match from {
            SecretFrom::File(p) => SecretSource::File(p),
            SecretFrom::Env(v) => SecretSource::Env(v),
        };
        b = b.set_secret(&id, &src);
    }
    for s in &req.ssh {
        check_ssh(s)?;
    }
    if !req.ssh.is_empty() {
        b = b.enable_ssh(true);
    }
    Ok(b.build())
}

/// Runs the build through a BuildKit session and returns the image ID. The image is exported
/// under a temporary tag `<repo>:stilt-session-<n>`, which is removed once the caller has
/// applied its own tags (see [`temp_tag`]).
pub(crate) async fn build(
    docker: &bollard::Docker,
    req: &BuildRequest,
    temp_ref: &str,
) -> Result<String> {
    use bollard::grpc::build::ImageBuildLoadInput;
    use bollard::grpc::driver::Build;
    use bollard::grpc::driver::moby::Moby;

    let (df_name, _) = crate::tarball::plan_dockerfile(&req.context.dir, &req.dockerfile)?;
    let ctx = req.context.clone();
    let df = req.dockerfile.clone();
    let tar = tokio::task::spawn_blocking(move || {
        crate::tarball::write_context_tar(&ctx, &df, Vec::new()).map(|(w, _)| w)
    })
    .await
    .map_err(|e| DockerError::Build(format!("context archive task failed: {e}")))??;
    let env = |k: &str| std::env::var(k).ok();
    let opts = frontend_options(req, &df_name, &env)?;
    // bollard's session future is not `Send`: poll it on a blocking thread (tasks it spawns
    // still run on the runtime).
    let handle = tokio::runtime::Handle::current();
    let (d, name) = (docker.clone(), temp_ref.to_owned());
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            Moby::new(&d)
                .docker_build(
                    &name,
                    opts,
                    ImageBuildLoadInput::Upload(bytes::Bytes::from(tar)),
                    None,
                    None,
                )
                .await
                .map_err(|e| e.to_string())
        })
    })
    .await
    .map_err(|e| DockerError::Build(format!("BuildKit session task failed: {e}")))?
    .map_err(|e| DockerError::Build(format!("BuildKit session build failed: {e}")))?;
    let info = docker
        .inspect_image(temp_ref)
        .await
        .map_err(|e| DockerError::Build(format!("inspecting the built image {temp_ref}: {e}")))?;
    info.id
        .ok_or_else(|| DockerError::Build(format!("built image {temp_ref} has no ID")))
}

/// The temporary ref a session build exports to (a valid ref in the image's repository).
pub(crate) fn temp_tag(image_ref: &str, n: u64) -> String {
    let (repo, _) = crate::tag::split_repo_tag(image_ref);
    format!("{repo}:stilt-session-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn secrets_parse_like_docker() {
        let cases: &[(&str, (&str, SecretFrom))] = &[
            (
                "id=mysecret,src=/tmp/s.txt",
                ("mysecret", SecretFrom::File("/tmp/s.txt".into())),
            ),
            ("id=a,source=rel/s", ("a", SecretFrom::File("rel/s".into()))),
            ("id=tok,env=TOKEN", ("tok", SecretFrom::Env("TOKEN".into()))),
            (
                "type=env,id=tok,src=TOKEN",
                ("tok", SecretFrom::Env("TOKEN".into())),
            ),
            ("id=only", ("only", SecretFrom::File("only".into()))),
        ];
        for (spec, (id, from)) in cases {
            let got = parse_secret(spec, &no_env).unwrap();
            assert_eq!(got, (id.to_string(), from.clone()), "{spec}");
        }
        let with_env = |k: &str| (k == "only").then(|| "x".to_owned());
        assert_eq!(
            parse_secret("id=only", &with_env).unwrap().1,
            SecretFrom::Env("only".into())
        );
        for bad in ["src=/x", "id=a,oops", "id=a,type=ssh", "id=a,color=red"] {
            assert!(parse_secret(bad, &no_env).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_and_hosts() {
        assert!(check_ssh("default").is_ok());
        assert!(check_ssh("default=/a/key").is_err());
        assert!(check_ssh("github=/a/key").is_err());
        assert_eq!(
            parse_extra_host("myhost:1.2.3.4").unwrap(),
            ("myhost".to_owned(), "1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            parse_extra_host("v6:::1").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_extra_host("nohost").is_err());
        assert!(parse_extra_host("h:host-gateway").is_err());
    }

    #[test]
    fn session_only_when_needed() {
        let ctx = crate::types::BuildContext::new(PathBuf::from("/tmp"));
        let mut req = BuildRequest::new("web", ctx);
        req.extra_hosts = vec!["a:1.1.1.1".into()];
        req.cache_from = vec!["web:cache".into()];
        assert!(!needs_session(&req));
        req.extra_hosts.push("b:2.2.2.2".into());
        assert!(needs_session(&req));
        req.extra_hosts.truncate(1);
        req.secrets = vec!["id=x,src=/y".into()];
        assert!(needs_session(&req));
        assert!(frontend_options(&req, "Dockerfile", &no_env).is_ok());
        req.platform = Some("linux".into());
        assert!(frontend_options(&req, "Dockerfile", &no_env).is_err());
    }
}
