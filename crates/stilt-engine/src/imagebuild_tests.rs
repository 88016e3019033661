//! The image reconcilers against the fake engine and cluster, through the store.

use crate::Ctx;
use crate::k8s::testing::{ctx_with, eventually};
use std::sync::Arc;
use stilt_api::*;
use stilt_docker::FakeDocker;
use stilt_k8s::{ClusterInfo, FakeCluster};
use stilt_store::TypedStore;

struct World {
    ctx: Ctx,
    docker: FakeDocker,
    dir: tempfile::TempDir,
}

impl World {
    /// An engine and a cluster publishing `registry` (none when `None`).
    fn new(registry: Option<&str>) -> World {
        let cluster = FakeCluster::new();
        let info = stilt_k8s::Cluster::info(&cluster);
        let cluster = cluster.with_info(ClusterInfo {
            registry: registry.map(|host| RegistryHosting {
                host: host.into(),
                ..Default::default()
            }),
            ..info
        });
        let docker = FakeDocker::new();
        let mut ctx = ctx_with(&cluster);
        ctx.docker = Arc::new(crate::docker::DockerAdapters::with(
            Arc::new(docker.clone()),
            Arc::new(stilt_docker::compose::FakeCompose::new(docker.clone())),
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "v1").unwrap();
        super::start(ctx.clone());
        World { ctx, docker, dir }
    }

    fn docker_image(&self, name: &str, cluster: &str) -> DockerImage {
        DockerImage::new(
            name,
            DockerImageSpec {
                r#ref: "web".into(),
                context: self.dir.path().display().to_string(),
                dockerfile_contents: "FROM scratch\nCOPY index.html /\n".into(),
                image_maps: vec![name.into()],
                cluster: cluster.into(),
                ..Default::default()
            },
        )
    }

    fn create(&self, di: &DockerImage) {
        let im = ImageMap::new(
            &di.metadata.name,
            ImageMapSpec {
                selector: di.spec.r#ref.clone(),
                ..Default::default()
            },
        );
        self.ctx.store.create_typed(&im).unwrap();
        self.ctx.store.create_typed(di).unwrap();
    }

    fn image_of(&self, image_map: &str) -> Option<String> {
        self.ctx
            .store
            .get_typed::<ImageMap>(image_map)
            .ok()
            .and_then(|m| m.status)
            .map(|s| s.image)
            .filter(|i| !i.is_empty())
    }

    fn builds(&self) -> usize {
        self.docker
            .calls()
            .iter()
            .filter(|c| c.starts_with("build "))
            .count()
    }
}

#[tokio::test]
async fn an_image_created_through_the_api_is_built_and_its_image_map_filled() {
    let w = World::new(None);
    w.create(&w.docker_image("web", ""));
    let image = eventually("the image map filled", || w.image_of("web")).await;
    assert!(image.starts_with("web:tilt-"), "{image}");
    let di = w.ctx.store.get_typed::<DockerImage>("web").unwrap();
    let status = di.status.unwrap();
    assert_eq!(status.r#ref, image);
    assert_eq!(status.completed.unwrap().error, "");
    assert!(
        w.docker.pushed().is_empty(),
        "no cluster named: nothing pushed"
    );
}

#[tokio::test]
async fn a_changed_spec_rebuilds_and_an_unchanged_one_does_not() {
    let w = World::new(None);
    w.create(&w.docker_image("web", ""));
    let first = eventually("the first build", || w.image_of("web")).await;
    // A label change is not a spec change.
    let mut di = w.ctx.store.get_typed::<DockerImage>("web").unwrap();
    di.metadata.labels.insert("touched".into(), "yes".into());
    let mut di = w.ctx.store.update_typed(&di).unwrap();
    std::fs::write(w.dir.path().join("index.html"), "v2").unwrap();
    di.spec.dockerfile_contents = "FROM scratch\nCOPY index.html /www/\n".into();
    w.ctx.store.update_typed(&di).unwrap();
    let second = eventually("the rebuild", || w.image_of("web").filter(|i| *i != first)).await;
    assert!(second.starts_with("web:tilt-"), "{second}");
    assert_eq!(w.builds(), 2, "{:?}", w.docker.calls());
}

#[tokio::test]
async fn a_resources_image_waits_for_the_build_queue() {
    let w = World::new(None);
    let mut di = w.docker_image("web", "");
    di.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), "web".into());
    w.create(&di);
    // Another image, created after, is built: the first was looked at and left alone.
    w.create(&w.docker_image("other", ""));
    eventually("the other image built", || w.image_of("other")).await;
    assert_eq!(w.image_of("web"), None);
    assert_eq!(w.builds(), 1, "{:?}", w.docker.calls());
}

#[tokio::test]
async fn a_failed_build_says_why_and_fills_no_image_map() {
    let w = World::new(None);
    w.docker.set_build_error(Some("COPY failed: no such file"));
    w.create(&w.docker_image("web", ""));
    let error = eventually("the build error", || {
        w.ctx
            .store
            .get_typed::<DockerImage>("web")
            .ok()
            .and_then(|d| d.status?.completed)
            .map(|c| c.error)
    })
    .await;
    assert!(error.contains("COPY failed: no such file"), "{error}");
    assert_eq!(w.image_of("web"), None);
}

#[tokio::test]
async fn an_image_for_a_cluster_with_a_registry_is_pushed_before_its_map_is_filled() {
    let w = World::new(Some("localhost:5000"));
    w.create(&w.docker_image("web", "default"));
    let image = eventually("the image map filled", || w.image_of("web")).await;
    assert!(image.starts_with("localhost:5000/web:tilt-"), "{image}");
    assert_eq!(w.docker.pushed(), vec![image.clone()]);
    let map = w.ctx.store.get_typed::<ImageMap>("web").unwrap();
    let status = map.status.unwrap();
    assert_eq!(status.image_from_cluster, image);
    assert!(
        status.image_from_local.starts_with("web:tilt-"),
        "{status:?}"
    );
    let stages = w
        .ctx
        .store
        .get_typed::<DockerImage>("web")
        .unwrap()
        .status
        .unwrap()
        .stage_statuses;
    assert_eq!(stages.last().map(|s| s.name.as_str()), Some("docker push"));
}

#[tokio::test]
async fn a_custom_build_created_through_the_api_runs_its_command() {
    let w = World::new(None);
    let ci = CmdImage::new(
        "custom",
        CmdImageSpec {
            r#ref: "custom".into(),
            // The fake engine has the image the command "builds" under the expected ref.
            args: vec!["sh".into(), "-c".into(), "echo built $EXPECTED_REF".into()],
            dir: w.dir.path().display().to_string(),
            output_tag: "v1".into(),
            output_mode: "remote".into(),
            image_maps: vec!["custom".into()],
            ..Default::default()
        },
    );
    let im = ImageMap::new(
        "custom",
        ImageMapSpec {
            selector: "custom".into(),
            ..Default::default()
        },
    );
    w.ctx.store.create_typed(&im).unwrap();
    w.ctx.store.create_typed(&ci).unwrap();
    let image = eventually("the image map filled", || w.image_of("custom")).await;
    assert_eq!(image, "custom:v1");
    let log = crate::k8s::testing::log_of(&w.ctx, "");
    assert!(log.contains("built custom:v1"), "{log}");
}
