//! Conversions between Starlark values and owned Rust data. Every builtin converts its arguments
//! here, at once, so nothing Starlark-typed outlives the call.

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value as Json;
use starlark::values::Heap;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::dict::AllocDict;
use starlark::values::dict::DictRef;
use starlark::values::list::AllocList;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;

use crate::values::Blob;
use crate::values::TiltObj;

/// Build a Starlark value from JSON (decode_json / read_yaml / attributes).
pub fn json_to_value<'v>(j: &Json, heap: Heap<'v>) -> Value<'v> {
    match j {
        Json::Null => Value::new_none(),
        Json::Bool(b) => Value::new_bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                heap.alloc(i)
            } else if let Some(u) = n.as_u64() {
                heap.alloc(u)
            } else {
                heap.alloc(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => heap.alloc(s.as_str()),
        Json::Array(a) => heap.alloc(AllocList(a.iter().map(|x| json_to_value(x, heap)))),
        Json::Object(m) => heap
            .alloc(AllocDict(m.iter().map(|(k, v)| {
                (heap.alloc(k.as_str()), json_to_value(v, heap))
            }))),
    }
}

/// Convert a Starlark value to JSON (encode_json / encode_yaml / v1alpha1 objects).
pub fn value_to_json(v: Value) -> anyhow::Result<Json> {
    if v.is_none() {
        return Ok(Json::Null);
    }
    if let Some(b) = v.unpack_bool() {
        return Ok(Json::Bool(b));
    }
    if let Some(s) = v.unpack_str() {
        return Ok(Json::String(s.to_owned()));
    }
    if let Some(b) = v.downcast_ref::<Blob>() {
        return Ok(Json::String(b.0.clone()));
    }
    if let Some(o) = v.downcast_ref::<TiltObj>() {
        return Ok(Json::Object(o.fields.clone()));
    }
    if let Some(l) = ListRef::from_value(v) {
        return l
            .iter()
            .map(value_to_json)
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Some(t) = TupleRef::from_value(v) {
        return t
            .iter()
            .map(value_to_json)
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Some(d) = DictRef::from_value(v) {
        let mut m = serde_json::Map::new();
        for (k, val) in d.iter() {
            let key = k.unpack_str().ok_or_else(|| {
                anyhow!(
                    "only string keys are supported in maps, got {}",
                    k.get_type()
                )
            })?;
            m.insert(key.to_owned(), value_to_json(val)?);
        }
        return Ok(Json::Object(m));
    }
    // ints, floats, structs: let starlark do it.
    v.to_json_value().with_context(|| {
        format!(
            "cannot convert a value of type `{}` to JSON/YAML",
            v.get_type()
        )
    })
}

/// Error for a parameter of the wrong type: names the builtin and the parameter.
pub fn bad_arg(func: &str, param: &str, expected: &str, got: Value) -> anyhow::Error {
    anyhow!(
        "{func}: for parameter \"{param}\": expected {expected}, got {} ({})",
        got.get_type(),
        short_repr(got)
    )
}

fn short_repr(v: Value) -> String {
    let r = v.to_repr();
    if r.chars().count() > 60 {
        format!("{}…", r.chars().take(60).collect::<String>())
    } else {
        r
    }
}

/// A string (or Blob).
pub fn string(func: &str, param: &str, v: Value) -> anyhow::Result<String> {
    if let Some(s) = v.unpack_str() {
        return Ok(s.to_owned());
    }
    if let Some(b) = v.downcast_ref::<Blob>() {
        return Ok(b.0.clone());
    }
    Err(bad_arg(func, param, "string", v))
}

/// An optional string: None / missing ⇒ "".
pub fn opt_string(func: &str, param: &str, v: Option<Value>) -> anyhow::Result<String> {
    match v {
        None => Ok(String::new()),
        Some(v) if v.is_none() => Ok(String::new()),
        Some(v) => string(func, param, v),
    }
}

pub fn opt_bool(func: &str, param: &str, v: Option<Value>, default: bool) -> anyhow::Result<bool> {
    match v {
        None => Ok(default),
        Some(v) if v.is_none() => Ok(default),
        Some(v) => v
            .unpack_bool()
            .ok_or_else(|| bad_arg(func, param, "bool", v)),
    }
}

pub fn opt_int(func: &str, param: &str, v: Option<Value>, default: i64) -> anyhow::Result<i64> {
    match v {
        None => Ok(default),
        Some(v) if v.is_none() => Ok(default),
        Some(v) => v
            .unpack_i32()
            .map(i64::from)
            .ok_or_else(|| bad_arg(func, param, "int", v)),
    }
}

/// Iterate a list or tuple (None ⇒ empty); else None.
pub fn seq<'v>(v: Value<'v>) -> Option<Vec<Value<'v>>> {
    if v.is_none() {
        return Some(vec![]);
    }
    if let Some(l) = ListRef::from_value(v) {
        return Some(l.iter().collect());
    }
    TupleRef::from_value(v).map(|t| t.iter().collect())
}

/// A string or a list of strings (Tilt's `value.StringOrStringList`).
pub fn str_or_list(func: &str, param: &str, v: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(v) = v else { return Ok(vec![]) };
    if v.is_none() {
        return Ok(vec![]);
    }
    if let Some(s) = v.unpack_str() {
        return Ok(vec![s.to_owned()]);
    }
    if let Some(b) = v.downcast_ref::<Blob>() {
        return Ok(vec![b.0.clone()]);
    }
    let Some(items) = seq(v) else {
        return Err(bad_arg(func, param, "string or list of strings", v));
    };
    items
        .into_iter()
        .map(|x| {
            if let Some(s) = x.unpack_str() {
                Ok(s.to_owned())
            } else if let Some(b) = x.downcast_ref::<Blob>() {
                Ok(b.0.clone())
            } else {
                Err(bad_arg(func, param, "string or list of strings", x))
            }
        })
        .collect()
}

/// A list of strings only (no bare string).
pub fn str_list(func: &str, param: &str, v: Option<Value>) -> anyhow::Result<Vec<String>> {
    let Some(v) = v else { return Ok(vec![]) };
    if v.unpack_str().is_some() {
        bail!(bad_arg(func, param, "list of strings", v));
    }
    str_or_list(func, param, Some(v))
}

/// A dict of string → string (env, build_args, …).
pub fn str_dict(
    func: &str,
    param: &str,
    v: Option<Value>,
) -> anyhow::Result<Vec<(String, String)>> {
    let Some(v) = v else { return Ok(vec![]) };
    if v.is_none() {
        return Ok(vec![]);
    }
    let Some(d) = DictRef::from_value(v) else {
        return Err(bad_arg(func, param, "dict of string to string", v));
    };
    let mut out = vec![];
    for (k, val) in d.iter() {
        let key = string(func, param, k)?;
        let value = if let Some(i) = val.unpack_i32() {
            i.to_string()
        } else if let Some(b) = val.unpack_bool() {
            if b { "True".into() } else { "False".into() }
        } else {
            string(func, param, val)?
        };
        out.push((key, value));
    }
    Ok(out)
}

/// A value that is a single item or a list of items.
pub fn one_or_many<'v>(v: Option<Value<'v>>) -> Vec<Value<'v>> {
    match v {
        None => vec![],
        Some(v) if v.is_none() => vec![],
        Some(v) => seq(v).unwrap_or_else(|| vec![v]),
    }
}
