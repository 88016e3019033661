//! Images built from other images this Stilt builds (`FROM company/base`): before the dependent
//! is built, references to the base in its Dockerfile (FROM, COPY --from) and in build args are
//! replaced by the ref just built (`company/base:tilt-…`), as Tilt does. Docker would otherwise
//! look for `company/base:latest`, which Stilt never tags.

/// The repository part of a reference: no tag or digest, no `docker.io/` or `library/` prefix.
fn repository(r: &str) -> &str {
    let r = r.split('@').next().unwrap_or(r);
    let last_slash = r.rfind('/').map_or(0, |i| i + 1);
    let r = match r[last_slash..].rfind(':') {
        Some(i) => &r[..last_slash + i],
        None => r,
    };
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    r.strip_prefix("library/").unwrap_or(r)
}

/// Whether `reference` names the image a selector selects: by repository unless the selector
/// has a tag (then exactly).
pub fn selects(selector: &str, reference: &str) -> bool {
    let tagged = selector
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    if tagged {
        repository(selector) == repository(reference)
            && selector.rsplit(':').next() == reference.rsplit(':').next()
    } else {
        repository(selector) == repository(reference)
    }
}

fn built_for<'a>(reference: &str, built: &'a [(String, String)]) -> Option<&'a str> {
    built
        .iter()
        .find(|(sel, _)| selects(sel, reference))
        .map(|(_, r)| r.as_str())
}

/// Rewrites FROM and `COPY --from=` references to built images. `built` is (selector, built ref).
pub fn inject_dockerfile(dockerfile: &str, built: &[(String, String)]) -> String {
    let mut out = String::with_capacity(dockerfile.len());
    for line in dockerfile.split_inclusive('\n') {
        out.push_str(&inject_line(line, built).unwrap_or_else(|| line.to_string()));
    }
    out
}

fn inject_line(line: &str, built: &[(String, String)]) -> Option<String> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let instruction = words.first()?.to_ascii_uppercase();
    let mut changed = false;
    match instruction.as_str() {
        "FROM" => {
            let i = words.iter().skip(1).position(|w| !w.starts_with("--"))? + 1;
            if let Some(r) = built_for(&words[i], built) {
                words[i] = r.to_string();
                changed = true;
            }
        }
        "COPY" => {
            for w in words.iter_mut().skip(1) {
                if let Some(v) = w.strip_prefix("--from=")
                    && let Some(r) = built_for(v, built)
                {
                    *w = format!("--from={r}");
                    changed = true;
                }
            }
        }
        _ => {}
    }
    if !changed {
        return None;
    }
    let end = if line.ends_with('\n') { "\n" } else { "" };
    Some(format!("{indent}{}{end}", words.join(" ")))
}

/// Rewrites `KEY=value` build args whose value names a built image.
pub fn inject_args(args: &[String], built: &[(String, String)]) -> Vec<String> {
    args.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => match built_for(v, built) {
                Some(r) => format!("{k}={r}"),
                None => kv.clone(),
            },
            None => kv.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Vec<(String, String)> {
        vec![(
            "company/base".to_string(),
            "company/base:tilt-0123456789abcdef".to_string(),
        )]
    }

    #[test]
    fn from_lines_and_copy_from_are_rewritten() {
        let df = "ARG X=1\nFROM company/base AS b\nfrom --platform=linux/amd64 company/base:latest\nFROM busybox\nCOPY --from=company/base /a /a\nCOPY --from=b /x /x\nRUN echo company/base\n";
        let out = inject_dockerfile(df, &built());
        assert_eq!(
            out,
            "ARG X=1\nFROM company/base:tilt-0123456789abcdef AS b\nfrom --platform=linux/amd64 company/base:tilt-0123456789abcdef\nFROM busybox\nCOPY --from=company/base:tilt-0123456789abcdef /a /a\nCOPY --from=b /x /x\nRUN echo company/base\n"
        );
    }

    #[test]
    fn build_args_naming_the_base_are_rewritten() {
        let args = vec![
            "BASE=company/base".into(),
            "OTHER=company/based".into(),
            "FLAG".into(),
        ];
        assert_eq!(
            inject_args(&args, &built()),
            vec![
                "BASE=company/base:tilt-0123456789abcdef",
                "OTHER=company/based",
                "FLAG"
            ]
        );
    }

    #[test]
    fn matching_is_by_repository_unless_the_selector_has_a_tag() {
        assert!(selects("company/base", "docker.io/company/base:1"));
        assert!(selects("localhost:5000/base", "localhost:5000/base:dev"));
        assert!(!selects("localhost:5000/base", "localhost:5000/based"));
        assert!(selects("base:dev", "base:dev"));
        assert!(!selects("base:dev", "base:prod"));
    }
}
