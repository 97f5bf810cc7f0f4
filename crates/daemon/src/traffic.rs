//! Traffic: the route table the proxy should serve, pushed and confirmed.
//!
//! Each reconcile pass computes the table from the routes, the ready instances and the
//! rollouts' canary weights. When it differs from the last table the proxy confirmed,
//! it is pushed with the next version; the proxy answers only once the table is live.
//! Stopping an instance waits for a confirmed table without it, then for its in-flight
//! requests (`drain`): traffic always leaves an instance before the instance goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_proxy::{Backend, Group, Route, RouteTable, Tls};
use kiln_spec::RouteSpec;
use kiln_state::{InstanceRow, InstanceState};

use crate::clock::now_ms;
use crate::daemon::Daemon;

/// How long a push may take before it is retried.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for the proxy to confirm a table without the instance.
const UNROUTE_LIMIT: Duration = Duration::from_secs(60);
/// How often a stop looks at the confirmed table and the in-flight counts.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// A proxy that does not answer is started again no more often than this.
const RESPAWN_EVERY_MS: i64 = 2_000;
/// How often the proxy is asked whether it serves the confirmed table.
const CHECK_EVERY_MS: i64 = 1_000;
/// Unconfirmed tables remembered as possibly live (the first and the newest are kept).
const MAYBE_LIVE_KEPT: usize = 16;

/// What each service's rollout wants from traffic: the canary's definition and weight.
pub(crate) type Weights = HashMap<String, (String, u32)>;

/// The routes of the desired state.
pub(crate) fn routes(d: &Daemon) -> Vec<RouteSpec> {
    match d.db().routes() {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|(name, json)| match serde_json::from_str(&json) {
                Ok(route) => Some(route),
                Err(e) => {
                    tracing::error!(route = %name, error = %e, "unreadable route in the database");
                    None
                }
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read routes");
            Vec::new()
        }
    }
}

/// The label of an instance's version in the table and the proxy's metrics: its image
/// version and the start of its definition hash (two definitions of one image differ).
pub(crate) fn version_label(version: &str, def_hash: &str) -> String {
    let hash = def_hash.trim_start_matches("sha256:");
    format!("{version}-{}", &hash[..hash.len().min(8)])
}

/// The table the proxy should serve now (version 0: assigned when pushed).
pub(crate) fn desired_table(
    d: &Daemon,
    routes: &[RouteSpec],
    rows: &[InstanceRow],
    weights: &Weights,
) -> Vec<Route> {
    let live = d.live();
    routes
        .iter()
        .map(|route| {
            let (canary, weight) = weights
                .get(&route.service)
                .map_or((None, 0), |(hash, w)| (Some(hash.as_str()), *w));
            let backends = rows
                .iter()
                .filter(|r| r.service == route.service && r.state == InstanceState::Running)
                .filter(|r| {
                    live.health
                        .get(&r.id)
                        .map_or(r.ready, |h| h.ready && h.failed.is_none())
                })
                .map(|r| Backend {
                    address: r.address.clone(),
                    instance: r.id.clone(),
                    version: version_label(&r.version, &r.def_hash),
                    group: if Some(r.def_hash.as_str()) == canary {
                        Group::Canary
                    } else {
                        Group::Stable
                    },
                })
                .collect();
            Route {
                name: route.name.clone(),
                listen: route.listen.to_string(),
                host: route.host.clone(),
                path_prefix: route.path_prefix.clone(),
                service: route.service.clone(),
                timeout_ms: u64::try_from(route.timeout.as_millis()).unwrap_or(u64::MAX),
                tls: route.tls.as_ref().map(|t| Tls {
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                }),
                backends,
                canary_weight: weight,
            }
        })
        .collect()
}

/// Makes sure the proxy runs (when there are routes) and serves `wanted`.
pub(crate) fn sync(d: &Arc<Daemon>, wanted: Vec<Route>) {
    let check = {
        let mut live = d.live();
        live.last_wanted = wanted.clone();
        if live.pushing.is_some() {
            return;
        }
        let same = match &live.confirmed {
            Some(table) => table.routes == wanted,
            None => wanted.is_empty() && !live.proxy_known,
        };
        let now = now_ms();
        // Even when nothing changed, the proxy is asked now and then whether it still
        // serves what it confirmed: a proxy that died or restarted empty is found.
        let check =
            same && live.confirmed.is_some() && now - live.proxy_checked_ms >= CHECK_EVERY_MS;
        if same && !check {
            return;
        }
        live.proxy_checked_ms = now;
        live.pushing = Some(match (&live.confirmed, check) {
            (Some(table), true) => Arc::new(table.routes.clone()),
            _ => Arc::new(wanted.clone()),
        });
        if !same && live.maybe_live.last().is_none_or(|last| **last != wanted) {
            // Until one push succeeds; a proxy refuses versions older than its own, so
            // after a success none of these can become live any more.
            live.maybe_live.push(Arc::new(wanted.clone()));
            if live.maybe_live.len() > MAYBE_LIVE_KEPT {
                live.maybe_live.remove(1);
            }
        }
        check
    };
    let d = d.clone();
    tokio::task::spawn_blocking(move || {
        if check {
            let verdict = verify(&d);
            let mut live = d.live();
            live.pushing = None;
            if let Err(why) = verdict {
                // Pushed again on the next pass.
                live.confirmed = None;
                drop(live);
                tracing::warn!(reason = %why, "the proxy does not serve the confirmed table");
                d.wake.notify_one();
            }
            return;
        }
        let result = push(&d, wanted);
        let mut live = d.live();
        live.pushing = None;
        match result {
            Ok(table) => {
                live.confirmed = Some(Arc::new(table));
                live.maybe_live.clear();
                live.push_failures = 0;
                drop(live);
                d.wake.notify_one();
            }
            Err(e) => {
                live.push_failures += 1;
                let first = live.push_failures == 1;
                drop(live);
                if first {
                    d.event("proxy.push_failed", None, None, &e);
                } else {
                    tracing::warn!(error = %e, "route table push failed again");
                }
            }
        }
    });
}

/// Whether the proxy answers and serves the confirmed table; starts it if it is gone.
fn verify(d: &Daemon) -> Result<(), String> {
    let confirmed = d.live().confirmed.clone();
    match kiln_proxy::client::get_table(&d.config.home) {
        Ok(Some(table)) if confirmed.as_deref() == Some(&table) => Ok(()),
        Ok(other) => {
            if let Some(table) = other {
                d.live().maybe_live.push(Arc::new(table.routes));
            }
            Err("it serves another table".to_string())
        }
        Err(e) => {
            ensure_running(d);
            Err(format!("it does not answer ({e}): starting it"))
        }
    }
}

/// Pushes `routes` as the next table version; returns the confirmed table.
fn push(d: &Daemon, routes: Vec<Route>) -> Result<RouteTable, String> {
    let home = &d.config.home;
    let current = match kiln_proxy::client::get_table(home) {
        Ok(table) => table,
        // No routes and no proxy that ever served any: nothing to confirm.
        Err(_)
            if routes.is_empty()
                && matches!(kiln_proxy::client::persisted_table(home), Ok(None)) =>
        {
            return Ok(RouteTable { version: 0, routes });
        }
        Err(_) => {
            ensure_running(d);
            return Err("the proxy is not answering yet (starting it)".to_string());
        }
    };
    d.live().proxy_known = true;
    let version = current.as_ref().map_or(0, |t| t.version) + 1;
    let table = RouteTable { version, routes };
    let confirmed = kiln_proxy::client::put_table(home, &table, PUSH_TIMEOUT)
        .map_err(|e| format!("push route table {version}: {e}"))?;
    if confirmed != version {
        return Err(format!(
            "the proxy confirmed version {confirmed}, not {version}"
        ));
    }
    let summary: Vec<String> = table
        .routes
        .iter()
        .map(|r| {
            let canary = r
                .backends
                .iter()
                .filter(|b| b.group == Group::Canary)
                .count();
            format!(
                "{} → {} ({} backends{})",
                r.listen,
                r.service,
                r.backends.len(),
                if canary > 0 {
                    format!(", {canary} canary at {} %", r.canary_weight)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    d.event(
        "proxy.table",
        None,
        None,
        &format!("table {version} confirmed: {}", summary.join("; ")),
    );
    Ok(table)
}

/// Starts `kiln proxy` unless it was started very recently. It runs in its own process
/// group and session-independent of the daemon, so it keeps serving when the daemon
/// stops or dies.
fn ensure_running(d: &Daemon) {
    let now = now_ms();
    {
        let mut live = d.live();
        if now - live.proxy_spawned_ms < RESPAWN_EVERY_MS {
            return;
        }
        live.proxy_spawned_ms = now;
    }
    let log_dir = d.config.home.join("logs");
    let _ = std::fs::create_dir_all(&log_dir);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join("proxy.log"));
    let mut command = std::process::Command::new(&d.config.shim_exe);
    command
        .arg("--home")
        .arg(&d.config.home)
        .arg("proxy")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if let Ok(log) = log {
        command.stderr(log);
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    match command.spawn() {
        Ok(mut child) => {
            let pid = child.id();
            d.event(
                "proxy.started",
                None,
                None,
                &format!("started kiln proxy, pid {pid}"),
            );
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(e) => d.event(
            "proxy.failed",
            None,
            None,
            &format!("cannot start kiln proxy: {e}"),
        ),
    }
}

/// Waits until traffic has left `row`: a confirmed table without its address, then no
/// request in flight to it, for at most `grace` once unrouted. An instance whose
/// process is gone, or that was never routed, needs no wait.
pub(crate) async fn drain(d: &Arc<Daemon>, row: &InstanceRow, grace: Duration) {
    let has = |routes: &[Route]| {
        routes
            .iter()
            .any(|r| r.backends.iter().any(|b| b.address == row.address))
    };
    let routed = |d: &Daemon| {
        let live = d.live();
        live.confirmed.as_ref().is_some_and(|t| has(&t.routes))
            || live.maybe_live.iter().any(|t| has(t))
    };
    if !routed(d) {
        return;
    }
    let started = Instant::now();
    d.wake.notify_one();
    while routed(d) {
        if started.elapsed() > UNROUTE_LIMIT {
            d.event(
                "instance.unroute_timeout",
                Some(&row.service),
                Some(&row.id),
                "the proxy confirmed no table without this instance in 60 s: draining it anyway",
            );
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let unrouted = Instant::now();
    loop {
        let home = d.config.home.clone();
        let counts = tokio::task::spawn_blocking(move || kiln_proxy::client::inflight(&home))
            .await
            .ok()
            .and_then(Result::ok);
        let busy = counts
            .as_ref()
            .and_then(|c| c.get(&row.address))
            .copied()
            .unwrap_or(0);
        if busy == 0 {
            return;
        }
        if unrouted.elapsed() >= grace {
            d.event(
                "instance.drain_timeout",
                Some(&row.service),
                Some(&row.id),
                &format!("{busy} request(s) still in flight after the stop grace"),
            );
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}
