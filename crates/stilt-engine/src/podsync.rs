//! The thread that owns the channels into pod containers.
//!
//! A pod channel (the stilt-syncer helper over one Kubernetes exec) is not `Send`, so every use
//! of one runs on this thread: live update writes files through it, syncback lists and reads
//! through it, and both share one [`stilt_k8s::SyncerPool`], so a container has one channel.

use crate::k8s::K8sAdapters;
use futures_util::future::LocalBoxFuture;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::UnboundedSender;

type Work =
    Box<dyn FnOnce(Result<stilt_k8s::SyncerPool, String>) -> LocalBoxFuture<'static, ()> + Send>;

/// Runs work on the pod-channel thread; the thread starts on first use.
pub struct PodSync {
    k8s: Arc<K8sAdapters>,
    tx: OnceLock<UnboundedSender<Work>>,
}

impl PodSync {
    pub fn new(k8s: Arc<K8sAdapters>) -> Self {
        Self {
            k8s,
            tx: OnceLock::new(),
        }
    }

    /// Runs `f` with the shared pool on the pod thread and returns its result. Jobs run
    /// concurrently there; each container's syncer is locked for as long as a job uses it.
    pub async fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(stilt_k8s::SyncerPool) -> LocalBoxFuture<'static, Result<T, String>>
            + Send
            + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |pool| {
            Box::pin(async move {
                let out = match pool {
                    Ok(pool) => f(pool).await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(out);
            })
        });
        self.sender()
            .send(work)
            .map_err(|_| "the pod-sync thread stopped".to_string())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the pod-sync thread stopped".into()))
    }

    fn sender(&self) -> UnboundedSender<Work> {
        self.tx
            .get_or_init(|| start_thread(self.k8s.clone()))
            .clone()
    }
}

fn start_thread(k8s: Arc<K8sAdapters>) -> UnboundedSender<Work> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Work>();
    std::thread::Builder::new()
        .name("stilt-pod-sync".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for pod sync");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let pool: tokio::sync::OnceCell<stilt_k8s::SyncerPool> =
                    tokio::sync::OnceCell::new();
                while let Some(work) = rx.recv().await {
                    let pool = match k8s.cluster().await {
                        Ok(cluster) => Ok(pool
                            .get_or_init(|| async {
                                stilt_k8s::SyncerPool::new(
                                    cluster,
                                    stilt_k8s::ChannelOptions::discover(),
                                )
                            })
                            .await
                            .clone()),
                        Err(e) => Err(e),
                    };
                    tokio::task::spawn_local(work(pool));
                }
            });
        })
        .expect("spawning the pod-sync thread");
    tx
}
