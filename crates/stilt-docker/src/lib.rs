//! # stilt-docker — the Docker engine adapter
//!
//! **Owns:** everything Stilt says to a Docker engine and to the Docker Compose CLI:
//! image builds (deterministic context tars, BuildKit with classic fallback, Tilt's
//! `tilt-<hash>` content tags), tag/push/inspect, containers (list by label or image, inspect,
//! create/start/stop/remove), events, logs, exec (one-shot, or attached and long-lived as the
//! byte channel of an in-container helper), and the archive API used by live update (upload a
//! tar into a running container with no new process; download one for syncback).
//!
//! **Shape:** reconcilers depend on the object-safe traits [`DockerClient`] and
//! [`compose::ComposeClient`]; the composition root picks [`BollardDocker`] /
//! [`compose::ComposeCli`], tests pick [`FakeDocker`] / [`compose::FakeCompose`]. Everything
//! crossing the trait is plain data defined here ([`types`]), never bollard types.
//!
//! **Must not:** know about API objects (`tilt.dev/v1alpha1`), the store, reconcilers,
//! Kubernetes, or `.dockerignore` syntax (callers pass a path predicate). It receives plain
//! data and returns plain data. It never shells out to the `docker` CLI (only the compose
//! wrapper runs `docker compose`/`docker-compose`, which has no API).
//!
//! ```no_run
//! # async fn demo() -> stilt_docker::Result<()> {
//! use std::sync::Arc;
//! use stilt_docker::{BollardDocker, BuildContext, BuildRequest, DockerClient, ExecRequest};
//!
//! let docker: Arc<dyn DockerClient> = Arc::new(BollardDocker::connect().await?);
//! let ctx = BuildContext::new("/src/web").with_filter(|rel| !rel.starts_with("node_modules"));
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! tokio::spawn(async move { while let Some(line) = rx.recv().await { println!("{line}") } });
//! let built = docker.build(BuildRequest::new("web", ctx), Some(tx)).await?;
//! println!("{} → {}", built.image_id, built.tagged_ref); // web:tilt-0123456789abcdef
//!
//! // Live update: one archive PUT, deletions by one exec.
//! let sync = stilt_docker::sync_archive(&[("/src/web/app.py", "/app/app.py")])?;
//! stilt_docker::apply_sync(docker.as_ref(), "container-id", &sync).await?;
//! let out = docker.exec("container-id", &ExecRequest::new(["cat", "/app/app.py"]), None).await?;
//! assert!(out.success());
//! # Ok(()) }
//! ```

mod bollard_docker;
mod client;
pub mod compose;
mod error;
mod fake;
mod lines;
pub mod session_build;
pub mod tag;
pub mod tarball;
pub mod types;

pub use bollard_docker::BollardDocker;
pub use client::{AttachedExec, DockerClient, EventStream, LogStream, apply_sync};
pub use error::{DockerError, Result};
pub use fake::{FakeAttachHandler, FakeDocker, FakeExecHandler, FakeFs, FakeNode, FakeStartHook};
pub use tag::{tilt_tag, tilt_tagged_ref};
pub use tarball::{SyncArchive, read_tar, rm_command, sync_archive, tar_from_bytes};
pub use types::*;
