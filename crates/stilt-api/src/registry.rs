//! The registry of kinds: names, short names, table columns, schema and strict decoding.
//!
//! The API server and the CLI are driven by this table; neither has per-kind code.

use crate::validation::{FieldError, Validate, validate_name};
use crate::*;
use serde_json::Value;

/// A column of `kubectl get` output for a kind.
#[derive(Clone, Copy, Debug)]
pub struct TableColumn {
    pub name: &'static str,
    /// `string`, `integer`, `boolean` or `date`.
    pub r#type: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
    pub description: &'static str,
    /// Extracts the cell from the object's JSON.
    pub cell: fn(&Value) -> Value,
}

/// Everything the server and CLI need to know about one kind.
#[derive(Clone, Copy)]
pub struct KindInfo {
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub has_status: bool,
    pub description: &'static str,
    /// Columns after NAME; AGE is always appended by the server.
    pub columns: &'static [TableColumn],
    /// Strictly decodes the object and runs its validation rules.
    pub validate: fn(&Value) -> Result<(), Vec<FieldError>>,
    /// JSON schema of the kind (OpenAPI v3 flavour).
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl std::fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindInfo")
            .field("kind", &self.kind)
            .finish()
    }
}

impl KindInfo {
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether `name` names this kind: plural, singular, short name or kind, any case.
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix(".tilt.dev").unwrap_or(&name);
        let name = name.strip_suffix(".v1alpha1.tilt.dev").unwrap_or(name);
        name == self.plural
            || name == self.singular
            || name == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&name)
    }
}

fn decode_and_validate<T>(value: &Value) -> Result<(), Vec<FieldError>>
where
    T: serde::de::DeserializeOwned + Validate + HasMeta,
{
    let obj: T = serde_json::from_value(value.clone())
        .map_err(|e| vec![FieldError::invalid("", strict_decoding_message(&e))])?;
    let mut errs = validate_name(obj.meta());
    errs.extend(obj.validate());
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn strict_decoding_message(e: &serde_json::Error) -> String {
    format!("strict decoding error: {e}")
}

/// Access to an object's metadata, whatever its kind.
pub trait HasMeta {
    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}

/// A typed kind: what the store's typed accessors need.
pub trait Resource:
    HasMeta + Validate + Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
    const KIND: &'static str;
}

fn path<'a>(v: &'a Value, p: &str) -> &'a Value {
    p.split('.')
        .fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

fn text(v: &Value, p: &str) -> Value {
    match path(v, p) {
        Value::Null => Value::String(String::new()),
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// A number that JSON omits when zero; shown as 0 once the object has a status.
fn number(v: &Value, p: &str) -> Value {
    match path(v, p) {
        Value::Number(n) => Value::Number(n.clone()),
        _ if path(v, "status").is_object() => Value::from(0),
        _ => Value::String(String::new()),
    }
}

fn count(v: &Value, p: &str) -> Value {
    Value::from(path(v, p).as_array().map_or(0, |a| a.len()))
}

/// The state key that is set among `waiting`/`running`/`terminated`/... of a status.
fn state(v: &Value, states: &[&str]) -> Value {
    let status = path(v, "status");
    for s in states {
        if !status.get(*s).is_none_or(Value::is_null) {
            return Value::String(s.to_string());
        }
    }
    Value::String(String::new())
}

macro_rules! col {
    ($name:literal, $ty:literal, $prio:literal, $desc:literal, $f:expr) => {
        TableColumn {
            name: $name,
            r#type: $ty,
            priority: $prio,
            description: $desc,
            cell: $f,
        }
    };
}

macro_rules! kinds {
    ($(
        $kind:ident { plural: $plural:literal, short: [$($short:literal),*], status: $status:literal,
                      desc: $desc:literal, columns: [$($col:expr),* $(,)?] }
    )*) => {
        /// Any object of any Stilt kind.
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum AnyObject {
            $($kind($kind),)*
        }

        $(
            impl HasMeta for $kind {
                fn meta(&self) -> &ObjectMeta { &self.metadata }
                fn meta_mut(&mut self) -> &mut ObjectMeta { &mut self.metadata }
            }

            impl Resource for $kind {
                const KIND: &'static str = stringify!($kind);
            }

            impl From<$kind> for AnyObject {
                fn from(o: $kind) -> Self { AnyObject::$kind(o) }
            }
        )*

        impl AnyObject {
            pub fn kind(&self) -> &'static str {
                match self { $(AnyObject::$kind(_) => stringify!($kind),)* }
            }

            pub fn meta(&self) -> &ObjectMeta {
                match self { $(AnyObject::$kind(o) => &o.metadata,)* }
            }

            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self { $(AnyObject::$kind(o) => &mut o.metadata,)* }
            }

            pub fn name(&self) -> &str {
                &self.meta().name
            }

            /// Decodes an object of any kind from JSON (strict: unknown fields are errors).
            pub fn from_value(value: Value) -> Result<Self, String> {
                let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
                match kind.as_str() {
                    $(stringify!($kind) => serde_json::from_value(value).map(AnyObject::$kind).map_err(|e| e.to_string()),)*
                    other => Err(format!("unknown kind {other:?}")),
                }
            }

            /// [`AnyObject::from_value`] without taking the value.
            pub fn from_value_ref(value: &Value) -> Result<Self, String> {
                use serde::Deserialize as _;
                match value.get("kind").and_then(Value::as_str).unwrap_or_default() {
                    $(stringify!($kind) => $kind::deserialize(value).map(AnyObject::$kind).map_err(|e| e.to_string()),)*
                    other => Err(format!("unknown kind {other:?}")),
                }
            }

            /// The object as JSON, with `apiVersion` and `kind` filled in.
            pub fn to_value(&self) -> Value {
                let mut v = serde_json::to_value(self).expect("API objects always serialize");
                if let Value::Object(m) = &mut v {
                    m.insert("apiVersion".into(), Value::String(crate::API_VERSION.into()));
                    m.insert("kind".into(), Value::String(self.kind().into()));
                }
                v
            }

            pub fn validate(&self) -> Vec<FieldError> {
                let mut errs = validate_name(self.meta());
                errs.extend(match self { $(AnyObject::$kind(o) => o.validate(),)* });
                errs
            }
        }

        static KINDS: &[KindInfo] = &[
            $(KindInfo {
                kind: stringify!($kind),
                plural: $plural,
                singular: const_lower!($kind),
                short_names: &[$($short),*],
                has_status: $status,
                description: $desc,
                columns: &[$($col),*],
                validate: decode_and_validate::<$kind>,
                schema: |g| g.subschema_for::<$kind>(),
            },)*
        ];
    };
}

/// Lower-cases a kind name at compile time (`UIResource` → `uiresource`).
macro_rules! const_lower {
    ($kind:ident) => {{
        const LOWER: &str = {
            const BYTES: [u8; stringify!($kind).len()] = {
                let src = stringify!($kind).as_bytes();
                let mut out = [0u8; stringify!($kind).len()];
                let mut i = 0;
                while i < src.len() {
                    out[i] = src[i].to_ascii_lowercase();
                    i += 1;
                }
                out
            };
            match std::str::from_utf8(&BYTES) {
                Ok(s) => s,
                Err(_) => panic!("kind names are ASCII"),
            }
        };
        LOWER
    }};
}

kinds! {
    Tiltfile { plural: "tiltfiles", short: [], status: true, desc: "A Tiltfile to execute.",
        columns: [
            col!("State", "string", 0, "waiting, running or terminated", |v| state(v, &["waiting", "running", "terminated"])),
            col!("Error", "string", 0, "error of the last execution", |v| text(v, "status.terminated.error")),
            col!("Path", "string", 1, "path of the Tiltfile", |v| text(v, "spec.path")),
        ] }
    Session { plural: "sessions", short: [], status: true, desc: "What this Stilt process runs and whether it is done.",
        columns: [
            col!("Exit Condition", "string", 0, "manual or ci", |v| text(v, "spec.exitCondition")),
            col!("Done", "string", 0, "whether the session is done", |v| text(v, "status.done")),
            col!("Targets", "integer", 0, "number of targets", |v| count(v, "status.targets")),
            col!("Error", "string", 0, "why the session failed", |v| text(v, "status.error")),
        ] }
    FileWatch { plural: "filewatches", short: ["fw"], status: true, desc: "Watched files and the changes seen under them.",
        columns: [
            col!("Paths", "integer", 0, "number of watched paths", |v| count(v, "spec.watchedPaths")),
            col!("Last Event", "string", 0, "time of the last change", |v| text(v, "status.lastEventTime")),
            col!("Error", "string", 0, "watch error", |v| text(v, "status.error")),
            col!("Watched", "string", 1, "watched paths", |v| text(v, "spec.watchedPaths")),
        ] }
    Cmd { plural: "cmds", short: [], status: true, desc: "A process run on the host.",
        columns: [
            col!("State", "string", 0, "waiting, running or terminated", |v| state(v, &["waiting", "running", "terminated"])),
            col!("Ready", "string", 0, "readiness", |v| text(v, "status.ready")),
            col!("PID", "string", 0, "process ID", |v| { let r = text(v, "status.running.pid"); if r == "" { text(v, "status.terminated.pid") } else { r } }),
            col!("Exit Code", "string", 0, "exit code of the last run", |v| text(v, "status.terminated.exitCode")),
            col!("Args", "string", 1, "command", |v| text(v, "spec.args")),
        ] }
    KubernetesApply { plural: "kubernetesapplys", short: ["ka", "kapp"], status: true, desc: "YAML to deploy to a cluster.",
        columns: [
            col!("Last Apply", "string", 0, "time of the last apply", |v| text(v, "status.lastApplyTime")),
            col!("Error", "string", 0, "apply error", |v| text(v, "status.error")),
            col!("Image Maps", "string", 1, "injected images", |v| text(v, "spec.imageMaps")),
        ] }
    KubernetesDiscovery { plural: "kubernetesdiscoveries", short: ["kd", "kdisco"], status: true, desc: "Finds the pods of applied objects.",
        columns: [
            col!("Pods", "integer", 0, "number of pods found", |v| count(v, "status.pods")),
        ] }
    PortForward { plural: "portforwards", short: ["pf"], status: true, desc: "Forwards local ports to a pod.",
        columns: [
            col!("Pod", "string", 0, "pod name", |v| text(v, "spec.podName")),
            col!("Forwards", "integer", 0, "number of forwards", |v| count(v, "spec.forwards")),
        ] }
    PodLogStream { plural: "podlogstreams", short: ["pls"], status: true, desc: "Streams a pod's logs.",
        columns: [
            col!("Pod", "string", 0, "pod name", |v| text(v, "spec.pod")),
            col!("Error", "string", 0, "stream error", |v| text(v, "status.error")),
        ] }
    LiveUpdate { plural: "liveupdates", short: ["lu"], status: true, desc: "Syncs file changes into running containers.",
        columns: [
            col!("Containers", "integer", 0, "containers being updated", |v| count(v, "status.containers")),
            col!("Failed", "string", 0, "failure reason", |v| text(v, "status.failed.reason")),
            col!("Base Path", "string", 1, "local base path", |v| text(v, "spec.basePath")),
        ] }
    ImageMap { plural: "imagemaps", short: ["im"], status: true, desc: "Maps an image reference to the built image.",
        columns: [
            col!("Selector", "string", 0, "image reference replaced", |v| text(v, "spec.selector")),
            col!("Image", "string", 0, "built image", |v| text(v, "status.image")),
        ] }
    DockerImage { plural: "dockerimages", short: ["di"], status: true, desc: "An image built with the Docker engine.",
        columns: [
            col!("Ref", "string", 0, "image reference", |v| text(v, "spec.ref")),
            col!("State", "string", 0, "waiting, building or completed", |v| state(v, &["waiting", "building", "completed"])),
            col!("Error", "string", 0, "build error", |v| text(v, "status.completed.error")),
        ] }
    CmdImage { plural: "cmdimages", short: ["ci"], status: true, desc: "An image built by a custom command.",
        columns: [
            col!("Ref", "string", 0, "image reference", |v| text(v, "spec.ref")),
            col!("State", "string", 0, "waiting, building or completed", |v| state(v, &["waiting", "building", "completed"])),
        ] }
    DockerComposeService { plural: "dockercomposeservices", short: ["dc", "dcs"], status: true, desc: "A Docker Compose service.",
        columns: [
            col!("Service", "string", 0, "service name", |v| text(v, "spec.service")),
            col!("Container", "string", 0, "container state", |v| text(v, "status.containerState.status")),
            col!("Error", "string", 0, "apply error", |v| text(v, "status.applyError")),
        ] }
    DockerComposeLogStream { plural: "dockercomposelogstreams", short: ["dclog", "dcls"], status: true, desc: "Streams a compose service's logs.",
        columns: [ col!("Service", "string", 0, "service name", |v| text(v, "spec.service")) ] }
    ConfigMap { plural: "configmaps", short: ["cm"], status: false, desc: "String key/value data.",
        columns: [ col!("Data", "string", 0, "data", |v| text(v, "data")) ] }
    Extension { plural: "extensions", short: ["ext"], status: true, desc: "An extension loaded from a repo.",
        columns: [
            col!("Repo", "string", 0, "repo name", |v| text(v, "spec.repoName")),
            col!("Path", "string", 0, "loaded file", |v| text(v, "status.path")),
        ] }
    ExtensionRepo { plural: "extensionrepos", short: ["repo", "extrepo"], status: true, desc: "A repository of extensions.",
        columns: [
            col!("URL", "string", 0, "repository URL", |v| text(v, "spec.url")),
            col!("Path", "string", 0, "local checkout", |v| text(v, "status.path")),
        ] }
    Cluster { plural: "clusters", short: [], status: true, desc: "A cluster Stilt deploys to.",
        columns: [
            col!("Arch", "string", 0, "architecture", |v| text(v, "status.arch")),
            col!("Version", "string", 0, "server version", |v| text(v, "status.version")),
            col!("Error", "string", 0, "connection error", |v| text(v, "status.error")),
        ] }
    UIResource { plural: "uiresources", short: ["uir"], status: true, desc: "A resource as shown in the UIs.",
        columns: [
            col!("Update", "string", 0, "update status", |v| text(v, "status.updateStatus")),
            col!("Runtime", "string", 0, "runtime status", |v| text(v, "status.runtimeStatus")),
            col!("Disabled", "string", 0, "disable state", |v| text(v, "status.disableStatus.state")),
            col!("Last Deploy", "string", 1, "time of the last deploy", |v| text(v, "status.lastDeployTime")),
        ] }
    UISession { plural: "uisessions", short: [], status: true, desc: "Global session state for the UIs.",
        columns: [ col!("Fatal Error", "string", 0, "fatal error", |v| text(v, "status.fatalError")) ] }
    UIButton { plural: "uibuttons", short: ["uib"], status: true, desc: "A button in the UI.",
        columns: [
            col!("Text", "string", 0, "label", |v| text(v, "spec.text")),
            col!("Location", "string", 0, "component", |v| text(v, "spec.location.componentID")),
            col!("Last Clicked", "string", 0, "time of the last click", |v| text(v, "status.lastClickedAt")),
        ] }
    Syncback { plural: "syncbacks", short: ["sb"], status: true, desc: "Copies files from a running container back to the local tree.",
        columns: [
            col!("Source", "string", 0, "pod or container read", |v| text(v, "status.lastRun.pod")),
            col!("Copied", "integer", 0, "files copied by the last run", |v| number(v, "status.lastRun.filesCopied")),
            col!("Deleted", "integer", 0, "files deleted by the last run", |v| number(v, "status.lastRun.filesDeleted")),
            col!("Bytes", "integer", 1, "bytes transferred by the last run", |v| number(v, "status.lastRun.bytesTransferred")),
            col!("Error", "string", 0, "error of the last run", |v| text(v, "status.lastRun.error")),
            col!("Target", "string", 1, "local directory", |v| text(v, "spec.targetDir")),
        ] }
    ToggleButton { plural: "togglebuttons", short: ["tb"], status: true, desc: "A two-state button backed by a ConfigMap.",
        columns: [ col!("Location", "string", 0, "component", |v| text(v, "spec.location.componentID")) ] }
}

/// Every kind, in a stable order.
pub fn kinds() -> &'static [KindInfo] {
    KINDS
}

/// Finds a kind by plural, singular, short name or kind name (any case).
pub fn kind_by_name(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.answers_to(name))
}
