//! "Which objects of this kind name the one that changed?" answered from an index kept current by
//! a watch of that kind. Asked on every event of the named kind, a scan decoded every object of
//! the naming kind: quadratic in resources, and most of the CPU of a 1,000-resource start.
//!
//! The index may trail the store by an event; a mapper built on it can miss an object only while
//! that object's own event is still queued, and that event queues it anyway.

use crate::Ctx;
use crate::controller::Mapper;
use parking_lot::RwLock;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use stilt_store::{EventType, Selectors, WatchEnd, WatchFrom};

/// The keys an object is found under (or the keys an event's object looks up).
pub type Keys = Arc<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

#[derive(Default, Debug)]
pub struct Index {
    by_key: HashMap<String, BTreeSet<String>>,
    keys_of: HashMap<String, Vec<String>>,
}

impl Index {
    pub fn set(&mut self, name: &str, keys: Vec<String>) {
        self.remove(name);
        for k in &keys {
            self.by_key
                .entry(k.clone())
                .or_default()
                .insert(name.to_string());
        }
        if !keys.is_empty() {
            self.keys_of.insert(name.to_string(), keys);
        }
    }

    pub fn remove(&mut self, name: &str) {
        for k in self.keys_of.remove(name).unwrap_or_default() {
            if let Some(names) = self.by_key.get_mut(&k) {
                names.remove(name);
                if names.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    pub fn lookup(&self, key: &str) -> impl Iterator<Item = &String> {
        self.by_key.get(key).into_iter().flatten()
    }

    fn apply(&mut self, keys: &Keys, r#type: EventType, obj: &Value) {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        match r#type {
            EventType::Deleted => self.remove(name),
            EventType::Added | EventType::Modified => self.set(name, keys(obj)),
        }
    }
}

/// A mapper to the `kind` objects whose `keys` include one of `event_keys` of the changed object.
/// The index is filled before this returns, then follows `kind`'s watch (relisting if it lags).
pub fn referencing(ctx: &Ctx, kind: &'static str, keys: Keys, event_keys: Keys) -> Mapper {
    let index = Arc::new(RwLock::new(Index::default()));
    let first = ctx
        .store
        .watch(Some(kind), Selectors::default(), WatchFrom::Beginning);
    let (ctx2, index2) = (ctx.clone(), index.clone());
    tokio::spawn(async move {
        let mut watch = first;
        loop {
            let w = match watch {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!("indexing {kind}: {e}; retrying");
                    tokio::time::sleep(crate::controller::FIRST_BACKOFF).await;
                    watch =
                        ctx2.store
                            .watch(Some(kind), Selectors::default(), WatchFrom::Beginning);
                    continue;
                }
            };
            {
                let mut idx = index2.write();
                *idx = Index::default();
                for ev in &w.initial {
                    idx.apply(&keys, ev.r#type, &ev.object);
                }
            }
            let mut stream = w.stream;
            let end = loop {
                match stream.next().await {
                    Ok(ev) => index2.write().apply(&keys, ev.r#type, &ev.object),
                    Err(end) => break end,
                }
            };
            if end == WatchEnd::Closed {
                return;
            }
            watch = ctx2
                .store
                .watch(Some(kind), Selectors::default(), WatchFrom::Beginning);
        }
    });
    Arc::new(move |_, obj| {
        let idx = index.read();
        let mut out: Vec<String> = event_keys(obj)
            .iter()
            .flat_map(|k| idx.lookup(k).cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    })
}

/// The changed object's own name: the usual key an event looks up.
pub fn own_name() -> Keys {
    Arc::new(|obj| {
        obj["metadata"]["name"]
            .as_str()
            .map(|n| vec![n.to_string()])
            .unwrap_or_default()
    })
}

/// Keys read from a typed spec: `f` of the decoded `spec` (nothing when it does not decode).
pub fn spec_keys<S: serde::de::DeserializeOwned>(
    f: impl Fn(&S) -> Vec<String> + Send + Sync + 'static,
) -> Keys {
    Arc::new(move |obj| {
        S::deserialize(&obj["spec"])
            .map(|s| f(&s))
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_an_objects_keys_and_remove_forgets_them() {
        let mut idx = Index::default();
        idx.set("lu-a", vec!["fw-1".into(), "im-1".into()]);
        idx.set("lu-b", vec!["fw-1".into()]);
        let found = |idx: &Index, k: &str| idx.lookup(k).cloned().collect::<Vec<_>>();
        assert_eq!(found(&idx, "fw-1"), ["lu-a", "lu-b"]);
        idx.set("lu-a", vec!["fw-2".into()]);
        assert_eq!(found(&idx, "fw-1"), ["lu-b"]);
        assert!(found(&idx, "im-1").is_empty());
        assert_eq!(found(&idx, "fw-2"), ["lu-a"]);
        idx.remove("lu-b");
        assert!(found(&idx, "fw-1").is_empty());
        assert!(idx.by_key.keys().all(|k| k == "fw-2"), "{idx:?}");
    }
}
