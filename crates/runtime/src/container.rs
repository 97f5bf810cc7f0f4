//! Running one container with runc, and deleting it afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::RuntimeError;
use crate::bundle::Bundle;

/// A runc container id in a runc state root; dropping it deletes the container if runc
/// still has state for it.
#[derive(Debug)]
pub(crate) struct Container<'a> {
    runc: &'a Path,
    root: &'a Path,
    id: &'a str,
}

impl<'a> Container<'a> {
    /// Takes `id` in `root`, deleting a container left behind under that id.
    pub(crate) fn new(runc: &'a Path, root: &'a Path, id: &'a str) -> Self {
        let container = Container { runc, root, id };
        container.delete_if_present();
        container
    }

    /// Runs the bundle in the foreground, its stdout and stderr going to ours, and
    /// waits for it. `args` are the step's, for error messages.
    pub(crate) fn run(&self, bundle: &Bundle, args: &[String]) -> Result<(), RuntimeError> {
        let status = self
            .command()
            .arg("--log")
            .arg(bundle.log())
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(bundle.dir())
            .arg(self.id)
            .stdin(Stdio::null())
            // Our stdout is reserved for results: the step's output goes to stderr.
            .stdout(std::io::stderr())
            .stderr(std::io::stderr())
            .status()
            .map_err(|source| RuntimeError::Spawn {
                runc: self.runc.to_owned(),
                source,
            })?;
        if status.success() {
            return Ok(());
        }
        let errors = logged_errors(&bundle.log());
        if !errors.is_empty() {
            return Err(RuntimeError::Runc {
                args: args.to_vec(),
                message: errors.join("; "),
            });
        }
        match status.code() {
            Some(code) => Err(RuntimeError::StepFailed {
                code,
                args: args.to_vec(),
            }),
            None => Err(RuntimeError::Runc {
                args: args.to_vec(),
                message: killed(status),
            }),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.runc);
        command.arg("--root").arg(self.root);
        command
    }

    /// runc keeps a directory named after the container in its state root.
    fn state_dir(&self) -> PathBuf {
        self.root.join(self.id)
    }

    fn delete_if_present(&self) {
        if self.state_dir().exists() {
            // Best effort: there is nothing better to do if this fails.
            let _ = self
                .command()
                .args(["delete", "--force", self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::io::stderr())
                .status();
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.delete_if_present();
    }
}

/// The messages of error entries in runc's JSON log: runc's own failures, as opposed to
/// the step's exit status, which `runc run` passes on silently.
pub(crate) fn logged_errors(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| matches!(entry["level"].as_str(), Some("error" | "fatal" | "panic")))
        .filter_map(|entry| entry["msg"].as_str().map(str::to_owned))
        .collect()
}

fn killed(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("runc was killed by signal {signal}"),
        None => format!("runc ended with {status}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_error_entries_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        fs::write(
            &log,
            concat!(
                r#"{"level":"warning","msg":"ignored","time":"t"}"#,
                "\n",
                r#"{"level":"error","msg":"runc run failed: exec: \"x\": executable file not found in $PATH","time":"t"}"#,
                "\nnot json\n",
            ),
        )
        .unwrap();
        assert_eq!(
            logged_errors(&log),
            [r#"runc run failed: exec: "x": executable file not found in $PATH"#]
        );
        assert!(logged_errors(&dir.path().join("missing")).is_empty());
    }
}
