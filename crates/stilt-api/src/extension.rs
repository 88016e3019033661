//! Extension and ExtensionRepo (`load('ext://…')`).

use crate::macros::{api_kind, api_struct};
use crate::time::Time;

api_kind!(
    /// An extension loaded from an extension repo.
    Extension, ExtensionSpec, ExtensionStatus
);

api_struct! {
    pub struct ExtensionSpec {
        @required pub repo_name: String,
        @required pub repo_path: String,
        pub args: Vec<String>,
    }
}

api_struct! {
    pub struct ExtensionStatus {
        pub error: String,
        pub path: String,
    }
}

api_kind!(
    /// A repository of extensions (`https://` or `file://`).
    ExtensionRepo, ExtensionRepoSpec, ExtensionRepoStatus
);

api_struct! {
    pub struct ExtensionRepoSpec {
        @required pub url: String,
        pub r#ref: String,
        pub load_host: String,
        pub git_subpath: String,
    }
}

api_struct! {
    pub struct ExtensionRepoStatus {
        pub error: String,
        pub last_fetched_at: Option<Time>,
        pub path: String,
        pub checkout_ref: String,
        pub stale_reason: String,
    }
}
