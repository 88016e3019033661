//! Against a real `git daemon` on loopback: clone, pin by tag, keep the copy offline, fetch when
//! asked.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stilt_extrepo::{Cache, Error};

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(base: &Path, port: u16) -> Daemon {
    // git-daemon itself (`git daemon` would run it as a child that outlives a kill).
    let exec_path = sh(base, &["--exec-path"]);
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args([
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
        ])
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "git daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn commit(repo: &Path, text: &str) -> String {
    std::fs::create_dir_all(repo.join("hello")).unwrap();
    std::fs::write(repo.join("hello/Tiltfile"), text).unwrap();
    sh(repo, &["add", "-A"]);
    sh(repo, &["commit", "-qm", text]);
    sh(repo, &["rev-parse", "HEAD"])
}

#[test]
fn clone_pin_offline_and_fetch_on_request() {
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("exts");
    std::fs::create_dir_all(&repo).unwrap();
    sh(&repo, &["init", "-q"]);
    let v1 = commit(&repo, "v = 1\n");
    sh(&repo, &["tag", "v1"]);
    let v2 = commit(&repo, "v = 2\n");
    let port = free_port();
    let d = daemon(base.path(), port);
    let url = format!("git://127.0.0.1:{port}/exts");
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());
    let want_path = home
        .path()
        .join(format!("tilt_modules/127.0.0.1_{port}/exts"));

    // Unpinned: the default branch.
    let c = cache.ensure(&url, "", false).unwrap();
    assert_eq!(c.path, want_path);
    assert_eq!(c.checkout_ref, v2);
    assert!(c.changed && c.stale_reason.is_empty());
    assert_eq!(
        std::fs::read_to_string(c.path.join("hello/Tiltfile")).unwrap(),
        "v = 2\n"
    );

    // Pinned to a tag: its own copy with the tag's files.
    let c = cache.ensure(&url, "v1", false).unwrap();
    assert_eq!(c.checkout_ref, v1);
    assert_eq!(c.path, cache.path_of(&url, "v1").unwrap());
    assert_ne!(c.path, want_path);
    assert_eq!(
        std::fs::read_to_string(c.path.join("hello/Tiltfile")).unwrap(),
        "v = 1\n"
    );

    // A new commit upstream is not seen until asked (fetched once this session already).
    let v3 = commit(&repo, "v = 3\n");
    let c = cache.ensure(&url, "", false).unwrap();
    assert_eq!(
        c.checkout_ref, v2,
        "unpinned, already fetched this session: the copy as is"
    );
    let c = cache.ensure(&url, "", true).unwrap();
    assert_eq!(c.checkout_ref, v3);
    assert!(c.changed);

    // Offline: the last good copy, with a reason naming the URL.
    drop(d);
    let c = cache.ensure(&url, "", true).unwrap();
    assert_eq!(c.checkout_ref, v3);
    assert!(c.stale_reason.contains(&url), "{}", c.stale_reason);
    // A pinned copy still works offline; a ref never fetched is an error naming the URL.
    assert_eq!(cache.ensure(&url, "v1", false).unwrap().checkout_ref, v1);
    match cache.ensure(&url, "v9", false) {
        Err(e @ Error::Clone { .. }) => assert!(e.to_string().contains(&url), "{e}"),
        other => panic!("{other:?}"),
    }
    // No copy at all: a clone error naming the URL, and nothing left behind.
    let other = Cache::in_home(&home.path().join("other"));
    match other.ensure(&url, "", false) {
        Err(e @ Error::Clone { .. }) => assert!(e.to_string().contains(&url), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(!other.path_of(&url, "").unwrap().exists());
}
