//! The adapter's error type.

/// Everything that can go wrong talking to a cluster or handling manifests.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// YAML that does not parse (message carries line/column).
    #[error("yaml: {0}")]
    Yaml(String),
    /// A manifest that parses but is not a usable object (no kind, no name…).
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// An image map matched nothing in the YAML (Tilt's wording).
    #[error("Docker image missing from yaml: {0}")]
    ImageMissing(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The API server refused the request.
    #[error("{message} ({reason}, HTTP {code})")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// The kind is not served by the cluster (CRD missing?).
    #[error("unknown kind {0} (is its CustomResourceDefinition installed?)")]
    UnknownKind(String),
    /// Connection, TLS, kubeconfig or websocket problems.
    #[error("cluster connection: {0}")]
    Connection(String),
    /// An exec'd command failed to start or the stream broke.
    #[error("exec: {0}")]
    Exec(String),
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Other(String),
}

impl K8sError {
    /// True for "does not exist" (HTTP 404) in any form.
    pub fn is_not_found(&self) -> bool {
        matches!(self, K8sError::NotFound(_)) || matches!(self, K8sError::Api { code: 404, .. })
    }

    /// True for "already exists" (HTTP 409 on create).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, K8sError::Api { code: 409, message, .. } if message.contains("already exists"))
    }

    /// True when an apply failed because a field cannot be changed (Tilt then deletes and
    /// re-creates the object).
    pub fn is_immutable_field(&self) -> bool {
        match self {
            K8sError::Api { code, message, .. } => {
                (*code == 422 || *code == 400 || *code == 409)
                    && (message.contains("field is immutable")
                        || message.contains("is immutable")
                        || message.contains("may not change once set"))
            }
            _ => false,
        }
    }
}

impl From<kube::Error> for K8sError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => {
                if s.code == 404 {
                    K8sError::NotFound(s.message)
                } else {
                    K8sError::Api {
                        code: s.code,
                        reason: s.reason,
                        message: s.message,
                    }
                }
            }
            other => K8sError::Connection(other.to_string()),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = K8sError> = std::result::Result<T, E>;
