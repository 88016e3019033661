//! The local files a `kustomize build` of a directory reads (as Tilt's kustomize.Deps): the
//! kustomization file, and through it resources, bases, components, patches, generator inputs
//! and the kustomizations of referenced directories, recursively. Remote references are skipped.

use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;

use serde_json::Value as Json;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("github.com/") || s.starts_with("git@")
}

/// Path-like strings a kustomization refers to (relative to its directory).
fn references(k: &Json) -> Vec<String> {
    let mut out = vec![];
    let strs = |v: Option<&Json>| -> Vec<String> {
        v.and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    for key in [
        "resources",
        "bases",
        "components",
        "crds",
        "configurations",
        "generators",
        "transformers",
        "validators",
        "patchesStrategicMerge",
    ] {
        // Inline YAML (a patch written in place) is not a path.
        out.extend(strs(k.get(key)).into_iter().filter(|s| !s.contains('\n')));
    }
    for key in ["patches", "patchesJson6902", "replacements"] {
        for p in k.get(key).and_then(Json::as_array).into_iter().flatten() {
            if let Some(path) = p.get("path").and_then(Json::as_str) {
                out.push(path.to_owned());
            }
        }
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        for g in k.get(key).and_then(Json::as_array).into_iter().flatten() {
            for f in strs(g.get("files")) {
                // `key=path` or `path`.
                out.push(f.split_once('=').map(|(_, p)| p.to_owned()).unwrap_or(f));
            }
            out.extend(strs(g.get("envs")));
            if let Some(e) = g.get("env").and_then(Json::as_str) {
                out.push(e.to_owned());
            }
        }
    }
    if let Some(p) = k.pointer("/openapi/path").and_then(Json::as_str) {
        out.push(p.to_owned());
    }
    out.retain(|s| !is_remote(s));
    out
}

/// Every local file `kustomize build dir` reads, sorted. `read` parses a YAML file (None when
/// missing), `is_dir` tells directories from files.
pub(crate) fn deps(
    dir: &Path,
    read: impl Fn(&Path) -> Option<Json>,
    is_dir: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    let mut seen_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if !seen_dirs.insert(d.clone()) || seen_dirs.len() > 64 {
            continue;
        }
        let Some((file, k)) = KUSTOMIZATION_FILES
            .iter()
            .map(|n| d.join(n))
            .find_map(|f| read(&f).map(|k| (f, k)))
        else {
            continue;
        };
        out.insert(file);
        for r in references(&k) {
            let p = crate::eval::abs_path(&d, &r);
            if is_dir(&p) {
                dirs.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overlay_and_base() {
        let overlay = json!({
            "resources": ["../base", "extra.yaml", "https://github.com/x/y//z"],
            "patches": [{"path": "patch.yaml"}, {"patch": "inline"}],
            "patchesStrategicMerge": ["psm.yaml", "apiVersion: v1\nkind: X\n"],
            "configMapGenerator": [{"name": "c", "files": ["conf=app.conf", "raw.txt"], "envs": ["e.env"]}],
            "components": ["../comp"],
        });
        let base = json!({"resources": ["deploy.yaml"], "secretGenerator": [{"env": "s.env"}]});
        let comp = json!({"patches": [{"path": "c.yaml"}]});
        let read = |p: &Path| match p.to_str().unwrap() {
            "/k/overlay/kustomization.yaml" => Some(overlay.clone()),
            "/k/base/kustomization.yml" => Some(base.clone()),
            "/k/comp/Kustomization" => Some(comp.clone()),
            _ => None,
        };
        let is_dir = |p: &Path| ["/k/base", "/k/comp"].contains(&p.to_str().unwrap());
        let got: Vec<String> = deps(Path::new("/k/overlay"), read, is_dir)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "/k/base/deploy.yaml",
                "/k/base/kustomization.yml",
                "/k/base/s.env",
                "/k/comp/Kustomization",
                "/k/comp/c.yaml",
                "/k/overlay/app.conf",
                "/k/overlay/e.env",
                "/k/overlay/extra.yaml",
                "/k/overlay/kustomization.yaml",
                "/k/overlay/patch.yaml",
                "/k/overlay/psm.yaml",
                "/k/overlay/raw.txt",
            ]
        );
    }
}
