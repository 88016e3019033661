//! Tilt's own Starlark value types. They carry owned data only (no Starlark references), so they
//! freeze trivially and never leak out of evaluation.

use std::fmt;

use allocative::Allocative;
use serde_json::Value as Json;
use starlark::any::ProvidesStaticType;
use starlark::starlark_simple_value;
use starlark::values::Heap;
use starlark::values::NoSerialize;
use starlark::values::StarlarkPagablePanic;
use starlark::values::StarlarkValue;
use starlark::values::Value;
use starlark::values::ValueLike;
use starlark::values::starlark_value;

use crate::convert::json_to_value;

/// A `Blob`: text returned by `local()`, `read_file()`, `helm()`, `encode_yaml()` … `str(blob)` is
/// the text.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct Blob(pub String);
starlark_simple_value!(Blob);

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[starlark_value(type = "blob")]
impl<'v> StarlarkValue<'v> for Blob {
    fn collect_repr(&self, collector: &mut String) {
        collector.push_str(&self.0);
    }
    fn to_bool(&self) -> bool {
        !self.0.is_empty()
    }
    fn length(&self) -> starlark::Result<i32> {
        Ok(self.0.len() as i32)
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        if let Some(b) = other.downcast_ref::<Blob>() {
            return Ok(b.0 == self.0);
        }
        Ok(other.unpack_str() == Some(self.0.as_str()))
    }
    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        if let Some(b) = rhs.downcast_ref::<Blob>() {
            return Some(Ok(heap.alloc(Blob(format!("{}{}", self.0, b.0)))));
        }
        rhs.unpack_str()
            .map(|s| Ok(heap.alloc(Blob(format!("{}{}", self.0, s)))))
    }
    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        lhs.unpack_str()
            .map(|s| Ok(heap.alloc(Blob(format!("{}{}", s, self.0)))))
    }
}

/// A generic Tilt object (`port_forward`, `link`, `probe`, `exec_action`, live-update steps,
/// `k8s_object_id` …): a kind name plus owned JSON fields exposed as attributes.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct TiltObj {
    pub kind: &'static str,
    #[allocative(skip)]
    pub fields: serde_json::Map<String, Json>,
    /// Identity for objects whose use is tracked (live-update steps).
    pub id: u64,
}
starlark_simple_value!(TiltObj);

impl TiltObj {
    pub fn new(kind: &'static str, fields: serde_json::Map<String, Json>) -> Self {
        TiltObj {
            kind,
            fields,
            id: 0,
        }
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(|v| v.as_str())
    }
}

impl fmt::Display for TiltObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.kind)?;
        let mut first = true;
        for (k, v) in &self.fields {
            if v.is_null() {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        f.write_str(")")
    }
}

#[starlark_value(type = "tilt_object")]
impl<'v> StarlarkValue<'v> for TiltObj {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        self.fields.get(attribute).map(|v| json_to_value(v, heap))
    }
    fn dir_attr(&self) -> Vec<String> {
        self.fields.keys().cloned().collect()
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<TiltObj>()
            .is_some_and(|o| o.kind == self.kind && o.fields == self.fields && o.id == self.id))
    }
}
