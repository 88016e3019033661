//! The owned model the builtins fill in while the Tiltfile runs (Tilt's "manifests" before
//! assembly). Plain Rust data: no Starlark values.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerMode {
    #[default]
    Auto,
    Manual,
}

/// A live-update step, already validated and with absolute paths.
#[derive(Debug, Clone, PartialEq)]
pub enum LuStep {
    InitialSync,
    FallBackOn(Vec<PathBuf>),
    Sync {
        local: PathBuf,
        remote: String,
    },
    Run {
        args: Vec<String>,
        triggers: Vec<PathBuf>,
        echo_off: bool,
    },
    Restart,
}

#[derive(Debug, Clone, Default)]
pub struct LiveUpdate {
    pub steps: Vec<LuStep>,
    /// Directory of the file that called docker_build/custom_build (LiveUpdate basePath).
    pub base_path: PathBuf,
}

impl LiveUpdate {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum ImageBuild {
    Docker(DockerBuild),
    Custom(CustomBuild),
}

#[derive(Debug, Clone, Default)]
pub struct DockerBuild {
    pub context: PathBuf,
    pub dockerfile_path: PathBuf,
    pub dockerfile_contents: String,
    pub build_args: Vec<(String, String)>,
    pub target: String,
    pub ssh: Vec<String>,
    pub secret: Vec<String>,
    pub network: String,
    pub extra_tags: Vec<String>,
    pub cache_from: Vec<String>,
    pub pull: bool,
    pub platform: String,
    pub extra_hosts: Vec<String>,
    pub dockerignore_patterns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomBuild {
    pub args: Vec<String>,
    pub deps: Vec<PathBuf>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub tag: String,
    pub disable_push: bool,
    pub skips_local_docker: bool,
    pub outputs_image_ref_to: String,
    /// `.dockerignore` patterns of each dep that is a directory (Tilt reads them as for a
    /// Docker context), in deps order; empty lists for deps without one.
    pub dep_dockerignores: Vec<(PathBuf, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct ImageTarget {
    /// The ref as written (`gcr.io/foo/bar`, `myimg:1.0`).
    pub ref_str: String,
    /// Familiar name without tag (`gcr.io/foo/bar`).
    pub name: String,
    /// Has an explicit tag ⇒ exact-match in YAML.
    pub match_exact: bool,
    pub build: ImageBuild,
    pub live_update: LiveUpdate,
    pub match_in_env_vars: bool,
    pub ignores: Vec<String>,
    pub only: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub container_args: Option<Vec<String>>,
    /// Set when the image is `custom_build(command=':')` with a live_update.
    pub live_update_only: bool,
    /// Images this one depends on (FROM in the Dockerfile, custom_build image_deps).
    pub image_deps: Vec<String>,
    /// Git repositories containing the context/deps (their `.git` is never watched).
    pub repo_roots: Vec<PathBuf>,
    /// The Tiltfile that declared the image (never part of its context, as in Tilt).
    pub tiltfile_path: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct K8sResourceOpts {
    /// `workload` argument (may be empty when only `new_name`+`objects`).
    pub workload: String,
    pub new_name: String,
    pub port_forwards: Vec<stilt_api::Forward>,
    pub extra_pod_selectors: Vec<BTreeMap<String, String>>,
    pub trigger_mode: Option<TriggerMode>,
    pub resource_deps: Vec<String>,
    pub objects: Vec<String>,
    pub auto_init: Option<bool>,
    pub pod_readiness: String,
    pub links: Vec<Link>,
    pub labels: Vec<String>,
    pub discovery_strategy: String,
    /// Where the call happened, for error messages.
    pub call_site: String,
}

#[derive(Debug, Clone)]
pub struct K8sKind {
    /// Tilt's ObjectSelector regexps: `(?i)<pattern>` matched anywhere, `""` matches all.
    pub kind_re: String,
    pub api_version_re: String,
    pub name_re: String,
    pub namespace_re: String,
    pub image_json_paths: Vec<String>,
    pub image_object: Option<(String, String, String)>,
    pub pod_readiness: String,
}

#[derive(Debug, Clone)]
pub struct CustomDeploy {
    pub name: String,
    pub apply_cmd: Vec<String>,
    pub apply_dir: PathBuf,
    pub apply_env: Vec<(String, String)>,
    pub delete_cmd: Vec<String>,
    pub delete_dir: PathBuf,
    pub delete_env: Vec<(String, String)>,
    pub deps: Vec<PathBuf>,
    pub image_selector: String,
    pub container_selector: String,
    pub live_update: LiveUpdate,
    pub image_deps: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LocalResource {
    pub name: String,
    /// `file:line:col` of the call, for error messages.
    pub call_site: String,
    pub cmd: Vec<String>,
    pub serve_cmd: Vec<String>,
    pub deps: Vec<PathBuf>,
    pub ignores: Vec<String>,
    pub trigger_mode: Option<TriggerMode>,
    pub auto_init: bool,
    pub resource_deps: Vec<String>,
    pub allow_parallel: bool,
    pub links: Vec<Link>,
    pub labels: Vec<String>,
    pub env: Vec<(String, String)>,
    pub serve_env: Vec<(String, String)>,
    pub readiness_probe: Option<stilt_api::Probe>,
    pub dir: PathBuf,
    pub serve_dir: PathBuf,
    /// Directory of the calling Tiltfile (base for ignores).
    pub tiltfile_dir: PathBuf,
    /// Git repositories containing the deps.
    pub repo_roots: Vec<PathBuf>,
}

/// Where a syncback reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncbackFrom {
    Kubernetes {
        object: String,
        namespace: String,
        container: String,
    },
    DockerCompose {
        service: String,
    },
}

/// A `syncback(...)` / `dc_syncback(...)` call (Stilt serves `ext://syncback` natively).
#[derive(Debug, Clone)]
pub struct SyncbackDef {
    pub name: String,
    /// `file:line:col` of the call, for error messages.
    pub call_site: String,
    /// The function called (`syncback` or `dc_syncback`), for error messages.
    pub func: &'static str,
    pub from: SyncbackFrom,
    /// Absolute container directory, without a trailing slash (`/` stays `/`).
    pub src_dir: String,
    /// Absolute local directory.
    pub target_dir: PathBuf,
    /// Relative to `src_dir`, cleaned (no `./`, no trailing slash); empty: everything.
    pub paths: Vec<String>,
    pub ignores: Vec<String>,
    pub delete: bool,
    pub dry_run: bool,
    pub interval_seconds: i32,
    pub labels: Vec<String>,
    pub resource_deps: Vec<String>,
    /// How many local resources were declared before this call (Tilt's extension made a
    /// local_resource, so syncbacks keep their place among local resources).
    pub local_seq: usize,
}

#[derive(Debug, Clone, Default)]
pub struct DcProject {
    pub name: String,
    pub config_paths: Vec<PathBuf>,
    pub project_path: PathBuf,
    pub yaml: String,
    pub env_file: String,
    pub profiles: Vec<String>,
    pub wait: bool,
    /// Services in Tilt's order (sorted, dependencies first): (name, service json).
    pub services: Vec<(String, Json)>,
    /// Services with a `build:` Compose does itself unless a Tiltfile image covers them.
    pub builds: BTreeMap<String, DcBuild>,
}

/// A compose service's own `build:` (Tilt's DockerComposeBuild image target).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DcBuild {
    /// The image compose builds (`image:`, else `<project>-<service>`).
    pub image: String,
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// `.dockerignore` patterns of the context (they also keep edits from rebuilding).
    pub dockerignore: Vec<String>,
    /// Bind-mount sources: the mount syncs them, so edits there never rebuild.
    pub volume_sources: Vec<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct DcResourceOpts {
    pub name: String,
    pub call_site: String,
    pub image: Option<String>,
    pub trigger_mode: Option<TriggerMode>,
    pub resource_deps: Vec<String>,
    pub infer_links: Option<bool>,
    pub links: Vec<Link>,
    pub labels: Vec<String>,
    pub auto_init: Option<bool>,
    pub project_name: String,
    pub new_name: String,
}

/// A parsed Kubernetes object from k8s_yaml.
#[derive(Debug, Clone)]
pub struct K8sEntity {
    pub obj: Json,
}

impl K8sEntity {
    pub fn kind(&self) -> &str {
        self.obj.get("kind").and_then(|v| v.as_str()).unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.obj
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }
    pub fn name(&self) -> &str {
        crate::objects::at(&self.obj, &["metadata", "name"])
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        crate::objects::at(&self.obj, &["metadata", "namespace"])
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }
    pub fn group(&self) -> &str {
        let av = self.api_version();
        match av.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigDef {
    pub name: String,
    pub kind: ConfigKind,
    pub args: bool,
    pub usage: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    String,
    StringList,
    Bool,
    Object,
}

/// Settings that are not objects (returned in `TiltfileResult::settings`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// update_settings(max_parallel_updates=3).
    pub max_parallel_updates: i64,
    pub k8s_upsert_timeout_secs: i64,
    pub suppress_unused_image_warnings: Vec<String>,
    pub k8s_server_side_apply: String,
    /// ci_settings durations, Go syntax (`30m`, `5m`; `""`: not set).
    pub ci_timeout: String,
    pub ci_readiness_timeout: String,
    pub ci_k8s_grace_period: String,
    /// The kube context/namespace the load checked against (empty when nothing deploys to k8s).
    pub k8s_context: String,
    pub k8s_namespace: String,
    pub allowed_k8s_contexts: Vec<String>,
    pub default_registry: Option<DefaultRegistry>,
    /// false after secret_settings(disable_scrub=True).
    pub secrets_scrub: bool,
    /// Values (≥ 5 bytes) of k8s Secrets in the YAML, to redact from logs: (name:key, value).
    pub secrets: Vec<(String, String)>,
    pub version_check_updates: bool,
    pub version_constraint: String,
    pub analytics_enabled: Option<bool>,
    pub team_id: String,
    pub enabled_features: Vec<String>,
    pub disabled_features: Vec<String>,
    pub docker_prune: Json,
    pub telemetry_cmd: Option<Vec<String>>,
    pub default_trigger_mode: String,
    pub snapshots_disabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_parallel_updates: 3,
            k8s_upsert_timeout_secs: 30,
            suppress_unused_image_warnings: vec![],
            k8s_server_side_apply: "auto".into(),
            // Unset: `stilt ci --timeout` (default 30m) applies unless ci_settings(timeout=…).
            ci_timeout: String::new(),
            ci_readiness_timeout: "5m".into(),
            ci_k8s_grace_period: String::new(),
            k8s_context: String::new(),
            k8s_namespace: String::new(),
            allowed_k8s_contexts: vec![],
            default_registry: None,
            secrets_scrub: true,
            secrets: vec![],
            version_check_updates: true,
            version_constraint: String::new(),
            analytics_enabled: None,
            team_id: String::new(),
            enabled_features: vec![],
            disabled_features: vec![],
            docker_prune: serde_json::json!({"disable": false, "maxAgeMins": 360, "numBuilds": 0, "intervalHrs": 1, "keepRecent": 2}),
            telemetry_cmd: None,
            default_trigger_mode: "auto".into(),
            snapshots_disabled: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DefaultRegistry {
    pub host: String,
    pub host_from_cluster: String,
    pub single_name: String,
}

/// Everything the Tiltfile declared.
#[derive(Debug, Default)]
pub struct State {
    pub config_files: BTreeSet<PathBuf>,
    pub logs: String,
    pub warnings: Vec<String>,
    pub k8s: Vec<K8sEntity>,
    /// (lowercase kind, name, namespace) of every entity in `k8s`, for duplicate detection.
    pub k8s_keys: std::collections::HashSet<(String, String, String)>,
    pub k8s_resource_opts: Vec<K8sResourceOpts>,
    pub k8s_kinds: Vec<K8sKind>,
    pub images: Vec<ImageTarget>,
    pub local_resources: Vec<LocalResource>,
    pub syncbacks: Vec<SyncbackDef>,
    pub custom_deploys: Vec<CustomDeploy>,
    pub dc_projects: Vec<DcProject>,
    pub dc_resource_opts: Vec<DcResourceOpts>,
    pub settings: Settings,
    pub default_registry_set: bool,
    pub default_trigger_mode: TriggerMode,
    /// Global ignores from watch_settings(ignore=…) (base dir, patterns).
    pub watch_ignores: Vec<(PathBuf, Vec<String>)>,
    pub tiltignore: Option<(PathBuf, Vec<String>)>,
    pub config_defs: Vec<ConfigDef>,
    pub config_parsed: Option<Json>,
    pub config_parse_dir: Option<PathBuf>,
    pub enabled_resources: Option<Vec<String>>,
    /// Live-update step ids created but not yet used.
    pub unused_steps: BTreeMap<u64, String>,
    pub next_id: u64,
    pub ext_repos: Vec<ExtRepo>,
    /// (name, repo name, repo path) of extensions `ext://` loaded.
    pub extensions: Vec<(String, String, String)>,
    /// Objects from `v1alpha1.*` constructors (full API objects, JSON).
    pub raw_objects: Vec<Json>,
    pub w2r_set: bool,
    /// `ext://…` load string → the Tiltfile it resolved to (for editors' go-to-definition).
    pub ext_paths: BTreeMap<String, PathBuf>,
}

/// An extension repo the Tiltfile registered (`v1alpha1.extension_repo`) or `ext://` implied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtRepo {
    pub name: String,
    pub url: String,
    pub load_host: String,
    pub r#ref: String,
    pub git_subpath: String,
}
