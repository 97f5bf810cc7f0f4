//! Shared setup of the instance tests: a world (context, KILN_HOME, port range) with its
//! daemon, the kiln binary, polling with deadlines, and cleanup that leaves no daemon,
//! shim, container, mount or directory behind, even when a test fails.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::Deserialize;

/// The image every test runs: busybox httpd on `$PORT`, serving a copy of `/www` from a
/// tmpfs with `$GREETING` in `/greeting`; it prints `started <instance id>` first.
pub const IMAGE: &str = r#"[image.web]
from = "scratch"
cmd = ["/bin/sh", "-c", "echo started $KILN_INSTANCE; mkdir -p /tmp/www && cp -r /www/* /tmp/www/ && echo $GREETING > /tmp/www/greeting && exec httpd -f -v -p $PORT -h /tmp/www"]

[[image.web.step]]
copy = "busybox"
to = "/bin/busybox"
mode = "0755"

[[image.web.step]]
run = ["/bin/busybox", "--install", "-s", "/bin"]

[[image.web.step]]
copy = "www"
to = "/www"
"#;

/// The body of `GET /` on every instance.
pub const INDEX: &str = "hello from kiln instances\n";

/// How long a first apply of a few replicas may take to converge.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// kiln.toml: the image and `[service.web]` with `replicas` and `GREETING`, probed fast.
pub fn spec(replicas: u32, greeting: &str) -> String {
    format!("{IMAGE}\n{}", service("web", replicas, greeting))
}

/// `[service.NAME]` running image `web` with `replicas` and `GREETING`, probed fast.
pub fn service(name: &str, replicas: u32, greeting: &str) -> String {
    format!(
        r#"[service.{name}]
image = "web"
replicas = {replicas}
env = {{ GREETING = "{greeting}" }}

[service.{name}.readiness]
http = "/healthz"
interval = "200ms"

[service.{name}.liveness]
tcp = true
interval = "500ms"
failure = 2
"#
    )
}

/// The 1-based line of the first line of `text` that starts with `prefix`.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        + 1
}

/// Panics with what to install when a tool is missing or we are not root.
pub fn require(tools: &[&str]) {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests need root (runc, overlay mounts): run scripts/test as root"
    );
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let package = match *t {
            "busybox" => "busybox-static",
            "nsenter" => "util-linux",
            other => other,
        };
        assert!(found, "{t} not found: apt-get install -y {package}");
    }
}

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
    pub service: Option<String>,
    pub instance: Option<String>,
    pub kind: String,
    pub message: String,
}

/// A running `kiln daemon`.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

/// A test's private world: a context dir with the busybox image, a KILN_HOME, a port
/// range, and the daemon serving it. Dropping it stops and removes all of it.
#[derive(Debug)]
pub struct World {
    dir: tempfile::TempDir,
    pub ports: (u16, u16),
    daemon: Option<Daemon>,
    starts: u32,
}

impl World {
    /// A world whose daemon hands out ports `21000 + 100 * slot` to `+ 99`; each test
    /// uses its own slot so tests can run in parallel.
    pub fn new(slot: u16) -> World {
        require(&["runc", "nsenter", "busybox", "umount"]);
        let first = 21000 + 100 * slot;
        World {
            dir: tempfile::Builder::new()
                .prefix("kiln-instances-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
            ports: (first, first + 99),
            daemon: None,
            starts: 0,
        }
    }

    /// A world with the image built and a daemon running, `spec(replicas, greeting)` in
    /// its kiln.toml (not applied yet).
    pub fn started(slot: u16, replicas: u32, greeting: &str) -> World {
        let mut w = World::new(slot);
        w.write_spec(&spec(replicas, greeting));
        w.build();
        w.start_daemon();
        w
    }

    /// `started`, then applied and converged to `replicas` ready instances.
    pub fn converged(slot: u16, replicas: u32, greeting: &str) -> (World, Vec<Instance>) {
        let w = World::started(slot, replicas, greeting);
        let plan = w.apply();
        assert!(plan.contains("create:"), "the first apply creates: {plan}");
        let instances = w.wait_converged(replicas as usize, CONVERGE);
        (w, instances)
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

    /// Writes the context's kiln.toml, with busybox and `www/` beside it.
    pub fn write_spec(&self, toml: &str) -> PathBuf {
        let ctx = self.ctx();
        fs::create_dir_all(ctx.join("www")).unwrap();
        if !ctx.join("busybox").exists() {
            fs::copy(busybox_path(), ctx.join("busybox")).unwrap();
        }
        fs::write(ctx.join("www/index.html"), INDEX).unwrap();
        fs::write(ctx.join("www/healthz"), "ok\n").unwrap();
        fs::write(self.spec_path(), toml).unwrap();
        self.spec_path()
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

    /// Runs kiln and returns its stdout; fails with both streams and the daemon's log.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        if !out.status.success() {
            self.fail(&format!(
                "kiln {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs kiln, which must fail, and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        if out.status.success() {
            self.fail(&format!(
                "kiln {args:?} succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Panics with `message` and the end of the daemon's log.
    pub fn fail(&self, message: &str) -> ! {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(200)..].join("\n");
        panic!(
            "{message}\n\n--- daemon log ({}, last 200 lines) ---\n{tail}\n--- end of daemon log ---",
            self.log_path().display()
        );
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

    /// Starts `kiln daemon` in the foreground as a child, its output appended to the
    /// world's log, and waits until `kiln status` answers.
    pub fn start_daemon_with_ports(&mut self, ports: (u16, u16)) {
        assert!(self.daemon.is_none(), "a daemon is already running");
        self.starts += 1;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "=== kiln daemon start {} ===", self.starts).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
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
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
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

    /// `kiln apply -f kiln.toml --timeout 90s`: the plan and summary it printed.
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

    /// The highest event seq so far (0 without events).
    pub fn last_seq(&self) -> i64 {
        self.events().iter().map(|e| e.seq).max().unwrap_or(0)
    }

    /// Waits until `ps` shows exactly `n` running, ready instances of `web` and
    /// `status` says the service converged; returns them sorted by id.
    pub fn wait_converged(&self, n: usize, timeout: Duration) -> Vec<Instance> {
        self.wait_for(timeout, &format!("{n} ready instances"), || {
            self.converged_now(n)
        })
    }

    /// `Ok(instances of service)` if `service` has converged on `n` instances now
    /// (other services may run beside it).
    pub fn service_converged_now(&self, service: &str, n: usize) -> Result<Vec<Instance>, String> {
        let mut ps: Vec<Instance> = self
            .ps()
            .into_iter()
            .filter(|i| i.service == service)
            .collect();
        ps.sort_by(|a, b| a.id.cmp(&b.id));
        let good = ps.len() == n && ps.iter().all(|i| i.ready && i.state == "running");
        if !good {
            return Err(format!("ps of {service}: {ps:#?}"));
        }
        let status = self.status();
        let s = self.service_status(&status, service);
        if s["converged"] != true || s["ready"] != n || s["replicas"] != n {
            return Err(format!("status: {status:#}"));
        }
        Ok(ps)
    }

    /// The entry of `service` in a `kiln status --output json` document (null if none).
    pub fn service_status(&self, status: &serde_json::Value, service: &str) -> serde_json::Value {
        status["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == service))
            .cloned()
            .unwrap_or_default()
    }

    /// `Ok(instances)` if `web` has converged on `n` instances now.
    pub fn converged_now(&self, n: usize) -> Result<Vec<Instance>, String> {
        let mut ps = self.ps();
        ps.sort_by(|a, b| a.id.cmp(&b.id));
        let good = ps.len() == n
            && ps
                .iter()
                .all(|i| i.ready && i.state == "running" && i.service == "web");
        if !good {
            return Err(format!("ps: {ps:#?}"));
        }
        let status = self.status();
        let web = status["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "web"))
            .cloned()
            .unwrap_or_default();
        if web["converged"] != true || web["ready"] != n || web["replicas"] != n {
            return Err(format!("status: {status:#}"));
        }
        Ok(ps)
    }

    /// The container ids `runc list` shows under the instances' root.
    pub fn runc_ids(&self) -> BTreeSet<String> {
        let out = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Pids of this world's shims (`kiln __shim HOME/instances/ID`).
    pub fn shim_pids(&self) -> Vec<u32> {
        self.shims().into_iter().map(|(pid, _)| pid).collect()
    }

    /// This world's live shims: pid and command line (NULs as spaces).
    pub fn shims(&self) -> Vec<(u32, String)> {
        let home = self.home();
        let home = home.to_string_lossy();
        let mut pids = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return pids;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("__shim") && cmdline.contains(home.as_ref()) && alive(pid) {
                pids.push((pid, cmdline));
            }
        }
        pids
    }

    /// `Ok` when runc, HOME/instances, the overlay mounts and the shims hold exactly
    /// the instances `ids`: one container, dir, overlay root and shim each.
    pub fn exactly(&self, ids: &BTreeSet<String>) -> Result<(), String> {
        let instances_dir = self.home().join("instances");
        let runc = self.runc_ids();
        let dirs: BTreeSet<String> = fs::read_dir(&instances_dir)
            .map_err(|e| format!("{}: {e}", instances_dir.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        let overlays = overlay_mounts_under(&instances_dir);
        let overlay_ids: Vec<String> = overlays
            .iter()
            .filter_map(|p| p.strip_prefix(&instances_dir).ok())
            .filter_map(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        let shims = self.shims();
        let mut shim_ids: Vec<String> = shims
            .iter()
            .filter_map(|(_, cmdline)| {
                let dir = cmdline.split(' ').rfind(|a| !a.is_empty())?;
                Some(Path::new(dir).file_name()?.to_string_lossy().to_string())
            })
            .collect();
        shim_ids.sort();
        let mut sorted_overlays = overlay_ids.clone();
        sorted_overlays.sort();
        let want: Vec<String> = ids.iter().cloned().collect();
        if runc == *ids && dirs == *ids && sorted_overlays == want && shim_ids == want {
            Ok(())
        } else {
            Err(format!(
                "instances {ids:?}\nrunc list {runc:?}\ndirs {dirs:?}\noverlay mounts {overlays:#?}\nshims {shims:#?}"
            ))
        }
    }

    pub fn kill_shims(&self) {
        for pid in self.shim_pids() {
            signal(pid, Signal::KILL);
        }
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
        for _ in 0..3 {
            let mut points = mounts_under(dir);
            if points.is_empty() {
                return;
            }
            points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for p in points {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&p)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_daemon();
        self.kill_shims();
        self.delete_containers();
        self.kill_shims();
        self.unmount_under(self.path());
        // The TempDir removes the directory itself.
    }
}

fn stat_state_is_zombie(stat: &str) -> bool {
    // `pid (comm) S …`: the state follows the last `)`.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|s| s == 'Z' || s == 'X')
}

pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !stat_state_is_zombie(&s))
}

pub fn busybox_path() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox not found: apt-get install -y busybox-static");
}

/// The mount points under `dir` (itself included), from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The overlay mount points under `dir`, from /proc/self/mountinfo.
pub fn overlay_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| {
            l.split_once(" - ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .is_some_and(|fstype| fstype == "overlay")
        })
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// A pseudo-random duration in `[low, high]` (from the clock's nanoseconds).
pub fn random_between(low: Duration, high: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let span = u64::try_from((high - low).as_millis()).unwrap();
    low + Duration::from_millis(u64::from(nanos) % (span + 1))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(v) if bytes[i] == b'\\' => {
                out.push(v);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// `GET path` over HTTP/1.0: the status code and body.
pub fn http_get(address: &str, path: &str) -> Result<(u16, String), String> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|e| format!("bad address {address:?}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {address}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")
        .map_err(|e| format!("write {address}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {address}: {e}"))?;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header from {address}: {raw:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {address}: {head:?}"))?;
    Ok((code, body.to_string()))
}

/// `GET path` must answer 200 with `body`.
pub fn expect_body(address: &str, path: &str, body: &str) -> Result<(), String> {
    match http_get(address, path)? {
        (200, b) if b == body => Ok(()),
        (code, b) => Err(format!(
            "GET {path} on {address}: {code} {b:?}, expected 200 {body:?}"
        )),
    }
}

/// The set of ids of `instances`.
pub fn ids(instances: &[Instance]) -> BTreeSet<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}
