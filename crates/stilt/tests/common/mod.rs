//! Running a real `stilt up` / `stilt ci` against a project in a temporary directory.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn stilt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_stilt")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A project directory plus its own STILT_HOME.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub home: tempfile::TempDir,
}

impl Project {
    pub fn new(tiltfile: &str) -> Self {
        let p = Project {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        p.write("Tiltfile", tiltfile);
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(stilt_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("STILT_HOME", self.home.path())
            .env("NO_COLOR", "1");
        c
    }

    /// Runs a CLI command against the running instance.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// kubectl (`$STILT_KUBECTL`, else `kubectl`) against the running instance's own API.
    pub fn stilt_kubectl(&self, args: &[&str]) -> Output {
        let config = self.home.path().join("config");
        let bin = std::env::var("STILT_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        Command::new(bin)
            .arg("--kubeconfig")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    }

    /// Writes `yaml` to `file` in the project and `kubectl apply`s it to the running instance.
    pub fn apply(&self, file: &str, yaml: &str) {
        self.write(file, yaml);
        let out = self.stilt_kubectl(&["apply", "-f", &self.path(file).display().to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn get_json(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self.run(&["get", kind, name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    pub fn up(&self) -> Up {
        let port = free_port().to_string();
        let up = self.spawn_up(&["up", "--stream", "--port", &port], &[]);
        wait_until(Duration::from_secs(30), "the API server", || {
            self.run(&["get", "sessions"]).status.success()
        });
        up
    }

    /// Starts `stilt ARGS` (an `up`) with extra environment, its output in a log file of the
    /// Stilt home; does not wait for it.
    pub fn spawn_up(&self, args: &[&str], env: &[(&str, &str)]) -> Up {
        let log = self
            .home
            .path()
            .join(format!("stilt-up-{}.log", free_port()));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .cmd(args)
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Up {
            child: Some(child),
            log,
        }
    }

    pub fn ci(&self, extra: &[&str]) -> Output {
        let mut args = vec!["ci", "--port"];
        let port = free_port().to_string();
        args.push(&port);
        args.extend_from_slice(extra);
        self.cmd(&args).output().unwrap()
    }
}

/// Prints the `stilt up` log when the test fails.
pub struct LogOnFailure<'a>(pub &'a Up);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- stilt up log ---\n{}", self.0.log_text());
        }
    }
}

/// A running `stilt up`; interrupted (Ctrl-C) when dropped.
pub struct Up {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Up {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGINT and waits for exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("stilt up did not exit after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.interrupt();
        }
    }
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// GET http://127.0.0.1:port/path, body on 2xx.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // One write: a request split over several writes can be answered (and the socket closed)
    // before its tail is sent.
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 2").then(|| body.to_string())
}

/// Whether a process exists and is not a zombie (PID 1 here may be slow to reap orphans).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

pub fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Runs the cluster's kubectl (`$STILT_KUBECTL`, else `kubectl` on PATH); returns stdout.
pub fn kubectl(args: &[&str]) -> String {
    let bin = std::env::var("STILT_KUBECTL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kubectl".into());
    let out = Command::new(bin).args(args).output().expect("kubectl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The dev cluster's environment must be loaded (scripts/test e2e does).
pub fn require_cluster() {
    assert!(
        std::env::var("KUBECONFIG").is_ok(),
        "run `eval \"$(scripts/dev-cluster env)\"` first (scripts/test e2e does)"
    );
}

/// The compose project name docker-compose derives from the project's directory.
pub fn compose_project(p: &Project) -> String {
    p.dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

/// Deletes the test's Deployment, pass or fail.
pub struct DeploymentCleanup(pub String);

impl Drop for DeploymentCleanup {
    fn drop(&mut self) {
        kubectl(&[
            "delete",
            "deploy",
            &self.0,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// A cluster identity that can do everything Stilt does except read `kube-public` ConfigMaps,
/// so the cluster's published registry (KEP-1755 `local-registry-hosting`: localhost:5000) is
/// not found and the Tiltfile's `default_registry` is the one used (Tilt, like Stilt, prefers
/// the published one). Its kubeconfig names the cluster and the context `cluster`, which is
/// what Stilt and Tilt tell the cluster product by (`kind-…`, `docker-desktop`). Its objects
/// are deleted when dropped.
pub struct NoRegistryDiscovery {
    pub name: String,
    pub kubeconfig: std::path::PathBuf,
}

/// A one-container Deployment `name` running `image`, labelled `app: <name>`, with container
/// port 8000 declared.
pub fn web_deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        ports: [{{containerPort: 8000}}]\n"
    )
}

impl NoRegistryDiscovery {
    /// `stilt up --stream` of `p` as this identity.
    pub fn spawn_up(&self, p: &Project) -> Up {
        p.spawn_up(
            &["up", "--stream", "--port", &free_port().to_string()],
            &[("KUBECONFIG", self.kubeconfig.to_str().unwrap())],
        )
    }

    pub fn create(p: &Project, name: &str, cluster: &str) -> NoRegistryDiscovery {
        let groups = "[apps, batch, networking.k8s.io, discovery.k8s.io, events.k8s.io, policy, autoscaling, coordination.k8s.io, storage.k8s.io, apiextensions.k8s.io]";
        let core = "[pods, pods/log, pods/exec, pods/portforward, pods/attach, pods/status, services, endpoints, events, namespaces, nodes, secrets, serviceaccounts, persistentvolumeclaims, persistentvolumes, replicationcontrollers, limitranges, resourcequotas]";
        let yaml = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: default}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {name}}}\nrules:\n\
             - {{apiGroups: [''], resources: {core}, verbs: ['*']}}\n\
             - {{apiGroups: {groups}, resources: ['*'], verbs: ['*']}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
             subjects: [{{kind: ServiceAccount, name: {name}, namespace: default}}]\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: default}}\n\
             rules: [{{apiGroups: [''], resources: [configmaps], verbs: ['*']}}]\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: default}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\n\
             subjects: [{{kind: ServiceAccount, name: {name}, namespace: default}}]\n"
        );
        let file = p.home.path().join("no-registry-rbac.yaml");
        std::fs::write(&file, yaml).unwrap();
        let guard = NoRegistryDiscovery {
            name: name.to_string(),
            kubeconfig: p.home.path().join("kubeconfig-no-registry"),
        };
        let applied = kubectl(&["apply", "-f", file.to_str().unwrap()]);
        assert!(applied.contains("serviceaccount"), "{applied}");
        let token = kubectl(&["create", "token", name, "--duration=2h"]);
        assert!(!token.trim().is_empty(), "no token for {name}");
        let field = |path: &str| {
            kubectl(&[
                "config",
                "view",
                "--minify",
                "-o",
                &format!("jsonpath={{{path}}}"),
            ])
        };
        let (server, ca) = (
            field(".clusters[0].cluster.server"),
            field(".clusters[0].cluster.certificate-authority"),
        );
        assert!(!server.is_empty() && !ca.is_empty(), "{server} {ca}");
        std::fs::write(
            &guard.kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {name}\n  user:\n    token: {}\ncontexts:\n- name: {cluster}\n  context: {{cluster: {cluster}, user: {name}, namespace: default}}\ncurrent-context: {cluster}\n",
                token.trim()
            ),
        )
        .unwrap();
        guard
    }
}

impl Drop for NoRegistryDiscovery {
    fn drop(&mut self) {
        let n = &self.name;
        kubectl(&[
            "delete",
            "--ignore-not-found",
            "--wait=false",
            &format!("clusterrolebinding/{n}"),
            &format!("clusterrole/{n}"),
        ]);
        kubectl(&[
            "delete",
            "-n",
            "default",
            "--ignore-not-found",
            "--wait=false",
            &format!("rolebinding/{n}"),
            &format!("role/{n}"),
            &format!("serviceaccount/{n}"),
        ]);
    }
}
