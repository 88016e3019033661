//! `local_git_repo(path).paths(p)`: the repository root joined with `p`; a folder without
//! `.git/` is an error naming it.

use std::path::PathBuf;
use stilt_tiltfile::{FakeHost, LoadRequest, load};

fn project(name: &str, tiltfile: &str, git: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stilt-git-repo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    if git {
        std::fs::create_dir_all(dir.join(".git")).unwrap();
    }
    std::fs::write(dir.join("sub/Tiltfile"), tiltfile).unwrap();
    dir
}

#[test]
fn paths_join_onto_the_repository_root() {
    let dir = project(
        "ok",
        "repo = local_git_repo('..')\nprint(repo.paths('app/x.txt'))\n",
        true,
    );
    let tiltfile = dir.join("sub/Tiltfile");
    let host = FakeHost {
        cwd: dir.join("sub"),
        ..FakeHost::default()
    };
    let r = load(&LoadRequest::new(&tiltfile, &host)).unwrap();
    let want = dir.join("app/x.txt");
    assert!(r.logs.contains(&want.display().to_string()), "{}", r.logs);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_without_git_is_an_error_naming_it() {
    let dir = project("bad", "local_git_repo('..')\n", false);
    let tiltfile = dir.join("sub/Tiltfile");
    let host = FakeHost {
        cwd: dir.join("sub"),
        ..FakeHost::default()
    };
    let err = load(&LoadRequest::new(&tiltfile, &host)).unwrap_err();
    let want = format!("{} isn't a valid git repo", dir.display());
    assert!(err.message.contains(&want), "{}", err.message);
    assert_eq!(err.location.map(|l| l.line), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}
