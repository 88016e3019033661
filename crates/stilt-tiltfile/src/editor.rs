//! What editor tooling (`stilt lsp`) needs from the loader, so it cannot drift from what a load
//! sees: the builtins' documentation taken from the very `Globals` every load registers, and the
//! parser with Stilt's dialect (and its `while` rewrite).
//!
//! These return starlark's syntax and documentation types (never runtime values): the language
//! server is built on starlark-rust's own LSP, which speaks them.

use std::path::PathBuf;

use starlark::docs::DocModule;
use starlark::syntax::AstModule;

use crate::eval::ReqInfo;

/// Documentation of every global a Tiltfile can use (functions with their parameters and doc
/// comments, namespaces such as `os` and `config` as modules, constants).
pub fn builtins_doc() -> DocModule {
    let req = ReqInfo {
        main_path: PathBuf::from("/Tiltfile"),
        main_dir: PathBuf::from("/"),
        args: vec![],
        subcommand: "up".into(),
        web_host: "localhost".into(),
        extensions_dir: None,
        ext_cache: None,
        argv: vec![],
        executable: String::new(),
        cancel: None,
        offline: true,
    };
    crate::builtins::globals_for(&req).documentation()
}

/// Parse a Tiltfile as the loader does (Stilt's dialect; `while` loops rewritten, which keeps
/// every line where it was).
pub fn parse(filename: &str, text: &str) -> starlark::Result<AstModule> {
    let src = crate::whileloop::rewrite(text).into_owned();
    AstModule::parse(filename, src, &crate::eval::dialect())
}

/// The source of an extension Stilt builds in (`ext://syncback`), if `name` is one.
pub fn builtin_extension(name: &str) -> Option<&'static str> {
    crate::builtins::extensions::native_source(std::path::Path::new(&stilt_extrepo::builtin_path(
        name,
    )))
}
