//! Watch responses: newline-delimited JSON events, resumable, with bookmarks and timeouts.

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::Params;
use crate::table::{self, IncludeObject};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use stilt_api::{API_VERSION, KindInfo};
use stilt_store::{Event, Selectors, StoreError, WatchEnd, WatchFrom};
use tokio::sync::mpsc;

/// Kubernetes' default watch timeout is 30–60 minutes; a watch that closes early makes clients
/// re-watch in a hot loop.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn event_line(kind: &str, object: Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

fn encode(info: &KindInfo, ev: &Event, table: Option<IncludeObject>, rv: u64) -> Bytes {
    let object = match table {
        Some(include) => table::table(info, &[&ev.object], rv, include),
        None => (*ev.object).clone(),
    };
    event_line(ev.r#type.as_str(), object)
}

fn bookmark(info: &KindInfo, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        json!({"kind": info.kind, "apiVersion": API_VERSION, "metadata": metadata}),
    )
}

fn error_event(err: ApiError) -> Bytes {
    event_line("ERROR", err.status_body())
}

/// The longest watch: `timeoutSeconds` beyond it (up to u64::MAX) would overflow the deadline.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

fn watch_timeout(seconds: Option<u64>) -> Duration {
    seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT)
}

pub fn watch(
    state: AppState,
    info: &'static KindInfo,
    selectors: Selectors,
    q: Params,
    table: Option<IncludeObject>,
) -> Result<Response, ApiError> {
    let send_initial = q.send_initial_events == Some(true);
    let from = match q.resource_version.as_deref() {
        _ if send_initial => WatchFrom::Beginning,
        None | Some("") | Some("0") => WatchFrom::Beginning,
        Some(rv) => WatchFrom::ResourceVersion(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let watch = match state.store.watch(Some(info.kind), selectors, from) {
        Ok(w) => Some(w),
        Err(e @ StoreError::Gone { .. }) => {
            let _ = tx.try_send(error_event(ApiError::new(410, "Expired", e.to_string())));
            None
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(watch) = watch {
        let timeout = watch_timeout(q.timeout_seconds);
        let bookmarks = q.allow_watch_bookmarks == Some(true);
        let interval = state.opts.bookmark_interval;
        let store = state.store.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut last_rv = store.resource_version();
            for ev in &watch.initial {
                if tx
                    .send(encode(info, ev, table, ev.resource_version))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if send_initial && tx.send(bookmark(info, last_rv, true)).await.is_err() {
                return;
            }
            let mut stream = watch.stream;
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tokio::select! {
                    ev = stream.next() => match ev {
                        Ok(ev) => {
                            last_rv = last_rv.max(ev.resource_version);
                            if tx.send(encode(info, &ev, table, ev.resource_version)).await.is_err() {
                                return;
                            }
                        }
                        Err(WatchEnd::Lagged) => {
                            let _ = tx.send(error_event(ApiError::new(410, "Expired", "the watch fell behind and was closed; relist and watch again"))).await;
                            return;
                        }
                        Err(WatchEnd::Closed) => return,
                    },
                    _ = ticker.tick(), if bookmarks => {
                        // Every event up to the store's version is already queued for this watcher
                        // when its queue is empty, so that version is safe to resume from.
                        let rv = store.resource_version();
                        if stream.is_empty() {
                            last_rv = last_rv.max(rv);
                        }
                        if tx.send(bookmark(info, last_rv, false)).await.is_err() {
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => return,
                    _ = tx.closed() => return,
                }
            }
        });
    }
    drop(state);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn any_timeout_seconds_gives_a_usable_deadline() {
        for seconds in [
            None,
            Some(0),
            Some(5),
            Some(u64::MAX / 1000),
            Some(u64::MAX),
        ] {
            let t = watch_timeout(seconds);
            assert!(t <= MAX_TIMEOUT);
            // What the watch task computes; overflowing here panicked the task.
            let _ = tokio::time::Instant::now() + t;
        }
        assert_eq!(watch_timeout(Some(5)), Duration::from_secs(5));
    }
}
