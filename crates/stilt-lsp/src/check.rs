//! Diagnostics from the real loader: the document is loaded as a main Tiltfile on a
//! [`CheckHost`] (its unsaved text laid over the file, no command run, no cluster asked, no
//! extension repo fetched) and the load's error and warnings become LSP diagnostics at the line
//! they name in this document.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lsp_types::Diagnostic;
use lsp_types::DiagnosticSeverity;
use lsp_types::Position;
use lsp_types::Range;
use stilt_tiltfile::CheckHost;
use stilt_tiltfile::LoadRequest;

/// How the checks load Tiltfiles.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// The extension cache `stilt up` fills (`$STILT_HOME/tilt_modules`): read, never fetched.
    pub ext_cache: Option<stilt_extrepo::Cache>,
    /// A local stand-in for the default extension repo (`STILT_EXTENSIONS_DIR`).
    pub extensions_dir: Option<PathBuf>,
    /// A load running longer is stopped (a runaway loop must not hang the editor).
    pub timeout: Duration,
}

/// What one check found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub diagnostics: Vec<Diagnostic>,
    /// Where the document's `load('ext://…')`s resolved.
    pub ext_paths: BTreeMap<String, PathBuf>,
}

/// Source of every diagnostic (editors show it next to the message).
pub const SOURCE: &str = "stilt";

/// Load `path` with `text` as its contents (and `open`'s text for the other files the editor
/// holds) and report what went wrong.
pub fn check(
    cfg: &CheckConfig,
    path: &Path,
    text: &str,
    open: &BTreeMap<PathBuf, String>,
) -> Checked {
    let mut host = CheckHost::new();
    for (p, t) in open {
        host = host.with_file(p, t.as_str());
    }
    let host = host.with_file(path, text);
    let mut req = LoadRequest::new(path, &host);
    req.offline = true;
    req.watch = false;
    req.ext_cache = cfg.ext_cache.clone();
    req.extensions_dir = cfg.extensions_dir.clone();
    req.argv = vec!["stilt".into(), "lsp".into()];
    let cancel = Arc::new(AtomicBool::new(false));
    req.cancel = Some(cancel.clone());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timeout = if cfg.timeout.is_zero() {
        Duration::from_secs(10)
    } else {
        cfg.timeout
    };
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    let res = stilt_tiltfile::load(&req);
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let skipped = host.skipped();
    match res {
        Ok(r) => Checked {
            diagnostics: r
                .warnings
                .iter()
                .map(|w| diagnostic(Range::default(), DiagnosticSeverity::WARNING, w.clone()))
                .collect(),
            ext_paths: r.ext_paths,
        },
        Err(e) => {
            let loc = e.location.as_ref().map(|l| Loc {
                file: l.file.clone(),
                line: l.line,
                column: l.column,
            });
            Checked {
                diagnostics: vec![error_diagnostic(path, text, &e.message, loc, &skipped)],
                ext_paths: e.ext_paths,
            }
        }
    }
}

/// Where the loader says an error is (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Loc {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

fn diagnostic(range: Range, severity: DiagnosticSeverity, message: String) -> Diagnostic {
    Diagnostic {
        range,
        severity: Some(severity),
        source: Some(SOURCE.into()),
        message,
        ..Default::default()
    }
}

/// The diagnostic for a failed load of `doc` (pure): placed at the error's line when it is in
/// this document, else at the innermost line of this document in the traceback (the call that
/// led into the other file), else at the top; the message is the loader's, without the source
/// snippet the editor already shows. When commands were skipped the error may come from their
/// empty output, so it is a warning that says so.
pub fn error_diagnostic(
    doc: &Path,
    text: &str,
    message: &str,
    loc: Option<Loc>,
    skipped: &[String],
) -> Diagnostic {
    let headline = headline(message);
    // Assembly errors lead with their own `path:line:col: `; in this document that is the range.
    let headline = strip_location(&headline, doc).to_owned();
    let (line, column, elsewhere) = match loc {
        // At the end of the file, the bracket left open is the place to look.
        Some(l) if l.file == doc => {
            unclosed_at(message).map_or((l.line, l.column, None), |(line, col)| (line, col, None))
        }
        Some(l) => match traceback_line(message, doc) {
            Some(line) => (line, 1, Some(l)),
            None => (1, 1, Some(l)),
        },
        None => match traceback_line(message, doc) {
            Some(line) => (line, 1, None),
            None => (1, 1, None),
        },
    };
    let mut msg = match &elsewhere {
        Some(l) => format!("{}:{}:{}: {headline}", l.file.display(), l.line, l.column),
        None => headline,
    };
    let severity = if skipped.is_empty() || is_syntax_error(message) {
        DiagnosticSeverity::ERROR
    } else {
        msg.push_str(&format!(
            "\n(the language server runs no commands: {} returned empty output here)",
            skipped
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        DiagnosticSeverity::WARNING
    };
    diagnostic(line_range(text, line, column), severity, msg)
}

/// `msg` without a leading `<doc>:<line>:<col>: `.
fn strip_location<'a>(msg: &'a str, doc: &Path) -> &'a str {
    let Some(rest) = msg.strip_prefix(&format!("{}:", doc.display())) else {
        return msg;
    };
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(c), Some(tail))
            if l.chars().all(|c| c.is_ascii_digit()) && c.chars().all(|c| c.is_ascii_digit()) =>
        {
            tail.trim_start()
        }
        _ => msg,
    }
}

/// `(the '(' at 2:13 is not closed)` in the loader's end-of-file parse error: (2, 13).
fn unclosed_at(message: &str) -> Option<(usize, usize)> {
    let (_, rest) = message.split_once("(the '")?;
    let (_, rest) = rest.split_once("' at ")?;
    let (pos, _) = rest.split_once(" is not closed")?;
    let (l, c) = pos.split_once(':')?;
    Some((l.parse().ok()?, c.parse().ok()?))
}

fn is_syntax_error(message: &str) -> bool {
    message.contains("Parse error")
}

/// From (1-based) line and column to the end of that line.
fn line_range(text: &str, line: usize, column: usize) -> Range {
    let l = line.saturating_sub(1);
    let line_text = text.lines().nth(l).unwrap_or("");
    let start = column.saturating_sub(1).min(line_text.chars().count());
    let units = |s: &str| s.chars().map(|c| c.len_utf16() as u32).sum::<u32>();
    let start_units = units(&line_text.chars().take(start).collect::<String>());
    let mut end_units = units(line_text);
    if end_units <= start_units {
        end_units = start_units + 1;
    }
    Range::new(
        Position::new(l as u32, start_units),
        Position::new(l as u32, end_units),
    )
}

/// The loader's message without starlark's rendering around it: the traceback, the `-->`
/// location line and the source snippet go; the error text stays.
pub fn headline(message: &str) -> String {
    let mut out: Vec<&str> = vec![];
    let mut in_traceback = false;
    for line in message.lines() {
        let t = line.trim_start();
        if line.starts_with("Traceback") {
            in_traceback = true;
            continue;
        }
        if in_traceback {
            // Frames are indented (`  * file:line, in f` and the code line under it).
            if line.starts_with(' ') {
                continue;
            }
            in_traceback = false;
        }
        if t.starts_with("-->") || t.starts_with('|') || is_snippet_line(t) {
            continue;
        }
        out.push(line);
    }
    let joined = out.join("\n");
    let trimmed = joined.trim();
    let trimmed = trimmed.strip_prefix("error: ").unwrap_or(trimmed);
    if trimmed.is_empty() {
        message.trim().to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `12 | code` lines of a snippet.
fn is_snippet_line(t: &str) -> bool {
    match t.split_once(" |") {
        Some((n, _)) => !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// The innermost traceback frame in `doc`: its 1-based line.
fn traceback_line(message: &str, doc: &Path) -> Option<usize> {
    let d = doc.display().to_string();
    message
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("* "))
        .filter_map(|frame| {
            let (loc, _) = frame.split_once(", in ").unwrap_or((frame, ""));
            let (file, line) = loc.rsplit_once(':')?;
            (file == d).then(|| line.parse().ok())?
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_tiltfile(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Tiltfile");
        std::fs::write(&p, "# on disk: not what the editor holds\n").unwrap();
        let _ = text;
        (d, p)
    }

    fn cfg() -> CheckConfig {
        CheckConfig {
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[test]
    fn the_unsaved_text_is_checked_with_the_loaders_errors_at_their_line() {
        // (source, line (0-based) of the diagnostic, text the message must contain)
        let cases = [
            ("x = 1\ndocker_build('img', '.'\n", 1, "end of file"),
            (
                "print('hi')\n\nfail('broken on purpose')\n",
                2,
                "broken on purpose",
            ),
            (
                "k8s_yaml(blob('apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: c\\n'))\nk8s_resource('c', bogus_arg=1)\n",
                1,
                "bogus_arg",
            ),
            ("x = 1\ny = undefined_name + 1\n", 1, "undefined_name"),
        ];
        for (src, line, want) in cases {
            let (_d, p) = tmp_tiltfile(src);
            let got = check(&cfg(), &p, src, &BTreeMap::new());
            assert_eq!(got.diagnostics.len(), 1, "{src:?}: {:?}", got.diagnostics);
            let diag = &got.diagnostics[0];
            assert_eq!(diag.range.start.line, line, "{src:?}: {diag:?}");
            assert!(diag.message.contains(want), "{src:?}: {}", diag.message);
            assert_eq!(diag.severity, Some(DiagnosticSeverity::ERROR));
            assert!(!diag.message.contains(" --> "), "{}", diag.message);
        }
    }

    #[test]
    fn a_good_tiltfile_has_no_diagnostics_and_runs_no_command() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Tiltfile");
        let marker = d.path().join("ran");
        let src = format!(
            "out = local('touch {}')\nlocal_resource('x', serve_cmd='sleep 1')\n",
            marker.display()
        );
        let got = check(&cfg(), &p, &src, &BTreeMap::new());
        assert!(got.diagnostics.is_empty(), "{:?}", got.diagnostics);
        assert!(!marker.exists(), "local() ran during a check");
    }

    #[test]
    fn an_error_after_a_skipped_command_is_a_warning_that_says_why() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Tiltfile");
        let src = "v = decode_json(local('echo {\"a\": 1}'))\nprint(v['a'])\n";
        let got = check(&cfg(), &p, src, &BTreeMap::new());
        assert_eq!(got.diagnostics.len(), 1, "{:?}", got.diagnostics);
        let diag = &got.diagnostics[0];
        assert_eq!(diag.severity, Some(DiagnosticSeverity::WARNING));
        assert!(
            diag.message.contains("runs no commands"),
            "{}",
            diag.message
        );
        assert!(diag.message.contains("echo"), "{}", diag.message);
    }

    #[test]
    fn an_error_in_a_loaded_file_is_shown_on_the_line_that_leads_there() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("lib.star");
        std::fs::write(&lib, "def boom():\n    fail('from the library')\n").unwrap();
        let p = d.path().join("Tiltfile");
        let src = "load('./lib.star', 'boom')\n\nboom()\n";
        let got = check(&cfg(), &p, src, &BTreeMap::new());
        assert_eq!(got.diagnostics.len(), 1, "{:?}", got.diagnostics);
        let diag = &got.diagnostics[0];
        assert_eq!(diag.range.start.line, 2, "{diag:?}");
        assert!(
            diag.message.contains("from the library"),
            "{}",
            diag.message
        );
        assert!(diag.message.contains("lib.star:2"), "{}", diag.message);
    }

    #[test]
    fn loaded_files_are_read_as_the_editor_holds_them() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("lib.star");
        std::fs::write(&lib, "def f():\n    return 1\n").unwrap();
        let p = d.path().join("Tiltfile");
        let src = "load('./lib.star', 'f')\nf()\n";
        assert!(
            check(&cfg(), &p, src, &BTreeMap::new())
                .diagnostics
                .is_empty()
        );
        let open = BTreeMap::from([(lib, "def f():\n    fail('unsaved edit')\n".to_owned())]);
        let got = check(&cfg(), &p, src, &open);
        assert_eq!(got.diagnostics.len(), 1, "{:?}", got.diagnostics);
        assert!(got.diagnostics[0].message.contains("unsaved edit"));
        assert_eq!(got.diagnostics[0].range.start.line, 1);
    }

    #[test]
    fn extensions_come_from_the_cache_stilt_up_filled_and_are_never_fetched() {
        let d = tempfile::tempdir().unwrap();
        let cache = stilt_extrepo::Cache::new(d.path().join("tilt_modules"));
        let cfg = CheckConfig {
            ext_cache: Some(cache.clone()),
            ..cfg()
        };
        let p = d.path().join("Tiltfile");
        let src = "load('ext://hello', 'hi')\nhi()\n";
        // Not fetched: said so at the load, and nothing was cloned.
        let got = check(&cfg, &p, src, &BTreeMap::new());
        assert_eq!(got.diagnostics.len(), 1, "{:?}", got.diagnostics);
        assert_eq!(got.diagnostics[0].range.start.line, 0);
        assert!(
            got.diagnostics[0].message.contains("not been fetched"),
            "{}",
            got.diagnostics[0].message
        );
        assert!(!cache.root().exists(), "the check touched the cache");
        // A copy in the cache (not even a git checkout: no git runs) is used as it is.
        let repo = cache.path_of(stilt_extrepo::DEFAULT_REPO_URL, "").unwrap();
        std::fs::create_dir_all(repo.join("hello")).unwrap();
        std::fs::write(repo.join("hello/Tiltfile"), "def hi():\n    pass\n").unwrap();
        let got = check(&cfg, &p, src, &BTreeMap::new());
        assert!(got.diagnostics.is_empty(), "{:?}", got.diagnostics);
        assert_eq!(
            got.ext_paths.get("ext://hello"),
            Some(&repo.join("hello/Tiltfile"))
        );
    }

    #[test]
    fn a_runaway_loop_is_stopped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Tiltfile");
        let src = "x = 0\nwhile True:\n    x += 1\n";
        let t = std::time::Instant::now();
        let got = check(
            &CheckConfig {
                timeout: Duration::from_millis(300),
                ..Default::default()
            },
            &p,
            src,
            &BTreeMap::new(),
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(got.diagnostics.len(), 1);
        assert!(
            got.diagnostics[0].message.contains("interrupted"),
            "{}",
            got.diagnostics[0].message
        );
    }

    #[test]
    fn headline_drops_snippet_and_traceback() {
        let msg = "Traceback (most recent call last):\n  * /p/Tiltfile:3, in <module>\n    boom()\n  * /p/lib.star:2, in boom\n    fail('x')\nerror: fail: x\n --> /p/lib.star:2:5\n  |\n2 |     fail('x')\n  |     ^^^^^^^^^\n  |\n";
        assert_eq!(headline(msg), "fail: x");
        assert_eq!(traceback_line(msg, Path::new("/p/Tiltfile")), Some(3));
        assert_eq!(traceback_line(msg, Path::new("/p/other")), None);
        assert_eq!(headline("plain message"), "plain message");
        let doc = Path::new("/p/Tiltfile");
        assert_eq!(
            strip_location("/p/Tiltfile:2:1: name clash", doc),
            "name clash"
        );
        assert_eq!(
            strip_location("/p/lib.star:2:1: elsewhere", doc),
            "/p/lib.star:2:1: elsewhere"
        );
        assert_eq!(
            strip_location("/p/Tiltfile:x: odd", doc),
            "/p/Tiltfile:x: odd"
        );
    }
}
