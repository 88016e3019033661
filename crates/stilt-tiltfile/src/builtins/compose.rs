//! docker_compose and dc_resource.

use std::path::Path;
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

use crate::builtins::compose_model::ComposeCli;
use crate::builtins::compose_model::referenced_files;
use crate::builtins::compose_model::resolved_services;
use crate::builtins::compose_model::service_build;
use crate::builtins::compose_model::tilt_order;
use crate::builtins::core::read_watched;
use crate::builtins::k8s::labels_arg;
use crate::builtins::k8s::links_arg;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::host::HostCommand;
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

/// A YAML blob as a compose file Compose (and the engine's `compose up`) can read.
fn blob_file(text: &str) -> std::io::Result<PathBuf> {
    use std::hash::Hash;
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let dir = std::env::temp_dir().join("stilt-compose-blobs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{:016x}.yml", h.finish()));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        let tmp = dir.join(format!("{:016x}.{}.tmp", h.finish(), std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// The compose CLI to ask: `$STILT_DOCKER_COMPOSE_CMD` / `$TILT_DOCKER_COMPOSE_CMD`, else
/// `docker compose` when it answers `version`, else `docker-compose`; `None` when there is
/// none (the hand parser then reads the files).
fn detect_cli(c: &crate::eval::Ctx, dir: &Path) -> Option<ComposeCli> {
    for var in ["STILT_DOCKER_COMPOSE_CMD", "TILT_DOCKER_COMPOSE_CMD"] {
        if let Some(cli) = c
            .getenv(var)
            .and_then(|cmd| ComposeCli::from_override(&cmd))
        {
            return Some(cli);
        }
    }
    if c.host.which("docker").is_some() {
        let probe = HostCommand {
            argv: vec!["docker".into(), "compose".into(), "version".into()],
            dir: dir.to_path_buf(),
            env: c.env_overrides(),
            stdin: None,
        };
        if c.host.run(&probe).is_ok_and(|o| o.status == 0) {
            return Some(ComposeCli::v2());
        }
    }
    c.host.which("docker-compose").map(|_| ComposeCli::v1())
}

/// Asks Compose for the resolved project (`config`): its merge rules, `extends`, `include`,
/// profiles, `.env` and interpolation, exactly.
fn resolve_with_cli(
    c: &crate::eval::Ctx,
    f: &str,
    cli: &ComposeCli,
    proj: &DcProject,
) -> anyhow::Result<Vec<(String, Json)>> {
    let argv = cli.config_argv(proj);
    let cmd = HostCommand {
        argv: argv.clone(),
        dir: proj.project_path.clone(),
        env: c.env_overrides(),
        stdin: None,
    };
    let out = c
        .host
        .run(&cmd)
        .map_err(|e| anyhow!("{f}: running `{}`: {e}", argv.join(" ")))?;
    if out.status != 0 {
        bail!(
            "{f}: `{}` failed (exit code {}):\n{}",
            argv.join(" "),
            out.status,
            out.stderr.trim()
        );
    }
    let doc: Json = if cli.v1 {
        crate::yaml::parse_one(&out.stdout)
    } else {
        serde_json::from_str(&out.stdout).map_err(anyhow::Error::from)
    }
    .map_err(|e| anyhow!("{f}: reading the output of `{}`: {e}", argv.join(" ")))?;
    Ok(resolved_services(&doc))
}

/// Without a compose CLI: interpolate each file with the `.env` text and the environment and
/// merge services field by field (later files win), on top of earlier calls' services.
fn hand_parse(
    f: &str,
    earlier: &[(String, Json)],
    dotenv: Option<&str>,
    texts: &[String],
) -> anyhow::Result<Vec<(String, Json)>> {
    let mut vars: std::collections::BTreeMap<String, String> = Default::default();
    for line in dotenv.unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    for (k, v) in crate::builtins::os::env_all() {
        vars.insert(k, v);
    }
    let mut services = earlier.to_vec();
    for t in texts {
        let t = interpolate(t, &vars);
        let doc = crate::yaml::parse_one(&t)
            .map_err(|e| anyhow!("{f}: error parsing compose YAML: {e}"))?;
        merge_services(&mut services, &doc);
    }
    Ok(tilt_order(services))
}

/// The context's ignore file, as Docker reads it: `<Dockerfile>.dockerignore`, else
/// `<context>/.dockerignore`.
fn read_dockerignore(
    eval: &Evaluator,
    f: &str,
    context: &Path,
    dockerfile: &Path,
) -> anyhow::Result<Vec<String>> {
    let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
    for p in [specific, context.join(".dockerignore")] {
        if let Some(text) = read_watched(eval, f, &p)? {
            return Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect());
        }
    }
    Ok(vec![])
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    #[allow(non_snake_case)]
    /// Runs Docker Compose services; each service becomes a resource, and images built by `docker_build` are used for the services that name them.
    ///
    /// # Arguments
    /// * `configPaths`: compose file path(s), or YAML as a blob.
    /// * `env_file`: the `.env` file to use.
    /// * `project_name`: the compose project name.
    /// * `profiles`: compose profiles to enable.
    /// * `wait`: wait for services to be healthy.
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
        // Every -f file (blobs become files, as in Tilt); the files the user named; the texts
        // (for the hand parser when no compose CLI answers).
        let mut paths: Vec<PathBuf> = vec![];
        let mut files: Vec<PathBuf> = vec![];
        let mut texts = vec![];
        for item in one_or_many(Some(configPaths)) {
            if item.is_none() {
                continue;
            }
            if let Some(b) = item.downcast_ref::<Blob>() {
                paths.push(
                    blob_file(&b.0).map_err(|e| anyhow!("{f}: unable to store yaml blob: {e}"))?,
                );
                texts.push(b.0.clone());
                continue;
            }
            let p = abs_path(&dir, &string(f, "configPaths", item)?);
            match read_watched(eval, f, &p)? {
                Some(t) => texts.push(t),
                None => bail!("{f}: open {}: no such file or directory", p.display()),
            }
            paths.push(p.clone());
            files.push(p);
        }
        if paths.is_empty() {
            bail!("{f}: Nothing to compose");
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
        let project_path = files
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
        let idx = {
            let mut st = c.st.borrow_mut();
            match st.dc_projects.iter().position(|p| p.name == name) {
                Some(i) => {
                    // A repeated call adds its files to the project (Tilt merges them).
                    let proj = &mut st.dc_projects[i];
                    for p in paths {
                        if !proj.config_paths.contains(&p) {
                            proj.config_paths.push(p);
                        }
                    }
                    if !env_file.is_empty() {
                        proj.env_file = env_file;
                    }
                    i
                }
                None => {
                    st.dc_projects.push(DcProject {
                        name: name.clone(),
                        config_paths: paths,
                        project_path,
                        env_file,
                        profiles: profiles.clone(),
                        wait,
                        ..Default::default()
                    });
                    st.dc_projects.len() - 1
                }
            }
        };
        let proj = c.st.borrow().dc_projects[idx].clone();
        let env_path = if proj.env_file.is_empty() {
            proj.project_path.join(".env")
        } else {
            PathBuf::from(&proj.env_file)
        };
        let cli = detect_cli(c, &proj.project_path);
        let services = match &cli {
            Some(cli) => {
                c.add_config_file(&env_path);
                resolve_with_cli(c, f, cli, &proj)?
            }
            None => {
                let text = read_watched(eval, f, &env_path)?;
                hand_parse(f, &proj.services, text.as_deref(), &texts)?
            }
        };
        // Files Compose reads besides the -f files: includes, extends files, env_files.
        let read_yaml = |p: &Path| {
            let bytes = c.host.read_file(p).ok()?;
            crate::yaml::parse_one(&String::from_utf8_lossy(&bytes)).ok()
        };
        for p in referenced_files(&files, &proj.project_path, read_yaml) {
            c.add_config_file(&p);
        }
        // Profiles: a service with `profiles:` only runs when one of them is active.
        let services: Vec<(String, Json)> = services
            .into_iter()
            .filter(
                |(_, svc)| match svc.get("profiles").and_then(|p| p.as_array()) {
                    None => true,
                    Some(ps) => ps
                        .iter()
                        .any(|p| p.as_str().is_some_and(|p| profiles.iter().any(|a| a == p))),
                },
            )
            .collect();
        let mut builds = std::collections::BTreeMap::new();
        for (svc, def) in &services {
            let image = def
                .get("image")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    cli.clone()
                        .unwrap_or_else(ComposeCli::v2)
                        .default_image(&proj.name, svc)
                });
            if let Some(mut b) = service_build(def, &proj.project_path, image) {
                // Tilt watches a compose-built service's Dockerfile as a Tiltfile input too.
                c.add_config_file(&b.dockerfile);
                b.dockerignore = read_dockerignore(eval, f, &b.context, &b.dockerfile)?;
                builds.insert(svc.clone(), b);
            }
        }
        let mut st = c.st.borrow_mut();
        let proj = &mut st.dc_projects[idx];
        proj.services = services;
        proj.builds = builds;
        Ok(NoneType)
    }

    /// Configures the resource of a Docker Compose service.
    ///
    /// # Arguments
    /// * `name`: the service name.
    /// * `image`: the image the service uses (when not in the compose file).
    /// * `trigger_mode`: `TRIGGER_MODE_AUTO` or `TRIGGER_MODE_MANUAL`.
    /// * `resource_deps`: resources that must be ready first.
    /// * `infer_links`: show links for published ports (default True).
    /// * `links`: URLs shown with the resource.
    /// * `labels`: labels grouping resources in the UI.
    /// * `auto_init`: start when Stilt starts (default True).
    /// * `project_name`: the compose project, when there are several.
    /// * `new_name`: rename the resource.
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
