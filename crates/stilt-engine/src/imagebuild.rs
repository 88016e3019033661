//! The DockerImage and CmdImage reconcilers.
//!
//! A Tiltfile's images carry their resource's annotation and are built when the build queue
//! decides (`build::run_update`), as Tilt's build controller does through `ForceApply`. An image
//! created through the API alone (`kubectl apply` of a DockerImage or CmdImage and its ImageMap)
//! has no build queue behind it: these reconcilers build it when it appears and again when its
//! spec changes, deliver it to the cluster named in `spec.cluster`, and publish the result in its
//! ImageMaps, where a KubernetesApply naming them picks it up. Deleting the object cancels a
//! build still running.

use crate::Ctx;
use crate::controller::{self, Outcome, Queue, Reconcile};
use crate::k8s::AbortOnDrop;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use stilt_api::*;
use stilt_logs::Level;
use stilt_store::{StoreError, TypedStore};

/// What the reconciler needs to know of an image kind.
pub(crate) trait ImageKind: Resource {
    type Spec: PartialEq + Clone + Send + Sync + 'static;
    /// The log span of an object without a span annotation.
    const SPAN_PREFIX: &'static str;
    fn spec(&self) -> &Self::Spec;
    fn image_maps(&self) -> &[String];
    /// The cluster the image is for (empty: it stays on the building engine).
    fn cluster(&self) -> &str;
    fn build<'a>(
        &'a self,
        ctx: &'a Ctx,
        resource: &'a str,
        span: &'a str,
    ) -> BoxFuture<'a, Result<crate::docker::Built, String>>;
}

/// The two kinds differ only in their spec type, log span prefix and build function.
macro_rules! image_kind {
    ($kind:ty, $spec:ty, $prefix:literal, $build:path) => {
        impl ImageKind for $kind {
            type Spec = $spec;
            const SPAN_PREFIX: &'static str = $prefix;
            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn image_maps(&self) -> &[String] {
                &self.spec.image_maps
            }
            fn cluster(&self) -> &str {
                &self.spec.cluster
            }
            fn build<'a>(
                &'a self,
                ctx: &'a Ctx,
                resource: &'a str,
                span: &'a str,
            ) -> BoxFuture<'a, Result<crate::docker::Built, String>> {
                Box::pin($build(ctx, self, resource, span))
            }
        }
    };
}

image_kind!(
    DockerImage,
    DockerImageSpec,
    "dockerimage",
    crate::docker::build_image
);
image_kind!(
    CmdImage,
    CmdImageSpec,
    "cmdimage",
    crate::docker::build_cmd_image
);

/// Whether the reconciler builds `meta`'s image itself: the build queue builds a resource's.
pub(crate) fn builds_itself(meta: &ObjectMeta) -> bool {
    meta.resource().is_none_or(str::is_empty)
}

/// The spec last built (or being built), and the build while it runs.
struct Build<S> {
    spec: S,
    _task: AbortOnDrop,
}

struct ImageReconciler<K: ImageKind> {
    ctx: Ctx,
    builds: Mutex<HashMap<String, Build<K::Spec>>>,
}

/// Starts the DockerImage and CmdImage reconcilers.
pub fn start(ctx: Ctx) {
    start_kind::<DockerImage>(ctx.clone());
    start_kind::<CmdImage>(ctx);
}

fn start_kind<K: ImageKind>(ctx: Ctx) {
    let r = Arc::new(ImageReconciler::<K> {
        ctx: ctx.clone(),
        builds: Default::default(),
    });
    controller::run(
        ctx,
        Queue::default(),
        vec![(K::KIND, controller::same_name())],
        r,
    );
}

impl<K: ImageKind> Reconcile for ImageReconciler<K> {
    fn reconcile_once(&self, name: &str) -> Outcome {
        let obj = match self.ctx.store.get_typed::<K>(name) {
            Ok(o) if o.meta().deletion_timestamp.is_none() => Some(o),
            Ok(_) | Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let mut builds = self.builds.lock();
        let Some(obj) = obj.filter(|o| builds_itself(o.meta())) else {
            builds.remove(name);
            return Outcome::Done;
        };
        if builds.get(name).is_some_and(|b| &b.spec == obj.spec()) {
            return Outcome::Done;
        }
        let spec = obj.spec().clone();
        let task = tokio::spawn(build_and_deliver(self.ctx.clone(), obj));
        builds.insert(
            name.to_string(),
            Build {
                spec,
                _task: AbortOnDrop(task),
            },
        );
        Outcome::Done
    }
}

async fn build_and_deliver<K: ImageKind>(ctx: Ctx, obj: K) {
    let meta = obj.meta();
    let span = meta
        .annotations
        .get(ANNOTATION_LOG_SPAN_ID)
        .cloned()
        .unwrap_or_else(|| format!("{}:{}", K::SPAN_PREFIX, meta.name));
    // Without a resource, the lines go to the global log, as other API-created objects' do.
    let resource = "";
    // A failed build already says why, in the log and the object's status.
    let Ok(mut built) = obj.build(&ctx, resource, &span).await else {
        return;
    };
    if !obj.cluster().is_empty() {
        // The ImageMaps get the image once the cluster can pull it, so nothing deploys a ref
        // the cluster does not have yet.
        match deliver(&ctx, &obj, &built.local, &span).await {
            Ok(Some(pulled)) => {
                built.image = pulled.clone();
                built.from_cluster = pulled;
            }
            Ok(None) => {}
            Err(e) => {
                ctx.logs.line(
                    resource,
                    &span,
                    Level::Error,
                    &format!("{} {}: {e}", K::KIND, meta.name),
                );
                return;
            }
        }
    }
    crate::docker::publish(&ctx, obj.image_maps(), &built);
}

/// Delivers the image to the cluster; the ref the cluster pulls when it differs from `local`.
async fn deliver<K: ImageKind>(
    ctx: &Ctx,
    obj: &K,
    local: &str,
    span: &str,
) -> Result<Option<String>, String> {
    let cluster = ctx
        .k8s
        .cluster()
        .await
        .map_err(|e| format!("cluster {}: {e}", obj.cluster()))?;
    let mut pulled = None;
    for im in obj.image_maps() {
        pulled = crate::k8s::deliver_image(ctx, cluster.as_ref(), "", im, local, span).await?;
    }
    Ok(pulled)
}

#[cfg(test)]
#[path = "imagebuild_tests.rs"]
mod tests;
