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

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn an_extension_created_through_the_api_runs_as_its_own_tiltfile_until_deleted() {
    let exts = tempfile::tempdir().unwrap();
    let p = Project::new("print('the main Tiltfile')\n");
    let out = p.path("greeted.txt");
    std::fs::create_dir_all(exts.path().join("greet")).unwrap();
    std::fs::write(
        exts.path().join("greet/Tiltfile"),
        format!(
            "local_resource('api-greet', cmd='echo greeted by %s > {}' % str(read_file('who.txt')).strip())\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::write(exts.path().join("greet/who.txt"), "one\n").unwrap();
    let _up = p.up();
    p.write(
        "api.yaml",
        &format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: ExtensionRepo\nmetadata:\n  name: local-exts\n\
             spec:\n  url: file://{}\n---\n\
             apiVersion: tilt.dev/v1alpha1\nkind: Extension\nmetadata:\n  name: greet\n\
             spec:\n  repoName: local-exts\n  repoPath: greet\n",
            exts.path().display()
        ),
    );
    let applied = p.run(&["apply", "-f", "api.yaml"]);
    assert!(applied.status.success(), "{}", text(&applied));

    // As in Tilt: a Tiltfile object named after the Extension runs it; its resources are
    // labelled with it and run like the main Tiltfile's.
    wait_until(
        Duration::from_secs(60),
        "the extension's resource to run",
        || read(&p, "greeted.txt") == "greeted by one\n",
    );
    let tf = p
        .get_json("tiltfile", "greet")
        .expect("the extension's Tiltfile object");
    assert_eq!(tf["metadata"]["ownerReferences"][0]["kind"], "Extension");
    let ui = p.get_json("uiresource", "api-greet").unwrap();
    assert_eq!(
        ui["metadata"]["labels"]["extension.greet"],
        "extension.greet"
    );
    assert!(p.get_json("uiresource", "greet").is_some());

    // What the extension's Tiltfile reads is watched: an edit reloads it.
    std::fs::write(exts.path().join("greet/who.txt"), "two\n").unwrap();
    wait_until(Duration::from_secs(60), "the reloaded extension", || {
        read(&p, "greeted.txt") == "greeted by two\n"
    });

    // Deleting the Extension deletes its Tiltfile object and everything that made.
    let deleted = p.run(&["delete", "extension", "greet"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    wait_until(
        Duration::from_secs(30),
        "the extension's objects gone",
        || {
            p.get_json("tiltfile", "greet").is_none()
                && p.get_json("uiresource", "api-greet").is_none()
                && p.get_json("uiresource", "greet").is_none()
                && p.get_json("cmd", "api-greet:update").is_none()
        },
    );
    assert!(p.get_json("uiresource", "(Tiltfile)").is_some());
}

// ---------------------------------------------------------------------------------------------
// Our own small extensions, written in the shape of the tilt-extensions people load most
// (dotenv, uibutton, namespace/configmap/secret, restart_process), served over git like the
// default repo. Each asserts the outcome the real one exists for.

/// A repository of our own extensions, served by `git daemon`; returns the Tiltfile line
/// registering it as the default repo.
fn own_extensions(files: &[(&str, &str)]) -> (tempfile::TempDir, Server, String) {
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("own");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    for (path, text) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "own extensions"]);
    let (server, port) = git_daemon(base.path());
    let line =
        format!("v1alpha1.extension_repo(name='default', url='git://127.0.0.1:{port}/own')\n");
    (base, server, line)
}

/// dotenv's shape: a `while` loop over the lines of a file, `os.putenv` per variable; local
/// resources see the variables (Tilt's processes inherit its environment).
const OWN_DOTENV: &str = r#"
def envfile(fn='.env'):
    if not os.path.exists(fn):
        warn('no %s' % fn)
        return
    lines = str(read_file(fn)).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith('#'):
            continue
        k, v = line.split('=', 1)
        if v.startswith('"') and v.endswith('"'):
            v = v[1:-1]
        os.putenv(k.strip(), v)
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_dotenv_extension_reaches_local_resources() {
    let (_base, _server, repo) = own_extensions(&[("envfile/Tiltfile", OWN_DOTENV)]);
    let p = Project::new(&format!(
        "{repo}load('ext://envfile', 'envfile')\nenvfile()\n\
         local_resource('show', cmd='echo \"$GREETING|$EMPTYISH|$OTHER\" > shown.txt', env={{'OTHER': 'explicit'}})\n"
    ));
    p.write(
        ".env",
        "# settings\nGREETING=\"hello there\"\n\nEMPTYISH=x=y\nOTHER=from-file\n",
    );
    let out = p.ci(&["--timeout", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(read(&p, "shown.txt"), "hello there|x=y|explicit\n");
}

/// uibutton's shape: a UIButton with inputs and a Cmd started by it.
const OWN_BUTTON: &str = r#"
def button(name, argv, resource, inputs=[]):
    v1alpha1.ui_button(name=name, text=name, location={'component_type': 'Resource', 'component_id': resource}, inputs=inputs)
    v1alpha1.cmd(name='btn-' + name, args=argv, dir=os.getcwd(), start_on={'ui_buttons': [name]})

def text(name, default=''):
    return {'name': name, 'text': {'default_value': default}}

def flag(name):
    return {'name': name, 'bool': {'true_string': 'on', 'false_string': 'off'}}

def choice(name, choices):
    return {'name': name, 'choice': {'choices': choices}}
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_button_extension_passes_inputs_as_env() {
    let (_base, _server, repo) = own_extensions(&[("button/Tiltfile", OWN_BUTTON)]);
    let p = Project::new(&format!(
        "{repo}load('ext://button', 'button', 'text', 'flag', 'choice')\n\
         local_resource('app', cmd='true')\n\
         button('say', ['sh', '-c', 'echo \"$MSG|$LOUD|$COLOR\" > said.txt'], 'app', \
         inputs=[text('MSG', 'hi'), flag('LOUD'), choice('COLOR', ['red', 'blue'])])\n"
    ));
    let _up = p.up();
    wait_until(Duration::from_secs(30), "the button", || {
        p.get_json("uibutton", "say").is_some()
    });
    // The Cmd waits for a click; a click with inputs runs it with them in its environment.
    for (msg, loud, color, want) in [
        ("first click", true, "blue", "first click|on|blue\n"),
        ("second", false, "green", "second|off|red\n"),
    ] {
        let now = chrono_now();
        let patch = serde_json::json!({"status": {"lastClickedAt": now, "inputs": [
            {"name": "MSG", "text": {"value": msg}},
            {"name": "LOUD", "bool": {"value": loud}},
            {"name": "COLOR", "choice": {"value": color}},
        ]}});
        let out = p.run(&[
            "patch",
            "uibutton",
            "say",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        wait_until(Duration::from_secs(30), want, || {
            read(&p, "said.txt") == want
        });
    }
}

/// RFC 3339 with microseconds, now (a click time).
fn chrono_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// namespace / configmap / secret's shape: YAML made by `kubectl create --dry-run` in `local()`,
/// applied with `k8s_yaml`, grouped under a resource.
const OWN_K8S_OBJECTS: &str = r#"
def _yaml(args):
    return local(['kubectl', 'create'] + args + ['--dry-run=client', '-o', 'yaml'], quiet=True)

def ns_create(name):
    k8s_yaml(_yaml(['namespace', name]))

def configmap_create(name, namespace, from_file):
    k8s_yaml(_yaml(['configmap', name, '-n', namespace, '--from-file=' + from_file]))

def secret_create(name, namespace, literals):
    k8s_yaml(_yaml(['secret', 'generic', name, '-n', namespace] + ['--from-literal=%s=%s' % (k, v) for k, v in literals.items()]))
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_k8s_objects_extension_creates_namespace_configmap_secret() {
    require_cluster();
    let (_base, _server, repo) = own_extensions(&[("k8sobj/Tiltfile", OWN_K8S_OBJECTS)]);
    let ns = format!("stilt-ext-{}", free_port());
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n{repo}\
         load('ext://k8sobj', 'ns_create', 'configmap_create', 'secret_create')\n\
         ns_create('{ns}')\nconfigmap_create('conf', '{ns}', 'conf.txt')\n\
         secret_create('creds', '{ns}', {{'token': 's3cr3t'}})\n\
         k8s_resource(new_name='objects', objects=['{ns}:namespace', 'conf:configmap', 'creds:secret'])\n"
    ));
    p.write("conf.txt", "level=debug\n");
    let out = p.ci(&["--timeout", "120s"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = kubectl(&[
        "get",
        "configmap",
        "conf",
        "-n",
        &ns,
        "-o",
        "jsonpath={.data.conf\\.txt}",
    ]);
    let token = kubectl(&[
        "get",
        "secret",
        "creds",
        "-n",
        &ns,
        "-o",
        "jsonpath={.data.token}",
    ]);
    kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    assert_eq!(conf, "level=debug\n");
    assert_eq!(token, "czNjcjN0", "base64 of s3cr3t");
}

/// restart_process's shape: the user's image becomes the base of one whose entrypoint is a
/// wrapper (copied from a helper image) that restarts the command when a file changes; live
/// update ends by touching that file.
const OWN_RESTART: &str = r#"
_ext_dir = os.getcwd()

def build_with_restart(ref, context, entrypoint, live_update, helper):
    base = ref + '-restart-base'
    docker_build(base, context)
    df = '''
FROM {helper} as helper
FROM {base}
COPY --from=helper /restart-wrapper /
ENTRYPOINT ["/restart-wrapper", "/tmp/.restart", "sh", "-c", "{entry}"]
'''.format(helper=helper, base=base, entry=entrypoint)
    docker_build(ref, _ext_dir, dockerfile_contents=df,
                 live_update=live_update + [run('date > /tmp/.restart')])
"#;

/// The helper image's wrapper (ours): run the command, restart it when the file changes.
const RESTART_WRAPPER: &str = r#"#!/bin/sh
watch="$1"; shift
touch "$watch"
while true; do
  "$@" &
  child=$!
  last=$(ls -l --full-time "$watch")
  while kill -0 "$child" 2>/dev/null && [ "$(ls -l --full-time "$watch")" = "$last" ]; do sleep 0.2; done
  if [ "$(ls -l --full-time "$watch")" = "$last" ]; then wait "$child"; exit $?; fi
  kill "$child" 2>/dev/null; wait "$child" 2>/dev/null
done
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_restart_extension_restarts_the_process_after_live_update() {
    require_cluster();
    // The helper image, built locally (nothing can be pulled).
    let helper_dir = tempfile::tempdir().unwrap();
    std::fs::write(helper_dir.path().join("restart-wrapper"), RESTART_WRAPPER).unwrap();
    std::fs::write(
        helper_dir.path().join("Dockerfile"),
        "FROM stilt-test/busybox\nCOPY restart-wrapper /\nRUN chmod +x /restart-wrapper\n",
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "stilt-e2e/restart-helper"])
        .arg(helper_dir.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let (_base, _server, repo) = own_extensions(&[("restart/Tiltfile", OWN_RESTART)]);
    let port = free_port();
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n{repo}load('ext://restart', 'build_with_restart')\n\
         build_with_restart('stilt-e2e-restart', '.', \
         'mkdir -p /www && cp /app/msg.txt /www/msg.txt && exec httpd -f -p 8000 -h /www', \
         [sync('app', '/app')], helper='stilt-e2e/restart-helper')\n\
         k8s_yaml('deploy.yaml')\n\
         k8s_resource('stilt-e2e-restart', port_forwards=['{port}:8000'])\n"
    ));
    p.write("Dockerfile", "FROM stilt-test/busybox\nCOPY app /app\n");
    p.write("app/msg.txt", "v1\n");
    p.write(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stilt-e2e-restart\nspec:\n  selector:\n    matchLabels: {app: stilt-e2e-restart}\n  template:\n    metadata:\n      labels: {app: stilt-e2e-restart}\n    spec:\n      containers:\n      - name: app\n        image: stilt-e2e-restart\n        ports:\n        - containerPort: 8000\n",
    );
    let up = p.up();
    wait_until(Duration::from_secs(120), "v1 served", || {
        http_get(port, "/msg.txt").as_deref() == Some("v1\n")
    });
    let pod = kubectl(&[
        "get",
        "pods",
        "-l",
        "app=stilt-e2e-restart",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    // /www is written only when the process starts: v2 there means it was restarted, in the
    // same pod (a live update, not a redeploy).
    p.write("app/msg.txt", "v2\n");
    wait_until(Duration::from_secs(60), "v2 served after a restart", || {
        http_get(port, "/msg.txt").as_deref() == Some("v2\n")
    });
    let log = up.log_text();
    assert!(log.contains("Live update"), "{log}");
    let now = kubectl(&[
        "get",
        "pods",
        "-l",
        "app=stilt-e2e-restart",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(
        now.split_whitespace().any(|n| n == pod),
        "same pod {pod}: {now}"
    );
    drop(up);
    kubectl(&["delete", "deployment", "stilt-e2e-restart", "--wait=false"]);
}

/// helm_resource's shape: `k8s_custom_deploy` whose apply command installs a chart with the helm
/// CLI and prints the YAML of what it deployed; the delete command uninstalls it.
const OWN_CHART: &str = r#"
def chart_resource(name, chart, namespace, flags=[]):
    apply = 'helm upgrade --install --namespace %s %s %s %s >/dev/null && helm get manifest --namespace %s %s | kubectl get -o yaml -f -' % (
        namespace, name, chart, ' '.join(flags), namespace, name)
    k8s_custom_deploy(name, apply_cmd=['sh', '-c', apply],
                      delete_cmd=['helm', 'uninstall', '--namespace', namespace, name], deps=[chart])
    # A chart without workloads has no pods to wait for (helm_resource passes pod_readiness on).
    k8s_resource(name, pod_readiness='ignore')
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_chart_extension_installs_a_local_chart_with_helm() {
    require_cluster();
    let (_base, _server, repo) = own_extensions(&[("chart/Tiltfile", OWN_CHART)]);
    let release = format!("stilt-ext-chart-{}", free_port());
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n{repo}load('ext://chart', 'chart_resource')\n\
         chart_resource('{release}', './mychart', 'default', flags=['--set', 'greeting=from-set'])\n"
    ));
    p.write(
        "mychart/Chart.yaml",
        "apiVersion: v2\nname: mychart\nversion: 0.1.0\n",
    );
    p.write("mychart/values.yaml", "greeting: from-values\n");
    p.write(
        "mychart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting }}\n",
    );
    let out = p.ci(&["--timeout", "120s"]);
    let got = kubectl(&[
        "get",
        "configmap",
        &release,
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    let _ = Command::new("helm").args(["uninstall", &release]).output();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(got, "from-set");
}

/// file_sync_only's shape: no build (a `custom_build` of `:` naming the image the manifests
/// already run), live update only, and a first sync found by `type(step)` and parsed out of
/// `str(step)` (a local_resource that touches the synced directory once the workload is up).
const OWN_SYNC_ONLY: &str = r#"
def sync_only(image, manifest, live_update):
    workloads = [o['metadata']['name'] for o in read_yaml_stream(manifest)]
    custom_build(image, ':', tag='latest', deps=['.'], skips_local_docker=True,
                 live_update=live_update)
    k8s_yaml(manifest)
    for step in live_update:
        if type(step) == 'live_update_sync_step':
            local_path = str(step).split("'")[1]
            local_resource('first-sync-' + workloads[0], 'touch %s' % local_path,
                           resource_deps=workloads)
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_sync_only_extension_syncs_into_a_workload_it_never_built() {
    require_cluster();
    let (_base, _server, repo) = own_extensions(&[("synconly/Tiltfile", OWN_SYNC_ONLY)]);
    let port = free_port();
    let name = format!("e2e-synconly-{port}");
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n{repo}\
         load('ext://synconly', 'sync_only')\n\
         sync_only('localhost:5000/stilt-test/busybox', 'deploy.yaml', [sync('www', '/www')])\n\
         k8s_resource('{name}', port_forwards=['{port}:8000'])\n"
    ));
    p.write("www/index.html", "first sync\n");
    p.write(
        "deploy.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: localhost:5000/stilt-test/busybox:latest\n        command: [sh, -c, \"mkdir -p /www && exec httpd -f -p 8000 -h /www\"]\n"),
    );
    let _up = p.up();
    // The container starts with an empty /www: the page is there only through the first sync.
    wait_until(Duration::from_secs(180), "the first sync", || {
        http_get(port, "/index.html").as_deref() == Some("first sync\n")
    });
    p.write("www/index.html", "edited\n");
    wait_until(Duration::from_secs(60), "the edit synced", || {
        http_get(port, "/index.html").as_deref() == Some("edited\n")
    });
    assert!(p.run(&["down"]).status.success());
}

/// git_resource's shape: `git clone` run by `local()` at load time into a folder beside the main
/// Tiltfile (pinned to a branch, skipped when already there), and a resource served from what
/// was checked out.
const OWN_GIT_CHECKOUT: &str = r#"
def git_checkout(url, branch):
    target = os.path.join(config.main_dir, '.git-sources', os.path.basename(url))
    if not os.path.exists(target):
        local(['git', 'clone', '--quiet', '--depth', '1', '--branch', branch, url, target], quiet=True)
    return target
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_git_checkout_extension_serves_what_it_cloned() {
    let (base, _server, repo) = own_extensions(&[("gitcheckout/Tiltfile", OWN_GIT_CHECKOUT)]);
    // The repository to check out, served by the same daemon.
    let site = base.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    git(&site, &["init", "-q"]);
    std::fs::write(site.join("index.html"), "from the stable branch\n").unwrap();
    git(&site, &["add", "-A"]);
    git(&site, &["commit", "-qm", "stable"]);
    git(&site, &["branch", "stable"]);
    std::fs::write(site.join("index.html"), "unreleased\n").unwrap();
    git(&site, &["commit", "-qam", "main moves on"]);
    let daemon_port = repo
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let port = free_port();
    let p = Project::new(&format!(
        "{repo}load('ext://gitcheckout', 'git_checkout')\n\
         src = git_checkout('git://127.0.0.1:{daemon_port}/site', 'stable')\n\
         local_resource('site', serve_cmd='exec busybox httpd -f -p {port} -h ' + src)\n"
    ));
    let _up = p.up();
    wait_until(Duration::from_secs(60), "the checked-out page", || {
        http_get(port, "/index.html").as_deref() == Some("from the stable branch\n")
    });
    assert!(p.path(".git-sources/site/.git").exists());
}

/// helm_remote's shape: the chart is pulled from a chart repository over HTTP (`helm pull
/// --repo … --untar`) into a cache beside the main Tiltfile at load time, then rendered with
/// `helm()` and deployed as YAML.
const OWN_REMOTE_CHART: &str = r#"
def remote_chart(chart, repo_url, version, set=[]):
    cache = os.path.join(config.main_dir, '.helm', chart + '-' + version)
    if not os.path.exists(os.path.join(cache, chart)):
        local(['helm', 'pull', chart, '--repo', repo_url, '--version', version, '--untar',
               '--destination', cache], quiet=True)
    k8s_yaml(helm(os.path.join(cache, chart), set=set))
"#;

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn own_remote_chart_extension_pulls_from_a_chart_repository() {
    require_cluster();
    let (base, _server, repo) = own_extensions(&[("remotechart/Tiltfile", OWN_REMOTE_CHART)]);
    // A chart repository: a packaged chart and its index, served over HTTP.
    let name = format!("stilt-ext-remote-{}", free_port());
    let src = base.path().join("src/remote");
    std::fs::create_dir_all(src.join("templates")).unwrap();
    std::fs::write(
        src.join("Chart.yaml"),
        "apiVersion: v2\nname: remote\nversion: 1.2.3\n",
    )
    .unwrap();
    std::fs::write(src.join("values.yaml"), "greeting: from-values\n").unwrap();
    std::fs::write(
        src.join("templates/cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  greeting: {{{{ .Values.greeting }}}}\n"),
    )
    .unwrap();
    let charts = base.path().join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    let helm = |args: &[&str]| {
        let out = Command::new("helm")
            .args(args)
            .output()
            .expect("helm (scripts/go-tools)");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    helm(&[
        "package",
        src.to_str().unwrap(),
        "--destination",
        charts.to_str().unwrap(),
    ]);
    let (_http, http_port) = http_server(&charts);
    let url = format!("http://127.0.0.1:{http_port}");
    helm(&["repo", "index", charts.to_str().unwrap(), "--url", &url]);
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n{repo}load('ext://remotechart', 'remote_chart')\n\
         remote_chart('remote', '{url}', '1.2.3', set=['greeting=from-set'])\n\
         k8s_resource(new_name='chart', objects=['{name}:configmap'])\n"
    ));
    let out = p.ci(&["--timeout", "120s"]);
    let got = kubectl(&["get", "configmap", &name, "-o", "jsonpath={.data.greeting}"]);
    kubectl(&["delete", "configmap", &name, "--wait=false"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(got, "from-set");
    assert!(p.path(".helm/remote-1.2.3/remote/Chart.yaml").exists());
}
