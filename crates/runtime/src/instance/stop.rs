//! [`Instances::stop`](super::Instances::stop): container, cgroups, mount, shim and
//! directory, each step fine with its part being gone already.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::mount::UnmountFlags;
use rustix::process::{Pid, Signal};

use super::Observed;
use super::dir::InstanceDir;
use super::procfs::{kill_leader_and_group, own_mount_points, process_alive, process_start_time};
use super::runc::Runc;
use super::{Instances, validate};
use crate::RuntimeError;

/// How often exits are checked for.
const POLL: Duration = Duration::from_millis(50);

/// How long a SIGKILLed init or the shim may take to go.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub(super) fn stop(
    instances: &Instances,
    id: &str,
    signal: i32,
    grace: Duration,
) -> Result<(), RuntimeError> {
    validate::id(id)?;
    let dir = instances.dir(id);
    let runc = instances.runc();
    let mut state = runc.state(id);
    if abort_unfinished_start(&state, &dir) {
        state = runc.state(id);
    }
    stop_container(&runc, id, state, signal, grace)?;
    remove_cgroups(id);
    unmount(&dir.rootfs())?;
    wait_for_shim(&dir);
    remove_dir(id, &dir)
}

/// A start that never finished (its daemon died, or the shim never reported) may have a
/// shim still inside `runc run`: that shim and its process group go first, so nothing
/// brings the container up behind `stop`'s back. A container that runs or ran is left
/// to the normal path, where the shim outlives it to write its last output. `state` is the
/// container's as runc reports it; returns whether a shim was killed (and the container's
/// state may have changed).
fn abort_unfinished_start(
    state: &Result<Option<Observed>, RuntimeError>,
    dir: &InstanceDir,
) -> bool {
    let started =
        matches!(state, Ok(Some(state)) if state.status != "created" && state.status != "creating");
    if started {
        return false;
    }
    let Some((pid, start)) = shim_of(dir) else {
        return false;
    };
    kill_leader_and_group(pid, start);
    wait_exit(Some((pid, start)), KILL_WAIT);
    true
}

/// The shim's pid and start time, from `shim.pid`.
fn shim_of(dir: &InstanceDir) -> Option<(u32, u64)> {
    let text = fs::read_to_string(dir.shim_pid()).ok()?;
    let mut fields = text.split_whitespace();
    let pid = fields.next()?.parse::<u32>().ok()?;
    let start = fields.next()?.parse::<u64>().ok()?;
    Some((pid, start))
}

/// Signals the init, gives it `grace`, kills it, and deletes the container.
fn stop_container(
    runc: &Runc<'_>,
    id: &str,
    state: Result<Option<Observed>, RuntimeError>,
    signal: i32,
    grace: Duration,
) -> Result<(), RuntimeError> {
    match state {
        Ok(None) => return Ok(()),
        Ok(Some(state)) if state.status != "stopped" => {
            let init = state
                .pid
                .and_then(|pid| process_start_time(pid).map(|start| (pid, start)));
            let exited = runc.kill(id, &signal.to_string()).is_ok() && wait_exit(init, grace);
            if !exited {
                let _ = runc.kill(id, "KILL");
                wait_exit(init, KILL_WAIT);
            }
        }
        // Stopped, or state unreadable: `delete --force` copes with both.
        Ok(Some(_)) | Err(_) => {}
    }
    runc.delete(id)
}

/// Whether the init exits within `limit` (true if it is gone or unknown).
fn wait_exit(init: Option<(u32, u64)>, limit: Duration) -> bool {
    let Some((pid, start)) = init else {
        return true;
    };
    let deadline = Instant::now() + limit;
    loop {
        if !process_alive(pid, start) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Removes `kiln/<id>` from every cgroup hierarchy, if runc left it (best effort: a
/// cgroup that still has processes stays).
fn remove_cgroups(id: &str) {
    let root = Path::new(CGROUP_ROOT);
    let mut dirs = vec![root.join("kiln").join(id)];
    if let Ok(entries) = fs::read_dir(root) {
        dirs.extend(
            entries
                .flatten()
                .map(|entry| entry.path().join("kiln").join(id)),
        );
    }
    for dir in dirs {
        let _ = fs::remove_dir(dir);
    }
}

/// Unmounts the root (lazily if it is busy); not being mounted is fine.
fn unmount(rootfs: &Path) -> Result<(), RuntimeError> {
    let failed = |e: Errno| RuntimeError::Unmount {
        target: rootfs.to_owned(),
        source: e.into(),
    };
    // Several mounts may be stacked there; each round removes one.
    for _ in 0..4 {
        if !own_mount_points().iter().any(|point| point == rootfs) {
            return Ok(());
        }
        match rustix::mount::unmount(rootfs, UnmountFlags::NOFOLLOW) {
            Ok(()) => {}
            Err(Errno::INVAL | Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) => {
                rustix::mount::unmount(rootfs, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                    .map_err(failed)?;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

/// Waits for the shim to exit (it does once the container's output is closed), and
/// kills it if it does not.
fn wait_for_shim(dir: &InstanceDir) {
    let shim = shim_of(dir);
    if wait_exit(shim, KILL_WAIT) {
        return;
    }
    if let Some((pid, start)) = shim
        && process_alive(pid, start)
        && let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

/// Removes the instance directory, unless something under it is still mounted.
fn remove_dir(id: &str, dir: &InstanceDir) -> Result<(), RuntimeError> {
    if !dir.path().exists() {
        return Ok(());
    }
    if let Some(mounted) = own_mount_points()
        .into_iter()
        .find(|point| point.starts_with(dir.path()))
    {
        return Err(RuntimeError::StillMounted {
            id: id.to_owned(),
            path: mounted,
        });
    }
    let mut result = fs::remove_dir_all(dir.path());
    if result.is_err() {
        // A shim writing its last file as the directory goes: once more.
        thread::sleep(POLL);
        result = fs::remove_dir_all(dir.path());
    }
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(RuntimeError::io(dir.path(), e)),
        _ => Ok(()),
    }
}
