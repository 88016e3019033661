//! The `stilt` binary: the CLI, and the composition root of `stilt up` (the only place real
//! adapters are chosen).

mod args;
mod client;
mod control;
mod demo;
mod describe;
mod doctor;
mod dump;
mod explain;
mod home;
mod instance;
mod internal;
mod jsonpath;
mod kubectx;
mod loader;
mod logs;
mod lsp;
mod manifest;
mod mcp;
mod memory;
mod objects;
mod print;
mod run;
mod tui;
mod up;
mod yaml;

use clap::Parser;

fn main() -> std::process::ExitCode {
    memory::limit_arenas();
    adopt_tilt_env();
    let cli = args::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Scripts written for Tilt set `TILT_PORT` / `TILT_HOST`; Stilt's own names win when both are set.
fn adopt_tilt_env() {
    for (ours, tilts) in [("STILT_PORT", "TILT_PORT"), ("STILT_HOST", "TILT_HOST")] {
        if std::env::var_os(ours).is_none()
            && let Some(v) = std::env::var_os(tilts).filter(|v| !v.is_empty())
        {
            // SAFETY: called first thing in main, before any other thread exists.
            unsafe { std::env::set_var(ours, v) };
        }
    }
}

fn run(cli: args::Cli) -> anyhow::Result<std::process::ExitCode> {
    use args::Command::*;
    instance::select(cli.port);
    let web = up::WebAddr {
        host: cli.host.unwrap_or_else(|| "127.0.0.1".into()),
        port: cli.port.unwrap_or(instance::DEFAULT_PORT),
    };
    match cli.command {
        Up(a) => up::up(a, web),
        Ci(a) => up::ci(a, web),
        Down(a) => control::down(a),
        Demo(a) => demo::demo(a, web),
        Logs(a) => logs::logs(a),
        Trigger(a) => control::trigger(a),
        Enable(a) => control::toggle(a, false),
        Disable(a) => control::toggle(a, true),
        Args(a) => control::set_args(a),
        Internal { cmd } => internal::run(cmd),
        Ext {
            cmd: args::Ext::Fetch { repos },
        } => control::ext_fetch(repos),
        Version => {
            println!("stilt v{}", env!("CARGO_PKG_VERSION"));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Completion { shell } => {
            let mut cmd = <args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "stilt", &mut std::io::stdout());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Get(a) => objects::get(a),
        Describe(a) => describe::describe(a),
        Apply(a) => objects::apply(a),
        Create(a) => objects::create(a),
        Delete(a) => objects::delete(a),
        Edit(a) => objects::edit(a),
        Patch(a) => objects::patch(a),
        Wait(a) => objects::wait(a),
        ApiResources(a) => objects::api_resources(a),
        Explain(a) => explain::explain(a),
        Dump { what } => dump::dump(what),
        Doctor => doctor::doctor(),
        Mcp(a) => mcp::mcp(a),
        Lsp(a) => lsp::lsp(a),
    }
}
