//! Differential test against Tilt: for each fixture listed in `tests/tilt-golden/FIXTURES`,
//! the objects Tilt made of it (recorded by `scripts/record-tilt-golden <tilt binary>` into
//! `tests/tilt-golden/<fixture>.json`) are compared with Stilt's, field by field: names,
//! labels, annotations, owner references and specs (ConfigMaps: data).
//!
//! Every difference must match a line of `tests/tilt-golden/KNOWN_DIFFERENCES`
//! (`<regex>\t<reason>`, each explained in DIALECT.md); any other difference fails the test,
//! and so does an allow-list line that no longer matches anything.
//!
//! Comparison rules (what is not a difference):
//! - zero values (`""`, `0`, `false`, `[]`, `{}`, null) count as absent: Tilt's API omits them;
//! - Tilt objects not owned by the Tiltfile are runtime objects (made by controllers, e.g. the
//!   trigger queue) and are compared only when Stilt's loader makes them too;
//! - Stilt objects get the owner reference the engine adds when it applies them;
//! - `.git` ignores of the repository holding the fixtures are dropped (the recording ran in
//!   a scratch copy outside any repository).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use serde_json::json;

/// Kinds both sides make from a Tiltfile (the recording lists these).
const KINDS: &[&str] = &[
    "Cmd",
    "CmdImage",
    "ConfigMap",
    "DockerComposeService",
    "DockerImage",
    "ExtensionRepo",
    "Extension",
    "FileWatch",
    "ImageMap",
    "KubernetesApply",
    "LiveUpdate",
    "ToggleButton",
    "UIButton",
    "UIResource",
];

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tilt-golden")
}

/// Drops zero values recursively; `None` when the whole value is zero.
fn prune(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Bool(false) => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(a) => {
            let a: Vec<Value> = a.iter().map(|x| prune(x).unwrap_or(Value::Null)).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| prune(x).map(|x| (k.clone(), x)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        other => Some(other.clone()),
    }
}

/// Leaves of a value by JSON path (`spec.args[0]`).
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// The compared part of an object: `(kind, name) → {metadata…, spec|data}`, pruned.
fn comparable(o: &Value) -> Value {
    let md = &o["metadata"];
    let mut c = json!({
        "metadata": {
            "labels": md["labels"],
            "annotations": md["annotations"],
            "ownerReferences": md["ownerReferences"],
        },
    });
    if o["kind"] == "ConfigMap" {
        c["data"] = o["data"].clone();
    } else {
        c["spec"] = o["spec"].clone();
    }
    // Applied YAML is compared as objects: Tilt re-serializes it (sorted keys, `{}` defaults).
    if let Some(y) = c["spec"]["yaml"].as_str() {
        c["spec"]["yaml"] = json!(stilt_tiltfile::parse_yaml_stream(y).unwrap_or_default());
    }
    // The log start time is the run's own.
    if c["spec"]["podLogStreamTemplateSpec"]["sinceTime"].is_string() {
        c["spec"]["podLogStreamTemplateSpec"]["sinceTime"] = json!("[START]");
    }
    prune(&c).unwrap_or(json!({}))
}

fn drop_repo_git_ignores(v: &mut Value) {
    match v {
        Value::Array(a) => {
            a.retain(|x| x["basePath"].as_str() != Some("[REPO]/.git"));
            a.iter_mut().for_each(drop_repo_git_ignores);
        }
        Value::Object(m) => m.values_mut().for_each(drop_repo_git_ignores),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", &s[..120])
    } else {
        s
    }
}

/// Every difference between Tilt's and Stilt's objects for one fixture.
fn differences(fixture: &str) -> Vec<String> {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join(format!("{fixture}.json"))).unwrap(),
    )
    .unwrap();
    let dir = common::fixtures_dir().join(fixture);
    let result = match common::load_fixture(&dir) {
        Ok(r) => r,
        Err(e) => return vec![format!("{fixture}: Stilt failed to load: {}", e.message)],
    };
    if golden["tiltError"].as_str().is_some_and(|e| !e.is_empty()) {
        return vec![format!(
            "{fixture}: Tilt failed to load, Stilt loaded: {}",
            golden["tiltError"]
        )];
    }
    let owner = json!([{"apiVersion": "tilt.dev/v1alpha1", "kind": "Tiltfile", "name": "(Tiltfile)",
                        "controller": true, "blockOwnerDeletion": true}]);
    let mut stilt: BTreeMap<(String, String), Value> = BTreeMap::new();
    for o in &result.objects {
        let mut v = o.to_value();
        if !KINDS.contains(&o.kind()) {
            continue;
        }
        v["metadata"]["ownerReferences"] = owner.clone();
        let mut v = serde_json::from_str::<Value>(
            &v.to_string()
                .replace(&dir.display().to_string(), "[FIXTURE]")
                .replace(&common::fixtures_dir().display().to_string(), "[TESTS]"),
        )
        .unwrap();
        let mut repo = dir.clone();
        while !repo.join(".git").exists() && repo.pop() {}
        if repo.join(".git").exists() {
            v = serde_json::from_str(
                &v.to_string()
                    .replace(&repo.join(".git").display().to_string(), "[REPO]/.git"),
            )
            .unwrap();
        }
        drop_repo_git_ignores(&mut v);
        stilt.insert((o.kind().to_owned(), o.name().to_owned()), comparable(&v));
    }
    let mut tilt: BTreeMap<(String, String), Value> = BTreeMap::new();
    for o in golden["objects"].as_array().unwrap() {
        let key = (
            o["kind"].as_str().unwrap().to_owned(),
            o["metadata"]["name"].as_str().unwrap().to_owned(),
        );
        let from_tiltfile = o["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["kind"] == "Tiltfile"));
        if from_tiltfile || stilt.contains_key(&key) {
            tilt.insert(key, comparable(o));
        }
    }
    let mut out = vec![];
    for (key, t) in &tilt {
        let id = format!("{fixture}: {}/{}", key.0, key.1);
        let Some(s) = stilt.get(key) else {
            out.push(format!("{id}: only in Tilt"));
            continue;
        };
        let (mut tf, mut sf) = (BTreeMap::new(), BTreeMap::new());
        flatten("", t, &mut tf);
        flatten("", s, &mut sf);
        let paths: std::collections::BTreeSet<&String> = tf.keys().chain(sf.keys()).collect();
        for p in paths {
            let (a, b) = (tf.get(p), sf.get(p));
            if a != b {
                out.push(format!(
                    "{id} {p}: tilt={} stilt={}",
                    a.map(short).unwrap_or_else(|| "-".into()),
                    b.map(short).unwrap_or_else(|| "-".into())
                ));
            }
        }
    }
    for key in stilt.keys().filter(|k| !tilt.contains_key(*k)) {
        out.push(format!("{fixture}: {}/{}: only in Stilt", key.0, key.1));
    }
    out
}

#[test]
fn stilt_objects_match_tilts() {
    let list = std::fs::read_to_string(golden_dir().join("FIXTURES")).unwrap();
    let known_text = std::fs::read_to_string(golden_dir().join("KNOWN_DIFFERENCES")).unwrap();
    let known: Vec<(regex::Regex, &str)> = known_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (re, why) = l.split_once('\t').unwrap_or((l, ""));
            assert!(
                !why.trim().is_empty(),
                "allow-list line without a reason: {l}"
            );
            (regex::Regex::new(re).unwrap(), why)
        })
        .collect();
    let only = std::env::var("FIXTURE").ok();
    let mut used = vec![false; known.len()];
    let mut unexplained = vec![];
    let mut total = 0;
    for fixture in list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if only.as_ref().is_some_and(|o| !fixture.contains(o.as_str())) {
            continue;
        }
        // While re-recording: GOLDEN_PARTIAL=1 skips fixtures not recorded yet.
        if std::env::var_os("GOLDEN_PARTIAL").is_some()
            && !golden_dir().join(format!("{fixture}.json")).exists()
        {
            continue;
        }
        for d in differences(fixture) {
            total += 1;
            match known.iter().position(|(re, _)| re.is_match(&d)) {
                Some(i) => used[i] = true,
                None => unexplained.push(d),
            }
        }
    }
    eprintln!("{total} differences, {} unexplained", unexplained.len());
    assert!(
        unexplained.is_empty(),
        "differences from Tilt not in tests/tilt-golden/KNOWN_DIFFERENCES:\n{}",
        unexplained.join("\n")
    );
    if only.is_none() {
        let stale: Vec<&str> = known
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|((re, _), _)| re.as_str())
            .collect();
        assert!(
            stale.is_empty(),
            "allow-list lines matching nothing: {stale:?}"
        );
    }
}
