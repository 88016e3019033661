//! The Docker Compose model as the loader sees it: which CLI to ask, the command line, the
//! resolved `config` output turned into services (in Tilt's order), the files Compose reads
//! besides the `-f` files (includes, `extends` files, `env_file`s) and the build of a service
//! that no Tiltfile image covers. Pure functions; the builtin does the I/O.

use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::model::DcBuild;
use crate::model::DcProject;

/// The compose CLI the loader asks for the resolved project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ComposeCli {
    pub argv: Vec<String>,
    /// `docker-compose` v1: `config` prints YAML (no `--format json`); images are `<p>_<s>`.
    pub v1: bool,
}

impl ComposeCli {
    /// From `$STILT_DOCKER_COMPOSE_CMD` / `$TILT_DOCKER_COMPOSE_CMD` (whitespace-split; v1 when
    /// the last word is `docker-compose`), as the engine's adapter reads them.
    pub fn from_override(cmd: &str) -> Option<ComposeCli> {
        let argv: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
        let v1 = argv.last()?.ends_with("docker-compose");
        Some(ComposeCli { argv, v1 })
    }

    pub fn v2() -> ComposeCli {
        ComposeCli {
            argv: vec!["docker".into(), "compose".into()],
            v1: false,
        }
    }

    pub fn v1() -> ComposeCli {
        ComposeCli {
            argv: vec!["docker-compose".into()],
            v1: true,
        }
    }

    /// `compose <project args> config [--format json]`, with Tilt's project arguments.
    pub fn config_argv(&self, p: &DcProject) -> Vec<String> {
        let mut a = self.argv.clone();
        a.extend(project_args(p));
        a.push("config".into());
        if !self.v1 {
            a.extend(["--format".into(), "json".into()]);
        }
        a
    }

    /// The image compose builds for a service without `image:`.
    pub fn default_image(&self, project: &str, service: &str) -> String {
        if self.v1 {
            format!("{project}_{service}")
        } else {
            format!("{project}-{service}")
        }
    }
}

/// The arguments that select a project, in Tilt's order.
pub(crate) fn project_args(p: &DcProject) -> Vec<String> {
    let mut a = vec![];
    if !p.name.is_empty() {
        a.extend(["--project-name".into(), p.name.clone()]);
    }
    if !p.project_path.as_os_str().is_empty() {
        a.extend([
            "--project-directory".into(),
            p.project_path.display().to_string(),
        ]);
    }
    if !p.env_file.is_empty() {
        a.extend(["--env-file".into(), p.env_file.clone()]);
    }
    for f in &p.config_paths {
        a.extend(["-f".into(), f.display().to_string()]);
    }
    for prof in &p.profiles {
        a.extend(["--profile".into(), prof.clone()]);
    }
    a
}

/// The services of a resolved `config` output (v2 JSON or v1 YAML), in Tilt's order.
pub(crate) fn resolved_services(doc: &Json) -> Vec<(String, Json)> {
    let services = doc
        .get("services")
        .and_then(Json::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    tilt_order(services)
}

/// Names of the services a service `depends_on` (list or map form), sorted.
pub(crate) fn depends_on(def: &Json) -> Vec<String> {
    let mut out: Vec<String> = match def.get("depends_on") {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Json::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    };
    out.sort();
    out.dedup();
    out
}

/// Tilt's resource order: names sorted, each service after the services it depends on.
pub(crate) fn tilt_order(mut services: Vec<(String, Json)>) -> Vec<(String, Json)> {
    services.sort_by(|a, b| a.0.cmp(&b.0));
    fn visit(i: usize, services: &[(String, Json)], seen: &mut Vec<bool>, out: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for d in depends_on(&services[i].1) {
            if let Some(j) = services.iter().position(|(n, _)| *n == d) {
                visit(j, services, seen, out);
            }
        }
        out.push(i);
    }
    let mut seen = vec![false; services.len()];
    let mut order = vec![];
    for i in 0..services.len() {
        visit(i, &services, &mut seen, &mut order);
    }
    order.into_iter().map(|i| services[i].clone()).collect()
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Json::String(s) => Some(s.clone()),
                Json::Object(o) => o.get("path").and_then(Json::as_str).map(str::to_owned),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

fn join(base: &Path, p: &str) -> Option<PathBuf> {
    // Interpolated paths cannot be known without Compose's variables: leave them out.
    (!p.contains('$') && !p.contains("://")).then(|| crate::eval::abs_path(base, p))
}

/// One raw compose file's references to other files Compose reads: `include` files (and their
/// env files), `extends.file`, and services' `env_file`s. Relative paths resolve against
/// `file_dir` (the file's directory), except `env_file`s of a top-level file, which resolve
/// against the project directory (`env_dir`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FileRefs {
    /// Compose files to scan in turn: (path, directory their env_files resolve against).
    pub compose_files: Vec<(PathBuf, PathBuf)>,
    pub env_files: Vec<PathBuf>,
}

pub(crate) fn file_refs(doc: &Json, file_dir: &Path, env_dir: &Path) -> FileRefs {
    let mut r = FileRefs::default();
    if let Some(Json::Array(items)) = doc.get("include") {
        for it in items {
            let (paths, envs, proj_dir) = match it {
                Json::String(s) => (vec![s.clone()], vec![], None),
                Json::Object(o) => (
                    strings(o.get("path")),
                    strings(o.get("env_file")),
                    o.get("project_directory").and_then(Json::as_str),
                ),
                _ => continue,
            };
            for p in paths {
                let Some(f) = join(file_dir, &p) else {
                    continue;
                };
                let dir = proj_dir
                    .and_then(|d| join(file_dir, d))
                    .unwrap_or_else(|| f.parent().unwrap_or(file_dir).to_path_buf());
                // An included project reads its own `.env` too.
                r.env_files.push(dir.join(".env"));
                r.compose_files.push((f, dir));
            }
            r.env_files
                .extend(envs.iter().filter_map(|e| join(file_dir, e)));
        }
    }
    if let Some(services) = doc.get("services").and_then(Json::as_object) {
        for def in services.values() {
            r.env_files.extend(
                strings(def.get("env_file"))
                    .iter()
                    .filter_map(|e| join(env_dir, e)),
            );
            if let Some(f) = def
                .get("extends")
                .and_then(|e| e.get("file"))
                .and_then(Json::as_str)
                .and_then(|f| join(file_dir, f))
            {
                r.compose_files.push((f, env_dir.to_path_buf()));
            }
        }
    }
    r
}

/// Walks compose files from the `-f` ones through includes and extends (each file once, at
/// most 32), returning every other file Compose reads. `read` gives a file's parsed YAML.
pub(crate) fn referenced_files(
    top: &[PathBuf],
    project_dir: &Path,
    read: impl Fn(&Path) -> Option<Json>,
) -> Vec<PathBuf> {
    let mut seen: BTreeSet<PathBuf> = top.iter().cloned().collect();
    let mut queue: Vec<(PathBuf, PathBuf)> = top
        .iter()
        .map(|f| (f.clone(), project_dir.to_path_buf()))
        .collect();
    let mut out: Vec<PathBuf> = vec![];
    let mut scanned = 0;
    while let Some((file, env_dir)) = queue.pop() {
        scanned += 1;
        if scanned > 32 {
            break;
        }
        let Some(doc) = read(&file) else { continue };
        let dir = file.parent().unwrap_or(project_dir).to_path_buf();
        let refs = file_refs(&doc, &dir, &env_dir);
        for (f, d) in refs.compose_files {
            if seen.insert(f.clone()) {
                out.push(f.clone());
                queue.push((f, d));
            }
        }
        for e in refs.env_files {
            if seen.insert(e.clone()) {
                out.push(e);
            }
        }
    }
    out.sort();
    out
}

/// The host ports a service publishes, each once, in order: a fixed published port of the short
/// (`[ip:]published:target[/proto]`) or long form; random ports and ranges are left out (as
/// Tilt does).
pub(crate) fn published_ports(def: &Json) -> Vec<u16> {
    let mut out: Vec<u16> = vec![];
    for port in def
        .get("ports")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let published = match port {
            Json::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                (parts.len() >= 2).then(|| parts[parts.len() - 2].to_owned())
            }
            Json::Object(o) => o.get("published").map(|p| match p {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }),
            _ => None,
        };
        if let Some(p) = published
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
    out
}

/// The build of a service Compose would build itself (`build:` with a local context). Relative
/// contexts (hand-parsed files) resolve against the project directory.
pub(crate) fn service_build(def: &Json, project_dir: &Path, image: String) -> Option<DcBuild> {
    let (context, dockerfile) = match def.get("build")? {
        Json::String(c) => (c.clone(), None),
        Json::Object(b) => (
            b.get("context")
                .and_then(Json::as_str)
                .unwrap_or(".")
                .to_owned(),
            b.get("dockerfile")
                .and_then(Json::as_str)
                .map(str::to_owned),
        ),
        _ => return None,
    };
    // A git URL context: nothing local to watch.
    let context = join(project_dir, &context)?;
    let dockerfile = crate::eval::abs_path(&context, dockerfile.as_deref().unwrap_or("Dockerfile"));
    // Bind-mounted sources are synced by the mount itself: editing them must not rebuild.
    let mut volume_sources = vec![];
    for v in def
        .get("volumes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let src = match v {
            Json::String(s) => s
                .split(':')
                .next()
                .filter(|s| s.starts_with('.') || s.starts_with('/') || s.starts_with('~')),
            Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("bind") => {
                o.get("source").and_then(Json::as_str)
            }
            _ => None,
        };
        if let Some(p) = src.and_then(|s| join(project_dir, s)) {
            volume_sources.push(p);
        }
    }
    Some(DcBuild {
        image,
        context,
        dockerfile,
        dockerignore: vec![],
        volume_sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_is_sorted_with_dependencies_first() {
        // Tilt's own example: a→b→c→{d,e,f}, d→{f,e}, e→f.
        let svc = |deps: Json| json!({"depends_on": deps});
        let services = vec![
            ("a".to_owned(), svc(json!(["b"]))),
            ("b".to_owned(), svc(json!(["c"]))),
            ("c".to_owned(), svc(json!({"d": {}, "e": {}, "f": {}}))),
            ("d".to_owned(), svc(json!(["f", "e"]))),
            ("e".to_owned(), svc(json!(["f"]))),
            ("f".to_owned(), json!({})),
        ];
        let names: Vec<String> = tilt_order(services).into_iter().map(|s| s.0).collect();
        assert_eq!(names, ["f", "e", "d", "c", "b", "a"]);
        let plain = vec![("web".to_owned(), json!({})), ("db".to_owned(), json!({}))];
        let names: Vec<String> = tilt_order(plain).into_iter().map(|s| s.0).collect();
        assert_eq!(names, ["db", "web"]);
    }

    #[test]
    fn config_command_lines() {
        let p = DcProject {
            name: "shop".into(),
            project_path: "/p".into(),
            env_file: "/p/dev.env".into(),
            config_paths: vec!["/p/a.yml".into(), "/p/b.yml".into()],
            profiles: vec!["tools".into()],
            ..Default::default()
        };
        assert_eq!(
            ComposeCli::v2().config_argv(&p).join(" "),
            "docker compose --project-name shop --project-directory /p --env-file /p/dev.env \
             -f /p/a.yml -f /p/b.yml --profile tools config --format json"
        );
        assert_eq!(
            ComposeCli::v1().config_argv(&p).join(" "),
            "docker-compose --project-name shop --project-directory /p --env-file /p/dev.env \
             -f /p/a.yml -f /p/b.yml --profile tools config"
        );
        let cases = [
            ("docker-compose", Some(true)),
            ("/usr/bin/docker-compose", Some(true)),
            ("docker compose", Some(false)),
            ("podman compose", Some(false)),
            ("   ", None),
        ];
        for (cmd, v1) in cases {
            assert_eq!(ComposeCli::from_override(cmd).map(|c| c.v1), v1, "{cmd}");
        }
        assert_eq!(ComposeCli::v1().default_image("p", "web"), "p_web");
        assert_eq!(ComposeCli::v2().default_image("p", "web"), "p-web");
    }

    #[test]
    fn files_compose_reads() {
        let top = json!({
            "include": ["sub/inc.yaml", {"path": ["other/o.yaml"], "env_file": "other/o.env", "project_directory": "other"}],
            "services": {
                "web": {"env_file": ["web.env", {"path": "opt.env", "required": false}],
                        "extends": {"file": "base.yaml", "service": "basic"}},
                "x": {"env_file": "${DIR}/x.env"},
            }
        });
        let inc = json!({"services": {"db": {"env_file": "db.env"}}});
        let read = |p: &Path| match p.to_str().unwrap() {
            "/p/compose.yaml" => Some(top.clone()),
            "/p/sub/inc.yaml" => Some(inc.clone()),
            _ => None,
        };
        let files = referenced_files(&[PathBuf::from("/p/compose.yaml")], Path::new("/p"), read);
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "/p/base.yaml",
                "/p/opt.env",
                "/p/other/.env",
                "/p/other/o.env",
                "/p/other/o.yaml",
                "/p/sub/.env",
                "/p/sub/db.env",
                "/p/sub/inc.yaml",
                "/p/web.env",
            ]
        );
    }

    #[test]
    fn published_ports_are_links() {
        let def = json!({"ports": [
            "8080:80", "127.0.0.1:9000:9000/udp", "127.0.0.1::5000", "3000", "8000-8001:80-81",
            {"target": 443, "published": "8443"}, {"target": 53, "published": 5353},
            {"target": 1}, {"target": 2, "published": "0"}, "8080:81"
        ]});
        assert_eq!(published_ports(&def), [8080, 9000, 8443, 5353]);
        assert!(published_ports(&json!({"image": "x"})).is_empty());
    }

    #[test]
    fn builds_compose_does_itself() {
        let def = json!({"build": "./app", "volumes": ["./app/static:/srv/static", "data:/data", {"type": "bind", "source": "/abs/conf", "target": "/conf"}]});
        let b = service_build(&def, Path::new("/p"), "p-web".into()).unwrap();
        assert_eq!(b.context, PathBuf::from("/p/app"));
        assert_eq!(b.dockerfile, PathBuf::from("/p/app/Dockerfile"));
        assert_eq!(
            b.volume_sources,
            [PathBuf::from("/p/app/static"), PathBuf::from("/abs/conf")]
        );
        let def = json!({"build": {"context": "/abs/ctx", "dockerfile": "docker/Dev.Dockerfile"}});
        let b = service_build(&def, Path::new("/p"), "img".into()).unwrap();
        assert_eq!(
            b.dockerfile,
            PathBuf::from("/abs/ctx/docker/Dev.Dockerfile")
        );
        assert!(
            service_build(
                &json!({"build": "https://github.com/x/y.git"}),
                Path::new("/p"),
                "i".into()
            )
            .is_none()
        );
        assert!(service_build(&json!({"image": "redis"}), Path::new("/p"), "i".into()).is_none());
    }
}
