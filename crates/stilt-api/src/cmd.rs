//! Cmd: a local process.

use crate::macros::{api_kind, api_struct};
use crate::meta::{DisableSource, DisableStatus, Probe, RestartOnSpec, StartOnSpec};
use crate::time::MicroTime;

api_kind!(
    /// A process run on the host.
    Cmd, CmdSpec, CmdStatus
);

api_struct! {
    pub struct CmdSpec {
        /// The command and its arguments. At least one.
        @required pub args: Vec<String>,
        /// Working directory (absolute).
        pub dir: String,
        /// `KEY=value` entries added to Stilt's environment.
        pub env: Vec<String>,
        pub readiness_probe: Option<Probe>,
        pub restart_on: Option<RestartOnSpec>,
        pub start_on: Option<StartOnSpec>,
        pub disable_source: Option<DisableSource>,
    }
}

api_struct! {
    pub struct CmdStatus {
        pub waiting: Option<CmdStateWaiting>,
        pub running: Option<CmdStateRunning>,
        pub terminated: Option<CmdStateTerminated>,
        /// Whether the readiness probe (or process start, without a probe) passed.
        pub ready: bool,
        pub disable_status: Option<DisableStatus>,
    }
}

api_struct! {
    pub struct CmdStateWaiting {
        pub reason: String,
    }
}

api_struct! {
    pub struct CmdStateRunning {
        @required pub pid: i32,
        @required pub started_at: MicroTime,
    }
}

api_struct! {
    pub struct CmdStateTerminated {
        @required pub pid: i32,
        @required pub exit_code: i32,
        @required pub started_at: MicroTime,
        @required pub finished_at: MicroTime,
        pub reason: String,
    }
}
