//! `version_settings(constraint=…)`: the Tilt version Stilt answers to, and Tilt's constraint
//! syntax (blang/semver ranges: `>=0.30.0 <0.40.0`, `||`, `!=`, `0.37.x` wildcards).

/// The Tilt release whose Tiltfile API Stilt implements (see DIALECT.md). Constraints in
/// `version_settings` are checked against this.
pub const TILT_COMPATIBLE_VERSION: &str = "0.37.6";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    core: [u64; 3],
    pre: Vec<String>,
}

impl Version {
    fn parse(s: &str) -> Result<Version, String> {
        let s = s.split('+').next().unwrap_or(s);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_owned).collect()),
            None => (s, vec![]),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err("No Major.Minor.Patch elements found".into());
        }
        let mut n = [0u64; 3];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return Err(format!("Invalid number {p:?}"));
            }
            n[i] = p
                .parse()
                .map_err(|_| format!("Invalid character(s) found in {p:?}"))?;
        }
        Ok(Version { core: n, pre })
    }

    fn cmp(&self, o: &Version) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match self.core.cmp(&o.core) {
            Equal => {}
            x => return x,
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => return Equal,
            (true, false) => return Greater,
            (false, true) => return Less,
            _ => {}
        }
        for (a, b) in self.pre.iter().zip(&o.pre) {
            let c = match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Less,
                (Err(_), Ok(_)) => Greater,
                _ => a.cmp(b),
            };
            if c != Equal {
                return c;
            }
        }
        self.pre.len().cmp(&o.pre.len())
    }
}

/// blang/semver's `splitAndTrim`: split on spaces, except after an operator character.
fn split_and_trim(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = vec![];
    let (mut last, mut last_char) = (0usize, 0u8);
    for i in 0..b.len() {
        if b[i] == b' ' && !matches!(last_char, b'>' | b'<' | b'=') {
            if last + 1 < i {
                out.push(s[last..i].to_owned());
            }
            last = i + 1;
        } else if b[i] != b' ' {
            last_char = b[i];
        }
    }
    if last + 1 < s.len() {
        out.push(s[last..].to_owned());
    }
    out.into_iter().map(|p| p.replace(' ', "")).collect()
}

fn split_op(p: &str) -> Result<(&str, &str), String> {
    let i = p
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("Could not get version from string: {p:?}"))?;
    Ok((p[..i].trim(), &p[i..]))
}

/// `1.2.x` → (`1.2.0`, bump minor) ; `1.x` → (`1.0.0`, bump major).
fn expand_wildcard(part: &str) -> Result<Vec<String>, String> {
    if !part.contains('x') {
        return Ok(vec![part.to_owned()]);
    }
    let (op, v) = split_op(part)?;
    let nparts = v.split('.').count();
    let is_wild = v.rsplit('.').next() == Some("x");
    let flat = {
        let f = v.replacen(".x.x", ".x", 1).replacen(".x", ".0", 1);
        if f.split('.').count() == 2 {
            format!("{f}.0")
        } else {
            f
        }
    };
    let bump = |f: &str| -> String {
        let mut p: Vec<u64> = f.split('.').map(|x| x.parse().unwrap_or(0)).collect();
        match (is_wild, nparts) {
            (true, 3) => p[1] += 1,
            (true, 2) => p[0] += 1,
            _ => {}
        }
        p.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
    };
    Ok(match op {
        ">" => vec![format!(">={}", bump(&flat))],
        ">=" => vec![format!(">={flat}")],
        "<" => vec![format!("<{flat}")],
        "<=" => vec![format!("<{}", bump(&flat))],
        "" | "=" | "==" => vec![format!(">={flat}"), format!("<{}", bump(&flat))],
        "!=" | "!" => vec![format!("<{flat}"), format!(">={}", bump(&flat))],
        _ => vec![part.to_owned()],
    })
}

/// Whether `version` satisfies a blang/semver range; `Err` with blang's message when the
/// range does not parse.
fn satisfies(version: &str, range: &str) -> Result<bool, String> {
    let v = Version::parse(version)?;
    let parts = split_and_trim(range);
    if parts.first().map(String::as_str) == Some("||") {
        return Err("First element in range is '||'".into());
    }
    if parts.last().map(String::as_str) == Some("||") || parts.is_empty() {
        return Err("Last element in range is '||'".into());
    }
    let mut any = false;
    for group in parts.split(|p| p == "||") {
        let mut all = true;
        for p in group {
            for ap in expand_wildcard(p)? {
                let (op, vs) = split_op(&ap)?;
                let want = Version::parse(vs).map_err(|e| {
                    format!("Could not parse Range {ap:?}: Could not parse version {vs:?} in {ap:?}: {e}")
                })?;
                let c = v.cmp(&want);
                use std::cmp::Ordering::*;
                let ok = match op {
                    "" | "=" | "==" => c == Equal,
                    ">" => c == Greater,
                    ">=" => c != Less,
                    "<" => c == Less,
                    "<=" => c != Greater,
                    "!" | "!=" => c != Equal,
                    _ => {
                        return Err(format!(
                            "Could not parse Range {ap:?}: Could not parse comparator {op:?} in {ap:?}"
                        ));
                    }
                };
                all &= ok;
            }
        }
        any |= all;
    }
    Ok(any)
}

/// Tilt's `version_settings(constraint=…)` check, with Tilt's messages.
pub fn check_constraint(constraint: &str) -> Result<(), String> {
    if constraint.is_empty() {
        return Ok(());
    }
    match satisfies(TILT_COMPATIBLE_VERSION, constraint) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "you are running Tilt version {TILT_COMPATIBLE_VERSION}, which doesn't match the version constraint specified in your Tiltfile: '{constraint}'"
        )),
        Err(e) => Err(format!("error parsing version constraint: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_blang_semver() {
        let cases = [
            (">=0.17.1", true),
            (">= 0.17.1", true),
            (">0.37.6", false),
            ("<0.40.0", true),
            (">=0.30.0 <0.37.0", false),
            (">=0.30.0 <0.38.0", true),
            ("<0.20.0 || >=0.37.0", true),
            ("0.37.x", true),
            ("0.36.x", false),
            ("0.x", true),
            ("1.x", false),
            ("!=0.37.6", false),
            ("=0.37.6", true),
            ("0.37.6", true),
            (">0.37.x", false),
            ("<=0.36.x", false),
            (">=0.38.0-alpha", false),
            (">=0.37.6-alpha", true),
        ];
        for (r, want) in cases {
            assert_eq!(satisfies("0.37.6", r), Ok(want), "{r}");
        }
        for bad in ["", "||", ">=0.1.0 ||", "abc", ">=1.2", "~1.2.3"] {
            assert!(satisfies("0.37.6", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_like_tilts() {
        assert_eq!(check_constraint(""), Ok(()));
        assert_eq!(
            check_constraint(">=1.0.0").unwrap_err(),
            "you are running Tilt version 0.37.6, which doesn't match the version constraint specified in your Tiltfile: '>=1.0.0'"
        );
        assert!(
            check_constraint("nope")
                .unwrap_err()
                .starts_with("error parsing version constraint: ")
        );
    }
}
