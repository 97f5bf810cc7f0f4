//! Long-lived service instances under runc, each watched by its own shim.
//!
//! [`Instances::start`] prepares `instances_dir/<id>/` (the bundle: `config.json`, a
//! read-only overlay root at `rootfs/`, `instance.json` for the service), then spawns the
//! shim (`SHIM_EXE __shim DIR`, see [`shim_main`]) in its own session. The shim runs
//! `runc run -d`, reports the container's pid, and from then on lives as long as the
//! container: it turns the container's stdout and stderr into JSON log lines, reaps the
//! container's init (it is a child subreaper) and records how it ended in `exit.json`.
//! The control plane can die and come back: the shim and the container carry on, and
//! [`Instances::list`], [`Instances::leftovers`] and [`process_alive`] tell it what is
//! still there. [`Instances::stop`] undoes everything, idempotently.
//!
//! Files of `instances_dir/<id>/`: `instance.json`, `shim.json`, `config.json`,
//! `rootfs/` (mountpoint), `empty/` (a blank lower layer for empty images),
//! `runc.log`, `pid` (the container's init), `shim.pid`, `shim.log`, `exit.json`.

mod config;
mod dir;
mod image;
mod layer;
mod procfs;
mod runc;
mod shim;
mod start;
mod stop;
mod validate;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{RuntimeError, locate};
use dir::InstanceDir;
use runc::Runc;

pub use image::is_opaque;
pub use procfs::{
    mount_points, own_mount_points, process_alive, process_start_time, unescape_mountinfo,
};
pub use shim::shim_main;

/// Everything needed to start one instance of a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// The kiln instance id, e.g. `web-3f9a1c2b`, also the runc container id:
    /// `[a-z0-9-]`, at most 64 characters, starting with a letter or digit.
    pub id: String,
    pub service: String,
    /// For log lines and the `org.kiln.image` annotation.
    pub image_digest: String,
    /// The image's unpacked layer directories, topmost first; empty for an empty image.
    pub lowerdirs: Vec<PathBuf>,
    /// Exec form, non-empty.
    pub args: Vec<String>,
    /// `K=V` entries, complete (no `PATH` is added).
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// uid and gid the service runs as.
    pub user: (u32, u32),
    pub hostname: String,
    /// Absolute paths mounted as tmpfs (mode 1777, nosuid, nodev); `/tmp` is always one.
    pub tmpfs: Vec<String>,
    /// External volumes.
    pub binds: Vec<Bind>,
    pub limits: Limits,
    /// Written to `instances_dir/<id>/instance.json`, bind-mounted read-only at
    /// `/run/kiln/instance.json`.
    pub bootstrap: serde_json::Value,
    pub log: LogConfig,
}

/// A host path bind-mounted (recursively) into the instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bind {
    pub host: PathBuf,
    /// Absolute path inside the instance.
    pub to: String,
    pub read_only: bool,
}

/// cgroup limits; `None` is unlimited.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory (swap included: the swap limit is the same).
    pub memory: Option<u64>,
    /// CPU time in thousandths of a CPU (1000 = one full CPU).
    pub cpu_millis: Option<u32>,
    /// Most processes and threads at once.
    pub pids: Option<u32>,
}

/// Where the shim writes the instance's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    /// The current file, e.g. `KILN_HOME/logs/web/web-3f9a1c2b.log`; its directory is
    /// created when missing.
    pub path: PathBuf,
    /// Rotate before the file would grow beyond this (a single longer line still fits).
    pub max_bytes: u64,
    /// Rotated files kept: `path.1` (newest) … `path.keep`.
    pub keep: u32,
}

/// A started instance: its init process on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub pid: u32,
    /// `starttime` from `/proc/PID/stat` (field 22), to tell a reused pid apart.
    pub pid_start: u64,
}

/// A container as runc reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub id: String,
    /// runc's status: `created`, `running`, `stopped` or `paused`.
    pub status: String,
    /// The init process, while there is one.
    pub pid: Option<u32>,
}

/// How an instance's init process ended, as recorded by the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if it was killed.
    pub signal: Option<i32>,
    /// When the shim reaped it, in milliseconds since the epoch.
    pub at_ms: i64,
}

/// Starts, watches and stops instances.
#[derive(Debug, Clone)]
pub struct Instances {
    /// The runc binary.
    runc: PathBuf,
    /// Passed as `runc --root`.
    runc_root: PathBuf,
    /// One directory per instance; its parent holds `layers/` for the mountpoint layers.
    instances_dir: PathBuf,
    /// Run as `SHIM_EXE __shim DIR`.
    shim_exe: PathBuf,
}

impl Instances {
    /// Instances kept in `instances_dir` (created if missing), with runc state in
    /// `runc_root`. `shim_exe` is the `kiln` binary (`std::env::current_exe()`): the shim
    /// runs as `SHIM_EXE __shim DIR`. Fails if runc cannot be found.
    pub fn new(
        runc_root: PathBuf,
        instances_dir: PathBuf,
        shim_exe: PathBuf,
    ) -> Result<Instances, RuntimeError> {
        let runc = locate::find_runc().ok_or(RuntimeError::RuncMissing)?;
        fs::create_dir_all(&instances_dir).map_err(|e| RuntimeError::io(&instances_dir, e))?;
        // Canonical, so that it compares equal to the mount table's paths.
        let instances_dir = instances_dir
            .canonicalize()
            .map_err(|e| RuntimeError::io(&instances_dir, e))?;
        let runc_root =
            std::path::absolute(&runc_root).map_err(|e| RuntimeError::io(&runc_root, e))?;
        Ok(Instances {
            runc,
            runc_root,
            instances_dir,
            shim_exe,
        })
    }

    /// Starts `spec` and returns its init process once runc has started it (20–100 ms
    /// on an idle host; the shim gets 30 s). Blocking: call it off the async runtime.
    /// All or nothing: on error, the container, the mount and the instance directory
    /// are gone again, and the error says what failed (runc's own message included).
    /// The shim is reaped by a background thread.
    pub fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        start::start(self, spec)
    }

    /// Stops instance `id`: `signal`, up to `grace` to exit, then SIGKILL; then deletes
    /// the container, unmounts the root and removes the instance directory (and
    /// cgroups runc left). Whatever is already gone is fine.
    pub fn stop(&self, id: &str, signal: i32, grace: Duration) -> Result<(), RuntimeError> {
        stop::stop(self, id, signal, grace)
    }

    /// Every container in the runc root (kiln's or not); empty when there is no root.
    pub fn list(&self) -> Result<Vec<Observed>, RuntimeError> {
        self.runc().list()
    }

    /// Ids with a directory under the instances directory, sorted: what a previous
    /// run of the control plane may have left (check [`Instances::list`] for which
    /// still run, then [`Instances::stop`] the rest).
    pub fn leftovers(&self) -> Result<Vec<String>, RuntimeError> {
        let entries = match fs::read_dir(&self.instances_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io(&self.instances_dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RuntimeError::io(&self.instances_dir, e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if let Some(name) = entry.file_name().to_str()
                && is_dir
                && validate::valid_id(name)
            {
                ids.push(name.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// How the instance's init ended, once the shim has recorded it.
    pub fn exit_info(&self, id: &str) -> Option<ExitInfo> {
        if !validate::valid_id(id) {
            return None;
        }
        let text = fs::read(self.dir(id).exit_json()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Runs `args` in instance `id` (`runc exec`, as the instance's user, with its
    /// environment), for exec health probes: true iff it exits 0 within `timeout`. On
    /// timeout the process and runc are killed.
    pub fn exec(&self, id: &str, args: &[String], timeout: Duration) -> Result<bool, RuntimeError> {
        validate::id(id)?;
        if args.is_empty() {
            return Err(RuntimeError::InvalidInstance {
                id: id.to_owned(),
                what: "no command to exec".to_owned(),
            });
        }
        self.runc().exec(id, args, &self.dir(id), timeout)
    }

    /// Whether the root (`/`) of process `pid`'s mount namespace is mounted read-only.
    pub fn mount_readonly_check(&self, pid: u32) -> Result<bool, RuntimeError> {
        let path = PathBuf::from(format!("/proc/{pid}/mountinfo"));
        let mountinfo = fs::read_to_string(&path).map_err(|e| RuntimeError::io(&path, e))?;
        procfs::root_read_only(&mountinfo).ok_or_else(|| {
            RuntimeError::io(
                path,
                std::io::Error::other("no mount at / in the mount table"),
            )
        })
    }

    fn runc(&self) -> Runc<'_> {
        Runc::new(&self.runc, &self.runc_root)
    }

    fn dir(&self, id: &str) -> InstanceDir {
        InstanceDir::new(self.instances_dir.join(id))
    }

    /// Where the shared mountpoint layers go: `instances_dir/../layers`.
    fn layers_dir(&self) -> PathBuf {
        self.instances_dir
            .parent()
            .unwrap_or(Path::new("/"))
            .join("layers")
    }
}
