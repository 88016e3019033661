//! Session: what this Stilt process is running and whether it is done (the `ci` exit rule).

use crate::macros::{api_kind, api_struct};
use crate::time::MicroTime;

api_kind!(
    /// Introspective data about this Stilt process; `stilt ci` exits when `status.done`.
    Session, SessionSpec, SessionStatus
);

api_struct! {
    pub struct SessionSpec {
        /// Path to the Tiltfile for the run. Must not be empty.
        @required pub tiltfile_path: String,
        /// `manual` (run until stopped) or `ci` (exit when every target is done or one fails).
        @required pub exit_condition: String,
        pub ci: Option<SessionCISpec>,
    }
}

pub const EXIT_CONDITION_MANUAL: &str = "manual";
pub const EXIT_CONDITION_CI: &str = "ci";

api_struct! {
    pub struct SessionCISpec {
        /// Grace period for Kubernetes errors (e.g. image pull backoff) before failing.
        pub k8s_grace_period: Option<String>,
        /// Overall timeout (default 30m).
        pub timeout: Option<String>,
        pub readiness_timeout: Option<String>,
    }
}

api_struct! {
    pub struct SessionStatus {
        @required pub pid: i64,
        @required pub start_time: MicroTime,
        @required pub targets: Vec<Target>,
        @required pub done: bool,
        pub error: String,
    }
}

api_struct! {
    /// A server or job run as part of this session.
    pub struct Target {
        @required pub name: String,
        @required pub resources: Vec<String>,
        /// `job` (runs to completion) or `server` (runs indefinitely).
        @required pub r#type: String,
        @required pub state: TargetState,
    }
}

pub const TARGET_TYPE_JOB: &str = "job";
pub const TARGET_TYPE_SERVER: &str = "server";

api_struct! {
    /// Exactly one of waiting / active / disabled / terminated, or none (inactive).
    pub struct TargetState {
        pub waiting: Option<TargetStateWaiting>,
        pub active: Option<TargetStateActive>,
        pub disabled: Option<TargetStateDisabled>,
        pub terminated: Option<TargetStateTerminated>,
    }
}

api_struct! {
    pub struct TargetStateWaiting {
        @required pub wait_reason: String,
    }
}

api_struct! {
    pub struct TargetStateActive {
        @required pub start_time: MicroTime,
        @required pub ready: bool,
    }
}

api_struct! {
    pub struct TargetStateDisabled {}
}

api_struct! {
    pub struct TargetStateTerminated {
        @required pub start_time: MicroTime,
        @required pub finish_time: MicroTime,
        pub error: String,
        pub grace_status: String,
    }
}
