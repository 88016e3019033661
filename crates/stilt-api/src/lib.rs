//! `tilt.dev/v1alpha1` object types for Stilt.
//!
//! This crate owns the wire format: every kind's spec and status with Tilt's JSON field names,
//! object metadata, timestamps, field validation (errors name the field path as the Kubernetes API
//! does), and the registry of kinds (plural, short names, table columns, schema).
//!
//! Architecture invariant: no I/O, no async, no knowledge of the store, the HTTP server or any
//! adapter. Everything here is plain data plus pure functions over it.

mod macros;

pub mod meta;
pub mod plain_numbers;
pub mod registry;
pub mod time;
pub mod validation;

pub mod cluster;
pub mod cmd;
pub mod compose;
pub mod configmap;
pub mod extension;
pub mod filewatch;
pub mod image;
pub mod kubernetes;
pub mod liveupdate;
pub mod manifest;
pub mod session;
pub mod syncback;
pub mod tiltfile;
pub mod ui;

pub use cluster::*;
pub use cmd::*;
pub use compose::*;
pub use configmap::*;
pub use extension::*;
pub use filewatch::*;
pub use image::*;
pub use kubernetes::*;
pub use liveupdate::*;
pub use manifest::{Manifest, ResourceType};
pub use meta::*;
pub use registry::{AnyObject, HasMeta, KindInfo, Resource, TableColumn, kind_by_name, kinds};
pub use session::*;
pub use syncback::*;
pub use tiltfile::*;
pub use time::{MicroTime, Time};
pub use ui::*;
pub use validation::{FieldError, Validate};

/// The API group of every Stilt kind.
pub const GROUP: &str = "tilt.dev";
/// The API version of every Stilt kind.
pub const VERSION: &str = "v1alpha1";
/// `group/version`, as written in `apiVersion`.
pub const API_VERSION: &str = "tilt.dev/v1alpha1";

/// Serde helper: Go's `omitempty`.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
