//! The controller loop: watch inputs in the store, queue names, reconcile one at a time.
//!
//! A reconcile returns an [`Outcome`]: done, look again after a delay, or failed (looked at again
//! with exponential backoff per name, reset by the next success). The watch of each input kind
//! relists when the store closes it for lagging and retries when it cannot start, so one error
//! never stops a controller for good.

use crate::Ctx;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use stilt_store::{Selectors, WatchEnd, WatchFrom};
use tokio::sync::Notify;

/// What a reconcile decided about its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do until an input changes.
    Done,
    /// Look at the object again after this delay (polling, waiting for something outside the
    /// store).
    RequeueAfter(Duration),
    /// The reconcile failed; it is retried with exponential backoff.
    Error(String),
}

/// Decides about one object and reports what should happen next. Must not block: long work goes
/// into spawned tasks, which re-queue the name when they finish.
pub trait Reconcile: Send + Sync + 'static {
    fn reconcile_once(&self, name: &str) -> Outcome;
}

/// A reconciler that is always done (the older form; every one of them reports through status).
pub trait Reconciler: Send + Sync + 'static {
    fn reconcile(&self, name: &str);
}

impl<T: Reconciler> Reconcile for T {
    fn reconcile_once(&self, name: &str) -> Outcome {
        self.reconcile(name);
        Outcome::Done
    }
}

/// Names waiting, in order, and the same names as a set for deduplication.
type Pending = Mutex<(VecDeque<String>, HashSet<String>)>;

/// A deduplicating queue of names to reconcile.
#[derive(Clone, Default)]
pub struct Queue {
    inner: Arc<(Pending, Notify)>,
}

impl Queue {
    pub fn add(&self, name: &str) {
        let (lock, notify) = &*self.inner;
        let mut q = lock.lock();
        if q.1.insert(name.to_string()) {
            q.0.push_back(name.to_string());
        }
        drop(q);
        notify.notify_one();
    }

    pub fn add_after(&self, name: &str, delay: Duration) {
        let q = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&name);
        });
    }

    async fn next(&self) -> String {
        loop {
            let (lock, notify) = &*self.inner;
            {
                let mut q = lock.lock();
                if let Some(name) = q.0.pop_front() {
                    q.1.remove(&name);
                    return name;
                }
            }
            notify.notified().await;
        }
    }
}

/// Maps an event on a watched kind to the names to reconcile.
pub type Mapper = Arc<dyn Fn(&Ctx, &Value) -> Vec<String> + Send + Sync>;

/// Enqueue the changed object's own name.
pub fn same_name() -> Mapper {
    Arc::new(|_, obj| {
        obj["metadata"]["name"]
            .as_str()
            .map(|n| vec![n.to_string()])
            .unwrap_or_default()
    })
}

/// Enqueue the names of the owners of kind `owner_kind` of the changed object.
pub fn owner_of(owner_kind: &'static str) -> Mapper {
    Arc::new(move |_, obj| {
        obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["kind"] == owner_kind)
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    })
}

/// First retry delay after a failed reconcile, doubled per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Per-name retry delays after failures.
#[derive(Default)]
pub struct Backoff {
    delays: HashMap<String, Duration>,
}

impl Backoff {
    /// The delay before retrying `name` after one more failure.
    pub fn failed(&mut self, name: &str) -> Duration {
        let d = self
            .delays
            .get(name)
            .map_or(FIRST_BACKOFF, |d| (*d * 2).min(MAX_BACKOFF));
        self.delays.insert(name.to_string(), d);
        d
    }

    /// A success resets the name's backoff.
    pub fn succeeded(&mut self, name: &str) {
        self.delays.remove(name);
    }
}

/// Runs `reconciler` for names produced by watching `inputs`.
pub fn run(
    ctx: Ctx,
    queue: Queue,
    inputs: Vec<(&'static str, Mapper)>,
    reconciler: Arc<dyn Reconcile>,
) {
    for (kind, map) in inputs {
        let ctx = ctx.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut retry = FIRST_BACKOFF;
            loop {
                let watch =
                    match ctx
                        .store
                        .watch(Some(kind), Selectors::default(), WatchFrom::Beginning)
                    {
                        Ok(w) => w,
                        Err(e) => {
                            tracing::warn!("watching {kind}: {e}; retrying in {retry:?}");
                            tokio::time::sleep(retry).await;
                            retry = (retry * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    };
                retry = FIRST_BACKOFF;
                for ev in &watch.initial {
                    for n in map(&ctx, &ev.object) {
                        queue.add(&n);
                    }
                }
                let mut stream = watch.stream;
                let end = loop {
                    match stream.next().await {
                        Ok(ev) => {
                            for n in map(&ctx, &ev.object) {
                                queue.add(&n);
                            }
                        }
                        Err(end) => break end,
                    }
                };
                // A lagging watch is closed by the store: relist from the beginning. A closed
                // store means the engine is gone.
                if end == WatchEnd::Closed {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let name = queue.next().await;
            let r = reconciler.clone();
            let n = name.clone();
            // A panicking reconcile is a failed reconcile, not a dead controller.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.reconcile_once(&n)))
                    .unwrap_or_else(|_| Outcome::Error(format!("reconciling {n} panicked")));
            match outcome {
                Outcome::Done => backoff.succeeded(&name),
                Outcome::RequeueAfter(d) => {
                    backoff.succeeded(&name);
                    queue.add_after(&name, d);
                }
                Outcome::Error(e) => {
                    let d = backoff.failed(&name);
                    tracing::debug!("reconciling {name}: {e}; retrying in {d:?}");
                    queue.add_after(&name, d);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_caps_and_resets_on_success() {
        let mut b = Backoff::default();
        assert_eq!(b.failed("a"), FIRST_BACKOFF);
        assert_eq!(b.failed("a"), FIRST_BACKOFF * 2);
        assert_eq!(b.failed("b"), FIRST_BACKOFF, "per name");
        for _ in 0..20 {
            b.failed("a");
        }
        assert_eq!(b.failed("a"), MAX_BACKOFF);
        b.succeeded("a");
        assert_eq!(b.failed("a"), FIRST_BACKOFF);
    }
}
