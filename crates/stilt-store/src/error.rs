use stilt_api::FieldError;

/// Why a store operation failed. Each maps to one Kubernetes status code.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {kind} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { kind: String, name: String },
    #[error("{kind} {name:?} is invalid: {}", join(.causes))]
    Invalid {
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("too old resource version: {requested} (oldest available: {oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// A watch from a resourceVersion this store has not reached (one from an earlier run).
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: u64, current: u64 },
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
}

fn join(causes: &[FieldError]) -> String {
    causes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl StoreError {
    /// The HTTP status code the Kubernetes API uses for this error.
    pub fn code(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } | StoreError::UnknownKind(_) => 404,
            StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } => 409,
            StoreError::Invalid { .. } => 422,
            StoreError::BadRequest(_) => 400,
            StoreError::Gone { .. } => 410,
            // Kubernetes answers a Timeout (the watch cache waited for the version in vain).
            StoreError::TooLargeResourceVersion { .. } => 504,
        }
    }

    /// The Kubernetes `reason` for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } | StoreError::UnknownKind(_) => "NotFound",
            StoreError::AlreadyExists { .. } => "AlreadyExists",
            StoreError::Conflict { .. } => "Conflict",
            StoreError::Invalid { .. } => "Invalid",
            StoreError::BadRequest(_) => "BadRequest",
            StoreError::Gone { .. } => "Expired",
            StoreError::TooLargeResourceVersion { .. } => "Timeout",
        }
    }
}
