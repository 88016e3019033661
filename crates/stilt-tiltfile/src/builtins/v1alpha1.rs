//! The `v1alpha1` module: raw API object constructors (registered into the result as-is, owned by
//! the Tiltfile) and the helper constructors, which return dicts in API (camelCase) shape.

use anyhow::bail;
use serde_json::Value as Json;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;

use crate::convert::*;
use crate::eval::ctx;

fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in s.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out.replace("Svg", "SVG")
        .replace("Uid", "UID")
        .replace("Url", "URL")
        .replace("componentId", "componentID")
}

fn camelize(j: Json, rename_keys: bool) -> Json {
    match j {
        Json::Object(m) => Json::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = if rename_keys { camel(&k) } else { k.clone() };
                    // Maps of user data (env, labels, data, matchLabels) keep their keys.
                    let keep = matches!(
                        k.as_str(),
                        "data" | "labels" | "annotations" | "match_labels" | "env_vars"
                    );
                    (key, camelize(v, !keep))
                })
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.into_iter().map(|v| camelize(v, rename_keys)).collect()),
        o => o,
    }
}

fn kwargs_json(kwargs: Value) -> anyhow::Result<serde_json::Map<String, Json>> {
    let mut m = serde_json::Map::new();
    if let Some(d) = DictRef::from_value(kwargs) {
        for (k, v) in d.iter() {
            if v.is_none() {
                continue;
            }
            let k = k.unpack_str().unwrap_or_default().to_owned();
            m.insert(k, value_to_json(v)?);
        }
    }
    Ok(m)
}

fn register_object(
    eval: &Evaluator,
    kind: &str,
    name: &str,
    labels: Option<Value>,
    annotations: Option<Value>,
    kwargs: Value,
) -> anyhow::Result<NoneType> {
    let f = format!("v1alpha1.{}", crate::objects::snake(kind));
    if name.is_empty() {
        bail!("{f}: for parameter \"name\": name cannot be empty");
    }
    let labels: serde_json::Map<String, Json> = str_dict(&f, "labels", labels)?
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    let annotations: serde_json::Map<String, Json> = str_dict(&f, "annotations", annotations)?
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    let kw = kwargs_json(kwargs)?;
    let mut meta = serde_json::json!({"name": name});
    if !labels.is_empty() {
        meta["labels"] = Json::Object(labels);
    }
    if !annotations.is_empty() {
        meta["annotations"] = Json::Object(annotations);
    }
    let mut obj =
        serde_json::json!({"apiVersion": "tilt.dev/v1alpha1", "kind": kind, "metadata": meta});
    if kind == "ConfigMap" {
        if let Some(d) = kw.get("data") {
            obj["data"] = d.clone();
        }
    } else {
        obj["spec"] = camelize(Json::Object(kw.clone()), true);
    }
    let c = ctx(eval);
    let mut st = c.st.borrow_mut();
    if kind == "ExtensionRepo" {
        let g = |k: &str| kw.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        st.ext_repos.retain(|r| r.name != name);
        st.ext_repos.push(crate::model::ExtRepo {
            name: name.to_owned(),
            url: g("url"),
            load_host: g("load_host"),
            r#ref: g("ref"),
            git_subpath: g("git_subpath"),
        });
    }
    st.raw_objects
        .retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
    st.raw_objects.push(obj);
    Ok(NoneType)
}

macro_rules! object_ctors {
    ($($fn:ident => $kind:literal),* $(,)?) => {
        #[starlark_module]
        fn objects(builder: &mut GlobalsBuilder) {
            $(
            fn $fn<'v>(
                name: &str,
                labels: Option<Value<'v>>,
                annotations: Option<Value<'v>>,
                #[starlark(kwargs)] kwargs: Value<'v>,
                eval: &mut Evaluator<'v, '_, '_>,
            ) -> anyhow::Result<NoneType> {
                register_object(eval, $kind, name, labels, annotations, kwargs)
            }
            )*
        }
    };
}

object_ctors! {
    cmd => "Cmd",
    config_map => "ConfigMap",
    extension => "Extension",
    extension_repo => "ExtensionRepo",
    file_watch => "FileWatch",
    kubernetes_apply => "KubernetesApply",
    kubernetes_discovery => "KubernetesDiscovery",
    ui_button => "UIButton",
}

macro_rules! helper_ctors {
    ($($fn:ident),* $(,)?) => {
        #[starlark_module]
        fn helpers(builder: &mut GlobalsBuilder) {
            $(
            fn $fn<'v>(
                #[starlark(kwargs)] kwargs: Value<'v>,
                eval: &mut Evaluator<'v, '_, '_>,
            ) -> anyhow::Result<Value<'v>> {
                let j = camelize(Json::Object(kwargs_json(kwargs)?), true);
                Ok(json_to_value(&j, eval.heap()))
            }
            )*
        }
    };
}

helper_ctors! {
    config_map_disable_source, disable_source, exec_action, forward, http_get_action, http_header,
    handler, ignore_def, kubernetes_apply_cmd, kubernetes_discovery_template_spec,
    kubernetes_image_locator, kubernetes_image_object_descriptor, kubernetes_watch_ref,
    label_selector, label_selector_requirement, object_selector, pod_log_stream_template_spec,
    port_forward_template_spec, probe, restart_on_spec, start_on_spec, tcp_socket_action,
    ui_bool_input_spec, ui_choice_input_spec, ui_component_location, ui_hidden_input_spec,
    ui_input_spec, ui_text_input_spec,
}

pub(crate) fn register(b: &mut GlobalsBuilder) {
    objects(b);
    helpers(b);
}
