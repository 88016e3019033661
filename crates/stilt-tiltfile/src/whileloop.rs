//! `while` loops. Tilt's Go Starlark allows them and real extensions use them (dotenv,
//! helm_remote, git_resource); starlark-rust 0.14 has no `while` statement at all (the word is only
//! a reserved keyword, and no `Dialect` flag turns it on). So before parsing, each loop is
//! rewritten as an unbounded `for` whose first statement tests the condition:
//!
//! ```text
//! while COND:            for _stilt_while in range(2147483647):
//!     BODY          →        if not (COND): break
//!                            BODY
//! ```
//!
//! `break` and `continue` keep their meaning (a `continue` goes back to the test). The rewrite
//! adds a line; to keep every other line where it was (error locations, tracebacks), one blank or
//! comment-only line is dropped, preferably the one just before the loop (then the test sits on the
//! `while` line itself), else the next one after it. A file with no such line reports lines after
//! the loop one lower.

/// The iteration bound of a rewritten loop (cancellation stops a runaway load long before).
const FOREVER: &str = "range(2147483647)";

/// Where each line starts: inside a triple-quoted string, and the bracket depth.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct LineStart {
    in_string: bool,
    depth: usize,
    /// The previous line ended with a backslash continuation.
    continued: bool,
}

impl LineStart {
    fn is_statement_start(self) -> bool {
        !self.in_string && self.depth == 0 && !self.continued
    }
}

/// Scans source text, skipping strings and comments; reports brackets and the header colon.
#[derive(Default)]
struct Scanner {
    /// Inside a string: its quote and whether it is triple-quoted.
    quote: Option<(char, bool)>,
    depth: usize,
}

impl Scanner {
    /// Feed one line (without its newline). Returns the byte offset of the first `:` at depth 0
    /// outside strings and comments, when `want_colon`, and the line's code without comments.
    fn line(&mut self, line: &str, want_colon: bool) -> (Option<usize>, String) {
        let mut code = String::new();
        let bytes: Vec<(usize, char)> = line.char_indices().collect();
        let mut i = 0;
        while i < bytes.len() {
            let (off, ch) = bytes[i];
            if let Some((q, triple)) = self.quote {
                code.push(ch);
                if ch == '\\' {
                    if let Some((_, n)) = bytes.get(i + 1) {
                        code.push(*n);
                    }
                    i += 2;
                    continue;
                }
                if ch == q {
                    if !triple {
                        self.quote = None;
                    } else if bytes.get(i + 1).map(|b| b.1) == Some(q)
                        && bytes.get(i + 2).map(|b| b.1) == Some(q)
                    {
                        code.push(q);
                        code.push(q);
                        self.quote = None;
                        i += 3;
                        continue;
                    }
                }
                i += 1;
                continue;
            }
            match ch {
                '#' => break,
                '"' | '\'' => {
                    let triple = bytes.get(i + 1).map(|b| b.1) == Some(ch)
                        && bytes.get(i + 2).map(|b| b.1) == Some(ch);
                    self.quote = Some((ch, triple));
                    code.push(ch);
                    if triple {
                        code.push(ch);
                        code.push(ch);
                        i += 3;
                        continue;
                    }
                }
                '(' | '[' | '{' => {
                    self.depth += 1;
                    code.push(ch);
                }
                ')' | ']' | '}' => {
                    self.depth = self.depth.saturating_sub(1);
                    code.push(ch);
                }
                ':' if want_colon && self.depth == 0 => return (Some(off), code),
                _ => code.push(ch),
            }
            i += 1;
        }
        // A single-quoted string never spans lines (unless continued, which ends it here too).
        if matches!(self.quote, Some((_, false))) {
            self.quote = None;
        }
        (None, code)
    }
}

fn line_starts(lines: &[&str]) -> Vec<LineStart> {
    let mut sc = Scanner::default();
    let mut out = Vec::with_capacity(lines.len());
    let mut continued = false;
    for l in lines {
        out.push(LineStart {
            in_string: sc.quote.is_some(),
            depth: sc.depth,
            continued,
        });
        let (_, code) = sc.line(l, false);
        continued = sc.quote.is_none() && code.trim_end().ends_with('\\');
    }
    out
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The `while` keyword at the start of a statement line: its indentation.
fn while_indent(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t.strip_prefix("while")?;
    rest.starts_with(|c: char| c.is_whitespace() || c == '(')
        .then(|| &line[..line.len() - t.len()])
}

/// Rewrite every `while` loop of `src` (see the module docs). Source without `while` is returned
/// unchanged (borrowed).
pub(crate) fn rewrite(src: &str) -> std::borrow::Cow<'_, str> {
    if !src.contains("while") {
        return src.into();
    }
    let lines: Vec<&str> = src.split('\n').collect();
    let starts = line_starts(&lines);
    // Output lines, each with whether it may be dropped to pay back an added line.
    let mut out: Vec<(String, bool)> = Vec::with_capacity(lines.len() + 4);
    let mut debt = 0usize;
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let start = starts[i];
        let indent = start
            .is_statement_start()
            .then(|| while_indent(line))
            .flatten();
        let Some(indent) = indent else {
            let droppable = start.is_statement_start() && is_blank_or_comment(line);
            if droppable && debt > 0 && i + 1 < lines.len() {
                debt -= 1;
            } else {
                out.push((line.to_owned(), droppable));
            }
            i += 1;
            continue;
        };
        // The header: from after `while` to the `:` at depth 0, possibly over several lines.
        let mut sc = Scanner::default();
        let mut cond = String::new();
        let mut j = i;
        let mut text = &line[indent.len() + "while".len()..];
        let after_colon = loop {
            let (colon, code) = sc.line(text, true);
            match colon {
                Some(off) => {
                    cond.push_str(&text[..off]);
                    break Some(&text[off + 1..]);
                }
                None => {
                    cond.push_str(&code);
                    cond.push('\n');
                    j += 1;
                    match lines.get(j) {
                        Some(l) => text = l,
                        None => break None,
                    }
                }
            }
        };
        let Some(after_colon) = after_colon else {
            // No colon: leave it to the parser to report.
            out.extend(lines[i..].iter().map(|l| (l.to_string(), false)));
            break;
        };
        changed = true;
        let inline = after_colon.trim();
        let inline = (!inline.is_empty() && !inline.starts_with('#')).then_some(inline);
        let body_indent = match inline {
            Some(_) => format!("{indent}    "),
            None => lines[j + 1..]
                .iter()
                .zip(&starts[j + 1..])
                .find(|(l, s)| s.is_statement_start() && !is_blank_or_comment(l))
                .map(|(l, _)| l[..l.len() - l.trim_start().len()].to_owned())
                .unwrap_or_else(|| format!("{indent}    ")),
        };
        let mut added = 1 + usize::from(inline.is_some());
        // Pay back with blank lines just before the loop first.
        while added > 0 && out.last().is_some_and(|(_, droppable)| *droppable) {
            out.pop();
            added -= 1;
        }
        debt += added;
        out.push((format!("{indent}for _stilt_while in {FOREVER}:"), false));
        // The condition keeps its own line breaks (inside the parentheses they are free).
        out.push((
            format!("{body_indent}if not ({}): break", cond.trim()),
            false,
        ));
        if let Some(stmt) = inline {
            out.push((format!("{body_indent}{stmt}"), false));
        }
        i = j + 1;
    }
    if !changed {
        return src.into();
    }
    let mut s = String::with_capacity(src.len() + 64);
    for (n, (l, _)) in out.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        s.push_str(l);
    }
    s.into()
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites() {
        let cases: &[(&str, &str)] = &[
            // Nothing to do.
            ("x = 1\n", "x = 1\n"),
            ("s = 'while x:'\n", "s = 'while x:'\n"),
            ("awhile = 1\nwhile_x = 2\n", "awhile = 1\nwhile_x = 2\n"),
            // The blank line before pays for the added one: the test sits on the `while` line.
            (
                "i = 0\n\nwhile i < 3:\n    i += 1\nprint(i)\n",
                "i = 0\nfor _stilt_while in range(2147483647):\n    if not (i < 3): break\n    i += 1\nprint(i)\n",
            ),
            // No blank line before: the next blank line after pays.
            (
                "i = 0\nwhile i < 3:\n    i += 1\n\nprint(i)\n",
                "i = 0\nfor _stilt_while in range(2147483647):\n    if not (i < 3): break\n    i += 1\nprint(i)\n",
            ),
            // Inside a function, with a comment in the header and a nested loop.
            (
                "def f(n):\n  # count\n  while n > 0:  # loop\n    n -= 1\n    # inner\n    while(False):\n      pass\n  return n\n",
                "def f(n):\n  for _stilt_while in range(2147483647):\n    if not (n > 0): break\n    n -= 1\n    for _stilt_while in range(2147483647):\n      if not ((False)): break\n      pass\n  return n\n",
            ),
            // A condition over several lines, with a comment inside the brackets.
            (
                "\nwhile (a and # first\n       b):\n  a = False\n",
                "for _stilt_while in range(2147483647):\n  if not ((a and \n       b)): break\n  a = False\n",
            ),
            // An inline body adds two lines.
            (
                "\n\nwhile x: x -= 1\n",
                "for _stilt_while in range(2147483647):\n    if not (x): break\n    x -= 1\n",
            ),
            // `while` inside a triple-quoted string is text; its blank line is not dropped.
            ("s = '''\n\nwhile x:\n'''\n", "s = '''\n\nwhile x:\n'''\n"),
            // A dict value with a colon in the condition.
            (
                "\nwhile d.get('k', {'a': 1}):\n    pass\n",
                "for _stilt_while in range(2147483647):\n    if not (d.get('k', {'a': 1})): break\n    pass\n",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(rewrite(src), *want, "source:\n{src}");
        }
    }

    #[test]
    fn line_numbers_kept_when_a_blank_line_exists() {
        let src = "i = 0\n\nwhile i < 3:\n    i += 1\nfail('x')\n";
        let out = rewrite(src);
        assert_eq!(src.lines().count(), out.lines().count());
        assert_eq!(
            src.lines().position(|l| l.contains("fail")),
            out.lines().position(|l| l.contains("fail"))
        );
    }
}
