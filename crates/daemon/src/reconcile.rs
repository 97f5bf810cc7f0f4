//! The reconcile loop: observe the instances, ask the planner (`kiln_deploy::plan`) what
//! to do about the difference from the desired state, and start doing it.
//!
//! One pass at a time, woken by changes (apply, an instance started, stopped, failed or
//! became ready) and at least every 200 ms. Starts and stops run in the background; an
//! instance with one in flight is `busy` and left alone until it finishes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kiln_deploy::plan::{Action, ActualInstance, DesiredService, Phase, reconcile};
use kiln_state::{InstanceRow, InstanceState};

use crate::clock::now_ms;
use crate::daemon::Daemon;
use crate::health::mark_failed;
use crate::launch::{begin_create, begin_stop, human_ms};

/// The longest a pass waits for a wake-up.
const TICK: Duration = Duration::from_millis(200);

/// How often old events and logs are cleaned up.
const HOUSEKEEPING: Duration = Duration::from_secs(600);

/// Runs passes forever.
pub(crate) async fn run(d: Arc<Daemon>) {
    let mut last_housekeeping = tokio::time::Instant::now();
    loop {
        // A pass reads and writes SQLite (with fsync) and asks the proxy for its metrics:
        // blocking work, kept off the async workers that serve the API and the probes.
        let pass_d = d.clone();
        match tokio::task::spawn_blocking(move || pass(&pass_d)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "reconcile pass failed"),
            Err(e) => tracing::error!(error = %e, "reconcile pass panicked"),
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = tokio::time::Instant::now();
            let d = d.clone();
            tokio::task::spawn_blocking(move || crate::housekeeping::run(&d));
        }
        tokio::select! {
            () = d.wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One pass.
fn pass(d: &Arc<Daemon>) -> Result<(), kiln_state::StateError> {
    // Not while an apply or a rollout command runs: they change the desired state and
    // the rollouts together, and a pass must see both before or both after.
    let Some(_serial) = d.try_apply_lock() else {
        return Ok(());
    };
    crate::launch::retry_unpersisted(d);
    let rows = d.db().instances()?;
    let desired = d.db().desired()?;
    observe(d, &rows);
    // The pass holds the apply lock, so `desired` and `rows` are current: pin what they
    // name (an apply pins its new images itself before committing).
    let images = desired
        .iter()
        .map(|s| s.image_digest.clone())
        .chain(rows.iter().map(|r| r.image_digest.clone()))
        .collect();
    if let Err(e) = d.pin(images) {
        tracing::warn!(error = %e, "cannot update the store's pins");
    }
    let actual = actual_instances(d, &rows);
    // Services in a rollout follow its targets; the plain planner handles the rest.
    let mut weights = crate::traffic::Weights::new();
    let routes = crate::traffic::routes(d);
    let (managed, rollout_actions) =
        crate::rollouts::step(d, &desired, &routes, &actual, &mut weights);
    let plan_input: Vec<DesiredService> = desired
        .iter()
        .filter(|s| !managed.contains(&s.name))
        .map(to_deploy)
        .collect();
    let plain_actual: Vec<ActualInstance> = actual
        .iter()
        .filter(|a| !managed.contains(&a.service))
        .cloned()
        .collect();
    let now = now_ms();
    let mut used: HashSet<u16> = rows.iter().map(|r| r.port).collect();
    // Whether this pass began a start or a stop (and so changed rows).
    let mut acted = false;
    // Stops that were interrupted (by a restart) or failed are carried on.
    for row in rows.iter().filter(|r| r.state == InstanceState::Stopping) {
        let idle = {
            let live = d.live();
            !live.busy.contains(&row.id) && live.retry_after.get(&row.id).is_none_or(|t| *t <= now)
        };
        if idle {
            let reason = row
                .stop_reason
                .clone()
                .unwrap_or_else(|| "stopping".to_string());
            begin_stop(d, &row.id, &reason);
            acted = true;
        }
    }
    let actions = reconcile(&plan_input, &plain_actual)
        .into_iter()
        .map(|a| (a, None))
        .chain(rollout_actions);
    for (action, version) in actions {
        match action {
            Action::Stop { id, reason, .. } => {
                let Some(row) = rows.iter().find(|r| r.id == id) else {
                    continue;
                };
                {
                    let live = d.live();
                    if live.busy.contains(&id)
                        || live.retry_after.get(&id).is_some_and(|t| *t > now)
                    {
                        continue;
                    }
                }
                begin_stop(d, &row.id, &reason);
                acted = true;
            }
            Action::Create {
                service,
                replaces,
                reason,
            } => {
                let Some(target) = desired.iter().find(|s| s.name == service) else {
                    continue;
                };
                // A rollout creates instances of a definition of its own choosing.
                let mut target = target.clone();
                if let Some(v) = version {
                    target.def_hash = v.def_hash;
                    target.image_digest = v.image;
                    target.version = v.version;
                }
                let target = &target;
                let ready_at = d
                    .live()
                    .backoff
                    .get(&service)
                    .map_or(i64::MIN, |b| b.ready_at_ms());
                if ready_at > now {
                    note_waiting(
                        d,
                        &service,
                        &format!(
                            "crash loop: waiting {} before the next instance",
                            human_ms((ready_at - now).unsigned_abs())
                        ),
                    );
                    continue;
                }
                if begin_create(d, target, replaces, &reason, &mut used) {
                    acted = true;
                    d.live().waiting_noted.remove(&service);
                } else {
                    note_waiting(
                        d,
                        &service,
                        &format!(
                            "no free port in {}-{}: waiting for one",
                            d.config.ports.0, d.config.ports.1
                        ),
                    );
                }
            }
        }
    }
    // Rows changed by this pass (stopping, new) are re-read for the table.
    let rows = if acted { d.db().instances()? } else { rows };
    let table = crate::traffic::desired_table(d, &routes, &rows, &weights);
    crate::traffic::sync(d, table);
    Ok(())
}

/// Records that `service` waits, once per wait.
fn note_waiting(d: &Daemon, service: &str, why: &str) {
    if d.live().waiting_noted.insert(service.to_string()) {
        d.event("service.waiting", Some(service), None, why);
    }
}

/// Notices running instances whose process is gone.
fn observe(d: &Daemon, rows: &[InstanceRow]) {
    for row in rows {
        if row.state != InstanceState::Running {
            continue;
        }
        {
            let live = d.live();
            if live.busy.contains(&row.id)
                || live.health.get(&row.id).is_some_and(|h| h.failed.is_some())
            {
                continue;
            }
        }
        let alive = crate::launch::row_alive(row);
        if !alive {
            let why = match d.runtime.exit_info(&row.id) {
                Some(exit) => match (exit.code, exit.signal) {
                    (_, Some(signal)) => format!("exited: killed by signal {signal}"),
                    (Some(code), None) => format!("exited with code {code}"),
                    (None, None) => "exited".to_string(),
                },
                None => "its process is gone".to_string(),
            };
            mark_failed(
                d,
                &row.service,
                &row.id,
                row.created_ms,
                "instance.exited",
                &why,
            );
        }
    }
}

/// The planner's view of the rows, with health from memory.
pub(crate) fn actual_instances(d: &Daemon, rows: &[InstanceRow]) -> Vec<ActualInstance> {
    let live = d.live();
    rows.iter()
        .map(|row| {
            let health = live.health.get(&row.id);
            ActualInstance {
                id: row.id.clone(),
                service: row.service.clone(),
                def_hash: row.def_hash.clone(),
                phase: match row.state {
                    InstanceState::Creating => Phase::Creating,
                    InstanceState::Running => Phase::Running,
                    InstanceState::Stopping => Phase::Stopping,
                },
                ready: live.ready(row),
                failed: health.and_then(|h| h.failed.clone()),
                created_ms: row.created_ms,
            }
        })
        .collect()
}

/// The planner's view of a desired service.
pub(crate) fn to_deploy(s: &kiln_state::DesiredService) -> DesiredService {
    DesiredService {
        name: s.name.clone(),
        def_hash: s.def_hash.clone(),
        replicas: s.replicas,
    }
}
