//! Store writes a reconciler cannot act on when they fail are still never dropped in silence.
//! An object deleted meanwhile or a write that lost a race is normal (its next reconcile writes
//! again) and only traced; anything else is a warning naming the write.

use stilt_store::StoreError;

pub(crate) fn logged<T>(result: Result<T, StoreError>, what: impl FnOnce() -> String) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e @ (StoreError::NotFound { .. } | StoreError::Conflict { .. })) => {
            tracing::debug!("{}: {e}", what());
            None
        }
        Err(e) => {
            tracing::warn!("{}: {e}", what());
            None
        }
    }
}
