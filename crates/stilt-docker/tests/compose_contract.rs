//! `ComposeClient` contract: the same body against `FakeCompose` and (with
//! `STILT_TEST_DOCKER=1`) the installed compose CLI + real engine.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use stilt_docker::compose::*;
use stilt_docker::*;

struct ComposeHarness {
    h: Harness,
    compose: Arc<dyn ComposeClient>,
}

fn write_project(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        &dir.join("web/Dockerfile"),
        &format!(
            "FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n"
        ),
    );
    write(&dir.join("web/index.html"), "hello from compose\n");
    let file = dir.join("docker-compose.yml");
    write(
        &file,
        r#"services:
  web:
    build:
      context: ./web
      dockerfile: Dockerfile
    image: stilt-compose-contract-web
    ports:
      - "127.0.0.1::8000"
    labels:
      dev.stilt.test: compose
    healthcheck:
      test: ["CMD", "test", "-e", "/www/index.html"]
      interval: 1s
"#,
    );
    file
}

async fn compose_up_ps_down(c: &ComposeHarness) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_project(dir.path());
    let spec = ComposeProjectSpec::new(&file).project_name(c.h.run.replace('.', ""));
    let project_name = spec.effective_name();

    // config → normalized project.
    let project = c.compose.config(&spec).await.expect("config");
    assert_eq!(project.name, project_name);
    let web = project.services.get("web").expect("web service");
    let build = web.build.clone().expect("build section");
    assert_eq!(
        build.context,
        std::fs::canonicalize(dir.path().join("web")).unwrap()
    );
    assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile"));
    assert_eq!(web.ports.len(), 1);
    assert_eq!(web.ports[0].target, 8000);
    assert_eq!(web.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        web.labels.get("dev.stilt.test").map(String::as_str),
        Some("compose")
    );
    assert_eq!(
        web.healthcheck.as_ref().unwrap().test,
        vec!["CMD", "test", "-e", "/www/index.html"]
    );

    // Stilt builds the image, compose runs it via the override file.
    let built =
        c.h.client
            .build(
                BuildRequest::new(
                    web.image.clone().unwrap(),
                    BuildContext::new(&build.context),
                ),
                None,
            )
            .await
            .expect("build");
    let mut images = BTreeMap::new();
    images.insert("web".to_string(), built.tagged_ref.clone());
    let up = UpOptions {
        images,
        ..Default::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let res = c.compose.up(&spec, "web", &up, Some(tx)).await;
    drain.await.unwrap();
    if let Err(e) = res {
        let _ = c.compose.down(&spec, false, None).await;
        panic!("up: {e}");
    }

    // ps and label discovery find the same container, running the injected image.
    let ps = c.compose.ps(&spec).await.unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0].service, "web");
    assert_eq!(ps[0].project, project_name);
    assert_eq!(ps[0].state, "running");
    let found =
        c.h.client
            .list_containers(
                &ContainerFilter::default()
                    .label(LABEL_PROJECT, &project_name)
                    .label(LABEL_SERVICE, "web"),
            )
            .await
            .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ps[0].id);
    let info = c.h.client.inspect_container(&ps[0].id).await.unwrap();
    assert_eq!(info.image, built.tagged_ref);
    if c.h.real {
        let port = info
            .ports
            .iter()
            .find(|p| p.container_port == 8000)
            .and_then(|p| p.host_port)
            .expect("published port");
        let body = eventually(15, || async {
            match http_get(port, "/index.html").await {
                Some((200, b)) => Some(b),
                _ => None,
            }
        })
        .await;
        assert_eq!(body.as_deref(), Some("hello from compose\n"));
    }

    // rm one service, then down the project.
    c.compose
        .rm(&spec, &["web".to_string()], None)
        .await
        .expect("rm");
    assert!(c.compose.ps(&spec).await.unwrap().is_empty());
    c.compose
        .up(&spec, "web", &up, None)
        .await
        .expect("up again");
    assert_eq!(c.compose.ps(&spec).await.unwrap().len(), 1);
    c.compose.down(&spec, false, None).await.expect("down");
    assert!(c.compose.ps(&spec).await.unwrap().is_empty());
    c.h.client
        .remove_image(&built.tagged_ref, true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_contract_fake() {
    let h = fake_harness();
    let fake = h.fake.clone().unwrap();
    let compose = Arc::new(FakeCompose::new(fake));
    compose_up_ps_down(&ComposeHarness {
        h,
        compose: compose.clone(),
    })
    .await;
    assert!(compose.calls().iter().any(|c| c.starts_with("down ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real engine: STILT_TEST_DOCKER=1 and --ignored (scripts/test e2e)"]
async fn compose_contract_real() {
    let Some(h) = real_harness().await else {
        return;
    };
    let compose = match ComposeCli::detect(h.client.clone()).await {
        Ok(c) => c,
        Err(e) => {
            panic!("STILT_TEST_DOCKER=1 but no compose CLI: {e} (run scripts/docker-engine up)")
        }
    };
    eprintln!("compose flavor: {:?}", compose.flavor());
    compose_up_ps_down(&ComposeHarness {
        h,
        compose: Arc::new(compose),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real engine: STILT_TEST_DOCKER=1 and --ignored (scripts/test e2e)"]
async fn compose_errors_carry_cli_output() {
    let Some(h) = real_harness().await else {
        return;
    };
    let compose = ComposeCli::detect(h.client.clone())
        .await
        .expect("compose CLI");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-compose.yml");
    write(&file, "services:\n  web:\n    image: [not, a, string]\n");
    let err = compose
        .config(&ComposeProjectSpec::new(&file).project_name("stiltbad"))
        .await
        .expect_err("invalid compose file");
    match err {
        DockerError::Compose { stderr, .. } => assert!(!stderr.is_empty()),
        other => panic!("{other:?}"),
    }
}
