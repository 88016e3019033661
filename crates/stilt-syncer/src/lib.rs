//! # stilt-syncer — the persistent channel into a container
//!
//! **Owns:** the wire protocol of Stilt's one-channel-per-container live update ([`proto`]:
//! framing, request and response types), the request loop of the tiny helper program that runs
//! inside the container ([`server::serve`], built as the static `stilt-syncer` binary), and the
//! async client that drives it ([`Client`], feature `client`, on by default).
//!
//! The helper is copied into a container once and then started by ONE long-lived exec; every
//! live-update write, delete, `run` step and syncback listing goes over that exec's
//! stdin/stdout as framed requests, so a change needs no new exec.
//!
//! **Must not:** know how the bytes travel (Kubernetes exec, Docker attach, a test duplex: the
//! client takes any `AsyncRead`/`AsyncWrite`), know about API objects, or pull in anything heavy:
//! the helper is std-only and blocking (static glibc build: about 1.3 MB stripped, see
//! `build-static.sh`; every Stilt build embeds one through stilt-k8s's build script).
//!
//! ```no_run
//! # async fn demo() -> Result<(), stilt_syncer::ClientError> {
//! use stilt_syncer::{Client, RunSpec, WriteEntry};
//! let (ours, theirs) = tokio::io::duplex(1 << 16);
//! let (r, w) = tokio::io::split(ours);
//! // … hand `theirs` to a transport that reaches the helper …
//! # drop(theirs);
//! let mut c = Client::new(r, w);
//! c.hello().await?;
//! c.update(vec!["/app/old.txt".into()], vec![WriteEntry::file("/app/new.txt", 0o644, "hi")]).await?;
//! let out = c.run(RunSpec { argv: vec!["cat".into(), "/app/new.txt".into()], ..Default::default() }).await?;
//! assert_eq!(out.stdout, b"hi");
//! # Ok(()) }
//! ```

pub mod proto;
pub mod server;

#[cfg(feature = "client")]
mod client;

#[cfg(feature = "client")]
pub use client::{Client, ClientError, HelperInfo, RunOutput};
pub use proto::{
    Entry, FileKind, PROTOCOL_VERSION, Request, Response, RunSpec, Stream, WriteEntry, hash_bytes,
};
pub use server::{ServeOptions, serve};

/// Name of the helper binary (and of the directory it is installed into, with a leading dot).
pub const HELPER_NAME: &str = "stilt-syncer";
