//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "stilt",
    version,
    about = "Stilt: run your Tiltfile, faster and lighter",
    propagate_version = true
)]
pub struct Cli {
    /// Port of the web UI: `up`/`ci` serve it there; other commands talk to the instance on that
    /// port (default: the newest running instance). `TILT_PORT` is read too.
    #[arg(long, global = true, env = "STILT_PORT")]
    pub port: Option<u16>,
    /// Address the web UI listens on (`up`, `ci`, `demo`). `TILT_HOST` is read too.
    #[arg(long, global = true, env = "STILT_HOST")]
    pub host: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start Stilt: load the Tiltfile, serve the API and keep everything up to date.
    Up(UpArgs),
    /// Run every resource once; exit 0 when all are ready, 1 at the first failure.
    Ci(CiArgs),
    /// Stop what `stilt up` started and delete what it deployed.
    Down(DownArgs),
    /// Run a built-in sample project (needs nothing but Stilt).
    Demo(DemoArgs),
    /// Print the logs of a running Stilt.
    Logs(LogsArgs),
    /// Queue an update of resources.
    Trigger(ResourcesArgs),
    /// Enable resources.
    Enable(ToggleArgs),
    /// Disable resources.
    Disable(ToggleArgs),
    /// Change the Tiltfile's arguments of a running Stilt (the Tiltfile re-runs).
    Args(ArgsArgs),
    /// Extension repos (`ext://`): fetch them again.
    Ext {
        #[command(subcommand)]
        cmd: Ext,
    },
    /// Helpers the demo project uses (not for direct use).
    #[command(hide = true)]
    Internal {
        #[command(subcommand)]
        cmd: Internal,
    },
    /// Display one or many objects.
    Get(GetArgs),
    /// Show details of objects.
    Describe(DescribeArgs),
    /// Create or update objects from files (idempotent).
    Apply(FileArgs),
    /// Create objects from files.
    Create(FileArgs),
    /// Delete objects by name, by selector or from files.
    Delete(DeleteArgs),
    /// Edit an object in $EDITOR.
    Edit(EditArgs),
    /// Patch an object.
    Patch(PatchArgs),
    /// Wait for a condition on objects.
    Wait(WaitArgs),
    /// List the kinds the API serves.
    ApiResources(ApiResourcesArgs),
    /// Describe the fields of a kind.
    Explain(ExplainArgs),
    /// Print the version.
    Version,
    /// Check what Stilt needs on this machine: Docker, Compose, kubectl, the Kubernetes context.
    Doctor,
    /// Dump internal state for bug reports (`stilt dump engine`: every object as JSON).
    Dump {
        #[command(subcommand)]
        what: Dump,
    },
    /// Serve the Model Context Protocol on stdio for coding agents: resources, logs, objects,
    /// waits and failure explanations of the running Stilt (read-only unless --allow-mutations).
    Mcp(McpArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Serve the Tiltfile language server on stdin/stdout (for editors: completion, signature
    /// help, hover, diagnostics, go to definition).
    Lsp(LspArgs),
}

#[derive(Args, Debug, Clone)]
pub struct LspArgs {
    /// `stilt lsp start`, as `tilt lsp start` (editor configs written for Tilt say it).
    #[arg(value_enum, hide = true)]
    pub action: Option<LspAction>,
    /// Accepted as `tilt lsp start --verbose/--debug` (the protocol traffic is the editor's to log).
    #[arg(long, hide = true)]
    pub verbose: bool,
    #[arg(long, hide = true)]
    pub debug: bool,
    /// Stop checking a Tiltfile that takes longer than this many seconds to load.
    #[arg(long, default_value_t = 10)]
    pub check_timeout: u64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LspAction {
    Start,
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Path to the Tiltfile.
    #[arg(short = 'f', long = "file", default_value = "Tiltfile")]
    pub file: PathBuf,
    /// Stream logs to the terminal instead of the live status view (the default when stdout is
    /// not a terminal, TERM is dumb or the terminal is smaller than 40x6).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub stream: Option<bool>,
    /// Port of the API server (0 picks a free one).
    #[arg(long, env = "STILT_API_PORT", default_value_t = 0)]
    pub api_port: u16,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(flatten)]
    pub tilt: TiltFlags,
    /// Tiltfile arguments: without `config.parse()` in the Tiltfile, the names of the resources
    /// to enable (with their dependencies). `--` passes arguments that start with a dash.
    pub args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CiArgs {
    #[arg(short = 'f', long = "file", default_value = "Tiltfile")]
    pub file: PathBuf,
    /// Give up after this long (e.g. 30m, 90s); the Tiltfile's ci_settings(timeout=) when unset.
    #[arg(long)]
    pub timeout: Option<String>,
    #[arg(long, env = "STILT_API_PORT", default_value_t = 0)]
    pub api_port: u16,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(flatten)]
    pub tilt: TiltFlags,
    /// Tiltfile arguments, as for `up`.
    pub args: Vec<String>,
}

/// The Kubernetes context and namespace to deploy to (Tilt's `--context` / `--namespace`).
/// Stilt writes a kubeconfig holding only that context (with the namespace as its default) and
/// points `KUBECONFIG` at it, so the Tiltfile's `k8s_context()` and `allow_k8s_contexts`, kubectl
/// in local resources and Stilt's own client all see the same cluster.
#[derive(Args, Debug, Clone, Default)]
pub struct KubeFlags {
    /// Kubernetes context to use (default: the kubeconfig's current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Default namespace for Kubernetes objects without one (default: the context's namespace).
    #[arg(long)]
    pub namespace: Option<String>,
}

/// Flags of `tilt up` / `tilt ci` that scripts written for Tilt pass. They are accepted so those
/// scripts run unchanged; the ones about Tilt's own terminal UI and debug servers have no
/// counterpart in Stilt.
#[derive(Args, Debug, Clone, Default)]
pub struct TiltFlags {
    /// More detailed logs from Stilt itself (Tilt's `--debug`).
    #[arg(short = 'd', long, num_args = 0..=1, default_missing_value = "true")]
    pub debug: Option<bool>,
    /// Verbose logs from Stilt itself.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Tilt's Kubernetes client log level (accepted; Stilt's client logs follow --debug).
    #[arg(long, hide = true)]
    pub klog: Option<u32>,
    /// Tilt's legacy terminal UI switch (accepted; Stilt streams when stdout is not a terminal).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub legacy: Option<bool>,
    /// Tilt's terminal HUD switch (accepted; `--hud=false` streams logs).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub hud: Option<bool>,
    /// Tilt's web asset mode (accepted; Stilt's web UI is always built in).
    #[arg(long, hide = true)]
    pub web_mode: Option<String>,
    /// Tilt's update strategy: `auto`, `image` and `exec` behave alike in Stilt (pods are
    /// live-updated through exec, else rebuilt); `container` (Docker-in-cluster) is refused.
    #[arg(long, hide = true, value_parser = ["auto", "image", "container", "exec"])]
    pub update_mode: Option<String>,
    /// Watch files (the default); `--watch=false` is Tilt's manual-only mode (not supported).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub watch: Option<bool>,
}

#[derive(Args, Debug, Clone)]
pub struct DownArgs {
    #[arg(short = 'f', long = "file", default_value = "Tiltfile")]
    pub file: PathBuf,
    /// Also delete Namespaces.
    #[arg(long)]
    pub delete_namespaces: bool,
    /// Also remove the named volumes of Docker Compose projects (`compose down -v`).
    #[arg(long)]
    pub delete_volumes: bool,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(flatten)]
    pub tilt: TiltFlags,
    /// Tiltfile arguments, as for `up`.
    pub args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where to write the sample project (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Port of the sample web server.
    #[arg(long, default_value_t = 8000)]
    pub app_port: u16,
    /// Run the demo once as `stilt ci` would, and exit.
    #[arg(long)]
    pub ci: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// Only these resources.
    pub resources: Vec<String>,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than this (e.g. 5m).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines of what is there now (-1: all).
    #[arg(long, allow_negative_numbers = true)]
    pub tail: Option<i64>,
    /// Only lines of this level: warn or error.
    #[arg(long)]
    pub level: Option<String>,
    /// all, build (builds, live updates) or runtime (pods, servers, containers).
    #[arg(long)]
    pub source: Option<String>,
    /// One JSON object per line, as `tilt logs --json`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ResourcesArgs {
    #[arg(required = true)]
    pub resources: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ToggleArgs {
    pub resources: Vec<String>,
    /// Every resource.
    #[arg(long)]
    pub all: bool,
    /// Resources with these labels (repeat or comma-separate).
    #[arg(short = 'l', long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// With `enable`: enable the named (or labelled) resources and disable every other one.
    #[arg(long)]
    pub only: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ArgsArgs {
    /// The new Tiltfile arguments (`--` before arguments that start with a dash).
    pub args: Vec<String>,
    /// Clear the arguments.
    #[arg(long)]
    pub clear: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Ext {
    /// Fetch extension repos now (all when none is named) and wait for the result; a fetch that
    /// changes an extension the Tiltfile loaded reloads the Tiltfile.
    Fetch {
        /// ExtensionRepo names.
        repos: Vec<String>,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum Internal {
    /// Serve a directory over HTTP on 127.0.0.1.
    ServeDir {
        #[arg(long)]
        port: u16,
        dir: PathBuf,
    },
    /// GET a URL and print the body; exit 1 on failure.
    HttpGet { url: String },
}

#[derive(Args, Debug, Clone, Default)]
pub struct Target {
    /// Kind (plural, singular, short name or Kind), optionally `kind/name`.
    pub kind: Option<String>,
    /// Object names.
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub target: Target,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Label selector (e.g. `app=web,tier in (a,b)`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (metadata.name).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Watch for changes after listing.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// Files (YAML or JSON, `-` for stdin).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of the kind.
    #[arg(long)]
    pub all: bool,
    /// Don't fail when the object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub target: Target,
    /// The patch.
    #[arg(short = 'p', long)]
    pub patch: String,
    /// json, merge or strategic.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// Patch the `status` subresource.
    #[arg(long)]
    pub subresource: Option<String>,
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub target: Target,
    /// `condition=Ready`, `condition=Ready=false`, `delete`, or `jsonpath={.status.x}=value`.
    #[arg(long = "for")]
    pub condition: String,
    /// How long to wait (e.g. 30s, 5m).
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct McpArgs {
    /// Also offer the tools that change the running Stilt: trigger, enable and disable a
    /// resource (without it they are not listed and a call to them is refused).
    #[arg(long)]
    pub allow_mutations: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Dump {
    /// Every object of the running instance, as one JSON document.
    Engine,
}

#[derive(Args, Debug)]
pub struct ApiResourcesArgs {
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// `kind[.field[.field]]`
    pub path: String,
}
