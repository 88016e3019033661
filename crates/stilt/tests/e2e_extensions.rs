//! End to end: `ext://` from git repositories served on loopback — `git daemon` (git://) and a
//! dumb-HTTP server (`stilt internal serve-dir` over a bare repo after `git update-server-info`) —
//! cloned into `$STILT_HOME/tilt_modules`, pinned by ref, used offline from the last good copy,
//! fetched again on `stilt ext fetch`; ExtensionRepo/Extension objects created through the API.
//! Run with `cargo test -p stilt --test e2e_extensions -- --ignored`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn git(dir: &Path, args: &[&str]) -> String {
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
        .expect("git is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A server process killed on drop.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    wait_until(Duration::from_secs(10), "the server's port", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// `git-daemon` itself (`git daemon` runs it as a child that a kill would leave behind).
fn git_daemon(base: &Path) -> (Server, u16) {
    let port = free_port();
    let exec_path = git(base, &["--exec-path"]);
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
    wait_port(port);
    (Server(child), port)
}

/// Dumb HTTP: static files of a bare repository.
fn http_server(base: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new(stilt_bin())
        .args(["internal", "serve-dir", "--port", &port.to_string()])
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    (Server(child), port)
}

/// Our test extension: `hello(name)` makes a local resource writing the greeting (read by the
/// extension from its own folder, so relative paths resolve against the extension file while it
/// loads) into `out-<name>.txt` next to the main Tiltfile; it counts with a `while` loop as real
/// extensions do.
const HELLO: &str = r#"
GREETING = str(read_file('greeting.txt')).strip()

def _count(s):
    n = 0
    while n < len(s) and s[n] != '-':
        n += 1
    return n

def hello(name):
    local_resource(name, cmd='echo %s %d > out-%s.txt' % (GREETING, _count(GREETING), name))
"#;

struct Repo {
    base: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let r = Repo { base };
        std::fs::create_dir_all(r.work()).unwrap();
        git(&r.work(), &["init", "-q"]);
        std::fs::create_dir_all(r.work().join("hello")).unwrap();
        std::fs::write(r.work().join("hello/Tiltfile"), HELLO).unwrap();
        r
    }
    fn work(&self) -> PathBuf {
        self.base.path().join("exts")
    }
    /// Commit a greeting; returns the commit.
    fn commit(&self, greeting: &str) -> String {
        std::fs::write(self.work().join("hello/greeting.txt"), greeting).unwrap();
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "-qm", greeting]);
        git(&self.work(), &["rev-parse", "HEAD"])
    }
    /// A bare copy for dumb HTTP (`exts.git` with the info files git's dumb protocol reads).
    fn publish_bare(&self) {
        let bare = self.base.path().join("exts.git");
        let _ = std::fs::remove_dir_all(&bare);
        git(
            self.base.path(),
            &["clone", "-q", "--bare", "exts", "exts.git"],
        );
        git(&bare, &["update-server-info"]);
    }
}

fn read(p: &Project, f: &str) -> String {
    std::fs::read_to_string(p.path(f)).unwrap_or_default()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ext_over_git_loads_pins_and_keeps_the_last_copy_offline() {
    let repo = Repo::new();
    repo.commit("greeting-v1");
    git(&repo.work(), &["tag", "v1"]);
    repo.commit("greeting-v2");
    let (daemon, port) = git_daemon(repo.base.path());
    let url = format!("git://127.0.0.1:{port}/exts");
    let p = Project::new(&format!(
        "v1alpha1.extension_repo(name='pinned', url='{url}', ref='v1')\n\
         v1alpha1.extension(name='hello-v1', repo_name='pinned', repo_path='hello')\n\
         load('ext://hello-v1', hello_v1='hello')\n\
         v1alpha1.extension_repo(name='latest', url='{url}', load_host='latest')\n\
         load('ext://latest/hello', 'hello')\n\
         hello_v1('a')\n\
         hello('b')\n"
    ));
    let out = p.ci(&["--timeout", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(read(&p, "out-a.txt"), "greeting-v1 8\n", "pinned to v1");
    assert_eq!(
        read(&p, "out-b.txt"),
        "greeting-v2 8\n",
        "unpinned: the default branch"
    );
    let cache = p
        .home
        .path()
        .join(format!("tilt_modules/127.0.0.1_{port}/exts"));
    assert!(
        cache.join("hello/Tiltfile").is_file(),
        "cloned into {cache:?}"
    );

    // The server is gone: a new session cannot fetch, uses the last good copy and says why.
    drop(daemon);
    let _ = std::fs::remove_file(p.path("out-b.txt"));
    let out = p.ci(&["--timeout", "60s"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(read(&p, "out-b.txt"), "greeting-v2 8\n");
    assert!(
        log.contains("may be stale") && log.contains(&url),
        "a warning naming the URL: {log}"
    );

    // No copy at all, offline: the load fails with an error naming the URL.
    let fresh = Project::new(&format!(
        "v1alpha1.extension_repo(name='latest', url='{url}', load_host='latest')\n\
         load('ext://latest/hello', 'hello')\nhello('c')\n"
    ));
    let out = fresh.ci(&["--timeout", "30s"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!("cloning extension repo {url}")),
        "the error names the URL: {log}"
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ext_over_dumb_http_as_the_default_repo() {
    let repo = Repo::new();
    repo.commit("greeting-http");
    repo.publish_bare();
    let (_server, port) = http_server(repo.base.path());
    let url = format!("http://127.0.0.1:{port}/exts.git");
    // The Tiltfile replaces the default repo, as users point Stilt at a mirror.
    let p = Project::new(&format!(
        "v1alpha1.extension_repo(name='default', url='{url}')\n\
         load('ext://hello', 'hello')\nhello('d')\n"
    ));
    let out = p.ci(&["--timeout", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(read(&p, "out-d.txt"), "greeting-http 8\n");
    assert!(
        p.home
            .path()
            .join(format!("tilt_modules/127.0.0.1_{port}/exts/hello/Tiltfile"))
            .is_file()
    );
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn ext_fetch_updates_a_running_tiltfile_and_api_objects_resolve() {
    let repo = Repo::new();
    repo.commit("greeting-one");
    let (_daemon, port) = git_daemon(repo.base.path());
    let url = format!("git://127.0.0.1:{port}/exts");
    let p = Project::new(&format!(
        "v1alpha1.extension_repo(name='latest', url='{url}', load_host='latest')\n\
         load('ext://latest/hello', 'hello')\nhello('e')\n"
    ));
    let _up = p.up();
    wait_until(Duration::from_secs(60), "the first greeting", || {
        read(&p, "out-e.txt") == "greeting-one 8\n"
    });
    // Upstream moves on; a running Stilt does not see it until asked.
    let two = repo.commit("greeting-two");
    let out = p.run(&["ext", "fetch", "latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&two), "{}", text(&out));
    wait_until(
        Duration::from_secs(60),
        "the Tiltfile reloaded with the new extension",
        || read(&p, "out-e.txt") == "greeting-two 8\n",
    );
    let r = p.get_json("extensionrepo", "latest").unwrap();
    assert_eq!(r["status"]["checkoutRef"], two.as_str());
    assert!(r["status"]["lastFetchedAt"].is_string(), "{r}");

    // Objects created through the API behave as the Tiltfile's: the repo is cloned (its own
    // cache path for a pinned ref is the same copy), the Extension resolves or says why not.
    p.write(
        "api.yaml",
        &format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: ExtensionRepo\nmetadata:\n  name: api-repo\n\
             spec:\n  url: {url}\n---\n\
             apiVersion: tilt.dev/v1alpha1\nkind: Extension\nmetadata:\n  name: api-hello\n\
             spec:\n  repoName: api-repo\n  repoPath: hello\n---\n\
             apiVersion: tilt.dev/v1alpha1\nkind: Extension\nmetadata:\n  name: api-missing\n\
             spec:\n  repoName: api-repo\n  repoPath: nope\n---\n\
             apiVersion: tilt.dev/v1alpha1\nkind: Extension\nmetadata:\n  name: api-no-repo\n\
             spec:\n  repoName: no-such-repo\n  repoPath: hello\n"
        ),
    );
    let out = p.run(&["apply", "-f", "api.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let cache = p
        .home
        .path()
        .join(format!("tilt_modules/127.0.0.1_{port}/exts"));
    wait_until(
        Duration::from_secs(60),
        "the API-created repo's status",
        || {
            p.get_json("extensionrepo", "api-repo")
                .is_some_and(|r| r["status"]["path"] == cache.display().to_string().as_str())
        },
    );
    let want = cache.join("hello/Tiltfile").display().to_string();
    wait_until(
        Duration::from_secs(30),
        "the API-created extension's path",
        || {
            p.get_json("extension", "api-hello")
                .is_some_and(|e| e["status"]["path"] == want.as_str())
        },
    );
    wait_until(
        Duration::from_secs(30),
        "the missing extension's error",
        || {
            p.get_json("extension", "api-missing").is_some_and(|e| {
                e["status"]["error"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("no extension tiltfile found at"))
            })
        },
    );
    wait_until(
        Duration::from_secs(30),
        "the repo-less extension's error",
        || {
            p.get_json("extension", "api-no-repo")
                .is_some_and(|e| e["status"]["error"] == "extension repo not found: no-such-repo")
        },
    );
    // Pinning an API-created repo to a ref it has: checked out without the network.
    let out = p.run(&[
        "patch",
        "extensionrepo",
        "api-repo",
        "--type",
        "merge",
        "-p",
        &format!("{{\"spec\":{{\"url\":\"{url}\",\"ref\":\"{two}\"}}}}"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until(Duration::from_secs(30), "the pinned checkout", || {
        p.get_json("extensionrepo", "api-repo")
            .is_some_and(|r| r["status"]["checkoutRef"] == two.as_str())
    });
}
