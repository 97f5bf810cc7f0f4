//! Health checks of one instance: readiness (may it get traffic, is a change making
//! progress) and liveness (must it be replaced). Each check flips only after its
//! consecutive success or failure threshold.
//!
//! Readiness is polled every 50 ms until the instance is first ready, so a fast
//! instance is ready within a few milliseconds of listening; then at its interval.
//! Liveness starts once the instance has been ready once (or at start without a
//! readiness check), so a slow start is not mistaken for a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_deploy::health::{ProbeState, Thresholds};
use kiln_spec::{Check, Probe};
use kiln_state::InstanceRow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::daemon::{Daemon, new_event};
use crate::definition::Definition;
use crate::launch::human_ms;
use crate::ports;

/// How often readiness is polled before the instance is first ready.
const FIRST_READY_POLL: Duration = Duration::from_millis(50);

/// Starts the health checker of `row`; it runs until aborted (when the instance stops)
/// or until liveness fails.
pub(crate) fn spawn(
    d: Arc<Daemon>,
    row: &InstanceRow,
    definition: Arc<Definition>,
    initially_ready: bool,
) -> tokio::task::JoinHandle<()> {
    let target = Target {
        id: row.id.clone(),
        service: row.service.clone(),
        created_ms: row.created_ms,
        address: ports::address(ports::bind_host(&d.config.host), row.port),
        started: Instant::now(),
    };
    tokio::spawn(async move {
        let (ready_tx, ready_rx) = watch::channel(initially_ready);
        let readiness = readiness(
            &d,
            &target,
            definition.readiness.as_ref(),
            initially_ready,
            ready_tx,
        );
        let liveness = liveness(&d, &target, definition.liveness.as_ref(), ready_rx);
        tokio::join!(readiness, liveness);
    })
}

struct Target {
    id: String,
    service: String,
    created_ms: i64,
    address: String,
    started: Instant,
}

async fn readiness(
    d: &Arc<Daemon>,
    target: &Target,
    probe: Option<&Probe>,
    initially_ready: bool,
    ready_tx: watch::Sender<bool>,
) {
    let Some(probe) = probe else {
        if !initially_ready {
            set_ready(d, target, true, "running (no readiness check)");
        }
        let _ = ready_tx.send(true);
        return;
    };
    let thresholds = Thresholds {
        success: probe.success,
        failure: probe.failure,
    };
    let mut state = ProbeState::new(initially_ready);
    let mut ever_ready = initially_ready;
    loop {
        let outcome = check(d, target, probe).await;
        if let Some(now_ready) = state.observe(outcome.is_ok(), &thresholds) {
            let why = match (&outcome, now_ready) {
                (_, true) => format!("ready after {}", human_ms(elapsed_ms(target))),
                (Err(e), false) => format!("not ready: {e}"),
                (Ok(()), false) => "not ready".to_string(),
            };
            set_ready(d, target, now_ready, &why);
            ever_ready |= now_ready;
            let _ = ready_tx.send(now_ready);
        }
        let pause = if ever_ready {
            probe.interval
        } else {
            probe.interval.min(FIRST_READY_POLL)
        };
        tokio::time::sleep(pause).await;
    }
}

async fn liveness(
    d: &Arc<Daemon>,
    target: &Target,
    probe: Option<&Probe>,
    mut ready_rx: watch::Receiver<bool>,
) {
    let Some(probe) = probe else { return };
    if ready_rx.wait_for(|ready| *ready).await.is_err() {
        return;
    }
    let thresholds = Thresholds {
        success: 1,
        failure: probe.failure,
    };
    let mut state = ProbeState::new(true);
    loop {
        tokio::time::sleep(probe.interval).await;
        let outcome = check(d, target, probe).await;
        if state.observe(outcome.is_ok(), &thresholds) == Some(false) {
            let last = outcome.err().unwrap_or_default();
            let why = format!(
                "liveness failed {} times in a row (last: {last})",
                state.consecutive_failures()
            );
            fail(d, target, &why);
            return;
        }
    }
}

/// Runs one check; `Err` says why it failed.
async fn check(d: &Arc<Daemon>, target: &Target, probe: &Probe) -> Result<(), String> {
    match &probe.check {
        Check::Tcp => tokio::time::timeout(probe.timeout, TcpStream::connect(&target.address))
            .await
            .map_err(|_| format!("connect to {} timed out", target.address))?
            .map(drop)
            .map_err(|e| format!("connect to {}: {e}", target.address)),
        Check::Http { path } => {
            tokio::time::timeout(probe.timeout, http_get(&target.address, path))
                .await
                .map_err(|_| {
                    format!(
                        "GET {path} timed out after {}",
                        human_ms(millis(probe.timeout))
                    )
                })?
        }
        Check::Exec { command } => {
            let d = d.clone();
            let id = target.id.clone();
            let command = command.clone();
            let timeout = probe.timeout;
            let ran =
                tokio::task::spawn_blocking(move || d.runtime.exec(&id, &command, timeout)).await;
            match ran {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err("command failed".to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// A minimal HTTP/1.1 GET: success is a 2xx or 3xx status.
async fn http_get(address: &str, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kiln-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no HTTP status in the answer"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path}: status {status}"))
    }
}

fn set_ready(d: &Daemon, target: &Target, ready: bool, why: &str) {
    {
        let mut live = d.live();
        let Some(h) = live.health.get_mut(&target.id) else {
            return;
        };
        // An instance already found dead or unhealthy is never ready again.
        if h.failed.is_some() {
            return;
        }
        h.ready = ready;
    }
    if ready && let Some(b) = d.live().backoff.get_mut(&target.service) {
        b.healthy(now_ms());
    }
    let kind = if ready {
        "instance.ready"
    } else {
        "instance.unready"
    };
    let mut db = d.db();
    match db.instance(&target.id) {
        Ok(Some(mut row)) if row.ready != ready => {
            row.ready = ready;
            let event = new_event(kind, Some(&target.service), Some(&target.id), why);
            if let Err(e) = db.update_instance(&row, Some(&event)) {
                tracing::error!(error = %e, instance = %target.id, "cannot persist readiness");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, instance = %target.id, "cannot read instance"),
    }
    drop(db);
    d.wake.notify_one();
}

/// Marks the instance failed: the reconcile loop replaces it.
fn fail(d: &Daemon, target_or_id: &Target, why: &str) {
    mark_failed(
        d,
        &target_or_id.service,
        &target_or_id.id,
        target_or_id.created_ms,
        "instance.unhealthy",
        why,
    );
}

/// Marks instance `id` failed (exited, unhealthy) once, recording `kind`.
pub(crate) fn mark_failed(
    d: &Daemon,
    service: &str,
    id: &str,
    created_ms: i64,
    kind: &str,
    why: &str,
) {
    {
        let mut live = d.live();
        let health = live.health.entry(id.to_string()).or_default();
        if health.failed.is_some() {
            return;
        }
        health.failed = Some(why.to_string());
        health.ready = false;
    }
    d.event(kind, Some(service), Some(id), why);
    let delay = d.note_failure(service, created_ms, why);
    if delay > 0 {
        d.event(
            "service.backoff",
            Some(service),
            None,
            &format!("crash loop: next instance in {}", human_ms(delay)),
        );
    }
    d.wake.notify_one();
}

fn elapsed_ms(target: &Target) -> u64 {
    millis(target.started.elapsed())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
