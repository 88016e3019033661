use super::*;

#[test]
fn locate_urls() {
    let remote = |url: &str, rel: &str| {
        Ok(Location::Remote {
            url: url.to_owned(),
            rel: PathBuf::from(rel),
        })
    };
    let cases: Vec<(&str, Result<Location, Error>)> = vec![
        (
            "https://github.com/tilt-dev/tilt-extensions",
            remote(
                "https://github.com/tilt-dev/tilt-extensions",
                "github.com/tilt-dev/tilt-extensions",
            ),
        ),
        (
            "git://127.0.0.1:9418/exts.git",
            remote("git://127.0.0.1:9418/exts.git", "127.0.0.1_9418/exts"),
        ),
        (
            "http://localhost:8000/a/b/",
            remote("http://localhost:8000/a/b/", "localhost_8000/a/b"),
        ),
        (
            "ssh://git@example.com/x/y.git",
            remote("ssh://git@example.com/x/y.git", "example.com/x/y"),
        ),
        ("file:///srv/exts", Ok(Location::Local("/srv/exts".into()))),
        ("/srv/exts", Ok(Location::Local("/srv/exts".into()))),
        (
            "file://srv/exts",
            Err(Error::RelativePath("file://srv/exts".into())),
        ),
        ("exts", Err(Error::UnsupportedUrl("exts".into()))),
        ("ftp://x/y", Err(Error::UnsupportedUrl("ftp://x/y".into()))),
        (
            "https://x/../etc",
            Err(Error::UnsupportedUrl("https://x/../etc".into())),
        ),
        ("https://", Err(Error::UnsupportedUrl("https://".into()))),
    ];
    for (url, want) in cases {
        assert_eq!(locate(url), want, "{url}");
    }
}

#[test]
fn decisions() {
    let s = |exists, pinned, has_ref, fetched_this_session, force| State {
        exists,
        pinned,
        has_ref,
        fetched_this_session,
        force,
    };
    use Action::*;
    let cases = [
        // (exists, pinned, has_ref, fetched this session, force) → action
        (s(false, false, false, false, false), Clone),
        (s(false, true, false, true, true), Clone),
        (s(true, false, false, false, false), Fetch),
        (s(true, false, false, true, false), Use),
        (s(true, false, false, true, true), Fetch),
        (s(true, true, true, false, false), Checkout),
        (s(true, true, true, true, false), Checkout),
        (s(true, true, false, true, false), Fetch),
        (s(true, true, true, true, true), Fetch),
    ];
    for (state, want) in cases {
        assert_eq!(decide(state), want, "{state:?}");
    }
}

#[test]
fn pinned_refs() {
    for (r, want) in [("", false), ("HEAD", false), ("v1", true), ("abc123", true)] {
        assert_eq!(is_pinned(r), want, "{r}");
    }
}

#[test]
fn local_repos() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("file://{}", d.path().display());
    let c = Cache::new(d.path().join("cache"));
    let got = c.ensure(&url, "", false).unwrap();
    assert_eq!(got.path, d.path());
    assert_eq!(
        c.ensure(&url, "v1", false),
        Err(Error::RefOnLocal(url.clone()))
    );
    let missing = format!("{}/nope", d.path().display());
    assert!(matches!(
        c.ensure(&missing, "", false),
        Err(Error::NotADirectory { .. })
    ));
}

#[test]
fn git_messages_are_one_line() {
    assert_eq!(
        last_lines("Cloning...\n\nfatal: unable to connect\nfatal: x\n"),
        "Cloning...; fatal: unable to connect; fatal: x"
    );
    assert_eq!(last_lines(""), "git failed without a message");
}

#[test]
fn pinned_copies_have_their_own_directory() {
    let rel = Path::new("h/exts");
    for (r, want) in [
        ("", "h/exts"),
        ("HEAD", "h/exts"),
        ("v1", "h/exts@v1"),
        ("release/2.0", "h/exts@release_2.0"),
    ] {
        assert_eq!(pinned_rel(rel, r), PathBuf::from(want), "{r}");
    }
}
