//! The FileWatch reconciler: one watch per FileWatch on a shared inotify hub; each batch of
//! changed files becomes a FileEvent in status (the last 20 are kept).

use crate::Ctx;
use crate::cmd::{disable_config_map, is_disabled};
use crate::controller::{self, Mapper, Queue, Reconciler};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::TypedStore;
use stilt_watch::{Ignores, WatchHub, WatchSpec};

struct Active {
    key: String,
    task: tokio::task::JoinHandle<()>,
}

struct FileWatchReconciler {
    ctx: Ctx,
    hub: Option<WatchHub>,
    active: Mutex<HashMap<String, Active>>,
}

fn by_disable_source(ctx: &Ctx) -> Mapper {
    let keys = crate::refindex::spec_keys(|s: &FileWatchSpec| {
        disable_config_map(s.disable_source.as_ref())
            .into_iter()
            .collect()
    });
    crate::refindex::referencing(ctx, "FileWatch", keys, crate::refindex::own_name())
}

pub fn start(ctx: Ctx, hub: Option<WatchHub>) {
    let queue = Queue::default();
    let r = Arc::new(FileWatchReconciler {
        ctx: ctx.clone(),
        hub,
        active: Mutex::new(HashMap::new()),
    });
    controller::run(
        ctx.clone(),
        queue,
        vec![
            ("FileWatch", controller::same_name()),
            ("ConfigMap", by_disable_source(&ctx)),
        ],
        r,
    );
}

/// A FileWatch's ignores as the watcher's rules (an entry without patterns ignores its whole
/// base), plus editors' temporary files, which Tilt always ignores.
pub fn ignores(spec: &FileWatchSpec) -> Result<Ignores, String> {
    let defs = spec
        .ignores
        .iter()
        .map(|ig| (PathBuf::from(&ig.base_path), ig.patterns.clone()));
    let user = Ignores::from_defs(defs).map_err(|e| e.to_string())?;
    Ok(Ignores::new(
        user.rules()
            .iter()
            .cloned()
            .chain([stilt_watch::ignore::ephemeral_rule()]),
    ))
}

impl Reconciler for FileWatchReconciler {
    fn reconcile(&self, name: &str) {
        let fw = match self.ctx.store.get_typed::<FileWatch>(name) {
            Ok(fw) if !is_disabled(&self.ctx, fw.spec.disable_source.as_ref()) => fw,
            _ => {
                if let Some(a) = self.active.lock().remove(name) {
                    a.task.abort();
                }
                return;
            }
        };
        let key = serde_json::to_string(&fw.spec).unwrap_or_default();
        if self.active.lock().get(name).is_some_and(|a| a.key == key) {
            return;
        }
        if let Some(a) = self.active.lock().remove(name) {
            a.task.abort();
        }
        let ctx = self.ctx.clone();
        let name = name.to_string();
        let Some(hub) = self.hub.clone() else {
            // No file watching (ci mode): report the monitor as started, never any event.
            write_status(&ctx, &name, |s| {
                s.monitor_start_time = Some(MicroTime::now())
            });
            return;
        };
        let task_name = name.clone();
        let task = tokio::spawn(async move {
            let name = task_name;
            let ignores = match ignores(&fw.spec) {
                Ok(i) => i,
                Err(e) => {
                    return write_status(&ctx, &name, |s| {
                        s.error = format!("invalid ignores: {e}")
                    });
                }
            };
            let paths: Vec<PathBuf> = fw.spec.watched_paths.iter().map(PathBuf::from).collect();
            let resource = fw.metadata.resource_or_name();
            // The task lives as long as the watch: it keeps none of the object (a thousand
            // watches would hold a thousand copies).
            drop(fw);
            let mut handle = match hub.watch(WatchSpec::new(paths).ignores(ignores)).await {
                Ok(h) => h,
                Err(e) => {
                    ctx.logs.line(
                        &resource,
                        &format!("filewatch:{name}"),
                        Level::Error,
                        &format!("Error watching files: {e}"),
                    );
                    return write_status(&ctx, &name, |s| s.error = e.to_string());
                }
            };
            write_status(&ctx, &name, |s| {
                s.monitor_start_time = Some(MicroTime::now());
                s.error.clear();
            });
            while let Some(mut batch) = handle.recv().await {
                // Files syncback just wrote are not edits: syncing them back would loop.
                batch.paths.retain(|p| !ctx.echo.is_echo(p));
                if batch.paths.is_empty() {
                    continue;
                }
                let event = FileEvent {
                    time: MicroTime::from(batch.first_event_wall),
                    seen_files: batch
                        .paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect(),
                };
                write_status(&ctx, &name, |s| {
                    s.last_event_time = Some(event.time);
                    s.file_events.push(event.clone());
                    let excess = s.file_events.len().saturating_sub(MAX_FILE_EVENTS);
                    s.file_events.drain(..excess);
                });
            }
        });
        self.active.lock().insert(name, Active { key, task });
    }
}

fn write_status(ctx: &Ctx, name: &str, f: impl Fn(&mut FileWatchStatus)) {
    crate::storewrite::logged(
        ctx.store.update_status_with::<FileWatch>(name, |o| {
            f(o.status.get_or_insert_with(Default::default))
        }),
        || format!("writing the status of FileWatch {name}"),
    );
}

/// Through the store, on a real watch of a temporary folder.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::testing::{ctx_with, eventually};
    use stilt_k8s::FakeCluster;

    fn seen(ctx: &Ctx, name: &str) -> Vec<String> {
        ctx.store
            .get_typed::<FileWatch>(name)
            .ok()
            .and_then(|f| f.status)
            .map(|s| {
                s.file_events
                    .into_iter()
                    .flat_map(|e| e.seen_files)
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn edits_become_file_events_except_ignored_ones_and_none_while_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ctx = ctx_with(&FakeCluster::new());
        start(ctx.clone(), Some(WatchHub::new().unwrap()));
        let disable = ConfigMap::new(
            "web-disable",
            [(DISABLE_KEY.to_string(), "false".to_string())].into(),
        );
        ctx.store.create_typed(&disable).unwrap();
        let fw = FileWatch::new(
            "local:web",
            FileWatchSpec {
                watched_paths: vec![root.display().to_string()],
                ignores: vec![IgnoreDef {
                    base_path: root.display().to_string(),
                    patterns: vec!["*.log".into()],
                }],
                disable_source: Some(DisableSource {
                    config_map: Some(ConfigMapDisableSource {
                        name: "web-disable".into(),
                        key: DISABLE_KEY.into(),
                    }),
                    ..Default::default()
                }),
            },
        );
        ctx.store.create_typed(&fw).unwrap();
        eventually("the monitor to start", || {
            ctx.store
                .get_typed::<FileWatch>("local:web")
                .ok()
                .and_then(|f| f.status)
                .and_then(|s| s.monitor_start_time)
        })
        .await;

        std::fs::write(root.join("debug.log"), "ignored").unwrap();
        std::fs::write(root.join("main.go"), "package main").unwrap();
        let files = eventually("the edit as a file event", || {
            let s = seen(&ctx, "local:web");
            (!s.is_empty()).then_some(s)
        })
        .await;
        assert_eq!(files, [root.join("main.go").display().to_string()]);

        // Disabled: the watch stops, so an edit adds no event.
        let mut cm = ctx.store.get_typed::<ConfigMap>("web-disable").unwrap();
        cm.data.insert(DISABLE_KEY.into(), "true".into());
        ctx.store.update_typed(&cm).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        std::fs::write(root.join("other.go"), "package main").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(seen(&ctx, "local:web").len(), 1, "no event while disabled");
    }
}
