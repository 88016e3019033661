//! Stilt's answers to starlark_lsp's questions: how a Tiltfile parses (the loader's dialect),
//! what is wrong with it (the real loader, in check mode), where a `load()` path leads (relative
//! to the loading file, `ext://` as the loader resolved it) and which globals exist (the loader's
//! builtins table).

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use lsp_types::CompletionItemKind;
use lsp_types::Diagnostic;
use starlark::docs::DocModule;
use starlark_lsp::completion::StringCompletionResult;
use starlark_lsp::completion::StringCompletionType;
use starlark_lsp::server::LspContext;
use starlark_lsp::server::LspEvalResult;
use starlark_lsp::server::LspUri;
use starlark_lsp::server::StringLiteralResult;

use crate::check::CheckConfig;
use crate::docs::Builtins;

/// Where `ext://` loads went in the last check of each document (document → load string →
/// extension Tiltfile).
pub type ExtPaths = Arc<Mutex<BTreeMap<PathBuf, BTreeMap<String, PathBuf>>>>;

/// The unsaved text of the documents open in the editor, by path.
pub type OpenFiles = Arc<Mutex<BTreeMap<PathBuf, String>>>;

/// Virtual folder of the extensions built into Stilt (`starlark:` URIs, served from memory).
const BUILTIN_EXT_DIR: &str = "/stilt/ext";

#[derive(Clone)]
pub struct TiltContext {
    pub builtins: Arc<Builtins>,
    pub check: CheckConfig,
    pub ext_paths: ExtPaths,
    /// What loads read instead of the files on disk.
    pub open: OpenFiles,
}

impl TiltContext {
    pub fn new(builtins: Arc<Builtins>, check: CheckConfig) -> Self {
        TiltContext {
            builtins,
            check,
            ext_paths: Default::default(),
            open: Default::default(),
        }
    }

    /// The editor's text of `p`, when it is open.
    fn open_text(&self, p: &Path) -> Option<String> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(p)
            .cloned()
    }

    /// The signature of a function written in Starlark that `file` (with `text`) can call:
    /// defined there or reached through its `load()`s.
    pub fn starlark_function(
        &self,
        file: &Path,
        text: &str,
        name: &str,
    ) -> Option<starlark::docs::DocFunction> {
        let resolve = |m: &str, from: &Path| -> Option<PathBuf> {
            match self
                .resolve_load(m, &LspUri::File(from.to_path_buf()), None)
                .ok()?
            {
                LspUri::File(p) => Some(p),
                _ => None,
            }
        };
        let read = |p: &Path| -> Option<String> {
            self.get_load_contents(&LspUri::File(p.to_path_buf()))
                .ok()
                .flatten()
        };
        crate::defs::function(file, text, name, &resolve, &read)
    }

    fn parse(&self, uri: &LspUri, content: &str) -> Option<starlark::syntax::AstModule> {
        stilt_tiltfile::editor::parse(&uri.path().display().to_string(), content).ok()
    }

    /// `ext://name`: as the last check of `from` resolved it, else the default repo's copy (a
    /// local stand-in, or the cache `stilt up` filled), else a built-in extension.
    fn resolve_ext(&self, load: &str, from: &Path) -> Result<LspUri, String> {
        let name = load.trim_start_matches("ext://").trim_matches('/');
        if let Some(p) = self
            .ext_paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(from)
            .and_then(|m| m.get(load))
        {
            if let Some(rest) = p.to_str().and_then(|s| s.strip_prefix("<stilt>/ext/")) {
                return Ok(LspUri::Starlark(PathBuf::from(BUILTIN_EXT_DIR).join(rest)));
            }
            return Ok(LspUri::File(p.clone()));
        }
        if stilt_tiltfile::editor::builtin_extension(name).is_some() {
            return Ok(LspUri::Starlark(
                PathBuf::from(BUILTIN_EXT_DIR).join(name).join("Tiltfile"),
            ));
        }
        let default_repo = match &self.check.extensions_dir {
            Some(d) => Some(d.clone()),
            None => self.check.ext_cache.as_ref().and_then(|c| {
                c.path_of(stilt_extrepo::DEFAULT_REPO_URL, "")
                    .ok()
                    .filter(|p| p.is_dir())
            }),
        };
        let p = default_repo
            .map(|d| d.join(name).join("Tiltfile"))
            .filter(|p| p.is_file())
            .ok_or_else(|| format!("{load}: not fetched yet (`stilt up` fetches extensions)"))?;
        Ok(LspUri::File(p))
    }
}

/// A load path relative to the loading file's folder; a folder means its Tiltfile (pure).
pub fn resolve_relative(load: &str, from: &Path) -> PathBuf {
    let dir = from.parent().unwrap_or(Path::new("/"));
    let p = clean(&dir.join(load));
    if p.is_dir() { p.join("Tiltfile") } else { p }
}

fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` as written in a `load()` of `from`: relative, when it is under `from`'s folder.
pub fn render_relative(target: &Path, from: &Path) -> Option<String> {
    let dir = from.parent()?;
    let rel = target.strip_prefix(dir).ok()?;
    Some(format!("./{}", rel.display()))
}

impl LspContext for TiltContext {
    fn parse_file_with_contents(&self, uri: &LspUri, content: String) -> LspEvalResult {
        let ast = self.parse(uri, &content);
        let LspUri::File(path) = uri else {
            return LspEvalResult {
                diagnostics: vec![],
                ast,
            };
        };
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let checked = crate::check::check(&self.check, path, &content, &open);
        self.ext_paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.clone(), checked.ext_paths);
        LspEvalResult {
            diagnostics: checked.diagnostics,
            ast,
        }
    }

    /// Files reached through `load()` are only parsed (for their symbols): evaluating is for
    /// the documents the editor has open.
    fn parse_file(&self, uri: &LspUri) -> Result<Option<LspEvalResult>, String> {
        Ok(self.get_load_contents(uri)?.map(|content| LspEvalResult {
            diagnostics: Vec::<Diagnostic>::new(),
            ast: self.parse(uri, &content),
        }))
    }

    fn resolve_load(
        &self,
        path: &str,
        current_file: &LspUri,
        _workspace_root: Option<&Path>,
    ) -> Result<LspUri, String> {
        let LspUri::File(from) = current_file else {
            return Err(format!("cannot resolve {path:?} from {current_file}"));
        };
        if path.starts_with("ext://") {
            return self.resolve_ext(path, from);
        }
        Ok(LspUri::File(resolve_relative(path, from)))
    }

    fn render_as_load(
        &self,
        target: &LspUri,
        current_file: &LspUri,
        _workspace_root: Option<&Path>,
    ) -> Result<String, String> {
        match (target, current_file) {
            (LspUri::File(t), LspUri::File(f)) => render_relative(t, f)
                .ok_or_else(|| format!("{} is not under {}'s folder", t.display(), f.display())),
            _ => Err("only files load files".into()),
        }
    }

    /// A string naming an existing file next to the Tiltfile (`k8s_yaml('deploy.yaml')`) leads
    /// to that file.
    fn resolve_string_literal(
        &self,
        literal: &str,
        current_file: &LspUri,
        _workspace_root: Option<&Path>,
    ) -> Result<Option<StringLiteralResult>, String> {
        let LspUri::File(from) = current_file else {
            return Ok(None);
        };
        if literal.is_empty() || literal.contains('\n') || literal.starts_with("ext://") {
            return Ok(None);
        }
        let p = resolve_relative(literal, from);
        Ok(p.is_file().then(|| StringLiteralResult {
            uri: LspUri::File(p),
            location_finder: None,
        }))
    }

    fn get_load_contents(&self, uri: &LspUri) -> Result<Option<String>, String> {
        match uri {
            LspUri::File(p) => match self
                .open_text(p)
                .map_or_else(|| std::fs::read_to_string(p), Ok)
            {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("reading {}: {e}", p.display())),
            },
            LspUri::Starlark(p) => {
                let name = p
                    .strip_prefix(BUILTIN_EXT_DIR)
                    .ok()
                    .and_then(|r| r.parent())
                    .map(|r| r.display().to_string())
                    .unwrap_or_default();
                Ok(stilt_tiltfile::editor::builtin_extension(&name).map(str::to_owned))
            }
            LspUri::Other(_) => Ok(None),
        }
    }

    fn get_environment(&self, _uri: &LspUri) -> DocModule {
        self.builtins.module.clone()
    }

    fn get_uri_for_global_symbol(
        &self,
        _current_file: &LspUri,
        _symbol: &str,
    ) -> Result<Option<LspUri>, String> {
        Ok(None)
    }

    /// In `load('…')`: the files and folders next to the current file, and `ext://`.
    fn get_string_completion_options(
        &self,
        document_uri: &LspUri,
        kind: StringCompletionType,
        current_value: &str,
        _workspace_root: Option<&Path>,
    ) -> Result<Vec<StringCompletionResult>, String> {
        let (StringCompletionType::LoadPath, LspUri::File(from)) = (kind, document_uri) else {
            return Ok(vec![]);
        };
        let Some(dir) = from.parent() else {
            return Ok(vec![]);
        };
        let (sub, _) = current_value
            .rsplit_once('/')
            .unwrap_or(("", current_value));
        let base = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            clean(&dir.join(sub))
        };
        let mut out = vec![];
        if sub.is_empty() {
            out.push(StringCompletionResult {
                value: "ext://".into(),
                insert_text: None,
                insert_text_offset: 0,
                kind: CompletionItemKind::MODULE,
            });
        }
        let prefix = if sub.is_empty() {
            String::new()
        } else {
            format!("{sub}/")
        };
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || e.path() == *from {
                continue;
            }
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            out.push(StringCompletionResult {
                value: format!("{prefix}{name}"),
                insert_text: None,
                insert_text_offset: 0,
                kind: if is_dir {
                    CompletionItemKind::FOLDER
                } else {
                    CompletionItemKind::FILE
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_paths_resolve_from_the_loading_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("svc")).unwrap();
        std::fs::write(d.path().join("svc/Tiltfile"), "").unwrap();
        let from = d.path().join("Tiltfile");
        let cases = [
            ("./lib.star", d.path().join("lib.star")),
            ("lib/x.star", d.path().join("lib/x.star")),
            ("../up.star", d.path().parent().unwrap().join("up.star")),
            ("svc", d.path().join("svc/Tiltfile")),
            ("/abs/t.star", PathBuf::from("/abs/t.star")),
        ];
        for (load, want) in cases {
            assert_eq!(resolve_relative(load, &from), want, "{load}");
        }
        assert_eq!(
            render_relative(&d.path().join("lib/x.star"), &from).as_deref(),
            Some("./lib/x.star")
        );
        assert_eq!(render_relative(Path::new("/elsewhere/x"), &from), None);
    }

    #[test]
    fn ext_loads_follow_the_last_check_then_the_default_repo_then_builtins() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("exts");
        std::fs::create_dir_all(repo.join("hello")).unwrap();
        std::fs::write(repo.join("hello/Tiltfile"), "def hi():\n  pass\n").unwrap();
        let ctx = TiltContext::new(
            Arc::new(Builtins::from_loader()),
            CheckConfig {
                extensions_dir: Some(repo.clone()),
                ..Default::default()
            },
        );
        let from = LspUri::File(d.path().join("Tiltfile"));
        assert_eq!(
            ctx.resolve_load("ext://hello", &from, None).unwrap(),
            LspUri::File(repo.join("hello/Tiltfile"))
        );
        assert!(ctx.resolve_load("ext://missing", &from, None).is_err());
        let LspUri::Starlark(p) = ctx.resolve_load("ext://syncback", &from, None).unwrap() else {
            panic!("builtin extension is not a starlark: URI");
        };
        let src = ctx
            .get_load_contents(&LspUri::Starlark(p))
            .unwrap()
            .unwrap();
        assert!(src.contains("syncback"), "{src}");
        // What the loader resolved wins.
        ctx.ext_paths.lock().unwrap().insert(
            d.path().join("Tiltfile"),
            [("ext://hello".to_owned(), d.path().join("other/Tiltfile"))].into(),
        );
        assert_eq!(
            ctx.resolve_load("ext://hello", &from, None).unwrap(),
            LspUri::File(d.path().join("other/Tiltfile"))
        );
    }
}
