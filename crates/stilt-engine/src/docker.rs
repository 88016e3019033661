//! Docker: image builds (DockerImage → ImageMap status) and Docker Compose services
//! (DockerComposeService status, container logs), through the `stilt-docker` adapter.

use crate::Ctx;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stilt_api::*;
use stilt_docker::compose::{ComposeClient, ComposeProjectSpec, UpOptions};
use stilt_docker::{BuildContext, BuildRequest, DockerClient};
use stilt_logs::Level;
use stilt_store::TypedStore;
use tokio::sync::OnceCell;

/// The Docker engine and compose CLI, connected on first use. Only a connection is kept: an
/// engine that was down (restarting, not started yet) is tried again on the next use.
#[derive(Default)]
pub struct DockerAdapters {
    docker: OnceCell<Arc<dyn DockerClient>>,
    compose: OnceCell<Arc<dyn ComposeClient>>,
}

impl DockerAdapters {
    /// Adapters that are already connected (tests use fakes).
    pub fn with(docker: Arc<dyn DockerClient>, compose: Arc<dyn ComposeClient>) -> Self {
        Self {
            docker: OnceCell::new_with(Some(docker)),
            compose: OnceCell::new_with(Some(compose)),
        }
    }

    pub async fn docker(&self) -> Result<Arc<dyn DockerClient>, String> {
        self.docker
            .get_or_try_init(|| async {
                stilt_docker::BollardDocker::connect()
                    .await
                    .map(|d| Arc::new(d) as Arc<dyn DockerClient>)
                    .map_err(|e| format!("cannot reach the Docker engine: {e}"))
            })
            .await
            .cloned()
    }

    pub async fn compose(&self) -> Result<Arc<dyn ComposeClient>, String> {
        let docker = self.docker().await?;
        self.compose
            .get_or_try_init(|| async move {
                stilt_docker::compose::ComposeCli::detect(docker)
                    .await
                    .map(|c| Arc::new(c) as Arc<dyn ComposeClient>)
                    .map_err(|e| format!("no Docker Compose CLI: {e}"))
            })
            .await
            .cloned()
    }
}

/// A line sink that writes into the resource's log.
fn log_sink(ctx: &Ctx, resource: &str, span: &str) -> tokio::sync::mpsc::Sender<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    let (logs, resource, span) = (ctx.logs.clone(), resource.to_string(), span.to_string());
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            logs.line(&resource, &span, Level::Info, line.trim_end());
        }
    });
    tx
}

fn write_status<T: Resource>(ctx: &Ctx, name: &str, f: impl Fn(&mut T)) {
    crate::storewrite::logged(ctx.store.update_status_with::<T>(name, f), || {
        format!("writing the status of {} {name}", T::KIND)
    });
}

/// The predicate of files sent in a build context: a DockerImage's contextIgnores.
fn context_filter(di: &DockerImageSpec) -> Result<Option<stilt_docker::types::PathFilter>, String> {
    if di.context_ignores.is_empty() {
        return Ok(None);
    }
    let root = PathBuf::from(&di.context);
    let defs = di
        .context_ignores
        .iter()
        .map(|ig| (PathBuf::from(&ig.base_path), ig.patterns.clone()));
    let ignores = stilt_watch::Ignores::from_defs(defs)
        .map_err(|e| format!("invalid ignore pattern: {e}"))?;
    Ok(Some(Arc::new(move |rel: &Path| {
        !ignores.is_ignored(&root.join(rel), false)
    })))
}

/// (selector, built ref) of every other image built so far: what a Dockerfile may build FROM.
fn built_bases(ctx: &Ctx, di: &DockerImage) -> Vec<crate::imagedeps::BuiltBase> {
    ctx.store
        .list_typed::<ImageMap>()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !di.spec.image_maps.contains(&m.metadata.name))
        .filter_map(|m| {
            let s = m.status?;
            // The local name: a pushed image's cluster ref may not resolve on this engine.
            let built = if s.image_from_local.is_empty() {
                s.image
            } else {
                s.image_from_local
            };
            (!built.is_empty()).then_some(crate::imagedeps::BuiltBase {
                selector: m.spec.selector,
                match_exact: m.spec.match_exact,
                built,
            })
        })
        .collect()
}

/// A finished image build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The ref to run the image by.
    pub image: String,
    /// The ref on the building engine (empty when the image only exists in a registry).
    pub local: String,
    /// The ref the cluster pulls, once delivered there under another name.
    pub from_cluster: String,
    pub started: MicroTime,
}

/// Writes a build's result into its ImageMaps' status.
pub fn publish(ctx: &Ctx, image_maps: &[String], built: &Built) {
    for im in image_maps {
        write_status::<ImageMap>(ctx, im, |o| {
            o.status = Some(ImageMapStatus {
                image: built.image.clone(),
                image_from_local: built.local.clone(),
                image_from_cluster: built.from_cluster.clone(),
                build_start_time: Some(built.started),
            });
        });
    }
}

/// Builds one DockerImage (its ImageMaps say a build started; [`publish`] gives them the result).
pub async fn build_image(
    ctx: &Ctx,
    di: &DockerImage,
    resource: &str,
    span: &str,
) -> Result<Built, String> {
    let docker = ctx.docker.docker().await?;
    let started = MicroTime::now();
    let name = di.metadata.name.clone();
    write_status::<DockerImage>(ctx, &name, |o| {
        o.status = Some(DockerImageStatus {
            building: Some(DockerImageStateBuilding {
                reason: String::new(),
                started_at: started,
            }),
            ..Default::default()
        });
    });
    for im in &di.spec.image_maps {
        write_status::<ImageMap>(ctx, im, |o| {
            o.status
                .get_or_insert_with(Default::default)
                .build_start_time = Some(started)
        });
    }
    let mut context = BuildContext::new(PathBuf::from(&di.spec.context));
    context.filter = context_filter(&di.spec)?;
    let mut req = BuildRequest::new(di.spec.r#ref.clone(), context);
    let bases = built_bases(ctx, di);
    if !di.spec.dockerfile_contents.is_empty() {
        req = req.dockerfile_contents(crate::imagedeps::inject_dockerfile(
            &di.spec.dockerfile_contents,
            &bases,
            &di.spec.args,
        ));
    }
    for kv in &crate::imagedeps::inject_args(&di.spec.args, &bases) {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        req = req.build_arg(k, v);
    }
    req.target = (!di.spec.target.is_empty()).then(|| di.spec.target.clone());
    req.extra_tags = di.spec.extra_tags.clone();
    req.network = (!di.spec.network.is_empty()).then(|| di.spec.network.clone());
    req.pull = di.spec.pull;
    req.platform = (!di.spec.platform.is_empty()).then(|| di.spec.platform.clone());
    req.extra_hosts = di.spec.extra_hosts.clone();
    req.cache_from = di.spec.cache_from.clone();
    req.secrets = di.spec.secrets.clone();
    req.ssh = di.spec.ssh_agent_configs.clone();
    let stage_log = req.stages.clone();
    let digest = input_digest(&req).await;
    let reused = match &digest {
        Some(d) => reusable_image(ctx, docker.as_ref(), d).await,
        None => None,
    };
    let result = match reused {
        Some(image) => {
            ctx.logs.line(
                resource,
                span,
                Level::Info,
                &format!("Inputs unchanged since image {image} was built: not rebuilding"),
            );
            let mut tagged = Ok(image.clone());
            for extra in &di.spec.extra_tags {
                if let Err(e) = docker.tag(&image, extra).await {
                    tagged = Err(e);
                    break;
                }
            }
            tagged
        }
        None => {
            ctx.logs.line(
                resource,
                span,
                Level::Info,
                &format!("Building Dockerfile: [{}]", di.spec.r#ref),
            );
            let built = docker
                .build(req, Some(log_sink(ctx, resource, span)))
                .await
                .map(|b| b.tagged_ref);
            if let (Ok(image), Some(d)) = (&built, &digest) {
                ctx.images.record(d, image);
            }
            built
        }
    };
    let finished = MicroTime::now();
    let error = result
        .as_ref()
        .err()
        .map(|e| format!("Image build failed: {e}"));
    let stages = stage_statuses(&stage_log.stages(), finished, error.as_deref());
    match result {
        Ok(built) => {
            ctx.logs
                .line(resource, span, Level::Info, &format!("Built image {built}"));
            write_status::<DockerImage>(ctx, &name, |o| {
                o.status = Some(DockerImageStatus {
                    r#ref: built.clone(),
                    completed: Some(DockerImageStateCompleted {
                        error: String::new(),
                        started_at: started,
                        finished_at: finished,
                    }),
                    stage_statuses: stages.clone(),
                    ..Default::default()
                });
            });
            Ok(Built {
                local: built.clone(),
                image: built,
                from_cluster: String::new(),
                started,
            })
        }
        Err(_) => {
            let msg = error.unwrap_or_default();
            ctx.logs.line(resource, span, Level::Error, &msg);
            write_status::<DockerImage>(ctx, &name, |o| {
                o.status = Some(DockerImageStatus {
                    completed: Some(DockerImageStateCompleted {
                        error: msg.clone(),
                        started_at: started,
                        finished_at: finished,
                    }),
                    stage_statuses: stages.clone(),
                    ..Default::default()
                });
            });
            Err(msg)
        }
    }
}

/// A build's stages as DockerImage `stageStatuses`; as Tilt, a stage still running when the
/// build ended finishes then, with the build's error if it failed.
pub fn stage_statuses(
    stages: &[stilt_docker::BuildStage],
    ended: MicroTime,
    error: Option<&str>,
) -> Vec<DockerImageStageStatus> {
    stages
        .iter()
        .map(|s| {
            let unfinished = s.started_at.is_some() && s.finished_at.is_none();
            DockerImageStageStatus {
                name: s.name.clone(),
                cached: s.cached,
                started_at: s.started_at.map(MicroTime::from),
                finished_at: s
                    .finished_at
                    .map(MicroTime::from)
                    .or(unfinished.then_some(ended)),
                error: if s.error.is_empty() && unfinished {
                    error.unwrap_or_default().to_string()
                } else {
                    s.error.clone()
                },
            }
        })
        .collect()
}

/// Appends a stage after the build (Tilt's push / `kind load` stage) to the DockerImages that
/// build `image_map`.
pub fn record_stage(ctx: &Ctx, image_map: &str, stage: DockerImageStageStatus) {
    let images = ctx.store.list_typed::<DockerImage>().unwrap_or_default();
    for di in images
        .iter()
        .filter(|d| d.spec.image_maps.iter().any(|m| m == image_map))
    {
        write_status::<DockerImage>(ctx, &di.metadata.name, |o| {
            o.status
                .get_or_insert_with(Default::default)
                .stage_statuses
                .push(stage.clone())
        });
    }
}

/// The digest of a build's inputs (the context walk runs off the async threads); `None` when the
/// build must run anyway.
async fn input_digest(req: &BuildRequest) -> Option<String> {
    let req = req.clone();
    match tokio::task::spawn_blocking(move || req.input_digest()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            tracing::debug!("no input digest ({e}): building");
            None
        }
        Err(_) => None,
    }
}

/// The image an earlier build with the same inputs produced, if the engine still has it.
async fn reusable_image(
    ctx: &Ctx,
    docker: &dyn stilt_docker::DockerClient,
    digest: &str,
) -> Option<String> {
    let image = ctx.images.find(digest)?;
    docker.image_exists(&image).await.ok()?.then_some(image)
}

/// Builds, in order, the images a resource needs (its ImageMaps' DockerImages).
pub async fn build_images(
    ctx: &Ctx,
    resource: &str,
    image_maps: &[String],
    span: &str,
) -> Result<(), String> {
    let images = ctx.store.list_typed::<DockerImage>().unwrap_or_default();
    let cmd_images = ctx.store.list_typed::<CmdImage>().unwrap_or_default();
    for im in image_maps {
        for di in images.iter().filter(|d| d.spec.image_maps.contains(im)) {
            let built = build_image(ctx, di, resource, span).await?;
            publish(ctx, &di.spec.image_maps, &built);
        }
        for ci in cmd_images.iter().filter(|c| c.spec.image_maps.contains(im)) {
            let built = build_cmd_image(ctx, ci, resource, span).await?;
            publish(ctx, &ci.spec.image_maps, &built);
        }
    }
    Ok(())
}

/// `custom_build`: runs the user's command with `$EXPECTED_REF`, finds the image it made (or the
/// ref it wrote to `outputs_image_ref_to`), and tags it `tilt-<hash>` like a Docker build.
pub async fn build_cmd_image(
    ctx: &Ctx,
    ci: &CmdImage,
    resource: &str,
    span: &str,
) -> Result<Built, String> {
    let started = MicroTime::now();
    let name = ci.metadata.name.clone();
    let expected = if ci.spec.output_tag.is_empty() {
        format!("{}:tilt-build-{}", ci.spec.r#ref, started.0.timestamp())
    } else {
        format!("{}:{}", ci.spec.r#ref, ci.spec.output_tag)
    };
    let (image, tag) = expected
        .rsplit_once(':')
        .unwrap_or((expected.as_str(), "latest"));
    let mut env = ci.spec.env.clone();
    env.extend([
        format!("EXPECTED_REF={expected}"),
        format!("EXPECTED_IMAGE={image}"),
        format!("EXPECTED_TAG={tag}"),
    ]);
    if let Some(host) = expected_registry(ctx, ci).await {
        // REGISTRY_HOST is Tilt's older name, kept for scripts that still read it.
        env.push(format!("REGISTRY_HOST={host}"));
        env.push(format!("EXPECTED_REGISTRY={host}"));
    }
    env.extend(image_map_env(ctx, &image_deps_of(&ci.metadata), false));
    write_status::<CmdImage>(ctx, &name, |o| {
        o.status = Some(CmdImageStatus {
            building: Some(CmdImageStateBuilding {
                reason: String::new(),
                started_at: started,
            }),
            ..Default::default()
        });
    });
    for im in &ci.spec.image_maps {
        write_status::<ImageMap>(ctx, im, |o| {
            o.status
                .get_or_insert_with(Default::default)
                .build_start_time = Some(started)
        });
    }
    ctx.logs.line(
        resource,
        span,
        Level::Info,
        &format!("Custom build: {}", ci.spec.args.join(" ")),
    );
    let result = async {
        let spec = crate::proc::ProcSpec {
            args: ci.spec.args.clone(),
            dir: (!ci.spec.dir.is_empty()).then(|| PathBuf::from(&ci.spec.dir)),
            env,
        };
        let out = crate::proc::Output {
            logs: ctx.logs.clone(),
            resource: resource.to_string(),
            span: span.to_string(),
        };
        let mut running = crate::proc::spawn(&spec, &ctx.process_env, out, &ctx.leftovers)
            .map_err(|e| e.to_string())?;
        let exit = running.wait().await;
        if exit.code != 0 {
            return Err(format!(
                "custom_build command failed with exit code {}",
                exit.code
            ));
        }
        let built = if ci.spec.outputs_image_ref_to.is_empty() {
            expected.clone()
        } else {
            std::fs::read_to_string(&ci.spec.outputs_image_ref_to)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    format!(
                        "reading outputs_image_ref_to {}: {e}",
                        ci.spec.outputs_image_ref_to
                    )
                })?
        };
        if ci.spec.output_mode == "remote" {
            // skips_local_docker: the image only exists in a registry.
            return Ok((built, String::new()));
        }
        let docker = ctx.docker.docker().await?;
        let info = docker
            .inspect_image(&built)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "custom_build did not produce the image {built} (build it with $EXPECTED_REF)"
                )
            })?;
        let tagged =
            stilt_docker::tilt_tagged_ref(&ci.spec.r#ref, &info.id).map_err(|e| e.to_string())?;
        docker
            .tag(&built, &tagged)
            .await
            .map_err(|e| e.to_string())?;
        Ok((tagged.clone(), tagged))
    }
    .await;
    let finished = MicroTime::now();
    match result {
        Ok((image, local)) => {
            ctx.logs
                .line(resource, span, Level::Info, &format!("Built image {image}"));
            write_status::<CmdImage>(ctx, &name, |o| {
                o.status = Some(CmdImageStatus {
                    r#ref: image.clone(),
                    completed: Some(CmdImageStateCompleted {
                        error: String::new(),
                        started_at: started,
                        finished_at: finished,
                    }),
                    ..Default::default()
                });
            });
            Ok(Built {
                image,
                local,
                from_cluster: String::new(),
                started,
            })
        }
        Err(e) => {
            let msg = format!("Custom build failed: {e}");
            ctx.logs.line(resource, span, Level::Error, &msg);
            write_status::<CmdImage>(ctx, &name, |o| {
                o.status = Some(CmdImageStatus {
                    completed: Some(CmdImageStateCompleted {
                        error: msg.clone(),
                        started_at: started,
                        finished_at: finished,
                    }),
                    ..Default::default()
                });
            });
            Err(msg)
        }
    }
}

/// The image maps a build depends on (`custom_build(image_deps=…)`, FROM images), in order:
/// the loader lists them in the `stilt.dev/image-deps` annotation because Stilt's
/// `spec.imageMaps` names the build's own map.
pub fn image_deps_of(meta: &stilt_api::ObjectMeta) -> Vec<String> {
    meta.annotations
        .get(stilt_api::ANNOTATION_IMAGE_DEPS)
        .map(|s| {
            s.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `TILT_IMAGE_MAP_i=<name>` and `TILT_IMAGE_i=<ref>` for each image map, as Tilt sets them for
/// custom builds (the local ref) and custom deploys (`from_cluster`: the ref the cluster pulls).
pub fn image_map_env(ctx: &Ctx, names: &[String], from_cluster: bool) -> Vec<String> {
    let mut env = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let status = ctx
            .store
            .get_typed::<ImageMap>(name)
            .ok()
            .and_then(|m| m.status)
            .unwrap_or_default();
        let image = if from_cluster {
            if status.image_from_cluster.is_empty() {
                status.image
            } else {
                status.image_from_cluster
            }
        } else if status.image_from_local.is_empty() {
            status.image
        } else {
            status.image_from_local
        };
        env.push(format!("TILT_IMAGE_MAP_{i}={name}"));
        env.push(format!("TILT_IMAGE_{i}={image}"));
    }
    env
}

/// The registry a custom build pushes to, when it builds for Kubernetes: the one the cluster
/// publishes, else `default_registry`. Compose builds have none (as in Tilt).
async fn expected_registry(ctx: &Ctx, ci: &CmdImage) -> Option<String> {
    // Compose builds push nowhere (Tilt's docker cluster has no registry).
    if ci.spec.cluster_needs != "push" || ci.spec.cluster == "docker" {
        return None;
    }
    if let Ok(cluster) = ctx.k8s.cluster().await
        && let Some(r) = cluster.info().registry
        && !r.host.is_empty()
    {
        return Some(r.host);
    }
    crate::tiltfile::default_registry(ctx).filter(|h| !h.is_empty())
}

pub fn project_spec(p: &DockerComposeProject) -> ComposeProjectSpec {
    ComposeProjectSpec {
        config_paths: p.config_paths.iter().map(PathBuf::from).collect(),
        project_name: p.name.clone(),
        project_dir: (!p.project_path.is_empty()).then(|| PathBuf::from(&p.project_path)),
        env_file: (!p.env_file.is_empty())
            .then(|| PathBuf::from(&p.env_file))
            .filter(|f| f.exists()),
        profiles: p.profiles.clone(),
    }
}

/// `compose up` of one service with the images Stilt built, then its container's state.
pub async fn compose_up(
    ctx: &Ctx,
    dcs: &DockerComposeService,
    resource: &str,
    span: &str,
) -> Result<(), String> {
    let compose = ctx.docker.compose().await?;
    let started = MicroTime::now();
    let mut images = BTreeMap::new();
    // An ImageMap no DockerImage/CmdImage fills is the service's own `build:`: compose builds
    // it (Tilt's DockerComposeBuild).
    let compose_builds: Vec<String> = {
        let docker_images = ctx.store.list_typed::<DockerImage>().unwrap_or_default();
        let cmd_images = ctx.store.list_typed::<CmdImage>().unwrap_or_default();
        dcs.spec
            .image_maps
            .iter()
            .filter(|im| {
                !docker_images.iter().any(|d| d.spec.image_maps.contains(im))
                    && !cmd_images.iter().any(|c| c.spec.image_maps.contains(im))
            })
            .cloned()
            .collect()
    };
    for im in &dcs.spec.image_maps {
        if compose_builds.contains(im) {
            continue;
        }
        if let Some(image) = ctx
            .store
            .get_typed::<ImageMap>(im)
            .ok()
            .and_then(|m| m.status)
            .map(|s| s.image)
            .filter(|i| !i.is_empty())
        {
            images.insert(dcs.spec.service.clone(), image);
        }
    }
    let project = project_spec(&dcs.spec.project);
    let opts = UpOptions {
        images,
        build: !compose_builds.is_empty(),
        wait: dcs.spec.project.wait,
    };
    for im in &compose_builds {
        write_status::<ImageMap>(ctx, im, |o| {
            o.status
                .get_or_insert_with(Default::default)
                .build_start_time = Some(started)
        });
    }
    write_status::<DockerComposeService>(ctx, &dcs.metadata.name, |o| {
        o.status
            .get_or_insert_with(Default::default)
            .last_apply_start_time = Some(started)
    });
    let result = compose
        .up(
            &project,
            &dcs.spec.service,
            &opts,
            Some(log_sink(ctx, resource, span)),
        )
        .await;
    let error = result
        .err()
        .map(|e| format!("docker compose up {}: {e}", dcs.spec.service))
        .unwrap_or_default();
    write_status::<DockerComposeService>(ctx, &dcs.metadata.name, |o| {
        let s = o.status.get_or_insert_with(Default::default);
        s.apply_error = error.clone();
        s.last_apply_finish_time = Some(MicroTime::now());
    });
    if !error.is_empty() {
        ctx.logs.line(resource, span, Level::Error, &error);
        return Err(error);
    }
    for im in &compose_builds {
        let Ok(map) = ctx.store.get_typed::<ImageMap>(im) else {
            continue;
        };
        // Compose names the image it built after the selector (`image:` or `<project>-<svc>`).
        write_status::<ImageMap>(ctx, im, |o| {
            let s = o.status.get_or_insert_with(Default::default);
            s.image = map.spec.selector.clone();
            s.image_from_local = map.spec.selector.clone();
        });
    }
    if let Some(id) = refresh_container(ctx, dcs).await {
        ctx.leftovers
            .compose_up(&dcs.spec.project.name, &dcs.spec.service, &id);
    }
    Ok(())
}

/// Finds the service's container and writes its state into the DockerComposeService status.
/// Returns the container ID.
pub async fn refresh_container(ctx: &Ctx, dcs: &DockerComposeService) -> Option<String> {
    look_at_container(ctx, dcs)
        .await
        .ok()
        .flatten()
        .map(|c| c.id)
}

/// The service's container as one look found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLook {
    pub id: String,
    pub running: bool,
    /// When it last started (Unix seconds).
    pub started_at: Option<i64>,
}

/// Like [`refresh_container`], telling "no container" (`Ok(None)`) from "the engine did not
/// answer" (`Err`).
pub async fn look_at_container(
    ctx: &Ctx,
    dcs: &DockerComposeService,
) -> Result<Option<ContainerLook>, String> {
    let compose = ctx.docker.compose().await?;
    let docker = ctx.docker.docker().await?;
    let containers = compose
        .ps(&project_spec(&dcs.spec.project))
        .await
        .map_err(|e| e.to_string())?;
    let Some(c) = containers
        .into_iter()
        .find(|c| c.service == dcs.spec.service)
    else {
        clear_container(ctx, &dcs.metadata.name);
        return Ok(None);
    };
    let info = docker
        .inspect_container(&c.id)
        .await
        .map_err(|e| e.to_string())?;
    let state = DockerContainerState {
        status: info.state.status.clone(),
        running: info.state.running,
        error: info.state.error.clone().unwrap_or_default(),
        exit_code: info.state.exit_code.unwrap_or(0) as i32,
        started_at: info
            .state
            .started_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| MicroTime(t.with_timezone(&chrono::Utc))),
        finished_at: None,
        health_status: info.health.clone().unwrap_or_default(),
    };
    let ports: Vec<DockerPortBinding> = info
        .ports
        .iter()
        .filter_map(|p| {
            p.host_port.map(|hp| DockerPortBinding {
                container_port: p.container_port as i32,
                host_port: hp as i32,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    write_status::<DockerComposeService>(ctx, &dcs.metadata.name, |o| {
        let s = o.status.get_or_insert_with(Default::default);
        s.container_id = info.id.clone();
        s.container_name = info.name.clone();
        s.container_state = Some(state.clone());
        s.port_bindings = ports.clone();
    });
    Ok(Some(ContainerLook {
        id: info.id,
        running: state.running,
        started_at: state.started_at.map(|t| t.0.timestamp()),
    }))
}

/// Forgets the service's container in its status (it was removed, or never created).
pub fn clear_container(ctx: &Ctx, dcs_name: &str) {
    write_status::<DockerComposeService>(ctx, dcs_name, |o| {
        if let Some(s) = o.status.as_mut() {
            s.container_id.clear();
            s.container_name.clear();
            s.container_state = None;
            s.port_bindings.clear();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn build_stages_become_stage_statuses() {
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        let stage = |name: &str, cached, started, finished, error: &str| stilt_docker::BuildStage {
            name: name.into(),
            cached,
            started_at: started,
            finished_at: finished,
            error: error.into(),
        };
        let ended = MicroTime::from(UNIX_EPOCH + Duration::from_secs(100));
        let stages = [
            stage("[1/3] FROM base", true, at(1), at(1), ""),
            stage("[2/3] COPY www /www", false, at(2), at(3), ""),
            stage("[3/3] RUN make", false, at(4), None, ""),
            stage("[3/3] RUN test", false, at(5), at(6), "exit code: 2"),
            stage("exporting to image", false, None, None, ""),
        ];
        // (build error) → (finished, error) of each stage
        type Row<'a> = (Option<&'a str>, Vec<(Option<MicroTime>, &'a str)>);
        let done = |s| Some(MicroTime::from(UNIX_EPOCH + Duration::from_secs(s)));
        let rows: Vec<Row> = vec![
            (
                None,
                vec![
                    (done(1), ""),
                    (done(3), ""),
                    (Some(ended), ""),
                    (done(6), "exit code: 2"),
                    (None, ""),
                ],
            ),
            (
                Some("Image build failed: boom"),
                vec![
                    (done(1), ""),
                    (done(3), ""),
                    (Some(ended), "Image build failed: boom"),
                    (done(6), "exit code: 2"),
                    (None, ""),
                ],
            ),
        ];
        for (error, want) in rows {
            let got = stage_statuses(&stages, ended, error);
            let got: Vec<(Option<MicroTime>, &str)> = got
                .iter()
                .map(|s| (s.finished_at, s.error.as_str()))
                .collect();
            assert_eq!(got, want, "{error:?}");
        }
        let first = &stage_statuses(&stages, ended, None)[0];
        assert!(first.cached);
        assert_eq!(first.name, "[1/3] FROM base");
    }
}
