//! UIResource, UISession, UIButton and ToggleButton: the objects the UIs read.

use crate::macros::{api_kind, api_struct};
use crate::meta::{Condition, DisableSource};
use crate::time::{MicroTime, Time};

api_struct! {
    /// UI objects have no desired state.
    pub struct EmptySpec {}
}

api_kind!(
    /// A resource as shown in the UIs: build history, runtime status, links.
    UIResource, EmptySpec, UIResourceStatus
);

api_struct! {
    pub struct UIResourceStatus {
        pub last_deploy_time: Option<MicroTime>,
        /// 0 auto+auto_init, 1 manual+auto_init, 2 manual+no auto_init, 3 auto+no auto_init.
        pub trigger_mode: i32,
        pub build_history: Vec<UIBuildTerminated>,
        pub current_build: Option<UIBuildRunning>,
        pub pending_build_since: Option<MicroTime>,
        pub has_pending_changes: bool,
        pub endpoint_links: Vec<UIResourceLink>,
        pub k8s_resource_info: Option<UIResourceKubernetes>,
        pub local_resource_info: Option<UIResourceLocal>,
        /// `unknown`, `ok`, `pending`, `error`, `not_applicable` or `none`.
        pub runtime_status: String,
        /// `none`, `in_progress`, `ok`, `pending`, `error` or `not_applicable`.
        pub update_status: String,
        pub specs: Vec<UIResourceTargetSpec>,
        pub queued: bool,
        pub order: i32,
        pub disable_status: Option<DisableResourceStatus>,
        pub waiting: Option<UIResourceStateWaiting>,
        pub conditions: Vec<Condition>,
    }
}

api_struct! {
    pub struct UIBuildRunning {
        pub start_time: Option<MicroTime>,
        #[serde(rename = "spanID")] pub span_id: String,
    }
}

api_struct! {
    pub struct UIBuildTerminated {
        pub error: String,
        pub warnings: Vec<String>,
        pub start_time: Option<MicroTime>,
        pub finish_time: Option<MicroTime>,
        #[serde(rename = "spanID")] pub span_id: String,
        pub is_crash_rebuild: bool,
        /// Stage timings of this build (Stilt extension): name, start and finish.
        pub stages: Vec<UIBuildStage>,
    }
}

api_struct! {
    pub struct UIBuildStage {
        @required pub name: String,
        pub start_time: Option<MicroTime>,
        pub finish_time: Option<MicroTime>,
    }
}

api_struct! {
    pub struct UIResourceLink {
        pub url: String,
        pub name: String,
    }
}

api_struct! {
    pub struct UIResourceKubernetes {
        pub pod_name: String,
        pub pod_creation_time: Option<Time>,
        pub pod_update_start_time: Option<Time>,
        pub pod_status: String,
        pub pod_restarts: i32,
        #[serde(rename = "spanID")] pub span_id: String,
        pub display_names: Vec<String>,
    }
}

api_struct! {
    pub struct UIResourceLocal {
        pub pid: i64,
        pub is_test: bool,
    }
}

api_struct! {
    pub struct UIResourceTargetSpec {
        pub id: String,
        /// `image`, `k8s`, `docker-compose`, `local` or `unspecified`.
        pub r#type: String,
        pub has_live_update: bool,
    }
}

api_struct! {
    pub struct DisableResourceStatus {
        pub enabled_count: i32,
        pub disabled_count: i32,
        /// `Enabled`, `Disabled` or `Error`.
        pub state: String,
        pub sources: Vec<DisableSource>,
    }
}

api_struct! {
    pub struct UIResourceStateWaiting {
        pub reason: String,
        pub on: Vec<UIResourceStateWaitingOnRef>,
    }
}

api_struct! {
    pub struct UIResourceStateWaitingOnRef {
        pub group: String,
        pub api_version: String,
        pub kind: String,
        pub name: String,
    }
}

api_kind!(
    /// Global state of this Stilt session for the UIs.
    UISession, EmptySpec, UISessionStatus
);

api_struct! {
    pub struct UISessionStatus {
        pub feature_flags: Vec<UIFeatureFlag>,
        pub needs_analytics_nudge: bool,
        pub running_tilt_build: Option<TiltBuild>,
        pub suggested_tilt_version: String,
        pub tilt_cloud_username: String,
        pub tilt_cloud_team_name: String,
        pub tilt_cloud_schema_version: String,
        #[serde(rename = "tiltCloudTeamID")] pub tilt_cloud_team_id: String,
        pub fatal_error: String,
        pub tilt_start_time: Option<Time>,
        pub tiltfile_key: String,
        pub version_settings: Option<VersionSettings>,
    }
}

api_struct! {
    pub struct UIFeatureFlag {
        pub name: String,
        pub value: bool,
    }
}

api_struct! {
    pub struct TiltBuild {
        pub version: String,
        #[serde(rename = "commitSHA")] pub commit_sha: String,
        pub date: String,
        pub dev: bool,
    }
}

api_struct! {
    pub struct VersionSettings {
        pub check_updates: bool,
    }
}

api_kind!(
    /// A button in the UI; a click is a status update.
    UIButton, UIButtonSpec, UIButtonStatus
);

api_struct! {
    pub struct UIButtonSpec {
        @required pub location: UIComponentLocation,
        @required pub text: String,
        pub icon_name: String,
        #[serde(rename = "iconSVG")] pub icon_svg: String,
        pub disabled: bool,
        pub requires_confirmation: bool,
        pub inputs: Vec<UIInputSpec>,
    }
}

api_struct! {
    pub struct UIComponentLocation {
        #[serde(rename = "componentID")] @required pub component_id: String,
        /// `Resource` or `Global`.
        @required pub component_type: String,
    }
}

api_struct! {
    pub struct UIInputSpec {
        @required pub name: String,
        pub label: String,
        pub text: Option<UITextInputSpec>,
        pub bool: Option<UIBoolInputSpec>,
        pub hidden: Option<UIHiddenInputSpec>,
        pub choice: Option<UIChoiceInputSpec>,
    }
}

api_struct! {
    pub struct UITextInputSpec {
        pub default_value: String,
        pub placeholder: String,
    }
}

api_struct! {
    pub struct UIBoolInputSpec {
        pub default_value: bool,
        pub true_string: Option<String>,
        pub false_string: Option<String>,
    }
}

api_struct! {
    pub struct UIHiddenInputSpec {
        @required pub value: String,
    }
}

api_struct! {
    pub struct UIChoiceInputSpec {
        pub choices: Vec<String>,
    }
}

api_struct! {
    pub struct UIButtonStatus {
        pub last_clicked_at: Option<MicroTime>,
        pub inputs: Vec<UIInputStatus>,
    }
}

api_struct! {
    pub struct UIInputStatus {
        @required pub name: String,
        pub text: Option<UITextInputStatus>,
        pub bool: Option<UIBoolInputStatus>,
        pub hidden: Option<UIHiddenInputStatus>,
        pub choice: Option<UIChoiceInputStatus>,
    }
}

api_struct! {
    pub struct UITextInputStatus {
        pub value: String,
    }
}

api_struct! {
    pub struct UIBoolInputStatus {
        pub value: bool,
    }
}

api_struct! {
    pub struct UIHiddenInputStatus {
        pub value: String,
    }
}

api_struct! {
    pub struct UIChoiceInputStatus {
        pub value: String,
    }
}

api_kind!(
    /// A two-state button whose state lives in a ConfigMap.
    ToggleButton, ToggleButtonSpec, ToggleButtonStatus
);

api_struct! {
    pub struct ToggleButtonSpec {
        @required pub location: UIComponentLocation,
        @required pub on: ToggleButtonStateSpec,
        @required pub off: ToggleButtonStateSpec,
        pub default_on: bool,
        @required pub state_source: StateSource,
    }
}

api_struct! {
    pub struct ToggleButtonStateSpec {
        @required pub text: String,
        pub icon_name: String,
        #[serde(rename = "iconSVG")] pub icon_svg: String,
        pub requires_confirmation: bool,
    }
}

api_struct! {
    pub struct StateSource {
        pub config_map: Option<ConfigMapStateSource>,
    }
}

api_struct! {
    pub struct ConfigMapStateSource {
        @required pub name: String,
        @required pub key: String,
        pub on_value: String,
        pub off_value: String,
    }
}

api_struct! {
    pub struct ToggleButtonStatus {
        pub error: String,
    }
}
