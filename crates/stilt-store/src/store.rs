use crate::StoreError;
use crate::patch::{self, PatchType};
use crate::selector::Selectors;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use stilt_api::{FieldError, KindInfo};
use tokio::sync::mpsc;

/// Limits of the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How many past events are kept for watchers resuming from a resourceVersion. A status
    /// update stores a whole new copy of its object, so at 1,000 resources ten thousand events
    /// held ~25 MB of superseded versions; a thousand is still far more than a watcher misses
    /// between its list and its watch (Kubernetes' own watch cache keeps about a hundred per
    /// kind), and one that falls further behind gets a 410 and relists, as clients do.
    pub history: usize,
    /// At most this many bytes of past events (estimated): a few huge objects, created and
    /// deleted, must not stay in memory until ten thousand other events push them out.
    pub history_bytes: usize,
    /// How many undelivered events a watcher may have before it is closed as lagging.
    pub watch_queue: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            history: 1_000,
            history_bytes: 8 << 20,
            watch_queue: 4_096,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Clone, Debug)]
pub struct Event {
    pub r#type: EventType,
    pub kind: &'static str,
    pub object: Arc<Value>,
    pub resource_version: u64,
}

/// Why a watch stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The watcher fell behind and was closed; it must relist (HTTP watchers get a 410).
    Lagged,
    /// The store was dropped.
    Closed,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchFrom {
    /// Every current object as ADDED, then changes (resourceVersion "" or "0").
    Beginning,
    /// Changes after this resourceVersion, replayed from history.
    ResourceVersion(u64),
}

/// A registered watch: the events to deliver first, then the live stream.
pub struct Watch {
    pub initial: Vec<Event>,
    pub stream: WatchStream,
}

pub struct WatchStream {
    rx: mpsc::Receiver<Event>,
    lagged: Arc<AtomicBool>,
}

impl WatchStream {
    /// Whether no event is waiting to be read.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    pub async fn next(&mut self) -> Result<Event, WatchEnd> {
        match self.rx.recv().await {
            Some(ev) => Ok(ev),
            None if self.lagged.load(Ordering::Acquire) => Err(WatchEnd::Lagged),
            None => Err(WatchEnd::Closed),
        }
    }
}

struct Watcher {
    kind: Option<&'static str>,
    selectors: Selectors,
    tx: mpsc::Sender<Event>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<String, Arc<Value>>>,
    history: VecDeque<Event>,
    /// The estimated size of each event in `history`, and their sum.
    history_sizes: VecDeque<usize>,
    history_bytes: usize,
    watchers: Vec<Watcher>,
}

/// A cheap estimate of the memory a JSON value holds (strings and keys dominate).
fn approx_size(v: &Value) -> usize {
    const NODE: usize = 16;
    match v {
        Value::String(s) => NODE + s.len(),
        Value::Array(items) => NODE + items.iter().map(approx_size).sum::<usize>(),
        Value::Object(map) => {
            NODE + map
                .iter()
                .map(|(k, v)| k.len() + approx_size(v))
                .sum::<usize>()
        }
        _ => NODE,
    }
}

/// The object store. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    opts: Arc<StoreOptions>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(StoreOptions::default())
    }
}

fn kind_info(kind: &str) -> Result<&'static KindInfo, StoreError> {
    stilt_api::kinds()
        .iter()
        .find(|k| k.kind == kind)
        .ok_or_else(|| StoreError::UnknownKind(kind.to_string()))
}

fn meta(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    let obj = v.as_object_mut().expect("objects are JSON objects");
    let m = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("made an object above")
}

fn meta_str<'a>(v: &'a Value, key: &str) -> &'a str {
    meta(v).get(key).and_then(Value::as_str).unwrap_or("")
}

fn now() -> Value {
    Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn invalid(kind: &str, name: &str, causes: Vec<FieldError>) -> StoreError {
    StoreError::Invalid {
        kind: kind.to_string(),
        name: name.to_string(),
        causes,
    }
}

fn validate(info: &KindInfo, obj: &Value) -> Result<(), StoreError> {
    (info.validate)(obj).map_err(|causes| match causes.as_slice() {
        // A body that does not decode (unknown field, wrong type) is a bad request, as in Kubernetes.
        [only] if only.field.is_empty() => StoreError::BadRequest(format!(
            "{} {:?}: {}",
            info.kind,
            meta_str(obj, "name"),
            only.message
        )),
        _ => invalid(info.kind, meta_str(obj, "name"), causes),
    })
}

/// The part of an object whose change bumps `metadata.generation`.
fn desired_part(obj: &Value) -> (&Value, &Value) {
    (
        obj.get("spec").unwrap_or(&Value::Null),
        obj.get("data").unwrap_or(&Value::Null),
    )
}

impl Store {
    pub fn new(opts: StoreOptions) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            opts: Arc::new(opts),
        }
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.lock().rv
    }

    pub fn get(&self, kind: &str, name: &str) -> Result<Arc<Value>, StoreError> {
        let info = kind_info(kind)?;
        self.state
            .lock()
            .objects
            .get(info.kind)
            .and_then(|objs| objs.get(name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                kind: info.plural.to_string(),
                name: name.to_string(),
            })
    }

    /// Matching objects, sorted by name, and the resourceVersion they are current at.
    pub fn list(
        &self,
        kind: &str,
        selectors: &Selectors,
    ) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        let info = kind_info(kind)?;
        let state = self.state.lock();
        let items = state
            .objects
            .get(info.kind)
            .map(|objs| {
                objs.values()
                    .filter(|o| selectors.matches(o))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok((items, state.rv))
    }

    /// Creates an object. Fills uid, creationTimestamp, generation and resourceVersion, and a name
    /// from `generateName` when none is given.
    pub fn create(&self, mut obj: Value) -> Result<Arc<Value>, StoreError> {
        if !obj.is_object() {
            return Err(StoreError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let info = kind_info(&kind)?;
        obj["apiVersion"] = Value::String(stilt_api::API_VERSION.to_string());
        {
            let m = meta_mut(&mut obj);
            if m.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
                && let Some(prefix) = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
            {
                let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
                m.insert("name".into(), Value::String(format!("{prefix}{suffix}")));
            }
            for key in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                m.remove(key);
            }
        }
        validate(info, &obj)?;
        let name = meta_str(&obj, "name").to_string();
        let mut state = self.state.lock();
        if state
            .objects
            .get(info.kind)
            .is_some_and(|objs| objs.contains_key(&name))
        {
            return Err(StoreError::AlreadyExists {
                kind: info.plural.to_string(),
                name,
            });
        }
        let rv = state.rv + 1;
        let m = meta_mut(&mut obj);
        m.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        m.insert("generation".into(), Value::from(1));
        m.insert("creationTimestamp".into(), now());
        let obj = Arc::new(obj);
        state.rv = rv;
        state
            .objects
            .entry(info.kind)
            .or_default()
            .insert(name, obj.clone());
        self.publish(&mut state, info.kind, EventType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object's spec and metadata; its status is kept (use [`Store::update_status`]).
    /// A non-empty `metadata.resourceVersion` must match the stored one. An update that changes
    /// nothing writes nothing.
    pub fn update(&self, obj: Value) -> Result<Arc<Value>, StoreError> {
        self.write_from(obj, false)
    }

    /// Replaces an object's status; everything else is kept.
    pub fn update_status(&self, obj: Value) -> Result<Arc<Value>, StoreError> {
        self.write_from(obj, true)
    }

    fn write_from(&self, obj: Value, status: bool) -> Result<Arc<Value>, StoreError> {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = meta_str(&obj, "name").to_string();
        let want_rv = meta_str(&obj, "resourceVersion").to_string();
        self.modify(
            &kind,
            &name,
            |current| {
                if !want_rv.is_empty() && want_rv != meta_str(current, "resourceVersion") {
                    return Err(StoreError::Conflict {
                        kind: kind_info(&kind)?.plural.into(),
                        name: name.clone(),
                    });
                }
                Ok(obj)
            },
            status,
        )
    }

    /// Applies a patch to the object (or to its status when `status` is true).
    pub fn patch(
        &self,
        kind: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        status: bool,
    ) -> Result<Arc<Value>, StoreError> {
        let want_rv = patch
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string);
        self.modify(
            kind,
            name,
            |current| {
                if let Some(rv) = &want_rv
                    && rv != meta_str(current, "resourceVersion")
                {
                    return Err(StoreError::Conflict {
                        kind: kind_info(kind)?.plural.into(),
                        name: name.to_string(),
                    });
                }
                let mut patched =
                    patch::apply(current, patch_type, patch).map_err(|e| match e {
                        StoreError::Invalid { causes, .. } => invalid(kind, name, causes),
                        other => other,
                    })?;
                if meta_str(&patched, "name") != name {
                    return Err(StoreError::BadRequest(format!(
                        "the name in the patch ({:?}) does not match the object ({name:?})",
                        meta_str(&patched, "name")
                    )));
                }
                meta_mut(&mut patched).remove("resourceVersion");
                Ok(patched)
            },
            status,
        )
    }

    /// Read-modify-write under the lock. `status` selects which half of the object the new value
    /// may change.
    fn modify(
        &self,
        kind: &str,
        name: &str,
        compute: impl FnOnce(&Value) -> Result<Value, StoreError>,
        status: bool,
    ) -> Result<Arc<Value>, StoreError> {
        let info = kind_info(kind)?;
        let mut state = self.state.lock();
        let current = state
            .objects
            .get(info.kind)
            .and_then(|o| o.get(name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                kind: info.plural.to_string(),
                name: name.to_string(),
            })?;
        let proposed = compute(&current)?;
        if !proposed.is_object() {
            return Err(StoreError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        let mut next = if status {
            let mut next = (*current).clone();
            match proposed.get("status") {
                Some(s) => next["status"] = s.clone(),
                None => {
                    next.as_object_mut()
                        .expect("stored objects are objects")
                        .remove("status");
                }
            }
            next
        } else {
            let mut next = proposed;
            let next_obj = next.as_object_mut().expect("checked above");
            if info.has_status {
                match current.get("status") {
                    Some(s) => next_obj.insert("status".into(), s.clone()),
                    None => next_obj.remove("status"),
                };
            }
            next_obj.insert(
                "apiVersion".into(),
                Value::String(stilt_api::API_VERSION.into()),
            );
            next_obj.insert("kind".into(), Value::String(info.kind.into()));
            let cur_meta = meta(&current).clone();
            let m = meta_mut(&mut next);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "name",
            ] {
                match cur_meta.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            next
        };
        meta_mut(&mut next).insert(
            "resourceVersion".into(),
            current["metadata"]["resourceVersion"].clone(),
        );
        if next == *current {
            return Ok(current);
        }
        validate(info, &next)?;
        if desired_part(&next) != desired_part(&current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut next).insert("generation".into(), Value::from(generation));
        }
        let rv = state.rv + 1;
        state.rv = rv;
        meta_mut(&mut next).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let next = Arc::new(next);
        let finalized = !meta_str(&next, "deletionTimestamp").is_empty()
            && meta(&next)
                .get("finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        if finalized {
            state
                .objects
                .get_mut(info.kind)
                .expect("found above")
                .remove(name);
            self.publish(
                &mut state,
                info.kind,
                EventType::Deleted,
                next.clone(),
                Some(&current),
            );
        } else {
            state
                .objects
                .get_mut(info.kind)
                .expect("found above")
                .insert(name.to_string(), next.clone());
            self.publish(
                &mut state,
                info.kind,
                EventType::Modified,
                next.clone(),
                Some(&current),
            );
        }
        Ok(next)
    }

    /// Deletes an object. With finalizers it is only marked (deletionTimestamp) until they are
    /// removed. Returns the object as deleted (or as marked).
    pub fn delete(&self, kind: &str, name: &str) -> Result<Arc<Value>, StoreError> {
        let info = kind_info(kind)?;
        let mut state = self.state.lock();
        let current = state
            .objects
            .get(info.kind)
            .and_then(|o| o.get(name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                kind: info.plural.to_string(),
                name: name.to_string(),
            })?;
        let rv = state.rv + 1;
        state.rv = rv;
        let mut gone = (*current).clone();
        let has_finalizers = meta(&gone)
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let m = meta_mut(&mut gone);
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if has_finalizers {
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), now());
            }
            let marked = Arc::new(gone);
            state
                .objects
                .get_mut(info.kind)
                .expect("found above")
                .insert(name.to_string(), marked.clone());
            self.publish(
                &mut state,
                info.kind,
                EventType::Modified,
                marked.clone(),
                Some(&current),
            );
            return Ok(marked);
        }
        let gone = Arc::new(gone);
        state
            .objects
            .get_mut(info.kind)
            .expect("found above")
            .remove(name);
        self.publish(
            &mut state,
            info.kind,
            EventType::Deleted,
            gone.clone(),
            Some(&current),
        );
        Ok(gone)
    }

    /// Deletes every matching object of a kind.
    pub fn delete_collection(
        &self,
        kind: &str,
        selectors: &Selectors,
    ) -> Result<Vec<Arc<Value>>, StoreError> {
        let (items, _) = self.list(kind, selectors)?;
        let mut deleted = Vec::new();
        for item in items {
            match self.delete(kind, meta_str(&item, "name")) {
                Ok(obj) => deleted.push(obj),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Starts watching one kind (or every kind with `None`).
    pub fn watch(
        &self,
        kind: Option<&str>,
        selectors: Selectors,
        from: WatchFrom,
    ) -> Result<Watch, StoreError> {
        let kind = kind.map(kind_info).transpose()?.map(|k| k.kind);
        let mut state = self.state.lock();
        let matches = |ev_kind: &str, obj: &Value| {
            kind.is_none_or(|k| k == ev_kind) && selectors.matches(obj)
        };
        let initial = match from {
            WatchFrom::Beginning => {
                let mut events: Vec<Event> = Vec::new();
                for (k, objs) in &state.objects {
                    if kind.is_some_and(|want| want != *k) {
                        continue;
                    }
                    for obj in objs.values().filter(|o| selectors.matches(o)) {
                        let rv = meta_str(obj, "resourceVersion").parse().unwrap_or(0);
                        events.push(Event {
                            r#type: EventType::Added,
                            kind: k,
                            object: obj.clone(),
                            resource_version: rv,
                        });
                    }
                }
                events.sort_by_key(|e| e.resource_version);
                events
            }
            WatchFrom::ResourceVersion(rv) if rv > state.rv => {
                return Err(StoreError::TooLargeResourceVersion {
                    requested: rv,
                    current: state.rv,
                });
            }
            WatchFrom::ResourceVersion(rv) if rv == state.rv => Vec::new(),
            WatchFrom::ResourceVersion(rv) => {
                let oldest = state
                    .history
                    .front()
                    .map_or(state.rv + 1, |e| e.resource_version);
                if rv + 1 < oldest {
                    return Err(StoreError::Gone {
                        requested: rv,
                        oldest,
                    });
                }
                state
                    .history
                    .iter()
                    .filter(|e| e.resource_version > rv && matches(e.kind, &e.object))
                    .cloned()
                    .collect()
            }
        };
        let (tx, rx) = mpsc::channel(self.opts.watch_queue);
        let lagged = Arc::new(AtomicBool::new(false));
        state.watchers.push(Watcher {
            kind,
            selectors,
            tx,
            lagged: lagged.clone(),
        });
        Ok(Watch {
            initial,
            stream: WatchStream { rx, lagged },
        })
    }

    /// Number of live watchers (for tests and metrics).
    pub fn watcher_count(&self) -> usize {
        let mut state = self.state.lock();
        state.watchers.retain(|w| !w.tx.is_closed());
        state.watchers.len()
    }

    fn publish(
        &self,
        state: &mut State,
        kind: &'static str,
        r#type: EventType,
        object: Arc<Value>,
        old: Option<&Value>,
    ) {
        let resource_version = state.rv;
        let event = Event {
            r#type,
            kind,
            object,
            resource_version,
        };
        let size = approx_size(&event.object);
        state.history.push_back(event.clone());
        state.history_sizes.push_back(size);
        state.history_bytes += size;
        // The newest event always stays: a watcher at the current version resumes from it.
        while state.history.len() > self.opts.history
            || (state.history_bytes > self.opts.history_bytes && state.history.len() > 1)
        {
            state.history.pop_front();
            state.history_bytes -= state.history_sizes.pop_front().unwrap_or(0);
        }
        state.watchers.retain(|w| {
            if w.kind.is_some_and(|k| k != kind) {
                return !w.tx.is_closed();
            }
            let now_matches = w.selectors.matches(&event.object);
            let was_matching = old.is_some_and(|o| w.selectors.matches(o));
            let delivered = match (was_matching, now_matches, event.r#type) {
                (_, true, _) => event.clone(),
                // The object left the selection: to this watcher, it is gone.
                (true, false, _) => Event {
                    r#type: EventType::Deleted,
                    ..event.clone()
                },
                (false, false, _) => return !w.tx.is_closed(),
            };
            match w.tx.try_send(delivered) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.lagged.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}
