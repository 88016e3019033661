//! Speculative parsing of the Kubernetes YAML a Tiltfile names. Parsing is most of a load's
//! evaluation (a 25-line manifest takes ~60–100 µs), and a Tiltfile usually names its YAML files
//! as string literals (`k8s_yaml('svc/k8s.yaml')`). When a file's source is read, the literals
//! that look like YAML paths are parsed on a worker thread, last first, while the evaluator
//! parses the first ones itself: the two meet in the middle with both cores parsing.
//!
//! It only ever saves work, never changes an answer: `k8s_yaml` still reads the file itself (so
//! it is watched, and a host's overlay wins), and takes the worker's parse only when the worker
//! parsed exactly that text. Any other case (not a literal, not yet started, a different text)
//! parses in line, as before.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use crate::model::K8sEntity;

type Parsed = anyhow::Result<Vec<K8sEntity>>;

/// Larger files are left to the evaluator: a literal may name a file `k8s_yaml` never reads, and
/// a guess should not cost much.
const MAX_BYTES: u64 = 1 << 20;

enum Slot {
    Queued,
    Parsing,
    Done { text: String, parsed: Parsed },
}

#[derive(Default)]
struct Shared {
    slots: Mutex<HashMap<PathBuf, Slot>>,
    done: Condvar,
    stop: AtomicBool,
}

/// One load's prefetcher: dropping it stops its workers after the file they are parsing.
#[derive(Default)]
pub(crate) struct YamlPrefetch {
    shared: Arc<Shared>,
}

/// The YAML paths named by string literals in `src`, resolved against `dir`, each once, in order:
/// one-line strings in `'` or `"` that end in `.yaml` / `.yml` and are not URLs.
fn yaml_literals(dir: &Path, src: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for line in src.lines() {
        let mut rest = line;
        while let Some(open) = rest.find(['"', '\'']) {
            let quote = rest.as_bytes()[open] as char;
            let after = &rest[open + 1..];
            let Some(close) = after.find(quote) else {
                break;
            };
            let lit = &after[..close];
            rest = &after[close + 1..];
            if (lit.ends_with(".yaml") || lit.ends_with(".yml")) && !lit.contains("://") {
                let p = crate::eval::abs_path(dir, lit);
                // A set, not `out.contains`: comparing paths component by component was a
                // quadratic tenth of a 200-resource load.
                if seen.insert(p.clone()) {
                    out.push(p);
                }
            }
        }
    }
    out
}

impl YamlPrefetch {
    /// Starts parsing, off this thread, the YAML files that `src` (a Starlark file in `dir`)
    /// names as literals and that are not queued yet.
    pub fn scan(&self, dir: &Path, src: &str) {
        let paths: Vec<PathBuf> = {
            let mut slots = self.shared.slots.lock().unwrap();
            let mut queued = vec![];
            for p in yaml_literals(dir, src) {
                if let std::collections::hash_map::Entry::Vacant(e) = slots.entry(p.clone()) {
                    e.insert(Slot::Queued);
                    queued.push(p);
                }
            }
            // Last first: the evaluator parses in line the files the worker has not started,
            // rather than waiting on a worker that is always one file ahead.
            queued.reverse();
            queued
        };
        if paths.is_empty() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("stilt-yaml".into())
            .spawn(move || work(&shared, paths));
        if spawned.is_err() {
            // No thread, no prefetch: every file parses in line.
            self.shared.slots.lock().unwrap().clear();
        }
    }

    /// The worker's parse of `path`, if it is parsing or has parsed exactly `text`; `None` means
    /// the caller parses `text` itself (and the worker will not).
    pub fn take(&self, path: &Path, text: &str) -> Option<Parsed> {
        let mut slots = self.shared.slots.lock().unwrap();
        loop {
            match slots.remove(path)? {
                Slot::Queued => return None,
                Slot::Parsing => {
                    slots.insert(path.to_path_buf(), Slot::Parsing);
                    slots = self.shared.done.wait(slots).unwrap();
                }
                Slot::Done { text: t, parsed } => return (t == text).then_some(parsed),
            }
        }
    }
}

impl Drop for YamlPrefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn work(shared: &Shared, paths: Vec<PathBuf>) {
    for p in paths {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut slots = shared.slots.lock().unwrap();
            match slots.get_mut(&p) {
                Some(s @ Slot::Queued) => *s = Slot::Parsing,
                // Taken by the evaluator already.
                _ => continue,
            }
        }
        let small = std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() <= MAX_BYTES);
        let done = small
            .then(|| crate::host::read_capped(&p).ok())
            .flatten()
            .map(|b| {
                let text = String::from_utf8_lossy(&b).into_owned();
                let parsed = crate::builtins::k8s::parse_entities(&text);
                Slot::Done { text, parsed }
            });
        let mut slots = shared.slots.lock().unwrap();
        match done {
            Some(d) => slots.insert(p, d),
            None => slots.remove(&p),
        };
        shared.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_that_name_yaml_files_are_found_once_and_resolved() {
        let src = r#"
k8s_yaml('a/k8s.yaml')
k8s_yaml(["b.yml", "a/k8s.yaml"])
k8s_yaml(helm('chart'))
load('ext://x', 'y')
k8s_yaml('https://example.com/x.yaml')
print("not yaml.txt")
"#;
        assert_eq!(
            yaml_literals(Path::new("/p"), src),
            vec![PathBuf::from("/p/a/k8s.yaml"), PathBuf::from("/p/b.yml")]
        );
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

    /// A project holding `text` as `file`, a prefetcher that has parsed it, and its path.
    fn parsed_by_worker(file: &str, text: &str) -> (tempfile::TempDir, YamlPrefetch, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(file);
        std::fs::write(&path, text).unwrap();
        let pf = YamlPrefetch::default();
        pf.scan(d.path(), &format!("k8s_yaml('{file}')"));
        for _ in 0..5000 {
            if matches!(
                pf.shared.slots.lock().unwrap().get(&path),
                Some(Slot::Done { .. })
            ) {
                return (d, pf, path);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("the worker never parsed {}", path.display());
    }

    #[test]
    fn a_prefetched_file_gives_the_same_entities_as_parsing_it() {
        let (_d, pf, path) = parsed_by_worker("k8s.yaml", DEPLOY);
        let got = pf
            .take(&path, DEPLOY)
            .expect("parsed by the worker")
            .unwrap();
        let want = crate::builtins::k8s::parse_entities(DEPLOY).unwrap();
        assert_eq!(
            got.iter().map(|e| &e.obj).collect::<Vec<_>>(),
            want.iter().map(|e| &e.obj).collect::<Vec<_>>()
        );
        // Taken once: a second read parses in line.
        assert!(pf.take(&path, DEPLOY).is_none());
    }

    #[test]
    fn a_parse_of_other_text_is_not_used() {
        let (_d, pf, path) = parsed_by_worker("k8s.yaml", DEPLOY);
        assert!(pf.take(&path, "kind: Service\n").is_none());
    }

    #[test]
    fn a_parse_error_is_the_same_error_as_in_line() {
        let bad = "kind: [unclosed\n";
        let (_d, pf, path) = parsed_by_worker("bad.yaml", bad);
        let got = pf.take(&path, bad).expect("parsed by the worker");
        let want = crate::builtins::k8s::parse_entities(bad);
        assert_eq!(
            format!("{:#}", got.unwrap_err()),
            format!("{:#}", want.unwrap_err())
        );
    }
}
