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
    globals_for_tools().documentation()
}

/// The globals of a load (the values that depend on the request are placeholders).
fn globals_for_tools() -> starlark::environment::Globals {
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
    crate::builtins::globals_for(&req)
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

/// Every name a Tiltfile can use, read from the loader's globals themselves (not their docs):
/// top-level names, and namespaces' members dotted (`os.path.join`). For the language server's
/// test that nothing registered is missing from completion.
pub fn builtin_names() -> Vec<String> {
    use starlark::values::Heap;
    use starlark::values::Value;
    fn is_namespace(v: Value) -> bool {
        matches!(v.get_type(), "namespace" | "struct")
    }
    fn walk<'v>(prefix: &str, v: Value<'v>, heap: Heap<'v>, out: &mut Vec<String>) {
        for attr in v.dir_attr() {
            let full = format!("{prefix}.{attr}");
            if let Some(inner) = v.get_attr(&attr, heap).ok().flatten()
                && is_namespace(inner)
            {
                walk(&full, inner, heap, out);
            }
            out.push(full);
        }
    }
    let globals = globals_for_tools();
    let mut out = vec![];
    Heap::temp(|heap| {
        for (name, v) in globals.iter() {
            let v = v.to_value();
            if is_namespace(v) {
                walk(name, v, heap, &mut out);
            }
            out.push(name.to_owned());
        }
    });
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_include_namespaces_members() {
        let names = super::builtin_names();
        for n in [
            "docker_build",
            "os",
            "os.getcwd",
            "os.path.join",
            "config.parse",
            "local",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
    }
}
