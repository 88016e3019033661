//! Reading source text around an editor position (pure): LSP positions are (line, UTF-16 unit),
//! the call the cursor is in, the dotted name under or before it.

/// Byte offset of an LSP position (line, UTF-16 column), clamped to the line's end.
pub fn offset_of(text: &str, line: u32, character: u32) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0u32;
    for (i, ch) in text[start..end].char_indices() {
        if units >= character {
            return start + i;
        }
        units += ch.len_utf16() as u32;
    }
    end
}

/// LSP (line, UTF-16 column) of a byte offset.
pub fn position_of(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..]
        .chars()
        .map(|c| c.len_utf16() as u32)
        .sum();
    (line, col)
}

/// The argument the cursor is on in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// The n-th positional argument (0-based).
    Positional(usize),
    /// A keyword argument being written (`name=…`).
    Named(String),
}

/// The innermost call whose parentheses the cursor is inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    /// The called name as written, dotted (`docker_build`, `config.define_string`).
    pub callee: String,
    pub arg: Arg,
    /// Byte offset where the callee's name starts.
    pub start: usize,
}

/// One open bracket while scanning.
struct Open {
    ch: char,
    /// Byte offset of the bracket.
    at: usize,
    /// Top-level commas seen inside it.
    commas: usize,
    /// Byte offset where the current argument starts.
    arg_start: usize,
}

/// The call the cursor (byte offset) is in, if any: strings and comments are skipped, nested
/// brackets counted, and the argument is named when it starts with `name=`.
pub fn call_at(text: &str, cursor: usize) -> Option<CallSite> {
    let src = &text[..cursor.min(text.len())];
    let mut stack: Vec<Open> = vec![];
    let mut chars = src.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let rest = &src[i..];
                let triple = rest.starts_with(&format!("{ch}{ch}{ch}"));
                if triple {
                    chars.next();
                    chars.next();
                }
                let mut run = 0;
                while let Some((_, c)) = chars.next() {
                    if c == '\\' {
                        chars.next();
                        run = 0;
                    } else if c == ch {
                        run += 1;
                        if !triple || run == 3 {
                            break;
                        }
                    } else {
                        run = 0;
                        if c == '\n' && !triple {
                            break;
                        }
                    }
                }
            }
            '(' | '[' | '{' => stack.push(Open {
                ch,
                at: i,
                commas: 0,
                arg_start: i + 1,
            }),
            ')' | ']' | '}' => {
                stack.pop();
            }
            ',' => {
                if let Some(top) = stack.last_mut() {
                    top.commas += 1;
                    top.arg_start = i + 1;
                }
            }
            _ => {}
        }
    }
    let open = stack.last().filter(|o| o.ch == '(')?;
    let callee = dotted_before(src, open.at)?;
    let start = src[..open.at].trim_end().len() - callee.len();
    let current = &src[open.arg_start..];
    let arg = match keyword_of(current) {
        Some(k) => Arg::Named(k.to_owned()),
        None => Arg::Positional(open.commas),
    };
    Some(CallSite { callee, arg, start })
}

/// `name` when an argument's text so far is `name=` (not `==`), possibly with its value begun.
fn keyword_of(arg: &str) -> Option<&str> {
    let t = arg.trim_start();
    let end = t
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    let rest = rest.trim_start();
    (!name.is_empty() && rest.starts_with('=') && !rest.starts_with("=="))
        .then_some(name)
        .filter(|n| !n.starts_with(|c: char| c.is_ascii_digit()))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The dotted name (`a.b.c`) ending right before byte `end` (whitespace before `end` skipped).
fn dotted_before(src: &str, end: usize) -> Option<String> {
    let s = src[..end].trim_end();
    let start = s
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c) || *c == '.')
        .last()
        .map(|(i, _)| i)?;
    let name = &s[start..];
    let ok = !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && !p.starts_with(|c: char| c.is_ascii_digit()));
    ok.then(|| name.to_owned())
}

/// What is being typed at the cursor after a dot: (`os.path`, `jo`) for `os.path.jo|`.
pub fn member_prefix(text: &str, cursor: usize) -> Option<(String, String)> {
    let src = &text[..cursor.min(text.len())];
    let start = src
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c) || *c == '.')
        .last()
        .map_or(src.len(), |(i, _)| i);
    let word = &src[start..];
    let (ns, partial) = word.rsplit_once('.')?;
    if ns.is_empty() || ns.split('.').any(str::is_empty) {
        return None;
    }
    Some((ns.to_owned(), partial.to_owned()))
}

/// The dotted name under the cursor, up to the end of the segment the cursor is in, with its
/// byte range: `os.path.jo|in(` → `os.path.join`.
pub fn dotted_at(text: &str, cursor: usize) -> Option<(String, std::ops::Range<usize>)> {
    let cursor = cursor.min(text.len());
    let start = text[..cursor]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c) || *c == '.')
        .last()
        .map_or(cursor, |(i, _)| i);
    let end = text[cursor..]
        .char_indices()
        .find(|(_, c)| !is_ident(*c))
        .map_or(text.len(), |(i, _)| cursor + i);
    let word = text[start..end].trim_matches('.');
    (!word.is_empty()).then(|| {
        let s = start + text[start..end].find(word).unwrap_or(0);
        (word.to_owned(), s..s + word.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(src: &str) -> Option<(String, Arg)> {
        let cursor = src.find('|').expect("cursor");
        let text = src.replacen('|', "", 1);
        let site = call_at(&text, cursor)?;
        assert!(text[site.start..].starts_with(&site.callee), "{src:?}");
        Some((site.callee, site.arg))
    }

    fn site(callee: &str, arg: Arg) -> Option<(String, Arg)> {
        Some((callee.into(), arg))
    }

    #[test]
    fn the_call_and_argument_under_the_cursor() {
        use Arg::*;
        let cases = [
            ("docker_build(|", site("docker_build", Positional(0))),
            ("docker_build('img', |", site("docker_build", Positional(1))),
            (
                "docker_build('a,b', '.', |",
                site("docker_build", Positional(2)),
            ),
            (
                "docker_build('img', '.', dockerfile=|",
                site("docker_build", Named("dockerfile".into())),
            ),
            (
                "k8s_resource('web', port_forwards=[8000, 9|",
                None, // inside the list, not the call
            ),
            (
                "k8s_resource('web', port_forwards=[8000, 9000], |",
                site("k8s_resource", Positional(2)),
            ),
            (
                "config.define_string(|",
                site("config.define_string", Positional(0)),
            ),
            ("x = f(a == |", site("f", Positional(0))),
            ("f(g(1, 2), |", site("f", Positional(1))),
            ("f(g(1, |", site("g", Positional(1))),
            ("f(1)\n|", None),
            ("# f(|", None),
            ("s = 'f(|", None),
            ("s = \"\"\"\nf(\"\"\"\ng(|", site("g", Positional(0))),
            ("x = (|", None),
            ("local(\"echo (\", |", site("local", Positional(1))),
            ("f(x=1,\n  y = |", site("f", Named("y".into()))),
        ];
        for (src, want) in cases {
            assert_eq!(at(src), want, "{src:?}");
        }
    }

    #[test]
    fn positions_count_utf16_units() {
        let text = "a = 'é😀'\nb(";
        assert_eq!(offset_of(text, 0, 0), 0);
        // 'é' is one unit, '😀' two.
        assert_eq!(offset_of(text, 0, 8), "a = 'é😀".len());
        assert_eq!(offset_of(text, 0, 6), "a = 'é".len());
        assert_eq!(offset_of(text, 1, 2), text.len());
        assert_eq!(offset_of(text, 1, 99), text.len());
        assert_eq!(offset_of(text, 9, 0), text.len());
        assert_eq!(position_of(text, text.len()), (1, 2));
        assert_eq!(position_of(text, "a = 'é😀".len()), (0, 8));
    }

    #[test]
    fn member_prefix_and_dotted_word() {
        let cases = [
            ("os.|", Some(("os", ""))),
            ("x = os.path.jo|", Some(("os.path", "jo"))),
            ("config.define_s|", Some(("config", "define_s"))),
            ("k8s_res|", None),
            ("x = .|", None),
        ];
        for (src, want) in cases {
            let cursor = src.find('|').unwrap();
            let text = src.replacen('|', "", 1);
            let got = member_prefix(&text, cursor);
            let want = want.map(|(a, b)| (a.to_owned(), b.to_owned()));
            assert_eq!(got, want, "{src:?}");
        }
        let text = "x = os.path.join('a')";
        let (w, r) = dotted_at(text, text.find("join").unwrap() + 1).unwrap();
        assert_eq!((w.as_str(), &text[r]), ("os.path.join", "os.path.join"));
        let (w, _) = dotted_at(text, text.find("os").unwrap()).unwrap();
        assert_eq!(w, "os");
        let (w, _) = dotted_at(text, text.find("path").unwrap() + 4).unwrap();
        assert_eq!(w, "os.path");
        assert_eq!(dotted_at("a + b", 2), None);
    }
}
