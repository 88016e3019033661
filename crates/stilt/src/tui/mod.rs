//! The live terminal view of `stilt up` (ratatui over crossterm): one line per resource, keys to
//! act on them. It reads the store and the log store of its own process (no HTTP), redraws only
//! when the screen changed (ratatui then writes only the changed cells) and acts by writing the
//! same objects `stilt trigger` / `stilt enable|disable` write. Decisions live in [`model`].

pub mod diagnostics;
pub mod model;

use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::style::{Color, Modifier, Style as RStyle};
use ratatui::text::{Line as RLine, Span};
use ratatui::widgets::Paragraph;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use stilt_api::UIResource;
use stilt_logs::{Level, LogStore};
use stilt_store::{PatchType, Store, StoreError, TypedStore};

/// How the view ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// q / ctrl-c: stop Stilt.
    Quit,
    /// s: switch to the plain log stream.
    Stream,
    /// Stilt is stopping for another reason (SIGTERM).
    Stopped,
}

pub struct Context {
    pub store: Store,
    pub logs: LogStore,
    /// The web UI's address (`None` with `--port 0`).
    pub url: Option<String>,
    /// Set from outside to close the view.
    pub stop: Arc<AtomicBool>,
}

/// Lines of the followed resource's log kept for the log view.
const FOLLOW_KEEP: usize = 2000;

/// Runs the view until a key or `stop` ends it; the terminal is restored however it ends.
pub fn run(ctx: Context) -> Result<Exit> {
    diagnostics::capture();
    let restore = || {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    };
    // A panic anywhere while the view is up must not leave the terminal raw and blank.
    static ACTIVE: AtomicBool = AtomicBool::new(false);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.swap(false, Ordering::AcqRel) {
                let _ = terminal::disable_raw_mode();
                let _ = execute!(
                    std::io::stdout(),
                    terminal::LeaveAlternateScreen,
                    cursor::Show
                );
            }
            default_hook(info);
        }));
    });
    ACTIVE.store(true, Ordering::Release);
    let result = (|| -> Result<Exit> {
        terminal::enable_raw_mode()?;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        let mut term =
            ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
        term.clear()?;
        Loop::new(&ctx).run(&mut term)
    })();
    ACTIVE.store(false, Ordering::Release);
    restore();
    for l in diagnostics::release() {
        eprintln!("{l}");
    }
    result
}

struct Loop<'a> {
    ctx: &'a Context,
    view: model::View,
    redraw: model::Redraw,
    resources: Vec<UIResource>,
    seen_rv: Option<u64>,
    log_from: u64,
    /// The newest error line of each resource's log.
    last_error: HashMap<String, String>,
    /// The followed resource and its newest lines.
    followed: Option<String>,
    follow_lines: VecDeque<String>,
}

impl<'a> Loop<'a> {
    fn new(ctx: &'a Context) -> Self {
        Loop {
            ctx,
            view: model::View::default(),
            redraw: model::Redraw::default(),
            resources: Vec::new(),
            seen_rv: None,
            log_from: 0,
            last_error: HashMap::new(),
            followed: None,
            follow_lines: VecDeque::new(),
        }
    }

    fn run<B: ratatui::backend::Backend>(&mut self, term: &mut ratatui::Terminal<B>) -> Result<Exit>
    where
        B::Error: Send + Sync + 'static,
    {
        loop {
            if self.ctx.stop.load(Ordering::Acquire) {
                return Ok(Exit::Stopped);
            }
            self.refresh();
            let rows = model::rows(&self.resources, chrono::Utc::now(), &|n| {
                self.last_error.get(n).cloned()
            });
            let size = term.size()?;
            if let Some(d) = diagnostics::newest()
                && self.view.message.is_empty()
            {
                self.view.message = d;
            }
            let screen = match &self.view.follow {
                Some(r) => {
                    let lines: Vec<String> = self.follow_lines.iter().cloned().collect();
                    model::log_screen(r, &lines, &self.view.message, size.width, size.height)
                }
                None => model::table_screen(
                    &rows,
                    &mut self.view,
                    self.ctx.url.as_deref(),
                    size.width,
                    size.height,
                ),
            };
            if self.redraw.needed(&screen) {
                term.draw(|f| {
                    let lines: Vec<RLine> = screen.iter().map(styled).collect();
                    f.render_widget(Paragraph::new(lines), f.area());
                })?;
            }
            // Ages tick each second; a key or a change shows within 100 ms.
            if !event::poll(Duration::from_millis(100))? {
                continue;
            }
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let page = (size.height as usize).saturating_sub(2);
                    for k in map_key(k.code, k.modifiers) {
                        if let Some(exit) = self.act(k, &rows, page) {
                            return Ok(exit);
                        }
                    }
                }
                Event::Resize(..) => {
                    term.autoresize()?;
                    self.redraw.invalidate();
                }
                _ => {}
            }
        }
    }

    /// Does what a key asks; `Some` when the view ends.
    fn act(&mut self, k: model::Key, rows: &[model::Row], page: usize) -> Option<Exit> {
        self.view.message.clear();
        match model::key(&mut self.view, rows, k, page) {
            model::Action::Quit => return Some(Exit::Quit),
            model::Action::Stream => return Some(Exit::Stream),
            model::Action::OpenWeb => self.view.message = self.open_web(),
            model::Action::Trigger(r) => {
                self.view.message = match trigger(&self.ctx.store, &r) {
                    Ok(()) => format!("Triggered {r}"),
                    Err(e) => format!("trigger {r}: {e}"),
                }
            }
            model::Action::SetDisabled(r, off) => {
                self.view.message = match set_disabled(&self.ctx.store, &r, off) {
                    Ok(()) if off => format!("Disabled {r}"),
                    Ok(()) => format!("Enabled {r}"),
                    Err(e) => format!("{r}: {e}"),
                }
            }
            model::Action::Moved | model::Action::None => {}
        }
        None
    }

    /// Reads what changed: UIResources when the store moved, new log lines.
    fn refresh(&mut self) {
        let rv = self.ctx.store.resource_version();
        if self.seen_rv != Some(rv) {
            if let Ok(list) = self.ctx.store.list_typed::<UIResource>() {
                self.resources = list;
            }
            self.seen_rv = Some(rv);
        }
        if self.followed != self.view.follow {
            self.followed = self.view.follow.clone();
            self.follow_lines.clear();
            if let Some(r) = &self.followed {
                let read = self.ctx.logs.read(0, Some(r));
                for l in read.lines {
                    push_bounded(&mut self.follow_lines, model::printable(&l.text));
                }
            }
        }
        if self.ctx.logs.checkpoint() == self.log_from {
            return;
        }
        let read = self.ctx.logs.read(self.log_from, None);
        self.log_from = read.next;
        for l in read.lines {
            if l.level == Level::Error {
                self.last_error
                    .insert(l.resource.to_string(), model::printable(&l.text));
            }
            if self.followed.as_deref() == Some(&*l.resource) {
                push_bounded(&mut self.follow_lines, model::printable(&l.text));
            }
        }
    }

    fn open_web(&self) -> String {
        let Some(url) = &self.ctx.url else {
            return "the web UI is off (--port 0)".into();
        };
        let installed = |p: &str| {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        };
        match model::opener(cfg!(target_os = "macos"), &installed) {
            Some(program) => match std::process::Command::new(program)
                .arg(url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                Ok(_) => format!("Opened {url}"),
                Err(e) => format!("web UI: {url} ({program}: {e})"),
            },
            None => format!("web UI: {url}"),
        }
    }
}

fn push_bounded(q: &mut VecDeque<String>, l: String) {
    if q.len() == FOLLOW_KEEP {
        q.pop_front();
    }
    q.push_back(l);
}

/// The keys a key event stands for. Esc followed quickly by a key arrives as Alt+key (that is how
/// terminals encode Alt), so Alt+c is taken as esc, then c.
fn map_key(code: KeyCode, mods: KeyModifiers) -> Vec<model::Key> {
    use model::Key;
    let key = match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) if mods.contains(KeyModifiers::ALT) => {
            return vec![Key::Esc, Key::Char(c)];
        }
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        _ => return vec![],
    };
    vec![key]
}

fn styled(l: &model::Line) -> RLine<'static> {
    let style = match l.style {
        model::Style::Header => RStyle::default().add_modifier(Modifier::BOLD),
        model::Style::Normal => RStyle::default(),
        model::Style::Selected => RStyle::default().add_modifier(Modifier::REVERSED),
        model::Style::Error => RStyle::default().fg(Color::Red),
        model::Style::Dim => RStyle::default().add_modifier(Modifier::DIM),
    };
    RLine::from(Span::styled(l.text.clone(), style))
}

/// Merge-patches a ConfigMap's data, creating the ConfigMap when missing (what `stilt trigger`
/// and `stilt enable/disable` do over the API).
fn patch_configmap(store: &Store, name: &str, data: Value) -> Result<(), StoreError> {
    match store.patch(
        "ConfigMap",
        name,
        PatchType::Merge,
        &json!({"data": data}),
        false,
    ) {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. }) => store
            .create(json!({
                "apiVersion": stilt_api::API_VERSION,
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": data,
            }))
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

fn trigger(store: &Store, resource: &str) -> Result<(), StoreError> {
    patch_configmap(
        store,
        stilt_engine::names::TRIGGER_QUEUE,
        json!({resource: "manual"}),
    )
}

fn set_disabled(store: &Store, resource: &str, disabled: bool) -> Result<(), StoreError> {
    patch_configmap(
        store,
        &stilt_engine::names::disable_configmap(resource),
        json!({stilt_api::DISABLE_KEY: if disabled { "true" } else { "false" }}),
    )
}
