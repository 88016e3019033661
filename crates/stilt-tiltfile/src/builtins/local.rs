//! local_resource (and its deprecated alias `test`), probe, exec_action, http_get_action,
//! tcp_socket_action.

use anyhow::anyhow;
use anyhow::bail;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::none::NoneType;
use stilt_api::Probe;

use crate::builtins::core::new_obj;
use crate::builtins::core::to_argv;
use crate::builtins::k8s::labels_arg;
use crate::builtins::k8s::links_arg;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::*;
use crate::values::TiltObj;

fn probe_arg(func: &str, v: Option<Value>) -> anyhow::Result<Option<Probe>> {
    let Some(v) = v else { return Ok(None) };
    if v.is_none() {
        return Ok(None);
    }
    let Some(o) = v.downcast_ref::<TiltObj>().filter(|o| o.kind == "probe") else {
        return Err(bad_arg(func, "readiness_probe", "probe", v));
    };
    // `probe` unpacked every timing as i32 and built the handler in API shape.
    let int = |k: &str| {
        o.fields
            .get(k)
            .and_then(|x| x.as_i64())
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(0)
    };
    let handler = o.fields.get("handler").cloned().unwrap_or_default();
    Ok(Some(Probe {
        initial_delay_seconds: int("initial_delay_secs"),
        timeout_seconds: int("timeout_secs"),
        period_seconds: int("period_secs"),
        success_threshold: int("success_threshold"),
        failure_threshold: int("failure_threshold"),
        handler: serde_json::from_value(handler)
            .map_err(|e| anyhow!("{func}: for parameter \"readiness_probe\": {e}"))?,
    }))
}

#[allow(clippy::too_many_arguments)]
fn local_resource_impl<'v>(
    f: &str,
    name: &str,
    cmd: Option<Value<'v>>,
    deps: Option<Value<'v>>,
    trigger_mode: Option<Value<'v>>,
    resource_deps: Option<Value<'v>>,
    ignore: Option<Value<'v>>,
    auto_init: Option<Value<'v>>,
    serve_cmd: Option<Value<'v>>,
    allow_parallel: Option<Value<'v>>,
    links: Option<Value<'v>>,
    labels: Option<Value<'v>>,
    env: Option<Value<'v>>,
    serve_env: Option<Value<'v>>,
    readiness_probe: Option<Value<'v>>,
    dir: Option<Value<'v>>,
    serve_dir: Option<Value<'v>>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<NoneType> {
    let c = ctx(eval);
    let cwd = cur_dir(eval);
    if name.is_empty() {
        bail!("{f}: for parameter \"name\": name cannot be empty");
    }
    let cmd = match cmd {
        Some(v) => to_argv(f, "cmd", v)?,
        None => vec![],
    };
    let serve = match serve_cmd {
        Some(v) => to_argv(f, "serve_cmd", v)?,
        None => vec![],
    };
    if cmd.is_empty() && serve.is_empty() {
        bail!("{f}: local_resource must have a cmd and/or a serve_cmd, but both were empty");
    }
    let d = opt_string(f, "dir", dir)?;
    let sd = opt_string(f, "serve_dir", serve_dir)?;
    if !d.is_empty() && cmd.is_empty() {
        bail!("{f}: dir is only used with cmd, but cmd is empty");
    }
    if !sd.is_empty() && serve.is_empty() {
        bail!("{f}: serve_dir is only used with serve_cmd, but serve_cmd is empty");
    }
    let mut probe = probe_arg(f, readiness_probe)?;
    if probe.is_some() && serve.is_empty() {
        c.warn(format!(
            "{f}: Ignoring readiness probe for local resource {name:?} (no serve_cmd was defined)"
        ));
        probe = None;
    }
    let deps: Vec<std::path::PathBuf> = str_or_list(f, "deps", deps)?
        .iter()
        .map(|p| abs_path(&cwd, p))
        .collect();
    let repo_roots = crate::builtins::core::repo_roots(eval, &deps);
    let lr = LocalResource {
        name: name.to_owned(),
        call_site: crate::eval::call_site(eval),
        cmd,
        serve_cmd: serve,
        deps,
        ignores: str_or_list(f, "ignore", ignore)?,
        trigger_mode: crate::builtins::settings::trigger_mode_arg(f, trigger_mode)?,
        auto_init: opt_bool(f, "auto_init", auto_init, true)?,
        resource_deps: str_or_list(f, "resource_deps", resource_deps)?,
        allow_parallel: opt_bool(f, "allow_parallel", allow_parallel, false)?,
        links: links_arg(f, links)?,
        labels: labels_arg(f, labels)?,
        env: str_dict(f, "env", env)?,
        serve_env: str_dict(f, "serve_env", serve_env)?,
        readiness_probe: probe,
        dir: if d.is_empty() {
            cwd.clone()
        } else {
            abs_path(&cwd, &d)
        },
        serve_dir: if sd.is_empty() {
            cwd.clone()
        } else {
            abs_path(&cwd, &sd)
        },
        tiltfile_dir: cwd,
        repo_roots,
    };
    let mut st = c.st.borrow_mut();
    if st.local_resources.iter().any(|l| l.name == lr.name) {
        bail!(
            "{f}: Local resource {} has been defined multiple times",
            lr.name
        );
    }
    st.local_resources.push(lr);
    Ok(NoneType)
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// A resource that runs commands on this machine: `cmd` to build/update, `serve_cmd` as a long-running server.
    ///
    /// # Arguments
    /// * `name`: the resource name.
    /// * `cmd`: the update command, re-run when a file in `deps` changes.
    /// * `deps`: files and directories that trigger `cmd`.
    /// * `trigger_mode`: `TRIGGER_MODE_AUTO` or `TRIGGER_MODE_MANUAL`.
    /// * `resource_deps`: resources that must be ready first.
    /// * `ignore`: patterns of files in `deps` to ignore.
    /// * `auto_init`: run when Stilt starts (default True).
    /// * `serve_cmd`: a long-running command, restarted after each `cmd` run.
    /// * `allow_parallel`: may run at the same time as other updates.
    /// * `links`: URLs shown with the resource.
    /// * `labels`: labels grouping resources in the UI.
    /// * `env`: extra environment for `cmd`.
    /// * `serve_env`: extra environment for `serve_cmd`.
    /// * `readiness_probe`: a `probe(...)` telling when `serve_cmd` is ready.
    /// * `dir`: working directory of `cmd`.
    /// * `serve_dir`: working directory of `serve_cmd`.
    fn local_resource<'v>(
        name: &str,
        cmd: Option<Value<'v>>,
        deps: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        ignore: Option<Value<'v>>,
        auto_init: Option<Value<'v>>,
        serve_cmd: Option<Value<'v>>,
        cmd_bat: Option<Value<'v>>,
        serve_cmd_bat: Option<Value<'v>>,
        allow_parallel: Option<Value<'v>>,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        env: Option<Value<'v>>,
        serve_env: Option<Value<'v>>,
        readiness_probe: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        serve_dir: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = (cmd_bat, serve_cmd_bat);
        local_resource_impl(
            "local_resource",
            name,
            cmd,
            deps,
            trigger_mode,
            resource_deps,
            ignore,
            auto_init,
            serve_cmd,
            allow_parallel,
            links,
            labels,
            env,
            serve_env,
            readiness_probe,
            dir,
            serve_dir,
            eval,
        )
    }

    /// A `local_resource` for tests (same parameters), labelled as a test.
    fn test<'v>(
        name: &str,
        cmd: Option<Value<'v>>,
        deps: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        ignore: Option<Value<'v>>,
        auto_init: Option<Value<'v>>,
        serve_cmd: Option<Value<'v>>,
        cmd_bat: Option<Value<'v>>,
        serve_cmd_bat: Option<Value<'v>>,
        allow_parallel: Option<Value<'v>>,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        env: Option<Value<'v>>,
        serve_env: Option<Value<'v>>,
        readiness_probe: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        serve_dir: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = (cmd_bat, serve_cmd_bat);
        local_resource_impl(
            "test",
            name,
            cmd,
            deps,
            trigger_mode,
            resource_deps,
            ignore,
            auto_init,
            serve_cmd,
            allow_parallel,
            links,
            labels,
            env,
            serve_env,
            readiness_probe,
            dir,
            serve_dir,
            eval,
        )
    }

    /// A readiness probe for `local_resource(readiness_probe=...)`: one of `exec`, `http_get`, `tcp_socket`, with timings.
    fn probe<'v>(
        initial_delay_secs: Option<Value<'v>>,
        timeout_secs: Option<Value<'v>>,
        period_secs: Option<Value<'v>>,
        success_threshold: Option<Value<'v>>,
        failure_threshold: Option<Value<'v>>,
        exec: Option<Value<'v>>,
        http_get: Option<Value<'v>>,
        tcp_socket: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "probe";
        let mut handler = serde_json::Map::new();
        for (param, kind, key, v) in [
            ("exec", "exec_action", "exec", exec),
            ("http_get", "http_get_action", "httpGet", http_get),
            ("tcp_socket", "tcp_socket_action", "tcpSocket", tcp_socket),
        ] {
            if let Some(v) = v.filter(|v| !v.is_none()) {
                let Some(o) = v.downcast_ref::<TiltObj>().filter(|o| o.kind == kind) else {
                    return Err(bad_arg(f, param, kind, v));
                };
                handler.insert(
                    key.into(),
                    o.fields.get("spec").cloned().unwrap_or_default(),
                );
            }
        }
        if handler.len() != 1 {
            bail!("{f}: exactly one of exec, http_get, or tcp_socket must be specified");
        }
        Ok(new_obj(
            eval,
            "probe",
            serde_json::json!({
                "initial_delay_secs": opt_int(f, "initial_delay_secs", initial_delay_secs, 0)?,
                "timeout_secs": opt_int(f, "timeout_secs", timeout_secs, 1)?,
                "period_secs": opt_int(f, "period_secs", period_secs, 10)?,
                "success_threshold": opt_int(f, "success_threshold", success_threshold, 1)?,
                "failure_threshold": opt_int(f, "failure_threshold", failure_threshold, 3)?,
                "handler": handler,
            }),
        ))
    }

    /// Probe action: ready when this command exits 0.
    fn exec_action<'v>(
        command: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let cmd = str_list("exec_action", "command", Some(command))?;
        if cmd.is_empty() {
            bail!("exec_action: for parameter \"command\": command cannot be empty");
        }
        Ok(new_obj(
            eval,
            "exec_action",
            serde_json::json!({"command": cmd, "spec": {"command": cmd}}),
        ))
    }

    /// Probe action: ready when an HTTP GET answers 2xx/3xx.
    fn http_get_action<'v>(
        port: i32,
        host: Option<Value<'v>>,
        scheme: Option<Value<'v>>,
        path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "http_get_action";
        let host = match opt_string(f, "host", host)? {
            h if h.is_empty() => "localhost".to_owned(),
            h => h,
        };
        let scheme = match opt_string(f, "scheme", scheme)? {
            s if s.is_empty() => "http".to_owned(),
            s => s,
        };
        let path = opt_string(f, "path", path)?;
        let mut spec =
            serde_json::json!({"host": host, "port": port, "scheme": scheme.to_uppercase()});
        if !path.is_empty() {
            spec["path"] = path.clone().into();
        }
        Ok(new_obj(
            eval,
            "http_get_action",
            serde_json::json!({"port": port, "host": host, "scheme": scheme, "path": path, "spec": spec}),
        ))
    }

    /// Probe action: ready when a TCP connection opens.
    fn tcp_socket_action<'v>(
        port: i32,
        host: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let host = match opt_string("tcp_socket_action", "host", host)? {
            h if h.is_empty() => "localhost".to_owned(),
            h => h,
        };
        Ok(new_obj(
            eval,
            "tcp_socket_action",
            serde_json::json!({"port": port, "host": host, "spec": {"host": host, "port": port}}),
        ))
    }
}
