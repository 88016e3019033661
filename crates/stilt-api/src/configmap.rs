//! ConfigMap: plain string data (no spec/status), e.g. `<resource>-disable`.

use crate::meta::ObjectMeta;
use std::collections::BTreeMap;

/// String key/value data; Stilt uses it for disable state and the trigger queue.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

impl ConfigMap {
    pub const KIND: &'static str = "ConfigMap";

    pub fn new(name: impl Into<String>, data: BTreeMap<String, String>) -> Self {
        Self {
            api_version: crate::API_VERSION.to_string(),
            kind: Self::KIND.to_string(),
            metadata: ObjectMeta::named(name),
            data,
        }
    }
}

/// Key in `<resource>-disable` ConfigMaps.
pub const DISABLE_KEY: &str = "isDisabled";
