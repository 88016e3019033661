//! Local processes: each in its own process group, output streamed line by line into the log
//! store, stopped with SIGTERM to the group and SIGKILL after a grace period.

use crate::leftovers::Leftovers;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use stilt_logs::{Level, LogStore};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;

/// Tilt waits 30 s after SIGTERM before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How long output is still read after the process exited (its backgrounded children may keep
/// the pipes open; they are killed with the group right after).
const OUTPUT_DRAIN: Duration = Duration::from_millis(300);

/// What to run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcSpec {
    pub args: Vec<String>,
    pub dir: Option<PathBuf>,
    /// `KEY=value` added to the inherited environment.
    pub env: Vec<String>,
}

/// Where its output goes.
#[derive(Clone)]
pub struct Output {
    pub logs: LogStore,
    pub resource: String,
    pub span: String,
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Exit {
    pub code: i32,
    /// `killed` when Stilt stopped it.
    pub reason: String,
}

/// A started process.
pub struct Running {
    pub pid: i32,
    exit: watch::Receiver<Option<Exit>>,
}

impl Running {
    /// Waits for the process to end.
    pub async fn wait(&mut self) -> Exit {
        loop {
            if let Some(exit) = self.exit.borrow().clone() {
                return exit;
            }
            if self.exit.changed().await.is_err() {
                return self.exit.borrow().clone().unwrap_or(Exit {
                    code: -1,
                    reason: "lost".into(),
                });
            }
        }
    }

    pub fn try_exit(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    /// A handle that can stop the process from elsewhere.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            pid: self.pid,
            exit: self.exit.clone(),
        }
    }
}

/// Stops a process group.
#[derive(Clone)]
pub struct Stopper {
    pid: i32,
    exit: watch::Receiver<Option<Exit>>,
}

impl Stopper {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// SIGTERM to the group, then SIGKILL after `grace`. Returns once the process has ended.
    pub async fn stop(&self, grace: Duration, out: Option<&Output>) {
        let mut exit = self.exit.clone();
        if exit.borrow().is_some() {
            // Already gone (its group was killed when it exited); the pid may be reused now.
            return;
        }
        kill_group(self.pid, Signal::SIGTERM);
        let exited = tokio::time::timeout(
            grace.min(Duration::from_millis(1500)),
            exit.wait_for(Option::is_some),
        )
        .await
        .is_ok();
        if !exited {
            if let Some(out) = out {
                out.logs.line(
                    &out.resource,
                    &out.span,
                    Level::Info,
                    &format!("Waiting {}s for process to exit...", grace.as_secs()),
                );
            }
            let rest = grace.saturating_sub(Duration::from_millis(1500));
            let exited = tokio::time::timeout(rest, exit.wait_for(Option::is_some))
                .await
                .is_ok();
            if !exited {
                kill_group(self.pid, Signal::SIGKILL);
                let _ = exit.wait_for(Option::is_some).await.is_ok();
            }
        }
        // Children that outlived the leader go too.
        kill_group(self.pid, Signal::SIGKILL);
    }
}

fn kill_group(pid: i32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pid), sig);
}

/// Why a process cannot start, in the user's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum SpawnProblem {
    EmptyCommand,
    DirMissing(PathBuf),
    NotADirectory(PathBuf),
    ProgramNotFound(String),
    ProgramNotExecutable(String),
    Other(String),
}

impl SpawnProblem {
    /// The message, naming the working directory as the user wrote it (`serve_dir`, `dir`).
    pub fn describe(&self, dir_field: &str) -> String {
        match self {
            SpawnProblem::EmptyCommand => "empty command".into(),
            SpawnProblem::DirMissing(d) => format!("{dir_field} {} does not exist", d.display()),
            SpawnProblem::NotADirectory(d) => {
                format!("{dir_field} {} is not a directory", d.display())
            }
            SpawnProblem::ProgramNotFound(p) if p.contains('/') => {
                format!("program '{p}' does not exist")
            }
            SpawnProblem::ProgramNotFound(p) => format!("program '{p}' not found in PATH"),
            SpawnProblem::ProgramNotExecutable(p) => format!("program '{p}' is not executable"),
            SpawnProblem::Other(e) => e.clone(),
        }
    }
}

/// Checks what the OS would otherwise report as a bare "No such file or directory".
fn check_dir(spec: &ProcSpec) -> Result<(), SpawnProblem> {
    let Some(dir) = spec.dir.as_ref().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SpawnProblem::NotADirectory(dir.clone())),
        Err(_) => Err(SpawnProblem::DirMissing(dir.clone())),
    }
}

/// Starts a process in a new process group. A single argument runs through `sh -c`.
/// Errors say what is missing, naming the working directory `dir`.
pub fn spawn(
    spec: &ProcSpec,
    extra_env: &[(String, String)],
    out: Output,
    leftovers: &Arc<Leftovers>,
) -> std::io::Result<Running> {
    try_spawn(spec, extra_env, out, leftovers).map_err(|p| std::io::Error::other(p.describe("dir")))
}

/// [`spawn`] with the reason it could not start as a value. The process group is in
/// `leftovers` from its start until it has been killed, so a crashed Stilt's next start can
/// reap it.
pub fn try_spawn(
    spec: &ProcSpec,
    extra_env: &[(String, String)],
    out: Output,
    leftovers: &Arc<Leftovers>,
) -> Result<Running, SpawnProblem> {
    let (program, args): (&str, Vec<&str>) = match spec.args.as_slice() {
        [] => return Err(SpawnProblem::EmptyCommand),
        [only] => ("sh", vec!["-c", only.as_str()]),
        [first, rest @ ..] => (first.as_str(), rest.iter().map(String::as_str).collect()),
    };
    check_dir(spec)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &spec.dir
        && !dir.as_os_str().is_empty()
    {
        cmd.current_dir(dir);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    for kv in &spec.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        // The directory was checked above, so "not found" is the program.
        std::io::ErrorKind::NotFound => SpawnProblem::ProgramNotFound(program.to_string()),
        std::io::ErrorKind::PermissionDenied => {
            SpawnProblem::ProgramNotExecutable(program.to_string())
        }
        _ => SpawnProblem::Other(format!("running {:?}: {e}", spec.args.join(" "))),
    })?;
    let pid = child.id().map(|p| p as i32).unwrap_or(-1);
    leftovers.started(pid, &spec.args.join(" "));
    let leftovers = leftovers.clone();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let pipes = [
        stdout.map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                Level::Info,
            )
        }),
        stderr.map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                Level::Info,
            )
        }),
    ];
    let mut readers = Vec::new();
    for (mut pipe, level) in pipes.into_iter().flatten() {
        let out = out.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.logs.append(
                        &out.resource,
                        &out.span,
                        level,
                        &String::from_utf8_lossy(&buf[..n]),
                    ),
                }
            }
        }));
    }
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let status = child.wait().await;
        // A child it backgrounded may hold the pipes open for its whole life: the process is
        // done when the direct child exits, and output still buffered gets a short drain.
        let mut readers = readers;
        let drained = tokio::time::timeout(OUTPUT_DRAIN, async {
            for r in readers.iter_mut() {
                let _ = r.await;
            }
        })
        .await;
        if drained.is_err() {
            readers.iter().for_each(|r| r.abort());
        }
        out.logs.flush(&out.resource, &out.span);
        // When the leader exits, the whole group goes (Tilt's rule for serve commands).
        kill_group(pid, Signal::SIGKILL);
        leftovers.ended(pid);
        let exit = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(code), _) => Exit {
                        code,
                        reason: String::new(),
                    },
                    (None, Some(sig)) => Exit {
                        code: 128 + sig,
                        reason: "killed".into(),
                    },
                    _ => Exit {
                        code: -1,
                        reason: String::new(),
                    },
                }
            }
            Err(e) => Exit {
                code: -1,
                reason: e.to_string(),
            },
        };
        let _ = tx.send(Some(exit));
    });
    Ok(Running { pid, exit: rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawn_failures_say_what_is_missing() {
        let logs = LogStore::default();
        let missing_dir = ProcSpec {
            args: vec!["echo hi".into()],
            dir: Some("/nonexistent".into()),
            ..Default::default()
        };
        let problem = try_spawn(&missing_dir, &[], out(&logs), &Leftovers::disabled())
            .err()
            .unwrap();
        assert_eq!(
            problem.describe("serve_dir"),
            "serve_dir /nonexistent does not exist"
        );
        let missing_program = ProcSpec {
            args: vec!["stilt-no-such-program".into(), "x".into()],
            ..Default::default()
        };
        let problem = try_spawn(&missing_program, &[], out(&logs), &Leftovers::disabled())
            .err()
            .unwrap();
        assert_eq!(
            problem.describe("dir"),
            "program 'stilt-no-such-program' not found in PATH"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let not_a_dir = ProcSpec {
            args: vec!["true".into()],
            dir: Some(file.path().into()),
            ..Default::default()
        };
        assert_eq!(
            try_spawn(&not_a_dir, &[], out(&logs), &Leftovers::disabled()).err(),
            Some(SpawnProblem::NotADirectory(file.path().into()))
        );
    }

    fn out(logs: &LogStore) -> Output {
        Output {
            logs: logs.clone(),
            resource: "r".into(),
            span: "s".into(),
        }
    }

    #[tokio::test]
    async fn output_goes_to_the_log_and_exit_codes_are_reported() {
        let logs = LogStore::default();
        let spec = ProcSpec {
            args: vec!["echo hello; echo oops >&2; exit 3".into()],
            ..Default::default()
        };
        let mut p = spawn(&spec, &[], out(&logs), &Leftovers::disabled()).unwrap();
        assert_eq!(
            p.wait().await,
            Exit {
                code: 3,
                reason: String::new()
            }
        );
        let texts: Vec<String> = logs
            .read(0, None)
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert!(
            texts.contains(&"hello".to_string()) && texts.contains(&"oops".to_string()),
            "{texts:?}"
        );
    }

    /// Exists and is not a zombie (PID 1 here may reap orphans late).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    }

    #[tokio::test]
    async fn a_process_is_done_when_it_exits_even_if_its_background_child_holds_the_pipes() {
        let logs = LogStore::default();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let spec = ProcSpec {
            args: vec![format!(
                "sleep 1000 & echo $! > {}; echo leader done",
                pidfile.display()
            )],
            ..Default::default()
        };
        let mut p = spawn(&spec, &[], out(&logs), &Leftovers::disabled()).unwrap();
        // The guard only turns a hang into a failure.
        let exit = tokio::time::timeout(Duration::from_secs(60), p.wait())
            .await
            .expect("the exit of the direct child ends the process");
        assert_eq!(exit.code, 0);
        let texts: Vec<String> = logs
            .read(0, None)
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert!(texts.contains(&"leader done".to_string()), "{texts:?}");
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        for _ in 0..100 {
            if !alive(bg) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(bg),
            "the backgrounded child is reaped with the group"
        );
    }

    #[tokio::test]
    async fn stop_kills_the_whole_group() {
        let logs = LogStore::default();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let spec = ProcSpec {
            args: vec![format!("sleep 300 & echo $! > {}; wait", pidfile.display())],
            ..Default::default()
        };
        let p = spawn(&spec, &[], out(&logs), &Leftovers::disabled()).unwrap();
        let child_pid = loop {
            if let Ok(s) = std::fs::read_to_string(&pidfile)
                && let Ok(pid) = s.trim().parse::<i32>()
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        p.stopper().stop(Duration::from_secs(5), None).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!alive(child_pid), "the grandchild must be gone");
    }

    #[tokio::test]
    async fn a_group_that_ignores_sigterm_is_killed_whole_after_the_grace_period() {
        let logs = LogStore::default();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let home = tempfile::tempdir().unwrap();
        let leftovers = Leftovers::create(home.path().join("l.json")).unwrap();
        // Both the leader and its background child ignore SIGTERM (ignored signals are
        // inherited), so only the SIGKILL to the group ends them.
        let spec = ProcSpec {
            args: vec![format!(
                "trap '' TERM; sleep 300 & echo $! > {}; wait",
                pidfile.display()
            )],
            ..Default::default()
        };
        let p = spawn(&spec, &[], out(&logs), &leftovers).unwrap();
        assert_eq!(leftovers.groups().len(), 1, "recorded while it runs");
        let child_pid = loop {
            if let Ok(s) = std::fs::read_to_string(&pidfile)
                && let Ok(pid) = s.trim().parse::<i32>()
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let grace = Duration::from_secs(2);
        let t0 = std::time::Instant::now();
        p.stopper().stop(grace, Some(&out(&logs))).await;
        let took = t0.elapsed();
        assert!(
            took >= grace,
            "SIGKILL came before the grace period: {took:?}"
        );
        assert!(took < grace + Duration::from_secs(20), "{took:?}");
        for _ in 0..100 {
            if !alive(child_pid) && !alive(p.pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(p.pid), "the leader is gone");
        assert!(
            !alive(child_pid),
            "the child that ignored SIGTERM is gone too"
        );
        let texts: Vec<String> = logs
            .read(0, None)
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert!(
            texts.contains(&"Waiting 2s for process to exit...".to_string()),
            "{texts:?}"
        );
        assert!(leftovers.groups().is_empty(), "forgotten once killed");
    }
}
