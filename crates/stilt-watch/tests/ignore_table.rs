//! The .dockerignore matcher against the data table (tests/data/dockerignore_table.txt).

mod common;

use std::path::Path;

use stilt_watch::ignore::DockerIgnore;

#[test]
fn table_matches() {
    let cases = common::table::load();
    assert!(cases.len() >= 50, "table has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let m = DockerIgnore::parse("/ctx", "/ctx/.dockerignore", &case.dockerignore_text())
            .unwrap_or_else(|e| panic!("case {:?}: {e}", case.name));
        for (path, want) in &case.paths {
            let got = m.matches(&Path::new("/ctx").join(path));
            if got != *want {
                failures.push(format!(
                    "[{}] {path}: expected {}, got {} ({:?})",
                    case.name,
                    if *want { "ignored" } else { "kept" },
                    if got { "ignored" } else { "kept" },
                    m.explain_rel(path).map(|e| e.to_string()),
                ));
            }
            // Relative queries agree with absolute ones.
            assert_eq!(m.matches_rel(path), got, "[{}] {path} rel/abs", case.name);
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `can_skip_dir(d)` must imply every path under `d` is ignored: check it
/// for every ancestor directory of every path in the table.
#[test]
fn skip_dir_is_sound_on_table() {
    for case in common::table::load() {
        let m = DockerIgnore::parse("/ctx", ".dockerignore", &case.dockerignore_text()).unwrap();
        for (path, ignored) in &case.paths {
            let comps: Vec<&str> = path.split('/').collect();
            for n in 1..comps.len() {
                let dir = comps[..n].join("/");
                if m.can_skip_dir_rel(&dir) {
                    assert!(
                        *ignored,
                        "[{}] dir {dir} is skippable but {path} is kept",
                        case.name
                    );
                }
            }
        }
    }
}
