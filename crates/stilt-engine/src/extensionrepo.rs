//! The ExtensionRepo reconciler: makes each repo's files available and writes where they are
//! (`status.path`, `checkoutRef`, `lastFetchedAt`, `staleReason`, `error`). Local repos
//! (absolute paths, `file://`) are checked in place; git repos are cloned into the shared cache
//! (`$STILT_HOME/tilt_modules`) by `stilt_extrepo`, which decides when to go to the network: a
//! clone when there is no copy, once per session for an unpinned repo, for a pinned `ref` only
//! when the copy lacks it, and whenever asked. Asking is the annotation
//! [`ANN_FETCH_REQUEST`] (any new value; `stilt ext fetch <repo>` writes one), answered in
//! [`ANN_FETCHED_REQUEST`]. A fetch that fails over an existing copy keeps that copy (status
//! `staleReason` names the URL); a clone that fails is an error retried with backoff (5 s
//! doubling, as Tilt). The Tiltfile loader reads the same cache, so an ExtensionRepo created with
//! `kubectl apply` and one the Tiltfile registers behave the same; a fetch that changes the files
//! reloads the Tiltfile through its watch on the extension files it read.

use crate::Ctx;
use crate::controller::{self, Outcome, Queue, Reconcile};
use crate::names::TILTFILE_RESOURCE;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

/// Set to a new value to ask for a fetch of the repo.
pub const ANN_FETCH_REQUEST: &str = "stilt.dev/fetch-request";
/// The last fetch request the reconciler answered.
pub const ANN_FETCHED_REQUEST: &str = "stilt.dev/fetched-request";

/// What a reconcile must do with a repo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The status is current.
    Nothing,
    /// A check is running; it re-queues the repo when done.
    Wait,
    /// Make the files available (fetching when `force`, or as the cache decides).
    Ensure { force: bool },
}

/// What was last done for a repo: the spec and fetch request it answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    pub url: String,
    pub r#ref: String,
    pub request: String,
    /// The attempt failed (retried with backoff).
    pub failed: bool,
}

/// Decide about one repo (pure).
pub fn decide(spec: &ExtensionRepoSpec, request: &str, last: Option<&Done>, running: bool) -> Step {
    if running {
        return Step::Wait;
    }
    let force = !request.is_empty() && last.is_none_or(|d| d.request != request);
    match last {
        Some(d) if d.url == spec.url && d.r#ref == spec.r#ref && !force && !d.failed => {
            Step::Nothing
        }
        _ => Step::Ensure { force },
    }
}

/// The status a check gives a repo.
pub fn status_of(
    res: &Result<stilt_extrepo::Checkout, stilt_extrepo::Error>,
) -> ExtensionRepoStatus {
    match res {
        Ok(c) => ExtensionRepoStatus {
            error: String::new(),
            last_fetched_at: c.fetched_at.map(Time::from),
            path: c.path.display().to_string(),
            checkout_ref: c.checkout_ref.clone(),
            stale_reason: c.stale_reason.clone(),
        },
        Err(e) => ExtensionRepoStatus {
            error: e.to_string(),
            ..Default::default()
        },
    }
}

/// The delay before retrying a failed check: 5 s, doubling, at most 5 min (Tilt's backoff).
pub fn next_backoff(previous: Option<Duration>) -> Duration {
    match previous {
        None => Duration::from_secs(5),
        Some(d) => (d * 2).min(Duration::from_secs(300)),
    }
}

#[derive(Default)]
struct State {
    last: HashMap<String, Done>,
    running: HashSet<String>,
    backoff: HashMap<String, Duration>,
}

struct RepoReconciler {
    ctx: Ctx,
    queue: Queue,
    state: Arc<Mutex<State>>,
}

pub fn start(ctx: Ctx) {
    let queue = Queue::default();
    let r = Arc::new(RepoReconciler {
        ctx: ctx.clone(),
        queue: queue.clone(),
        state: Default::default(),
    });
    controller::run(
        ctx,
        queue,
        vec![("ExtensionRepo", controller::same_name())],
        r,
    );
}

impl Reconcile for RepoReconciler {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let repo = match self.ctx.store.get_typed::<ExtensionRepo>(name) {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                // The cache is shared (other repos, other Stilts may use the same copy): kept.
                let mut st = self.state.lock();
                st.last.remove(name);
                st.backoff.remove(name);
                return Outcome::Done;
            }
            Err(e) => return Outcome::Error(e.to_string()),
        };
        // Only built-in extensions (`ext://syncback`) name it: nothing to fetch.
        if repo
            .metadata
            .annotations
            .get(stilt_extrepo::ANN_BUILTIN_ONLY)
            .is_some_and(|v| v == "true")
        {
            return Outcome::Done;
        }
        let request = repo
            .metadata
            .annotations
            .get(ANN_FETCH_REQUEST)
            .cloned()
            .unwrap_or_default();
        let force = {
            let mut st = self.state.lock();
            let step = decide(
                &repo.spec,
                &request,
                st.last.get(name),
                st.running.contains(name),
            );
            let Step::Ensure { force } = step else {
                return Outcome::Done;
            };
            st.running.insert(name.to_owned());
            force
        };
        let ctx = self.ctx.clone();
        let name = name.to_owned();
        let spec = repo.spec.clone();
        let previous = repo.status.clone().unwrap_or_default();
        let queue = self.queue.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            let cache = ctx.ext_cache.clone();
            let (url, r#ref) = (spec.url.clone(), spec.r#ref.clone());
            let res = tokio::task::spawn_blocking(move || cache.ensure(&url, &r#ref, force))
                .await
                .unwrap_or_else(|e| {
                    Err(stilt_extrepo::Error::Git {
                        url: spec.url.clone(),
                        msg: format!("the fetch task failed: {e}"),
                    })
                });
            let status = status_of(&res);
            log_changes(&ctx, &name, &previous, &status);
            if let Err(e) = ctx
                .store
                .update_status_with::<ExtensionRepo>(&name, |o| o.status = Some(status.clone()))
            {
                tracing::warn!("writing the status of ExtensionRepo {name}: {e}");
            }
            if !request.is_empty() {
                answer_request(&ctx, &name, &request);
            }
            let failed = res.is_err();
            let retry = {
                let mut st = state.lock();
                st.running.remove(&name);
                st.last.insert(
                    name.clone(),
                    Done {
                        url: spec.url.clone(),
                        r#ref: spec.r#ref.clone(),
                        request: request.clone(),
                        failed,
                    },
                );
                if failed {
                    let b = next_backoff(st.backoff.get(&name).copied());
                    st.backoff.insert(name.clone(), b);
                    Some(b)
                } else {
                    st.backoff.remove(&name);
                    None
                }
            };
            match retry {
                Some(after) => queue.add_after(&name, after),
                // The spec or request may have changed while the check ran.
                None => queue.add(&name),
            }
        });
        Outcome::Done
    }
}

/// Stale copies and errors go to the Tiltfile's log once each (as Tilt logs them).
fn log_changes(ctx: &Ctx, name: &str, old: &ExtensionRepoStatus, new: &ExtensionRepoStatus) {
    if !new.stale_reason.is_empty() && new.stale_reason != old.stale_reason {
        ctx.logs.line(
            TILTFILE_RESOURCE,
            "extensionrepo",
            Level::Warn,
            &format!("extensionrepo {name}: may be stale: {}", new.stale_reason),
        );
    }
    if !new.error.is_empty() && new.error != old.error {
        ctx.logs.line(
            TILTFILE_RESOURCE,
            "extensionrepo",
            Level::Error,
            &format!("extensionrepo {name}: {}", new.error),
        );
    }
}

/// Record that the fetch request was answered (metadata, so `stilt wait` / `get` can see it).
fn answer_request(ctx: &Ctx, name: &str, request: &str) {
    for _ in 0..5 {
        let Ok(mut o) = ctx.store.get_typed::<ExtensionRepo>(name) else {
            return;
        };
        if o.metadata
            .annotations
            .get(ANN_FETCHED_REQUEST)
            .map(String::as_str)
            == Some(request)
        {
            return;
        }
        o.metadata
            .annotations
            .insert(ANN_FETCHED_REQUEST.to_owned(), request.to_owned());
        match ctx.store.update_typed(&o) {
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => {
                tracing::warn!("answering the fetch request of ExtensionRepo {name}: {e}");
                return;
            }
            Ok(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, r: &str) -> ExtensionRepoSpec {
        ExtensionRepoSpec {
            url: url.into(),
            r#ref: r.into(),
            ..Default::default()
        }
    }

    fn done(url: &str, r: &str, request: &str, failed: bool) -> Done {
        Done {
            url: url.into(),
            r#ref: r.into(),
            request: request.into(),
            failed,
        }
    }

    #[test]
    fn decisions() {
        let u = "git://h/r";
        let cases: Vec<(ExtensionRepoSpec, &str, Option<Done>, bool, Step)> = vec![
            // Never looked at: check (the cache decides whether that needs the network).
            (spec(u, ""), "", None, false, Step::Ensure { force: false }),
            // A check is running: it re-queues.
            (spec(u, ""), "", None, true, Step::Wait),
            // Same spec, no new request: nothing (no fetch on every reconcile).
            (
                spec(u, ""),
                "",
                Some(done(u, "", "", false)),
                false,
                Step::Nothing,
            ),
            // A new ref or URL: check again (no forced fetch: a pinned ref may be in the copy).
            (
                spec(u, "v2"),
                "",
                Some(done(u, "v1", "", false)),
                false,
                Step::Ensure { force: false },
            ),
            (
                spec("git://h/s", ""),
                "",
                Some(done(u, "", "", false)),
                false,
                Step::Ensure { force: false },
            ),
            // A new fetch request: forced fetch; one already answered: nothing.
            (
                spec(u, ""),
                "2",
                Some(done(u, "", "1", false)),
                false,
                Step::Ensure { force: true },
            ),
            (spec(u, ""), "1", None, false, Step::Ensure { force: true }),
            (
                spec(u, ""),
                "1",
                Some(done(u, "", "1", false)),
                false,
                Step::Nothing,
            ),
            // The last attempt failed: the backoff re-queue checks again.
            (
                spec(u, ""),
                "",
                Some(done(u, "", "", true)),
                false,
                Step::Ensure { force: false },
            ),
        ];
        for (spec, request, last, running, want) in cases {
            assert_eq!(
                decide(&spec, request, last.as_ref(), running),
                want,
                "{spec:?} request={request:?} last={last:?} running={running}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(next_backoff(None), Duration::from_secs(5));
        assert_eq!(
            next_backoff(Some(Duration::from_secs(5))),
            Duration::from_secs(10)
        );
        assert_eq!(
            next_backoff(Some(Duration::from_secs(200))),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn statuses() {
        let ok = Ok(stilt_extrepo::Checkout {
            path: "/c/h/r".into(),
            checkout_ref: "abc".into(),
            fetched_at: None,
            stale_reason: "fetching git://h/r failed".into(),
            changed: false,
        });
        let s = status_of(&ok);
        assert_eq!(
            (s.path.as_str(), s.checkout_ref.as_str(), s.error.as_str()),
            ("/c/h/r", "abc", "")
        );
        assert_eq!(s.stale_reason, "fetching git://h/r failed");
        let err = Err(stilt_extrepo::Error::Clone {
            url: "git://h/r".into(),
            msg: "connection refused".into(),
        });
        let s = status_of(&err);
        assert!(s.path.is_empty());
        assert_eq!(
            s.error,
            "cloning extension repo git://h/r: connection refused"
        );
    }
}
