//! Shared setup of the traffic tests: a world (context, KILN_HOME, port range, route
//! port) with its daemon and the proxy the daemon starts, the kiln binary, the spec
//! builder, polling with deadlines, and cleanup that leaves no daemon, proxy, shim,
//! container, mount or directory behind, even when a test fails.

use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, Signal};
use serde::Deserialize;

use super::load;

/// The image every test runs: busybox httpd on `127.0.0.1:$PORT` serving a copy of
/// `/www` from a tmpfs, with `$GREETING` as `/` (index.html) and the CGI scripts
/// `cgi-bin/flaky` and `cgi-bin/slow`.
pub const IMAGE: &str = r#"[image.web]
from = "scratch"
cmd = ["/bin/sh", "-c", "mkdir -p /tmp/www && cp -r /www/* /tmp/www/ && chmod 755 /tmp/www/cgi-bin/* && echo $GREETING > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /tmp/www"]

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

/// `cgi-bin/flaky`: 500 with probability `$FAIL_PERCENT` %, else 200 `ok $GREETING`.
const FLAKY: &str = r#"#!/bin/sh
if [ $((RANDOM % 100)) -lt ${FAIL_PERCENT:-0} ]; then
  printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nfail %s\n' "$GREETING"
else
  printf 'Content-Type: text/plain\r\n\r\nok %s\n' "$GREETING"
fi
"#;

/// `cgi-bin/slow`: answers `ok` after `$SLOW` seconds (default 3).
const SLOW: &str = r#"#!/bin/sh
sleep ${SLOW:-3}
printf 'Content-Type: text/plain\r\n\r\nok\n'
"#;

/// How long a first apply of a few replicas may take to converge.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The service `web` and its route, as kiln.toml; see [`Spec::toml`].
#[derive(Debug, Clone)]
pub struct Spec {
    pub route_port: u16,
    pub replicas: u32,
    pub greeting: String,
    pub fail_percent: u32,
    pub slow: Option<u32>,
    pub grace: String,
    /// The `[service.web.strategy]` tables (see [`canary`], [`blue_green`]); none: the
    /// default (replace all at once).
    pub strategy: Option<String>,
}

impl Spec {
    pub fn new(route_port: u16) -> Spec {
        Spec {
            route_port,
            replicas: 3,
            greeting: "v1".into(),
            fail_percent: 0,
            slow: None,
            grace: "5s".into(),
            strategy: None,
        }
    }

    pub fn greeting(mut self, greeting: &str) -> Spec {
        self.greeting = greeting.into();
        self
    }

    pub fn fail_percent(mut self, percent: u32) -> Spec {
        self.fail_percent = percent;
        self
    }

    pub fn slow(mut self, seconds: u32) -> Spec {
        self.slow = Some(seconds);
        self
    }

    pub fn grace(mut self, grace: &str) -> Spec {
        self.grace = grace.into();
        self
    }

    pub fn strategy(mut self, strategy: String) -> Spec {
        self.strategy = Some(strategy);
        self
    }

    pub fn toml(&self) -> String {
        let slow = self
            .slow
            .map(|s| format!(", SLOW = \"{s}\""))
            .unwrap_or_default();
        format!(
            r#"{IMAGE}
[service.web]
image = "web"
replicas = {replicas}
env = {{ GREETING = "{greeting}", FAIL_PERCENT = "{fail}"{slow} }}
stop = {{ grace = "{grace}" }}

[service.web.readiness]
http = "/healthz"
interval = "200ms"

{strategy}
[route.web]
listen = "127.0.0.1:{port}"
service = "web"
"#,
            replicas = self.replicas,
            greeting = self.greeting,
            fail = self.fail_percent,
            grace = self.grace,
            strategy = self.strategy.as_deref().unwrap_or(""),
            port = self.route_port,
        )
    }
}

/// A canary strategy with `steps`, `pause` and the analysis thresholds.
pub fn canary(steps: &[u32], pause: &str, max_error_rate: f64, min_requests: u32) -> String {
    let steps: Vec<String> = steps.iter().map(u32::to_string).collect();
    format!(
        r#"[service.web.strategy]
kind = "canary"
steps = [{}]
pause = "{pause}"
progress_deadline = "60s"

[service.web.strategy.analysis]
max_error_rate = {max_error_rate}
min_requests = {min_requests}
"#,
        steps.join(", ")
    )
}

/// A blue/green strategy with `pause` and `rollback_window`.
pub fn blue_green(pause: &str, rollback_window: &str) -> String {
    format!(
        r#"[service.web.strategy]
kind = "blue-green"
pause = "{pause}"
rollback_window = "{rollback_window}"
progress_deadline = "60s"

[service.web.strategy.analysis]
max_error_rate = 0.01
min_requests = 50
"#
    )
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
    pub version: String,
}

/// One line of `kiln events --output json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub ts: String,
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

/// `kiln rollout status web --output json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Rollout {
    pub kind: String,
    pub phase: String,
    pub step: usize,
    pub weight: u32,
    pub stable: String,
    pub canary: String,
    pub reason: String,
    /// The last analysis verdict, shown in failure messages.
    #[allow(dead_code)]
    pub analysis: Option<String>,
    pub done: bool,
}

/// A running `kiln daemon`.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

/// A test's private world: a context dir with the busybox image, a KILN_HOME, a port
/// range for instances, a route port, and the daemon (and its proxy) serving it.
/// Dropping it stops and removes all of it.
#[derive(Debug)]
pub struct World {
    dir: tempfile::TempDir,
    pub ports: (u16, u16),
    pub route_port: u16,
    daemon: Option<Daemon>,
    daemon_env: Vec<(String, String)>,
    starts: u32,
    /// Held for the test's life (released after cleanup): these tests put real load on
    /// a 2-core machine and measure it, so they run one at a time.
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// See `World::_serial`.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl World {
    /// A world whose daemon hands out ports `25000 + 100 * slot` to `+ 49`; its route
    /// listens on `+ 90`. Each test uses its own slot.
    pub fn new(slot: u16) -> World {
        require(&["runc", "nsenter", "busybox", "umount"]);
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let first = 25000 + 100 * slot;
        World {
            dir: tempfile::Builder::new()
                .prefix("kiln-traffic-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
            ports: (first, first + 49),
            route_port: first + 90,
            daemon: None,
            daemon_env: Vec::new(),
            starts: 0,
            _serial: serial,
        }
    }

    /// A world with `spec` written and built, a daemon running with `daemon_env`,
    /// `spec` applied, converged, and its route answering `/` with its greeting.
    pub fn deployed(slot: u16, daemon_env: &[(&str, &str)], spec: impl Fn(u16) -> Spec) -> World {
        let mut w = World::new(slot);
        w.daemon_env = daemon_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let spec = spec(w.route_port);
        w.write_spec(&spec);
        w.build();
        w.start_daemon();
        let plan = w.apply();
        assert!(plan.contains("create:"), "the first apply creates: {plan}");
        w.wait_serving(&spec.greeting, CONVERGE);
        w
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

    fn proxy_log_path(&self) -> PathBuf {
        self.home().join("logs/proxy.log")
    }

    /// The route's address, `127.0.0.1:PORT`.
    pub fn route(&self) -> String {
        format!("127.0.0.1:{}", self.route_port)
    }

    /// Writes the context: kiln.toml, busybox and `www/` with the CGI scripts.
    pub fn write_spec(&self, spec: &Spec) {
        let ctx = self.ctx();
        fs::create_dir_all(ctx.join("www/cgi-bin")).unwrap();
        if !ctx.join("busybox").exists() {
            fs::copy(busybox_path(), ctx.join("busybox")).unwrap();
        }
        fs::write(ctx.join("www/healthz"), "ok\n").unwrap();
        fs::write(ctx.join("www/cgi-bin/flaky"), FLAKY).unwrap();
        fs::write(ctx.join("www/cgi-bin/slow"), SLOW).unwrap();
        fs::write(self.spec_path(), spec.toml()).unwrap();
    }

    /// `kiln build` of the image of kiln.toml.
    pub fn build(&self) {
        let spec = self.spec_path();
        self.ok(&["build", "-f", spec.to_str().unwrap(), "--tag", "test"]);
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

    /// Panics with `message`, the end of the daemon's log and of the proxy's log.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\n\n--- daemon log ({}, last 150 lines) ---\n{}\n--- proxy log ({}, last 60 lines) ---\n{}\n--- end of logs ---",
            self.log_path().display(),
            tail(&self.log_path(), 150),
            self.proxy_log_path().display(),
            tail(&self.proxy_log_path(), 60),
        );
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

    // --- the daemon and the proxy ---

    /// Starts `kiln daemon` in the foreground as a child with the world's extra
    /// environment, its output appended to the world's log, and waits until `kiln
    /// status` answers.
    pub fn start_daemon(&mut self) {
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
                &format!("{}-{}", self.ports.0, self.ports.1),
                "--host",
                "127.0.0.1",
            ])
            .env_remove("KILN_HOME")
            .env("RUST_LOG", "info")
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

    /// Pids of this world's `kiln --home HOME proxy` processes.
    pub fn proxy_pids(&self) -> Vec<u32> {
        let home = self.home().to_string_lossy().to_string();
        processes()
            .into_iter()
            .filter(|(_, args)| args.iter().any(|a| a == "proxy") && args.contains(&home))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Pids of this world's shims (`kiln __shim HOME/instances/ID`).
    pub fn shim_pids(&self) -> Vec<u32> {
        let home = self.home().to_string_lossy().to_string();
        processes()
            .into_iter()
            .filter(|(_, args)| {
                args.iter().any(|a| a == "__shim") && args.iter().any(|a| a.starts_with(&home))
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    // --- the CLI's views ---

    /// `kiln apply -f kiln.toml --timeout 90s`, which must succeed: its output.
    pub fn apply(&self) -> String {
        let spec = self.spec_path();
        self.ok(&["apply", "-f", spec.to_str().unwrap(), "--timeout", "90s"])
    }

    /// `kiln apply -f kiln.toml --timeout 90s`, whatever its outcome.
    pub fn apply_output(&self) -> Output {
        let spec = self.spec_path();
        self.kiln(&["apply", "-f", spec.to_str().unwrap(), "--timeout", "90s"])
    }

    /// `kiln apply --detach`.
    pub fn apply_detach(&self) -> String {
        let spec = self.spec_path();
        self.ok(&["apply", "-f", spec.to_str().unwrap(), "--detach"])
    }

    pub fn ps(&self) -> Vec<Instance> {
        let out = self.ok(&["ps", "--output", "json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| self.fail(&format!("kiln ps --output json: {e}:\n{out}")))
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

    /// `kiln rollout status web --output json`, or why not.
    pub fn rollout(&self) -> Result<Rollout, String> {
        let out = self.kiln(&["rollout", "status", "web", "--output", "json"]);
        if !out.status.success() {
            return Err(format!("kiln rollout status failed: {}", streams(&out)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&text).map_err(|e| format!("rollout status json: {e}: {text}"))
    }

    /// Waits until the rollout satisfies `pred`; returns it.
    pub fn wait_rollout(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Rollout) -> bool,
    ) -> Rollout {
        self.wait_for(timeout, what, || {
            let r = self.rollout()?;
            if pred(&r) {
                Ok(r)
            } else {
                Err(format!("{r:#?}"))
            }
        })
    }

    /// Waits until `GET /` on the route answers 200 with `greeting`.
    pub fn wait_serving(&self, greeting: &str, timeout: Duration) {
        let route = self.route();
        self.wait_for(
            timeout,
            &format!("the route {route} to serve {greeting}"),
            || match load::get(&route, "/", None, Duration::from_secs(2)) {
                Ok((200, body)) if load::version_of(&body) == greeting => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }

    /// `GET /` on the route with an optional `X-Kiln-Canary` value: the version that
    /// answered (fails on anything but 200).
    pub fn version_via_route(&self, canary: Option<&str>) -> String {
        let header = canary.map(|v| ("X-Kiln-Canary", v));
        match load::get(&self.route(), "/", header, Duration::from_secs(2)) {
            Ok((200, body)) => load::version_of(&body),
            other => self.fail(&format!(
                "GET / with X-Kiln-Canary {canary:?}: {other:?}, expected 200"
            )),
        }
    }

    // --- cleanup ---

    /// The container ids `runc list` shows under the instances' root.
    fn runc_ids(&self) -> Vec<String> {
        let out = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let Ok(out) = out else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    fn kill_shims(&self) {
        for pid in self.shim_pids() {
            signal(pid, Signal::KILL);
        }
    }

    fn kill_proxies(&self) {
        for pid in self.proxy_pids() {
            signal(pid, Signal::KILL);
        }
    }

    fn delete_containers(&self) {
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
    fn unmount_under(&self, dir: &Path) {
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
        self.kill_proxies();
        self.kill_shims();
        self.delete_containers();
        self.kill_shims();
        self.kill_proxies();
        self.unmount_under(self.path());
        // The TempDir removes the directory itself.
    }
}

/// Polls the proxy's live route table (its control socket) while the test runs, and
/// checks the invariant the control plane owes it: every backend of the live table
/// accepts connections. A backend that refuses while the same table version is still
/// live before and after is a violation: an instance stopped while still routed.
#[derive(Debug)]
pub struct TableWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<TableLog>,
}

/// What a [`TableWatch`] saw.
#[derive(Debug, Default)]
pub struct TableLog {
    /// (wall ms, version, instance ids of the route's backends) of each poll.
    pub polls: Vec<(i64, u64, Vec<String>)>,
    /// Instance, address, error and table version of each refused live backend.
    pub violations: Vec<String>,
    pub errors: Vec<String>,
}

impl TableLog {
    /// The wall time of the last poll that showed `instance` in the live table.
    pub fn last_seen(&self, instance: &str) -> Option<i64> {
        self.polls
            .iter()
            .rev()
            .find(|(_, _, ids)| ids.iter().any(|i| i == instance))
            .map(|(t, _, _)| *t)
    }
}

impl TableWatch {
    pub fn start(home: PathBuf) -> TableWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut log = TableLog::default();
            while !flag.load(Ordering::Relaxed) {
                let at = now_ms();
                match kiln_proxy::client::get_table(&home) {
                    Ok(Some(table)) => {
                        let backends: Vec<(String, String)> = table
                            .routes
                            .iter()
                            .flat_map(|r| r.backends.iter())
                            .map(|b| (b.instance.clone(), b.address.clone()))
                            .collect();
                        for (instance, address) in &backends {
                            let Ok(addr) = address.parse::<SocketAddr>() else {
                                continue;
                            };
                            if let Err(e) =
                                TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                            {
                                let still = kiln_proxy::client::get_table(&home)
                                    .ok()
                                    .flatten()
                                    .is_some_and(|t| t.version == table.version);
                                if still {
                                    log.violations.push(format!(
                                        "at {at}: instance {instance} at {address} is in live table {} but refuses: {e}",
                                        table.version
                                    ));
                                }
                            }
                        }
                        log.polls.push((
                            at,
                            table.version,
                            backends.into_iter().map(|(i, _)| i).collect(),
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => log.errors.push(format!("at {at}: {e}")),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            log
        });
        TableWatch { stop, handle }
    }

    pub fn stop(self) -> TableLog {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Both output streams of a command, for messages.
pub fn streams(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last `n` lines of a file ("" if unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`) in milliseconds since the epoch.
pub fn parse_rfc3339_ms(ts: &str) -> Option<i64> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let time = time.trim_end_matches('Z').trim_end_matches("+00:00");
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let (h, min, s) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    let frac: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms = num(&frac)?;
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + ms)
}

/// Every process's pid and arguments.
fn processes() -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
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
        if !alive(pid) {
            continue;
        }
        let args = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        out.push((pid, args));
    }
    out
}

fn stat_state_is_zombie(stat: &str) -> bool {
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
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
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

/// The traffic weights (`at W %`) of the `rollout.step` events of `events`, in order.
pub fn step_weights(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter(|e| e.kind == "rollout.step")
        .filter_map(|e| {
            let (_, rest) = e.message.split_once(" at ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Events, one per line, for messages.
pub fn render_events(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{:>4} {} {:<22} {:<10} {}",
                e.seq,
                e.ts,
                e.kind,
                e.instance.as_deref().unwrap_or("-"),
                e.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl World {
    /// Fails unless `report` has no failed request and at least `min_rps` requests/s.
    pub fn expect_clean_load(&self, report: &load::Report, min_rps: f64) {
        self.check(report.failed().is_empty(), || {
            format!("requests failed under load\n{}", report.summary())
        });
        self.check(report.rps() >= min_rps, || {
            format!(
                "the load reached only {:.0} req/s, want at least {min_rps}\n{}",
                report.rps(),
                report.summary()
            )
        });
    }
}
