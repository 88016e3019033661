//! Functions written in Starlark (in the document, or `load()`ed from a file or an extension,
//! such as `docker_build_with_restart`) as documented signatures, for signature help on calls
//! to them.

use std::path::Path;
use std::path::PathBuf;

use starlark::docs::DocFunction;
use starlark::docs::DocParam;
use starlark::docs::DocParams;
use starlark::docs::DocStringKind;
use starlark::syntax::AstModule;
use starlark::typing::Ty;
use starlark_syntax::codemap::CodeMap;
use starlark_syntax::syntax::ast::AstLiteral;
use starlark_syntax::syntax::ast::AstNoPayload;
use starlark_syntax::syntax::ast::AstStmt;
use starlark_syntax::syntax::ast::DefP;
use starlark_syntax::syntax::ast::ExprP;
use starlark_syntax::syntax::ast::ParameterP;
use starlark_syntax::syntax::ast::StmtP;
use starlark_syntax::syntax::module::AstModuleFields;
use starlark_syntax::syntax::top_level_stmts::top_level_stmts;

/// How far `load()` chains are followed (a loads b loads c …).
const MAX_DEPTH: usize = 4;

/// Where a function a file can call is written: a top-level `def` here, or a `load()` naming it.
enum Found {
    Def(Box<DocFunction>),
    Loaded { module: String, name: String },
}

fn find(ast: &AstModule, name: &str) -> Option<Found> {
    let codemap = ast.codemap();
    for stmt in top_level_stmts(ast.statement()) {
        match &stmt.node {
            StmtP::Def(def) if def.name.ident == name => {
                return Some(Found::Def(Box::new(doc_function(def, codemap))));
            }
            StmtP::Load(load) => {
                if let Some(arg) = load.args.iter().find(|a| a.local.ident == name) {
                    return Some(Found::Loaded {
                        module: load.module.node.clone(),
                        name: arg.their.node.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// The signature of the function `name` as `file` (with `text`) sees it; `resolve` turns a
/// `load()` path of a file into the loaded file, `read` gives a file's text.
pub fn function(
    file: &Path,
    text: &str,
    name: &str,
    resolve: &dyn Fn(&str, &Path) -> Option<PathBuf>,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Option<DocFunction> {
    let mut file = file.to_path_buf();
    let mut text = text.to_owned();
    let mut name = name.to_owned();
    for _ in 0..MAX_DEPTH {
        let ast = stilt_tiltfile::editor::parse(&file.display().to_string(), &text).ok()?;
        match find(&ast, &name)? {
            Found::Def(f) => return Some(*f),
            Found::Loaded { module, name: n } => {
                let next = resolve(&module, &file)?;
                text = read(&next)?;
                file = next;
                name = n;
            }
        }
    }
    None
}

/// A `def`'s parameters (defaults as written) and docstring (`Args:` lines become parameter
/// docs).
fn doc_function(def: &DefP<AstNoPayload>, codemap: &CodeMap) -> DocFunction {
    let param = |name: &str, default: Option<String>| DocParam {
        name: name.to_owned(),
        docs: None,
        typ: Ty::any(),
        default_value: default,
    };
    let mut params = DocParams::default();
    let mut named_only = false;
    for p in &def.params {
        match &p.node {
            ParameterP::Slash => params.pos_only = std::mem::take(&mut params.pos_or_named),
            ParameterP::Normal(id, _, default) => {
                let d = default
                    .as_ref()
                    .map(|e| codemap.source_span(e.span).to_owned());
                let dp = param(&id.ident, d);
                if named_only {
                    params.named_only.push(dp);
                } else {
                    params.pos_or_named.push(dp);
                }
            }
            ParameterP::NoArgs => named_only = true,
            ParameterP::Args(id, _) => {
                named_only = true;
                params.args = Some(param(&id.ident, None));
            }
            ParameterP::KwArgs(id, _) => params.kwargs = Some(param(&id.ident, None)),
        }
    }
    DocFunction::from_docstring(
        DocStringKind::Starlark,
        params,
        Ty::any(),
        docstring(&def.body).as_deref(),
    )
}

/// The string literal a body starts with.
fn docstring(body: &AstStmt) -> Option<String> {
    let first = match &body.node {
        StmtP::Statements(stmts) => stmts.first()?,
        _ => body,
    };
    match &first.node {
        StmtP::Expression(e) => match &e.node {
            ExprP::Literal(AstLiteral::String(s)) => Some(s.node.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defs_here_and_through_loads_with_params_and_docstrings() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("lib.star");
        let ext = d.path().join("ext.star");
        std::fs::write(
            &lib,
            "load('./ext.star', inner = 'deep')\n\ndef helper(ref, context = '.', *args, live = [], **kw):\n    \"\"\"Builds a thing.\n\n    Args:\n      ref: the image.\n    \"\"\"\n    pass\n",
        )
        .unwrap();
        std::fs::write(&ext, "def deep(a, b, *, c = 1):\n    pass\n").unwrap();
        let main = d.path().join("Tiltfile");
        let text = "load('./lib.star', 'helper', h = 'inner')\ndef local_fn(x, y = 2):\n    pass\n";
        let resolve = |m: &str, from: &Path| Some(from.parent()?.join(m));
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let names = |f: &DocFunction| {
            let p = &f.params;
            (
                p.pos_only
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>(),
                p.pos_or_named
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>(),
                p.args.as_ref().map(|p| p.name.clone()),
                p.named_only
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>(),
                p.kwargs.as_ref().map(|p| p.name.clone()),
            )
        };

        let f = function(&main, text, "local_fn", &resolve, &read).unwrap();
        assert_eq!(names(&f).1, vec!["x", "y"]);
        assert_eq!(f.params.pos_or_named[1].default_value.as_deref(), Some("2"));

        let f = function(&main, text, "helper", &resolve, &read).unwrap();
        assert_eq!(
            names(&f),
            (
                vec![],
                vec!["ref".to_owned(), "context".to_owned()],
                Some("args".to_owned()),
                vec!["live".to_owned()],
                Some("kw".to_owned())
            )
        );
        assert_eq!(f.docs.as_ref().unwrap().summary, "Builds a thing.");
        let ref_doc = f.params.pos_or_named[0].docs.as_ref().unwrap();
        assert_eq!(ref_doc.summary, "the image.");

        // Through two loads and an alias.
        let f = function(&main, text, "h", &resolve, &read).unwrap();
        assert_eq!(
            names(&f),
            (
                vec![],
                vec!["a".to_owned(), "b".to_owned()],
                None,
                vec!["c".to_owned()],
                None
            )
        );

        assert!(function(&main, text, "nope", &resolve, &read).is_none());
    }
}
