//! Setup of the traffic tests: the image and spec builder, a world (context, KILN_HOME,
//! port range, route port) built on the shared [`Base`], which brings the daemon and the
//! proxy the daemon starts, the kiln binary, polling with deadlines, and cleanup that
//! leaves no daemon, proxy, shim, container, mount or directory behind, even when a test
//! fails; and a watch of the proxy's live route table.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;

use super::load;
pub use crate::host::{busybox_path, now_ms, require, signal, streams};
pub use crate::world::Event;
use crate::world::{Base, LogTail};

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
    /// The route's `tls` table: certificate and key paths, relative to kiln.toml.
    pub tls: Option<(String, String)>,
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
            tls: None,
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

    pub fn tls(mut self, cert: &str, key: &str) -> Spec {
        self.tls = Some((cert.into(), key.into()));
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
{tls}"#,
            replicas = self.replicas,
            greeting = self.greeting,
            fail = self.fail_percent,
            grace = self.grace,
            strategy = self.strategy.as_deref().unwrap_or(""),
            port = self.route_port,
            tls = self
                .tls
                .as_ref()
                .map(|(cert, key)| format!("tls = {{ cert = \"{cert}\", key = \"{key}\" }}\n"))
                .unwrap_or_default(),
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
    pub is_undo: bool,
}

/// A test's private world: a context dir with the busybox image, a KILN_HOME, a port
/// range for instances, a route port, and the daemon (and its proxy) serving it.
/// Dropping it stops and removes all of it.
#[derive(Debug)]
pub struct World {
    /// Dropped first: stops and removes everything of the world.
    base: Base,
    pub route_port: u16,
    /// Held for the test's life (released after cleanup): these tests put real load on
    /// a 2-core machine and measure it, so they run one at a time.
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// See `World::_serial`.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    /// A world whose daemon hands out ports `25000 + 100 * slot` to `+ 49`; its route
    /// listens on `+ 90`. Each test uses its own slot.
    pub fn new(slot: u16) -> World {
        require(&["runc", "nsenter", "busybox", "umount"]);
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let first = 25000 + 100 * slot;
        let tails = vec![
            LogTail {
                name: "daemon",
                path: "daemon.log",
                lines: 150,
            },
            LogTail {
                name: "proxy",
                path: "home/logs/proxy.log",
                lines: 60,
            },
        ];
        World {
            base: Base::new("kiln-traffic-", (first, first + 49), "info", tails),
            route_port: first + 90,
            _serial: serial,
        }
    }

    /// A world with `spec` written and built, a daemon running with `daemon_env`,
    /// `spec` applied, converged, and its route answering `/` with its greeting.
    pub fn deployed(slot: u16, daemon_env: &[(&str, &str)], spec: impl Fn(u16) -> Spec) -> World {
        let mut w = World::new(slot);
        w.daemon_env.extend(
            daemon_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let spec = spec(w.route_port);
        w.write_spec(&spec);
        w.build();
        w.start_daemon();
        let plan = w.apply();
        assert!(plan.contains("create:"), "the first apply creates: {plan}");
        w.wait_serving(&spec.greeting, CONVERGE);
        w
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
    /// Every answer from `from` to the end of the load came from `version`, and there
    /// were some.
    pub fn expect_only_after(
        &self,
        report: &load::Report,
        from: std::time::Instant,
        version: &str,
    ) {
        let after = report.between(from, report.stopped);
        self.check(
            !after.is_empty() && after.iter().all(|s| s.version.as_deref() == Some(version)),
            || {
                format!(
                    "after the rollout, every answer should be {version}: {:?}\n{}",
                    load::Report::versions(&after),
                    report.summary()
                )
            },
        );
    }

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
