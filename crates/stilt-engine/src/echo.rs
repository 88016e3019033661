//! Echo suppression for syncback.
//!
//! A file syncback writes shows up in the file watch like a local edit, and would be live-updated
//! straight back into the container it came from (Tilt's syncback loop). The guard remembers what
//! syncback left at each path (content hash, a directory, or nothing); a watch event whose path
//! still holds exactly that is dropped. Anything else at the path is a real edit: the memory of
//! the path is forgotten and the event goes through.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What syncback left at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    File(Vec<u8>),
    Dir,
    Absent,
}

/// How long a write is remembered: its watch events arrive within a batch window (milliseconds),
/// so a record this old can only match a later, identical save, which is harmless either way.
const REMEMBER: Duration = Duration::from_secs(600);
/// Records are pruned by age only when there are more than this many.
const PRUNE_ABOVE: usize = 20_000;

#[derive(Default)]
pub struct EchoGuard {
    written: Mutex<HashMap<PathBuf, (Written, Instant)>>,
}

impl EchoGuard {
    /// Records what syncback left at `path`.
    pub fn record(&self, path: &Path, what: Written) {
        let mut written = self.written.lock();
        if written.len() > PRUNE_ABOVE {
            written.retain(|_, (_, at)| at.elapsed() < REMEMBER);
        }
        written.insert(path.to_path_buf(), (what, Instant::now()));
    }

    /// Whether an event at `path` is only the echo of a syncback write. A path that changed
    /// since is forgotten, so later edits always go through.
    pub fn is_echo(&self, path: &Path) -> bool {
        let Some((expected, _)) = self.written.lock().get(path).cloned() else {
            return false;
        };
        if current(path) == expected {
            return true;
        }
        self.written.lock().remove(path);
        false
    }

    /// Number of paths remembered (for tests and the debug view).
    pub fn len(&self) -> usize {
        self.written.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What is at `path` now, in the form syncback records.
pub fn current(path: &Path) -> Written {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Written::Dir,
        Ok(_) => std::fs::read(path)
            .map(|d| Written::File(stilt_syncer::proto::hash_bytes(&d)))
            .unwrap_or(Written::Absent),
        Err(_) => Written::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_write_is_an_echo_and_a_later_edit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gen.txt");
        std::fs::write(&f, "from the container").unwrap();
        let guard = EchoGuard::default();
        guard.record(&f, current(&f));
        assert!(guard.is_echo(&f));
        assert!(
            guard.is_echo(&f),
            "several events for one write are all echoes"
        );
        std::fs::write(&f, "edited locally").unwrap();
        assert!(!guard.is_echo(&f));
        std::fs::write(&f, "from the container").unwrap();
        assert!(!guard.is_echo(&f), "a forgotten path stays forgotten");
        assert!(guard.is_empty());
    }

    #[test]
    fn a_deletion_is_an_echo_until_the_file_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("old.txt");
        let guard = EchoGuard::default();
        guard.record(&f, Written::Absent);
        assert!(guard.is_echo(&f));
        std::fs::write(&f, "new").unwrap();
        assert!(!guard.is_echo(&f));
        assert!(!guard.is_echo(&dir.path().join("never-written")));
    }
}
