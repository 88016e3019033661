//! YAML in and out (serde-saphyr ⇄ serde_json::Value), with Go-YAML-1.1-like number parsing.

use anyhow::Context as _;
use serde_json::Value as Json;

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.legacy_octal_numbers = true;
    o
}

/// Parse a multi-document YAML stream; empty/comment-only documents are dropped.
pub fn parse_stream(text: &str) -> anyhow::Result<Vec<Json>> {
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

/// A YAML-serializable view of a JSON value. serde_json's `arbitrary_precision` feature (enabled
/// by other crates in the build) makes `Number` serialize as a magic map, so numbers are unpacked
/// here.
struct Y<'a>(&'a Json);

impl serde::Serialize for Y<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        use serde::ser::SerializeSeq;
        match self.0 {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    s.serialize_i64(i)
                } else if let Some(u) = n.as_u64() {
                    s.serialize_u64(u)
                } else {
                    s.serialize_f64(n.as_f64().unwrap_or(0.0))
                }
            }
            Json::String(v) => s.serialize_str(v),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for x in a {
                    seq.serialize_element(&Y(x))?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Y(v))?;
                }
                map.end()
            }
        }
    }
}

/// Encode one JSON value as a YAML document.
pub fn encode(v: &Json) -> anyhow::Result<String> {
    serde_saphyr::to_string(&Y(v)).context("encoding YAML")
}

pub fn encode_stream(vs: &[Json]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&encode(v)?);
    }
    Ok(out)
}
