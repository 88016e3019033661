//! `stilt up`: the composition root. Starts the store and the API server, writes the kubeconfig,
//! and runs until interrupted.

use crate::args::UpArgs;
use anyhow::{Context, Result};
use std::process::ExitCode;
use stilt_apiserver::{ApiServer, Kubeconfig, ServerOptions, random_token, write_kubeconfig};
use stilt_store::Store;

pub fn up(a: UpArgs) -> Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::default();
        let token = random_token();
        let server = ApiServer::new(store.clone(), ServerOptions::with_token(token.clone()));
        let serving = server
            .serve_loopback(a.api_port)
            .await
            .context("starting the API server")?;
        let home = crate::home::stilt_home();
        let path = write_kubeconfig(
            &home,
            &Kubeconfig {
                server: serving.url(),
                token,
                ca_pem: serving.cert_pem.clone(),
            },
        )
        .with_context(|| format!("writing the kubeconfig to {}", home.display()))?;
        eprintln!(
            "stilt: API server on {} (kubeconfig: {}, context \"stilt\")",
            serving.url(),
            path.display()
        );
        tokio::signal::ctrl_c().await?;
        eprintln!("stilt: shutting down");
        Ok(ExitCode::SUCCESS)
    })
}

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("STILT_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
