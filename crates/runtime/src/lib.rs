//! kiln runtime: runs `RUN` build steps in a runc sandbox over an overlay of the image so
//! far, and long-lived service instances (see the [`instance`] module) with a shim each.
//!
//! The entry point for builds is [`Sandbox::run`]: it mounts an overlay whose lower layers are the
//! already-unpacked image layers and whose upper layer is a fresh directory supplied by
//! the caller, writes an OCI runtime bundle around it, runs the step with `runc run`, and
//! always tears everything down again (container state, mount, bundle), also on error or
//! panic. Afterwards the upper directory holds exactly the step's changes, in overlay
//! form (char 0/0 whiteouts, opaque directory xattrs), ready to become a layer.
//!
//! Mountpoints that runc has to create inside the root (`/proc`, `/dev`, `/sys`, the
//! working directory, `/etc/resolv.conf` with network) are not part of the step's
//! changes: the `mountpoints` module documents how they are kept out of the layer.

mod bundle;
mod config;
mod container;
mod error;
pub mod instance;
mod locate;
mod logs;
mod mountpoints;
mod overlay;
mod sandbox;
mod spec;

pub use error::RuntimeError;
pub use instance::{
    Bind, ExitInfo, InstanceSpec, Instances, Limits, LogConfig, Observed, Started, is_opaque,
    mount_points, own_mount_points, process_alive, process_start_time, shim_main,
    unescape_mountinfo,
};
pub use logs::{LogLine, log_files, rfc3339_millis, rfc3339_secs};
pub use overlay::Overlay;
pub use sandbox::Sandbox;
pub use spec::{DEFAULT_PATH, SandboxSpec};
