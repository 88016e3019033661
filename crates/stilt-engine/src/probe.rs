//! Readiness probes with Kubernetes' timing: initial delay, period, timeout, success and failure
//! thresholds. Results are reported on transitions.

use crate::leftovers::Leftovers;
use crate::proc::{Output, ProcSpec};
use std::sync::Arc;
use std::time::Duration;
use stilt_api::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs one probe attempt; `Ok(detail)` on success.
pub async fn attempt(
    probe: &Probe,
    env: &[(String, String)],
    out: &Output,
    leftovers: &Arc<Leftovers>,
) -> Result<String, String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.max(1) as u64);
    let h = &probe.handler;
    if let Some(exec) = &h.exec {
        return exec_attempt(&exec.command, env, out, timeout, leftovers).await;
    }
    let run = async {
        if let Some(http) = &h.http_get {
            let host = if http.host.is_empty() {
                "localhost"
            } else {
                http.host.as_str()
            };
            let path = if http.path.is_empty() {
                "/"
            } else {
                http.path.as_str()
            };
            let mut stream = TcpStream::connect((host, http.port as u16))
                .await
                .map_err(|e| format!("GET http://{host}:{}{path}: {e}", http.port))?;
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: stilt-probe\r\nConnection: close\r\n\r\n",
                http.port
            );
            stream
                .write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut head = vec![0u8; 64];
            let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
            let line = String::from_utf8_lossy(&head[..n]);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| {
                    format!(
                        "GET http://{host}:{}{path}: not an HTTP response",
                        http.port
                    )
                })?;
            return if (200..400).contains(&code) {
                Ok(format!("HTTP {code}"))
            } else {
                Err(format!(
                    "GET http://{host}:{}{path}: HTTP {code}",
                    http.port
                ))
            };
        }
        if let Some(tcp) = &h.tcp_socket {
            let host = if tcp.host.is_empty() {
                "localhost"
            } else {
                tcp.host.as_str()
            };
            TcpStream::connect((host, tcp.port as u16))
                .await
                .map_err(|e| format!("connect {host}:{}: {e}", tcp.port))?;
            return Ok(format!("connected to {host}:{}", tcp.port));
        }
        Err("the probe has no exec, httpGet or tcpSocket action".to_string())
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {}s", timeout.as_secs())),
    }
}

/// At most this much of an exec probe's output goes into its result.
const MAX_PROBE_OUTPUT: usize = 2048;

/// Runs an exec probe; its output (stdout and stderr, bounded) follows the verdict on the next
/// lines, as Tilt logs what the probe printed.
async fn exec_attempt(
    command: &[String],
    env: &[(String, String)],
    out: &Output,
    timeout: Duration,
    leftovers: &Arc<Leftovers>,
) -> Result<String, String> {
    let spec = ProcSpec {
        args: command.to_vec(),
        ..Default::default()
    };
    let captured = stilt_logs::LogStore::new(stilt_logs::LogOptions {
        max_bytes: 64 << 10,
    });
    let quiet = Output {
        logs: captured.clone(),
        ..out.clone()
    };
    let mut p = crate::proc::spawn(&spec, env, quiet, leftovers).map_err(|e| e.to_string())?;
    let verdict = match tokio::time::timeout(timeout, p.wait()).await {
        Ok(exit) if exit.code == 0 => Ok(format!("exec {command:?} succeeded")),
        Ok(exit) => Err(format!("exec {command:?} exited with {}", exit.code)),
        Err(_) => {
            p.stopper().stop(Duration::ZERO, None).await;
            Err(format!(
                "exec {command:?} timed out after {}s",
                timeout.as_secs()
            ))
        }
    };
    let printed: Vec<String> = captured
        .read(0, None)
        .lines
        .into_iter()
        .map(|l| l.text)
        .collect();
    let with_output = |v: String| with_bounded_output(v, &printed);
    verdict.map(with_output).map_err(with_output)
}

/// `verdict` followed by the tail of `lines`, at most [`MAX_PROBE_OUTPUT`] bytes.
fn with_bounded_output(verdict: String, lines: &[String]) -> String {
    let mut tail: Vec<&str> = vec![];
    let mut size = 0;
    for line in lines.iter().rev() {
        size += line.len() + 1;
        if size > MAX_PROBE_OUTPUT {
            tail.push("...");
            break;
        }
        tail.push(line);
    }
    tail.reverse();
    std::iter::once(verdict.as_str())
        .chain(tail)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Timing of a probe with Kubernetes' defaults filled in.
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

pub fn timing(p: &Probe) -> Timing {
    Timing {
        initial_delay: Duration::from_secs(p.initial_delay_seconds.max(0) as u64),
        period: Duration::from_secs(if p.period_seconds > 0 {
            p.period_seconds as u64
        } else {
            10
        }),
        success_threshold: if p.success_threshold > 0 {
            p.success_threshold as u32
        } else {
            1
        },
        failure_threshold: if p.failure_threshold > 0 {
            p.failure_threshold as u32
        } else {
            3
        },
    }
}

/// Tracks consecutive results and says when readiness flips.
#[derive(Default)]
pub struct Tracker {
    pub ready: bool,
    successes: u32,
    failures: u32,
}

impl Tracker {
    /// Records a result; returns the new readiness if it changed.
    pub fn record(&mut self, t: &Timing, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if !self.ready && self.successes >= t.success_threshold {
                self.ready = true;
                return Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.ready && self.failures >= t.failure_threshold {
                self.ready = false;
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_exec_probe_says_what_it_printed() {
        let out = Output {
            logs: stilt_logs::LogStore::default(),
            resource: "r".into(),
            span: "s".into(),
        };
        let probe = Probe {
            handler: stilt_api::Handler {
                exec: Some(stilt_api::ExecAction {
                    command: vec!["echo not yet; echo db down >&2; exit 1".into()],
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = attempt(&probe, &[], &out, &Leftovers::disabled())
            .await
            .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines[0].contains("exited with 1"), "{err}");
        assert!(
            lines.contains(&"not yet") && lines.contains(&"db down"),
            "{err}"
        );
        // The probe's output never lands in the resource's log by itself.
        assert!(out.logs.read(0, None).lines.is_empty());
    }

    #[test]
    fn probe_output_is_bounded_to_its_tail() {
        let lines: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
        let text = with_bounded_output("failed".into(), &lines);
        assert!(text.len() <= MAX_PROBE_OUTPUT + 20, "{}", text.len());
        assert!(text.starts_with("failed\n...\n") && text.ends_with("line 999"));
    }

    #[test]
    fn thresholds_follow_kubernetes() {
        let t = Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 2,
        };
        let mut tr = Tracker::default();
        assert_eq!(tr.record(&t, true), None);
        assert_eq!(tr.record(&t, true), Some(true));
        assert_eq!(tr.record(&t, false), None);
        assert_eq!(tr.record(&t, true), None);
        assert_eq!(tr.record(&t, false), None);
        assert_eq!(tr.record(&t, false), Some(false));
    }
}
