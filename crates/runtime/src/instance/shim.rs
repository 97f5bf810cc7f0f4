//! The per-instance shim: `kiln __shim DIR` runs [`shim_main`].
//!
//! It starts the container with `runc run -d`, tells its parent the container's pid on
//! stdout (one JSON line, [`ShimReport`]), then outlives the parent: it is in its own
//! session, so signals to the control plane's process group or terminal do not reach it
//! (and Rust ignores SIGPIPE, so writes to a vanished parent just fail). As a child
//! subreaper it inherits the container's init when `runc run -d` exits, reaps it and
//! records how it ended in `DIR/exit.json`. Two threads turn the container's stdout and
//! stderr into JSON log lines. It exits once it has no children left and both streams
//! are closed: when the container is gone.

mod output;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::process::{WaitOptions, WaitStatus};
use serde::{Deserialize, Serialize};

use super::dir::InstanceDir;
use super::procfs::process_start_time;
use super::{ExitInfo, LogConfig, Started};
use crate::container::logged_errors;
use output::{RuncStdio, Streams};

/// How long a failed start waits for runc's output to reach the log.
const DRAIN_ON_FAILURE: Duration = Duration::from_secs(1);

/// `DIR/shim.json`: what the shim needs besides the bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShimConfig {
    pub(crate) id: String,
    pub(crate) runc: PathBuf,
    pub(crate) runc_root: PathBuf,
    pub(crate) service: String,
    pub(crate) image: String,
    pub(crate) log: LogConfig,
}

/// The one line the shim prints: `{"pid":N,"pid_start":S}` or `{"error":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ShimReport {
    Started(Started),
    Failed { error: String },
}

/// Runs the shim of the instance in `instance_dir` until its container is gone.
/// Exits 0 once the container has been started and has ended, 1 if it could not be
/// started (the reason printed on stdout and to stderr).
pub fn shim_main(instance_dir: &Path) -> ExitCode {
    let dir = InstanceDir::new(instance_dir.to_owned());
    // Fails only for a process group leader, which is detached from its parent's
    // group already.
    let _ = rustix::process::setsid();
    record_own_pid(&dir);
    let me = rustix::process::getpid();
    if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
        return fail(format!("become a child subreaper: {e}"), None);
    }
    let config = match read_config(&dir) {
        Ok(config) => config,
        Err(message) => return fail(message, None),
    };
    let (stdio, streams) = match Streams::spawn(&config) {
        Ok(spawned) => spawned,
        Err(message) => return fail(message, None),
    };
    let started = match run_container(&config, &dir, stdio) {
        Ok(started) => started,
        Err(message) => return fail(message, Some(streams)),
    };
    // Nothing more goes to stdout: the parent drops its end after this line, and a
    // write to the broken pipe would only fail (Rust ignores SIGPIPE).
    report(&ShimReport::Started(started));
    reap_until_no_children(&dir, started.pid);
    streams.join();
    ExitCode::SUCCESS
}

fn fail(message: String, streams: Option<Streams>) -> ExitCode {
    eprintln!("kiln shim: {message}");
    report(&ShimReport::Failed { error: message });
    if let Some(streams) = streams {
        streams.wait_for(DRAIN_ON_FAILURE);
    }
    ExitCode::FAILURE
}

/// `DIR/shim.pid`: `PID STARTTIME`, so that `stop` can wait for the shim.
fn record_own_pid(dir: &InstanceDir) {
    let pid = std::process::id();
    if let Some(start) = process_start_time(pid) {
        let _ = fs::write(dir.shim_pid(), format!("{pid} {start}\n"));
    }
}

fn read_config(dir: &InstanceDir) -> Result<ShimConfig, String> {
    let path = dir.shim_json();
    fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| format!("read {}: {e}", path.display()))
}

/// `runc run -d`, the container's stdout and stderr going to the log pipes.
fn run_container(
    config: &ShimConfig,
    dir: &InstanceDir,
    stdio: RuncStdio,
) -> Result<Started, String> {
    let mut command = Command::new(&config.runc);
    command
        .arg("--root")
        .arg(&config.runc_root)
        .arg("--log")
        .arg(dir.runc_log())
        .args(["--log-format", "json", "run", "--detach", "--pid-file"])
        .arg(dir.pid_file())
        .arg("--bundle")
        .arg(dir.path())
        .arg(&config.id)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdio.stdout))
        .stderr(Stdio::from(stdio.stderr));
    let child = command.spawn();
    // Close our copies of the pipes' write ends: the container holds the only ones.
    drop(command);
    let status = child
        .and_then(|mut child| child.wait())
        .map_err(|e| format!("run {}: {e}", config.runc.display()))?;
    if !status.success() {
        let errors = logged_errors(&dir.runc_log());
        return Err(if errors.is_empty() {
            format!("runc run ended with {status}")
        } else {
            errors.join("; ")
        });
    }
    let pid = fs::read_to_string(dir.pid_file())
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("runc wrote no pid to {}", dir.pid_file().display()))?;
    let pid_start =
        process_start_time(pid).ok_or_else(|| format!("container init {pid} is not in /proc"))?;
    Ok(Started { pid, pid_start })
}

/// Prints `report` as one line; the parent may be gone, so errors are ignored.
fn report(report: &ShimReport) {
    let mut line = serde_json::to_string(report).expect("a report always serialises");
    line.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

/// Reaps every child (the init and whatever else was reparented to us) until there are
/// none, recording the init's end.
fn reap_until_no_children(dir: &InstanceDir, init: u32) {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) => {
                if u32::try_from(pid.as_raw_pid()) == Ok(init) {
                    record_exit(dir, status);
                }
            }
            Ok(None) | Err(Errno::INTR) => continue,
            Err(Errno::CHILD) => return,
            Err(e) => {
                eprintln!("kiln shim: wait: {e}");
                return;
            }
        }
    }
}

/// Writes `DIR/exit.json` atomically.
fn record_exit(dir: &InstanceDir, status: WaitStatus) {
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    let info = ExitInfo {
        code: status.exit_status(),
        signal: status.terminating_signal(),
        at_ms,
    };
    let path = dir.exit_json();
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec(&info).expect("exit info always serialises");
    if let Err(e) = fs::write(&tmp, json).and_then(|()| fs::rename(&tmp, &path)) {
        eprintln!("kiln shim: write {}: {e}", path.display());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_one_json_object() {
        let started = ShimReport::Started(Started {
            pid: 42,
            pid_start: 7,
        });
        assert_eq!(
            serde_json::to_string(&started).unwrap(),
            r#"{"pid":42,"pid_start":7}"#
        );
        let failed: ShimReport = serde_json::from_str(r#"{"error":"no such file"}"#).unwrap();
        assert_eq!(
            failed,
            ShimReport::Failed {
                error: "no such file".to_owned()
            }
        );
        let parsed: ShimReport = serde_json::from_str(r#"{"pid":42,"pid_start":7}"#).unwrap();
        assert_eq!(parsed, started);
    }
}
