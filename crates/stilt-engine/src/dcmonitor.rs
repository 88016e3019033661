//! Follows one compose service's container for as long as its DockerComposeService exists: its
//! state into the object's status, its output into the resource's log — and through a restart
//! of the Docker engine. An engine that stops takes its containers down with it; when it answers
//! again, a container that was running when it went away is started again (the same container,
//! so files a live update wrote are still there), and its log is followed from that start.

use crate::Ctx;
use crate::docker::{ContainerLook, look_at_container};
use futures_util::StreamExt;
use std::time::Duration;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::TypedStore;

/// What one look at the container asks of the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Start the stopped container again: the engine went away while it ran.
    StartAgain,
    /// Follow the container's log from this start (Unix seconds; `None`: from its beginning).
    FollowLogs {
        since: Option<i64>,
    },
}

/// What the monitor remembers between looks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The container whose log is followed, and the start it is followed from.
    pub following: Option<(String, Option<i64>)>,
    /// The engine stopped answering while the container ran.
    pub lost_while_running: bool,
    /// The container was running at the last look that reached the engine.
    pub was_running: bool,
}

/// Decides from one look (`Err`: the engine did not answer). A new container's log is followed
/// from its beginning; a container started again is followed from that start, so no line is
/// shown twice.
pub fn decide(mem: &mut Memory, look: &Result<Option<ContainerLook>, String>) -> Step {
    let c = match look {
        Err(_) => {
            mem.lost_while_running |= mem.was_running;
            return Step::Nothing;
        }
        Ok(None) => {
            mem.was_running = false;
            mem.lost_while_running = false;
            return Step::Nothing;
        }
        Ok(Some(c)) => c,
    };
    if !c.running && mem.lost_while_running {
        mem.lost_while_running = false;
        return Step::StartAgain;
    }
    if c.running {
        mem.lost_while_running = false;
    }
    mem.was_running = c.running;
    match &mem.following {
        Some((id, since)) if *id == c.id => {
            // Docker ends a log stream when its container stops: a new start is followed anew.
            if c.running && c.started_at.is_some() && *since != c.started_at {
                mem.following = Some((c.id.clone(), c.started_at));
                Step::FollowLogs {
                    since: c.started_at,
                }
            } else {
                Step::Nothing
            }
        }
        _ => {
            mem.following = Some((c.id.clone(), c.started_at));
            Step::FollowLogs { since: None }
        }
    }
}

/// Runs until the DockerComposeService is deleted.
pub fn monitor(ctx: Ctx, dcs_name: String, resource: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut mem = Memory::default();
        let mut logs: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let Ok(dcs) = ctx.store.get_typed::<DockerComposeService>(&dcs_name) else {
                break;
            };
            let look = look_at_container(&ctx, &dcs).await;
            match decide(&mut mem, &look) {
                Step::Nothing => {}
                Step::StartAgain => {
                    let id = look
                        .as_ref()
                        .ok()
                        .and_then(|c| c.as_ref())
                        .map(|c| c.id.clone());
                    start_again(&ctx, &resource, &dcs.spec.service, id.as_deref()).await;
                    continue;
                }
                Step::FollowLogs { since } => {
                    let id = mem.following.as_ref().map(|(id, _)| id.clone());
                    if let Some(task) = logs.take() {
                        task.abort();
                    }
                    let id = id.unwrap_or_default();
                    logs = Some(follow_logs(ctx.clone(), id, resource.clone(), since));
                    if since.is_none() {
                        write_log_stream(&ctx, &dcs_name, &dcs, &resource);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if let Some(task) = logs {
            task.abort();
        }
    })
}

async fn start_again(ctx: &Ctx, resource: &str, service: &str, id: Option<&str>) {
    let Some(id) = id else { return };
    ctx.logs.line(
        resource,
        "dcmonitor",
        Level::Info,
        &format!(
            "The Docker engine stopped while {service} was running; starting its container again"
        ),
    );
    let started = match ctx.docker.docker().await {
        Ok(docker) => docker.start_container(id).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        ctx.logs.line(
            resource,
            "dcmonitor",
            Level::Error,
            &format!("Starting the container of {service} again failed: {e}"),
        );
    }
}

/// The log stream as an object, as Tilt's DockerComposeLogStream.
fn write_log_stream(ctx: &Ctx, dcs_name: &str, dcs: &DockerComposeService, resource: &str) {
    let mut stream = DockerComposeLogStream::new(
        dcs_name,
        DockerComposeLogStreamSpec {
            service: dcs.spec.service.clone(),
            project: dcs.spec.project.clone(),
            since_time: None,
        },
    );
    stream
        .metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), resource.to_string());
    crate::storewrite::logged(ctx.store.apply_typed(&stream), || {
        format!("writing DockerComposeLogStream {dcs_name}")
    });
    crate::storewrite::logged(
        ctx.store
            .update_status_with::<DockerComposeLogStream>(dcs_name, |o| {
                o.status = Some(DockerComposeLogStreamStatus {
                    started_at: Some(MicroTime::now()),
                    error: String::new(),
                });
            }),
        || format!("writing DockerComposeLogStream {dcs_name} status"),
    );
}

fn follow_logs(
    ctx: Ctx,
    container: String,
    resource: String,
    since: Option<i64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(docker) = ctx.docker.docker().await else {
            return;
        };
        let opts = stilt_docker::types::LogOptions {
            follow: true,
            timestamps: false,
            since,
            tail: None,
        };
        let Ok(mut stream) = docker.logs(&container, &opts).await else {
            return;
        };
        let span = format!("dc:{container}");
        while let Some(Ok(line)) = stream.next().await {
            ctx.logs
                .line(&resource, &span, Level::Info, line.text.trim_end());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Look = Result<Option<ContainerLook>, String>;

    fn seen(id: &str, running: bool, started_at: i64) -> Look {
        Ok(Some(ContainerLook {
            id: id.into(),
            running,
            started_at: Some(started_at),
        }))
    }

    fn down() -> Look {
        Err("cannot reach the Docker engine".into())
    }

    /// Each row: the looks in order, and the steps they ask for.
    #[test]
    fn steps_through_engine_outages_and_restarts() {
        use Step::*;
        let table: Vec<(&str, Vec<Look>, Vec<Step>)> = vec![
            (
                "a running container: its log is followed once, from its beginning",
                vec![seen("a", true, 10), seen("a", true, 10)],
                vec![FollowLogs { since: None }, Nothing],
            ),
            (
                "the engine restarts under a running container: started again, log from the new start",
                vec![
                    seen("a", true, 10),
                    down(),
                    down(),
                    seen("a", false, 10),
                    seen("a", true, 50),
                    seen("a", true, 50),
                ],
                vec![
                    FollowLogs { since: None },
                    Nothing,
                    Nothing,
                    StartAgain,
                    FollowLogs { since: Some(50) },
                    Nothing,
                ],
            ),
            (
                "a container that exited on its own is left stopped, outage or not",
                vec![
                    seen("a", true, 10),
                    seen("a", false, 10),
                    down(),
                    seen("a", false, 10),
                ],
                vec![FollowLogs { since: None }, Nothing, Nothing, Nothing],
            ),
            (
                "a restart policy brought it back first: only the log is followed again",
                vec![seen("a", true, 10), down(), seen("a", true, 60)],
                vec![
                    FollowLogs { since: None },
                    Nothing,
                    FollowLogs { since: Some(60) },
                ],
            ),
            (
                "a new container (an update recreated it): followed from its beginning",
                vec![seen("a", true, 10), seen("b", true, 70)],
                vec![FollowLogs { since: None }, FollowLogs { since: None }],
            ),
            (
                "the engine down before any container was seen: nothing to start",
                vec![down(), seen("a", false, 10)],
                vec![Nothing, FollowLogs { since: None }],
            ),
        ];
        for (what, looks, want) in table {
            let mut mem = Memory::default();
            let got: Vec<Step> = looks.iter().map(|l| decide(&mut mem, l)).collect();
            assert_eq!(got, want, "{what}");
        }
    }
}
