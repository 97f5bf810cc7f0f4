//! The runc commands instances need besides `run` (which the shim does): `state`,
//! `kill`, `delete`, `list` and `exec`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde_json::Value;

use super::Observed;
use super::dir::InstanceDir;
use crate::RuntimeError;

/// How often `exec` checks whether the probe has finished.
const EXEC_POLL: Duration = Duration::from_millis(10);

/// How long runc may take to exit once a timed-out probe is killed.
const EXEC_REAP_WAIT: Duration = Duration::from_secs(2);

/// Names the pid files of concurrent `exec`s.
static EXEC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// runc with a state root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runc<'a> {
    bin: &'a Path,
    root: &'a Path,
}

impl<'a> Runc<'a> {
    pub(crate) fn new(bin: &'a Path, root: &'a Path) -> Self {
        Runc { bin, root }
    }

    pub(crate) fn bin(&self) -> &Path {
        self.bin
    }

    pub(crate) fn root(&self) -> &Path {
        self.root
    }

    /// `runc --root ROOT`.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(self.bin);
        command.arg("--root").arg(self.root).stdin(Stdio::null());
        command
    }

    fn output(&self, args: &[&str]) -> Result<Output, RuntimeError> {
        self.command()
            .args(args)
            .output()
            .map_err(|source| RuntimeError::Spawn {
                runc: self.bin.to_owned(),
                source,
            })
    }

    fn failed(args: &[&str], output: &Output) -> RuntimeError {
        let stderr = String::from_utf8_lossy(&output.stderr);
        RuntimeError::Runc {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            message: match stderr.trim() {
                "" => format!("runc ended with {}", output.status),
                message => message.to_owned(),
            },
        }
    }

    /// Whether runc has state for `id` (a directory of that name in its root).
    pub(crate) fn exists(&self, id: &str) -> bool {
        self.root.join(id).is_dir()
    }

    /// runc's view of `id`; `None` if runc does not know it.
    pub(crate) fn state(&self, id: &str) -> Result<Option<Observed>, RuntimeError> {
        if !self.exists(id) {
            return Ok(None);
        }
        let args = ["state", id];
        let output = self.output(&args)?;
        if !output.status.success() {
            return if self.exists(id) {
                Err(Self::failed(&args, &output))
            } else {
                Ok(None)
            };
        }
        let state: Value =
            serde_json::from_slice(&output.stdout).map_err(|e| RuntimeError::Runc {
                args: args.map(str::to_owned).to_vec(),
                message: format!("unreadable output: {e}"),
            })?;
        Ok(observed(&state))
    }

    /// `runc kill ID SIGNAL` (a number or a name such as `KILL`).
    pub(crate) fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let args = ["kill", id, signal];
        let output = self.output(&args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Self::failed(&args, &output))
        }
    }

    /// `runc delete --force ID`; an unknown container is fine.
    pub(crate) fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.exists(id) {
            return Ok(());
        }
        let args = ["delete", "--force", id];
        let output = self.output(&args)?;
        if output.status.success() || !self.exists(id) {
            Ok(())
        } else {
            Err(Self::failed(&args, &output))
        }
    }

    /// Every container in the root.
    pub(crate) fn list(&self) -> Result<Vec<Observed>, RuntimeError> {
        if !self.root.is_dir() {
            return Ok(Vec::new());
        }
        let args = ["list", "--format", "json"];
        let output = self.output(&args)?;
        if !output.status.success() {
            return Err(Self::failed(&args, &output));
        }
        parse_list(&output.stdout).map_err(|message| RuntimeError::Runc {
            args: args.map(str::to_owned).to_vec(),
            message,
        })
    }

    /// `runc exec ID ARGS…`: true iff it exits 0 within `timeout`; killed otherwise.
    pub(crate) fn exec(
        &self,
        id: &str,
        args: &[String],
        dir: &InstanceDir,
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let n = EXEC_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid_file = dir
            .path()
            .join(format!("exec-{}-{n}.pid", std::process::id()));
        let mut child = self
            .command()
            .arg("exec")
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| RuntimeError::Spawn {
                runc: self.bin.to_owned(),
                source,
            })?;
        let deadline = Instant::now() + timeout;
        let success = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if Instant::now() < deadline => thread::sleep(EXEC_POLL),
                Ok(None) | Err(_) => {
                    // Kill the process, and let runc reap it and exit: killing runc
                    // first would orphan it to the host's init, and the container could
                    // not stop until that init reaps it.
                    kill_pid_in(&pid_file);
                    let runc_exited = Instant::now() + EXEC_REAP_WAIT;
                    while Instant::now() < runc_exited && matches!(child.try_wait(), Ok(None)) {
                        thread::sleep(EXEC_POLL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
            }
        };
        let _ = fs::remove_file(&pid_file);
        Ok(success)
    }
}

/// Kills the process whose pid runc wrote to `pid_file`, if it did.
fn kill_pid_in(pid_file: &Path) {
    let pid = fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

fn observed(state: &Value) -> Option<Observed> {
    Some(Observed {
        id: state["id"].as_str()?.to_owned(),
        status: state["status"].as_str().unwrap_or("unknown").to_owned(),
        pid: state["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid != 0),
    })
}

/// `runc list --format json` output: an array, or `null` when there is nothing.
fn parse_list(stdout: &[u8]) -> Result<Vec<Observed>, String> {
    let list: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("unreadable output: {e}"))?;
    Ok(list
        .as_array()
        .map(|containers| containers.iter().filter_map(observed).collect())
        .unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_parsed() {
        assert_eq!(parse_list(b"null\n").unwrap(), []);
        let list =
            br#"[{"ociVersion":"1.0.2","id":"web-1","pid":4242,"status":"running","bundle":"/b"},
                        {"id":"web-2","pid":0,"status":"stopped"}]"#;
        assert_eq!(
            parse_list(list).unwrap(),
            [
                Observed {
                    id: "web-1".into(),
                    status: "running".into(),
                    pid: Some(4242)
                },
                Observed {
                    id: "web-2".into(),
                    status: "stopped".into(),
                    pid: None
                },
            ]
        );
        assert!(parse_list(b"nonsense").is_err());
    }
}
