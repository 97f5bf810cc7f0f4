//! The files of one instance directory.

use std::path::{Path, PathBuf};

/// `instances_dir/<id>/`: the runc bundle plus the shim's files.
#[derive(Debug, Clone)]
pub(crate) struct InstanceDir {
    path: PathBuf,
}

impl InstanceDir {
    pub(crate) fn new(path: PathBuf) -> Self {
        InstanceDir { path }
    }

    /// The directory, also the bundle passed to `runc run --bundle`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The bootstrap document, bind-mounted at `/run/kiln/instance.json`.
    pub(crate) fn instance_json(&self) -> PathBuf {
        self.path.join("instance.json")
    }

    /// What the shim needs ([`super::shim::ShimConfig`]).
    pub(crate) fn shim_json(&self) -> PathBuf {
        self.path.join("shim.json")
    }

    pub(crate) fn config_json(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// The overlay mountpoint, `root.path` of the config.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// An empty lower layer, for images without layers.
    pub(crate) fn empty_lower(&self) -> PathBuf {
        self.path.join("empty")
    }

    /// runc's own log (JSON lines) of `runc run`.
    pub(crate) fn runc_log(&self) -> PathBuf {
        self.path.join("runc.log")
    }

    /// The container init's host pid, written by `runc run --pid-file`.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.path.join("pid")
    }

    /// `PID STARTTIME` of the shim.
    pub(crate) fn shim_pid(&self) -> PathBuf {
        self.path.join("shim.pid")
    }

    /// The shim's stderr.
    pub(crate) fn shim_log(&self) -> PathBuf {
        self.path.join("shim.log")
    }

    /// The init's [`super::ExitInfo`], written by the shim.
    pub(crate) fn exit_json(&self) -> PathBuf {
        self.path.join("exit.json")
    }
}
