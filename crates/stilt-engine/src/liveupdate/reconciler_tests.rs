//! The LiveUpdate reconciler driven through the store against the fake Docker engine: objects
//! before (a compose service's container, its image's build, file events) → the container's
//! files, the steps it ran, and the LiveUpdate's status after. And the per-container decision
//! as a table.

use super::*;
use crate::k8s::testing::{ctx_with_adapters, eventually, log_of};
use std::time::Duration;
use stilt_docker::{ContainerSpec, DockerClient, ExecOutput, FakeDocker};

fn t(secs: i64) -> MicroTime {
    MicroTime(chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap())
}

fn spec(base: &Path) -> LiveUpdateSpec {
    LiveUpdateSpec {
        base_path: base.display().to_string(),
        syncs: vec![LiveUpdateSync {
            local_path: "www".into(),
            container_path: "/srv/www".into(),
        }],
        stop_paths: vec!["www/package.json".into()],
        ..Default::default()
    }
}

#[test]
fn the_step_for_a_container() {
    let base = Path::new("/p");
    let s = spec(base);
    let rows: Vec<(&str, Vec<&str>, Option<MicroTime>, &str)> = vec![
        ("no change since the last sync", vec![], None, "up to date"),
        (
            "a change under a sync",
            vec!["/p/www/a.html"],
            Some(t(5)),
            "sync /srv/www/a.html",
        ),
        (
            "a change outside every sync",
            vec!["/p/www/a.html", "/p/Dockerfile"],
            Some(t(5)),
            "rebuild",
        ),
        (
            "a change under a stop path",
            vec!["/p/www/package.json"],
            Some(t(5)),
            "rebuild",
        ),
    ];
    for (case, files, newest, want) in rows {
        let files: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
        let got = match plan(&s, files, newest) {
            Step::UpToDate => "up to date".to_string(),
            Step::NeedsRebuild => "rebuild".to_string(),
            Step::Sync {
                pairs, newest: n, ..
            } => {
                assert_eq!(Some(n), newest, "{case}");
                format!(
                    "sync {}",
                    pairs
                        .iter()
                        .map(|(_, d)| d.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        };
        assert_eq!(got, want, "{case}");
    }
    // (synced into this container, image built) → changes after
    for (synced, built, want) in [
        (None, None, None),
        (None, Some(t(1)), Some(t(1))),
        (Some(t(3)), Some(t(1)), Some(t(3))),
        (Some(t(1)), Some(t(3)), Some(t(3))),
    ] {
        assert_eq!(since_for(synced, built), want, "{synced:?} {built:?}");
    }
}

/// The store and fake engine for one compose-selected LiveUpdate `web` over `dir`.
struct World {
    ctx: Ctx,
    docker: FakeDocker,
    container: String,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(execs: Vec<LiveUpdateExec>) -> World {
        World::with(execs, |_, _| {}).await
    }

    /// `prepare` may change the spec and write files before the reconciler starts.
    async fn with(
        execs: Vec<LiveUpdateExec>,
        prepare: impl FnOnce(&mut LiveUpdateSpec, &Path),
    ) -> World {
        let docker = FakeDocker::new();
        docker.add_image("web:tilt-1");
        let container = docker
            .create_container(&ContainerSpec {
                image: "web:tilt-1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        docker.start_container(&container).await.unwrap();
        let adapters = crate::docker::DockerAdapters::with(
            Arc::new(docker.clone()),
            Arc::new(stilt_docker::compose::FakeCompose::new(docker.clone())),
        );
        let mut ctx = ctx_with_adapters(Default::default());
        ctx.docker = Arc::new(adapters);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        let mut s = spec(dir.path());
        s.selector.docker_compose = Some(LiveUpdateDockerComposeSelector {
            service: "web".into(),
        });
        s.sources = vec![LiveUpdateSource {
            file_watch: "image:web".into(),
            image_map: "web".into(),
        }];
        s.execs = execs;
        prepare(&mut s, dir.path());
        let mut lu = LiveUpdate::new("web", s);
        lu.metadata
            .annotations
            .insert(ANNOTATION_RESOURCE.into(), "web".into());
        ctx.store.create_typed(&lu).unwrap();
        let im = ImageMap::new(
            "web",
            ImageMapSpec {
                selector: "web".into(),
                ..Default::default()
            },
        );
        ctx.store.create_typed(&im).unwrap();
        ctx.store
            .update_status_with::<ImageMap>("web", |m| {
                m.status = Some(ImageMapStatus {
                    image: "web:tilt-1".into(),
                    build_start_time: Some(t(0)),
                    ..Default::default()
                })
            })
            .unwrap();
        let fw = FileWatch::new(
            "image:web",
            FileWatchSpec {
                watched_paths: vec![dir.path().display().to_string()],
                ignores: vec![IgnoreDef {
                    base_path: dir.path().display().to_string(),
                    patterns: vec!["www/tmp".into()],
                }],
                ..Default::default()
            },
        );
        ctx.store.create_typed(&fw).unwrap();
        let dcs = DockerComposeService::new(
            "web",
            DockerComposeServiceSpec {
                service: "web".into(),
                project: DockerComposeProject {
                    name: "proj".into(),
                    yaml: "services: {web: {image: web}}".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        ctx.store.create_typed(&dcs).unwrap();
        ctx.store
            .update_status_with::<DockerComposeService>("web", |d| {
                d.status = Some(DockerComposeServiceStatus {
                    container_id: container.clone(),
                    container_name: "proj-web-1".into(),
                    container_state: Some(DockerContainerState {
                        running: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            })
            .unwrap();
        start(ctx.clone());
        World {
            ctx,
            docker,
            container,
            dir,
        }
    }

    /// A file event at `at` for `rel` (written with `content`; `None` deletes it).
    fn edit(&self, rel: &str, content: Option<&str>, at: MicroTime) {
        let path = self.dir.path().join(rel);
        match content {
            Some(c) => std::fs::write(&path, c).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
        self.ctx
            .store
            .update_status_with::<FileWatch>("image:web", |fw| {
                let s = fw.status.get_or_insert_with(Default::default);
                s.file_events.push(FileEvent {
                    time: at,
                    seen_files: vec![path.display().to_string()],
                });
                s.last_event_time = Some(at);
            })
            .unwrap();
    }

    fn file(&self, path: &str) -> Option<String> {
        self.docker
            .with_fs(&self.container, |fs| fs.read(path))
            .unwrap()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn status(&self) -> LiveUpdateStatus {
        self.ctx
            .store
            .get_typed::<LiveUpdate>("web")
            .unwrap()
            .status
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_synced_its_steps_run_and_the_status_says_so() {
    let w = World::new(vec![LiveUpdateExec {
        args: vec!["true".into()],
        ..Default::default()
    }])
    .await;
    w.edit("www/index.html", Some("v2"), t(10));
    eventually("the file in the container", || {
        w.file("/srv/www/index.html").filter(|c| c == "v2")
    })
    .await;
    let status = eventually("the container's status", || {
        let s = w.status();
        s.containers
            .first()
            .is_some_and(|c| c.last_file_time_synced == Some(t(10)))
            .then_some(s)
    })
    .await;
    let c = &status.containers[0];
    assert_eq!(c.container_id, format!("docker://{}", w.container));
    assert_eq!(c.last_exec_error, "");
    assert_eq!(c.last_update_timings.as_ref().unwrap().files, 1);
    assert!(status.failed.is_none());
    assert!(
        w.docker
            .calls()
            .iter()
            .any(|c| c.starts_with("exec") && c.ends_with(" true")),
        "{:?}",
        w.docker.calls()
    );

    // A deletion is a deletion in the container.
    w.edit("www/index.html", None, t(20));
    eventually("the file gone", || {
        w.file("/srv/www/index.html").is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_keeps_the_files_and_is_logged_as_tilt_does() {
    let w = World::new(vec![LiveUpdateExec {
        args: vec!["make-it-fail".into()],
        ..Default::default()
    }])
    .await;
    w.docker.set_exec_handler(|_, req| {
        (req.cmd == ["make-it-fail"]).then(|| ExecOutput {
            exit_code: 3,
            stdout: b"compiling\n".to_vec(),
            ..Default::default()
        })
    });
    w.edit("www/app.js", Some("broken"), t(10));
    let status = eventually("the step error", || {
        let s = w.status();
        s.containers
            .first()
            .is_some_and(|c| !c.last_exec_error.is_empty())
            .then_some(s)
    })
    .await;
    assert_eq!(
        status.containers[0].last_exec_error,
        "command [\"make-it-fail\"] failed with exit code 3"
    );
    assert_eq!(w.file("/srv/www/app.js").as_deref(), Some("broken"));
    let log = log_of(&w.ctx, "web");
    assert!(log.contains("compiling"), "{log}");
    assert!(log.contains("→ Failed to update container"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_needs_a_rebuild_is_not_synced() {
    let w = World::new(vec![]).await;
    w.edit("Dockerfile", Some("FROM x"), t(10));
    eventually("the container waiting for a rebuild", || {
        w.status()
            .containers
            .first()
            .and_then(|c| c.waiting.as_ref())
            .filter(|wt| wt.reason == "NeedsRebuild")
            .map(|_| ())
    })
    .await;
    assert!(w.file("/srv/Dockerfile").is_none());
    assert!(w.file("/Dockerfile").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_running_container_the_status_says_what_it_waits_for() {
    let w = World::new(vec![]).await;
    w.ctx
        .store
        .update_status_with::<DockerComposeService>("web", |d| {
            d.status = Some(DockerComposeServiceStatus::default())
        })
        .unwrap();
    let waiting = eventually("the waiting status", || {
        w.status()
            .containers
            .first()
            .and_then(|c| c.waiting.clone())
            .filter(|wt| wt.reason == "ContainerNotRunning")
    })
    .await;
    assert!(waiting.message.contains("service web"), "{waiting:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_gives_a_new_container_every_file_but_the_ignored() {
    let w = World::with(vec![], |spec, dir| {
        spec.initial_sync = Some(LiveUpdateInitialSync {});
        std::fs::create_dir_all(dir.join("www/css")).unwrap();
        std::fs::create_dir_all(dir.join("www/tmp")).unwrap();
        std::fs::write(dir.join("www/index.html"), "home").unwrap();
        std::fs::write(dir.join("www/css/site.css"), "body{}").unwrap();
        std::fs::write(dir.join("www/tmp/scratch"), "x").unwrap();
        std::fs::write(dir.join("www/package.json"), "{}").unwrap();
    })
    .await;
    eventually("the files in the container", || {
        (w.file("/srv/www/index.html").as_deref() == Some("home")
            && w.file("/srv/www/css/site.css").as_deref() == Some("body{}"))
        .then_some(())
    })
    .await;
    assert!(w.file("/srv/www/tmp/scratch").is_none(), "ignored");
    assert!(w.file("/srv/www/package.json").is_none(), "a stop path");
    // Later edits sync as ever, and the initial sync does not run again.
    w.docker.clear_calls();
    std::fs::write(w.dir.path().join("www/css/site.css"), "body{color:red}").unwrap();
    w.edit("www/index.html", Some("home v2"), MicroTime::now());
    eventually("the edit", || {
        (w.file("/srv/www/index.html").as_deref() == Some("home v2")).then_some(())
    })
    .await;
    assert_eq!(
        w.file("/srv/www/css/site.css").as_deref(),
        Some("body{}"),
        "only the edited file went"
    );
}

/// The channel into a container is opened when it runs, not at the first edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_is_opened_before_the_first_edit() {
    let w = World::new(vec![]).await;
    let attach = format!("exec_attach {}", w.container);
    eventually("the helper started in the container", || {
        w.docker
            .calls()
            .iter()
            .any(|c| c.starts_with(&attach))
            .then_some(())
    })
    .await;
}

#[test]
fn a_failure_stands_until_a_build_starts_after_it() {
    let failed_at = |at| LiveUpdateStateFailed {
        last_transition_time: at,
        ..Default::default()
    };
    let cases = [
        (Some(t(5)), None, false),
        (Some(t(5)), Some(t(0)), false),
        (Some(t(5)), Some(t(5)), false),
        (Some(t(5)), Some(t(6)), true),
        (None, Some(t(6)), false),
    ];
    for (at, built, predates) in cases {
        assert_eq!(
            failure_predates(&failed_at(at), built),
            predates,
            "failed at {at:?}, built {built:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_after_a_failure_lets_the_next_change_sync_again() {
    let w = World::new(vec![]).await;
    w.ctx
        .store
        .update_status_with::<LiveUpdate>("web", |l| {
            l.status.get_or_insert_with(Default::default).failed = Some(LiveUpdateStateFailed {
                reason: "UpdateFailed".into(),
                message: "no space left on device".into(),
                last_transition_time: Some(t(5)),
            })
        })
        .unwrap();
    // The fallback rebuild made the same image: the container that failed keeps running.
    w.ctx
        .store
        .update_status_with::<ImageMap>("web", |m| {
            m.status
                .get_or_insert_with(Default::default)
                .build_start_time = Some(t(20))
        })
        .unwrap();
    eventually("the failure forgotten", || {
        w.status().failed.is_none().then_some(())
    })
    .await;
    w.edit("www/app.js", Some("fixed"), t(30));
    eventually("the next change synced", || {
        (w.file("/srv/www/app.js").as_deref() == Some("fixed")).then_some(())
    })
    .await;
}
