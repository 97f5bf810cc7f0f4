//! The demo's world: a temporary directory under /var/tmp holding the build context and
//! a KILN_HOME, a free port range, the daemon (and the proxy it starts), and the cleanup
//! that removes all of it — on every exit path: by `Drop`, and, when the demo itself is
//! killed (Ctrl-C), by a guard process that notices its pipe closing.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use kiln_daemon::api::types::{ApplyResponse, DaemonStatus, InstanceInfo, RolloutStatus};
use rustix::process::{Pid, Signal};

use crate::client::Client;

/// Demo directories are made here, named `kiln-demo-…`; the guard refuses any other.
const PARENT: &str = "/var/tmp";
const PREFIX: &str = "kiln-demo-";
/// A file marking a directory as a demo's, so the guard never removes anything else.
const MARKER: &str = ".kiln-demo";
/// Port ranges of 100 are probed in here: instances get the first 90, the route the last.
const PORTS: (u16, u16) = (29000, 29999);

/// The demo's private world; dropping it stops and removes everything in it.
#[derive(Debug)]
pub struct World {
    pub root: PathBuf,
    /// The instances' port range.
    pub ports: (u16, u16),
    pub route_port: u16,
    exe: PathBuf,
    daemon: Option<Child>,
    guard: Option<(Child, ChildStdin)>,
    cleaned: bool,
}

impl World {
    /// Makes the directory, starts the guard, and picks free ports.
    pub fn create() -> anyhow::Result<World> {
        let exe = std::env::current_exe().context("cannot find the kiln executable")?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let root = Path::new(PARENT).join(format!("{PREFIX}{}-{nanos:09}", std::process::id()));
        fs::create_dir(&root).with_context(|| format!("cannot create {}", root.display()))?;
        let mut world = World {
            root,
            ports: (0, 0),
            route_port: 0,
            exe,
            daemon: None,
            guard: None,
            cleaned: false,
        };
        fs::write(world.root.join(MARKER), "")?;
        fs::create_dir_all(world.home())?;
        world.guard = Some(spawn_guard(&world.exe, &world.root)?);
        let (first, last) = free_ports()?;
        world.ports = (first, first + 89);
        world.route_port = last;
        Ok(world)
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn ctx(&self) -> PathBuf {
        self.root.join("ctx")
    }

    pub fn client(&self) -> Client {
        Client::new(kiln_daemon::socket_path(&self.home()))
    }

    fn daemon_log(&self) -> PathBuf {
        self.home().join("daemon.log")
    }

    /// `kiln build` of the context's kiln.toml with tag `demo`: its output line(s).
    pub fn build(&self) -> anyhow::Result<String> {
        let out = Command::new(&self.exe)
            .arg("--home")
            .arg(self.home())
            .args(["build", "--tag", "demo", "-f"])
            .arg(self.ctx().join("kiln.toml"))
            .stdin(Stdio::null())
            .output()
            .context("cannot run kiln build")?;
        if !out.status.success() {
            anyhow::bail!(
                "kiln build failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Starts `kiln daemon` (in its own process group: a Ctrl-C reaches the demo, whose
    /// guard then destroys the service through it) and waits until it answers.
    pub fn start_daemon(&mut self) -> anyhow::Result<DaemonStatus> {
        let log = fs::File::create(self.daemon_log())?;
        let mut command = Command::new(&self.exe);
        command
            .arg("--home")
            .arg(self.home())
            .args([
                "daemon",
                "--host",
                "127.0.0.1",
                "--ports",
                &format!("{}-{}", self.ports.0, self.ports.1),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        self.daemon = Some(command.spawn().context("cannot start kiln daemon")?);
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(d) = self.daemon.as_mut()
                && let Ok(Some(status)) = d.try_wait()
            {
                self.daemon = None;
                anyhow::bail!(
                    "kiln daemon exited while starting ({status}):\n{}",
                    self.logs()
                );
            }
            match client.get::<DaemonStatus>("/v1/status") {
                Ok(status) => return Ok(status),
                Err(e) if Instant::now() >= deadline => {
                    anyhow::bail!("kiln daemon did not answer within 30 s: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The end of the daemon's and the proxy's logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- daemon log (last 40 lines) ---\n{}\n--- proxy log (last 20 lines) ---\n{}\n---",
            tail(&self.daemon_log(), 40),
            tail(&self.home().join("logs/proxy.log"), 20)
        )
    }

    /// Stops and removes everything: what was left behind, if anything, or an error.
    pub fn cleanup(&mut self) -> anyhow::Result<()> {
        if self.cleaned {
            return Ok(());
        }
        self.cleaned = true;
        let result = cleanup(&self.root, self.daemon.take());
        if let Some((mut guard, mut stdin)) = self.guard.take() {
            // Nothing left for the guard to do.
            let _ = stdin.write_all(b"done");
            drop(stdin);
            let _ = guard.wait();
        }
        result
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("kiln demo: cleanup: {e:#}");
        }
    }
}

/// Starts `kiln demo --guard ROOT` in its own process group (a Ctrl-C does not reach
/// it), its stdin a pipe from this process: when the pipe closes without `done`, the
/// demo died and the guard cleans up.
fn spawn_guard(exe: &Path, root: &Path) -> anyhow::Result<(Child, ChildStdin)> {
    let mut child = Command::new(exe)
        .args(["demo", "--guard"])
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the demo's cleanup guard")?;
    let stdin = child
        .stdin
        .take()
        .context("the guard's stdin is not a pipe")?;
    Ok((child, stdin))
}

/// `kiln demo --guard ROOT`: waits for the demo to end; cleans up if it did not.
pub fn guard(root: &Path) -> anyhow::Result<()> {
    let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if root.parent() != Some(Path::new(PARENT))
        || !name.starts_with(PREFIX)
        || !root.join(MARKER).is_file()
    {
        anyhow::bail!("{} is not a kiln demo directory", root.display());
    }
    let mut word = String::new();
    let _ = std::io::stdin().read_to_string(&mut word);
    if word == "done" {
        return Ok(());
    }
    eprintln!(
        "\nkiln demo: interrupted; cleaning up {} (daemon, proxy, instances, mounts)",
        root.display()
    );
    cleanup(root, None)?;
    eprintln!("kiln demo: cleaned up");
    Ok(())
}

/// Destroys the service through the daemon, stops the daemon (`daemon`, or found by
/// its command line) and the proxy, deletes leftover containers and shims, unmounts
/// everything under `root` and removes it.
fn cleanup(root: &Path, daemon: Option<Child>) -> anyhow::Result<()> {
    let home = root.join("home");
    let home_text = home.to_string_lossy().into_owned();
    let socket = kiln_daemon::socket_path(&home);
    if socket.exists() {
        destroy(&Client::new(socket));
    }
    match daemon {
        Some(mut child) => {
            signal(child.id(), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), Signal::KILL);
            }
            let _ = child.wait();
        }
        None => stop_all(
            &processes_of(&home_text, |args| args.iter().any(|a| a == "daemon")),
            Duration::from_secs(10),
        ),
    }
    stop_all(
        &processes_of(&home_text, |args| args.iter().any(|a| a == "proxy")),
        Duration::from_secs(5),
    );
    for runc_root in runc_roots(&home) {
        for id in runc_list(&runc_root) {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&runc_root)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let shims = processes_of(&home_text, |args| args.iter().any(|a| a == "__shim"));
    for pid in &shims {
        signal(*pid, Signal::KILL);
    }
    unmount_under(root);
    let left = mounts_under(root);
    if !left.is_empty() {
        anyhow::bail!(
            "still mounted, {} not removed: {}",
            root.display(),
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))?;
    let procs = processes_of(&home_text, |_| true);
    if !procs.is_empty() {
        anyhow::bail!("processes of the demo still running: {procs:?}");
    }
    Ok(())
}

/// `DELETE /v1/services/app`, then waits (at most 20 s) until its instances are gone.
/// Not while a rollout is in progress (when the demo was interrupted): the daemon keeps
/// such a service's instances until the rollout ends, so they are force-deleted later.
fn destroy(client: &Client) {
    if client.delete::<ApplyResponse>("/v1/services/app").is_err() {
        return;
    }
    let rollout = client.get::<RolloutStatus>("/v1/rollouts/app");
    if rollout.is_ok_and(|r| !r.done) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match client.get::<Vec<InstanceInfo>>("/v1/instances?service=app") {
            Ok(left) if !left.is_empty() => std::thread::sleep(Duration::from_millis(100)),
            _ => return,
        }
    }
}

/// SIGTERM to each of `pids`, SIGKILL to those still alive after `grace`.
fn stop_all(pids: &[u32], grace: Duration) {
    for pid in pids {
        signal(*pid, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids.iter().filter(|p| alive(**p)) {
        signal(*pid, Signal::KILL);
    }
}

/// The runc roots under `home`: the instances' and any a build left behind.
fn runc_roots(home: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if e.file_name().to_string_lossy().starts_with("runc") {
                out.push(path);
            } else if depth > 0 {
                walk(&path, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(home, 3, &mut out);
    out
}

fn runc_list(root: &Path) -> Vec<String> {
    let Ok(out) = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(["list", "-q"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Live processes (but this one) with an argument that is `home` or under it, and
/// whose arguments satisfy `pred`.
fn processes_of(home: &str, pred: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = args
            .iter()
            .any(|a| a == home || a.starts_with(&format!("{home}/")));
        // The guard names the demo's directory, not its home: it is never matched.
        if ours && pred(&args) {
            out.push(pid);
        }
    }
    out
}

fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s == 'Z' || s == 'X')
    })
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mut points = mounts_under(dir);
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in points {
            let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// The mount points under `dir` (itself included), from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    kiln_runtime::own_mount_points()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The first of the 100-port ranges in [`PORTS`] (starting at one chosen by this
/// process's id, so that two demos rarely collide) whose ports are all free on
/// 127.0.0.1: (first, last).
fn free_ports() -> anyhow::Result<(u16, u16)> {
    let ranges = (PORTS.1 - PORTS.0 + 1) / 100;
    let start = u16::try_from(std::process::id() % u32::from(ranges)).unwrap_or(0);
    for i in 0..ranges {
        let first = PORTS.0 + 100 * ((start + i) % ranges);
        let last = first + 99;
        if (first..=last).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok((first, last));
        }
    }
    anyhow::bail!(
        "no 100 free ports in a row between {} and {} on 127.0.0.1",
        PORTS.0,
        PORTS.1
    )
}

/// The last `n` lines of a file ("" if unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(kiln_runtime::unescape_mountinfo(r"/a\040b/c"), "/a b/c");
        assert_eq!(kiln_runtime::unescape_mountinfo(r"/plain"), "/plain");
    }

    #[test]
    fn the_guard_removes_only_demo_directories() {
        let err = guard(Path::new("/tmp")).unwrap_err();
        assert!(
            err.to_string().contains("not a kiln demo directory"),
            "{err}"
        );
        let err = guard(Path::new("/var/tmp/kiln-demo-0-000000000")).unwrap_err();
        assert!(
            err.to_string().contains("not a kiln demo directory"),
            "{err}"
        );
    }
}
