//! Setup of the instance tests: their image and spec, and a world (context, KILN_HOME,
//! port range) with its daemon, built on the shared [`Base`], which brings the kiln
//! binary, polling with deadlines, and cleanup that leaves no daemon, shim, container,
//! mount or directory behind, even when a test fails.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::host::{alive, busybox_path, mounts_under, overlay_mounts_under, require, signal};
pub use crate::world::Instance;
use crate::world::{Base, LogTail};

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

/// A test's private world: a context dir with the busybox image, a KILN_HOME, a port
/// range, and the daemon serving it. Dropping it stops and removes all of it.
#[derive(Debug)]
pub struct World {
    base: Base,
}

impl Deref for World {
    type Target = Base;

    fn deref(&self) -> &Base {
        &self.base
    }
}

impl DerefMut for World {
    fn deref_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

impl World {
    /// A world whose daemon hands out ports `21000 + 100 * slot` to `+ 99`; each test
    /// uses its own slot so tests can run in parallel.
    pub fn new(slot: u16) -> World {
        require(&["runc", "nsenter", "busybox", "umount"]);
        let first = 21000 + 100 * slot;
        let daemon_log = LogTail {
            name: "daemon",
            path: "daemon.log",
            lines: 200,
        };
        World {
            base: Base::new(
                "kiln-instances-",
                (first, first + 99),
                "debug",
                vec![daemon_log],
            ),
        }
    }

    /// [`Base::start_daemon_with_ports`], on `World` itself so that the ports may be read
    /// from the world in the call's arguments.
    pub fn start_daemon_with_ports(&mut self, ports: (u16, u16)) {
        self.base.start_daemon_with_ports(ports);
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
