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

/// The tag of a reference, `""` when it has none.
fn tag(r: &str) -> &str {
    let r = r.split('@').next().unwrap_or(r);
    let last_slash = r.rfind('/').map_or(0, |i| i + 1);
    r[last_slash..]
        .rfind(':')
        .map_or("", |i| &r[last_slash + i + 1..])
}

/// Whether `reference` names the image a selector selects: by repository, unless the selector
/// has a tag or is exact-match (then the tags must be equal too, none being equal to none).
pub fn selects(selector: &str, match_exact: bool, reference: &str) -> bool {
    let by_tag = match_exact || !tag(selector).is_empty();
    repository(selector) == repository(reference) && (!by_tag || tag(selector) == tag(reference))
}

/// An image this Stilt built, which other images' Dockerfiles may name.
#[derive(Debug, Clone)]
pub struct BuiltBase {
    /// The ImageMap's selector and whether it matches exactly.
    pub selector: String,
    pub match_exact: bool,
    /// The ref just built.
    pub built: String,
}

fn built_for<'a>(reference: &str, built: &'a [BuiltBase]) -> Option<&'a str> {
    built
        .iter()
        .find(|b| selects(&b.selector, b.match_exact, reference))
        .map(|b| b.built.as_str())
}

/// Rewrites FROM and `COPY --from=` references to built images. A FROM naming its image through
/// ARGs (`FROM ${REPO}/${BASE}`) is matched after expanding them with the Dockerfile's ARG
/// defaults and `build_args` (`KEY=value`), as Tilt does.
pub fn inject_dockerfile(dockerfile: &str, built: &[BuiltBase], build_args: &[String]) -> String {
    let overrides: Vec<(&str, &str)> = build_args
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let mut args: Vec<(String, String)> = Vec::new();
    let mut out = String::with_capacity(dockerfile.len());
    for line in dockerfile.split_inclusive('\n') {
        if let Some((k, v)) = arg_definition(line, &overrides) {
            args.retain(|(a, _)| *a != k);
            args.push((k, v));
        }
        out.push_str(&inject_line(line, built, &args).unwrap_or_else(|| line.to_string()));
    }
    out
}

/// `ARG NAME[=default]`, with a build arg's value taking precedence over the default.
fn arg_definition(line: &str, overrides: &[(&str, &str)]) -> Option<(String, String)> {
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("ARG") {
        return None;
    }
    let def = words.next()?;
    let (k, default) = def.split_once('=').unwrap_or((def, ""));
    let v = overrides.iter().find(|(bk, _)| *bk == k).map_or_else(
        || default.trim_matches('"').to_string(),
        |(_, bv)| bv.to_string(),
    );
    Some((k.to_string(), v))
}

/// `$NAME` and `${NAME}` replaced by the ARG values known so far (longest names first, so
/// `$REPO` does not eat the start of `$REPOSITORY`).
fn expand_args(word: &str, args: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = args.iter().collect();
    sorted.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut w = word.to_string();
    for (k, v) in sorted {
        w = w
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    w
}

fn inject_line(line: &str, built: &[BuiltBase], args: &[(String, String)]) -> Option<String> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let instruction = words.first()?.to_ascii_uppercase();
    let mut changed = false;
    match instruction.as_str() {
        "FROM" => {
            let i = words.iter().skip(1).position(|w| !w.starts_with("--"))? + 1;
            if let Some(r) = built_for(&expand_args(&words[i], args), built) {
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
pub fn inject_args(args: &[String], built: &[BuiltBase]) -> Vec<String> {
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

    fn base(selector: &str, match_exact: bool, built: &str) -> BuiltBase {
        BuiltBase {
            selector: selector.into(),
            match_exact,
            built: built.into(),
        }
    }

    fn built() -> Vec<BuiltBase> {
        vec![base(
            "company/base",
            false,
            "company/base:tilt-0123456789abcdef",
        )]
    }

    #[test]
    fn from_lines_and_copy_from_are_rewritten() {
        let df = "ARG X=1\nFROM company/base AS b\nfrom --platform=linux/amd64 company/base:latest\nFROM busybox\nCOPY --from=company/base /a /a\nCOPY --from=b /x /x\nRUN echo company/base\n";
        let out = inject_dockerfile(df, &built(), &[]);
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
        assert!(selects("company/base", false, "docker.io/company/base:1"));
        assert!(selects(
            "localhost:5000/base",
            false,
            "localhost:5000/base:dev"
        ));
        assert!(!selects(
            "localhost:5000/base",
            false,
            "localhost:5000/based"
        ));
        assert!(selects("base:dev", false, "base:dev"));
        assert!(!selects("base:dev", false, "base:prod"));
        assert!(selects("localhost:5000/base", true, "localhost:5000/base"));
        assert!(!selects(
            "localhost:5000/base",
            true,
            "localhost:5000/base:dev"
        ));
        assert!(!selects("base", true, "base:latest"));
    }

    /// FROM through ARGs: defaults, overridden by build args.
    #[test]
    fn from_lines_naming_the_base_through_args_are_rewritten() {
        let built = vec![
            base("repo/content", false, "repo/content:tilt-1"),
            base("repo/base", false, "repo/base:tilt-2"),
        ];
        let df = "ARG REPO\nARG CONTENT=content\nFROM ${REPO}/${CONTENT} as c\nARG REPO\nARG BASE\nFROM $REPO/$BASE\nCOPY --from=c /a /a\n";
        let args = vec!["REPO=repo".to_string(), "BASE=base".to_string()];
        assert_eq!(
            inject_dockerfile(df, &built, &args),
            "ARG REPO\nARG CONTENT=content\nFROM repo/content:tilt-1 as c\nARG REPO\nARG BASE\nFROM repo/base:tilt-2\nCOPY --from=c /a /a\n"
        );
        // Without the build arg, nothing names a built image.
        assert_eq!(
            inject_dockerfile("ARG B\nFROM x/$B\n", &built, &[]),
            "ARG B\nFROM x/$B\n"
        );
    }

    /// `common` and `common:stretch` are both built: each consumer gets the one it names.
    #[test]
    fn same_repository_with_two_tags_goes_to_the_one_named() {
        let built = vec![
            base("repo/common", true, "repo/common:tilt-1111"),
            base("repo/common:stretch", true, "repo/common:tilt-2222"),
        ];
        assert_eq!(
            inject_dockerfile("COPY --from=repo/common:stretch /a /a\n", &built, &[]),
            "COPY --from=repo/common:tilt-2222 /a /a\n"
        );
        assert_eq!(
            inject_dockerfile("COPY --from=repo/common /a /a\n", &built, &[]),
            "COPY --from=repo/common:tilt-1111 /a /a\n"
        );
    }
}
