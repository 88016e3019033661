//! Bounded views of one resource's log for `stilt mcp`: the last N lines, the last N matches of
//! a search, and the lines around the first error of one update. Lines arrive one by one from
//! the API's NDJSON stream (already redacted by the log store); each view keeps at most its bound
//! in memory, so a huge log never becomes a huge answer.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::collections::VecDeque;

/// Lines a log read returns when the agent does not say.
pub const DEFAULT_TAIL: usize = 50;
/// The most lines any one answer holds.
pub const MAX_LINES: usize = 500;
/// A longer line is cut (a minified bundle on one line would flood an agent's context).
pub const MAX_LINE_CHARS: usize = 2000;

/// One line as `/stilt/v1/logs` sends it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LogLine {
    #[serde(default)]
    pub span: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub text: String,
}

impl LogLine {
    /// How the agent sees a line: the text, prefixed with its level when it is not INFO.
    pub fn render(&self) -> String {
        let text = cut(&self.text);
        match self.level.as_str() {
            "ERROR" | "WARN" => format!("{}: {text}", self.level),
            _ => text,
        }
    }

    /// Build output, as `stilt logs --source build` classifies it.
    pub fn is_build(&self) -> bool {
        ["build:", "cmdimage:", "liveupdate:", "syncback:"]
            .iter()
            .any(|p| self.span.starts_with(p))
    }
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((i, _)) => format!("{}… [line cut at {MAX_LINE_CHARS} characters]", &text[..i]),
        None => text.to_string(),
    }
}

/// A requested count, defaulted and capped (negative and zero mean the default).
pub fn clamp_count(requested: Option<i64>, default: usize, max: usize) -> usize {
    match requested {
        Some(n) if n > 0 => (n as usize).min(max),
        _ => default.min(max),
    }
}

/// What a search keeps.
#[derive(Debug)]
pub enum Matcher {
    All,
    Substring { needle: String, ignore_case: bool },
    Regex(Regex),
}

impl Matcher {
    pub fn new(query: Option<&str>, regex: bool, ignore_case: bool) -> Result<Self, String> {
        let Some(q) = query.filter(|q| !q.is_empty()) else {
            return Ok(Matcher::All);
        };
        if regex {
            // The pattern comes from an agent: bound what compiling it may cost.
            RegexBuilder::new(q)
                .case_insensitive(ignore_case)
                .size_limit(1 << 20)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| format!("bad regular expression {q:?}: {e}"))
        } else {
            Ok(Matcher::Substring {
                needle: if ignore_case {
                    q.to_lowercase()
                } else {
                    q.into()
                },
                ignore_case,
            })
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Substring {
                needle,
                ignore_case: true,
            } => text.to_lowercase().contains(needle.as_str()),
            Matcher::Substring { needle, .. } => text.contains(needle.as_str()),
            Matcher::Regex(re) => re.is_match(text),
        }
    }
}

/// The newest `cap` lines that match, and how many matched in all.
#[derive(Debug)]
pub struct Tail {
    cap: usize,
    matcher: Matcher,
    pub lines: VecDeque<LogLine>,
    pub matched: usize,
}

impl Tail {
    pub fn new(cap: usize, matcher: Matcher) -> Self {
        Self {
            cap,
            matcher,
            lines: VecDeque::new(),
            matched: 0,
        }
    }

    pub fn push(&mut self, line: LogLine) {
        if !self.matcher.matches(&line.text) {
            return;
        }
        self.matched += 1;
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// Whether a line reads as an error. A failed command's own output is INFO (it is what the
/// program printed); the ERROR line Stilt adds ("Command … failed") comes after it. So a line
/// that says error/fatal/panic/failed in the program's words counts too, and the window starts
/// at the program's first complaint rather than at Stilt's summary. Stilt's own "Running cmd:"
/// echo is not a complaint, whatever words the command holds.
pub fn looks_like_error(line: &LogLine) -> bool {
    use std::sync::OnceLock;
    static WORDS: OnceLock<Regex> = OnceLock::new();
    line.level == "ERROR"
        || (!line.text.starts_with("Running cmd: ") && WORDS
            .get_or_init(|| {
                Regex::new(r"(?i)(\berror\b|\berror\[|\bfatal\b|\bpanic(ked)?\b|\bfailed\b|\bexception\b|\bERR!)")
                    .expect("a valid pattern")
            })
            .is_match(&line.text))
}

/// Lines of one span around its first error: up to `before` lines ahead of it, the error line,
/// and up to `after` lines behind it. With no error in the span, its last lines.
#[derive(Debug)]
pub struct ErrorWindow {
    span: String,
    before: usize,
    after: usize,
    /// Lines of the span before the error (at most `before + after + 1`, for the no-error case).
    ring: VecDeque<LogLine>,
    found: Option<Vec<LogLine>>,
    /// Index of the error line in `found`.
    error_at: usize,
    span_lines: usize,
}

/// What [`ErrorWindow`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub lines: Vec<LogLine>,
    /// Index of the first error in `lines`, if the span had one.
    pub error_index: Option<usize>,
    /// How many lines the span had (up to the end of the window).
    pub span_lines: usize,
}

impl ErrorWindow {
    pub fn new(span: &str, before: usize, after: usize) -> Self {
        Self {
            span: span.to_string(),
            before,
            after,
            ring: VecDeque::new(),
            found: None,
            error_at: 0,
            span_lines: 0,
        }
    }

    /// Feeds one line of the resource's log; false once the window is complete (stop reading).
    pub fn push(&mut self, line: LogLine) -> bool {
        if line.span != self.span {
            return true;
        }
        self.span_lines += 1;
        if let Some(found) = &mut self.found {
            found.push(line);
            return found.len() < self.error_at + 1 + self.after;
        }
        if looks_like_error(&line) {
            let skip = self.ring.len().saturating_sub(self.before);
            let mut lines: Vec<LogLine> = self.ring.drain(..).skip(skip).collect();
            self.error_at = lines.len();
            lines.push(line);
            let done = self.after == 0;
            self.found = Some(lines);
            return !done;
        }
        if self.ring.len() == self.before + self.after + 1 {
            self.ring.pop_front();
        }
        self.ring.push_back(line);
        true
    }

    pub fn finish(self) -> Window {
        match self.found {
            Some(lines) => Window {
                lines,
                error_index: Some(self.error_at),
                span_lines: self.span_lines,
            },
            None => Window {
                lines: self.ring.into_iter().collect(),
                error_index: None,
                span_lines: self.span_lines,
            },
        }
    }
}

/// A runtime failure's window: the newest runtime lines, with the first error of the current
/// run marked (the program's own complaint before Stilt's "Process exited" summary). A run starts
/// at Stilt's newest "Running cmd:" line; pod logs have no such line, so the window's first error.
pub fn runtime_window(lines: Vec<LogLine>) -> Window {
    let run_start = lines
        .iter()
        .rposition(|l| l.text.starts_with("Running cmd: "))
        .unwrap_or(0);
    let error_index = lines[run_start..]
        .iter()
        .position(looks_like_error)
        .map(|i| i + run_start);
    Window {
        span_lines: lines.len(),
        lines,
        error_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(span: &str, level: &str, text: &str) -> LogLine {
        LogLine {
            span: span.into(),
            level: level.into(),
            time: String::new(),
            text: text.into(),
        }
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn counts_are_defaulted_and_capped() {
        // (requested, default, max) → count
        let cases = [
            (None, 50, 500, 50),
            (Some(0), 50, 500, 50),
            (Some(-1), 50, 500, 50),
            (Some(10), 50, 500, 10),
            (Some(100_000), 50, 500, 500),
            (None, 900, 500, 500),
        ];
        for (req, default, max, want) in cases {
            assert_eq!(clamp_count(req, default, max), want, "{req:?}");
        }
    }

    #[test]
    fn searches_by_substring_or_regex() {
        // (query, regex, ignore_case, text, matches)
        let cases = [
            (None, false, true, "anything", true),
            (Some(""), true, false, "anything", true),
            (
                Some("Listening"),
                false,
                false,
                "server Listening on 8000",
                true,
            ),
            (
                Some("listening"),
                false,
                false,
                "server Listening on 8000",
                false,
            ),
            (
                Some("listening"),
                false,
                true,
                "server Listening on 8000",
                true,
            ),
            (Some(r"port \d+"), true, false, "on port 8000", true),
            (Some(r"port \d+"), true, false, "on port x", false),
            (Some(r"PORT \d+"), true, true, "on port 8000", true),
            // Regex metacharacters are plain text in a substring search.
            (Some("a.c"), false, false, "abc", false),
            (Some("a.c"), false, false, "a.c", true),
        ];
        for (q, re, ic, text, want) in cases {
            let m = Matcher::new(q, re, ic).unwrap();
            assert_eq!(
                m.matches(text),
                want,
                "{q:?} regex={re} ignore_case={ic} {text:?}"
            );
        }
        let err = Matcher::new(Some("(unclosed"), true, false).unwrap_err();
        assert!(err.contains("bad regular expression"), "{err}");
    }

    #[test]
    fn a_tail_keeps_the_newest_matches_and_counts_all() {
        let mut t = Tail::new(2, Matcher::new(Some("hit"), false, false).unwrap());
        for text in ["hit 1", "miss", "hit 2", "hit 3", "miss"] {
            t.push(line("s", "INFO", text));
        }
        assert_eq!(t.matched, 3);
        assert_eq!(texts(t.lines.make_contiguous()), ["hit 2", "hit 3"]);
    }

    #[test]
    fn long_lines_are_cut_and_levels_shown() {
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        let r = line("s", "INFO", &long).render();
        assert!(r.starts_with(&"x".repeat(MAX_LINE_CHARS)));
        assert!(r.ends_with("[line cut at 2000 characters]"), "{r}");
        assert_eq!(line("s", "ERROR", "boom").render(), "ERROR: boom");
        assert_eq!(line("s", "INFO", "fine").render(), "fine");
    }

    #[test]
    fn error_looking_lines() {
        // (level, text, is an error)
        let cases = [
            ("ERROR", "Command \"make\" failed: exit status 1", true),
            ("INFO", "error[E0308]: mismatched types", true),
            ("INFO", "Error: cannot find module 'x'", true),
            ("INFO", "npm ERR! code ELIFECYCLE", true),
            ("INFO", "thread 'main' panicked at src/main.rs:3", true),
            ("INFO", "FATAL: database is down", true),
            ("INFO", "compiled with 0 errors", false),
            ("INFO", "no failures here", false),
            ("WARN", "deprecated flag", false),
            ("INFO", "Running cmd: sh -c echo error; exit 1", false),
        ];
        for (level, text, want) in cases {
            assert_eq!(looks_like_error(&line("s", level, text)), want, "{text}");
        }
    }

    #[test]
    fn the_window_is_around_the_first_error_of_its_span_only() {
        let mut w = ErrorWindow::new("build:web:2", 2, 1);
        let feed = [
            ("build:web:1", "INFO", "an older update"),
            ("build:web:1", "ERROR", "an older failure"),
            ("build:web:2", "INFO", "step 1"),
            ("build:web:2", "INFO", "step 2"),
            ("cmd:web:serve", "INFO", "a server line between"),
            ("build:web:2", "INFO", "step 3"),
            ("build:web:2", "INFO", "compile error: x is undefined"),
            (
                "build:web:2",
                "ERROR",
                "Command \"make\" failed: exit status 2",
            ),
            ("build:web:2", "INFO", "never read"),
        ];
        let mut stopped_at = None;
        for (i, (span, level, text)) in feed.iter().enumerate() {
            if !w.push(line(span, level, text)) {
                stopped_at = Some(i);
                break;
            }
        }
        assert_eq!(stopped_at, Some(7), "reading stops once the window is full");
        let got = w.finish();
        assert_eq!(
            texts(&got.lines),
            [
                "step 2",
                "step 3",
                "compile error: x is undefined",
                "Command \"make\" failed: exit status 2"
            ]
        );
        assert_eq!(got.error_index, Some(2));
        assert_eq!(got.span_lines, 5);
    }

    #[test]
    fn a_runtime_window_marks_the_first_error_of_the_current_run() {
        let w = |texts: &[&str]| {
            runtime_window(
                texts
                    .iter()
                    .map(|t| line("cmd:web:serve", "INFO", t))
                    .collect(),
            )
        };
        // (lines, index of the marked error)
        let cases: [(&[&str], Option<usize>); 4] = [
            (
                &[
                    "Running cmd: x",
                    "error: old run",
                    "Running cmd: x",
                    "starting",
                    "FATAL: port taken",
                    "Process exited with code 1",
                ],
                Some(4),
            ),
            // A pod's log: no run marker, the window's first error.
            (
                &[
                    "started",
                    "error: db down",
                    "retrying",
                    "Error: db down again",
                ],
                Some(1),
            ),
            (&["fine"], None),
            // The current run has no complaint of its own: nothing older is blamed.
            (&["error: old", "Running cmd: x", "listening"], None),
        ];
        for (texts, want) in cases {
            assert_eq!(w(texts).error_index, want, "{texts:?}");
        }
    }

    #[test]
    fn without_an_error_the_window_is_the_spans_last_lines() {
        let mut w = ErrorWindow::new("s", 1, 1);
        for text in ["a", "b", "c", "d"] {
            assert!(w.push(line("s", "INFO", text)));
        }
        let got = w.finish();
        assert_eq!(texts(&got.lines), ["b", "c", "d"]);
        assert_eq!(got.error_index, None);
        // An error as the very first line has no lines before it.
        let mut w = ErrorWindow::new("s", 3, 0);
        assert!(!w.push(line("s", "ERROR", "boom")));
        assert_eq!(w.finish().error_index, Some(0));
    }
}
