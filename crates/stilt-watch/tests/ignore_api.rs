//! The ignore API beyond the table: file parsing, errors, explanations,
//! skip-dir answers, gitignore rules and their composition.

use std::path::{Path, PathBuf};

use stilt_watch::Ignores;
use stilt_watch::ignore::{DockerIgnore, GitIgnore, IgnoreRule};

#[test]
fn explain_names_file_line_and_pattern() {
    let text = "# deps\nnode_modules\n\n*.log\n!keep.log\n";
    let m = DockerIgnore::parse("/ctx", "/ctx/.dockerignore", text).unwrap();
    let e = m.explain(Path::new("/ctx/a.log")).unwrap();
    assert!(e.ignored);
    assert_eq!(e.pattern, "*.log");
    assert_eq!(e.origin.to_string(), "/ctx/.dockerignore:4");
    assert_eq!(
        e.to_string(),
        "a.log is ignored by \"*.log\" (/ctx/.dockerignore:4)"
    );

    let e = m.explain(Path::new("/ctx/keep.log")).unwrap();
    assert!(!e.ignored);
    assert_eq!(e.pattern, "!keep.log");
    assert_eq!(e.origin.line, 5);

    let e = m.explain(Path::new("/ctx/node_modules/x/y.js")).unwrap();
    assert!(e.ignored);
    assert_eq!(e.via_dir.as_deref(), Some("node_modules"));
    assert_eq!(e.origin.line, 2);
    assert!(e.to_string().contains("its directory node_modules"), "{e}");

    assert!(m.explain(Path::new("/ctx/src/main.rs")).is_none());
    assert!(m.explain(Path::new("/elsewhere/a.log")).is_none());
}

#[test]
fn bad_patterns_are_errors_with_location() {
    for (text, line) in [("ok\n[\n", 2), ("!\n", 1), ("a\\\n", 1), ("x\n\n[]\n", 3)] {
        let err = DockerIgnore::parse("/ctx", ".tiltignore", text).unwrap_err();
        assert_eq!(err.origin.line, line, "{text:?}: {err}");
        assert!(err.to_string().starts_with(".tiltignore:"), "{err}");
    }
    let err = DockerIgnore::from_patterns("/ctx", "ignore=", &["a", "[z-a]"]).unwrap_err();
    assert_eq!(err.origin.to_string(), "ignore=:2");
}

#[test]
fn list_entries_are_not_comments() {
    // In a list (Tiltfile ignore=) a leading # is a literal pattern.
    let m = DockerIgnore::from_patterns("/ctx", "ignore=", &["#tmp#"]).unwrap();
    assert!(m.matches_rel("#tmp#"));
    let f = DockerIgnore::parse("/ctx", "f", "#tmp#\n").unwrap();
    assert!(f.is_empty());
}

#[test]
fn bom_and_crlf_are_handled() {
    let m = DockerIgnore::parse("/ctx", "f", "\u{FEFF}a.txt\r\nb.txt\r\n").unwrap();
    assert!(m.matches_rel("a.txt"));
    assert!(m.matches_rel("b.txt"));
}

#[test]
fn from_file_reads_and_tolerates_missing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(".dockerignore");
    std::fs::write(&f, "build\n").unwrap();
    let m = DockerIgnore::from_file(dir.path(), &f).unwrap();
    assert!(m.matches(&dir.path().join("build/x")));
    let missing = DockerIgnore::from_file(dir.path(), &dir.path().join("nope")).unwrap();
    assert!(missing.is_empty());
}

#[test]
fn skip_dir_answers() {
    let m = DockerIgnore::from_patterns(
        "/ctx",
        "t",
        &["node_modules", "vendor", "!vendor/keep", "dist/*", "*.tmp"],
    )
    .unwrap();
    let skip = |d: &str| m.can_skip_dir_rel(d);
    assert!(skip("node_modules"));
    assert!(skip("node_modules/a/b"));
    assert!(!skip("vendor"), "an exception lives under vendor");
    assert!(skip("vendor/other"));
    assert!(!skip("vendor/keep"));
    assert!(
        !skip("dist"),
        "dist itself is not ignored, only its entries"
    );
    assert!(skip("dist/sub"));
    assert!(skip("x.tmp"));
    assert!(!skip("src"));
    assert!(!skip("."));
    // Paths outside the base are never skipped.
    assert!(!m.can_skip_dir(Path::new("/other/node_modules")));
}

#[test]
fn go_regex_is_exposed_for_debugging() {
    let m = DockerIgnore::from_patterns("/", "t", &["**/*.go", "foo", "a/**"]).unwrap();
    let res: Vec<Option<&str>> = m.patterns().iter().map(|p| p.go_regex()).collect();
    assert_eq!(res, vec![Some("^(.*/)?[^/]*\\.go$"), None, None]);
}

#[test]
fn gitignore_rules() {
    let root = PathBuf::from("/repo");
    let g = GitIgnore::from_lines(&root, &["target/", "*.o", "!keep.o", "/build"]).unwrap();
    assert!(g.matches(Path::new("/repo/target"), true));
    assert!(
        g.matches(Path::new("/repo/a/target/x.rs"), false),
        "parent dir ignored"
    );
    assert!(
        !g.matches(Path::new("/repo/target"), false),
        "target/ only matches dirs"
    );
    assert!(g.matches(Path::new("/repo/src/x.o"), false));
    assert!(!g.matches(Path::new("/repo/src/keep.o"), false));
    assert!(g.matches(Path::new("/repo/build"), true));
    assert!(!g.matches(Path::new("/repo/sub/build"), true), "anchored");
    assert!(g.can_skip_dir(Path::new("/repo/target")));
    assert!(!g.matches(Path::new("/elsewhere/x.o"), false));
    let e = g.explain(Path::new("/repo/src/x.o"), false).unwrap();
    assert_eq!(e.pattern, "*.o");
    assert!(e.ignored);
}

#[test]
fn gitignore_from_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
    let g = GitIgnore::from_files(dir.path(), &[dir.path().join(".gitignore")]).unwrap();
    assert!(g.matches(&dir.path().join("a/b.log"), false));
    let e = g.explain(&dir.path().join("b.log"), false).unwrap();
    assert!(e.origin.source.ends_with(".gitignore"), "{e:?}");
}

#[test]
fn ignores_compose_with_or() {
    let docker = DockerIgnore::from_patterns("/repo/app", "dockerignore", &["*.md"]).unwrap();
    let tilt = DockerIgnore::from_patterns("/repo", ".tiltignore", &["app/tmp"]).unwrap();
    let git = GitIgnore::from_lines(Path::new("/repo"), &["*.pyc"]).unwrap();
    let all = Ignores::new([
        IgnoreRule::from(docker),
        IgnoreRule::from(tilt),
        IgnoreRule::from(git),
    ]);
    assert!(all.is_ignored(Path::new("/repo/app/README.md"), false));
    assert!(
        !all.is_ignored(Path::new("/repo/README.md"), false),
        "docker rule is anchored at app/"
    );
    assert!(all.is_ignored(Path::new("/repo/app/tmp/x"), false));
    assert!(all.is_ignored(Path::new("/repo/app/x.pyc"), false));
    assert!(!all.is_ignored(Path::new("/repo/app/main.py"), false));
    assert!(all.can_skip_dir(Path::new("/repo/app/tmp")));
    assert!(!all.can_skip_dir(Path::new("/repo/app")));
    let e = all.explain(Path::new("/repo/app/tmp/x"), false).unwrap();
    assert_eq!(e.origin.source.as_ref(), ".tiltignore");
    assert!(Ignores::none().explain(Path::new("/x"), false).is_none());
}

/// Property (deterministic pseudo-random search): whenever `can_skip_dir(d)`
/// holds, every path below `d` is ignored -- pruning never hides a change the
/// build context would contain.
#[test]
fn skip_dir_never_hides_a_kept_path() {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let atoms = ["a", "b", "ab", "*", "?", "**", "[ab]", "a*", "*b"];
    let names = ["a", "b", "ab", "ba", "c"];
    for _ in 0..400 {
        let n_pats = 1 + next(4);
        let mut pats = Vec::new();
        for _ in 0..n_pats {
            let depth = 1 + next(3);
            let mut p: Vec<&str> = (0..depth).map(|_| atoms[next(atoms.len())]).collect();
            if next(2) == 0 {
                p.dedup();
            }
            let mut s = p.join("/");
            if next(3) == 0 {
                s.insert(0, '!');
            }
            pats.push(s);
        }
        let Ok(m) = DockerIgnore::from_patterns("/c", "prop", &pats) else {
            continue;
        };
        for _ in 0..20 {
            let depth = 1 + next(4);
            let comps: Vec<&str> = (0..depth).map(|_| names[next(names.len())]).collect();
            let path = comps.join("/");
            let kept = !m.matches_rel(&path);
            for k in 1..comps.len() {
                let dir = comps[..k].join("/");
                assert!(
                    !(kept && m.can_skip_dir_rel(&dir)),
                    "patterns {pats:?}: dir {dir} skippable but {path} kept"
                );
            }
        }
    }
}

#[test]
fn filewatch_ignore_defs() {
    let ig = Ignores::from_defs([
        ("/repo/app", vec!["*.log".to_string()]),
        ("/repo/generated", vec![]),
    ])
    .unwrap();
    assert!(ig.is_ignored(Path::new("/repo/app/x.log"), false));
    assert!(!ig.is_ignored(Path::new("/repo/x.log"), false));
    assert!(ig.is_ignored(Path::new("/repo/generated"), true));
    assert!(ig.is_ignored(Path::new("/repo/generated/a/b"), false));
    assert!(!ig.is_ignored(Path::new("/repo/generated2"), false));
    assert!(ig.can_skip_dir(Path::new("/repo/generated/a")));
    let e = ig.explain(Path::new("/repo/generated/a"), false).unwrap();
    assert!(
        e.ignored && e.origin.source.contains("/repo/generated"),
        "{e:?}"
    );
    let e = ig.explain(Path::new("/repo/app/x.log"), false).unwrap();
    assert_eq!(e.origin.to_string(), "ignore (base /repo/app):1");
}

#[test]
fn editor_temp_files_are_ignored_anywhere() {
    let ig = Ignores::new([stilt_watch::ignore::ephemeral_rule()]);
    for p in [
        "/r/src/4913",
        "/r/main.go~",
        "/r/a/.main.go.swp",
        "/r/.#main.go",
        "/r/a/#main.go#",
        "/r/flymake_x.go",
        "/r/a.go___jb_tmp___",
        "/r/.idea/workspace.xml",
        "/r/b/.x.kate-swp",
    ] {
        assert!(ig.is_ignored(Path::new(p), false), "{p}");
    }
    for p in ["/r/main.go", "/r/swp", "/r/.idea", "/r/a/b.swp"] {
        assert!(!ig.is_ignored(Path::new(p), false), "{p}");
    }
}
