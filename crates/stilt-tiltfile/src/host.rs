//! Host access for the loader. Everything the Tiltfile can observe of the machine (processes,
//! environment, files, the kube context) goes through [`HostEnv`], so fixtures use [`FakeHost`]
//! and Stilt uses [`RealHost`].

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;
use std::sync::Mutex;

/// The most a Tiltfile reads from one file. A load holds a file several times over (bytes, text,
/// Starlark value), so a 100 MB file would cost over half a gigabyte; a file this big is data for
/// a command, not for the Tiltfile.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads a whole file, refusing one over [`MAX_FILE_BYTES`] with an error that says so (also a
/// file that grows past it while being read).
pub fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let too_big = |size: u64| {
        io::Error::other(format!(
            "the file is {:.1} MiB; a Tiltfile reads at most {} MiB from one file (process it \
             with local() instead)",
            size as f64 / (1 << 20) as f64,
            MAX_FILE_BYTES >> 20
        ))
    };
    let size = file.metadata()?.len();
    if size > MAX_FILE_BYTES {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A command to run on the host (`local()`, `helm()`, `kustomize()`, `k8s_custom_deploy`'s
/// nothing — only load-time commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    /// argv; a shell command is `["sh", "-c", cmd]`.
    pub argv: Vec<String>,
    pub dir: PathBuf,
    /// Extra environment on top of the host environment.
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// The loader's view of the host. Must be `Sync`: callers run loads on blocking threads.
pub trait HostEnv: Send + Sync {
    /// Run a command to completion. `Err` only when it could not be started (e.g. not found).
    fn run(&self, cmd: &HostCommand) -> io::Result<HostOutput>;
    /// Whether an executable is on `PATH`.
    fn which(&self, bin: &str) -> Option<PathBuf>;
    /// The process environment at load start (os.environ is a copy-on-write overlay of it).
    fn environ(&self) -> Vec<(String, String)>;
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }
    /// Current kube context name ("" when there is no kubeconfig).
    fn k8s_context(&self) -> String;
    /// Default namespace of the current context ("default" when unset).
    fn k8s_namespace(&self) -> String;
    /// Cluster name of the current context (used for the dev-cluster allow list).
    fn k8s_cluster(&self) -> String {
        self.k8s_context()
    }
    /// Working directory (os.getcwd()).
    fn cwd(&self) -> PathBuf;
}

/// The real machine: std::process, std::env, std::fs, `kubectl config`.
#[derive(Debug, Default)]
pub struct RealHost {
    kube: Mutex<Option<(String, String, String)>>,
}

impl RealHost {
    pub fn new() -> Self {
        Self::default()
    }

    fn kube(&self) -> (String, String, String) {
        let mut g = self.kube.lock().unwrap();
        if let Some(k) = &*g {
            return k.clone();
        }
        let files = kubeconfig_paths(
            std::env::var("KUBECONFIG").ok().as_deref(),
            std::env::var_os("HOME").map(PathBuf::from),
        );
        let k = kubeconfig_facts(&files).unwrap_or_else(kubectl_facts);
        *g = Some(k.clone());
        k
    }
}

/// The kubeconfig files kubectl reads: `$KUBECONFIG`'s entries, else `~/.kube/config`.
fn kubeconfig_paths(env: Option<&str>, home: Option<PathBuf>) -> Vec<PathBuf> {
    match env.filter(|e| !e.is_empty()) {
        Some(list) => std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => home
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// (current context, its namespace or "default", its cluster) merged from `files` as kubectl
/// merges them: the first file to set `current-context`, and the first definition of a context
/// name, win. `None` when a file cannot be parsed (kubectl then decides). Reading the files
/// here instead of running `kubectl config` three times takes a tenth of a second off a load.
fn kubeconfig_facts(files: &[PathBuf]) -> Option<(String, String, String)> {
    let mut current = String::new();
    let mut contexts: Vec<serde_json::Value> = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let doc = crate::parse_yaml_stream(&text).ok()?.into_iter().next();
        let Some(doc) = doc else { continue };
        if current.is_empty() {
            current = doc["current-context"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        contexts.extend(doc["contexts"].as_array().cloned().unwrap_or_default());
    }
    if current.is_empty() {
        return Some((String::new(), String::new(), String::new()));
    }
    let context = contexts
        .iter()
        .find(|c| c["name"].as_str() == Some(current.as_str()))
        .map(|c| &c["context"]);
    let field = |k: &str| {
        context
            .and_then(|c| c[k].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let ns = field("namespace");
    let ns = if ns.is_empty() { "default".into() } else { ns };
    Some((current, ns, field("cluster")))
}

/// The same facts from `kubectl config`.
fn kubectl_facts() -> (String, String, String) {
    {
        let q = |args: &[&str]| -> String {
            Command::new("kubectl")
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let ctx = q(&["config", "current-context"]);
        let (ns, cluster) = if ctx.is_empty() {
            (String::new(), String::new())
        } else {
            (
                q(&["config", "view", "--minify", "-o", "jsonpath={..namespace}"]),
                q(&[
                    "config",
                    "view",
                    "--minify",
                    "-o",
                    "jsonpath={.clusters[0].name}",
                ]),
            )
        };
        let ns = if ns.is_empty() { "default".into() } else { ns };
        (ctx, ns, cluster)
    }
}

pub(crate) fn run_real(cmd: &HostCommand) -> io::Result<HostOutput> {
    use std::io::Write;
    let mut c = Command::new(&cmd.argv[0]);
    c.args(&cmd.argv[1..]).current_dir(&cmd.dir);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    c.stdin(if cmd.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    if let Some(input) = &cmd.stdin {
        let mut si = child.stdin.take().expect("piped stdin");
        let input = input.clone();
        std::thread::spawn(move || {
            let _ = si.write_all(input.as_bytes());
        });
    }
    let out = child.wait_with_output()?;
    Ok(HostOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn which_real(bin: &str, path: Option<&str>) -> Option<PathBuf> {
    let path = path?;
    std::env::split_paths(path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn read_dir_real(path: &Path) -> io::Result<Vec<DirEntry>> {
    let mut out = vec![];
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(DirEntry {
            path: e.path(),
            is_dir,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl HostEnv for RealHost {
    fn run(&self, cmd: &HostCommand) -> io::Result<HostOutput> {
        run_real(cmd)
    }
    fn which(&self, bin: &str) -> Option<PathBuf> {
        which_real(bin, std::env::var("PATH").ok().as_deref())
    }
    fn environ(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_capped(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        read_dir_real(path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn k8s_context(&self) -> String {
        self.kube().0
    }
    fn k8s_namespace(&self) -> String {
        self.kube().1
    }
    fn k8s_cluster(&self) -> String {
        self.kube().2
    }
    fn cwd(&self) -> PathBuf {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
    }
}

/// A deterministic host for tests: real files, a fixed environment, a fixed kube context, and
/// commands answered from a table (falling back to really running them when `run_unknown`).
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub env: BTreeMap<String, String>,
    pub context: String,
    pub namespace: String,
    pub cluster: String,
    pub cwd: PathBuf,
    /// Shell command string (argv joined by spaces) → canned output.
    pub commands: BTreeMap<String, HostOutput>,
    /// Run commands missing from `commands` for real (with only `env` as the environment).
    pub run_unknown: bool,
    /// Executables `which` finds (when `run_unknown`, the real PATH is consulted too).
    pub path_bins: Vec<String>,
}

impl Default for FakeHost {
    fn default() -> Self {
        let mut env = BTreeMap::new();
        env.insert("HOME".into(), "/home/stilt".into());
        env.insert("USER".into(), "stilt".into());
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        FakeHost {
            env,
            context: "kind-kind".into(),
            namespace: "default".into(),
            cluster: "kind-kind".into(),
            cwd: PathBuf::from("/"),
            commands: BTreeMap::new(),
            run_unknown: true,
            path_bins: vec![],
        }
    }
}

impl HostEnv for FakeHost {
    fn run(&self, cmd: &HostCommand) -> io::Result<HostOutput> {
        let key = if cmd.argv.len() == 3 && cmd.argv[0] == "sh" && cmd.argv[1] == "-c" {
            cmd.argv[2].clone()
        } else {
            cmd.argv.join(" ")
        };
        if let Some(o) = self.commands.get(&key) {
            return Ok(o.clone());
        }
        if !self.run_unknown {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("FakeHost: no canned output for {key:?}"),
            ));
        }
        let mut c = cmd.clone();
        let mut env: Vec<(String, String)> = self.env.clone().into_iter().collect();
        env.extend(c.env);
        c.env = env;
        run_real(&c)
    }
    fn which(&self, bin: &str) -> Option<PathBuf> {
        if self.path_bins.iter().any(|b| b == bin) {
            return Some(PathBuf::from("/usr/bin").join(bin));
        }
        if self.run_unknown {
            return which_real(bin, self.env.get("PATH").map(|s| s.as_str()));
        }
        None
    }
    fn environ(&self) -> Vec<(String, String)> {
        self.env.clone().into_iter().collect()
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_capped(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        read_dir_real(path)
    }
    fn k8s_context(&self) -> String {
        self.context.clone()
    }
    fn k8s_namespace(&self) -> String {
        self.namespace.clone()
    }
    fn k8s_cluster(&self) -> String {
        self.cluster.clone()
    }
    fn cwd(&self) -> PathBuf {
        self.cwd.clone()
    }
}

/// A host for checking a Tiltfile without side effects (the language server): files are read
/// from disk with unsaved editor buffers laid over them and the environment is the real one, but
/// no command runs (each answers success with empty output and is recorded, see
/// [`CheckHost::skipped`]) and there is no kube context, so nothing asks kubectl or a cluster.
#[derive(Debug, Default)]
pub struct CheckHost {
    /// Path → text that stands in for the file on disk (an editor's unsaved buffer).
    overlay: BTreeMap<PathBuf, String>,
    skipped: Mutex<Vec<String>>,
}

impl CheckHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read `text` instead of the file at `path`.
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.overlay.insert(path.into(), text.into());
        self
    }

    /// The commands the load asked to run, in order (shell commands as written).
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl HostEnv for CheckHost {
    fn run(&self, cmd: &HostCommand) -> io::Result<HostOutput> {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(crate::builtins::core::argv_display(&cmd.argv));
        Ok(HostOutput::default())
    }
    fn which(&self, bin: &str) -> Option<PathBuf> {
        // Without the compose CLI, compose files are read by the hand parser: asking the CLI
        // would mean running it (and its empty answer would read as an empty project).
        if bin == "docker" || bin == "docker-compose" {
            return None;
        }
        which_real(bin, std::env::var("PATH").ok().as_deref())
    }
    fn environ(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.overlay.get(path) {
            Some(t) => Ok(t.clone().into_bytes()),
            None => read_capped(path),
        }
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        self.overlay.contains_key(path) || path.exists()
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        read_dir_real(path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn k8s_context(&self) -> String {
        String::new()
    }
    fn k8s_namespace(&self) -> String {
        "default".into()
    }
    fn k8s_cluster(&self) -> String {
        String::new()
    }
    fn cwd(&self) -> PathBuf {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn kubeconfig_files_as_kubectl_lists_them() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            kubeconfig_paths(None, home.clone()),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
        assert_eq!(
            kubeconfig_paths(Some(""), home.clone()),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
        assert_eq!(
            kubeconfig_paths(Some("/a:/b::/c"), home),
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
        assert!(kubeconfig_paths(None, None).is_empty());
    }

    #[test]
    fn kubeconfig_facts_merge_like_kubectl() {
        let d = tempfile::tempdir().unwrap();
        let first = write(
            d.path(),
            "first",
            "apiVersion: v1\nkind: Config\ncontexts:\n- name: dev\n  context: {cluster: kind-dev, user: u, namespace: team}\n",
        );
        let second = write(
            d.path(),
            "second",
            "current-context: dev\ncontexts:\n- name: dev\n  context: {cluster: shadowed, user: u}\n- name: bare\n  context: {cluster: c2, user: u}\n",
        );
        let third = write(d.path(), "third", "current-context: bare\n");
        let missing = d.path().join("missing");
        // (files, (context, namespace, cluster))
        type Facts<'a> = (&'a str, &'a str, &'a str);
        let cases: Vec<(Vec<PathBuf>, Facts)> = vec![
            // The first definition of a context wins; current-context from a later file.
            (
                vec![first.clone(), second.clone()],
                ("dev", "team", "kind-dev"),
            ),
            // The first current-context wins.
            (
                vec![second.clone(), third.clone()],
                ("dev", "default", "shadowed"),
            ),
            (
                vec![third.clone(), second.clone()],
                ("bare", "default", "c2"),
            ),
            // A context named but not defined: its name, no cluster.
            (vec![third.clone()], ("bare", "default", "")),
            (vec![missing.clone()], ("", "", "")),
            (vec![], ("", "", "")),
        ];
        for (files, (ctx, ns, cluster)) in cases {
            let got = kubeconfig_facts(&files).expect("parsed");
            assert_eq!(
                (got.0.as_str(), got.1.as_str(), got.2.as_str()),
                (ctx, ns, cluster),
                "{files:?}"
            );
        }
        let broken = write(d.path(), "broken", "contexts: [unclosed\n");
        assert_eq!(kubeconfig_facts(&[broken]), None, "kubectl decides");
    }
}
