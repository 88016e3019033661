//! The tools `stilt mcp` offers: their names, descriptions and input schemas, and what each
//! does against the running Stilt. Read-only tools are always offered; the ones that change
//! the running Stilt (trigger, enable, disable) only with `--allow-mutations`.

use super::{api, failure, logwin, secrets, summary, wait};
use crate::client::Client;
use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    pub mutating: bool,
    pub schema: fn() -> Value,
}

fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

const RESOURCE: &str = "Resource name, as listed by list_resources (e.g. `web`, `(Tiltfile)`).";

pub const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "list_resources",
        description: "List the resources of the running Stilt (Tilt-compatible dev loop) with their status: combined status (ok, updating, pending, error, disabled, idle), kind, update and runtime status, the last update's timing and error, pending file changes.",
        mutating: false,
        schema: || {
            object_schema(
                json!({"resource": {"type": "string", "description": "Only this resource."}}),
                &[],
            )
        },
    },
    ToolDef {
        name: "read_logs",
        description: "Read a resource's log: the last lines (default 50, at most 500), optionally only the lines matching a search (substring, or a regular expression with regex=true). Registered secrets appear as [redacted secret NAME].",
        mutating: false,
        schema: || {
            object_schema(
                json!({
                    "resource": {"type": "string", "description": RESOURCE},
                    "tail": {"type": "integer", "description": "How many of the newest (matching) lines to return: default 50, at most 500."},
                    "search": {"type": "string", "description": "Only lines containing this text (or matching it, with regex=true)."},
                    "regex": {"type": "boolean", "description": "Treat search as a regular expression (Rust regex syntax)."},
                    "ignore_case": {"type": "boolean", "description": "Case-insensitive search (default true)."},
                    "level": {"type": "string", "enum": ["warn", "error"], "description": "Only lines of this level."}
                }),
                &["resource"],
            )
        },
    },
    ToolDef {
        name: "get_object",
        description: "Read any API object of the running Stilt (kinds as in `stilt api-resources`: uiresource, cmd, filewatch, kubernetesapply, dockercomposeservice, liveupdate, session, …) as YAML or JSON.",
        mutating: false,
        schema: || {
            object_schema(
                json!({
                    "kind": {"type": "string", "description": "Kind: plural, singular, short name or Kind (e.g. `cmd`, `uiresources`, `KubernetesApply`)."},
                    "name": {"type": "string", "description": "Object name (e.g. `web:serve` for a Cmd)."},
                    "format": {"type": "string", "enum": ["yaml", "json"], "description": "Default yaml."}
                }),
                &["kind", "name"],
            )
        },
    },
    ToolDef {
        name: "wait_for_resource",
        description: "Call right after an edit (or a trigger): waits until the edit's update (the one running now, else the next one to start) has finished and the resource is healthy or failed. If no update comes while the resource sits settled for a few seconds (it already finished, or the edit does not affect this resource), returns the current state with fresh=false. Returns outcome (healthy, failed, disabled, idle or timeout), fresh, and the resource's status.",
        mutating: false,
        schema: || {
            object_schema(
                json!({
                    "resource": {"type": "string", "description": RESOURCE},
                    "timeout_seconds": {"type": "integer", "description": "Give up after this long: default 60, at most 600."},
                    "lookback_seconds": {"type": "integer", "description": "Also count an update that started up to this long before the call (default 0)."}
                }),
                &["resource"],
            )
        },
    },
    ToolDef {
        name: "explain_failure",
        description: "Explain a resource's last failure: the log lines around the first error of the last failed update, the update's error, duration and stage timings, and the recent update history. For a resource whose update succeeded but whose server or pod fails, the newest runtime log lines with the current run's first error.",
        mutating: false,
        schema: || {
            object_schema(
                json!({"resource": {"type": "string", "description": RESOURCE}}),
                &["resource"],
            )
        },
    },
    ToolDef {
        name: "trigger_resource",
        description: "Queue an update of a resource now (as `stilt trigger`), e.g. a manual resource or to re-run tests. Follow with wait_for_resource.",
        mutating: true,
        schema: || {
            object_schema(
                json!({"resource": {"type": "string", "description": RESOURCE}}),
                &["resource"],
            )
        },
    },
    ToolDef {
        name: "enable_resource",
        description: "Enable a disabled resource (and what it depends on), as `stilt enable`.",
        mutating: true,
        schema: || {
            object_schema(
                json!({"resource": {"type": "string", "description": RESOURCE}}),
                &["resource"],
            )
        },
    },
    ToolDef {
        name: "disable_resource",
        description: "Disable a resource: stop what it runs, as `stilt disable`.",
        mutating: true,
        schema: || {
            object_schema(
                json!({"resource": {"type": "string", "description": RESOURCE}}),
                &["resource"],
            )
        },
    },
];

/// The tools offered: read-only ones, plus the mutating ones when allowed.
pub fn offered(allow_mutations: bool) -> impl Iterator<Item = &'static ToolDef> {
    TOOLS.iter().filter(move |t| allow_mutations || !t.mutating)
}

/// What a tool answers: text for the agent, and the same as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub text: String,
    pub structured: Option<Value>,
}

impl Answer {
    fn json(v: Value) -> Self {
        Self {
            text: serde_json::to_string_pretty(&v).unwrap_or_default(),
            structured: Some(v),
        }
    }
}

/// Why a call was not run at all (a protocol error, unlike a tool that ran and failed).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Unknown(String),
    NotAllowed(String),
}

/// Looks a call up: the tool, or why it is refused.
pub fn admit(name: &str, allow_mutations: bool) -> Result<&'static ToolDef, Refusal> {
    match TOOLS.iter().find(|t| t.name == name) {
        None => Err(Refusal::Unknown(format!("unknown tool {name:?}"))),
        Some(t) if t.mutating && !allow_mutations => Err(Refusal::NotAllowed(format!(
            "tool {name:?} changes the running Stilt and is refused: this server is read-only (start it as `stilt mcp --allow-mutations` to allow it)"
        ))),
        Some(t) => Ok(t),
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match args.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => bail!("argument {key:?} must be a non-empty string"),
        None => bail!("missing argument {key:?}"),
    }
}

fn opt_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => bail!("argument {key:?} must be a string"),
    }
}

fn opt_int(args: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| anyhow!("argument {key:?} must be an integer")),
    }
}

fn opt_bool(args: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => bail!("argument {key:?} must be true or false"),
    }
}

/// Runs an admitted tool (blocking: it talks to the API with the CLI's client).
pub fn run(tool: &ToolDef, args: &Map<String, Value>) -> Result<Answer> {
    // A new client per call: a `stilt up` restarted since `stilt mcp` started (new port, new
    // token) is found again.
    let client = Client::from_home()?;
    match tool.name {
        "list_resources" => list_resources(&client, args),
        "read_logs" => read_logs(&client, args),
        "get_object" => get_object(&client, args),
        "wait_for_resource" => wait_for_resource(&client, args),
        "explain_failure" => explain_failure(&client, args),
        "trigger_resource" => {
            let r = str_arg(args, "resource")?.to_string();
            crate::control::trigger_with(&client, std::slice::from_ref(&r))?;
            Ok(Answer::json(
                json!({"triggered": r, "next": "call wait_for_resource to see the result"}),
            ))
        }
        "enable_resource" | "disable_resource" => {
            let disable = tool.name == "disable_resource";
            let a = crate::args::ToggleArgs {
                resources: vec![str_arg(args, "resource")?.to_string()],
                all: false,
                labels: vec![],
                only: false,
            };
            let written = crate::control::toggle_with(&client, &a, disable)?;
            settle_toggles(&client, &written)?;
            let changed: Vec<Value> = written
                .into_iter()
                .map(|(name, disabled)| json!({"resource": name, "disabled": disabled}))
                .collect();
            Ok(Answer::json(json!({"changed": changed})))
        }
        other => bail!("tool {other:?} has no implementation"),
    }
}

fn list_resources(client: &Client, args: &Map<String, Value>) -> Result<Answer> {
    let resources = match opt_str(args, "resource")? {
        Some(name) => vec![api::uiresource(client, name)?],
        None => api::uiresources(client)?,
    };
    let summaries = summary::summarize_all(resources);
    Ok(Answer::json(json!({"resources": summaries})))
}

fn read_logs(client: &Client, args: &Map<String, Value>) -> Result<Answer> {
    let resource = str_arg(args, "resource")?;
    api::uiresource(client, resource)?;
    let cap = logwin::clamp_count(
        opt_int(args, "tail")?,
        logwin::DEFAULT_TAIL,
        logwin::MAX_LINES,
    );
    let matcher = logwin::Matcher::new(
        opt_str(args, "search")?,
        opt_bool(args, "regex")?.unwrap_or(false),
        opt_bool(args, "ignore_case")?.unwrap_or(true),
    )
    .map_err(|e| anyhow!(e))?;
    let level = opt_str(args, "level")?;
    let mut tail = logwin::Tail::new(cap, matcher);
    api::read_logs(client, resource, level, |l| {
        tail.push(l);
        true
    })?;
    let lines: Vec<String> = tail.lines.iter().map(|l| l.render()).collect();
    Ok(Answer::json(json!({
        "resource": resource,
        "matched": tail.matched,
        "shown": lines.len(),
        "truncated": tail.matched > lines.len(),
        "lines": lines,
    })))
}

fn get_object(client: &Client, args: &Map<String, Value>) -> Result<Answer> {
    let kind = str_arg(args, "kind")?;
    let name = str_arg(args, "name")?;
    let obj = secrets::redact_object(api::object(client, kind, name)?);
    match opt_str(args, "format")?.unwrap_or("yaml") {
        "json" => Ok(Answer::json(obj)),
        "yaml" => Ok(Answer {
            text: crate::yaml::to_string(&obj),
            structured: None,
        }),
        other => bail!("format {other:?}: use \"yaml\" or \"json\""),
    }
}

/// How long a settled resource must stay without a new update before the current state is
/// the answer (the file watcher reports an edit as pending changes well within this).
const QUIET: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(250);

/// Waits (a few seconds at most) until each toggled resource's status says what was written:
/// the disable ConfigMap is read by a reconciler, and an agent's next call (a wait) must not
/// see the state from before the toggle.
fn settle_toggles(client: &Client, written: &[(String, bool)]) -> Result<()> {
    let deadline = Instant::now() + TOGGLE_SETTLE;
    for (name, disabled) in written {
        while summary::is_disabled(&api::uiresource(client, name)?) != *disabled
            && Instant::now() < deadline
        {
            std::thread::sleep(TOGGLE_POLL);
        }
    }
    Ok(())
}

const TOGGLE_SETTLE: Duration = Duration::from_secs(5);
const TOGGLE_POLL: Duration = Duration::from_millis(20);

fn wait_for_resource(client: &Client, args: &Map<String, Value>) -> Result<Answer> {
    let resource = str_arg(args, "resource")?;
    let timeout =
        Duration::from_secs(logwin::clamp_count(opt_int(args, "timeout_seconds")?, 60, 600) as u64);
    let lookback = opt_int(args, "lookback_seconds")?
        .unwrap_or(0)
        .clamp(0, 3600);
    let started = Instant::now();
    let now = chrono::Utc::now();
    let mut ui = api::uiresource(client, resource)?;
    let since = wait::since(&ui, now, chrono::Duration::seconds(lookback));
    let quiet_until = now + chrono::Duration::from_std(QUIET)?;
    let mut confirm = wait::Confirm::default();
    loop {
        let decision = wait::decide(&ui, since, chrono::Utc::now(), quiet_until);
        let waited_ms = started.elapsed().as_millis() as u64;
        let answer = |outcome: Value, fresh: bool| {
            Answer::json(json!({
                "outcome": outcome,
                "fresh": fresh,
                "waitedMs": waited_ms,
                "resource": summary::summarize(&ui),
            }))
        };
        if let Some((outcome, fresh)) = confirm.answer(decision, Instant::now()) {
            return Ok(answer(json!(outcome), fresh));
        }
        if started.elapsed() >= timeout {
            return Ok(answer(json!("timeout"), false));
        }
        std::thread::sleep(POLL);
        ui = api::uiresource(client, resource)?;
    }
}

fn explain_failure(client: &Client, args: &Map<String, Value>) -> Result<Answer> {
    let resource = str_arg(args, "resource")?;
    let ui = api::uiresource(client, resource)?;
    let target = failure::target(&ui);
    let window = match &target {
        failure::Target::Update { span } => {
            let mut w = logwin::ErrorWindow::new(span, failure::BEFORE, failure::AFTER);
            api::read_logs(client, resource, None, |l| w.push(l))?;
            Some(w.finish())
        }
        failure::Target::Runtime => {
            let mut tail =
                logwin::Tail::new(failure::BEFORE + failure::AFTER + 1, logwin::Matcher::All);
            api::read_logs(client, resource, None, |l| {
                if !l.is_build() {
                    tail.push(l);
                }
                true
            })?;
            Some(logwin::runtime_window(tail.lines.into()))
        }
        failure::Target::None => None,
    };
    let e = failure::explain(&ui, &target, window);
    Ok(Answer::json(serde_json::to_value(e)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutating_tools_are_offered_and_admitted_only_when_allowed() {
        let names = |allow| offered(allow).map(|t| t.name).collect::<Vec<_>>();
        let read_only = names(false);
        for t in ["trigger_resource", "enable_resource", "disable_resource"] {
            assert!(!read_only.contains(&t), "{t} offered read-only");
            assert!(names(true).contains(&t), "{t} not offered with the flag");
            assert!(matches!(admit(t, false), Err(Refusal::NotAllowed(_))));
            assert!(admit(t, true).is_ok());
        }
        for t in [
            "list_resources",
            "read_logs",
            "get_object",
            "wait_for_resource",
            "explain_failure",
        ] {
            assert!(read_only.contains(&t), "{t} missing");
            assert!(admit(t, false).is_ok());
        }
        assert!(matches!(admit("rm_rf", true), Err(Refusal::Unknown(_))));
    }

    #[test]
    fn every_schema_is_an_object_whose_required_fields_are_properties() {
        for t in TOOLS {
            let s = (t.schema)();
            assert_eq!(s["type"], "object", "{}", t.name);
            for r in s["required"].as_array().unwrap() {
                assert!(
                    s["properties"].get(r.as_str().unwrap()).is_some(),
                    "{}: required {r} is not a property",
                    t.name
                );
            }
        }
    }

    #[test]
    fn arguments_are_checked() {
        let args: Map<String, Value> =
            serde_json::from_value(json!({"resource": "web", "tail": 5, "regex": "yes", "n": ""}))
                .unwrap();
        assert_eq!(str_arg(&args, "resource").unwrap(), "web");
        assert_eq!(opt_int(&args, "tail").unwrap(), Some(5));
        assert!(opt_bool(&args, "regex").is_err());
        assert!(str_arg(&args, "n").is_err());
        assert!(str_arg(&args, "missing").is_err());
        assert_eq!(opt_str(&args, "missing").unwrap(), None);
    }
}
