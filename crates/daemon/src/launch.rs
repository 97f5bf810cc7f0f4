//! Starting and stopping instances. Each change is persisted before it is acted on: a
//! row in `creating` exists before the container does, and a row goes to `stopping`
//! before the container is signalled, so a daemon killed at any point finds every
//! container it may have made (see `adopt`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kiln_runtime::{Bind, InstanceSpec, Limits, LogConfig};
use kiln_state::{DesiredService, InstanceRow, InstanceState};
use serde_json::json;

use crate::clock::{now_ms, rfc3339_ms};
use crate::daemon::{Daemon, Health, new_event};
use crate::definition::{Definition, image_config, user_of};
use crate::{health, ports};

/// Log files rotate at this size unless `KILN_LOG_MAX_BYTES` says otherwise.
const LOG_MAX_BYTES: u64 = 10 << 20;
/// Rotated log files kept per instance.
const LOG_KEEP: u32 = 3;

/// Persists a new instance of `service` in `creating` and starts it in the background.
/// `used` holds the ports of every row; the new one's is added. False when no port is
/// free (nothing was done).
pub(crate) fn begin_create(
    d: &Arc<Daemon>,
    service: &DesiredService,
    replaces: Option<String>,
    reason: &str,
    used: &mut HashSet<u16>,
) -> bool {
    let Some(port) = ports::allocate(&d.config.host, d.config.ports, used) else {
        return false;
    };
    used.insert(port);
    let id = format!("{}-{}", service.name, random_hex());
    let row = InstanceRow {
        id: id.clone(),
        service: service.name.clone(),
        def_hash: service.def_hash.clone(),
        image_digest: service.image_digest.clone(),
        version: service.version.clone(),
        state: InstanceState::Creating,
        port,
        address: ports::address(&d.config.host, port),
        pid: None,
        pid_start: None,
        created_ms: now_ms(),
        started_ms: None,
        ready: false,
        replaces,
        stop_reason: None,
    };
    let message = match &row.replaces {
        Some(old) if !reason.contains(old.as_str()) => {
            format!("creating on {} to replace {old}: {reason}", row.address)
        }
        _ => format!("creating on {}: {reason}", row.address),
    };
    let event = new_event("instance.created", Some(&service.name), Some(&id), &message);
    if let Err(e) = d.db().insert_instance(&row, Some(&event)) {
        tracing::error!(error = %e, instance = %id, "cannot persist a new instance");
        return false;
    }
    {
        let mut live = d.live();
        live.busy.insert(id.clone());
        live.health.insert(id.clone(), Health::default());
    }
    let d = d.clone();
    tokio::spawn(async move {
        let started = {
            let d = d.clone();
            let row = row.clone();
            tokio::task::spawn_blocking(move || {
                start(&d, &row).map_err(|why| {
                    // start() undoes its own work; this makes sure of it, so that a row
                    // is only ever dropped when nothing of its instance is left.
                    let cleaned = d.runtime.stop(&row.id, 9, Duration::ZERO).is_ok();
                    (why, cleaned)
                })
            })
            .await
        };
        let result = match started {
            Ok(result) => result,
            Err(e) => Err((format!("start task failed: {e}"), false)),
        };
        finish_create(&d, row, result);
    });
    true
}

fn finish_create(
    d: &Arc<Daemon>,
    mut row: InstanceRow,
    result: Result<kiln_runtime::Started, (String, bool)>,
) {
    match result {
        Ok(started) => {
            row.state = InstanceState::Running;
            row.pid = Some(started.pid);
            row.pid_start = Some(started.pid_start);
            row.started_ms = Some(now_ms());
            let message = format!("started, pid {}", started.pid);
            let event = new_event(
                "instance.started",
                Some(&row.service),
                Some(&row.id),
                &message,
            );
            if let Some(definition) = d.definition(&row.def_hash) {
                let handle = health::spawn(d.clone(), &row, definition, false);
                d.live().probes.insert(row.id.clone(), handle);
            }
            let written = match injected_write_failure() {
                Some(e) => Err(e),
                None => d.db().update_instance(&row, Some(&event)),
            };
            if let Err(e) = written {
                // Left `creating`, the row would not describe a running container. It
                // stays busy (nothing acts on it) and each pass writes it again.
                tracing::error!(error = %e, instance = %row.id, "cannot persist a started instance; retrying");
                d.live()
                    .unpersisted
                    .insert(row.id.clone(), (row.clone(), message));
                d.wake.notify_one();
                return;
            }
        }
        Err((why, cleaned)) => {
            let delay = d.note_failure(&row.service, row.created_ms, &why);
            let message = format!("failed to start: {why}");
            let event = new_event(
                "instance.failed",
                Some(&row.service),
                Some(&row.id),
                &message,
            );
            let persisted = if cleaned {
                d.db().delete_instance(&row.id, Some(&event)).map(drop)
            } else {
                // Something of it may be left: the loop carries on stopping it.
                row.state = InstanceState::Stopping;
                row.stop_reason = Some(message.clone());
                d.live()
                    .retry_after
                    .insert(row.id.clone(), now_ms() + 2_000);
                d.db().update_instance(&row, Some(&event))
            };
            if let Err(e) = persisted {
                tracing::error!(error = %e, instance = %row.id, "cannot persist a failed start");
            }
            if delay > 0 {
                d.event(
                    "service.backoff",
                    Some(&row.service),
                    None,
                    &format!("next instance in {}", human_ms(delay)),
                );
            }
            d.live().health.remove(&row.id);
        }
    }
    d.live().busy.remove(&row.id);
    d.wake.notify_one();
}

/// Whether the process a row names (pid and its start time) still runs.
pub(crate) fn row_alive(row: &InstanceRow) -> bool {
    match (row.pid, row.pid_start) {
        (Some(pid), Some(start)) => kiln_runtime::process_alive(pid, start),
        _ => false,
    }
}

/// `KILN_TEST_FAIL_STARTED_WRITES=N`: for tests, the first N writes of a started
/// instance's row fail as if the database had refused them.
fn injected_write_failure() -> Option<kiln_state::StateError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LEFT: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
    let left = LEFT.get_or_init(|| {
        let n = std::env::var("KILN_TEST_FAIL_STARTED_WRITES").ok();
        AtomicU32::new(n.and_then(|n| n.parse().ok()).unwrap_or(0))
    });
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .ok()
        .map(|_| {
            kiln_state::StateError::Conflict(
                "injected failure (KILN_TEST_FAIL_STARTED_WRITES)".to_string(),
            )
        })
}

/// Writes again the `running` rows of started instances that could not be written.
pub(crate) fn retry_unpersisted(d: &Daemon) {
    let pending: Vec<_> = d.live().unpersisted.values().cloned().collect();
    for (row, message) in pending {
        let event = new_event(
            "instance.started",
            Some(&row.service),
            Some(&row.id),
            &message,
        );
        match d.db().update_instance(&row, Some(&event)) {
            Ok(()) => {
                let mut live = d.live();
                live.unpersisted.remove(&row.id);
                live.busy.remove(&row.id);
            }
            Err(e) => {
                tracing::warn!(error = %e, instance = %row.id, "cannot persist a started instance yet");
            }
        }
    }
}

/// Builds the runtime's spec for `row` and starts it (blocking).
fn start(d: &Daemon, row: &InstanceRow) -> Result<kiln_runtime::Started, String> {
    let definition = d
        .definition(&row.def_hash)
        .ok_or_else(|| format!("definition {} is missing from the database", row.def_hash))?;
    let spec = instance_spec(d, row, &definition)?;
    d.runtime.start(&spec).map_err(|e| e.to_string())
}

fn instance_spec(d: &Daemon, row: &InstanceRow, def: &Definition) -> Result<InstanceSpec, String> {
    let config = image_config(&d.store, &def.image).map_err(|e| e.to_string())?;
    let digest = kiln_image::Digest::parse(&def.image).map_err(|e| e.to_string())?;
    let lowerdirs = d
        .store
        .unpacked_layers(&digest)
        .map_err(|e| e.to_string())?;
    let args = Definition::command(&config, def.args.as_deref());
    let user = user_of(&config).ok_or_else(|| "the image's user is not numeric".to_string())?;
    let mut env: Vec<String> = config.config.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", kiln_runtime::DEFAULT_PATH));
    }
    let mut set = |key: &str, value: &str| {
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(format!("{key}={value}"));
    };
    for (key, value) in &def.env {
        set(key, value);
    }
    set("PORT", &row.port.to_string());
    set("KILN_INSTANCE", &row.id);
    set("KILN_SERVICE", &row.service);
    set("KILN_VERSION", &row.version);
    set("KILN_ADDRESS", &row.address);
    let bootstrap = json!({
        "id": row.id,
        "service": row.service,
        "image": row.image_digest,
        "version": row.version,
        "environment": d.config.environment,
        "address": row.address,
        "host": d.config.host,
        "port": row.port,
        "created": rfc3339_ms(row.created_ms),
        "env": def.env,
    });
    let max_bytes = std::env::var("KILN_LOG_MAX_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LOG_MAX_BYTES);
    Ok(InstanceSpec {
        id: row.id.clone(),
        service: row.service.clone(),
        image_digest: row.image_digest.clone(),
        lowerdirs,
        args,
        env,
        cwd: config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string()),
        user,
        hostname: row.id.clone(),
        tmpfs: def.tmpfs.clone(),
        binds: def
            .volumes
            .iter()
            .map(|v| Bind {
                host: v.host.clone(),
                to: v.to.clone(),
                read_only: v.read_only,
            })
            .collect(),
        limits: Limits {
            memory: def.resources.memory,
            cpu_millis: def.resources.cpu_millis,
            pids: def.resources.pids,
        },
        bootstrap,
        log: LogConfig {
            path: d
                .config
                .home
                .join("logs")
                .join(&row.service)
                .join(format!("{}.log", row.id)),
            max_bytes,
            keep: LOG_KEEP,
        },
    })
}

/// Persists `row` as `stopping` and stops it in the background: the stop signal, the
/// grace period, then SIGKILL; then the row goes.
pub(crate) fn begin_stop(d: &Arc<Daemon>, id: &str, reason: &str) {
    // The row as it is now, not as a reconcile pass saw it: a start may have finished
    // since, and its pid and readiness must not be overwritten.
    let mut row = match d.db().instance(id) {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, instance = %id, "cannot read an instance to stop");
            return;
        }
    };
    if row.state != InstanceState::Stopping || row.stop_reason.is_none() {
        row.state = InstanceState::Stopping;
        row.stop_reason = Some(reason.to_string());
        let event = new_event(
            "instance.stopping",
            Some(&row.service),
            Some(&row.id),
            reason,
        );
        if let Err(e) = d.db().update_instance(&row, Some(&event)) {
            tracing::error!(error = %e, instance = %row.id, "cannot persist a stop");
            return;
        }
    }
    {
        let mut live = d.live();
        live.busy.insert(row.id.clone());
        if let Some(probe) = live.probes.remove(&row.id) {
            probe.abort();
        }
        if let Some(h) = live.health.get_mut(&row.id) {
            h.ready = false;
        }
    }
    let (signal, grace) = match d.definition(&row.def_hash) {
        Some(def) => (def.stop.signal.number(), def.stop.grace),
        None => (15, Duration::from_secs(10)),
    };
    let d = d.clone();
    tokio::spawn(async move {
        // Traffic leaves first: a confirmed table without it, then its in-flight requests.
        let alive = row_alive(&row);
        if alive {
            crate::traffic::drain(&d, &row, grace).await;
        }
        let result = {
            let d = d.clone();
            let id = row.id.clone();
            tokio::task::spawn_blocking(move || d.runtime.stop(&id, signal, grace)).await
        };
        let result = match result {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("stop task failed: {e}")),
        };
        match result {
            Ok(()) => {
                let event = new_event(
                    "instance.stopped",
                    Some(&row.service),
                    Some(&row.id),
                    "stopped and removed",
                );
                if let Err(e) = d.db().delete_instance(&row.id, Some(&event)) {
                    tracing::error!(error = %e, instance = %row.id, "cannot delete a stopped instance");
                }
                let mut live = d.live();
                live.health.remove(&row.id);
                live.retry_after.remove(&row.id);
            }
            Err(why) => {
                d.event(
                    "instance.stop_failed",
                    Some(&row.service),
                    Some(&row.id),
                    &format!("{why}; retrying"),
                );
                d.live()
                    .retry_after
                    .insert(row.id.clone(), now_ms() + 2_000);
            }
        }
        d.live().busy.remove(&row.id);
        d.wake.notify_one();
    });
}

/// Eight random hex digits for instance ids.
fn random_hex() -> String {
    let mut bytes = [0u8; 4];
    if rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).is_err() {
        let n = now_ms().unsigned_abs() ^ u64::from(std::process::id());
        bytes = (n as u32).to_le_bytes();
    }
    kiln_image::to_hex(&bytes)
}

/// `1500` → `1.5s`.
pub(crate) fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}
