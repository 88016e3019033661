//! JSON values for serializers other than serde_json's own.

use serde_json::Value as Json;

/// A serializable view (for YAML and other non-JSON formats) of a JSON value. serde_json's `arbitrary_precision` feature (enabled
/// by other crates in the build) makes `Number` serialize as a magic map, so numbers are unpacked
/// here.
pub struct PlainNumbers<'a>(pub &'a Json);

impl serde::Serialize for PlainNumbers<'_> {
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
                    seq.serialize_element(&PlainNumbers(x))?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &PlainNumbers(v))?;
                }
                map.end()
            }
        }
    }
}
