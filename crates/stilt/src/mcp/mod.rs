//! `stilt mcp`: a Model Context Protocol server over stdio that lets a coding agent work the dev
//! loop of a running `stilt up` — list resources with status, read and search logs, read
//! objects, wait for the update after an edit, explain the last failure, and (only with
//! `--allow-mutations`) trigger, enable and disable resources.
//!
//! It is a client of the running instance's API like `stilt get` (same kubeconfig, `--port`
//! picks the instance), so it sees exactly what the CLI sees, secrets redacted by the log store.
//! stdout carries the protocol only; diagnostics go to stderr.

mod api;
mod failure;
mod logwin;
mod secrets;
mod server;
mod summary;
mod tools;
mod wait;

use anyhow::{Context, Result};
use rmcp::ServiceExt;
use std::process::ExitCode;

pub fn mcp(a: crate::args::McpArgs) -> Result<ExitCode> {
    let rt = crate::up::runtime()?;
    rt.block_on(async move {
        let handler = server::StiltMcp {
            allow_mutations: a.allow_mutations,
        };
        let service = handler
            .serve(rmcp::transport::stdio())
            .await
            .context("starting the MCP session on stdio")?;
        service.waiting().await.context("serving MCP")?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Blocking tool threads (a long wait) must not keep the process alive once the client left.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(ExitCode::SUCCESS)
}
