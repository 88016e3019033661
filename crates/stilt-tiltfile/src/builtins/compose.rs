//! docker_compose and dc_resource.

use std::path::PathBuf;

use anyhow::anyhow;
use anyhow::bail;
use serde_json::Value as Json;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::none::NoneType;

use crate::builtins::core::read_watched;
use crate::builtins::k8s::labels_arg;
use crate::builtins::k8s::links_arg;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::*;
use crate::values::Blob;

/// Compose variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?err}`/`${VAR?err}` (treated as empty when unset).
pub(crate) fn interpolate(text: &str, vars: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        if ch != '$' {
            out.push(ch);
            continue;
        }
        match chars.peek().map(|(_, c)| *c) {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                let rest = &text[i + 2..];
                let Some(end) = rest.find('}') else {
                    out.push('$');
                    continue;
                };
                let expr = &rest[..end];
                let (name, op, arg) = match expr.find([':', '-', '?']) {
                    Some(p) => {
                        let op_len = if expr[p..].starts_with(":-") || expr[p..].starts_with(":?") {
                            2
                        } else {
                            1
                        };
                        (&expr[..p], &expr[p..p + op_len], &expr[p + op_len..])
                    }
                    None => (expr, "", ""),
                };
                let val = vars.get(name);
                let v = match op {
                    ":-" => val
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .unwrap_or_else(|| arg.to_owned()),
                    "-" => val.cloned().unwrap_or_else(|| arg.to_owned()),
                    _ => val.cloned().unwrap_or_default(),
                };
                out.push_str(&v);
                // Skip `{expr}`.
                for _ in 0..expr.chars().count() + 2 {
                    chars.next();
                }
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let rest = &text[i + 1..];
                let n = rest
                    .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                    .unwrap_or(rest.len());
                out.push_str(vars.get(&rest[..n]).map(String::as_str).unwrap_or(""));
                for _ in 0..rest[..n].chars().count() {
                    chars.next();
                }
            }
            _ => out.push('$'),
        }
    }
    out
}

/// Compose's project-name normalization: lowercase, keep [a-z0-9_-].
pub(crate) fn normalize_project_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn merge_services(into: &mut Vec<(String, Json)>, doc: &Json) {
    let Some(svcs) = doc.get("services").and_then(|s| s.as_object()) else {
        return;
    };
    for (name, svc) in svcs {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => {
                if let (Some(e), Some(n)) = (existing.as_object_mut(), svc.as_object()) {
                    for (k, v) in n {
                        e.insert(k.clone(), v.clone());
                    }
                }
            }
            None => into.push((name.clone(), svc.clone())),
        }
    }
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    #[allow(non_snake_case)]
    fn docker_compose<'v>(
        configPaths: Value<'v>,
        env_file: Option<Value<'v>>,
        project_name: Option<Value<'v>>,
        profiles: Option<Value<'v>>,
        wait: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "docker_compose";
        let c = ctx(eval);
        let dir = cur_dir(eval);
        let mut paths: Vec<PathBuf> = vec![];
        let mut yaml = String::new();
        let mut texts = vec![];
        for item in one_or_many(Some(configPaths)) {
            if let Some(b) = item.downcast_ref::<Blob>() {
                yaml.push_str(&b.0);
                texts.push(b.0.clone());
                continue;
            }
            let p = abs_path(&dir, &string(f, "configPaths", item)?);
            match read_watched(eval, f, &p)? {
                Some(t) => texts.push(t),
                None => bail!("{f}: open {}: no such file or directory", p.display()),
            }
            paths.push(p);
        }
        let env_file = opt_string(f, "env_file", env_file)?;
        let env_file = if env_file.is_empty() {
            String::new()
        } else {
            let p = abs_path(&dir, &env_file);
            c.add_config_file(&p);
            p.display().to_string()
        };
        let mut profiles = str_or_list(f, "profiles", profiles)?;
        if profiles.is_empty()
            && let Some(p) = c.getenv("COMPOSE_PROFILES")
        {
            profiles = p
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        let project_path = paths
            .first()
            .and_then(|p| p.parent())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| dir.clone());
        let mut name = opt_string(f, "project_name", project_name)?;
        if name.is_empty() {
            name = normalize_project_name(
                &project_path
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        let wait = opt_bool(f, "wait", wait, false)?;
        let mut st = c.st.borrow_mut();
        let idx = match st.dc_projects.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                st.dc_projects.push(DcProject {
                    name: name.clone(),
                    project_path,
                    env_file,
                    profiles: profiles.clone(),
                    wait,
                    ..Default::default()
                });
                st.dc_projects.len() - 1
            }
        };
        // Compose interpolation: the project's `.env` (or env_file), then the environment.
        let mut vars: std::collections::BTreeMap<String, String> = Default::default();
        let env_path = if st.dc_projects[idx].env_file.is_empty() {
            st.dc_projects[idx].project_path.join(".env")
        } else {
            PathBuf::from(&st.dc_projects[idx].env_file)
        };
        drop(st);
        if let Some(text) = read_watched(eval, f, &env_path)? {
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
                }
            }
        }
        for (k, v) in crate::builtins::os::env_all() {
            vars.insert(k, v);
        }
        let mut st = c.st.borrow_mut();
        let proj = &mut st.dc_projects[idx];
        proj.config_paths.extend(paths);
        proj.yaml.push_str(&yaml);
        for t in texts {
            let t = interpolate(&t, &vars);
            let doc = crate::yaml::parse_one(&t)
                .map_err(|e| anyhow!("{f}: error parsing compose YAML: {e}"))?;
            merge_services(&mut proj.services, &doc);
        }
        // Profiles: a service with `profiles:` only runs when one of them is active.
        proj.services.retain(
            |(_, svc)| match svc.get("profiles").and_then(|p| p.as_array()) {
                None => true,
                Some(ps) => ps
                    .iter()
                    .any(|p| p.as_str().is_some_and(|p| profiles.iter().any(|a| a == p))),
            },
        );
        Ok(NoneType)
    }

    fn dc_resource<'v>(
        name: &str,
        image: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        infer_links: Option<Value<'v>>,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        auto_init: Option<Value<'v>>,
        project_name: Option<Value<'v>>,
        new_name: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "dc_resource";
        let image = match image {
            Some(v) if !v.is_none() => Some(match v.downcast_ref::<crate::values::TiltObj>() {
                Some(o) => o.str("ref").unwrap_or_default().to_owned(),
                None => string(f, "image", v)?,
            }),
            _ => None,
        };
        let opts = DcResourceOpts {
            name: name.to_owned(),
            call_site: crate::eval::call_site(eval),
            image,
            trigger_mode: crate::builtins::settings::trigger_mode_arg(f, trigger_mode)?,
            resource_deps: str_or_list(f, "resource_deps", resource_deps)?,
            infer_links: match infer_links {
                Some(v) if !v.is_none() => Some(opt_bool(f, "infer_links", Some(v), true)?),
                _ => None,
            },
            links: links_arg(f, links)?,
            labels: labels_arg(f, labels)?,
            auto_init: match auto_init {
                Some(v) if !v.is_none() => Some(opt_bool(f, "auto_init", Some(v), true)?),
                _ => None,
            },
            project_name: opt_string(f, "project_name", project_name)?,
            new_name: opt_string(f, "new_name", new_name)?,
        };
        ctx(eval).st.borrow_mut().dc_resource_opts.push(opts);
        Ok(NoneType)
    }
}
