//! Errors of the sandbox runtime.

use std::io;
use std::path::PathBuf;

/// Why a sandboxed step could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No runc binary on `PATH`, `/usr/sbin` or `/sbin`.
    #[error("runc not found: install it (apt-get install -y runc)")]
    RuncMissing,
    /// The spec cannot be run as given.
    #[error("invalid sandbox spec: {what}")]
    InvalidSpec { what: String },
    /// The overlay mount options do not fit in the one page the kernel accepts.
    #[error(
        "overlay mount options for {layers} layers are {len} bytes, more than the kernel accepts"
    )]
    TooManyLayers { layers: usize, len: usize },
    /// Mounting the overlay root failed.
    #[error(
        "mount overlay at {target} (upperdir and the scratch dir must be on the same filesystem, which must not itself be overlayfs): {source}"
    )]
    Mount { target: PathBuf, source: io::Error },
    /// Unmounting the overlay root failed.
    #[error("unmount overlay at {target}: {source}")]
    Unmount { target: PathBuf, source: io::Error },
    /// runc could not be started or waited for.
    #[error("run {runc}: {source}")]
    Spawn { runc: PathBuf, source: io::Error },
    /// runc itself failed (bad config, executable not found in the container, ...).
    #[error("runc failed to run {args:?}: {message}")]
    Runc { args: Vec<String>, message: String },
    /// The step ran and exited non-zero (128 + n when killed by signal n).
    #[error("step {args:?} failed with exit code {code}")]
    StepFailed { code: i32, args: Vec<String> },
    /// A filesystem operation on the bundle, scratch or upper directory failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl RuntimeError {
    /// Builds an [`RuntimeError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
