//! Ports of the small pieces of Go's standard library whose exact behaviour
//! `.dockerignore` matching depends on: `path.Clean`, `strings.TrimSpace`,
//! the syntax check of `filepath.Match`, and a translator from the Go RE2
//! dialect that moby's pattern compiler emits to the `regex` crate's dialect.

/// Go's `path.Clean` (slash-separated; what `filepath.Clean` does on Unix).
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `strings.TrimSpace`: trims Unicode white space (Go's `unicode.IsSpace`).
pub(crate) fn trim_space(s: &str) -> &str {
    s.trim_matches(go_is_space)
}

fn go_is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    ) || (c > '\u{FF}' && c.is_whitespace())
}

/// `filepath.ErrBadPattern` from Go's `filepath.Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Go's `filepath.Match(pattern, name)` on Unix, including its syntax errors.
/// moby calls it with `name = "."` only to validate the pattern; we keep the
/// full function so the validation reproduces Go's (lazy) error detection.
pub(crate) fn go_match(mut pattern: &str, mut name: &str) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains('/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if err {
            return Err(BadPattern);
        }
        if star {
            let bytes = name.as_bytes();
            let mut i = 0;
            while i < bytes.len() && bytes[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if err {
                    return Err(BadPattern);
                }
                i += 1;
            }
        }
        // Before returning false with no error, check that the remainder of
        // the pattern is syntactically valid.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if match_chunk(chunk, "").2 {
                return Err(BadPattern);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &str) -> (bool, &str, &str) {
    let mut star = false;
    while let Some(rest) = pattern.strip_prefix('*') {
        pattern = rest;
        star = true;
    }
    let bytes = pattern.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Returns (rest, ok, err).
fn match_chunk<'a>(mut chunk: &str, mut s: &'a str) -> (&'a str, bool, bool) {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        let c0 = chunk.as_bytes()[0];
        match c0 {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let ch = s.chars().next().unwrap_or('\u{FFFD}');
                    r = ch;
                    s = &s[ch.len_utf8().min(s.len())..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.starts_with('^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.starts_with(']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = match get_esc(chunk) {
                        Ok(v) => v,
                        Err(_) => return ("", false, true),
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.starts_with('-') {
                        let (h, rest) = match get_esc(&chunk[1..]) {
                            Ok(v) => v,
                            Err(_) => return ("", false, true),
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s.starts_with('/') {
                        failed = true;
                    }
                    let n = s.chars().next().map_or(1, char::len_utf8);
                    s = &s[n.min(s.len())..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c0 == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return ("", false, true);
                    }
                }
                if !failed {
                    if chunk.as_bytes()[0] != s.as_bytes()[0] {
                        failed = true;
                    }
                    s = byte_tail(s, 1);
                }
                chunk = byte_tail(chunk, 1);
            }
        }
    }
    if failed {
        return ("", false, false);
    }
    (s, true, false)
}

/// `&s[n..]`, tolerating a cut inside a UTF-8 sequence the way Go's byte
/// slicing would (we then continue on the next char boundary).
fn byte_tail(s: &str, n: usize) -> &str {
    let mut i = n.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn get_esc(mut chunk: &str) -> Result<(char, &str), BadPattern> {
    if chunk.is_empty() || chunk.starts_with('-') || chunk.starts_with(']') {
        return Err(BadPattern);
    }
    if let Some(rest) = chunk.strip_prefix('\\') {
        chunk = rest;
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let r = chunk.chars().next().ok_or(BadPattern)?;
    let nchunk = &chunk[r.len_utf8()..];
    if nchunk.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, nchunk))
}

/// Translate a regular expression written for Go's RE2 parser (as produced
/// by moby's pattern compiler) into an equivalent one for the `regex` crate.
///
/// The two dialects differ where moby's output can reach: inside a class Go
/// treats `[` as a literal (Rust nests classes) and has no `&&`/`--`/`~~`
/// set operators; outside a class Go treats a `{` that does not start a valid
/// repetition as a literal (Rust rejects it), and `\<`/`\>` are literals in
/// Go but word boundaries in Rust. Unsupported input returns `Err`, which the
/// caller reports as a bad pattern (Go would also have failed to compile).
pub(crate) fn go_regex_to_rust(re: &str) -> Result<String, String> {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i = translate_escape(&chars, i, &mut out, false)?;
                continue;
            }
            '[' => {
                i = translate_class(&chars, i, &mut out)?;
                continue;
            }
            '{' => {
                if let Some(end) = repeat_end(&chars, i) {
                    out.extend(&chars[i..=end]);
                    i = end + 1;
                    continue;
                }
                out.push_str("\\{");
            }
            '}' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '&' | '~' | '-' | ' ' => push_literal(&mut out, c),
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// If `{` at `i` starts a repetition Go's parser accepts (`{n}`, `{n,}`,
/// `{n,m}`), return the index of the closing `}`.
fn repeat_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let start = j;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    if j == start {
        return None;
    }
    if j < chars.len() && chars[j] == ',' {
        j += 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
    }
    (j < chars.len() && chars[j] == '}').then_some(j)
}

fn push_literal(out: &mut String, c: char) {
    out.push_str(&format!("\\x{{{:X}}}", c as u32));
}

/// Translate the escape starting at `chars[i] == '\\'`; returns the next index.
fn translate_escape(
    chars: &[char],
    i: usize,
    out: &mut String,
    in_class: bool,
) -> Result<usize, String> {
    let Some(&c) = chars.get(i + 1) else {
        return Err("trailing backslash".into());
    };
    if !c.is_ascii() {
        return Err(format!("invalid escape \\{c}"));
    }
    if !c.is_ascii_alphanumeric() {
        // Go: escaped punctuation is always itself.
        push_literal(out, c);
        return Ok(i + 2);
    }
    match c {
        'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'a' | 'f' | 't' | 'n' | 'r' | 'v' => {
            out.push('\\');
            out.push(c);
            Ok(i + 2)
        }
        'b' | 'B' | 'A' | 'z' if !in_class => {
            out.push('\\');
            out.push(c);
            Ok(i + 2)
        }
        'x' | 'p' | 'P' => {
            out.push('\\');
            out.push(c);
            let mut j = i + 2;
            if chars.get(j) == Some(&'{') {
                while j < chars.len() && chars[j] != '}' {
                    out.push(chars[j]);
                    j += 1;
                }
                if j == chars.len() {
                    return Err("unclosed escape".into());
                }
                out.push('}');
                Ok(j + 1)
            } else {
                let n = if c == 'x' { 2 } else { 1 };
                for _ in 0..n {
                    let Some(&d) = chars.get(j) else {
                        return Err("short escape".into());
                    };
                    out.push(d);
                    j += 1;
                }
                Ok(j)
            }
        }
        '0'..='7' => {
            // Octal, up to three digits (Go allows \0 and \1.. only after
            // another digit; we accept what RE2 accepts in practice).
            let mut j = i + 1;
            let mut v: u32 = 0;
            while j < chars.len() && j < i + 4 && ('0'..='7').contains(&chars[j]) {
                v = v * 8 + chars[j].to_digit(8).unwrap_or(0);
                j += 1;
            }
            out.push_str(&format!("\\x{{{v:X}}}"));
            Ok(j)
        }
        _ => Err(format!("invalid escape \\{c}")),
    }
}

/// Translate a Go class starting at `chars[i] == '['`; returns the next index.
fn translate_class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let mut j = i + 1;
    out.push('[');
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err("missing closing ]".into());
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(j + 1);
        }
        first = false;
        // POSIX named class [:alpha:] / [:^alpha:].
        if c == '[' && chars.get(j + 1) == Some(&':') {
            let rest: String = chars[j + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                const POSIX: &[&str] = &[
                    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                    "print", "punct", "space", "upper", "word", "xdigit",
                ];
                if !POSIX.contains(&bare) {
                    return Err(format!("invalid character class [:{name}:]"));
                }
                out.push_str(&format!("[:{name}:]"));
                j += 2 + name.chars().count() + 2;
                continue;
            }
        }
        // One character (or Perl class) then an optional range.
        let lo_start = out.len();
        let lo = class_char(chars, &mut j, out)?;
        if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|&n| n != ']') {
            let Some(lo) = lo else {
                return Err("bad range".into());
            };
            j += 1;
            let mut tmp = String::new();
            let hi = class_char(chars, &mut j, &mut tmp)?.ok_or("bad range")?;
            if hi < lo {
                return Err("invalid character class range".into());
            }
            out.truncate(lo_start);
            push_literal(out, lo);
            out.push('-');
            push_literal(out, hi);
        }
    }
}

/// One class element; pushes its Rust form and returns its char value when
/// it is a single character (not a Perl class like `\d`).
fn class_char(chars: &[char], j: &mut usize, out: &mut String) -> Result<Option<char>, String> {
    let c = chars[*j];
    if c != '\\' {
        push_literal(out, c);
        *j += 1;
        return Ok(Some(c));
    }
    let Some(&e) = chars.get(*j + 1) else {
        return Err("trailing backslash".into());
    };
    let simple = match e {
        'a' => Some('\u{7}'),
        'f' => Some('\u{C}'),
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'v' => Some('\u{B}'),
        _ if e.is_ascii() && !e.is_ascii_alphanumeric() => Some(e),
        _ => None,
    };
    if let Some(v) = simple {
        push_literal(out, v);
        *j += 2;
        return Ok(Some(v));
    }
    if e == 'x' {
        let mut tmp = String::new();
        let next = translate_escape(chars, *j, &mut tmp, true)?;
        let hex: String = tmp[2..].trim_matches(|c| c == '{' || c == '}').to_string();
        let v = u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or("bad hex escape")?;
        push_literal(out, v);
        *j = next;
        return Ok(Some(v));
    }
    *j = translate_escape(chars, *j, out, true)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("a//b/./", "a/b"),
            ("/", "/"),
            ("!./foo", "!./foo"),
            ("a/..", "."),
            ("./a", "a"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn match_syntax_errors_match_go() {
        for (pat, bad) in [
            ("[", true),
            ("[]", true),
            ("[a-]", true),
            ("[-a]", true),
            ("a\\", true),
            ("[a]", false),
            ("*.go", false),
            ("[^a]b", false),
            ("x[", true),
            ("**/x", false),
            ("\\*", false),
        ] {
            assert_eq!(go_match(pat, ".").is_err(), bad, "go_match({pat:?})");
        }
    }

    #[test]
    fn translation_compiles() {
        for re in [
            "^[[^/]*]$",
            "^{a,b}$",
            "^a{2}$",
            "^a|b$",
            "^[a&&b]$",
            "^\\<x\\>$",
            "^[[:alpha:]]$",
            "^[\\d]x$",
        ] {
            let t = go_regex_to_rust(re).unwrap();
            regex::Regex::new(&t).unwrap_or_else(|e| panic!("{re} -> {t}: {e}"));
        }
    }
}
