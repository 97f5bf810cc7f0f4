//! The part of a test world that the daemon-driven test binaries (instances, traffic)
//! share: a private directory with a KILN_HOME and a context, a port range, the kiln
//! binary, the `kiln daemon` it runs, polling with deadlines that fail with the end of
//! the logs, the CLI's JSON views, and cleanup that leaves no daemon, proxy, shim,
//! container, mount or directory behind, even when a test fails.
//!
//! Each binary's `World` holds a [`Base`] and derefs to it; what is specific to a binary
//! (its image and specs, its load generator, its table watch) stays in its harness.

// Each test binary includes this file by path and uses only some of it (a helper used by
// one binary is unused in the other), so what one binary leaves unused is not dead.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde::Deserialize;

use crate::host::{
    parse_rfc3339_ms, processes, signal, stat_state_is_zombie, streams, tail, unmount_under,
};

/// One instance as `kiln ps --output json` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub image: String,
    pub version: String,
    pub state: String,
    pub ready: bool,
    pub pid: Option<u32>,
    pub address: String,
    pub started: Option<String>,
}

/// One line of `kiln events --output json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub ts: String,
    pub service: Option<String>,
    pub instance: Option<String>,
    pub kind: String,
    pub message: String,
}

impl Event {
    /// `ts` in milliseconds since the epoch.
    pub fn ms(&self) -> i64 {
        parse_rfc3339_ms(&self.ts).unwrap_or_else(|| panic!("bad event ts {:?}", self.ts))
    }
}

/// A running `kiln daemon`.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

/// A log whose end [`Base::fail`] shows: its name, its path under the world's
/// directory, and how many of its last lines.
#[derive(Debug, Clone)]
pub struct LogTail {
    pub name: &'static str,
    pub path: &'static str,
    pub lines: usize,
}

/// The shared part of a test's private world: a directory with `home/` (KILN_HOME) and
/// `ctx/`, a port range for instances, and the daemon serving it. Dropping it stops and
/// removes all of it.
#[derive(Debug)]
pub struct Base {
    dir: tempfile::TempDir,
    pub ports: (u16, u16),
    /// The daemon's extra environment, set in order (a later one wins).
    pub daemon_env: Vec<(String, String)>,
    /// The logs whose ends `fail` shows; the daemon's own log is `daemon.log`.
    tails: Vec<LogTail>,
    daemon: Option<Daemon>,
    starts: u32,
}

impl Base {
    /// A world in a new directory `PREFIX…` under the target's tmpdir, whose daemon hands
    /// out `ports` with `RUST_LOG=rust_log`; `fail` shows the end of each of `tails`.
    pub fn new(prefix: &str, ports: (u16, u16), rust_log: &str, tails: Vec<LogTail>) -> Base {
        Base {
            dir: tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
            ports,
            daemon_env: vec![("RUST_LOG".into(), rust_log.into())],
            tails,
            daemon: None,
            starts: 0,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    pub fn ctx(&self) -> PathBuf {
        self.path().join("ctx")
    }

    pub fn spec_path(&self) -> PathBuf {
        self.ctx().join("kiln.toml")
    }

    pub fn runc_root(&self) -> PathBuf {
        self.home().join("runc-instances")
    }

    fn log_path(&self) -> PathBuf {
        self.path().join("daemon.log")
    }

    pub fn build(&self) {
        self.build_tag("test");
    }

    /// `kiln build` of every image of kiln.toml, tagged `tag`.
    pub fn build_tag(&self, tag: &str) {
        let spec = self.spec_path();
        self.ok(&["build", "-f", spec.to_str().unwrap(), "--tag", tag]);
    }

    /// `kiln --home HOME ARGS…`, not started, stdin from /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--home")
            .arg(self.home())
            .args(args)
            .env_remove("KILN_HOME")
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null());
        c
    }

    /// Runs `kiln --home HOME ARGS…`.
    pub fn kiln(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs kiln and returns its stdout; fails with both streams and the logs.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        if !out.status.success() {
            self.fail(&format!(
                "kiln {args:?} failed: {}\n{}",
                out.status,
                streams(&out)
            ));
        }
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs kiln, which must fail, and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        if out.status.success() {
            self.fail(&format!(
                "kiln {args:?} succeeded but should have failed\n{}",
                streams(&out)
            ));
        }
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Panics with `message` and the end of each of the world's logs.
    pub fn fail(&self, message: &str) -> ! {
        let mut text = format!("{message}\n");
        for t in &self.tails {
            let path = self.path().join(t.path);
            text += &format!(
                "\n--- {} log ({}, last {} lines) ---\n{}",
                t.name,
                path.display(),
                t.lines,
                tail(&path, t.lines)
            );
        }
        panic!("{text}\n--- end of logs ---");
    }

    /// `fail` unless `cond`.
    pub fn check(&self, cond: bool, message: impl FnOnce() -> String) {
        if !cond {
            self.fail(&message());
        }
    }

    /// Polls `check` every 100 ms until it gives a value; at the deadline, fails with
    /// `what` and the last reason `check` gave.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match check() {
                Ok(v) => return v,
                Err(last) if Instant::now() >= deadline => self.fail(&format!(
                    "timed out after {timeout:?} waiting for {what}: {last}"
                )),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    // --- the daemon ---

    pub fn start_daemon(&mut self) {
        self.start_daemon_with_ports(self.ports);
    }

    /// Starts `kiln daemon` in the foreground as a child with the world's extra
    /// environment, its output appended to the world's log, and waits until `kiln
    /// status` answers.
    pub fn start_daemon_with_ports(&mut self, ports: (u16, u16)) {
        assert!(self.daemon.is_none(), "a daemon is already running");
        self.starts += 1;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "=== kiln daemon start {} ===", self.starts).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .arg("--home")
            .arg(self.home())
            .args([
                "daemon",
                "--ports",
                &format!("{}-{}", ports.0, ports.1),
                "--host",
                "127.0.0.1",
            ])
            .env_remove("KILN_HOME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.daemon_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        self.daemon = Some(Daemon { child });
        self.wait_for(Duration::from_secs(30), "the daemon to answer", || {
            if let Some(status) = self.daemon_exited() {
                self.fail(&format!("the daemon exited while starting: {status}"));
            }
            if !self.home().join("kiln.sock").exists() {
                return Err("no kiln.sock yet".into());
            }
            let out = self.kiln(&["status"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).to_string())
            }
        });
    }

    fn daemon_exited(&self) -> Option<String> {
        let d = self.daemon.as_ref()?;
        let pid = d.child.id();
        // Not `try_wait` (needs `&mut`): a zombie or a missing /proc entry means it exited.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !stat_state_is_zombie(&stat) => None,
            _ => Some(format!("pid {pid} is gone")),
        }
    }

    /// SIGKILLs the daemon and reaps it.
    pub fn kill_daemon(&mut self) {
        let mut d = self.daemon.take().expect("no daemon running");
        signal(d.child.id(), Signal::KILL);
        let _ = d.child.wait();
    }

    /// SIGTERMs the daemon, then SIGKILLs it if it has not exited within 10 s.
    pub fn stop_daemon(&mut self) {
        let Some(mut d) = self.daemon.take() else {
            return;
        };
        signal(d.child.id(), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = d.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(d.child.id(), Signal::KILL);
        let _ = d.child.wait();
    }

    // --- the CLI's views ---

    /// `kiln apply -f kiln.toml --timeout 90s`, which must succeed: its output.
    pub fn apply(&self) -> String {
        let spec = self.spec_path();
        self.ok(&["apply", "-f", spec.to_str().unwrap(), "--timeout", "90s"])
    }

    pub fn ps(&self) -> Vec<Instance> {
        let out = self.ok(&["ps", "--output", "json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| self.fail(&format!("kiln ps --output json: {e}:\n{out}")))
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.ok(&["status", "--output", "json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| self.fail(&format!("kiln status --output json: {e}:\n{out}")))
    }

    pub fn events(&self) -> Vec<Event> {
        let out = self.ok(&["events", "--output", "json"]);
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    self.fail(&format!("kiln events --output json: {e}: line {l}"))
                })
            })
            .collect()
    }

    // --- this world's processes, containers and mounts ---

    /// Pids of this world's `kiln --home HOME proxy` processes.
    pub fn proxy_pids(&self) -> Vec<u32> {
        let home = self.home().to_string_lossy().to_string();
        processes()
            .into_iter()
            .filter(|(_, args)| args.iter().any(|a| a == "proxy") && args.contains(&home))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// This world's live shims (`kiln __shim HOME/instances/ID`): pid and command line
    /// (arguments joined by spaces).
    pub fn shims(&self) -> Vec<(u32, String)> {
        let home = self.home().to_string_lossy().to_string();
        processes()
            .into_iter()
            .filter(|(_, args)| {
                args.iter().any(|a| a == "__shim") && args.iter().any(|a| a.starts_with(&home))
            })
            .map(|(pid, args)| (pid, args.join(" ")))
            .collect()
    }

    /// Pids of this world's shims.
    pub fn shim_pids(&self) -> Vec<u32> {
        self.shims().into_iter().map(|(pid, _)| pid).collect()
    }

    pub fn kill_shims(&self) {
        for pid in self.shim_pids() {
            signal(pid, Signal::KILL);
        }
    }

    pub fn kill_proxies(&self) {
        for pid in self.proxy_pids() {
            signal(pid, Signal::KILL);
        }
    }

    /// The container ids `runc list` shows under the instances' root (none if runc
    /// cannot run).
    pub fn runc_ids(&self) -> BTreeSet<String> {
        let out = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let Ok(out) = out else {
            return BTreeSet::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Force-deletes every container of this world's runc root.
    pub fn delete_containers(&self) {
        for id in self.runc_ids() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Lazily unmounts every mount point under `dir`, deepest first.
    pub fn unmount_under(&self, dir: &Path) {
        unmount_under(dir);
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        self.stop_daemon();
        self.kill_proxies();
        self.kill_shims();
        self.delete_containers();
        self.kill_shims();
        self.kill_proxies();
        unmount_under(self.path());
        // The TempDir removes the directory itself.
    }
}
