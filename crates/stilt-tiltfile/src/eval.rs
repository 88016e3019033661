//! The evaluator: one `Evaluator` per file, a loader bound to each file's directory, a shared
//! per-load context in `eval.extra` (read through [`ctx`]), and the Tilt dialect.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::anyhow;
use starlark::any::ProvidesStaticType;
use starlark::codemap::FileSpanRef;
use starlark::environment::FrozenModule;
use starlark::environment::Globals;
use starlark::environment::Module;
use starlark::eval::FileLoader;
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator};
use starlark::syntax::AstModule;
use starlark::syntax::Dialect;
use starlark::values::FrozenHeapName;

use crate::host::HostEnv;
use crate::model::State;

/// Hidden global where `workload_to_resource_function` parks its callback.
pub(crate) const W2R_GLOBAL: &str = "__stilt_workload_to_resource_function";

/// Per-load request data the builtins need.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqInfo {
    pub main_path: PathBuf,
    pub main_dir: PathBuf,
    pub args: Vec<String>,
    pub subcommand: String,
    pub web_host: String,
    pub extensions_dir: Option<PathBuf>,
    pub ext_cache: Option<stilt_extrepo::Cache>,
    pub argv: Vec<String>,
    pub executable: String,
    /// Set by the caller to stop evaluation at the next statement.
    pub cancel: Option<Arc<AtomicBool>>,
    /// No network: git extension repos only from the cache.
    pub offline: bool,
}

/// The shared context of one load, in `eval.extra` for every file's evaluator.
#[derive(ProvidesStaticType)]
pub(crate) struct Ctx<'h> {
    pub host: &'h dyn HostEnv,
    pub req: ReqInfo,
    pub st: RefCell<State>,
    loaded: RefCell<HashMap<PathBuf, FrozenModule>>,
    loading: RefCell<Vec<PathBuf>>,
    pub globals: Globals,
    pub yaml_prefetch: crate::prefetch::YamlPrefetch,
    /// Whether a directory holds a `.git`, asked once per load: every build context walks up
    /// to the root, and at 200 builds the shared parents were asked a thousand times.
    pub git_dirs: RefCell<HashMap<PathBuf, bool>>,
}

impl<'h> Ctx<'h> {
    pub fn new(host: &'h dyn HostEnv, req: ReqInfo) -> Self {
        let globals = crate::builtins::globals_for(&req);
        Ctx {
            host,
            req,
            st: RefCell::new(State::default()),
            loaded: RefCell::new(HashMap::new()),
            loading: RefCell::new(vec![]),
            globals,
            yaml_prefetch: Default::default(),
            git_dirs: RefCell::new(HashMap::new()),
        }
    }

    pub fn log(&self, s: &str) {
        let mut st = self.st.borrow_mut();
        st.logs.push_str(s);
        if !s.ends_with('\n') {
            st.logs.push('\n');
        }
    }

    pub fn warn(&self, s: String) {
        self.log(&format!("WARNING: {s}"));
        self.st.borrow_mut().warnings.push(s);
    }

    pub fn add_config_file(&self, p: &Path) {
        self.st.borrow_mut().config_files.insert(p.to_path_buf());
    }

    /// Current value of an environment variable, honouring os.putenv/unsetenv.
    pub fn getenv(&self, key: &str) -> Option<String> {
        crate::builtins::os::env_get(key)
    }

    /// Environment to pass to subprocesses on top of the host's (the Tiltfile's view of it).
    pub fn env_overrides(&self) -> Vec<(String, String)> {
        crate::builtins::os::env_all()
    }
}

/// Typed accessor over `eval.extra`.
pub(crate) fn ctx<'a, 'e>(eval: &Evaluator<'_, 'a, 'e>) -> &'a Ctx<'e> {
    let extra: &'a dyn starlark::any::AnyLifetime<'e> =
        eval.extra.expect("stilt: evaluator without context");
    extra
        .downcast_ref::<Ctx<'e>>()
        .expect("stilt: evaluator extra is not a Ctx")
}

/// The file being executed (the innermost `load`/`include` in progress, else the main
/// Tiltfile): Tilt resolves relative paths against its directory, also when the calling code was
/// defined in another file — a function from an extension called by the Tiltfile resolves
/// against the Tiltfile, while the extension's own top-level code resolves against the extension.
pub(crate) fn cur_file(eval: &Evaluator) -> PathBuf {
    let c = ctx(eval);
    c.loading
        .borrow()
        .last()
        .cloned()
        .unwrap_or_else(|| c.req.main_path.clone())
}

pub(crate) fn cur_dir(eval: &Evaluator) -> PathBuf {
    let f = cur_file(eval);
    f.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `file:line:col` of the current call site.
pub(crate) fn call_site(eval: &Evaluator) -> String {
    match eval.call_stack_top_location() {
        Some(loc) => {
            let r = loc.resolve_span();
            format!(
                "{}:{}:{}",
                loc.filename(),
                r.begin.line + 1,
                r.begin.column + 1
            )
        }
        None => String::new(),
    }
}

/// Resolve `p` against `dir` and clean `.`/`..` components (like Go's filepath.Join/Abs).
pub(crate) fn abs_path(dir: &Path, p: &str) -> PathBuf {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        dir.join(p)
    };
    clean(&joined)
}

pub(crate) fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

pub(crate) fn dialect() -> Dialect {
    Dialect {
        enable_top_level_stmt: true,
        enable_f_strings: true,
        enable_keyword_only_arguments: true,
        enable_load_reexport: true,
        ..Dialect::Standard
    }
}

/// A parse error at the very end of the file points past the last character, where starlark
/// renders no snippet (or the wrong line, after a final newline). Re-anchor it on a padded copy of
/// the source so the diagnostic shows the real line and column (as Tilt does: `got end of file`),
/// and name the bracket left open.
fn at_end_of_file(e: starlark::Error, filename: &str, src: &str) -> starlark::Error {
    use starlark::codemap::{CodeMap, Pos, Span};
    let at_end = e
        .span()
        .is_some_and(|s| s.span.begin().get() as usize >= src.len());
    if !at_end {
        return e;
    }
    let detail = match unclosed_bracket(src) {
        Some((open, line, col)) => {
            let close = match open {
                '(' => ')',
                '[' => ']',
                _ => '}',
            };
            format!(
                "Parse error: unexpected end of file, want '{close}' (the '{open}' at {line}:{col} is not closed)"
            )
        }
        None => "Parse error: unexpected end of file".to_owned(),
    };
    let padded = CodeMap::new(filename.to_owned(), format!("{src} "));
    let end = src.len() as u32;
    starlark::Error::new_spanned(
        starlark::ErrorKind::Parser(anyhow!(detail)),
        Span::new(Pos::new(end), Pos::new(end + 1)),
        &padded,
    )
}

/// The innermost bracket still open at the end of `src` (line and column 1-based), skipping
/// strings and comments.
fn unclosed_bracket(src: &str) -> Option<(char, usize, usize)> {
    let mut stack: Vec<(char, usize, usize)> = vec![];
    let (mut line, mut col) = (1, 0);
    let mut chars = src.chars().peekable();
    // Inside a string: its quote, whether it is triple-quoted, and how many quotes in a row.
    let mut quote: Option<(char, bool, usize)> = None;
    while let Some(ch) = chars.next() {
        col += 1;
        if ch == '\n' {
            line += 1;
            col = 0;
        }
        if let Some((q, triple, run)) = quote {
            quote = if ch == '\\' {
                match chars.next() {
                    Some('\n') => {
                        line += 1;
                        col = 0;
                    }
                    Some(_) => col += 1,
                    None => {}
                }
                Some((q, triple, 0))
            } else if ch == q && !triple {
                None
            } else if ch == q {
                (run + 1 < 3).then_some((q, true, run + 1))
            } else if ch == '\n' && !triple {
                None
            } else {
                Some((q, triple, 0))
            };
            continue;
        }
        match ch {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        col = 0;
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let mut ahead = chars.clone();
                let triple = ahead.next() == Some(ch) && ahead.next() == Some(ch);
                if triple {
                    chars.next();
                    chars.next();
                    col += 2;
                }
                quote = Some((ch, triple, 0));
            }
            '(' | '[' | '{' => stack.push((ch, line, col)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// Resolve a load() path from the directory of the loading file.
pub(crate) fn resolve_load_path(c: &Ctx, dir: &Path, path: &str) -> anyhow::Result<PathBuf> {
    if let Some(rest) = path.strip_prefix("ext://") {
        let p = crate::builtins::extensions::resolve_ext(c, rest)?;
        c.st.borrow_mut()
            .ext_paths
            .insert(path.to_owned(), p.clone());
        return Ok(p);
    }
    let p = abs_path(dir, path);
    if c.host.is_dir(&p) {
        return Ok(p.join("Tiltfile"));
    }
    Ok(p)
}

/// Execute one file (at most once per load) and return its frozen module.
pub(crate) fn exec_file(c: &Ctx, path: &Path, is_main: bool) -> starlark::Result<FrozenModule> {
    if let Some(m) = c.loaded.borrow().get(path) {
        return Ok(m.clone());
    }
    if c.loading.borrow().iter().any(|p| p == path) {
        let chain: Vec<String> = c
            .loading
            .borrow()
            .iter()
            .chain(std::iter::once(&path.to_path_buf()))
            .map(|p| p.display().to_string())
            .collect();
        return Err(starlark::Error::new_other(anyhow!(
            "Circular load: {}",
            chain.join(" -> ")
        )));
    }
    // Built-in modules (`ext://syncback`): embedded source, own globals, nothing to watch.
    let native = crate::builtins::extensions::native_source(path);
    let native_globals = native.map(|_| crate::builtins::syncback::ext_globals());
    let src = match native {
        Some(s) => s.to_owned(),
        None => {
            c.add_config_file(path);
            match c.host.read_file(path) {
                Ok(b) => {
                    let src = String::from_utf8_lossy(&b).into_owned();
                    if let Some(dir) = path.parent() {
                        c.yaml_prefetch.scan(dir, &src);
                    }
                    src
                }
                Err(e) => {
                    return Err(starlark::Error::new_other(anyhow!(
                        "error reading file {}: {}",
                        path.display(),
                        e
                    )));
                }
            }
        }
    };
    let filename = path.display().to_string();
    // `while` loops become `for` loops first (starlark-rust has no `while`).
    let src = crate::whileloop::rewrite(&src).into_owned();
    let ast = match AstModule::parse(&filename, src.clone(), &dialect()) {
        Ok(a) => a,
        Err(e) => return Err(at_end_of_file(e, &filename, &src)),
    };
    c.loading.borrow_mut().push(path.to_path_buf());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let res = Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
        let heap = module.heap();
        module.set("__file__", heap.alloc(filename.as_str()));
        let name = if is_main {
            "__main__".to_owned()
        } else {
            path.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        module.set("__name__", heap.alloc(name));
        let loader = Loader {
            c,
            dir: dir.clone(),
        };
        let printer = Printer { c };
        {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(c);
            watch_for_cancel(&mut eval, c);
            eval.set_loader(&loader);
            eval.set_print_handler(&printer);
            match eval.eval_module(ast, native_globals.as_ref().unwrap_or(&c.globals)) {
                Ok(_) => {}
                Err(e) if is_main && is_stop(&e) => {}
                Err(e) => return Err(e),
            }
        }
        module
            .freeze_named(FrozenHeapName::User(Box::new(filename.clone())))
            .map_err(|e| starlark::Error::new_other(anyhow!("freezing {filename}: {e:?}")))
    });
    c.loading.borrow_mut().pop();
    let m = res?;
    c.loaded.borrow_mut().insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// Compiles and runs a few lines of plain Starlark with `globals`: the interpreter builds some
/// of its own tables on first use, and [`crate::warm_up`] has that done before a load needs them.
pub(crate) fn warm_evaluator(globals: &Globals) -> starlark::Result<()> {
    const WARM: &str =
        "def f(x, y = None):\n    return {'a': [x, str(x)], 'b': y or struct(c = x)}\n\nf(1)\n";
    let ast = AstModule::parse("warm-up", WARM.to_owned(), &dialect())?;
    Module::with_temp_heap(|module| {
        let mut eval = Evaluator::new(&module);
        eval.eval_module(ast, globals).map(drop)
    })
}

/// Start of the message of an evaluation stopped through `LoadRequest::cancel`.
pub(crate) const INTERRUPTED: &str = "Tiltfile evaluation interrupted at";

/// Checks the cancel flag before every statement, so even a loop that never calls a builtin
/// stops. Every evaluator of a load gets it (or none does): code compiled with the check may run
/// in another file's evaluator.
fn watch_for_cancel(eval: &mut Evaluator, c: &Ctx) {
    if let Some(flag) = &c.req.cancel {
        eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(CancelCheck(
            flag.clone(),
        ))));
    }
}

struct CancelCheck(Arc<AtomicBool>);

impl<'e> BeforeStmtFuncDyn<'e> for CancelCheck {
    fn call<'v>(
        &mut self,
        span: FileSpanRef,
        _continued: bool,
        _eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        if !self.0.load(Ordering::Relaxed) {
            return Ok(());
        }
        let at = span.resolve_span();
        Err(starlark::Error::new_other(anyhow!(
            "{INTERRUPTED} {}:{}:{}",
            span.file.filename(),
            at.begin.line + 1,
            at.begin.column + 1
        )))
    }
}

/// Marker message of `exit()`: stops evaluation successfully.
pub(crate) const STOP_MARKER: &str = "__stilt_exit__";

fn is_stop(e: &starlark::Error) -> bool {
    e.without_diagnostic().to_string().contains(STOP_MARKER)
}

struct Loader<'c, 'h> {
    c: &'c Ctx<'h>,
    dir: PathBuf,
}

impl FileLoader for Loader<'_, '_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let p = resolve_load_path(self.c, &self.dir, path).map_err(starlark::Error::new_other)?;
        exec_file(self.c, &p, false)
    }
}

struct Printer<'c, 'h> {
    c: &'c Ctx<'h>,
}

impl starlark::PrintHandler for Printer<'_, '_> {
    fn println(&self, text: &str) -> starlark::Result<()> {
        self.c.log(text);
        Ok(())
    }
}

/// The callback registered by `workload_to_resource_function` (main file first, then loads).
pub(crate) fn find_w2r(c: &Ctx) -> Option<starlark::values::OwnedFrozenValue> {
    let loaded = c.loaded.borrow();
    let get = |m: &FrozenModule| m.get_any_visibility(W2R_GLOBAL).ok().map(|(v, _)| v);
    if let Some(v) = loaded.get(&c.req.main_path).and_then(get) {
        return Some(v);
    }
    loaded.values().find_map(get)
}

struct BufPrinter(RefCell<String>);

impl starlark::PrintHandler for BufPrinter {
    fn println(&self, text: &str) -> starlark::Result<()> {
        let mut b = self.0.borrow_mut();
        b.push_str(text);
        b.push('\n');
        Ok(())
    }
}

/// Run `body` with a caller that invokes the Starlark callback `f` on a workload.
pub(crate) fn with_function_caller<R>(
    c: &Ctx,
    f: &starlark::values::OwnedFrozenValue,
    body: impl FnOnce(&mut crate::assemble::NameFn) -> R,
) -> R {
    let (out, text) = Module::with_temp_heap(|module| {
        let buf = BufPrinter(RefCell::new(String::new()));
        let out = {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(c);
            watch_for_cancel(&mut eval, c);
            eval.set_print_handler(&buf);
            // SAFETY: the reference added to this module's frozen heap keeps the callback's heap
            // alive while this evaluator runs.
            let func = unsafe { f.owned_frozen_value(module.frozen_heap()) }.to_value();
            let mut call = |e: &crate::model::K8sEntity| -> anyhow::Result<String> {
                let heap = eval.heap();
                let ns = if e.namespace().is_empty() {
                    "default"
                } else {
                    e.namespace()
                };
                let serde_json::Value::Object(m) = serde_json::json!({
                    "name": e.name(), "kind": e.kind(), "namespace": ns, "group": e.group(),
                }) else {
                    unreachable!()
                };
                let id = heap.alloc(crate::values::TiltObj::new("k8s_object_id", m));
                let r = eval
                    .eval_function(func, &[id], &[])
                    .map_err(|e| anyhow!("workload_to_resource_function: {e}"))?;
                r.unpack_str().map(str::to_owned).ok_or_else(|| {
                    anyhow!(
                        "workload_to_resource_function: expected the callback to return a string, got {}",
                        r.get_type()
                    )
                })
            };
            body(&mut call)
        };
        (out, buf.0.into_inner())
    });
    if !text.is_empty() {
        c.st.borrow_mut().logs.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_snippet_runs_with_the_loaders_globals() {
        let globals = crate::builtins::globals_for(&ReqInfo::default());
        warm_evaluator(&globals).expect("the warm-up snippet evaluates");
    }

    #[test]
    fn the_bracket_left_open_is_found_past_strings_and_comments() {
        let cases = [
            ("foo(", Some(('(', 1, 4))),
            ("print(\"a\")\nfoo(\n", Some(('(', 2, 4))),
            ("x = [1, ')', \"]\" # (\n, {", Some(('{', 2, 3))),
            ("s = '''(\n[''' + f(", Some(('(', 2, 9))),
            ("s = 'it\\'s (' + g(1)\n", None),
            ("f(1)\n", None),
        ];
        for (src, want) in cases {
            assert_eq!(unclosed_bracket(src), want, "{src:?}");
        }
    }
}
