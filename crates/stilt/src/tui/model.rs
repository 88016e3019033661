//! The terminal view's decisions, as pure functions: UIResources → rows, rows + view state →
//! the lines of the screen, keys → actions, and whether the terminal can show it at all.
//! The event loop (`tui::run`) only feeds these and draws what they return.

use chrono::{DateTime, Utc};
use stilt_api::UIResource;

/// Narrowest / shortest terminal the table is drawn in; smaller ones get the plain stream.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 6;
/// Error lines shown under a failing resource.
pub const ERROR_LINES: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Building,
    Pending,
    Error,
    Disabled,
    /// Nothing ran yet (a manual resource) or nothing to run.
    Idle,
}

impl Status {
    pub fn icon(self) -> char {
        match self {
            Status::Ok => '✔',
            Status::Building => '●',
            Status::Pending => '…',
            Status::Error => '✖',
            Status::Disabled => '○',
            Status::Idle => '·',
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Building => "updating",
            Status::Pending => "pending",
            Status::Error => "error",
            Status::Disabled => "disabled",
            Status::Idle => "idle",
        }
    }
}

/// One resource as the table shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub status: Status,
    pub kind: String,
    /// How long the last (or the running) update took, e.g. `1.2s`.
    pub update: String,
    /// Time since the last update finished, e.g. `3m`.
    pub age: String,
    pub pending_changes: bool,
    pub disabled: bool,
    /// The first lines of the newest error (only while the resource is in error).
    pub error: Vec<String>,
}

/// The combined status of a resource, as Tilt's UIs derive it from update and runtime status.
pub fn status_of(
    update_status: &str,
    runtime_status: &str,
    disabled: bool,
    queued: bool,
) -> Status {
    if disabled {
        Status::Disabled
    } else if update_status == "in_progress" {
        Status::Building
    } else if update_status == "error" || runtime_status == "error" {
        Status::Error
    } else if update_status == "pending" || runtime_status == "pending" || queued {
        Status::Pending
    } else if update_status == "ok" || runtime_status == "ok" {
        Status::Ok
    } else {
        Status::Idle
    }
}

/// `850ms`, `1.2s`, `42s`, `3m`, `2h`, `5d`.
pub fn short_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..60_000 => format!("{}s", ms / 1000),
        60_000..3_600_000 => format!("{}m", ms / 60_000),
        3_600_000..86_400_000 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

/// An age in whole seconds (`0s`, `42s`), then as [`short_duration`]: an idle screen changes at
/// most once a second.
pub fn short_age(d: chrono::Duration) -> String {
    if d.num_seconds() < 60 {
        format!("{}s", d.num_seconds().max(0))
    } else {
        short_duration(d)
    }
}

/// The row of one UIResource. `log_error` is the newest error line its log holds (used when the
/// failure is not a build error: a crashed pod or server).
pub fn row(ui: &UIResource, now: DateTime<Utc>, log_error: Option<&str>) -> Row {
    let st = ui.status.clone().unwrap_or_default();
    let disabled = st
        .disable_status
        .as_ref()
        .is_some_and(|d| d.state == "Disabled");
    let status = status_of(&st.update_status, &st.runtime_status, disabled, st.queued);
    let kind = ui
        .metadata
        .annotations
        .get(stilt_engine::names::ANN_RESOURCE_TYPE)
        .cloned()
        .or_else(|| st.specs.iter().map(|s| s.r#type.clone()).next())
        .unwrap_or_default();
    let last = st.build_history.first();
    let update = match (&st.current_build, last) {
        (Some(cur), _) if cur.start_time.is_some() => {
            short_duration(now - cur.start_time.unwrap_or_default().0)
        }
        (_, Some(b)) => match (b.start_time, b.finish_time) {
            (Some(s), Some(f)) => short_duration(f.0 - s.0),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let age = last
        .and_then(|b| b.finish_time)
        .map(|f| short_age(now - f.0))
        .unwrap_or_default();
    let error = if status != Status::Error {
        Vec::new()
    } else {
        let build_error = last.map(|b| b.error.as_str()).filter(|e| !e.is_empty());
        let pod = st
            .k8s_resource_info
            .as_ref()
            .map(|k| k.pod_status.as_str())
            .filter(|s| !s.is_empty());
        let text = build_error
            .or(log_error)
            .or(pod)
            .unwrap_or("failed (see its log: enter)");
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .take(ERROR_LINES)
            .map(str::to_string)
            .collect()
    };
    Row {
        name: ui.metadata.name.clone(),
        status,
        kind,
        update,
        age,
        pending_changes: st.has_pending_changes,
        disabled,
        error,
    }
}

/// Rows in the UIs' order: the Tiltfile first, then the Tiltfile's resource order.
pub fn rows(
    resources: &[UIResource],
    now: DateTime<Utc>,
    log_error: &dyn Fn(&str) -> Option<String>,
) -> Vec<Row> {
    let mut sorted: Vec<&UIResource> = resources.iter().collect();
    let order = |u: &UIResource| {
        let tiltfile = u.metadata.name == stilt_engine::names::TILTFILE_RESOURCE;
        let order = u.status.as_ref().map(|s| s.order).unwrap_or_default();
        (!tiltfile, order, u.metadata.name.clone())
    };
    sorted.sort_by_key(|u| order(u));
    sorted
        .into_iter()
        .map(|u| row(u, now, log_error(&u.metadata.name).as_deref()))
        .collect()
}

/// What the user looks at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// Index of the selected row.
    pub selected: usize,
    /// First screen line of the table shown (scrolling).
    pub offset: usize,
    /// The resource whose log is shown instead of the table.
    pub follow: Option<String>,
    /// A one-line note in the footer (what a key did).
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Esc,
    CtrlC,
    Char(char),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Moved the selection or changed the view: redraw.
    Moved,
    Quit,
    OpenWeb,
    Stream,
    Trigger(String),
    /// Enable (false) or disable (true) a resource.
    SetDisabled(String, bool),
}

/// Applies a key to the view; returns what the event loop must do beyond redrawing.
/// `page` is the number of table lines on screen.
pub fn key(view: &mut View, rows: &[Row], k: Key, page: usize) -> Action {
    let last = rows.len().saturating_sub(1);
    let selected = rows.get(view.selected.min(last)).map(|r| r.name.clone());
    match k {
        Key::CtrlC | Key::Char('q') => Action::Quit,
        Key::Char(' ') => Action::OpenWeb,
        Key::Char('s') => Action::Stream,
        Key::Esc if view.follow.is_some() => {
            view.follow = None;
            Action::Moved
        }
        Key::Esc => Action::None,
        // In the log view only the keys above (and t/d for the followed resource) apply.
        Key::Char('t') => match view.follow.clone().or(selected) {
            Some(n) => Action::Trigger(n),
            None => Action::None,
        },
        Key::Char('d') => {
            let name = view.follow.clone().or(selected);
            match name.and_then(|n| rows.iter().find(|r| r.name == n)) {
                Some(r) if r.name != stilt_engine::names::TILTFILE_RESOURCE => {
                    Action::SetDisabled(r.name.clone(), !r.disabled)
                }
                _ => Action::None,
            }
        }
        _ if view.follow.is_some() => Action::None,
        Key::Enter => match selected {
            Some(n) => {
                view.follow = Some(n);
                Action::Moved
            }
            None => Action::None,
        },
        Key::Up | Key::Char('k') => move_to(view, view.selected.min(last).saturating_sub(1)),
        Key::Down | Key::Char('j') => move_to(view, (view.selected + 1).min(last)),
        Key::PageUp => move_to(view, view.selected.min(last).saturating_sub(page.max(1))),
        Key::PageDown => move_to(view, (view.selected + page.max(1)).min(last)),
        Key::Home => move_to(view, 0),
        Key::End => move_to(view, last),
        Key::Char(_) => Action::None,
    }
}

fn move_to(view: &mut View, to: usize) -> Action {
    if view.selected == to {
        return Action::None;
    }
    view.selected = to;
    Action::Moved
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Header,
    Normal,
    Selected,
    Error,
    Dim,
}

/// One line of the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub style: Style,
}

fn line(text: String, style: Style) -> Line {
    Line { text, style }
}

/// Cuts to `width` characters (the table never wraps: a wrapped line would shift the rest).
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// What the header says: where the web UI is and how many resources are in which state.
pub fn header(rows: &[Row], url: Option<&str>) -> String {
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    let plural = if rows.len() == 1 { "" } else { "s" };
    let mut parts = vec![format!("{} resource{plural}", rows.len())];
    for s in [
        Status::Ok,
        Status::Error,
        Status::Building,
        Status::Pending,
        Status::Disabled,
    ] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", s.label()));
        }
    }
    match url {
        Some(u) => format!("stilt · {u} · {}", parts.join(", ")),
        None => format!("stilt · {}", parts.join(", ")),
    }
}

pub const TABLE_KEYS: &str =
    "↑↓ select · enter log · t trigger · d enable/disable · space web UI · s stream · q quit";
pub const LOG_KEYS: &str = "esc back · t trigger · d enable/disable · q quit";

/// The screen of the table view: header, the rows (with error lines) that fit, footer. Scrolls
/// `view.offset` so the selected row is on screen.
pub fn table_screen(
    rows: &[Row],
    view: &mut View,
    url: Option<&str>,
    width: u16,
    height: u16,
) -> Vec<Line> {
    let width = width as usize;
    let body = (height as usize).saturating_sub(2);
    let name_w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 32);
    let kind_w = rows
        .iter()
        .map(|r| r.kind.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 14);
    view.selected = view.selected.min(rows.len().saturating_sub(1));
    // Every table line, with the row it belongs to.
    let mut lines: Vec<(usize, Line)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let pending = if r.pending_changes {
            "changes pending"
        } else {
            ""
        };
        let text = format!(
            "{} {:<name_w$} {:<kind_w$} {:<8} {:>6} {:>6} {}",
            r.status.icon(),
            fit(&r.name, name_w),
            fit(&r.kind, kind_w),
            r.status.label(),
            r.update,
            r.age,
            pending
        );
        let style = if i == view.selected {
            Style::Selected
        } else if r.status == Status::Error {
            Style::Error
        } else if r.disabled {
            Style::Dim
        } else {
            Style::Normal
        };
        lines.push((i, line(fit(text.trim_end(), width), style)));
        for e in &r.error {
            lines.push((i, line(fit(&format!("    {e}"), width), Style::Error)));
        }
    }
    let first = lines
        .iter()
        .position(|(i, _)| *i == view.selected)
        .unwrap_or(0);
    let end = lines
        .iter()
        .rposition(|(i, _)| *i == view.selected)
        .map_or(0, |p| p + 1);
    if first < view.offset {
        view.offset = first;
    } else if end > view.offset + body {
        view.offset = end.saturating_sub(body);
    }
    view.offset = view.offset.min(lines.len().saturating_sub(body));
    let mut out = vec![line(fit(&header(rows, url), width), Style::Header)];
    out.extend(
        lines
            .into_iter()
            .skip(view.offset)
            .take(body)
            .map(|(_, l)| l),
    );
    while out.len() < body + 1 {
        out.push(line(String::new(), Style::Normal));
    }
    let footer = if view.message.is_empty() {
        TABLE_KEYS.to_string()
    } else {
        format!("{} · {TABLE_KEYS}", view.message)
    };
    out.push(line(fit(&footer, width), Style::Dim));
    out
}

/// The screen of the log view: the newest lines of one resource's log that fit.
pub fn log_screen(
    resource: &str,
    log: &[String],
    message: &str,
    width: u16,
    height: u16,
) -> Vec<Line> {
    let width = width as usize;
    let body = (height as usize).saturating_sub(2);
    let mut out = vec![line(
        fit(&format!("log of {resource}"), width),
        Style::Header,
    )];
    let start = log.len().saturating_sub(body);
    out.extend(
        log[start..]
            .iter()
            .map(|l| line(fit(l, width), Style::Normal)),
    );
    while out.len() < body + 1 {
        out.push(line(String::new(), Style::Normal));
    }
    let footer = if message.is_empty() {
        LOG_KEYS.to_string()
    } else {
        format!("{message} · {LOG_KEYS}")
    };
    out.push(line(fit(&footer, width), Style::Dim));
    out
}

/// A log line as the log view can show it: colour escapes dropped, tabs expanded, no control
/// characters (they would move the cursor and break the screen).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether the terminal can show the live view: not `--stream`, a terminal, not `TERM=dumb`, and
/// big enough.
pub fn use_tui(stream: bool, is_tty: bool, term: Option<&str>, size: Option<(u16, u16)>) -> bool {
    !stream
        && is_tty
        && !matches!(term, Some("dumb") | Some("") | None)
        && size.is_some_and(|(w, h)| w >= MIN_WIDTH && h >= MIN_HEIGHT)
}

/// The program that opens a URL in the browser, if one is installed (`open` on macOS,
/// `xdg-open` elsewhere).
pub fn opener(macos: bool, installed: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    let candidate = if macos { "open" } else { "xdg-open" };
    installed(candidate).then_some(candidate)
}

/// Remembers the last screen drawn: the terminal is written only when the screen changed.
#[derive(Default)]
pub struct Redraw {
    last: Option<Vec<Line>>,
}

impl Redraw {
    /// Whether `screen` differs from what was drawn last (and remembers it).
    pub fn needed(&mut self, screen: &[Line]) -> bool {
        if self.last.as_deref() == Some(screen) {
            return false;
        }
        self.last = Some(screen.to_vec());
        true
    }

    /// Forget what was drawn (after a resize or a return from another screen).
    pub fn invalidate(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ui(name: &str, status: serde_json::Value) -> UIResource {
        serde_json::from_value(json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "kind": "UIResource",
            "metadata": {"name": name, "annotations": {"stilt.dev/resource-type": "local"}},
            "status": status,
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:01:00Z".parse().unwrap()
    }

    #[test]
    fn status_combines_update_runtime_and_disable_state() {
        let cases = [
            // (update, runtime, disabled, queued) → status
            ("ok", "ok", false, false, Status::Ok),
            ("ok", "not_applicable", false, false, Status::Ok),
            ("not_applicable", "ok", false, false, Status::Ok),
            ("in_progress", "error", false, false, Status::Building),
            ("error", "ok", false, false, Status::Error),
            ("ok", "error", false, false, Status::Error),
            ("pending", "ok", false, false, Status::Pending),
            ("ok", "pending", false, false, Status::Pending),
            ("none", "none", false, true, Status::Pending),
            ("none", "none", false, false, Status::Idle),
            ("error", "error", true, false, Status::Disabled),
        ];
        for (u, r, d, q, want) in cases {
            assert_eq!(status_of(u, r, d, q), want, "{u} {r} {d} {q}");
        }
    }

    #[test]
    fn durations_are_short() {
        let cases = [
            (0, "0ms"),
            (850, "850ms"),
            (1_234, "1.2s"),
            (42_000, "42s"),
            (185_000, "3m"),
            (7_300_000, "2h"),
            (200_000_000, "2d"),
            (-5, "0ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(short_duration(chrono::Duration::milliseconds(ms)), want);
        }
    }

    #[test]
    fn ages_tick_in_whole_seconds() {
        let cases = [
            (0, "0s"),
            (999, "0s"),
            (4_250, "4s"),
            (59_999, "59s"),
            (185_000, "3m"),
            (-3, "0s"),
        ];
        for (ms, want) in cases {
            assert_eq!(short_age(chrono::Duration::milliseconds(ms)), want);
        }
    }

    #[test]
    fn rows_show_kind_durations_pending_changes_and_the_newest_error() {
        let build = |err: &str| json!({"startTime": "2026-01-01T00:00:10.000000Z", "finishTime": "2026-01-01T00:00:11.500000Z", "error": err});
        let cases = [
            // (status, log error) → (status, update, age, pending, error lines)
            (
                json!({"updateStatus": "ok", "runtimeStatus": "ok", "buildHistory": [build("")]}),
                None,
                (Status::Ok, "1.5s", "48s", false, vec![]),
            ),
            (
                json!({"updateStatus": "error", "runtimeStatus": "not_applicable",
                       "buildHistory": [build("exit status 1\nline two\nline three")], "hasPendingChanges": true}),
                None,
                (
                    Status::Error,
                    "1.5s",
                    "48s",
                    true,
                    vec!["exit status 1", "line two"],
                ),
            ),
            (
                json!({"updateStatus": "ok", "runtimeStatus": "error", "buildHistory": [build("")]}),
                Some("panic: boom"),
                (Status::Error, "1.5s", "48s", false, vec!["panic: boom"]),
            ),
            (
                json!({"updateStatus": "ok", "runtimeStatus": "error", "buildHistory": [build("")],
                       "k8sResourceInfo": {"podStatus": "CrashLoopBackOff"}}),
                None,
                (
                    Status::Error,
                    "1.5s",
                    "48s",
                    false,
                    vec!["CrashLoopBackOff"],
                ),
            ),
            (
                json!({"updateStatus": "in_progress", "runtimeStatus": "ok",
                       "currentBuild": {"startTime": "2026-01-01T00:00:57.000000Z"}, "buildHistory": [build("")]}),
                None,
                (Status::Building, "3.0s", "48s", false, vec![]),
            ),
            (
                // Recovered: the old error is not shown.
                json!({"updateStatus": "ok", "runtimeStatus": "ok", "buildHistory": [build("")]}),
                Some("old failure"),
                (Status::Ok, "1.5s", "48s", false, vec![]),
            ),
            (
                json!({"updateStatus": "none", "runtimeStatus": "none",
                       "disableStatus": {"state": "Disabled", "disabledCount": 1}}),
                None,
                (Status::Disabled, "", "", false, vec![]),
            ),
        ];
        for (st, log_err, (status, update, age, pending, error)) in cases {
            let r = row(&ui("web", st.clone()), now(), log_err);
            assert_eq!(r.kind, "local");
            assert_eq!(
                (
                    r.status,
                    r.update.as_str(),
                    r.age.as_str(),
                    r.pending_changes,
                    r.error.clone()
                ),
                (
                    status,
                    update,
                    age,
                    pending,
                    error.iter().map(|s| s.to_string()).collect()
                ),
                "{st}"
            );
            assert_eq!(r.disabled, status == Status::Disabled);
        }
    }

    #[test]
    fn the_tiltfile_comes_first_then_the_tiltfile_order() {
        let list = vec![
            ui("b", json!({"order": 2})),
            ui("a", json!({"order": 3})),
            ui("(Tiltfile)", json!({"order": 9})),
            ui("c", json!({"order": 1})),
        ];
        let names: Vec<String> = rows(&list, now(), &|_| None)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["(Tiltfile)", "c", "b", "a"]);
    }

    fn plain_rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                name: format!("r{i:03}"),
                status: Status::Ok,
                kind: "local".into(),
                update: "1.0s".into(),
                age: "5s".into(),
                pending_changes: false,
                disabled: false,
                error: vec![],
            })
            .collect()
    }

    #[test]
    fn keys_move_the_selection_and_name_the_selected_resource() {
        let mut rows = plain_rows(3);
        rows[1].disabled = true;
        rows[1].status = Status::Disabled;
        // (selected, follow, key) → (selected, follow, action)
        type Case<'a> = (usize, Option<&'a str>, Key, usize, Option<&'a str>, Action);
        let cases: Vec<Case> = vec![
            (0, None, Key::Down, 1, None, Action::Moved),
            (2, None, Key::Down, 2, None, Action::None),
            (0, None, Key::Up, 0, None, Action::None),
            (2, None, Key::Char('k'), 1, None, Action::Moved),
            (0, None, Key::End, 2, None, Action::Moved),
            (2, None, Key::PageUp, 0, None, Action::Moved),
            (0, None, Key::Enter, 0, Some("r000"), Action::Moved),
            (0, Some("r000"), Key::Esc, 0, None, Action::Moved),
            (0, Some("r000"), Key::Down, 0, Some("r000"), Action::None),
            (0, None, Key::Esc, 0, None, Action::None),
            (
                2,
                None,
                Key::Char('t'),
                2,
                None,
                Action::Trigger("r002".into()),
            ),
            (
                0,
                Some("r001"),
                Key::Char('t'),
                0,
                Some("r001"),
                Action::Trigger("r001".into()),
            ),
            (
                0,
                None,
                Key::Char('d'),
                0,
                None,
                Action::SetDisabled("r000".into(), true),
            ),
            (
                1,
                None,
                Key::Char('d'),
                1,
                None,
                Action::SetDisabled("r001".into(), false),
            ),
            (0, None, Key::Char('q'), 0, None, Action::Quit),
            (0, Some("r000"), Key::CtrlC, 0, Some("r000"), Action::Quit),
            (0, None, Key::Char(' '), 0, None, Action::OpenWeb),
            (0, None, Key::Char('s'), 0, None, Action::Stream),
            (0, None, Key::Char('x'), 0, None, Action::None),
        ];
        for (sel, follow, k, want_sel, want_follow, want) in cases {
            let mut v = View {
                selected: sel,
                follow: follow.map(String::from),
                ..Default::default()
            };
            let got = key(&mut v, &rows, k, 10);
            assert_eq!(
                (v.selected, v.follow.as_deref(), got),
                (want_sel, want_follow, want),
                "{sel} {follow:?} {k:?}"
            );
        }
        // The Tiltfile cannot be disabled.
        let mut tf = plain_rows(1);
        tf[0].name = "(Tiltfile)".into();
        assert_eq!(
            key(&mut View::default(), &tf, Key::Char('d'), 10),
            Action::None
        );
        // No rows: nothing to select or trigger.
        assert_eq!(
            key(&mut View::default(), &[], Key::Char('t'), 10),
            Action::None
        );
        assert_eq!(key(&mut View::default(), &[], Key::Enter, 10), Action::None);
    }

    #[test]
    fn three_hundred_rows_scroll_to_keep_the_selection_on_screen() {
        let rows = plain_rows(300);
        let mut v = View::default();
        // (selected) → (first row shown); 20 lines: header, 18 rows, footer.
        let cases = [(0, 0), (17, 0), (18, 1), (299, 282), (150, 150), (140, 140)];
        for (sel, first) in cases {
            v.selected = sel;
            let screen = table_screen(&rows, &mut v, Some("http://x"), 100, 20);
            assert_eq!(
                screen.len(),
                20,
                "the screen is exactly the terminal's height"
            );
            assert!(
                screen[1].text.contains(&format!("r{first:03}")),
                "{sel}: {:?}",
                screen[1]
            );
            let shown: Vec<&Line> = screen
                .iter()
                .filter(|l| l.style == Style::Selected)
                .collect();
            assert_eq!(shown.len(), 1, "{sel}");
            assert!(shown[0].text.contains(&format!("r{sel:03}")));
            assert!(screen.iter().all(|l| l.text.chars().count() <= 100));
        }
        assert!(screen_text(&rows, 20).contains("300 resources, 300 ok"));
        assert!(screen_text(&rows[..1], 20).contains("1 resource, 1 ok"));
    }

    fn screen_text(rows: &[Row], h: u16) -> String {
        table_screen(rows, &mut View::default(), None, 100, h)
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn error_lines_follow_their_row_and_scroll_with_it() {
        let mut rows = plain_rows(5);
        rows[4].status = Status::Error;
        rows[4].error = vec!["first".into(), "second".into()];
        let mut v = View {
            selected: 4,
            ..Default::default()
        };
        // 6 lines: 4 body lines; row 4 takes 3 lines, so rows 0-2 are scrolled off after one.
        let screen = table_screen(&rows, &mut v, None, 60, 6);
        let texts: Vec<&str> = screen.iter().map(|l| l.text.as_str()).collect();
        assert!(texts[1].contains("r003"), "{texts:#?}");
        assert!(
            texts[2].contains("r004") && texts[2].contains("error"),
            "{texts:#?}"
        );
        assert_eq!(texts[3].trim(), "first");
        assert_eq!(texts[4].trim(), "second");
        assert_eq!(screen[3].style, Style::Error);
    }

    #[test]
    fn long_lines_are_cut_never_wrapped() {
        let mut rows = plain_rows(1);
        rows[0].name = "a-really-long-resource-name-that-goes-on-and-on".into();
        let screen = table_screen(&rows, &mut View::default(), None, 40, 6);
        assert!(screen.iter().all(|l| l.text.chars().count() <= 40));
        let log = vec!["x".repeat(100), "short".into()];
        let screen = log_screen("web", &log, "", 40, 6);
        assert_eq!(screen.len(), 6);
        assert!(screen.iter().all(|l| l.text.chars().count() <= 40));
        assert_eq!(screen[2].text, "short");
    }

    #[test]
    fn the_log_view_shows_the_newest_lines_that_fit() {
        let log: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        let screen = log_screen("web", &log, "Triggered web", 80, 10);
        assert_eq!(screen[0].text, "log of web");
        assert_eq!(screen[1].text, "line 42");
        assert_eq!(screen[8].text, "line 49");
        assert!(screen[9].text.starts_with("Triggered web · esc back"));
    }

    #[test]
    fn the_view_degrades_to_the_stream() {
        let cases = [
            (false, true, Some("xterm-256color"), Some((120, 40)), true),
            (true, true, Some("xterm"), Some((120, 40)), false),
            (false, false, Some("xterm"), Some((120, 40)), false),
            (false, true, Some("dumb"), Some((120, 40)), false),
            (false, true, None, Some((120, 40)), false),
            (false, true, Some("xterm"), Some((39, 40)), false),
            (false, true, Some("xterm"), Some((80, 5)), false),
            (false, true, Some("xterm"), Some((40, 6)), true),
            (false, true, Some("xterm"), None, false),
        ];
        for (stream, tty, term, size, want) in cases {
            assert_eq!(
                use_tui(stream, tty, term, size),
                want,
                "{stream} {tty} {term:?} {size:?}"
            );
        }
    }

    #[test]
    fn log_lines_lose_escapes_and_control_characters() {
        let cases = [
            ("plain", "plain"),
            ("\u{1b}[31mred\u{1b}[0m text", "red text"),
            ("a\tb", "a    b"),
            ("bell\u{7}\r", "bell"),
            ("\u{1b}]x", "x"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "{input:?}");
        }
    }

    #[test]
    fn the_browser_opener_is_used_only_when_installed() {
        assert_eq!(opener(false, &|p| p == "xdg-open"), Some("xdg-open"));
        assert_eq!(opener(true, &|p| p == "open"), Some("open"));
        assert_eq!(opener(false, &|_| false), None);
        assert_eq!(opener(true, &|p| p == "xdg-open"), None);
    }

    #[test]
    fn redraws_only_when_the_screen_changed() {
        let rows = plain_rows(3);
        let mut r = Redraw::default();
        let a = table_screen(&rows, &mut View::default(), None, 80, 10);
        assert!(r.needed(&a));
        assert!(!r.needed(&a.clone()));
        let mut changed = rows.clone();
        changed[1].status = Status::Error;
        let b = table_screen(&changed, &mut View::default(), None, 80, 10);
        assert!(r.needed(&b));
        assert!(!r.needed(&b));
        r.invalidate();
        assert!(r.needed(&b));
    }
}
