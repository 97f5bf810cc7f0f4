//! Errors of the sandbox and instance runtime.

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
    /// The instance spec cannot be run as given.
    #[error("invalid instance {id}: {what}")]
    InvalidInstance { id: String, what: String },
    /// `start` was asked for an instance whose directory is already there.
    #[error("instance {id} already exists at {dir}: stop it first")]
    InstanceExists { id: String, dir: PathBuf },
    /// The image's tree makes a mountpoint impossible (a file where a directory is
    /// needed, or a symlink loop).
    #[error("image of instance {id} cannot hold mountpoint {mountpoint}: {what}")]
    Mountpoint {
        id: String,
        mountpoint: String,
        what: String,
    },
    /// The shim did not start the container: runc's messages, or why the shim failed.
    #[error("start instance {id}: {message}")]
    Start { id: String, message: String },
    /// A path under the instance directory is still mounted, so it was not removed.
    #[error("{path} is still mounted: not removing instance {id}")]
    StillMounted { id: String, path: PathBuf },
    /// Undoing a failed start failed as well; both errors are kept.
    #[error("{error} (undoing the start failed too: {cleanup})")]
    Cleanup {
        error: Box<RuntimeError>,
        cleanup: Box<RuntimeError>,
    },
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
