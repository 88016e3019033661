//! Language-level and file/encoding builtins: fail, exit, warn, include, load_dynamic, local,
//! read_*/decode_*/encode_*, blob, listdir, watch_file, link, shlex.quote.

use std::path::Path;
use std::path::PathBuf;

use anyhow::anyhow;
use anyhow::bail;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::dict::AllocDict;
use starlark::values::none::NoneType;

use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::eval::exec_file;
use crate::host::HostCommand;
use crate::values::Blob;
use crate::values::TiltObj;

/// Read a file through the host and record it as a config file.
pub(crate) fn read_watched(
    eval: &Evaluator,
    func: &str,
    path: &Path,
) -> anyhow::Result<Option<String>> {
    let c = ctx(eval);
    c.add_config_file(path);
    match c.host.read_file(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{func}: error reading {}: {e}", path.display())),
    }
}

/// The git repositories (directories with a `.git`) containing `paths`, nearest first, deduplicated.
pub(crate) fn repo_roots(eval: &Evaluator, paths: &[PathBuf]) -> Vec<PathBuf> {
    let c = ctx(eval);
    let mut out: Vec<PathBuf> = vec![];
    for p in paths {
        let mut cur = Some(p.as_path());
        while let Some(d) = cur {
            let is_repo = *c
                .git_dirs
                .borrow_mut()
                .entry(d.to_path_buf())
                .or_insert_with(|| c.host.exists(&d.join(".git")));
            if is_repo {
                if !out.iter().any(|o| o == d) {
                    out.push(d.to_path_buf());
                }
                break;
            }
            cur = d.parent();
        }
    }
    out
}

/// Shell command or argv list ⇒ argv.
pub(crate) fn to_argv(func: &str, param: &str, v: Value) -> anyhow::Result<Vec<String>> {
    if v.is_none() {
        return Ok(vec![]);
    }
    if let Some(s) = v.unpack_str() {
        if s.is_empty() {
            return Ok(vec![]);
        }
        return Ok(vec!["sh".into(), "-c".into(), s.to_owned()]);
    }
    if let Some(b) = v.downcast_ref::<Blob>() {
        return Ok(vec!["sh".into(), "-c".into(), b.0.clone()]);
    }
    str_list(func, param, Some(v))
}

pub(crate) fn argv_display(argv: &[String]) -> String {
    if argv.len() == 3 && argv[0] == "sh" && argv[1] == "-c" {
        argv[2].clone()
    } else {
        argv.join(" ")
    }
}

thread_local! {
    /// The web port of the load running on this thread (`TILT_PORT` for `local()`).
    static WEB_PORT: std::cell::Cell<u16> = const { std::cell::Cell::new(10350) };
}

/// Set by `load` before evaluation (a load runs on one thread).
pub(crate) fn set_web_port(port: u16) {
    WEB_PORT.with(|p| p.set(port));
}

/// Run a load-time command (local(), helm, kustomize) and return stdout.
pub(crate) fn run_local(
    eval: &Evaluator,
    argv: Vec<String>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    quiet: bool,
    echo_off: bool,
) -> anyhow::Result<String> {
    let c = ctx(eval);
    let disp = argv_display(&argv);
    if !echo_off {
        c.log(&format!("local: {disp}"));
    }
    let mut full_env = c.env_overrides();
    full_env.push(("TILT_PORT".into(), WEB_PORT.with(|p| p.get()).to_string()));
    full_env.push(("TILT_HOST".into(), c.req.web_host.clone()));
    full_env.push(("TILT_DISABLE_ANALYTICS".into(), "1".into()));
    full_env.extend(env);
    let cmd = HostCommand {
        argv: argv.clone(),
        dir,
        env: full_env,
        stdin,
    };
    let out = c
        .host
        .run(&cmd)
        .map_err(|e| anyhow!("command \"{disp}\" failed.\nerror: {e}"))?;
    if !quiet {
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            c.log(&format!(" → {line}"));
        }
    }
    if out.status != 0 {
        let mut msg = format!(
            "command \"{disp}\" failed.\nerror: exit status {}",
            out.status
        );
        if !out.stdout.is_empty() {
            msg.push_str(&format!("\nstdout:\n{}", out.stdout.trim_end()));
        }
        if !out.stderr.is_empty() {
            msg.push_str(&format!("\nstderr:\n{}", out.stderr.trim_end()));
        }
        bail!(msg);
    }
    Ok(out.stdout)
}

/// A required parameter that Tilt's docs and Go code name differently (`paths` vs `file_path`).
fn alias<'v>(
    func: &str,
    param: &str,
    v: Option<Value<'v>>,
    doc_name: Option<Value<'v>>,
) -> anyhow::Result<Value<'v>> {
    match (v, doc_name) {
        (Some(_), Some(_)) => bail!("{func}: got both {param} and its alias; pass one"),
        (Some(v), None) | (None, Some(v)) => Ok(v),
        (None, None) => bail!("{func}: missing required argument {param}"),
    }
}

fn path_arg(eval: &Evaluator, func: &str, param: &str, v: Value) -> anyhow::Result<PathBuf> {
    let s = string(func, param, v)?;
    Ok(abs_path(&cur_dir(eval), &s))
}

fn read_or_default<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    func: &str,
    paths: Value<'v>,
    default: Option<Value<'v>>,
) -> anyhow::Result<Result<String, Value<'v>>> {
    let p = path_arg(eval, func, "paths", paths)?;
    match read_watched(eval, func, &p)? {
        Some(s) => Ok(Ok(s)),
        None => match default {
            Some(d) => Ok(Err(d)),
            None => bail!(
                "{func}: file not found: {} (pass default= to allow a missing file)",
                p.display()
            ),
        },
    }
}

pub(crate) fn new_obj<'v>(
    eval: &Evaluator<'v, '_, '_>,
    kind: &'static str,
    fields: serde_json::Value,
) -> Value<'v> {
    let serde_json::Value::Object(m) = fields else {
        unreachable!()
    };
    eval.heap().alloc(TiltObj::new(kind, m))
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// As Starlark's `type()`, with Tilt's names for live-update steps.
    fn r#type<'v>(#[starlark(require = pos)] a: Value<'v>) -> anyhow::Result<String> {
        let step = a
            .downcast_ref::<crate::values::TiltObj>()
            .and_then(|o| o.step_type());
        Ok(step.unwrap_or(a.get_type()).to_owned())
    }

    /// Stops the Tiltfile with an error message.
    fn fail(msg: Value) -> anyhow::Result<NoneType> {
        let m = msg
            .unpack_str()
            .map(str::to_owned)
            .unwrap_or_else(|| msg.to_str());
        Err(anyhow!("{m}"))
    }

    /// Stops the Tiltfile successfully here (what was declared so far is kept).
    fn exit<'v>(
        code: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        if let Some(c) = code
            && !c.is_none()
        {
            ctx(eval).log(&c.to_str());
        }
        Err(anyhow!("{}", crate::eval::STOP_MARKER))
    }

    /// Logs a warning in the Tiltfile log.
    fn warn<'v>(msg: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let m = string("warn", "msg", msg)?;
        ctx(eval).warn(m);
        Ok(NoneType)
    }

    /// Runs another Tiltfile (path relative to this one) as if its contents were here; its changes reload.
    fn include<'v>(
        path: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<NoneType> {
        let c = ctx(eval);
        let s = string("include", "path", path)?;
        let p = crate::eval::resolve_load_path(c, &cur_dir(eval), &s)?;
        exec_file(c, &p, false)?;
        Ok(NoneType)
    }

    /// Loads a Tiltfile chosen at run time and returns its globals as a dict.
    fn load_dynamic<'v>(
        path: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let c = ctx(eval);
        let s = string("load_dynamic", "path", path)?;
        let p = crate::eval::resolve_load_path(c, &cur_dir(eval), &s)?;
        let m = exec_file(c, &p, false)?;
        let heap = eval.heap();
        let mut items = vec![];
        for name in m.names() {
            let n = name.as_str();
            if n.starts_with('_') {
                continue;
            }
            if let Ok(v) = m.get(n) {
                // SAFETY: the reference added to this module's frozen heap keeps `v`'s heap alive for
                // as long as the module's values live.
                let fv = unsafe { v.owned_frozen_value(eval.frozen_heap()) };
                items.push((heap.alloc(n), fv.to_value()));
            }
        }
        Ok(heap.alloc(AllocDict(items)))
    }

    /// Runs a command when the Tiltfile loads and returns its stdout as a blob (fails when it exits non-zero).
    ///
    /// # Arguments
    /// * `command`: a shell string or an argv list.
    /// * `quiet`: do not log the output.
    /// * `command_bat`: the command on Windows.
    /// * `echo_off`: do not log the command.
    /// * `env`: extra environment.
    /// * `dir`: working directory (default: this Tiltfile's directory).
    /// * `stdin`: text fed to the command.
    fn local<'v>(
        command: Value<'v>,
        quiet: Option<Value<'v>>,
        command_bat: Option<Value<'v>>,
        echo_off: Option<Value<'v>>,
        env: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        stdin: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = command_bat;
        let argv = to_argv("local", "command", command)?;
        if argv.is_empty() {
            bail!("local: for parameter \"command\": empty command");
        }
        let quiet = opt_bool("local", "quiet", quiet, false)?;
        let echo_off = opt_bool("local", "echo_off", echo_off, false)?;
        let env = str_dict("local", "env", env)?;
        let d = opt_string("local", "dir", dir)?;
        let dir = if d.is_empty() {
            cur_dir(eval)
        } else {
            abs_path(&cur_dir(eval), &d)
        };
        let stdin = match stdin {
            Some(v) if !v.is_none() => Some(string("local", "stdin", v)?),
            _ => None,
        };
        let out = run_local(eval, argv, dir, env, stdin, quiet, echo_off)?;
        Ok(eval.heap().alloc(Blob(out)))
    }

    /// Returns a file's contents as a blob, and reloads the Tiltfile when it changes.
    ///
    /// # Arguments
    /// * `paths`: the file (relative to this Tiltfile).
    /// * `default`: returned when the file does not exist (else it is an error).
    fn read_file<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] file_path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let paths = alias("read_file", "paths", paths, file_path)?;
        match read_or_default(eval, "read_file", paths, default)? {
            Ok(s) => Ok(eval.heap().alloc(Blob(s))),
            Err(d) => Ok(match d.unpack_str() {
                Some(s) => eval.heap().alloc(Blob(s.to_owned())),
                None => d,
            }),
        }
    }

    /// Reads a JSON file and returns its value; the Tiltfile reloads when it changes.
    fn read_json<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] file_path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let paths = alias("read_json", "paths", paths, file_path)?;
        match read_or_default(eval, "read_json", paths, default)? {
            Ok(s) => {
                let j: serde_json::Value = serde_json::from_str(&s)
                    .map_err(|e| anyhow!("read_json: error parsing JSON: {e}"))?;
                Ok(json_to_value(&j, eval.heap()))
            }
            Err(d) => Ok(d),
        }
    }

    /// Reads a YAML file and returns its value; the Tiltfile reloads when it changes.
    fn read_yaml<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] file_path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let paths = alias("read_yaml", "paths", paths, file_path)?;
        match read_or_default(eval, "read_yaml", paths, default)? {
            Ok(s) => {
                let j = crate::yaml::parse_one(&s)
                    .map_err(|e| anyhow!("read_yaml: error parsing YAML: {e}"))?;
                Ok(json_to_value(&j, eval.heap()))
            }
            Err(d) => Ok(d),
        }
    }

    /// Reads a multi-document YAML file and returns a list of documents; the Tiltfile reloads when it changes.
    fn read_yaml_stream<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] file_path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let paths = alias("read_yaml_stream", "paths", paths, file_path)?;
        match read_or_default(eval, "read_yaml_stream", paths, default)? {
            Ok(s) => {
                let j = crate::yaml::parse_stream(&s)
                    .map_err(|e| anyhow!("read_yaml_stream: error parsing YAML: {e}"))?;
                Ok(json_to_value(&serde_json::Value::Array(j), eval.heap()))
            }
            Err(d) => Ok(d),
        }
    }

    /// Parses a JSON string (or blob) into a value.
    fn decode_json<'v>(
        json: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let s = string("decode_json", "json", json)?;
        let j: serde_json::Value = serde_json::from_str(&s)
            .map_err(|e| anyhow!("decode_json: error parsing JSON: {e}"))?;
        Ok(json_to_value(&j, eval.heap()))
    }

    /// Parses a YAML string (or blob) into a value.
    fn decode_yaml<'v>(
        yaml: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let s = string("decode_yaml", "yaml", yaml)?;
        let j = crate::yaml::parse_one(&s)
            .map_err(|e| anyhow!("decode_yaml: error parsing YAML: {e}"))?;
        Ok(json_to_value(&j, eval.heap()))
    }

    /// Parses a multi-document YAML string (or blob) into a list of values.
    fn decode_yaml_stream<'v>(
        yaml: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let s = string("decode_yaml_stream", "yaml", yaml)?;
        let j = crate::yaml::parse_stream(&s)
            .map_err(|e| anyhow!("decode_yaml_stream: error parsing YAML: {e}"))?;
        Ok(json_to_value(&serde_json::Value::Array(j), eval.heap()))
    }

    /// Serializes a value as JSON (a blob).
    fn encode_json<'v>(
        obj: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let j = value_to_json(obj).map_err(|e| anyhow!("encode_json: {e}"))?;
        let mut s = serde_json::to_string_pretty(&j)?;
        s.push('\n');
        Ok(eval.heap().alloc(Blob(s)))
    }

    /// Serializes a value as YAML (a blob).
    fn encode_yaml<'v>(
        obj: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let j = value_to_json(obj).map_err(|e| anyhow!("encode_yaml: {e}"))?;
        Ok(eval.heap().alloc(Blob(crate::yaml::encode(&j)?)))
    }

    /// Serializes a list of values as multi-document YAML (a blob).
    fn encode_yaml_stream<'v>(
        objs: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let items = seq(objs).ok_or_else(|| bad_arg("encode_yaml_stream", "objs", "list", objs))?;
        let js = items
            .into_iter()
            .map(value_to_json)
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| anyhow!("encode_yaml_stream: {e}"))?;
        Ok(eval.heap().alloc(Blob(crate::yaml::encode_stream(&js)?)))
    }

    /// Wraps a string as a blob (what `k8s_yaml` and friends accept as inline YAML).
    fn blob<'v>(input: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let s = string("blob", "input", input)?;
        Ok(eval.heap().alloc(Blob(s)))
    }

    /// Lists the files in a directory (optionally recursively); the Tiltfile reloads when it changes.
    fn listdir<'v>(
        dir: Option<Value<'v>>,
        recursive: Option<Value<'v>>,
        #[starlark(require = named)] directory: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let dir = alias("listdir", "dir", dir, directory)?;
        let c = ctx(eval);
        let d = path_arg(eval, "listdir", "dir", dir)?;
        let recursive = opt_bool("listdir", "recursive", recursive, false)?;
        let mut out = vec![];
        let mut stack = vec![d.clone()];
        while let Some(cur) = stack.pop() {
            let entries = c
                .host
                .read_dir(&cur)
                .map_err(|e| anyhow!("listdir: {}: {e}", cur.display()))?;
            for e in entries {
                if e.is_dir {
                    if recursive {
                        stack.push(e.path);
                    }
                } else {
                    out.push(e.path.display().to_string());
                }
            }
        }
        out.sort();
        if recursive {
            c.add_config_file(&d);
        }
        Ok(out)
    }

    /// Reloads the Tiltfile when this file or directory changes.
    fn watch_file<'v>(
        paths: Option<Value<'v>>,
        #[starlark(require = named)] file_path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let paths = alias("watch_file", "paths", paths, file_path)?;
        let p = path_arg(eval, "watch_file", "paths", paths)?;
        ctx(eval).add_config_file(&p);
        Ok(NoneType)
    }

    /// A link for a resource's `links=`: a URL and an optional name.
    fn link<'v>(
        url: Value<'v>,
        name: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let url = string("link", "url", url)?;
        if url.is_empty() {
            bail!("link: for parameter \"url\": url cannot be empty");
        }
        let name = opt_string("link", "name", name)?;
        Ok(new_obj(
            eval,
            "link",
            serde_json::json!({"url": url, "name": name}),
        ))
    }
}

#[starlark_module]
pub(crate) fn register_shlex(builder: &mut GlobalsBuilder) {
    fn quote(s: &str) -> anyhow::Result<String> {
        Ok(shell_quote(s))
    }
}

/// Python's shlex.quote.
pub(crate) fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}
