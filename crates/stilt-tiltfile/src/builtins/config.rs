//! The `config` module: define_* settings, parse (tilt_config.json + Tiltfile args),
//! set_enabled_resources / clear_enabled_resources, tilt_subcommand, main_path, main_dir.

use anyhow::anyhow;
use anyhow::bail;
use serde_json::Value as Json;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use crate::convert::*;
use crate::eval::ReqInfo;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::ConfigDef;
use crate::model::ConfigKind;

fn define<'v>(
    eval: &Evaluator<'v, '_, '_>,
    func: &str,
    kind: ConfigKind,
    name: &str,
    args: Option<Value<'v>>,
    usage: Option<Value<'v>>,
) -> anyhow::Result<NoneType> {
    let c = ctx(eval);
    let args = opt_bool(func, "args", args, false)?;
    let usage = opt_string(func, "usage", usage)?;
    let mut st = c.st.borrow_mut();
    if st.config_parsed.is_some() {
        bail!("{func}: config.{func} must be called before config.parse");
    }
    if name.is_empty() {
        bail!("{func}: for parameter \"name\": name cannot be empty");
    }
    if st.config_defs.iter().any(|d| d.name == name) {
        bail!("{func}: {name} defined multiple times");
    }
    if args && st.config_defs.iter().any(|d| d.args) {
        let other = st.config_defs.iter().find(|d| d.args).unwrap().name.clone();
        bail!("{func}: only one argument can have `args = True`. {other} already does");
    }
    if args && kind == ConfigKind::Bool {
        bail!("{func}: a bool setting cannot receive positional args");
    }
    st.config_defs.push(ConfigDef {
        name: name.to_owned(),
        kind,
        args,
        usage,
    });
    Ok(NoneType)
}

fn usage(defs: &[ConfigDef]) -> String {
    let mut s = String::from("Usage:\n");
    for d in defs {
        let ty = match d.kind {
            ConfigKind::String => "string",
            ConfigKind::StringList => "stringList",
            ConfigKind::Bool => "bool",
            ConfigKind::Object => "object",
        };
        if d.args {
            s.push_str(&format!("  [{}...] ({ty})  {}\n", d.name, d.usage));
        } else {
            s.push_str(&format!("      --{} {ty}   {}\n", d.name, d.usage));
        }
    }
    s
}

fn set_value(
    out: &mut serde_json::Map<String, Json>,
    d: &ConfigDef,
    raw: Option<&str>,
) -> anyhow::Result<()> {
    match d.kind {
        ConfigKind::String => {
            let v = raw.ok_or_else(|| anyhow!("flag needs an argument: --{}", d.name))?;
            if out.contains_key(&d.name) {
                bail!(
                    "invalid argument {v:?} for \"--{}\" flag: string settings can only be specified once",
                    d.name
                );
            }
            out.insert(d.name.clone(), Json::String(v.to_owned()));
        }
        ConfigKind::StringList => {
            let v = raw.ok_or_else(|| anyhow!("flag needs an argument: --{}", d.name))?;
            let e = out
                .entry(d.name.clone())
                .or_insert_with(|| Json::Array(vec![]));
            if let Json::Array(a) = e {
                a.push(Json::String(v.to_owned()));
            }
        }
        ConfigKind::Bool => {
            let b = match raw {
                None => true,
                Some("true" | "True" | "1" | "t" | "T" | "TRUE") => true,
                Some("false" | "False" | "0" | "f" | "F" | "FALSE") => false,
                Some(o) => bail!(
                    "invalid argument {o:?} for \"--{}\" flag: parse error",
                    d.name
                ),
            };
            out.insert(d.name.clone(), Json::Bool(b));
        }
        ConfigKind::Object => {
            let v = raw.ok_or_else(|| anyhow!("flag needs an argument: --{}", d.name))?;
            let j: Json = serde_json::from_str(v)
                .map_err(|e| anyhow!("invalid argument for \"--{}\": {e}", d.name))?;
            out.insert(d.name.clone(), j);
        }
    }
    Ok(())
}

fn parse_args(
    defs: &[ConfigDef],
    args: &[String],
) -> anyhow::Result<serde_json::Map<String, Json>> {
    let mut out = serde_json::Map::new();
    let mut positional = vec![];
    let mut i = 0;
    let mut only_pos = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_pos || !a.starts_with('-') || a == "-" {
            positional.push(a.clone());
            continue;
        }
        if a == "--" {
            only_pos = true;
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let d = defs
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| anyhow!("unknown flag: --{name}"))?;
        let raw = match (inline, d.kind) {
            (Some(v), _) => Some(v),
            (None, ConfigKind::Bool) => None,
            (None, _) => {
                if i < args.len() {
                    i += 1;
                    Some(args[i - 1].clone())
                } else {
                    None
                }
            }
        };
        set_value(&mut out, d, raw.as_deref())?;
    }
    if !positional.is_empty() {
        let Some(d) = defs.iter().find(|d| d.args) else {
            bail!(
                "positional args were specified, but none were expected (no setting defined with args=True)"
            );
        };
        if d.kind == ConfigKind::String && positional.len() > 1 {
            bail!(
                "{} only takes one positional arg, got {}",
                d.name,
                positional.len()
            );
        }
        for p in positional {
            set_value(&mut out, d, Some(&p))?;
        }
    }
    Ok(out)
}

#[starlark_module]
fn config_funcs(builder: &mut GlobalsBuilder) {
    /// Declares a string setting of this Tiltfile, read by `config.parse()` from `stilt up -- --name value` or `tilt_config.json`.
    ///
    /// # Arguments
    /// * `name`: the setting's name.
    /// * `args`: take the value from the positional arguments instead of `--name`.
    /// * `usage`: help text.
    fn define_string<'v>(
        name: &str,
        args: Option<Value<'v>>,
        usage: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "define_string", ConfigKind::String, name, args, usage)
    }

    /// Declares a list-of-strings setting of this Tiltfile (`--name a --name b`), read by `config.parse()`.
    ///
    /// # Arguments
    /// * `name`: the setting's name.
    /// * `args`: take the values from the positional arguments.
    /// * `usage`: help text.
    fn define_string_list<'v>(
        name: &str,
        args: Option<Value<'v>>,
        usage: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(
            eval,
            "define_string_list",
            ConfigKind::StringList,
            name,
            args,
            usage,
        )
    }

    /// Declares a boolean setting of this Tiltfile (`--name` / `--name=false`), read by `config.parse()`.
    ///
    /// # Arguments
    /// * `name`: the setting's name.
    /// * `args`: take the value from the positional arguments.
    /// * `usage`: help text.
    fn define_bool<'v>(
        name: &str,
        args: Option<Value<'v>>,
        usage: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "define_bool", ConfigKind::Bool, name, args, usage)
    }

    /// Declares a JSON-object setting of this Tiltfile, read by `config.parse()` from `tilt_config.json`.
    fn define_object<'v>(
        name: &str,
        args: Option<Value<'v>>,
        usage: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "define_object", ConfigKind::Object, name, args, usage)
    }

    /// Parses the Tiltfile's arguments and `tilt_config.json` against the declared settings and returns a dict of their values.
    fn parse<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let c = ctx(eval);
        let dir = cur_dir(eval);
        {
            let st = c.st.borrow();
            if let (Some(p), Some(prev)) = (&st.config_parse_dir, &st.config_parsed)
                && p == &dir
            {
                let prev = prev.clone();
                drop(st);
                return Ok(json_to_value(&prev, eval.heap()));
            }
            if let Some(p) = &st.config_parse_dir
                && p != &dir
            {
                bail!(
                    "config.parse can only be called from one Tiltfile working directory per run. It was called from {} and {}",
                    p.display(),
                    dir.display()
                );
            }
        }
        let defs = c.st.borrow().config_defs.clone();
        let cfg_path = dir.join("tilt_config.json");
        let mut values = serde_json::Map::new();
        if let Some(text) = crate::builtins::core::read_watched(eval, "config.parse", &cfg_path)? {
            let j: Json = serde_json::from_str(&text)
                .map_err(|e| anyhow!("error parsing {}: {e}", cfg_path.display()))?;
            let Json::Object(m) = j else {
                bail!("{}: expected a JSON object", cfg_path.display());
            };
            for (k, v) in m {
                let Some(d) = defs.iter().find(|d| d.name == k) else {
                    bail!(
                        "{} specified unknown setting name '{k}'",
                        cfg_path.display()
                    );
                };
                let ok = match d.kind {
                    ConfigKind::String => v.is_string(),
                    ConfigKind::StringList => v
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x.is_string())),
                    ConfigKind::Bool => v.is_boolean(),
                    ConfigKind::Object => true,
                };
                if !ok {
                    bail!("{}: setting '{k}' has the wrong type", cfg_path.display());
                }
                values.insert(k, v);
            }
        }
        let from_args =
            parse_args(&defs, &c.req.args).map_err(|e| anyhow!("{e}\n{}", usage(&defs)))?;
        for (k, v) in from_args {
            values.insert(k, v);
        }
        let j = Json::Object(values);
        {
            let mut st = c.st.borrow_mut();
            st.config_parsed = Some(j.clone());
            st.config_parse_dir = Some(dir);
        }
        Ok(json_to_value(&j, eval.heap()))
    }

    /// Enables only these resources (the others are declared but disabled).
    fn set_enabled_resources<'v>(
        resources: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let r = str_or_list("set_enabled_resources", "resources", Some(resources))?;
        ctx(eval).st.borrow_mut().enabled_resources = Some(r);
        Ok(NoneType)
    }

    /// Enables no resource (each must be enabled by hand).
    fn clear_enabled_resources<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        ctx(eval).st.borrow_mut().enabled_resources = Some(vec![]);
        Ok(NoneType)
    }
}

pub(crate) fn register(b: &mut GlobalsBuilder, req: &ReqInfo) {
    config_funcs(b);
    b.set("tilt_subcommand", req.subcommand.as_str());
    b.set("main_path", req.main_path.display().to_string());
    b.set("main_dir", req.main_dir.display().to_string());
}
