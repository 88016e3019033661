//! Tiltfile: one per Tiltfile being executed.

use crate::macros::{api_kind, api_struct};
use crate::meta::{RestartOnSpec, StopOnSpec};
use crate::time::MicroTime;
use std::collections::BTreeMap;

api_kind!(
    /// A Tiltfile to execute; its result is the set of objects it owns.
    Tiltfile, TiltfileSpec, TiltfileStatus
);

api_struct! {
    pub struct TiltfileSpec {
        /// Absolute path to the Tiltfile.
        @required pub path: String,
        /// Labels given to every object the Tiltfile creates.
        pub labels: BTreeMap<String, String>,
        pub restart_on: Option<RestartOnSpec>,
        /// Arguments to the Tiltfile (`stilt up -- args`, `stilt args`).
        pub args: Vec<String>,
        pub stop_on: Option<StopOnSpec>,
    }
}

api_struct! {
    pub struct TiltfileStatus {
        pub waiting: Option<TiltfileStateWaiting>,
        pub running: Option<TiltfileStateRunning>,
        pub terminated: Option<TiltfileStateTerminated>,
    }
}

api_struct! {
    pub struct TiltfileStateWaiting {
        @required pub reason: String,
    }
}

api_struct! {
    pub struct TiltfileStateRunning {
        pub reasons: Vec<String>,
        pub started_at: Option<MicroTime>,
    }
}

api_struct! {
    pub struct TiltfileStateTerminated {
        pub reasons: Vec<String>,
        /// The error, with file:line:column, when the last execution failed.
        pub error: String,
        pub started_at: Option<MicroTime>,
        pub finished_at: Option<MicroTime>,
        pub warning_count: i32,
    }
}
