//! The everyday shape of Kubernetes YAML, built straight from the parser's events: maps, lists,
//! strings, decimal integers and nulls, without anchors, tags or duplicate keys. serde-saphyr
//! reads the same events through serde's machinery, which was half of a manifest's parse time.
//!
//! It never decides a type serde-saphyr might decide otherwise: a plain scalar is typed here
//! only when it cannot be read two ways (a word that is not one of YAML's keywords, a decimal
//! integer without a leading zero, an exact null spelling). Anything else, and any parse
//! error, gives `None`, and the caller parses the text with serde-saphyr, which decides (and
//! words the error).

use granit_parser::Event;
use granit_parser::Parser;
use granit_parser::ScalarStyle;
use serde_json::Map;
use serde_json::Value as Json;

/// The documents of `text`, empty (null) ones dropped as [`crate::yaml::parse_stream`] drops
/// them, or `None` when serde-saphyr must decide.
pub fn parse_stream(text: &str) -> Option<Vec<Json>> {
    let mut options = granit_parser::Options::default();
    options.emit_comments = false;
    let mut events =
        Parser::new_from_str_with_options(text, options).map(|r| r.ok().map(|(e, _)| e));
    let mut docs = vec![];
    loop {
        match events.next()?? {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(_, None) => match node(&mut events, None)? {
                Json::Null => {}
                doc => docs.push(doc),
            },
            Event::StreamEnd => return Some(docs),
            _ => return None,
        }
    }
}

/// One node, from its first event (`first`, or the next one).
fn node<'a>(
    events: &mut impl Iterator<Item = Option<Event<'a>>>,
    first: Option<Event<'a>>,
) -> Option<Json> {
    let event = match first {
        Some(e) => e,
        None => events.next()??,
    };
    match event {
        Event::Scalar(text, style, 0, None) => scalar(&text, style),
        Event::SequenceStart(_, 0, None) => {
            let mut items = vec![];
            loop {
                match events.next()?? {
                    Event::SequenceEnd => return Some(Json::Array(items)),
                    e => items.push(node(events, Some(e))?),
                }
            }
        }
        Event::MappingStart(_, 0, None) => {
            let mut map = Map::new();
            loop {
                let key = match events.next()?? {
                    Event::MappingEnd => return Some(Json::Object(map)),
                    Event::Scalar(text, style, 0, None) => key(text.into_owned(), style)?,
                    _ => return None,
                };
                let value = node(events, None)?;
                // serde-saphyr's duplicate-key policy (an error by default) decides.
                if map.insert(key, value).is_some() {
                    return None;
                }
            }
        }
        _ => None,
    }
}

fn scalar(text: &str, style: ScalarStyle) -> Option<Json> {
    if style != ScalarStyle::Plain {
        return Some(Json::String(text.to_owned()));
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Some(Json::Null);
    }
    if is_word(text) {
        return Some(Json::String(text.to_owned()));
    }
    decimal(text)
}

/// A map key: a quoted one, or a plain word.
fn key(text: String, style: ScalarStyle) -> Option<String> {
    (style != ScalarStyle::Plain || is_word(&text)).then_some(text)
}

/// Words YAML (1.1 or 1.2) or serde-saphyr may read as something other than a string.
const KEYWORDS: &[&str] = &[
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf", "infinity",
];

/// A plain scalar that can only be a string: a word that is no keyword, a path, or a flag
/// (`-v`, `--port=80`; `-inf` is left to serde-saphyr).
fn is_word(text: &str) -> bool {
    let bare = text.strip_prefix('-').unwrap_or(text);
    (bare.starts_with(|c: char| c.is_ascii_alphabetic())
        && !KEYWORDS.iter().any(|k| bare.eq_ignore_ascii_case(k)))
        || text.starts_with('/')
        || text.starts_with("--")
}

/// `0`, `42`, `-7`: decimal integers that fit in 18 digits, without a leading zero (which
/// legacy octal reads otherwise), sign `+` or separators.
fn decimal(text: &str) -> Option<Json> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let well_formed = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !well_formed || (negative && digits == "0") {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if negative {
        Json::from(-n)
    } else {
        Json::from(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde-saphyr makes of `text`, as `yaml::parse_stream` asks it.
    fn saphyr(text: &str) -> Result<Vec<Json>, String> {
        crate::yaml::parse_stream_with_saphyr(text).map_err(|e| e.to_string())
    }

    /// Texts the fast path must take, each giving exactly serde-saphyr's documents.
    const TAKEN: &[&str] = &[
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: svc1, labels: {app: svc1}}\nspec:\n  selector: {matchLabels: {app: svc1}}\n  template:\n    metadata: {labels: {app: svc1}}\n    spec: {containers: [{name: main, image: acc/svc1, ports: [{containerPort: 8000}]}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc1}\nspec: {selector: {app: svc1}, ports: [{port: 80, targetPort: 8000}]}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  annotations:\n    \"x.io/y\": 'single'\ndata:\n  script: |\n    echo hi\n    exit 0\n  folded: >\n    one\n    two\n  empty:\n  tilde: ~\n  neg: -12\n  z: 0\n",
        "# only a comment\n",
        "",
        "---\n---\nkind: A\n...\n---\nkind: B\n",
        "- a\n- [b, c]\n- {d: e}\n- 'quoted: yes'\n- \"8000\"\n",
        "args: [--port, \"8080\", -v]\nenv:\n- name: HOME\n  value: /root\n",
        "key with spaces: value with spaces\nurl: http://example.com:80/x?y=z\n",
    ];

    /// Texts it must leave to serde-saphyr, whatever they mean.
    const LEFT: &[&str] = &[
        "enabled: yes\n",
        "flag: True\n",
        "x: On\n",
        "mode: 0644\n",
        "big: 1234567890123456789012\n",
        "ratio: 1.5\n",
        "hex: 0x1F\n",
        "plus: +3\n",
        "sep: 1_000\n",
        "when: 2001-12-14\n",
        "f: .inf\n",
        "v: NaN\n",
        "a: &x {b: 1}\nc: *x\n",
        "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
        "t: !!str 123\n",
        "s: !custom x\n",
        "a: 1\na: 2\n",
        "8000: port\n",
        "? [complex]\n: key\n",
        "nested: {unclosed: [1, 2}\n",
        "bad: : indent\n  - x\n",
        "%YAML 1.2\n---\na: b\n",
        "neg: -0\n",
        "x: -inf\n",
        "x: -Infinity\n",
        "x: -.inf\n",
    ];

    #[test]
    fn everyday_manifests_are_built_exactly_as_serde_saphyr_builds_them() {
        for text in TAKEN {
            let fast =
                parse_stream(text).unwrap_or_else(|| panic!("left to serde-saphyr: {text:?}"));
            assert_eq!(Ok(fast), saphyr(text), "{text:?}");
        }
    }

    #[test]
    fn anything_that_could_be_read_two_ways_is_left_to_serde_saphyr() {
        for text in LEFT {
            assert_eq!(parse_stream(text), None, "{text:?}");
        }
    }

    /// Every YAML file the tests carry: where the fast path answers, it answers as serde-saphyr.
    #[test]
    fn on_every_fixture_the_fast_path_agrees_with_serde_saphyr_or_stays_out() {
        let files = crate::yaml::repo_yaml_files();
        assert!(files.len() > 20, "found only {} YAML files", files.len());
        let mut taken = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            if let Some(fast) = parse_stream(&text) {
                taken += 1;
                assert_eq!(Ok(fast), saphyr(&text), "{}", f.display());
            }
        }
        assert!(
            taken * 2 > files.len(),
            "the fast path took {taken} of {}",
            files.len()
        );
    }
}
