//! The controller loop: watch inputs in the store, queue names, reconcile one at a time.

use crate::Ctx;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use stilt_store::{Selectors, WatchFrom};
use tokio::sync::Notify;

/// Decides about one object. Must not block: long work goes into spawned tasks.
pub trait Reconciler: Send + Sync + 'static {
    fn reconcile(&self, name: &str);
}

/// Names waiting, in order, and the same names as a set for deduplication.
type Pending = Mutex<(Vec<String>, HashSet<String>)>;

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
            q.0.push(name.to_string());
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
                if !q.0.is_empty() {
                    let name = q.0.remove(0);
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

/// Runs `reconciler` for names produced by watching `inputs`.
pub fn run(
    ctx: Ctx,
    queue: Queue,
    inputs: Vec<(&'static str, Mapper)>,
    reconciler: Arc<dyn Reconciler>,
) {
    for (kind, map) in inputs {
        let ctx = ctx.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            loop {
                let Ok(watch) =
                    ctx.store
                        .watch(Some(kind), Selectors::default(), WatchFrom::Beginning)
                else {
                    return;
                };
                for ev in &watch.initial {
                    for n in map(&ctx, &ev.object) {
                        queue.add(&n);
                    }
                }
                let mut stream = watch.stream;
                // A lagging watch is closed by the store; relist by watching from the beginning.
                while let Ok(ev) = stream.next().await {
                    for n in map(&ctx, &ev.object) {
                        queue.add(&n);
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let name = queue.next().await;
            reconciler.reconcile(&name);
        }
    });
}
