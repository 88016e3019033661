//! Stilt's own diagnostics (tracing) while the terminal view owns the screen: lines written to
//! stderr would scribble over the table, so they are kept (the last [`KEEP`]) and printed when the
//! view closes; the newest one is shown in the footer.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

const KEEP: usize = 200;

/// Complete lines kept, and the start of a line not yet ended.
type Capture = (VecDeque<String>, String);

static CAPTURED: Mutex<Option<Capture>> = Mutex::new(None);

/// From now on, diagnostics are kept instead of written.
pub fn capture() {
    *CAPTURED.lock().unwrap_or_else(|e| e.into_inner()) = Some((VecDeque::new(), String::new()));
}

/// Stops capturing; returns what was kept.
pub fn release() -> Vec<String> {
    CAPTURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .map(|(mut q, partial)| {
            if !partial.is_empty() {
                q.push_back(partial);
            }
            Vec::from(q)
        })
        .unwrap_or_default()
}

/// The newest captured line.
pub fn newest() -> Option<String> {
    CAPTURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|(q, _)| q.back().cloned())
}

/// The writer `init_tracing` installs: stderr, or the capture while the view is up.
#[derive(Clone, Copy, Default)]
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut held = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some((q, partial)) => {
                partial.push_str(&String::from_utf8_lossy(buf));
                while let Some(end) = partial.find('\n') {
                    let l: String = partial.drain(..=end).collect();
                    if q.len() == KEEP {
                        q.pop_front();
                    }
                    q.push_back(l.trim_end().to_string());
                }
                Ok(buf.len())
            }
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Writer;
    fn make_writer(&'a self) -> Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_lines_are_kept_bounded_and_released() {
        capture();
        let mut w = Writer;
        for i in 0..(KEEP + 5) {
            writeln!(w, "line {i}").unwrap();
        }
        assert_eq!(
            newest().as_deref(),
            Some(format!("line {}", KEEP + 4).as_str())
        );
        let kept = release();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0], "line 5");
        assert_eq!(newest(), None);
        // A line written in pieces is one line; an unfinished one is released too.
        capture();
        write!(Writer, "a ").unwrap();
        write!(Writer, "b\nc").unwrap();
        assert_eq!(release(), ["a b", "c"]);
    }
}
