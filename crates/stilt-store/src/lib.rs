//! The object store: every `tilt.dev/v1alpha1` object Stilt knows, versioned and watchable.
//!
//! One global, monotonic resourceVersion orders every write. Writers never wait for readers: each
//! watcher has a bounded queue, and a watcher that falls behind is closed (its stream ends with
//! [`WatchEnd::Lagged`]) so it relists, rather than silently missing events. A bounded history lets
//! watchers resume from a resourceVersion; older ones get [`StoreError::Gone`].
//!
//! Architecture invariant: no I/O, no HTTP, no knowledge of controllers. Objects are stored as JSON
//! (`serde_json::Value`) and validated through the `stilt-api` registry; typed accessors decode on
//! the way out.

mod error;
mod patch;
mod selector;
mod store;
mod typed;

pub use error::StoreError;
pub use patch::PatchType;
pub use selector::{FieldSelector, LabelSelector, Selectors};
pub use store::{Event, EventType, Store, StoreOptions, Watch, WatchEnd, WatchFrom, WatchStream};
pub use typed::TypedStore;
