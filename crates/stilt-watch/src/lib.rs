//! # stilt-watch
//!
//! File watching for Stilt: which paths changed, quickly, in batches.
//!
//! **Owns**
//! * [`ignore`]: `.dockerignore` / `.tiltignore` / `ignore=` matching with
//!   moby's exact semantics (checked against a real Docker daemon), plus
//!   `.gitignore` through the `ignore` crate; "can this directory be skipped"
//!   and "why is this ignored" answers.
//! * [`watcher`]: one inotify instance ([`WatchHub`]) shared by any number of
//!   watch sets ([`WatchSpec`] → [`WatchHandle`]), non-recursive registration
//!   per directory with pruning of ignored directories, new-directory
//!   scanning, overflow rescans, and clear errors for inotify limits.
//! * [`batch`]: adaptive batching (close after 5 ms of quiet, extend while
//!   events keep coming, with a window that grows for long bursts up to
//!   100 ms, cap at 2 s) with per-batch timestamps.
//! * Seams for tests: [`source::EventSource`] (push events by hand with
//!   [`source::FakeSource`]) and [`fs::Fs`] (in-memory [`fs::MemFs`]).
//!
//! **Must not**
//! * know about API objects (FileWatch, LiveUpdate…), the store, or
//!   reconcilers: the FileWatch reconciler turns a FileWatch spec into a
//!   [`WatchSpec`] and [`Batch`]es into status;
//! * talk to Docker or Kubernetes, or read Tiltfiles;
//! * depend on any other workspace crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use stilt_watch::{Ignores, WatchHub, WatchSpec};
//! use stilt_watch::ignore::DockerIgnore;
//!
//! let hub = WatchHub::new()?; // one per process
//! let root = Path::new("/src/app");
//! let ignores = Ignores::new([
//!     DockerIgnore::from_file(root, &root.join(".dockerignore"))?.into(),
//!     DockerIgnore::from_patterns(root, "ignore=", &["*.log", "tmp/"])?.into(),
//! ]);
//! let mut handle = hub.watch(WatchSpec::new([root]).ignores(ignores)).await?;
//! while let Some(batch) = handle.recv().await {
//!     println!("{} paths, waited {:?}", batch.paths.len(), batch.closed - batch.first_event);
//! }
//! # Ok(()) }
//! ```

pub mod batch;
pub mod error;
pub mod fs;
pub mod ignore;
pub mod inotify_source;
pub mod source;
pub mod watcher;

pub use batch::{Batch, BatchConfig};
pub use error::WatchError;
pub use ignore::Ignores;
pub use watcher::{WatchHandle, WatchHub, WatchSpec, WatchStats};
