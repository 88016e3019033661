//! Ground truth for the .dockerignore matcher: every case of
//! tests/data/dockerignore_table.txt is built as a real Docker build context
//! (`docker build` with `FROM scratch` + `COPY . /ctx`), the image's files are
//! listed with `docker create` + `docker export`, and the result is compared
//! with both the table's expectation and `DockerIgnore::matches`.
//!
//! Needs a Docker daemon; runs only with `STILT_TEST_DOCKER=1`:
//! `STILT_TEST_DOCKER=1 cargo test -p stilt-watch --test docker_ground_truth -- --ignored`

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use stilt_watch::ignore::DockerIgnore;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Build `ctx` and return the set of regular files that arrived, relative to
/// the context root.
fn files_in_context(ctx: &Path, scratch: &Path) -> BTreeSet<String> {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(["build", "-q", "-f", "-"])
        .arg(ctx)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker build");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nCOPY . /ctx\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cid = docker(&["create", &image, "/nonexistent"]);
    let tar = scratch.join("export.tar");
    docker(&["export", "-o", tar.to_str().unwrap(), &cid]);
    docker(&["rm", &cid]);
    docker(&["rmi", "-f", &image]);
    let list = Command::new("tar")
        .arg("-tvf")
        .arg(&tar)
        .output()
        .expect("tar");
    let mut files = BTreeSet::new();
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        // Regular files start with '-' in `tar -tv` output.
        if !line.starts_with('-') {
            continue;
        }
        if let Some(pos) = line.find(" ctx/") {
            files.insert(line[pos + 5..].to_string());
        }
    }
    files
}

#[test]
#[ignore = "needs a Docker daemon; set STILT_TEST_DOCKER=1 and pass --ignored"]
fn table_agrees_with_docker() {
    if std::env::var("STILT_TEST_DOCKER").as_deref() != Ok("1") {
        eprintln!("skipped: STILT_TEST_DOCKER != 1");
        return;
    }
    let mut failures = Vec::new();
    for case in common::table::load() {
        let scratch = tempfile::tempdir().unwrap();
        let ctx = scratch.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        for (path, _) in &case.paths {
            let p = ctx.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, path.as_bytes()).unwrap();
        }
        let text = case.dockerignore_text();
        std::fs::write(ctx.join(".dockerignore"), &text).unwrap();
        let arrived = files_in_context(&ctx, scratch.path());
        let m = DockerIgnore::parse(&ctx, ".dockerignore", &text).unwrap();
        for (path, want_ignored) in &case.paths {
            let docker_ignored = !arrived.contains(path);
            let ours = m.matches(&ctx.join(path));
            if docker_ignored != *want_ignored || ours != docker_ignored {
                failures.push(format!(
                    "[{}] {path}: docker={} table={} matcher={}",
                    case.name, docker_ignored, want_ignored, ours
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements (true = ignored):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
