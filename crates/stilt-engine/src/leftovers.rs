//! What this instance started that could outlive it: the record that lets the next `stilt up`
//! on the same port clean up after a crash (kill -9, OOM, power loss of the terminal).
//!
//! Every local process group (serve_cmd, cmd, custom_build commands, exec probes) is written to
//! `$STILT_HOME/instances/<port>.leftovers.json` when it starts and removed when its group is
//! gone; compose services are written when `compose up` put them up. A clean stop leaves
//! nothing to reap and removes the file. On start, [`reap_leftovers_and_record`] reads the
//! previous record: process groups whose leader is still the same process (same pid *and* the
//! same start time, on the same boot) get SIGTERM, then SIGKILL after [`REAP_GRACE`]; compose
//! containers that still run are left alone: `compose up` adopts a container whose config hash
//! is unchanged (Stilt never passes `--force-recreate`), so an unchanged service is not
//! recreated. Port-forwards live inside the Stilt process and die with it.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the previous instance's processes get between SIGTERM and SIGKILL.
pub const REAP_GRACE: Duration = Duration::from_secs(5);

/// One process group Stilt started: its leader's pid is the group id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub pgid: i32,
    /// The leader's start time (`/proc/<pid>/stat` field 22, clock ticks since boot): a pid
    /// reused by an unrelated process has another.
    pub start_time: u64,
    /// The command, for messages.
    pub command: String,
}

/// One compose service Stilt put up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRecord {
    pub project: String,
    pub service: String,
    pub container_id: String,
}

/// The file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `/proc/sys/kernel/random/boot_id`: after a reboot no recorded process can exist.
    pub boot_id: String,
    /// The instance that wrote the record.
    pub pid: u32,
    #[serde(default)]
    pub groups: Vec<GroupRecord>,
    #[serde(default)]
    pub compose: Vec<ComposeRecord>,
}

/// Keeps the record of this instance up to date. [`Leftovers::disabled`] records nothing
/// (tests, engines that own no Stilt home).
pub struct Leftovers {
    path: Option<PathBuf>,
    record: Mutex<Record>,
}

impl Leftovers {
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            path: None,
            record: Mutex::new(Record::default()),
        })
    }

    /// A fresh record of this process at `path` (written at once, so even an instance that
    /// dies before starting anything leaves a valid file).
    pub fn create(path: PathBuf) -> std::io::Result<Arc<Self>> {
        let me = Self {
            path: Some(path),
            record: Mutex::new(Record {
                boot_id: boot_id(),
                pid: std::process::id(),
                ..Default::default()
            }),
        };
        me.save(&me.record.lock())?;
        Ok(Arc::new(me))
    }

    /// The folder of the record (`$STILT_HOME/instances`), where other per-home records live.
    pub fn dir(&self) -> Option<&Path> {
        self.path.as_deref()?.parent()
    }

    /// A process group with leader `pid` started.
    pub fn started(&self, pid: i32, command: &str) {
        if self.path.is_none() || pid <= 0 {
            return;
        }
        let Some(start_time) = read_stat(pid).map(|s| s.start_time) else {
            // Already gone: nothing can be left over.
            return;
        };
        let mut record = self.record.lock();
        record.groups.retain(|g| g.pgid != pid);
        record.groups.push(GroupRecord {
            pgid: pid,
            start_time,
            command: command.chars().take(200).collect(),
        });
        self.save_logged(&record);
    }

    /// The process group with leader `pid` has been killed.
    pub fn ended(&self, pid: i32) {
        if self.path.is_none() {
            return;
        }
        let mut record = self.record.lock();
        let before = record.groups.len();
        record.groups.retain(|g| g.pgid != pid);
        if record.groups.len() != before {
            self.save_logged(&record);
        }
    }

    /// `compose up` put `service` of `project` up in `container_id`.
    pub fn compose_up(&self, project: &str, service: &str, container_id: &str) {
        if self.path.is_none() {
            return;
        }
        let mut record = self.record.lock();
        let entry = ComposeRecord {
            project: project.into(),
            service: service.into(),
            container_id: container_id.into(),
        };
        if record.compose.contains(&entry) {
            return;
        }
        record
            .compose
            .retain(|c| !(c.project == project && c.service == service));
        record.compose.push(entry);
        self.save_logged(&record);
    }

    /// The process groups recorded now (for tests and shutdown checks).
    pub fn groups(&self) -> Vec<GroupRecord> {
        self.record.lock().groups.clone()
    }

    /// A clean stop: every process is gone, so the next start has nothing to reap. Compose
    /// containers stay up (as after Tilt's exit) and need no record to be adopted.
    pub fn finish(&self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }

    fn save_logged(&self, record: &Record) {
        if let Err(e) = self.save(record) {
            tracing::warn!("writing the leftovers record: {e}");
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a record.
    fn save(&self, record: &Record) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
        std::fs::rename(&tmp, path)
    }
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub pgid: i32,
    pub start_time: u64,
    pub zombie: bool,
}

/// Parses a `/proc/<pid>/stat` line. The command (field 2) may hold spaces and parentheses,
/// so fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    // rest: state(3) ppid(4) pgrp(5) ... starttime(22)
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        pid,
        zombie: *fields.first()? == "Z",
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn read_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the machine (that we may see).
fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether a recorded process group is still the one Stilt started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupFate {
    /// It still runs: these (non-zombie) processes are in it.
    Orphaned(Vec<i32>),
    /// Nothing of it is left (or its pid now belongs to someone else's process).
    Gone,
}

/// Decides whether `group` still has live members among `procs`. The leader must be the same
/// process (same start time); once the leader is gone, the kernel does not hand its pid out
/// again while the group has members, so members started no earlier than the leader are its.
pub fn judge(group: &GroupRecord, procs: &[ProcStat]) -> GroupFate {
    if let Some(leader) = procs.iter().find(|p| p.pid == group.pgid)
        && leader.start_time != group.start_time
    {
        return GroupFate::Gone;
    }
    let members: Vec<i32> = procs
        .iter()
        .filter(|p| p.pgid == group.pgid && !p.zombie && p.start_time >= group.start_time)
        .map(|p| p.pid)
        .collect();
    if members.is_empty() {
        GroupFate::Gone
    } else {
        GroupFate::Orphaned(members)
    }
}

/// What was found of the previous instance.
#[derive(Debug, Default)]
pub struct Reaped {
    /// Commands whose process groups were stopped.
    pub stopped: Vec<String>,
    /// Of those, the ones that ignored SIGTERM for [`REAP_GRACE`].
    pub killed: Vec<String>,
    /// Compose services whose container still runs (adopted by the next `compose up`).
    pub compose_running: Vec<ComposeRecord>,
}

/// Reads the previous record at `path`, stops what is left of it, and starts this instance's
/// record there. Call while holding the instance lock, before anything starts.
pub async fn reap_leftovers_and_record(
    path: &Path,
    compose_running: impl AsyncFn(&ComposeRecord) -> bool,
) -> std::io::Result<(Reaped, Arc<Leftovers>)> {
    let previous = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
    let mut reaped = Reaped::default();
    if let Some(prev) = previous.filter(|p| p.boot_id == boot_id()) {
        reaped = reap(&prev).await;
        for c in &prev.compose {
            if compose_running(c).await {
                reaped.compose_running.push(c.clone());
            }
        }
    }
    let me = Leftovers::create(path.to_path_buf())?;
    Ok((reaped, me))
}

async fn reap(prev: &Record) -> Reaped {
    let mut reaped = Reaped::default();
    let procs = all_processes();
    let orphaned: Vec<&GroupRecord> = prev
        .groups
        .iter()
        .filter(|g| matches!(judge(g, &procs), GroupFate::Orphaned(_)))
        .collect();
    for g in &orphaned {
        let _ = killpg(Pid::from_raw(g.pgid), Signal::SIGTERM);
        reaped.stopped.push(g.command.clone());
    }
    let deadline = Instant::now() + REAP_GRACE;
    let mut left = orphaned;
    loop {
        let procs = all_processes();
        left.retain(|g| matches!(judge(g, &procs), GroupFate::Orphaned(_)));
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for g in left {
        let _ = killpg(Pid::from_raw(g.pgid), Signal::SIGKILL);
        reaped.killed.push(g.command.clone());
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, pgid: i32, start_time: u64) -> ProcStat {
        ProcStat {
            pid,
            pgid,
            start_time,
            zombie: false,
        }
    }

    fn group(pgid: i32, start_time: u64) -> GroupRecord {
        GroupRecord {
            pgid,
            start_time,
            command: "serve".into(),
        }
    }

    #[test]
    fn a_group_is_reaped_only_while_it_is_the_one_stilt_started() {
        let g = group(100, 5000);
        let zombie = ProcStat {
            zombie: true,
            ..p(100, 100, 5000)
        };
        let cases: Vec<(&str, Vec<ProcStat>, GroupFate)> = vec![
            (
                "leader and child alive",
                vec![p(100, 100, 5000), p(101, 100, 5001), p(7, 7, 10)],
                GroupFate::Orphaned(vec![100, 101]),
            ),
            ("nothing left", vec![p(7, 7, 10)], GroupFate::Gone),
            (
                "pid reused by another program",
                vec![p(100, 100, 9000)],
                GroupFate::Gone,
            ),
            (
                "pid reused by a process in another group",
                vec![p(100, 55, 9000), p(101, 100, 5001)],
                GroupFate::Gone,
            ),
            (
                "leader gone, backgrounded child still in the group",
                vec![p(101, 100, 5001)],
                GroupFate::Orphaned(vec![101]),
            ),
            ("only a zombie leader", vec![zombie], GroupFate::Gone),
            (
                "an older process in that group is not ours",
                vec![p(99, 100, 10)],
                GroupFate::Gone,
            ),
        ];
        for (what, procs, want) in cases {
            assert_eq!(judge(&g, &procs), want, "{what}");
        }
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pid: 4242,
                pgid: 4242,
                start_time: 987654,
                zombie: false
            })
        );
        let me = read_stat(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.start_time > 0);
    }

    #[tokio::test]
    async fn the_next_instance_stops_what_a_crashed_one_left_and_spares_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("10350.leftovers.json");
        let first = Leftovers::create(path.clone()).unwrap();
        // An orphan that ignores SIGTERM (needs the SIGKILL), one that does not, and a process
        // Stilt did not start.
        let spawn = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap()
        };
        use std::os::unix::process::CommandExt;
        let ready = dir.path().join("ready");
        let mut stubborn = spawn(&format!(
            "trap '' TERM; sleep 300 & touch {}; wait",
            ready.display()
        ));
        // Only once the trap is set does the test mean anything.
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut polite = spawn("sleep 300");
        let mut stranger = spawn("sleep 300");
        first.started(stubborn.id() as i32, "stubborn");
        first.started(polite.id() as i32, "polite");
        // A record of a process that ended long ago, whose pid now belongs to the stranger.
        {
            let mut r = first.record.lock();
            r.groups.push(GroupRecord {
                pgid: stranger.id() as i32,
                start_time: 1,
                command: "old".into(),
            });
            first.save(&r).unwrap();
        }
        // The instance crashes: nothing is stopped, the record stays.
        drop(first);
        let t0 = Instant::now();
        let (reaped, second) = reap_leftovers_and_record(&path, async |_| false)
            .await
            .unwrap();
        assert_eq!(reaped.stopped, vec!["stubborn", "polite"]);
        assert_eq!(reaped.killed, vec!["stubborn"]);
        assert!(t0.elapsed() >= REAP_GRACE, "SIGKILL only after the grace");
        assert!(stubborn.wait().unwrap().code().is_none());
        assert!(polite.wait().unwrap().code().is_none());
        assert!(
            stranger.try_wait().unwrap().is_none(),
            "a reused pid is spared"
        );
        stranger.kill().unwrap();
        let _ = stranger.wait();
        // The new record is this instance's and empty.
        let now: Record = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id());
        assert!(now.groups.is_empty());
        second.finish();
        assert!(!path.exists());
    }
}
