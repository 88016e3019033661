//! `os`, `os.path` and `os.environ`. The environment the Tiltfile sees is a per-load copy of the
//! host environment (os.putenv changes it for later `local()` calls, not for the host process).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::path::PathBuf;

use allocative::Allocative;
use anyhow::anyhow;
use starlark::any::ProvidesStaticType;
use starlark::environment::GlobalsBuilder;
use starlark::environment::Methods;
use starlark::environment::MethodsBuilder;
use starlark::environment::MethodsStatic;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::Heap;
use starlark::values::NoSerialize;
use starlark::values::StarlarkPagablePanic;
use starlark::values::StarlarkValue;
use starlark::values::Value;
use starlark::values::dict::DictRef;
use starlark::values::list::AllocList;
use starlark::values::none::NoneType;
use starlark::values::starlark_value;
use starlark::values::tuple::AllocTuple;
use starlark::values::tuple::UnpackTuple;

use crate::convert::*;
use crate::eval::ReqInfo;
use crate::eval::abs_path;
use crate::eval::clean;
use crate::eval::ctx;
use crate::eval::cur_dir;

thread_local! {
    static ENV: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

pub(crate) fn env_reset(vars: Vec<(String, String)>) {
    ENV.with(|e| *e.borrow_mut() = vars.into_iter().collect());
}
pub(crate) fn env_get(k: &str) -> Option<String> {
    ENV.with(|e| e.borrow().get(k).cloned())
}
pub(crate) fn env_set(k: &str, v: &str) {
    ENV.with(|e| e.borrow_mut().insert(k.to_owned(), v.to_owned()));
}
pub(crate) fn env_unset(k: &str) -> Option<String> {
    ENV.with(|e| e.borrow_mut().remove(k))
}
pub(crate) fn env_all() -> Vec<(String, String)> {
    ENV.with(|e| e.borrow().clone().into_iter().collect())
}

/// `os.environ`: a dict-like view of the load's environment.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct Environ;
starlark_simple_value!(Environ);

impl fmt::Display for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environ({{")?;
        for (i, (k, v)) in env_all().into_iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{k:?}: {v:?}")?;
        }
        write!(f, "}})")
    }
}

#[starlark_value(type = "environ")]
impl<'v> StarlarkValue<'v> for Environ {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("environ", environ_methods);
        Some(RES.methods())
    }
    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let k = index.unpack_str_err()?;
        match env_get(k) {
            Some(v) => Ok(heap.alloc(v)),
            None => Err(starlark::Error::new_other(anyhow!(
                "key {k:?} not in environ"
            ))),
        }
    }
    fn set_at(&self, index: Value<'v>, new_value: Value<'v>) -> starlark::Result<()> {
        let k = index.unpack_str_err()?;
        let v = string("os.environ", "value", new_value)?;
        env_set(k, &v);
        Ok(())
    }
    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.unpack_str().is_some_and(|k| env_get(k).is_some()))
    }
    fn length(&self) -> starlark::Result<i32> {
        Ok(env_all().len() as i32)
    }
    fn iterate_collect(&self, heap: Heap<'v>) -> starlark::Result<Vec<Value<'v>>> {
        Ok(env_all().into_iter().map(|(k, _)| heap.alloc(k)).collect())
    }
    fn to_bool(&self) -> bool {
        !env_all().is_empty()
    }
}

#[starlark_module]
fn environ_methods(builder: &mut MethodsBuilder) {
    fn get<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(match env_get(key) {
            Some(v) => heap.alloc(v),
            None => default.unwrap_or_else(Value::new_none),
        })
    }
    fn keys<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(heap.alloc(AllocList(env_all().into_iter().map(|(k, _)| k))))
    }
    fn values<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(heap.alloc(AllocList(env_all().into_iter().map(|(_, v)| v))))
    }
    fn items<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(heap.alloc(AllocList(
            env_all()
                .into_iter()
                .map(|(k, v)| heap.alloc(AllocTuple([heap.alloc(k), heap.alloc(v)]))),
        )))
    }
    fn pop<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        match env_unset(key) {
            Some(v) => Ok(heap.alloc(v)),
            None => default.ok_or_else(|| anyhow!("key {key:?} not in environ")),
        }
    }
    fn popitem<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let _ = this;
        let (k, _) = env_all()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("popitem: environ is empty"))?;
        let v = env_unset(&k).unwrap_or_default();
        Ok(heap.alloc(AllocTuple([heap.alloc(k), heap.alloc(v)])))
    }
    fn setdefault<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        if let Some(v) = env_get(key) {
            return Ok(heap.alloc(v));
        }
        let d = match default {
            Some(d) => string("os.environ.setdefault", "default", d)?,
            None => String::new(),
        };
        env_set(key, &d);
        Ok(heap.alloc(d))
    }
    fn update<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] pairs: Option<Value<'v>>,
        #[starlark(kwargs)] kwargs: Value<'v>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        for src in pairs.into_iter().chain(std::iter::once(kwargs)) {
            if let Some(d) = DictRef::from_value(src) {
                for (k, v) in d.iter() {
                    env_set(
                        &string("os.environ.update", "key", k)?,
                        &string("os.environ.update", "value", v)?,
                    );
                }
            }
        }
        Ok(NoneType)
    }
    fn clear<'v>(this: Value<'v>) -> anyhow::Result<NoneType> {
        let _ = this;
        env_reset(vec![]);
        Ok(NoneType)
    }
}

pub(crate) fn rel_path(target: &Path, base: &Path) -> Option<PathBuf> {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(b.iter()).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

#[starlark_module]
fn os_funcs(builder: &mut GlobalsBuilder) {
    /// Tilt: the directory of the currently executing Tiltfile.
    fn getcwd<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(cur_dir(eval).display().to_string())
    }

    /// Returns an environment variable (as seen by the Tiltfile, with `os.putenv` changes), or `default`.
    fn getenv<'v>(
        key: &str,
        default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(match env_get(key) {
            Some(v) => heap.alloc(v),
            None => default.unwrap_or_else(Value::new_none),
        })
    }

    /// Sets an environment variable for the rest of the Tiltfile and the commands it runs.
    fn putenv<'v>(key: &str, value: Value<'v>) -> anyhow::Result<NoneType> {
        env_set(key, &string("os.putenv", "value", value)?);
        Ok(NoneType)
    }

    /// Removes an environment variable for the rest of the Tiltfile and the commands it runs.
    fn unsetenv(key: &str) -> anyhow::Result<NoneType> {
        env_unset(key);
        Ok(NoneType)
    }
}

#[starlark_module]
fn os_path_funcs(builder: &mut GlobalsBuilder) {
    /// The absolute path of `path`, relative to the current Tiltfile's directory.
    fn abspath<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(abs_path(&cur_dir(eval), path).display().to_string())
    }

    /// The last element of a path.
    fn basename(path: &str) -> anyhow::Result<String> {
        let p = path.trim_end_matches('/');
        if p.is_empty() {
            return Ok(if path.is_empty() { "." } else { "/" }.into());
        }
        Ok(p.rsplit('/').next().unwrap_or("").to_owned())
    }

    /// Everything but the last element of a path.
    fn dirname(path: &str) -> anyhow::Result<String> {
        // Go's filepath.Dir.
        let idx = path.rfind('/');
        let d = match idx {
            Some(i) => &path[..=i],
            None => "",
        };
        let c = clean(Path::new(if d.is_empty() { "." } else { d }));
        Ok(c.display().to_string())
    }

    /// Whether a path exists (relative to the current Tiltfile's directory).
    fn exists<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<bool> {
        let p = abs_path(&cur_dir(eval), path);
        Ok(ctx(eval).host.exists(&p))
    }

    /// The absolute path with symlinks resolved.
    fn realpath<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let p = abs_path(&cur_dir(eval), path);
        let r = ctx(eval).host.canonicalize(&p).unwrap_or(p);
        Ok(r.display().to_string())
    }

    /// `targpath` relative to `basepath`.
    fn relpath<'v>(
        targpath: &str,
        basepath: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        let dir = cur_dir(eval);
        let base = match basepath {
            Some(b) => abs_path(&dir, b),
            None => dir.clone(),
        };
        let t = abs_path(&dir, targpath);
        Ok(rel_path(&t, &base).unwrap_or(t).display().to_string())
    }

    /// Joins path elements with `/`.
    fn join(#[starlark(args)] parts: UnpackTuple<String>) -> anyhow::Result<String> {
        Ok(go_join(&parts.items))
    }
}

/// Go's `filepath.Join`: the non-empty elements joined with `/`, then cleaned. Unlike
/// Python's, an absolute element does not discard the ones before it.
pub(crate) fn go_join(parts: &[String]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    go_clean(&joined)
}

/// Go's `filepath.Clean` (Unix): one separator between names, no `.` elements, `..` resolved
/// lexically (kept at the start of a relative path, dropped at the root), `.` when empty.
pub(crate) fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = vec![];
    for el in path.split('/') {
        match el {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            e => out.push(e),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

pub(crate) fn register(b: &mut GlobalsBuilder, _req: &ReqInfo) {
    os_funcs(b);
    b.set("name", "posix");
    b.set("environ", Environ);
    b.namespace("path", os_path_funcs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_like_go_filepath() {
        let cases: &[(&[&str], &str)] = &[
            (&["a", "b", "c"], "a/b/c"),
            (&["a", "", "b"], "a/b"),
            (&["a/", "/b"], "a/b"),
            (&["/a", "../b"], "/b"),
            (&["a", "..", "..", "b"], "../b"),
            (&["/", "..", "x"], "/x"),
            (&["./a/./b/"], "a/b"),
            (&["a", "."], "a"),
            (&["a", ".."], "."),
            (&["", ""], ""),
            (&[], ""),
            (&["//a//b"], "/a/b"),
        ];
        for (parts, want) in cases {
            let parts: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            assert_eq!(go_join(&parts), *want, "{parts:?}");
        }
    }
}
