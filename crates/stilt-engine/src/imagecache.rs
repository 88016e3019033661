//! Images built before, by the digest of their inputs ([`stilt_docker::BuildRequest::input_digest`]):
//! a build whose inputs match one recorded, and whose image the engine still has, is not run
//! again. This is what lets a restarted `stilt up` (after a crash or a clean stop) adopt its
//! unchanged images instead of rebuilding them, and an edit that is undone reuse the image it
//! had. Kept in `$STILT_HOME/instances/images.json`, shared by the instances of that home.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How many digests the record keeps (the newest).
const KEEP: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Entry {
    image: String,
    /// Unix seconds of the build, to keep the newest.
    built: u64,
}

pub struct BuiltImages {
    path: Option<PathBuf>,
    entries: Mutex<Option<BTreeMap<String, Entry>>>,
}

impl BuiltImages {
    /// Records nothing and finds nothing (tests, engines without a Stilt home).
    pub fn disabled() -> Self {
        Self {
            path: None,
            entries: Mutex::new(Some(BTreeMap::new())),
        }
    }

    pub fn at(path: Option<PathBuf>) -> Self {
        Self {
            path,
            entries: Mutex::new(None),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> R) -> R {
        let mut guard = self.entries.lock();
        let entries = guard.get_or_insert_with(|| {
            self.path
                .as_ref()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        });
        f(entries)
    }

    /// The image an earlier build with these inputs produced.
    pub fn find(&self, digest: &str) -> Option<String> {
        self.path.as_ref()?;
        self.with(|e| e.get(digest).map(|e| e.image.clone()))
    }

    /// A build with these inputs produced `image`.
    pub fn record(&self, digest: &str, image: &str) {
        let Some(path) = &self.path else { return };
        let built = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let text = self.with(|entries| {
            entries.insert(
                digest.to_string(),
                Entry {
                    image: image.to_string(),
                    built,
                },
            );
            while entries.len() > KEEP {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.built)
                    .map(|(k, _)| k.clone())
                    .expect("not empty");
                entries.remove(&oldest);
            }
            serde_json::to_vec(entries).expect("serializable")
        });
        // Written whole then renamed: another instance never reads half a file.
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
            tracing::warn!("recording built images in {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_found_by_the_next_instance_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        let first = BuiltImages::at(Some(path.clone()));
        assert_eq!(first.find("d1"), None);
        first.record("d1", "web:tilt-1");
        let next = BuiltImages::at(Some(path.clone()));
        assert_eq!(next.find("d1").as_deref(), Some("web:tilt-1"));
        for i in 0..KEEP + 10 {
            next.record(&format!("n{i}"), "x");
        }
        let after = BuiltImages::at(Some(path));
        assert_eq!(after.with(|e| e.len()), KEEP);
        assert_eq!(BuiltImages::disabled().find("d1"), None);
    }
}
