//! Settings builtins: update_settings, ci_settings, secret_settings, version_settings,
//! watch_settings, docker_prune_settings, trigger_mode, default_registry, allow_k8s_contexts,
//! k8s_context, k8s_namespace, and the accepted no-ops (analytics_settings, set_team,
//! enable_feature, …).

use anyhow::bail;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use crate::convert::*;
use crate::eval::ctx;
use crate::eval::cur_dir;
use crate::model::DefaultRegistry;
use crate::model::TriggerMode;

pub(crate) fn trigger_mode_arg(
    func: &str,
    v: Option<Value>,
) -> anyhow::Result<Option<TriggerMode>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.unpack_i32() {
            Some(1) => Ok(Some(TriggerMode::Auto)),
            Some(2) => Ok(Some(TriggerMode::Manual)),
            _ => Err(bad_arg(
                func,
                "trigger_mode",
                "TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL",
                v,
            )),
        },
    }
}

fn duration_ok(s: &str) -> bool {
    // Go duration: sequence of <number><unit>.
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$").unwrap()
    });
    s == "0" || RE.is_match(s)
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// Global update settings: how many updates run in parallel, the Kubernetes apply timeout, server-side apply.
    fn update_settings<'v>(
        max_parallel_updates: Option<Value<'v>>,
        k8s_upsert_timeout_secs: Option<Value<'v>>,
        suppress_unused_image_warnings: Option<Value<'v>>,
        k8s_server_side_apply: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let c = ctx(eval);
        let f = "update_settings";
        let mut st = c.st.borrow_mut();
        if let Some(v) = max_parallel_updates {
            let n = opt_int(f, "max_parallel_updates", Some(v), 3)?;
            if n < 1 {
                bail!("{f}: max number of parallel updates must be >= 1(got: {n})");
            }
            st.settings.max_parallel_updates = n;
        }
        if let Some(v) = k8s_upsert_timeout_secs {
            let n = opt_int(f, "k8s_upsert_timeout_secs", Some(v), 30)?;
            if n < 1 {
                bail!("{f}: minimum k8s upsert timeout is 1s; got {n}s");
            }
            st.settings.k8s_upsert_timeout_secs = n;
        }
        if let Some(v) = suppress_unused_image_warnings {
            st.settings
                .suppress_unused_image_warnings
                .extend(str_or_list(f, "suppress_unused_image_warnings", Some(v))?);
        }
        if let Some(v) = k8s_server_side_apply {
            let s = if let Some(b) = v.unpack_bool() {
                b.to_string()
            } else {
                string(f, "k8s_server_side_apply", v)?
            };
            st.settings.k8s_server_side_apply = s;
        }
        Ok(NoneType)
    }

    /// Settings of `stilt ci`: its overall timeout, readiness timeout and pod grace period.
    fn ci_settings<'v>(
        k8s_grace_period: Option<Value<'v>>,
        timeout: Option<Value<'v>>,
        readiness_timeout: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let c = ctx(eval);
        let f = "ci_settings";
        let mut st = c.st.borrow_mut();
        for (param, v, slot) in [
            ("k8s_grace_period", k8s_grace_period, 0),
            ("timeout", timeout, 1),
            ("readiness_timeout", readiness_timeout, 2),
        ] {
            if let Some(v) = v {
                let s = opt_string(f, param, Some(v))?;
                if !s.is_empty() && !duration_ok(&s) {
                    bail!("{f}: for parameter \"{param}\": invalid duration {s:?}");
                }
                match slot {
                    0 => st.settings.ci_k8s_grace_period = s,
                    1 => st.settings.ci_timeout = s,
                    _ => st.settings.ci_readiness_timeout = s,
                }
            }
        }
        Ok(NoneType)
    }

    /// Whether Kubernetes Secret values are redacted from logs (`disable_scrub=True` turns it off).
    fn secret_settings<'v>(
        disable_scrub: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let d = opt_bool("secret_settings", "disable_scrub", disable_scrub, false)?;
        ctx(eval).st.borrow_mut().settings.secrets_scrub = !d;
        Ok(NoneType)
    }

    /// Version checks: `constraint` is a semver range the running Tilt/Stilt must satisfy.
    fn version_settings<'v>(
        check_updates: Option<Value<'v>>,
        constraint: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let c = ctx(eval);
        let cu = opt_bool("version_settings", "check_updates", check_updates, true)?;
        let con = opt_string("version_settings", "constraint", constraint)?;
        if let Err(msg) = crate::version::check_constraint(&con) {
            bail!("{msg}");
        }
        let mut st = c.st.borrow_mut();
        st.settings.version_check_updates = cu;
        st.settings.version_constraint = con;
        Ok(NoneType)
    }

    /// Global file-watch settings: `ignore` patterns no resource watches.
    fn watch_settings<'v>(
        ignore: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let pats = str_or_list("watch_settings", "ignore", ignore)?;
        let dir = cur_dir(eval);
        ctx(eval).st.borrow_mut().watch_ignores.push((dir, pats));
        Ok(NoneType)
    }

    /// Settings for pruning old images and build cache (accepted for compatibility).
    fn docker_prune_settings<'v>(
        disable: Option<Value<'v>>,
        max_age_mins: Option<Value<'v>>,
        num_builds: Option<Value<'v>>,
        interval_hrs: Option<Value<'v>>,
        keep_recent: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "docker_prune_settings";
        let j = serde_json::json!({
            "disable": opt_bool(f, "disable", disable, false)?,
            "maxAgeMins": opt_int(f, "max_age_mins", max_age_mins, 360)?,
            "numBuilds": opt_int(f, "num_builds", num_builds, 0)?,
            "intervalHrs": opt_int(f, "interval_hrs", interval_hrs, 1)?,
            "keepRecent": opt_int(f, "keep_recent", keep_recent, 2)?,
        });
        ctx(eval).st.borrow_mut().settings.docker_prune = j;
        Ok(NoneType)
    }

    /// Sets the default trigger mode of all resources: `TRIGGER_MODE_AUTO` or `TRIGGER_MODE_MANUAL`.
    fn trigger_mode<'v>(
        trigger_mode: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let tm = trigger_mode_arg("trigger_mode", Some(trigger_mode))?.unwrap_or_default();
        let c = ctx(eval);
        let mut st = c.st.borrow_mut();
        st.default_trigger_mode = tm;
        st.settings.default_trigger_mode = if tm == TriggerMode::Manual {
            "manual"
        } else {
            "auto"
        }
        .into();
        Ok(NoneType)
    }

    /// Pushes built images to this registry (their names rewritten under it).
    ///
    /// # Arguments
    /// * `host`: the registry as seen from this machine, e.g. `'localhost:5000'`.
    /// * `host_from_cluster`: the registry as the cluster sees it, if different.
    /// * `single_name`: push every image under this one repository name.
    fn default_registry<'v>(
        host: Value<'v>,
        host_from_cluster: Option<Value<'v>>,
        single_name: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let f = "default_registry";
        let c = ctx(eval);
        let host = string(f, "host", host)?;
        let hfc = opt_string(f, "host_from_cluster", host_from_cluster)?;
        let single = opt_string(f, "single_name", single_name)?;
        let mut st = c.st.borrow_mut();
        if st.default_registry_set {
            bail!("{f}: default registry already defined");
        }
        if host.is_empty() {
            bail!("{f}: for parameter \"host\": registry host cannot be empty");
        }
        st.default_registry_set = true;
        st.settings.default_registry = Some(DefaultRegistry {
            host,
            host_from_cluster: hfc,
            single_name: single,
        });
        Ok(NoneType)
    }

    /// Allows deploying to these kube contexts (local dev clusters are always allowed; others are refused as possibly production).
    fn allow_k8s_contexts<'v>(
        contexts: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let v = str_or_list("allow_k8s_contexts", "contexts", Some(contexts))?;
        ctx(eval)
            .st
            .borrow_mut()
            .settings
            .allowed_k8s_contexts
            .extend(v);
        Ok(NoneType)
    }

    /// Returns the name of the current kube context.
    fn k8s_context<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(ctx(eval).host.k8s_context())
    }

    /// Returns the default namespace of the current kube context.
    fn k8s_namespace<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(ctx(eval).host.k8s_namespace())
    }

    /// Analytics opt-in/out (accepted for compatibility; Stilt sends none).
    fn analytics_settings<'v>(
        enable: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let e = enable
            .unpack_bool()
            .ok_or_else(|| bad_arg("analytics_settings", "enable", "bool", enable))?;
        ctx(eval).st.borrow_mut().settings.analytics_enabled = Some(e);
        Ok(NoneType)
    }

    /// Accepted for compatibility; does nothing.
    fn experimental_analytics_report<'v>(tags: Value<'v>) -> anyhow::Result<NoneType> {
        let _ = tags;
        Ok(NoneType)
    }

    /// Accepted for compatibility; does nothing.
    fn experimental_metrics_settings<'v>(
        #[starlark(kwargs)] kwargs: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = kwargs;
        ctx(eval).warn("experimental_metrics_settings is deprecated and does nothing".into());
        Ok(NoneType)
    }

    /// A command run periodically to collect telemetry (accepted for compatibility).
    fn experimental_telemetry_cmd<'v>(
        cmd: Value<'v>,
        cmd_bat: Option<Value<'v>>,
        period: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = (cmd_bat, period, dir);
        let argv = crate::builtins::core::to_argv("experimental_telemetry_cmd", "cmd", cmd)?;
        let c = ctx(eval);
        let mut st = c.st.borrow_mut();
        if st.settings.telemetry_cmd.is_some() {
            bail!(
                "experimental_telemetry_cmd called multiple times; already set to {:?}",
                st.settings.telemetry_cmd
            );
        }
        st.settings.telemetry_cmd = Some(argv);
        Ok(NoneType)
    }

    /// Sets the Tilt Cloud team id (accepted for compatibility).
    fn set_team<'v>(
        team_id: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let t = string("set_team", "team_id", team_id)?;
        if t.is_empty() {
            bail!("set_team: team_id cannot be empty");
        }
        ctx(eval).st.borrow_mut().settings.team_id = t;
        Ok(NoneType)
    }

    /// Turns on a feature flag by name.
    fn enable_feature<'v>(
        feature_name: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let n = string("enable_feature", "feature_name", feature_name)?;
        ctx(eval).st.borrow_mut().settings.enabled_features.push(n);
        Ok(NoneType)
    }

    /// Turns off a feature flag by name.
    fn disable_feature<'v>(
        feature_name: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let n = string("disable_feature", "feature_name", feature_name)?;
        ctx(eval).st.borrow_mut().settings.disabled_features.push(n);
        Ok(NoneType)
    }

    /// Disables snapshots (accepted for compatibility).
    fn disable_snapshots<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        ctx(eval).st.borrow_mut().settings.snapshots_disabled = true;
        Ok(NoneType)
    }
}
