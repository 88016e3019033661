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

impl TiltObj {
    /// What `type()` says of a live-update step in Tilt (extensions such as file_sync_only test
    /// it); other Tilt objects are `tilt_object`.
    pub fn step_type(&self) -> Option<&'static str> {
        Some(match self.kind {
            "sync" => "live_update_sync_step",
            "run" => "live_update_run_step",
            "fall_back_on" => "live_update_fall_back_on_step",
            "restart_container" => "live_update_restart_container_step",
            "initial_sync" => "live_update_initial_sync_step",
            _ => return None,
        })
    }

    /// `str()` of a live-update step, in Tilt's form (extensions parse it: file_sync_only
    /// splits a sync step's on `'`).
    fn step_str(&self) -> Option<String> {
        let list = |k: &str| -> Vec<String> {
            self.fields
                .get(k)
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(match self.kind {
            "sync" => format!(
                "sync step: '{}'->'{}'",
                self.str("local_path").unwrap_or(""),
                self.str("remote_path").unwrap_or("")
            ),
            "run" => {
                // Tilt's Cmd.String(): the script of `sh -c <script>`, else the quoted argv.
                let argv = list("args");
                let cmd = match argv.as_slice() {
                    [sh, c, script] if sh == "sh" && c == "-c" && !script.contains('\n') => {
                        script.clone()
                    }
                    _ => argv
                        .iter()
                        .map(|a| {
                            if a.contains(' ') {
                                format!("{a:?}")
                            } else {
                                a.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let triggers = list("trigger");
                let mut s = format!("run step: {cmd:?}");
                if !triggers.is_empty() {
                    s.push_str(&format!(" (triggers: {})", triggers.join("; ")));
                }
                s
            }
            "fall_back_on" => format!("fall_back_on step: [{}]'", list("files").join(" ")),
            "restart_container" => "restart_container step".into(),
            "initial_sync" => "initial_sync step".into(),
            _ => return None,
        })
    }
}

impl fmt::Display for TiltObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.step_str() {
            return f.write_str(&s);
        }
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
