//! The Tiltfile reconciler: runs the loader when the Tiltfile (or anything it read) changes, its
//! args change or it is triggered, and applies the result to the store as a diff: new objects are
//! created, changed ones updated (status kept), unchanged ones untouched, and objects the last
//! good load no longer produces deleted. A failed load changes nothing: what runs keeps running.
//!
//! Every Tiltfile object is run, each under its own name: the main one, `(Tiltfile)`, which the
//! engine creates, and those the Extension reconciler creates for Extensions created through
//! the API. Each has its own resource (UIResource), config-file watch (`configs:<name>`) and
//! owned objects; deleting a Tiltfile object deletes what it made.

use crate::controller::{self, Mapper, Queue, Reconciler};
use crate::names::*;
use crate::{Ctx, Mode};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stilt_api::manifest::RESOURCE_TYPE_TILTFILE;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{Selectors, StoreError, TypedStore};

/// Settings from the Tiltfile that the engine applies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub max_parallel_updates: Option<usize>,
    pub ci_timeout: Option<std::time::Duration>,
    /// `default_registry(host)`: where images go when the cluster publishes no registry.
    pub default_registry: Option<String>,
}

/// A successful load.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub objects: Vec<AnyObject>,
    pub config_files: BTreeSet<PathBuf>,
    pub resources: Vec<Manifest>,
    pub logs: String,
    pub warnings: Vec<String>,
    /// (name, value) pairs to redact from every log.
    pub secrets: Vec<(String, String)>,
    pub settings: Settings,
}

/// A failed load: the message names the file, line and column.
#[derive(Clone, Debug, Default)]
pub struct LoadFailure {
    pub message: String,
    pub config_files: BTreeSet<PathBuf>,
    pub logs: String,
    /// (name, value) pairs to redact from every log.
    pub secrets: Vec<(String, String)>,
}

/// Evaluates a Tiltfile (the binary plugs in `stilt-tiltfile`). Called on a blocking thread.
/// Evaluation stops at its next statement once `cancel` is set (a newer Tiltfile, shutdown).
pub trait Loader: Send + Sync + 'static {
    fn load(
        &self,
        path: &std::path::Path,
        args: &[String],
        mode: Mode,
        cancel: Arc<AtomicBool>,
    ) -> Result<Loaded, LoadFailure>;
}

#[derive(Clone, Debug)]
pub struct TiltfileConfig {
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// The runs of every Tiltfile object, by name.
#[derive(Default)]
struct Runs {
    by_tiltfile: HashMap<String, RunState>,
    shutting_down: bool,
}

#[derive(Default)]
struct RunState {
    running: bool,
    /// Inputs of the last run: args + newest config-file event.
    last_inputs: Option<String>,
    runs: u64,
    /// Args of the last successful load: a load with other args resets which resources are
    /// enabled (they name them when the Tiltfile does not call config.parse), as Tilt does.
    loaded_args: Option<Vec<String>>,
    /// Stops the running load.
    cancel: Option<Arc<AtomicBool>>,
    /// Why the running load was cancelled.
    cancel_reason: Option<&'static str>,
    /// The objects the last good load applied, as applied: one deleted through the API is
    /// created again (the Tiltfile still asks for it).
    applied: BTreeMap<(String, String), Frozen>,
    /// The same for what the engine itself creates for the Tiltfile (its UIResource, the
    /// config-file watch).
    engine_applied: BTreeMap<(String, String), Frozen>,
}

/// An object kept as compact JSON text: a copy of every applied object is held for the whole
/// session and read back only when one is deleted, and as a `Value` each copy took several
/// times the memory of its text.
struct Frozen(Box<str>);

impl Frozen {
    fn of(v: &Value) -> Self {
        Frozen(v.to_string().into_boxed_str())
    }

    fn thaw(&self) -> Option<Value> {
        serde_json::from_str(&self.0).ok()
    }
}

impl RunState {
    fn cancel(&mut self, reason: &'static str) {
        if let Some(flag) = &self.cancel
            && !flag.swap(true, Ordering::Relaxed)
        {
            self.cancel_reason = Some(reason);
        }
    }
}

/// Handle to the Tiltfile controller (for shutdown).
#[derive(Clone)]
pub struct TiltfileController {
    runs: Arc<Mutex<Runs>>,
}

impl TiltfileController {
    /// Interrupts the running loads and starts no new one.
    pub fn shutdown(&self) {
        let mut runs = self.runs.lock();
        runs.shutting_down = true;
        for st in runs.by_tiltfile.values_mut() {
            st.cancel("Stilt is shutting down");
        }
    }
}

struct TiltfileReconciler {
    ctx: Ctx,
    loader: Arc<dyn Loader>,
    queue: Queue,
    runs: Arc<Mutex<Runs>>,
}

/// The main Tiltfile's config-file watch (the loader names it so too).
pub const CONFIGS_FILEWATCH: &str = "configs:(Tiltfile)";

/// The FileWatch on the files a Tiltfile object's load read.
pub fn configs_filewatch(tiltfile: &str) -> String {
    format!("configs:{tiltfile}")
}

pub fn start(
    ctx: Ctx,
    cfg: TiltfileConfig,
    loader: Arc<dyn Loader>,
) -> Result<TiltfileController, StoreError> {
    let path = std::path::absolute(&cfg.path).unwrap_or(cfg.path.clone());
    let mut tf = Tiltfile::new(
        TILTFILE_OBJECT,
        TiltfileSpec {
            path: path.display().to_string(),
            args: cfg.args.clone(),
            restart_on: Some(RestartOnSpec {
                file_watches: vec![CONFIGS_FILEWATCH.into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    tf.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), TILTFILE_RESOURCE.into());
    ctx.store.apply_typed(&tf)?;
    let mut ui = UIResource::new(TILTFILE_RESOURCE, EmptySpec {});
    ui.metadata
        .annotations
        .insert(ANN_RESOURCE_TYPE.into(), RESOURCE_TYPE_TILTFILE.into());
    ctx.store.apply_typed(&ui)?;
    let queue = Queue::default();
    let runs: Arc<Mutex<Runs>> = Default::default();
    runs.lock()
        .by_tiltfile
        .entry(TILTFILE_OBJECT.into())
        .or_default()
        .engine_applied
        .insert(
            ("UIResource".into(), TILTFILE_RESOURCE.into()),
            Frozen::of(&*ctx.store.get("UIResource", TILTFILE_RESOURCE)?),
        );
    tokio::spawn(restore_deleted(ctx.clone(), runs.clone()));
    let r = Arc::new(TiltfileReconciler {
        ctx: ctx.clone(),
        loader,
        queue: queue.clone(),
        runs: runs.clone(),
    });
    let config_watch: Mapper = Arc::new(|_, obj: &Value| {
        obj["metadata"]["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("configs:"))
            .map(|tf| vec![tf.to_string()])
            .unwrap_or_default()
    });
    // The trigger queue names resources; a Tiltfile's resource has the Tiltfile's name (the
    // reconciler ignores the other names).
    let triggers: Mapper = Arc::new(|_, obj: &Value| {
        if obj["metadata"]["name"] != TRIGGER_QUEUE {
            return vec![];
        }
        obj["data"]
            .as_object()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    });
    controller::run(
        ctx,
        queue,
        vec![
            ("Tiltfile", controller::same_name()),
            ("FileWatch", config_watch),
            ("ConfigMap", triggers),
        ],
        r,
    );
    Ok(TiltfileController { runs })
}

impl TiltfileReconciler {
    /// (args + newest config-file event, pending trigger).
    fn run_key(&self, tf: &Tiltfile) -> (String, String) {
        let events = self
            .ctx
            .store
            .get_typed::<FileWatch>(&configs_filewatch(&tf.metadata.name))
            .ok()
            .and_then(|f| f.status)
            .and_then(|s| s.last_event_time)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let trigger = self
            .ctx
            .store
            .get_typed::<ConfigMap>(TRIGGER_QUEUE)
            .ok()
            .and_then(|c| c.data.get(&tf.metadata.name).cloned())
            .unwrap_or_default();
        (format!("{:?}|{events}", tf.spec.args), trigger)
    }

    /// A Tiltfile object seen for the first time: the main one's resource exists from the start;
    /// another one (an Extension's) gets its UIResource here.
    fn first_seen(&self, tf: &Tiltfile) {
        let name = &tf.metadata.name;
        if name == TILTFILE_OBJECT {
            return;
        }
        let mut ui = UIResource::new(name, EmptySpec {});
        ui.metadata
            .annotations
            .insert(ANN_RESOURCE_TYPE.into(), RESOURCE_TYPE_TILTFILE.into());
        ui.metadata
            .annotations
            .insert(ANNOTATION_RESOURCE.into(), name.clone());
        ui.metadata.labels.extend(tf.spec.labels.clone());
        crate::storewrite::logged(self.ctx.store.apply_typed(&ui), || {
            format!("creating the resource of Tiltfile {name}")
        });
        if let Ok(applied) = self.ctx.store.get("UIResource", name) {
            self.runs
                .lock()
                .by_tiltfile
                .entry(name.clone())
                .or_default()
                .engine_applied
                .insert(("UIResource".into(), name.clone()), Frozen::of(&applied));
        }
    }

    /// A deleted Tiltfile object: its load stops and what it made is deleted.
    fn forget(&self, name: &str) {
        let Some(mut st) = self.runs.lock().by_tiltfile.remove(name) else {
            return;
        };
        st.cancel("the Tiltfile object was deleted");
        for (kind, obj) in st.engine_applied.keys() {
            crate::storewrite::logged(self.ctx.store.delete(kind, obj), || {
                format!("deleting {kind} {obj} of the deleted Tiltfile {name}")
            });
        }
        crate::storewrite::logged(
            delete_owned_except(&self.ctx, name, &BTreeSet::new()),
            || format!("deleting what the deleted Tiltfile {name} made"),
        );
    }
}

impl Reconciler for TiltfileReconciler {
    fn reconcile(&self, name: &str) {
        let tf = match self.ctx.store.get_typed::<Tiltfile>(name) {
            Ok(tf) => tf,
            Err(StoreError::NotFound { .. }) => return self.forget(name),
            Err(_) => return,
        };
        if !self.runs.lock().by_tiltfile.contains_key(name) {
            self.first_seen(&tf);
        }
        let (inputs, trigger) = self.run_key(&tf);
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut runs = self.runs.lock();
            if runs.shutting_down {
                return;
            }
            let st = runs.by_tiltfile.entry(name.to_string()).or_default();
            let changed = st.last_inputs.as_deref() != Some(inputs.as_str());
            if st.running {
                // A load still evaluating an older Tiltfile (possibly forever) gives way.
                if changed {
                    st.cancel("the Tiltfile changed");
                }
                return;
            }
            if !changed && trigger.is_empty() {
                return;
            }
            st.running = true;
            st.last_inputs = Some(inputs);
            st.runs += 1;
            st.cancel = Some(cancel.clone());
            st.cancel_reason = None;
        }
        let args_changed = self
            .runs
            .lock()
            .by_tiltfile
            .get(name)
            .and_then(|st| st.loaded_args.as_ref())
            .is_some_and(|a| a != &tf.spec.args);
        let args = tf.spec.args.clone();
        if !trigger.is_empty() {
            consume_trigger(&self.ctx, name);
        }
        let ctx = self.ctx.clone();
        let loader = self.loader.clone();
        let runs = self.runs.clone();
        let queue = self.queue.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let loaded = run_once(&ctx, loader, tf, cancel, &runs, args_changed).await;
            if let Some(st) = runs.lock().by_tiltfile.get_mut(&name) {
                st.running = false;
                st.cancel = None;
                if loaded {
                    st.loaded_args = Some(args);
                }
            }
            // Changes that arrived while loading get their own run.
            queue.add(&name);
        });
    }
}

/// Creates again what the last good load applied when it is deleted through the API (a
/// collection DELETE, `kubectl delete`): the Tiltfile still asks for it, so it comes back at
/// once rather than at the next edit. Status is rebuilt by the objects' reconcilers.
async fn restore_deleted(ctx: Ctx, runs: Arc<Mutex<Runs>>) {
    loop {
        let Ok(watch) = ctx.store.watch(
            None,
            Selectors::default(),
            stilt_store::WatchFrom::Beginning,
        ) else {
            return;
        };
        let mut stream = watch.stream;
        let end = loop {
            match stream.next().await {
                Ok(ev) if ev.r#type == stilt_store::EventType::Deleted => {
                    let key = (
                        ev.kind.to_string(),
                        ev.object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    let wanted = {
                        let runs = runs.lock();
                        (!runs.shutting_down)
                            .then(|| {
                                runs.by_tiltfile.values().find_map(|st| {
                                    st.applied
                                        .get(&key)
                                        .or_else(|| st.engine_applied.get(&key))
                                        .and_then(Frozen::thaw)
                                })
                            })
                            .flatten()
                    };
                    if let Some(mut obj) = wanted {
                        for field in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
                            if let Some(m) = obj["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                        // A released serve Cmd stays released: the build that released it
                        // already ran, and nothing would run it again.
                        keep_engine_annotations(&ev.object, &mut obj);
                        match ctx.store.create(obj) {
                            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                            Err(e) => tracing::warn!("restoring {} {}: {e}", key.0, key.1),
                        }
                    }
                }
                Ok(_) => {}
                Err(end) => break end,
            }
        };
        if end == stilt_store::WatchEnd::Closed {
            return;
        }
    }
}

/// Copies the annotations the engine writes on the Tiltfile's objects (a serve Cmd's restart
/// count, an ExtensionRepo's fetch requests) from `from` onto `onto`, so a reload or a restore
/// does not undo them.
fn keep_engine_annotations(from: &Value, onto: &mut Value) {
    for ann in [
        ANN_RESTART_COUNT,
        crate::extensionrepo::ANN_FETCH_REQUEST,
        crate::extensionrepo::ANN_FETCHED_REQUEST,
    ] {
        if let Some(v) = from["metadata"]["annotations"].get(ann) {
            onto["metadata"]["annotations"][ann] = v.clone();
        }
    }
}

/// The Tiltfile's `default_registry()`, as its last load recorded it on the Tiltfile object.
pub fn default_registry(ctx: &Ctx) -> Option<String> {
    ctx.store
        .get_typed::<Tiltfile>(TILTFILE_OBJECT)
        .ok()
        .and_then(|t| t.metadata.annotations.get(ANN_DEFAULT_REGISTRY).cloned())
}

/// Removes a resource's entry from the trigger queue.
pub fn consume_trigger(ctx: &Ctx, resource: &str) {
    let patch = json!({"data": {resource: null}});
    crate::storewrite::logged(
        ctx.store.patch(
            "ConfigMap",
            TRIGGER_QUEUE,
            stilt_store::PatchType::Merge,
            &patch,
            false,
        ),
        || format!("consuming the trigger of {resource}"),
    );
}

fn write_tiltfile_status(ctx: &Ctx, name: &str, f: impl Fn(&mut TiltfileStatus)) {
    crate::storewrite::logged(
        ctx.store.update_status_with::<Tiltfile>(name, |o| {
            f(o.status.get_or_insert_with(Default::default))
        }),
        || format!("writing the status of Tiltfile {name}"),
    );
}

/// Loads the Tiltfile and applies the result; true when both succeeded.
async fn run_once(
    ctx: &Ctx,
    loader: Arc<dyn Loader>,
    tf: Tiltfile,
    cancel: Arc<AtomicBool>,
    runs: &Mutex<Runs>,
    args_changed: bool,
) -> bool {
    let started = MicroTime::now();
    let span = format!("tiltfile:{}", started.0.timestamp_micros());
    let path = PathBuf::from(&tf.spec.path);
    // A Tiltfile's load is logged and recorded under the resource of the same name.
    let name = tf.metadata.name.clone();
    let resource = name.as_str();
    let is_main = name == TILTFILE_OBJECT;
    write_tiltfile_status(ctx, &name, |s| {
        s.waiting = None;
        s.running = Some(TiltfileStateRunning {
            reasons: vec!["CONFIG_CHANGED".into()],
            started_at: Some(started),
        });
    });
    crate::build::record_build_start(ctx, resource, &span, started);
    ctx.logs.line(
        resource,
        &span,
        Level::Info,
        &format!("Loading Tiltfile at: {}", path.display()),
    );
    // Watch the Tiltfile before the first load ends: a load that never ends must still be
    // interrupted by an edit.
    if ctx
        .store
        .get_typed::<FileWatch>(&configs_filewatch(&name))
        .is_err()
    {
        ensure_config_watch(ctx, &tf, &BTreeSet::new(), runs);
    }
    let args = tf.spec.args.clone();
    let mode = ctx.mode;
    // As Tilt's, the load time is the loader's run, timed in its own thread: a busy runtime
    // that is slow to pick up the result has not made the Tiltfile slower.
    let (result, load_time) = tokio::task::spawn_blocking(move || {
        let clock = Instant::now();
        let result = loader.load(&path, &args, mode, cancel);
        (result, clock.elapsed())
    })
    .await
    .unwrap_or_else(|e| {
        let crashed = Err(LoadFailure {
            message: format!("the Tiltfile loader crashed: {e}"),
            ..Default::default()
        });
        (crashed, Duration::ZERO)
    });
    let (error, config_files, warnings) = match result {
        Ok(loaded) => {
            // Secrets first: the load's own output (print, local) may show them.
            for (name, value) in &loaded.secrets {
                ctx.logs.add_secret(name, value);
            }
            ctx.logs.append(resource, &span, Level::Info, &loaded.logs);
            ctx.logs.flush(resource, &span);
            for w in &loaded.warnings {
                ctx.logs
                    .line(resource, &span, Level::Warn, &format!("WARNING: {w}"));
            }
            let storing = Instant::now();
            let applied = apply_result(ctx, &tf, &loaded, args_changed, runs);
            tracing::debug!(
                "Tiltfile {name}: loaded in {:.1} ms, its objects stored in {:.1} ms",
                load_time.as_secs_f64() * 1000.0,
                storing.elapsed().as_secs_f64() * 1000.0
            );
            let parallel = loaded
                .settings
                .max_parallel_updates
                .unwrap_or(3)
                .max(1)
                .to_string();
            let registry = loaded
                .settings
                .default_registry
                .clone()
                .map_or(serde_json::Value::Null, serde_json::Value::String);
            let patch = json!({"metadata": {"annotations": {ANN_MAX_PARALLEL: parallel, ANN_DEFAULT_REGISTRY: registry}}});
            // The engine's settings come from the main Tiltfile only.
            crate::storewrite::logged(
                is_main
                    .then(|| {
                        ctx.store.patch(
                            "Tiltfile",
                            TILTFILE_OBJECT,
                            stilt_store::PatchType::Merge,
                            &patch,
                            false,
                        )
                    })
                    .transpose(),
                || "recording the Tiltfile's settings".to_string(),
            );
            match applied {
                Ok(()) => {
                    ctx.logs.line(
                        resource,
                        &span,
                        Level::Info,
                        // As Tilt's: the time to run the Tiltfile, not to store its objects.
                        &format!(
                            "Successfully loaded Tiltfile ({:.1}ms)",
                            load_time.as_secs_f64() * 1e3
                        ),
                    );
                    (String::new(), loaded.config_files, loaded.warnings.len())
                }
                Err(e) => (
                    format!("applying the Tiltfile's objects: {e}"),
                    loaded.config_files,
                    loaded.warnings.len(),
                ),
            }
        }
        Err(fail) => {
            for (name, value) in &fail.secrets {
                ctx.logs.add_secret(name, value);
            }
            ctx.logs.append(resource, &span, Level::Info, &fail.logs);
            ctx.logs.flush(resource, &span);
            let cancel_reason = runs
                .lock()
                .by_tiltfile
                .get(&name)
                .and_then(|st| st.cancel_reason);
            let message = match cancel_reason {
                Some(reason) => format!("{} ({reason})", fail.message),
                None => fail.message,
            };
            (message, fail.config_files, 0)
        }
    };
    // The error also goes into API objects (Tiltfile and UIResource status).
    let error = ctx.logs.redact(&error);
    if !error.is_empty() {
        for line in error.lines() {
            ctx.logs.line(resource, &span, Level::Error, line);
        }
        ctx.logs.line(
            resource,
            &span,
            Level::Error,
            "Tiltfile failed to load; everything already running keeps running.",
        );
    }
    ensure_config_watch(ctx, &tf, &config_files, runs);
    let finished = MicroTime::now();
    write_tiltfile_status(ctx, &name, |s| {
        s.running = None;
        s.terminated = Some(TiltfileStateTerminated {
            reasons: vec![],
            error: error.clone(),
            started_at: Some(started),
            finished_at: Some(finished),
            warning_count: warnings as i32,
        });
    });
    crate::build::record_build_end(ctx, resource, &span, started, &error);
    error.is_empty()
}

/// The FileWatch on every file the Tiltfile read (kept even when the load failed, so fixing the
/// file re-runs it).
fn ensure_config_watch(ctx: &Ctx, tf: &Tiltfile, files: &BTreeSet<PathBuf>, runs: &Mutex<Runs>) {
    if ctx.mode == Mode::Ci {
        return;
    }
    let name = configs_filewatch(&tf.metadata.name);
    let mut paths: BTreeSet<String> = files.iter().map(|p| p.display().to_string()).collect();
    paths.insert(tf.spec.path.clone());
    let mut fw = FileWatch::new(
        &name,
        FileWatchSpec {
            watched_paths: paths.into_iter().collect(),
            ..Default::default()
        },
    );
    fw.metadata
        .annotations
        .insert(ANNOTATION_RESOURCE.into(), tf.metadata.name.clone());
    if let Err(e) = ctx.store.apply_typed(&fw) {
        tracing::warn!("writing FileWatch {name}: {e}");
    }
    if let Ok(applied) = ctx.store.get("FileWatch", &name)
        && let Some(st) = runs.lock().by_tiltfile.get_mut(&tf.metadata.name)
    {
        st.engine_applied
            .insert(("FileWatch".into(), name), Frozen::of(&applied));
    }
}

fn owner_ref(tf_name: &str, tf_uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.into(),
        kind: "Tiltfile".into(),
        name: tf_name.into(),
        uid: tf_uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The resource's UIResource, carrying its manifest.
fn resource_object(m: &Manifest, order: usize, existing: Option<&AnyObject>) -> AnyObject {
    let mut ui = match existing {
        Some(AnyObject::UIResource(u)) => u.clone(),
        _ => UIResource::new(&m.name, EmptySpec {}),
    };
    m.annotate(&mut ui, order);
    AnyObject::UIResource(ui)
}

fn identity(v: &Value) -> Value {
    json!({
        "spec": v.get("spec"),
        "data": v.get("data"),
        "labels": v["metadata"].get("labels"),
        "annotations": v["metadata"].get("annotations"),
        "ownerReferences": v["metadata"].get("ownerReferences"),
    })
}

fn apply_result(
    ctx: &Ctx,
    tf: &Tiltfile,
    loaded: &Loaded,
    args_changed: bool,
    runs: &Mutex<Runs>,
) -> Result<(), StoreError> {
    let tf_name = tf.metadata.name.as_str();
    let tf_uid = ctx.store.get_typed::<Tiltfile>(tf_name)?.metadata.uid;
    let mut desired: Vec<AnyObject> = Vec::new();
    let mut by_key: BTreeMap<(String, String), usize> = BTreeMap::new();
    // The engine owns the Session, the Tiltfile objects and their config-file watches.
    let engine_owned = |o: &AnyObject| {
        matches!(o.kind(), "Session" | "Tiltfile")
            || (o.kind() == "FileWatch" && o.name() == CONFIGS_FILEWATCH)
    };
    for obj in loaded.objects.iter().filter(|o| !engine_owned(o)) {
        let mut obj = obj.clone();
        // What another Tiltfile's load gives to the Tiltfile's own resource is that
        // Tiltfile's.
        if tf_name != TILTFILE_OBJECT {
            let a = &mut obj.meta_mut().annotations;
            if a.get(ANNOTATION_RESOURCE).map(String::as_str) == Some(TILTFILE_RESOURCE) {
                a.insert(ANNOTATION_RESOURCE.into(), tf_name.into());
            }
        }
        by_key.insert(
            (obj.kind().to_string(), obj.name().to_string()),
            desired.len(),
        );
        desired.push(obj);
    }
    for (i, r) in loaded.resources.iter().enumerate() {
        let key = ("UIResource".to_string(), r.name.clone());
        let existing = by_key.get(&key).map(|&i| desired[i].clone());
        let ui = resource_object(r, i + 1, existing.as_ref());
        match by_key.get(&key) {
            Some(&i) => desired[i] = ui,
            None => {
                by_key.insert(key, desired.len());
                desired.push(ui);
            }
        }
        let cm_key = ("ConfigMap".to_string(), disable_configmap(&r.name));
        if let std::collections::btree_map::Entry::Vacant(e) = by_key.entry(cm_key) {
            e.insert(desired.len());
            desired.push(AnyObject::ConfigMap(ConfigMap::new(
                disable_configmap(&r.name),
                [(DISABLE_KEY.to_string(), "false".to_string())].into(),
            )));
        }
    }
    if tf_name == TILTFILE_OBJECT {
        crate::session::apply_ci_settings(ctx, &loaded.objects);
    }
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut applied: BTreeMap<(String, String), Frozen> = BTreeMap::new();
    for mut obj in desired {
        let m = obj.meta_mut();
        m.labels.extend(tf.spec.labels.clone());
        m.owner_references = vec![owner_ref(tf_name, &tf_uid)];
        let kind = obj.kind().to_string();
        let name = obj.name().to_string();
        wanted.insert((kind.clone(), name.clone()));
        let value = obj.to_value();
        applied.insert((kind.clone(), name.clone()), Frozen::of(&value));
        match ctx.store.get(&kind, &name) {
            Err(StoreError::NotFound { .. }) => {
                ctx.store.create(value)?;
            }
            Err(e) => return Err(e),
            Ok(current) => {
                // An object another Tiltfile made (the Cluster both deploy to) stays its.
                if owning_tiltfile(&current).is_some_and(|owner| owner != tf_name) {
                    continue;
                }
                // Disable state belongs to the user once created; only new args reset it.
                if kind == "ConfigMap" && name.ends_with("-disable") && !args_changed {
                    continue;
                }
                let mut value = value;
                keep_engine_annotations(&current, &mut value);
                if identity(&current) != identity(&value) {
                    let mut next = value;
                    next["metadata"]["resourceVersion"] =
                        current["metadata"]["resourceVersion"].clone();
                    ctx.store.update(next)?;
                }
            }
        }
    }
    // Before the garbage collection, so that what it deletes is not restored.
    if let Some(st) = runs.lock().by_tiltfile.get_mut(tf_name) {
        st.applied = applied;
    }
    delete_owned_except(ctx, tf_name, &wanted)
}

/// The Tiltfile object that owns `obj`, if one does.
fn owning_tiltfile(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == "Tiltfile")?["name"]
        .as_str()
}

/// Deletes the objects Tiltfile `tf_name` owns that are not `wanted` (what it no longer makes).
fn delete_owned_except(
    ctx: &Ctx,
    tf_name: &str,
    wanted: &BTreeSet<(String, String)>,
) -> Result<(), StoreError> {
    for info in kinds() {
        if info.kind == "Tiltfile" || info.kind == "Session" {
            continue;
        }
        let (items, _) = ctx.store.list(info.kind, &Selectors::default())?;
        for item in items {
            let owned = owning_tiltfile(&item) == Some(tf_name);
            let name = item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if owned && !wanted.contains(&(info.kind.to_string(), name.clone())) && name != tf_name
            {
                crate::storewrite::logged(ctx.store.delete(info.kind, &name), || {
                    format!(
                        "deleting {} {name}, which the Tiltfile no longer makes",
                        info.kind
                    )
                });
            }
        }
    }
    Ok(())
}
