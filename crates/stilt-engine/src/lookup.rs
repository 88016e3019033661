//! Finding a resource's objects without decoding every object of the kind: the annotation is
//! matched on the stored JSON and only the matches are decoded. The build queue asks this for
//! each resource on every pass, so decoding them all was quadratic in resources.

use crate::Ctx;
use stilt_api::{ANNOTATION_RESOURCE, Resource};
use stilt_store::Selectors;

/// The `T` objects annotated as belonging to `resource`.
pub(crate) fn of_resource<T: Resource>(ctx: &Ctx, resource: &str) -> Vec<T> {
    let Ok((items, _)) = ctx.store.list(T::KIND, &Selectors::default()) else {
        return vec![];
    };
    items
        .iter()
        .filter(|v| v["metadata"]["annotations"][ANNOTATION_RESOURCE] == resource)
        .filter_map(|v| T::deserialize(&**v).ok())
        .collect()
}
