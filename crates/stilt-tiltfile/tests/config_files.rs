//! The config-file set: every file the Tiltfile read is in it (so changing it re-runs the
//! Tiltfile), and nothing else is.

use std::path::Path;

use stilt_tiltfile::FakeHost;
use stilt_tiltfile::LoadRequest;
use stilt_tiltfile::load;

#[test]
fn config_files_are_exactly_what_the_tiltfile_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config_files");
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    let res = load(&LoadRequest::new(dir.join("Tiltfile"), &host)).expect("load");
    let cf = &res.config_files;
    for f in [
        "Tiltfile",
        "inc/Tiltfile",
        "data.txt",
        "app.yaml",
        "Dockerfile",
        ".dockerignore",
        ".tiltignore",
        "tilt_config.json",
    ] {
        assert!(
            cf.contains(&dir.join(f)),
            "{f} missing from config files: {cf:#?}"
        );
    }
    assert!(
        !cf.contains(&dir.join("unrelated.txt")),
        "unrelated.txt must not be a config file"
    );
    // The configs FileWatch watches the same set.
    let fw = res
        .objects
        .iter()
        .find(|o| o.kind() == "FileWatch" && o.name() == "configs:(Tiltfile)")
        .expect("configs:(Tiltfile) FileWatch")
        .to_value();
    let watched: Vec<&str> = fw["spec"]["watchedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for p in cf {
        assert!(
            watched.contains(&p.to_str().unwrap()),
            "{} not watched",
            p.display()
        );
    }
    // .tiltignore patterns become global ignores.
    assert_eq!(fw["spec"]["ignores"][0]["patterns"][0], "tmp/");
}

#[test]
fn config_files_are_kept_when_the_load_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/error_fail_in_include");
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    let err = load(&LoadRequest::new(dir.join("Tiltfile"), &host)).unwrap_err();
    assert!(err.config_files.contains(&dir.join("Tiltfile")));
    assert!(err.config_files.contains(&dir.join("sub/Tiltfile")));
    let loc = err.location.expect("location");
    assert_eq!(
        (loc.file, loc.line, loc.column),
        (dir.join("sub/Tiltfile"), 1, 1)
    );
}

#[test]
fn result_is_send() {
    fn is_send<T: Send + 'static>() {}
    is_send::<stilt_tiltfile::TiltfileResult>();
    is_send::<stilt_tiltfile::LoadError>();
}
