//! docker_build, custom_build and the live-update steps.

use std::path::Path;
use std::path::PathBuf;

use anyhow::bail;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::none::NoneType;

use crate::builtins::core::new_obj;
use crate::builtins::core::read_watched;
use crate::builtins::core::to_argv;
use crate::convert::*;
use crate::eval::abs_path;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::ImageTarget;
use crate::model::*;
use crate::values::TiltObj;

/// Parse an image ref into (familiar name without tag/digest, has explicit tag/digest).
pub(crate) fn parse_ref(func: &str, param: &str, r: &str) -> anyhow::Result<(String, bool)> {
    // The tag's `\w` is ASCII, as in Docker's (Go) grammar; a Unicode `\w` repeated 127 times
    // compiled to a 5 MB program that stayed in memory for the whole session.
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$",
        )
        .unwrap()
    });
    if r.is_empty() || !RE.is_match(r) {
        bail!(
            "{func}: for parameter \"{param}\": invalid image reference {r:?} (must be a valid Docker image name, lowercase)"
        );
    }
    let without_digest = r.split('@').next().unwrap_or(r);
    let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tagged) = match without_digest[last_slash..].find(':') {
        Some(i) => (without_digest[..last_slash + i].to_owned(), true),
        None => (without_digest.to_owned(), r.contains('@')),
    };
    let name = familiar(&name).to_owned();
    Ok((name, tagged))
}

/// Docker's familiar form of a repository name (`docker.io/library/x` → `x`).
pub(crate) fn familiar(name: &str) -> &str {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name)
}

/// Unpack and validate live_update steps (marking them used).
pub(crate) fn live_update_arg(
    eval: &Evaluator,
    func: &str,
    v: Option<Value>,
) -> anyhow::Result<LiveUpdate> {
    let c = ctx(eval);
    let items = one_or_many(v);
    let mut steps = vec![];
    let mut phase: i32 = -1; // 0 initial_sync, 1 fall_back_on, 2 sync, 3 run, 4 restart
    for it in items {
        let Some(o) = it.downcast_ref::<TiltObj>() else {
            return Err(bad_arg(
                func,
                "live_update",
                "list of live update steps",
                it,
            ));
        };
        let (p, step) = match o.kind {
            "initial_sync" => (0, LuStep::InitialSync),
            "fall_back_on" => (
                1,
                LuStep::FallBackOn(
                    serde_json::from_value::<Vec<String>>(o.fields["files"].clone())?
                        .into_iter()
                        .map(PathBuf::from)
                        .collect(),
                ),
            ),
            "sync" => (
                2,
                LuStep::Sync {
                    local: PathBuf::from(o.str("local_path").unwrap_or_default()),
                    remote: o.str("remote_path").unwrap_or_default().to_owned(),
                },
            ),
            "run" => (
                3,
                LuStep::Run {
                    args: serde_json::from_value(o.fields["args"].clone())?,
                    triggers: serde_json::from_value::<Vec<String>>(o.fields["trigger"].clone())?
                        .into_iter()
                        .map(PathBuf::from)
                        .collect(),
                    echo_off: o.fields["echo_off"].as_bool().unwrap_or(false),
                },
            ),
            "restart_container" => (4, LuStep::Restart),
            _ => {
                return Err(bad_arg(
                    func,
                    "live_update",
                    "list of live update steps",
                    it,
                ));
            }
        };
        if p < phase || (p == phase && (p == 0 || p == 4)) {
            bail!(
                "{func}: live_update steps out of order or repeated: {} must come {}. Steps must be ordered: \
                 initial_sync (at most 1), fall_back_on, sync, run, restart_container (at most 1)",
                o.kind,
                match p {
                    0 => "first and at most once",
                    4 => "last and at most once",
                    _ => "earlier",
                }
            );
        }
        phase = p;
        c.st.borrow_mut().unused_steps.remove(&o.id);
        steps.push(step);
    }
    Ok(LiveUpdate {
        steps,
        base_path: cur_dir(eval),
    })
}

fn new_step<'v>(
    eval: &Evaluator<'v, '_, '_>,
    kind: &'static str,
    fields: serde_json::Value,
) -> Value<'v> {
    let c = ctx(eval);
    let mut st = c.st.borrow_mut();
    st.next_id += 1;
    let id = st.next_id;
    st.unused_steps.insert(
        id,
        format!("{kind} step created at {}", crate::eval::call_site(eval)),
    );
    drop(st);
    let serde_json::Value::Object(m) = fields else {
        unreachable!()
    };
    let mut o = TiltObj::new(kind, m);
    o.id = id;
    eval.heap().alloc(o)
}

fn read_dockerignore(
    eval: &Evaluator,
    context: &Path,
    dockerfile: &Path,
) -> anyhow::Result<Vec<String>> {
    // `<Dockerfile>.dockerignore`, when it exists, replaces `<context>/.dockerignore`; only the
    // file in use is a config file (the context's one even when missing), as in Tilt.
    let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
    let c = ctx(eval);
    let p = if c.host.exists(&specific) {
        specific
    } else {
        context.join(".dockerignore")
    };
    c.add_config_file(&p);
    Ok(read_watched(eval, "docker_build", &p)?
        .map(|t| dockerignore_lines(&t))
        .unwrap_or_default())
}

/// The patterns of a `.dockerignore` (blank lines and comments dropped).
fn dockerignore_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `FROM` images of a Dockerfile (after ARG defaults/build_args substitution) and
/// `COPY --from` images.
pub(crate) fn dockerfile_from_refs(text: &str, build_args: &[(String, String)]) -> Vec<String> {
    let mut args: Vec<(String, String)> = vec![];
    let mut out = vec![];
    for line in text.lines() {
        let t = line.trim();
        let mut parts = t.split_whitespace();
        let Some(kw) = parts.next() else { continue };
        if kw.eq_ignore_ascii_case("ARG") {
            if let Some(def) = parts.next() {
                let (k, v) = def.split_once('=').unwrap_or((def, ""));
                let v = build_args
                    .iter()
                    .find(|(bk, _)| bk == k)
                    .map(|(_, bv)| bv.clone())
                    .unwrap_or_else(|| v.trim_matches('"').to_owned());
                args.push((k.to_owned(), v));
            }
        } else if kw.eq_ignore_ascii_case("FROM") {
            let mut img = None;
            for p in parts.by_ref() {
                if !p.starts_with("--") {
                    img = Some(p.to_owned());
                    break;
                }
            }
            if let Some(mut img) = img {
                for (k, v) in &args {
                    img = img
                        .replace(&format!("${{{k}}}"), v)
                        .replace(&format!("${k}"), v);
                }
                out.push(img);
            }
        } else if kw.eq_ignore_ascii_case("COPY") {
            // As Tilt: `COPY --from=<image>` names an image too (taken as written, no ARGs).
            out.extend(
                parts
                    .take_while(|p| p.starts_with("--"))
                    .filter_map(|p| p.strip_prefix("--from="))
                    .map(str::to_owned),
            );
        }
    }
    out
}

fn entrypoint_arg(func: &str, v: Option<Value>) -> anyhow::Result<Option<Vec<String>>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => {
            let a = to_argv(func, "entrypoint", v)?;
            Ok(if a.is_empty() { None } else { Some(a) })
        }
    }
}

fn container_args_arg(func: &str, v: Option<Value>) -> anyhow::Result<Option<Vec<String>>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => Ok(Some(str_list(func, "container_args", Some(v))?)),
    }
}

/// Adds an image target. Two targets of the same name but different tags (`app`, `app:stretch`)
/// both become exact-match selectors, as in Tilt: otherwise the untagged one would also claim
/// `app:stretch` wherever it is consumed.
fn add_image(images: &mut Vec<ImageTarget>, mut img: ImageTarget) {
    let mut same_name = images.iter_mut().filter(|i| i.name == img.name).peekable();
    if same_name.peek().is_some() {
        same_name.for_each(|i| i.match_exact = true);
        img.match_exact = true;
    }
    images.push(img);
}

fn check_dup_image(eval: &Evaluator, func: &str, r: &str) -> anyhow::Result<()> {
    if ctx(eval).st.borrow().images.iter().any(|i| i.ref_str == r) {
        bail!("{func}: Image for ref {r:?} has already been defined");
    }
    Ok(())
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// Builds a container image with Docker whenever files under `context` change.
    ///
    /// The image is named `ref`; wherever a Kubernetes object or compose service uses that name, the
    /// freshly built image (under a content-addressed tag) is substituted.
    ///
    /// # Arguments
    /// * `ref`: the image name, e.g. `'gcr.io/project/app'`.
    /// * `context`: the build context directory (relative to this Tiltfile).
    /// * `build_args`: a dict of `--build-arg` values.
    /// * `dockerfile`: path of the Dockerfile (default `<context>/Dockerfile`).
    /// * `dockerfile_contents`: the Dockerfile's text itself, instead of a file.
    /// * `live_update`: steps (`sync`, `run`, `restart_container`, `fall_back_on`, `initial_sync`) that update a running container in place instead of rebuilding.
    /// * `ignore`: patterns (dockerignore syntax) of files whose changes do not rebuild.
    /// * `only`: only these paths (relative to `context`) are in the context and watched.
    /// * `entrypoint`: overrides the container's command where the image is deployed.
    /// * `container_args`: overrides the container's args where the image is deployed.
    /// * `target`: the Dockerfile stage to build.
    /// * `ssh`: SSH agent sockets or keys for `RUN --mount=type=ssh`.
    /// * `secret`: build secrets for `RUN --mount=type=secret`.
    /// * `network`: the network mode of `RUN` steps.
    /// * `extra_tag`: more tags to give the built image.
    /// * `cache_from`: images to use as a build cache.
    /// * `pull`: always pull base images.
    /// * `platform`: the target platform, e.g. `'linux/amd64'`.
    /// * `extra_hosts`: `host:ip` entries added to /etc/hosts during the build.
    /// * `match_in_env_vars`: also replace the image name where it appears in env var values.
    fn docker_build<'v>(
        r#ref: Value<'v>,
        context: Value<'v>,
        build_args: Option<Value<'v>>,
        dockerfile: Option<Value<'v>>,
        dockerfile_contents: Option<Value<'v>>,
        cache: Option<Value<'v>>,
        live_update: Option<Value<'v>>,
        match_in_env_vars: Option<Value<'v>>,
        ignore: Option<Value<'v>>,
        only: Option<Value<'v>>,
        entrypoint: Option<Value<'v>>,
        container_args: Option<Value<'v>>,
        target: Option<Value<'v>>,
        ssh: Option<Value<'v>>,
        secret: Option<Value<'v>>,
        network: Option<Value<'v>>,
        extra_tag: Option<Value<'v>>,
        cache_from: Option<Value<'v>>,
        pull: Option<Value<'v>>,
        platform: Option<Value<'v>>,
        extra_hosts: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "docker_build";
        let c = ctx(eval);
        let _ = cache;
        let ref_str = string(f, "ref", r#ref)?;
        let (name, match_exact) = parse_ref(f, "ref", &ref_str)?;
        check_dup_image(eval, f, &ref_str)?;
        let dir = cur_dir(eval);
        let context = abs_path(&dir, &string(f, "context", context)?);
        let build_args = str_dict(f, "build_args", build_args)?;
        let df = opt_string(f, "dockerfile", dockerfile)?;
        let dfc = opt_string(f, "dockerfile_contents", dockerfile_contents)?;
        if !df.is_empty() && !dfc.is_empty() {
            bail!("{f}: Cannot specify both dockerfile and dockerfile_contents keyword arguments");
        }
        let dockerfile_path = if df.is_empty() {
            context.join("Dockerfile")
        } else {
            abs_path(&dir, &df)
        };
        let contents = if !dfc.is_empty() {
            dfc
        } else {
            match read_watched(eval, f, &dockerfile_path)? {
                Some(t) => t,
                None => bail!(
                    "{f}: error reading dockerfile: open {}: no such file or directory",
                    dockerfile_path.display()
                ),
            }
        };
        let dockerignore_patterns = read_dockerignore(eval, &context, &dockerfile_path)?;
        let only = str_or_list(f, "only", only)?;
        for o in &only {
            if o.contains('*') {
                bail!("{f}: 'only' does not support '*' file globs. Must be a real path: {o}");
            }
        }
        let lu = live_update_arg(eval, f, live_update)?;
        // restart_container() is only valid for Docker Compose; checked at assembly.
        let image_deps = dockerfile_from_refs(&contents, &build_args);
        let repo_roots = crate::builtins::core::repo_roots(eval, std::slice::from_ref(&context));
        let platform = match opt_string(f, "platform", platform)? {
            p if p.is_empty() => c.getenv("DOCKER_DEFAULT_PLATFORM").unwrap_or_default(),
            p => p,
        };
        let img = ImageTarget {
            ref_str,
            name,
            match_exact,
            build: ImageBuild::Docker(DockerBuild {
                context,
                dockerfile_path,
                dockerfile_contents: contents,
                build_args,
                target: opt_string(f, "target", target)?,
                ssh: str_or_list(f, "ssh", ssh)?,
                secret: str_or_list(f, "secret", secret)?,
                network: opt_string(f, "network", network)?,
                extra_tags: str_or_list(f, "extra_tag", extra_tag)?,
                cache_from: str_or_list(f, "cache_from", cache_from)?,
                pull: opt_bool(f, "pull", pull, false)?,
                platform,
                extra_hosts: str_or_list(f, "extra_hosts", extra_hosts)?,
                dockerignore_patterns,
            }),
            live_update: lu,
            match_in_env_vars: opt_bool(f, "match_in_env_vars", match_in_env_vars, false)?,
            ignores: str_or_list(f, "ignore", ignore)?,
            only,
            entrypoint: entrypoint_arg(f, entrypoint)?,
            container_args: container_args_arg(f, container_args)?,
            live_update_only: false,
            image_deps,
            repo_roots,
            tiltfile_path: crate::eval::cur_file(eval),
        };
        add_image(&mut c.st.borrow_mut().images, img);
        Ok(NoneType)
    }

    /// Builds an image with your own command (e.g. `bazel`, `ko`, `buildah`) instead of Docker.
    ///
    /// The command gets `$EXPECTED_REF` (the name:tag it must produce) in its environment and is re-run
    /// when a file under `deps` changes.
    ///
    /// # Arguments
    /// * `ref`: the image name objects refer to.
    /// * `command`: the build command (a shell string or an argv list).
    /// * `deps`: files and directories whose changes rebuild.
    /// * `tag`: a fixed tag the command produces (instead of `$EXPECTED_REF`).
    /// * `disable_push`: do not push the result to a registry.
    /// * `skips_local_docker`: the command puts the image in the registry itself, not the local Docker.
    /// * `live_update`: live-update steps, as in `docker_build`.
    /// * `ignore`: patterns of files under `deps` whose changes do not rebuild.
    /// * `outputs_image_ref_to`: a file the command writes the built image reference into.
    /// * `image_deps`: other images this build needs; their refs are passed in the environment.
    /// * `env`: extra environment for the command.
    /// * `dir`: working directory of the command.
    fn custom_build<'v>(
        r#ref: Value<'v>,
        command: Value<'v>,
        deps: Value<'v>,
        tag: Option<Value<'v>>,
        disable_push: Option<Value<'v>>,
        skips_local_docker: Option<Value<'v>>,
        live_update: Option<Value<'v>>,
        match_in_env_vars: Option<Value<'v>>,
        ignore: Option<Value<'v>>,
        entrypoint: Option<Value<'v>>,
        container_args: Option<Value<'v>>,
        command_bat_val: Option<Value<'v>>,
        outputs_image_ref_to: Option<Value<'v>>,
        command_bat: Option<Value<'v>>,
        image_deps: Option<Value<'v>>,
        env: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let f = "custom_build";
        let c = ctx(eval);
        let _ = (command_bat_val, command_bat);
        let ref_str = string(f, "ref", r#ref)?;
        let (name, match_exact) = parse_ref(f, "ref", &ref_str)?;
        check_dup_image(eval, f, &ref_str)?;
        let cwd = cur_dir(eval);
        let args = to_argv(f, "command", command)?;
        if args.is_empty() {
            bail!("{f}: for parameter \"command\": Argument 2 (command) can't be empty");
        }
        let deps: Vec<PathBuf> = str_or_list(f, "deps", Some(deps))?
            .iter()
            .map(|d| abs_path(&cwd, d))
            .collect();
        let tag = opt_string(f, "tag", tag)?;
        let outputs = opt_string(f, "outputs_image_ref_to", outputs_image_ref_to)?;
        if !tag.is_empty() && !outputs.is_empty() {
            bail!("{f}: Cannot specify both tag= and outputs_image_ref_to=");
        }
        let lu = live_update_arg(eval, f, live_update)?;
        let live_update_only = args.len() == 3 && args[2] == ":" && !lu.is_empty();
        let d = opt_string(f, "dir", dir)?;
        let img_deps = str_or_list(f, "image_deps", image_deps)?;
        let repo_roots = crate::builtins::core::repo_roots(eval, &deps);
        // Like a Docker context, each dep directory's .dockerignore is read (and watched).
        let mut dep_dockerignores = vec![];
        for d in deps.iter().filter(|d| c.host.is_dir(d)) {
            let p = d.join(".dockerignore");
            c.add_config_file(&p);
            let pats = read_watched(eval, f, &p)?
                .map(|t| dockerignore_lines(&t))
                .unwrap_or_default();
            dep_dockerignores.push((d.clone(), pats));
        }
        let img = ImageTarget {
            ref_str: ref_str.clone(),
            name,
            match_exact,
            build: ImageBuild::Custom(CustomBuild {
                args,
                deps,
                dir: if d.is_empty() {
                    cwd.clone()
                } else {
                    abs_path(&cwd, &d)
                },
                env: str_dict(f, "env", env)?,
                tag,
                disable_push: opt_bool(f, "disable_push", disable_push, false)?,
                skips_local_docker: opt_bool(f, "skips_local_docker", skips_local_docker, false)?,
                dep_dockerignores,
                outputs_image_ref_to: if outputs.is_empty() {
                    outputs
                } else {
                    abs_path(&cwd, &outputs).display().to_string()
                },
            }),
            live_update: lu,
            match_in_env_vars: opt_bool(f, "match_in_env_vars", match_in_env_vars, false)?,
            ignores: str_or_list(f, "ignore", ignore)?,
            only: vec![],
            entrypoint: entrypoint_arg(f, entrypoint)?,
            container_args: container_args_arg(f, container_args)?,
            live_update_only,
            image_deps: img_deps,
            repo_roots,
            tiltfile_path: crate::eval::cur_file(eval),
        };
        add_image(&mut c.st.borrow_mut().images, img);
        Ok(new_obj(
            eval,
            "custom_build",
            serde_json::json!({"ref": ref_str}),
        ))
    }

    /// Live-update step: copies changed files from `local_path` into the running container at `remote_path`.
    ///
    /// # Arguments
    /// * `local_path`: a file or directory on this machine (relative to this Tiltfile).
    /// * `remote_path`: an absolute path in the container.
    fn sync<'v>(
        local_path: Value<'v>,
        remote_path: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let l = string("sync", "local_path", local_path)?;
        let r = string("sync", "remote_path", remote_path)?;
        if !r.starts_with('/') {
            bail!("sync: remote_path must be an absolute path (got {r:?})");
        }
        let l = abs_path(&cur_dir(eval), &l);
        Ok(new_step(
            eval,
            "sync",
            serde_json::json!({"local_path": l.display().to_string(), "remote_path": r}),
        ))
    }

    /// Live-update step: runs a command in the container after files were synced.
    ///
    /// # Arguments
    /// * `cmd`: the command (a shell string or an argv list).
    /// * `trigger`: only run when one of these local files changed.
    /// * `echo_off`: do not echo the command in the log.
    fn run<'v>(
        cmd: Value<'v>,
        trigger: Option<Value<'v>>,
        echo_off: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let args = to_argv("run", "cmd", cmd)?;
        if args.is_empty() {
            bail!("run: for parameter \"cmd\": cmd cannot be empty");
        }
        let dir = cur_dir(eval);
        let triggers: Vec<String> = str_or_list("run", "trigger", trigger)?
            .iter()
            .map(|t| abs_path(&dir, t).display().to_string())
            .collect();
        let echo_off = opt_bool("run", "echo_off", echo_off, false)?;
        Ok(new_step(
            eval,
            "run",
            serde_json::json!({"args": args, "trigger": triggers, "echo_off": echo_off}),
        ))
    }

    /// Live-update step: restarts the container after syncing and running (for processes that do not reload by themselves).
    fn restart_container<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(new_step(eval, "restart_container", serde_json::json!({})))
    }

    /// Live-update step: syncs every file once when the container starts, not only the changed ones.
    fn initial_sync<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(new_step(eval, "initial_sync", serde_json::json!({})))
    }

    /// Live-update step: a change to one of these files does a full rebuild instead of a live update.
    ///
    /// # Arguments
    /// * `paths`: files or directories (relative to this Tiltfile).
    fn fall_back_on<'v>(
        paths: Option<Value<'v>>,
        files: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let dir = cur_dir(eval);
        let v = paths.or(files);
        if v.is_none() {
            bail!("fall_back_on: missing argument for paths");
        }
        let files: Vec<String> = str_or_list("fall_back_on", "paths", v)?
            .iter()
            .map(|p| abs_path(&dir, p).display().to_string())
            .collect();
        Ok(new_step(
            eval,
            "fall_back_on",
            serde_json::json!({"files": files}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ref;

    /// (reference, familiar name and whether it is tagged; `None`: rejected), by Docker's grammar.
    #[test]
    fn image_references() {
        let long_tag = format!("app:{}", "t".repeat(128));
        let too_long_tag = format!("app:{}", "t".repeat(129));
        let digest = format!("app@sha256:{}", "a".repeat(64));
        let rows: Vec<(&str, Option<(&str, bool)>)> = vec![
            ("app", Some(("app", false))),
            ("app:v1.2_rc-3", Some(("app", true))),
            (
                "localhost:5000/team/app:dev",
                Some(("localhost:5000/team/app", true)),
            ),
            ("docker.io/library/busybox", Some(("busybox", false))),
            (&digest, Some(("app", true))),
            (&long_tag, Some(("app", true))),
            (&too_long_tag, None),
            ("App", None),
            ("app:.v1", None),
            ("app:vé", None),
            ("", None),
        ];
        for (r, want) in rows {
            let got = parse_ref("docker_build", "ref", r).ok();
            let got = got.as_ref().map(|(n, t)| (n.as_str(), *t));
            assert_eq!(got, want, "{r}");
        }
    }
}
