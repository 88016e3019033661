//! Typed access for controllers: objects in and out as `stilt-api` structs.

use crate::{Selectors, Store, StoreError};
use serde_json::Value;
use stilt_api::Resource;

fn encode<T: Resource>(obj: &T) -> Value {
    let mut v = serde_json::to_value(obj).expect("API objects always serialize");
    v["apiVersion"] = Value::String(stilt_api::API_VERSION.into());
    v["kind"] = Value::String(T::KIND.into());
    v
}

fn decode<T: Resource>(v: &Value) -> Result<T, StoreError> {
    // From the borrowed value: no copy of the whole object first.
    T::deserialize(v)
        .map_err(|e| StoreError::BadRequest(format!("stored {} does not decode: {e}", T::KIND)))
}

/// Typed operations over a [`Store`].
pub trait TypedStore {
    fn get_typed<T: Resource>(&self, name: &str) -> Result<T, StoreError>;
    fn list_typed<T: Resource>(&self) -> Result<Vec<T>, StoreError>;
    fn create_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError>;
    fn update_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError>;
    fn update_status_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError>;
    /// Creates the object, or updates its spec/metadata when they differ (status untouched).
    fn apply_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError>;
    /// Read-modify-write of an object's status, retried on conflicting writes. `Ok(None)` when
    /// the object does not exist. A change that changes nothing writes nothing.
    fn update_status_with<T: Resource>(
        &self,
        name: &str,
        f: impl Fn(&mut T),
    ) -> Result<Option<T>, StoreError>;
}

impl TypedStore for Store {
    fn get_typed<T: Resource>(&self, name: &str) -> Result<T, StoreError> {
        decode(&*self.get(T::KIND, name)?)
    }

    fn list_typed<T: Resource>(&self) -> Result<Vec<T>, StoreError> {
        self.list(T::KIND, &Selectors::default())?
            .0
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    fn create_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError> {
        decode(&*self.create(encode(obj))?)
    }

    fn update_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError> {
        decode(&*self.update(encode(obj))?)
    }

    fn update_status_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError> {
        decode(&*self.update_status(encode(obj))?)
    }

    fn apply_typed<T: Resource>(&self, obj: &T) -> Result<T, StoreError> {
        let name = obj.meta().name.clone();
        loop {
            match self.get(T::KIND, &name) {
                Err(StoreError::NotFound { .. }) => match self.create(encode(obj)) {
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    other => return decode(&*other?),
                },
                Err(e) => return Err(e),
                Ok(current) => {
                    let mut desired = encode(obj);
                    desired["metadata"]["resourceVersion"] =
                        current["metadata"]["resourceVersion"].clone();
                    match self.update(desired) {
                        Err(StoreError::Conflict { .. }) => continue,
                        other => return decode(&*other?),
                    }
                }
            }
        }
    }

    fn update_status_with<T: Resource>(
        &self,
        name: &str,
        f: impl Fn(&mut T),
    ) -> Result<Option<T>, StoreError> {
        let mut last = None;
        for _ in 0..5 {
            let mut obj = match self.get_typed::<T>(name) {
                Ok(obj) => obj,
                Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            f(&mut obj);
            match self.update_status_typed(&obj) {
                Err(e @ StoreError::Conflict { .. }) => last = Some(e),
                other => return other.map(Some),
            }
        }
        Err(last.expect("five conflicts"))
    }
}
