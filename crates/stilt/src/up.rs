//! `stilt up` and `stilt ci`.

use crate::args::{CiArgs, TiltFlags, UpArgs};
use crate::run::{RunOptions, interrupted, start};
use anyhow::Result;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use stilt_api::Session;
use stilt_engine::Mode;
use stilt_store::TypedStore;

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Where the web UI of an instance listens; the port also names the instance.
pub struct WebAddr {
    pub host: String,
    pub port: u16,
}

pub fn up(a: UpArgs, web: WebAddr) -> Result<ExitCode> {
    init_tracing(&a.tilt);
    refuse_unsupported(&a.tilt)?;
    if a.tilt.watch == Some(false) {
        anyhow::bail!(
            "--watch=false (update only on `stilt trigger`) is not supported; set trigger_mode(TRIGGER_MODE_MANUAL) in the Tiltfile instead"
        );
    }
    let asked_stream = a.stream.unwrap_or(false) || a.tilt.hud == Some(false);
    let term = std::env::var("TERM").ok();
    let is_terminal = std::io::stdout().is_terminal();
    // Only a terminal has a size worth asking: elsewhere crossterm runs `tput` twice.
    let size = (is_terminal && !asked_stream)
        .then(|| crossterm::terminal::size().ok())
        .flatten();
    let tui = crate::tui::model::use_tui(asked_stream, is_terminal, term.as_deref(), size);
    // Without the live view (`--stream`, not a terminal, TERM=dumb, too small): the plain stream.
    let stream = !tui;
    let instance = crate::run::claim(web.port, &a.kube)?;
    runtime()?.block_on(async move {
        let running = start(RunOptions {
            mode: Mode::Up,
            file: a.file,
            args: a.args,
            web_host: web.host,
            web_port: web.port,
            api_port: a.api_port,
            stream,
            instance,
        })
        .await?;
        let mut running = running;
        if tui {
            match live_view(&running).await {
                crate::tui::Exit::Stream => {
                    running.stream = Some(crate::logs::stream_to_terminal(running.logs.clone()));
                    interrupted().await;
                }
                crate::tui::Exit::Quit | crate::tui::Exit::Stopped => {}
            }
        } else {
            interrupted().await;
        }
        eprintln!("stilt: stopping");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Shows the terminal view until a key or a signal ends it.
async fn live_view(running: &crate::run::Running) -> crate::tui::Exit {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = crate::tui::Context {
        store: running.store.clone(),
        logs: running.logs.clone(),
        url: running.web.as_ref().map(|w| w.url().to_string()),
        stop: stop.clone(),
    };
    let mut view = tokio::task::spawn_blocking(move || crate::tui::run(ctx));
    let ended = tokio::select! {
        r = &mut view => r,
        _ = interrupted() => {
            stop.store(true, Ordering::Release);
            view.await
        }
    };
    match ended {
        Ok(Ok(exit)) => exit,
        Ok(Err(e)) => {
            eprintln!("stilt: the terminal view failed ({e:#}); streaming logs instead");
            crate::tui::Exit::Stream
        }
        Err(e) => {
            eprintln!("stilt: the terminal view failed ({e}); streaming logs instead");
            crate::tui::Exit::Stream
        }
    }
}

pub fn ci(a: CiArgs, web: WebAddr) -> Result<ExitCode> {
    init_tracing(&a.tilt);
    refuse_unsupported(&a.tilt)?;
    let timeout_text = a.timeout.clone().unwrap_or_else(|| "30m".into());
    let timeout = crate::objects::parse_duration(&timeout_text)?;
    let instance = crate::run::claim(web.port, &a.kube)?;
    runtime()?.block_on(async move {
        let running = start(RunOptions {
            mode: Mode::Ci,
            file: a.file,
            args: a.args,
            web_host: web.host,
            web_port: web.port,
            api_port: a.api_port,
            stream: true,
            instance,
        })
        .await?;
        let store = running.store.clone();
        let verdict = tokio::select! {
            v = wait_done(&store) => v,
            _ = tokio::time::sleep(timeout) => Err(format!("Timeout after {timeout_text}: {}", waiting_summary(&store))),
            _ = interrupted() => Err("interrupted".to_string()),
        };
        running.stop().await;
        match verdict {
            Ok(()) => {
                eprintln!("SUCCESS. All workloads are healthy.");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("Error: {e}");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

async fn wait_done(store: &stilt_store::Store) -> Result<(), String> {
    loop {
        if let Ok(s) = store.get_typed::<Session>(stilt_engine::names::SESSION_NAME)
            && let Some(st) = s.status.filter(|st| st.done)
        {
            return if st.error.is_empty() {
                Ok(())
            } else {
                Err(st.error)
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn waiting_summary(store: &stilt_store::Store) -> String {
    let Ok(s) = store.get_typed::<Session>(stilt_engine::names::SESSION_NAME) else {
        return String::new();
    };
    let waiting: Vec<String> = s
        .status
        .map(|st| st.targets)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.state.waiting.is_some() || t.state.active.as_ref().is_some_and(|a| !a.ready))
        .map(|t| t.name)
        .collect();
    format!(
        "{} resources waiting ({})",
        waiting.len(),
        waiting.join(", ")
    )
}

/// Stilt's own diagnostics go to stderr: `STILT_LOG` (an env-filter) wins, else `--debug` /
/// `--verbose` turn on Stilt's info lines, else warnings only.
/// Tilt's up/ci flags Stilt cannot honour stop the start with a message.
fn refuse_unsupported(flags: &TiltFlags) -> Result<()> {
    if flags.update_mode.as_deref() == Some("container") {
        anyhow::bail!(
            "update mode \"container\" is not supported: Stilt updates pods in place through exec (--update-mode=exec, the default)"
        );
    }
    Ok(())
}

pub fn init_tracing(flags: &TiltFlags) {
    let default = if flags.debug == Some(true) || flags.verbose {
        "warn,stilt=info,stilt_engine=info,stilt_k8s=info,stilt_docker=info"
    } else {
        "warn"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("STILT_LOG").unwrap_or_else(|_| default.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::tui::diagnostics::Writer)
        .try_init();
}
