//! The UI's actions, each a store write following the engine's conventions:
//!
//! * trigger: merge `{"<resource>": "manual"}` into ConfigMap `tilt-trigger-queue` (created when
//!   missing); the engine consumes the key.
//! * disable/enable: ConfigMap `<resource>-disable`, `data.isDisabled` = `"true"`/`"false"`.
//! * trigger mode override: the UIResource annotation `stilt.dev/trigger-mode` (`manual` for
//!   modes 1 and 2, `auto` for 0 and 3), which the engine reads when it decides whether file
//!   changes start builds, and `status.triggerMode` so the UI shows it at once (the engine writes
//!   the same number back).
//! * UIButton click: `status.lastClickedAt` = now and `status.inputs`, written with update_status.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use stilt_api::{MicroTime, UIButton, UIInputStatus};
use stilt_store::{PatchType, Store, StoreError, TypedStore};

pub const TRIGGER_QUEUE: &str = "tilt-trigger-queue";

/// Why an action failed; `status` is the HTTP status to answer with.
#[derive(Debug)]
pub struct ActionError {
    pub status: u16,
    pub message: String,
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        Self {
            status: e.code(),
            message: e.to_string(),
        }
    }
}

fn bad(message: impl Into<String>) -> ActionError {
    ActionError {
        status: 400,
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct TriggerRequest {
    #[serde(default)]
    pub manifest_names: Vec<String>,
    #[serde(default)]
    pub build_reason: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct TriggerModeRequest {
    #[serde(default)]
    pub manifest_names: Vec<String>,
    pub trigger_mode: i32,
}

#[derive(Debug, Deserialize)]
pub struct DisableRequest {
    #[serde(default)]
    pub manifest_names: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Deserialize)]
pub struct ButtonRequest {
    pub name: String,
    #[serde(default)]
    pub inputs: Vec<UIInputStatus>,
}

fn require_resources(store: &Store, names: &[String]) -> Result<(), ActionError> {
    if names.is_empty() {
        return Err(bad("manifest_names must name at least one resource"));
    }
    for n in names {
        if store.get("UIResource", n).is_err() {
            return Err(ActionError {
                status: 404,
                message: format!("no resource named {n:?}"),
            });
        }
    }
    Ok(())
}

/// Merges `data` into a ConfigMap, creating it when it does not exist.
pub fn merge_config_map(
    store: &Store,
    name: &str,
    data: Map<String, Value>,
) -> Result<(), StoreError> {
    let patch = json!({ "data": data });
    loop {
        match store.patch("ConfigMap", name, PatchType::Merge, &patch, false) {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound { .. }) => {
                let obj = json!({
                    "apiVersion": stilt_api::API_VERSION,
                    "kind": "ConfigMap",
                    "metadata": { "name": name },
                    "data": data,
                });
                match store.create(obj) {
                    Ok(_) => return Ok(()),
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// `POST /api/trigger`.
pub fn trigger(store: &Store, req: &TriggerRequest) -> Result<(), ActionError> {
    require_resources(store, &req.manifest_names)?;
    let data: Map<String, Value> = req
        .manifest_names
        .iter()
        .map(|n| (n.clone(), Value::String("manual".into())))
        .collect();
    merge_config_map(store, TRIGGER_QUEUE, data)?;
    Ok(())
}

/// `POST /api/override/trigger_mode`.
pub fn set_trigger_mode(store: &Store, req: &TriggerModeRequest) -> Result<(), ActionError> {
    if !(0..=3).contains(&req.trigger_mode) {
        return Err(bad(format!(
            "invalid trigger_mode {} (want 0..=3)",
            req.trigger_mode
        )));
    }
    require_resources(store, &req.manifest_names)?;
    let manual = matches!(req.trigger_mode, 1 | 2);
    for n in &req.manifest_names {
        store.patch(
            "UIResource",
            n,
            PatchType::Merge,
            &json!({ "metadata": { "annotations": {
                stilt_api::manifest::ANN_TRIGGER_MODE: if manual { "manual" } else { "auto" }
            } } }),
            false,
        )?;
        let mode = if req.trigger_mode == 0 {
            Value::Null
        } else {
            Value::from(req.trigger_mode)
        };
        store.patch(
            "UIResource",
            n,
            PatchType::Merge,
            &json!({ "status": { "triggerMode": mode } }),
            true,
        )?;
    }
    Ok(())
}

/// `POST /api/disable`.
pub fn set_disabled(store: &Store, req: &DisableRequest) -> Result<(), ActionError> {
    if req.manifest_names.is_empty() {
        return Err(bad("manifest_names must name at least one resource"));
    }
    for n in &req.manifest_names {
        let mut data = Map::new();
        data.insert(
            stilt_api::DISABLE_KEY.into(),
            Value::String(req.disabled.to_string()),
        );
        merge_config_map(store, &format!("{n}-disable"), data)?;
    }
    Ok(())
}

/// `POST /api/button`: a click on a UIButton.
pub fn click_button(store: &Store, req: &ButtonRequest) -> Result<(), ActionError> {
    loop {
        let mut button: UIButton = store.get_typed(&req.name)?;
        if button.spec.disabled {
            return Err(bad(format!("button {:?} is disabled", req.name)));
        }
        let mut status = button.status.take().unwrap_or_default();
        status.last_clicked_at = Some(MicroTime::now());
        status.inputs = req.inputs.clone();
        button.status = Some(status);
        match store.update_status_typed(&button) {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
