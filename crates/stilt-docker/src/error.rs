//! Error type shared by the Docker and Compose adapters.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = DockerError> = std::result::Result<T, E>;

/// What went wrong talking to the engine (or the compose CLI).
///
/// `Engine` and `Build` carry the engine's message **verbatim** so reconcilers can show users
/// exactly what Docker said (e.g. `dockerfile parse error line 2: unknown instruction: BOGUS`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// No engine answered (socket missing, connection refused, ping failed).
    #[error("docker engine unavailable: {0}")]
    Unavailable(String),
    /// The object (image, container, exec, path) does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The engine answered with an error status; `message` is the engine's text.
    #[error("{message}")]
    Engine { status: u16, message: String },
    /// A build failed; the message is what the builder reported.
    #[error("{0}")]
    Build(String),
    /// A push failed; the message is what the engine reported.
    #[error("{0}")]
    Push(String),
    /// Local I/O (reading the build context, building a tar, spawning the compose CLI).
    #[error("{0}")]
    Io(String),
    /// A compose CLI invocation failed; `stderr` is the CLI's output.
    #[error("{command} failed (exit {code:?}): {stderr}")]
    Compose {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
    /// Anything else (protocol, decode, unexpected response).
    #[error("{0}")]
    Other(String),
}

impl DockerError {
    /// True when the error says the object is missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::NotFound(_))
            || matches!(self, DockerError::Engine { status: 404, .. })
    }

    /// The human message without any prefix we add.
    pub fn message(&self) -> String {
        match self {
            DockerError::Engine { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn io(context: impl fmt::Display, err: impl fmt::Display) -> Self {
        DockerError::Io(format!("{context}: {err}"))
    }
}

impl From<std::io::Error> for DockerError {
    fn from(e: std::io::Error) -> Self {
        DockerError::Io(e.to_string())
    }
}

impl From<bollard::errors::Error> for DockerError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError {
                status_code: 404,
                message,
            } => DockerError::NotFound(message),
            E::DockerResponseServerError {
                status_code,
                message,
            } => DockerError::Engine {
                status: status_code,
                message,
            },
            E::DockerStreamError { error } => DockerError::Other(error),
            E::SocketNotFoundError(s) => DockerError::Unavailable(format!("socket not found: {s}")),
            E::HyperLegacyError { err } => {
                // hyper-util's legacy client error: connection refused / reset / missing socket.
                let mut msg = err.to_string();
                let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&err);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                if err.is_connect() {
                    DockerError::Unavailable(msg)
                } else {
                    DockerError::Other(msg)
                }
            }
            E::IOError { err } => DockerError::Io(err.to_string()),
            other => DockerError::Other(other.to_string()),
        }
    }
}
