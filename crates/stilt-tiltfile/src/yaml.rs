//! YAML in and out (serde-saphyr ⇄ serde_json::Value), with Go-YAML-1.1-like number parsing.

use anyhow::Context as _;
use serde_json::Value as Json;

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.legacy_octal_numbers = true;
    // The size budget guards a service against hostile input; a Tiltfile's YAML is its user's
    // own, and the budget's accounting was an eighth of every parse. Alias expansion keeps its
    // own limits (`alias_limits`).
    o.budget = None;
    o
}

/// Parse a multi-document YAML stream; empty/comment-only documents are dropped.
pub fn parse_stream(text: &str) -> anyhow::Result<Vec<Json>> {
    match crate::yaml_simple::parse_stream(text) {
        Some(docs) => Ok(docs),
        None => parse_stream_with_saphyr(text),
    }
}

/// [`parse_stream`] without the fast path: serde-saphyr decides every scalar.
pub(crate) fn parse_stream_with_saphyr(text: &str) -> anyhow::Result<Vec<Json>> {
    let docs: Vec<Json> = serde_saphyr::from_multiple_with_options(text, options())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Parse a single YAML document (an empty input is null).
pub fn parse_one(text: &str) -> anyhow::Result<Json> {
    if text.trim().is_empty() {
        return Ok(Json::Null);
    }
    let mut docs = parse_stream(text)?;
    match docs.len() {
        0 => Ok(Json::Null),
        1 => Ok(docs.remove(0)),
        n => anyhow::bail!("expected a single YAML document, found {n}"),
    }
}

/// Encode one JSON value as a YAML document.
pub fn encode(v: &Json) -> anyhow::Result<String> {
    match crate::yaml_write::encode(v) {
        Some(text) => Ok(text),
        None => encode_with_saphyr(v),
    }
}

/// [`encode`] without the fast path.
pub(crate) fn encode_with_saphyr(v: &Json) -> anyhow::Result<String> {
    serde_saphyr::to_string(&stilt_api::plain_numbers::PlainNumbers(v)).context("encoding YAML")
}

pub fn encode_stream<'a>(vs: impl IntoIterator<Item = &'a Json>) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, v) in vs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&encode(v)?);
    }
    Ok(out)
}

/// Every YAML file under the repository's `crates/` and `examples/`: the corpus the fast paths
/// ([`crate::yaml_simple`], [`crate::yaml_write`]) are checked against serde-saphyr on.
#[cfg(test)]
pub(crate) fn repo_yaml_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![];
    let mut dirs = vec![root.join("crates"), root.join("examples")];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
    }
    files
}
