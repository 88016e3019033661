//! Readiness probes with Kubernetes' timing: initial delay, period, timeout, success and failure
//! thresholds. Results are reported on transitions.

use crate::proc::{Output, ProcSpec};
use std::time::Duration;
use stilt_api::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs one probe attempt; `Ok(detail)` on success.
pub async fn attempt(
    probe: &Probe,
    env: &[(String, String)],
    out: &Output,
) -> Result<String, String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.max(1) as u64);
    let h = &probe.handler;
    let run = async {
        if let Some(exec) = &h.exec {
            let spec = ProcSpec {
                args: exec.command.clone(),
                ..Default::default()
            };
            let quiet = Output {
                logs: stilt_logs::LogStore::new(stilt_logs::LogOptions {
                    max_bytes: 64 << 10,
                }),
                ..out.clone()
            };
            let mut p = crate::proc::spawn(&spec, env, quiet).map_err(|e| e.to_string())?;
            let exit = p.wait().await;
            return if exit.code == 0 {
                Ok(format!("exec {:?} succeeded", exec.command))
            } else {
                Err(format!("exec {:?} exited with {}", exec.command, exit.code))
            };
        }
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
