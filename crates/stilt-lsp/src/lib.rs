//! `stilt lsp`: a Tiltfile language server over stdio.
//!
//! Built on starlark-rust's `starlark_lsp` (same release as the loader's starlark): it parses
//! documents, completes names (globals, locals, `load()`ed symbols, parameter names), hovers and
//! goes to definitions through `load()`. Stilt plugs in through [`context::TiltContext`]: the
//! loader's parser and builtins table (so completion and docs cannot drift from what a load
//! registers), diagnostics from a real load in check mode ([`check`]: no command runs, no cluster
//! or network is touched) and `ext://` resolution as the loader did it. [`server`] fronts the
//! JSON-RPC loop to add what starlark_lsp lacks: signature help, namespaced members (`os.`,
//! `config.`), re-checks on save.

pub mod check;
pub mod context;
pub mod defs;
pub mod docs;
pub mod server;
pub mod text;

pub use check::CheckConfig;
pub use server::ServeError;
pub use server::serve;
pub use server::serve_stdio;
