//! Following a container's log across restarts (PodLogStream semantics).
//!
//! Each line is requested with its timestamp, so when the stream ends (the container exited,
//! the connection dropped) it is reopened from the last timestamp seen and lines already
//! delivered are skipped. The follow ends when the pod is gone or finished.

use crate::cluster::{Cluster, ContainerRef, LogRequest};
use crate::discovery::api_pod;
use crate::error::K8sError;
use crate::manifest::ObjectRef;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

/// What [`follow_logs`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// One line (without its newline), with the time the container wrote it.
    Line { time: DateTime<Utc>, text: String },
    /// The stream broke or the container is not running; it will be reopened.
    Reconnecting { reason: String },
    /// No more logs will come: the pod is gone or finished.
    Ended { reason: String },
}

/// Options of [`follow_logs`].
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Only lines after this time (Tilt sets the session start).
    pub since: Option<DateTime<Utc>>,
    /// Pause before reopening a stream (Tilt: 2 s).
    pub reconnect_gap: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            since: None,
            reconnect_gap: Duration::from_secs(2),
        }
    }
}

/// Split `2026-11-23T15:40:00.123456789Z text` into time and text.
pub fn split_timestamp(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let (ts, rest) = line.split_once(' ').unwrap_or((line, ""));
    let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    Some((t, rest))
}

/// Follow one container's log until its pod is gone or finished.
pub fn follow_logs(
    cluster: Arc<dyn Cluster>,
    container: ContainerRef,
    opts: FollowOptions,
) -> BoxStream<'static, LogEvent> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        let closed = tx.clone();
        tokio::select! {
            _ = follow_loop(cluster, container, opts, tx) => {}
            _ = closed.closed() => {}
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

async fn follow_loop(
    cluster: Arc<dyn Cluster>,
    container: ContainerRef,
    opts: FollowOptions,
    tx: tokio::sync::mpsc::Sender<LogEvent>,
) {
    let mut last: Option<DateTime<Utc>> = opts.since;
    // Lines already delivered that carry exactly `last` as their time.
    let mut seen_at_last = 0usize;
    let mut last_reason = String::new();
    let pod_ref = ObjectRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: container.pod.clone(),
        namespace: container.namespace.clone(),
        uid: String::new(),
    };
    loop {
        let req = LogRequest {
            container: container.clone(),
            follow: true,
            since: last,
            timestamps: true,
            previous: false,
        };
        let reason = match cluster.logs(&req).await {
            Ok(mut lines) => {
                let mut skip_equal = seen_at_last;
                let mut got_any = false;
                let mut err = None;
                while let Some(line) = lines.next().await {
                    let line = match line {
                        Ok(l) => l,
                        Err(e) => {
                            err = Some(e.to_string());
                            break;
                        }
                    };
                    let Some((t, text)) = split_timestamp(&line) else {
                        // Not timestamped (should not happen): pass through.
                        let ev = LogEvent::Line {
                            time: Utc::now(),
                            text: line,
                        };
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                        continue;
                    };
                    if let Some(l) = last {
                        if t < l {
                            continue;
                        }
                        if t == l && skip_equal > 0 {
                            skip_equal -= 1;
                            continue;
                        }
                    }
                    if Some(t) == last {
                        seen_at_last += 1;
                    } else {
                        last = Some(t);
                        seen_at_last = 1;
                    }
                    got_any = true;
                    let ev = LogEvent::Line {
                        time: t,
                        text: text.to_string(),
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                if got_any {
                    last_reason.clear();
                }
                err.unwrap_or_else(|| "log stream ended".into())
            }
            Err(e) if e.is_not_found() => {
                let _ = tx
                    .send(LogEvent::Ended {
                        reason: format!("pod {} not found", container.pod),
                    })
                    .await;
                return;
            }
            Err(e) => e.to_string(),
        };

        // Is there anything left to follow?
        match cluster.get(&pod_ref).await {
            Ok(None) => {
                let _ = tx
                    .send(LogEvent::Ended {
                        reason: format!("pod {} deleted", container.pod),
                    })
                    .await;
                return;
            }
            Ok(Some(p)) => {
                let pod = api_pod(&p, "");
                if pod.deleting || pod.phase == "Succeeded" || pod.phase == "Failed" {
                    let _ = tx
                        .send(LogEvent::Ended {
                            reason: format!("pod {} {}", container.pod, pod.status),
                        })
                        .await;
                    return;
                }
            }
            Err(K8sError::NotFound(_)) => {
                let _ = tx
                    .send(LogEvent::Ended {
                        reason: format!("pod {} deleted", container.pod),
                    })
                    .await;
                return;
            }
            Err(_) => {}
        }
        if reason != last_reason {
            if tx
                .send(LogEvent::Reconnecting {
                    reason: reason.clone(),
                })
                .await
                .is_err()
            {
                return;
            }
            last_reason = reason;
        }
        tokio::time::sleep(opts.reconnect_gap).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_kubelet_timestamps() {
        let (t, text) = split_timestamp("2026-11-23T15:40:00.123456789Z hello world").unwrap();
        assert_eq!(text, "hello world");
        assert_eq!(t.timestamp_subsec_nanos(), 123456789);
        let (_, empty) = split_timestamp("2026-11-23T15:40:00Z").unwrap();
        assert_eq!(empty, "");
        assert!(split_timestamp("no timestamp here").is_none());
    }
}
