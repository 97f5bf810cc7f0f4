//! Errors of the daemon as a whole (startup, serving).

use std::io;
use std::path::PathBuf;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("another kiln daemon is running on {home} (pid {pid})")]
    AlreadyRunning { home: PathBuf, pid: String },
    #[error("state database: {0}")]
    State(#[from] kiln_state::StateError),
    #[error("image store: {0}")]
    Image(#[from] kiln_image::ImageError),
    #[error("runtime: {0}")]
    Runtime(#[from] kiln_runtime::RuntimeError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl DaemonError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> DaemonError {
        let path = path.into();
        move |source| DaemonError::Io { path, source }
    }
}

/// Why an API request failed: the status it answers with and a message for a person.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }
    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 409,
            message: message.into(),
        }
    }
    pub(crate) fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 500,
            message: message.to_string(),
        }
    }
}

impl From<kiln_state::StateError> for ApiError {
    fn from(e: kiln_state::StateError) -> ApiError {
        ApiError::internal(format!("state database: {e}"))
    }
}
