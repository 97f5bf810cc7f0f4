//! Rollouts: carrying out a service's `strategy` when its definition changes.
//!
//! An apply that changes the definition of a running service with a strategy starts a
//! [`Rollout`] (the pure state machine of `kiln_deploy::rollout`), persisted in the
//! same transaction as the new desired state. Each reconcile pass then observes the
//! service (ready and running instances of the stable and the new definition, the
//! weight the proxy confirmed, the proxy's per-version counters since the step began),
//! ticks the rollout, persists it when it changed — before anything is acted on — and
//! makes the instances of each definition match its targets. The targets' weight goes
//! into the route table. A finished rollout stays in the database for
//! `kiln rollout status`.

mod metrics;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kiln_deploy::analysis::{Thresholds, Window};
use kiln_deploy::plan::{Action, ActualInstance, Phase as InstancePhase};
use kiln_deploy::rollout::{Command, Kind, Observation, Params, Phase, Rollout, Targets};
use kiln_spec::{Pause, RouteSpec, Strategy, StrategyKind};
use kiln_state::DesiredService;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::daemon::{Daemon, new_event};
use crate::traffic::{Weights, version_label};

pub(crate) use metrics::Counters;

/// One definition taking part in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionInfo {
    pub def_hash: String,
    pub image: String,
    pub version: String,
}

impl VersionInfo {
    pub(crate) fn of(s: &DesiredService) -> VersionInfo {
        VersionInfo {
            def_hash: s.def_hash.clone(),
            image: s.image_digest.clone(),
            version: s.version.clone(),
        }
    }

    /// The label of this version in route tables and metrics.
    pub(crate) fn label(&self) -> String {
        version_label(&self.version, &self.def_hash)
    }
}

/// A service's rollout as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tracked {
    pub rollout: Rollout,
    pub stable: VersionInfo,
    pub canary: VersionInfo,
    /// Over, and the instances it left behind are stopping or gone: kept only to be shown.
    pub done: bool,
}

/// Metric baselines of the step being analysed (memory only: after a restart the
/// window starts again, which can only make the analysis wait longer).
#[derive(Debug, Clone, Default)]
pub(crate) struct Baseline {
    step_started_ms: i64,
    canary: Counters,
    stable: Counters,
}

/// Whether `strategy` asks for a rollout (the default replaces everything at once).
pub(crate) fn wants_rollout(strategy: &Strategy) -> bool {
    *strategy != Strategy::default()
}

/// The state machine's parameters for `strategy` and `replicas`.
pub(crate) fn params(strategy: &Strategy, replicas: u32) -> Params {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let a = &strategy.analysis;
    Params {
        kind: match strategy.kind {
            StrategyKind::BlueGreen => Kind::BlueGreen,
            StrategyKind::Canary => Kind::Canary,
            StrategyKind::Rolling => Kind::Rolling,
        },
        replicas,
        steps: strategy.steps.clone(),
        pause_ms: match strategy.pause {
            Pause::For(d) => Some(ms(d)),
            Pause::Manual => None,
        },
        rollback_window_ms: ms(strategy.rollback_window),
        max_surge: strategy.max_surge.unwrap_or(replicas.max(1)),
        max_unavailable: strategy.max_unavailable,
        progress_deadline_ms: ms(strategy.progress_deadline),
        analysis: a.has_thresholds().then(|| Thresholds {
            max_error_rate_ppm: a.max_error_rate_ppm,
            max_p99_ms: a.max_p99_latency.map(ms),
            max_p99_ratio_permille: a.max_p99_ratio_permille,
            min_requests: u64::from(a.min_requests),
        }),
    }
}

/// The rollout an apply starts for `new` replacing `old`, if any: only when the
/// definition changed, the strategy asks for one, and the old definition serves.
pub(crate) fn start(
    strategy: &Strategy,
    old: &DesiredService,
    new: &DesiredService,
    existing: Option<&Tracked>,
    serving: bool,
) -> Option<Tracked> {
    if old.def_hash == new.def_hash || !wants_rollout(strategy) || !serving {
        return None;
    }
    // A change during a rollout replaces the new version, never the stable one.
    let stable = match existing {
        Some(t) if !t.done && t.rollout.phase != Phase::Completed => t.stable.clone(),
        _ => VersionInfo::of(old),
    };
    let canary = VersionInfo::of(new);
    if stable.def_hash == canary.def_hash {
        return None;
    }
    let rollout = Rollout::new(
        &new.name,
        params(strategy, new.replicas),
        &stable.def_hash,
        &canary.def_hash,
        now_ms(),
    );
    Some(Tracked {
        rollout,
        stable,
        canary,
        done: false,
    })
}

/// Loads the persisted rollouts into memory (at startup).
pub(crate) fn load(d: &Daemon) -> Result<(), kiln_state::StateError> {
    let rows = d.db().rollouts()?;
    let mut live = d.live();
    for (service, json) in rows {
        match serde_json::from_str::<Tracked>(&json) {
            Ok(t) => {
                live.rollouts.insert(service, t);
            }
            Err(e) => tracing::error!(service, error = %e, "unreadable rollout in the database"),
        }
    }
    Ok(())
}

/// Advances every rollout in progress. Returns the services they manage (the plain
/// planner leaves those alone), the actions that make their instances match, and
/// fills `weights` for the route table.
pub(crate) fn step(
    d: &Arc<Daemon>,
    desired: &[DesiredService],
    routes: &[RouteSpec],
    actual: &[ActualInstance],
    weights: &mut Weights,
) -> (HashSet<String>, Vec<(Action, Option<VersionInfo>)>) {
    let active: Vec<Tracked> = d
        .live()
        .rollouts
        .values()
        .filter(|t| !t.done)
        .cloned()
        .collect();
    // A service destroyed mid-rollout: the rollout ends there, and the plain planner
    // stops its instances like any removed service's.
    let (active, orphaned): (Vec<Tracked>, Vec<Tracked>) = active
        .into_iter()
        .partition(|t| desired.iter().any(|s| s.name == t.rollout.service));
    for before in orphaned {
        let mut after = before.clone();
        after.done = true;
        after.rollout.reason = format!(
            "{}; ended: the service was destroyed",
            before.rollout.reason
        );
        if persist(d, &before, &after) {
            d.live()
                .rollouts
                .insert(after.rollout.service.clone(), after);
        }
    }
    let mut managed = HashSet::new();
    let mut actions = Vec::new();
    if active.is_empty() {
        return (managed, actions);
    }
    // No figures when the proxy cannot be asked: the analysis waits rather than judging
    // a window whose baseline is unknown.
    let metrics_text = kiln_proxy::client::metrics(&d.config.home).ok();
    for mut tracked in active {
        let service = tracked.rollout.service.clone();
        let obs = observe(d, &tracked, routes, actual, metrics_text.as_deref());
        let before = tracked.clone();
        let targets = tracked.rollout.tick(&obs);
        let finished = tracked.rollout.is_finished()
            && match tracked.rollout.phase {
                Phase::Completed => obs.stable_running == 0,
                Phase::Aborted => obs.canary_running == 0,
                Phase::Progressing | Phase::Paused => false,
            };
        if finished {
            tracked.done = true;
        }
        if tracked != before && !persist(d, &before, &tracked) {
            // Not persisted: act on nothing new this pass, and keep traffic as it was.
            let kept = before.rollout.targets();
            weights.insert(
                service.clone(),
                (before.canary.def_hash.clone(), kept.canary_weight),
            );
            managed.insert(service);
            continue;
        }
        if tracked.done {
            // The pass that ends it still leaves the service alone: its desired state
            // was read before an abort put the stable definition back.
            weights.insert(
                service.clone(),
                (tracked.canary.def_hash.clone(), targets.canary_weight),
            );
            d.live().rollouts.insert(service.clone(), tracked);
            managed.insert(service);
            continue;
        }
        weights.insert(
            service.clone(),
            (tracked.canary.def_hash.clone(), targets.canary_weight),
        );
        actions.extend(plan_versions(&tracked, &targets, actual));
        d.live().rollouts.insert(service.clone(), tracked);
        managed.insert(service);
    }
    (managed, actions)
}

/// What the rollout of `t` sees now.
fn observe(
    d: &Daemon,
    t: &Tracked,
    routes: &[RouteSpec],
    actual: &[ActualInstance],
    metrics_text: Option<&str>,
) -> Observation {
    let service = &t.rollout.service;
    let count = |hash: &str, ready: bool| {
        u32::try_from(
            actual
                .iter()
                .filter(|a| {
                    a.service == *service
                        && a.def_hash == hash
                        && a.phase != InstancePhase::Stopping
                        && a.failed.is_none()
                        && (!ready || a.ready)
                })
                .count(),
        )
        .unwrap_or(u32::MAX)
    };
    // A new instance that exited or failed liveness: the new version is broken.
    let canary_failed = actual
        .iter()
        .any(|a| a.service == *service && a.def_hash == t.canary.def_hash && a.failed.is_some());
    let (canary_window, stable_window) = windows(d, t, metrics_text);
    Observation {
        now_ms: now_ms(),
        stable_ready: count(&t.stable.def_hash, true),
        canary_ready: count(&t.canary.def_hash, true),
        stable_running: count(&t.stable.def_hash, false),
        canary_running: count(&t.canary.def_hash, false),
        confirmed_weight: confirmed_weight(d, t, routes),
        canary_window,
        stable_window,
        canary_failed,
    }
}

/// The canary weight of the newest table the proxy confirmed for the service, or
/// `None` while a newer table is on its way. A service no route serves has no traffic
/// to move: its wanted weight counts as confirmed.
fn confirmed_weight(d: &Daemon, t: &Tracked, routes: &[RouteSpec]) -> Option<u32> {
    let routed = routes.iter().any(|r| r.service == t.rollout.service);
    if !routed {
        return Some(t.rollout.weight);
    }
    let live = d.live();
    if live.service_pending(&t.rollout.service) {
        return None;
    }
    let table = live.confirmed.as_ref()?;
    table
        .routes
        .iter()
        .find(|r| r.service == t.rollout.service)
        .map(|r| r.canary_weight)
}

/// The analysis windows since the current step began.
fn windows(d: &Daemon, t: &Tracked, metrics_text: Option<&str>) -> (Window, Window) {
    let (Some(step_started), Some(metrics_text)) = (t.rollout.step_started_ms, metrics_text) else {
        return (Window::default(), Window::default());
    };
    let counters = metrics::parse(metrics_text, &t.rollout.service);
    let canary = counters.get(&t.canary.label()).cloned().unwrap_or_default();
    let stable = counters.get(&t.stable.label()).cloned().unwrap_or_default();
    let mut live = d.live();
    let baseline = live.baselines.entry(t.rollout.service.clone()).or_default();
    if baseline.step_started_ms != step_started {
        *baseline = Baseline {
            step_started_ms: step_started,
            canary: canary.clone(),
            stable: stable.clone(),
        };
    }
    (
        canary.since(&baseline.canary),
        stable.since(&baseline.stable),
    )
}

/// Persists a changed rollout, with events for what a person wants to know; on an
/// abort that is over, the service's desired definition returns to the stable one in
/// the same transaction. False if nothing could be written.
fn persist(d: &Daemon, before: &Tracked, after: &Tracked) -> bool {
    let r = &after.rollout;
    let service = r.service.as_str();
    let Ok(json) = serde_json::to_string(after) else {
        return false;
    };
    let mut messages: Vec<(&str, String)> = Vec::new();
    if before.rollout.phase != r.phase {
        let kind = match r.phase {
            Phase::Progressing => "rollout.progressing",
            Phase::Paused => "rollout.paused",
            Phase::Completed => "rollout.completed",
            Phase::Aborted => "rollout.aborted",
        };
        messages.push((kind, r.reason.clone()));
    } else if before.rollout.weight != r.weight || before.rollout.step != r.step {
        messages.push((
            "rollout.step",
            format!("step {} at {} %: {}", r.step + 1, r.weight, r.reason),
        ));
    } else if let Some(v) = &r.last_verdict
        && before
            .rollout
            .last_verdict
            .as_ref()
            .map(std::mem::discriminant)
            != Some(std::mem::discriminant(v))
    {
        // Only when the verdict changes kind: the figures move on every pass.
        messages.push(("rollout.analysis", v.to_string()));
    }
    if after.done && !before.done {
        messages.push((
            "rollout.done",
            format!("{}; the replaced instances are stopping", r.reason),
        ));
    }
    let events: Vec<_> = messages
        .iter()
        .map(|(kind, m)| new_event(kind, Some(service), None, m))
        .collect();
    let result = if after.done && r.phase == Phase::Aborted {
        // The stable definition becomes the desired one again.
        // Each lock in a statement of its own: `definition` may read the database too.
        let all = d.db().desired();
        let Some(definition) = d.definition(&after.stable.def_hash) else {
            tracing::error!(
                service,
                "the stable definition is missing: cannot end the rollout"
            );
            return false;
        };
        let stable = all.ok().and_then(|all| {
            all.into_iter().find(|s| s.name == service).map(|mut s| {
                s.def_hash = after.stable.def_hash.clone();
                s.image_digest = after.stable.image.clone();
                s.version = after.stable.version.clone();
                s.definition = definition.to_json();
                s.updated_ms = now_ms();
                s
            })
        });
        d.db()
            .end_rollout(service, &json, now_ms(), stable.as_ref(), &events)
    } else {
        d.db().put_rollout(service, &json, now_ms(), &events)
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(service, error = %e, "cannot persist the rollout");
            false
        }
    }
}

/// The actions that make the instances of the rollout's two definitions match
/// `targets`: failed ones replaced, missing ones created, extras stopped (not ready
/// first, then newest), anything of a third definition stopped.
fn plan_versions(
    t: &Tracked,
    targets: &Targets,
    actual: &[ActualInstance],
) -> Vec<(Action, Option<VersionInfo>)> {
    let service = &t.rollout.service;
    let mine: Vec<&ActualInstance> = actual
        .iter()
        .filter(|a| a.service == *service && a.phase != InstancePhase::Stopping)
        .collect();
    let mut out = Vec::new();
    for a in &mine {
        if a.def_hash != t.stable.def_hash && a.def_hash != t.canary.def_hash {
            out.push((
                Action::Stop {
                    id: a.id.clone(),
                    service: service.clone(),
                    reason: "superseded by a newer change".to_string(),
                },
                None,
            ));
        }
    }
    for (version, want) in [(&t.stable, targets.stable), (&t.canary, targets.canary)] {
        let of: Vec<&&ActualInstance> = mine
            .iter()
            .filter(|a| a.def_hash == version.def_hash)
            .collect();
        for a in of.iter().filter(|a| a.failed.is_some()) {
            out.push((
                Action::Stop {
                    id: a.id.clone(),
                    service: service.clone(),
                    reason: a.failed.clone().unwrap_or_default(),
                },
                None,
            ));
        }
        let mut healthy: Vec<&&&ActualInstance> =
            of.iter().filter(|a| a.failed.is_none()).collect();
        let have = u32::try_from(healthy.len()).unwrap_or(u32::MAX);
        if have < want {
            for _ in have..want {
                out.push((
                    Action::Create {
                        service: service.clone(),
                        replaces: None,
                        reason: format!("rollout: {want} of {}", version.label()),
                    },
                    Some(version.clone()),
                ));
            }
        } else if have > want {
            healthy.sort_by(|a, b| {
                a.ready
                    .cmp(&b.ready)
                    .then(b.created_ms.cmp(&a.created_ms))
                    .then(b.id.cmp(&a.id))
            });
            for a in healthy.iter().take((have - want) as usize) {
                out.push((
                    Action::Stop {
                        id: a.id.clone(),
                        service: service.clone(),
                        reason: format!("rollout: {want} of {}", version.label()),
                    },
                    None,
                ));
            }
        }
    }
    out
}

/// A command for `service`'s rollout (`kiln rollout …`).
pub(crate) fn command(d: &Daemon, service: &str, verb: &str) -> Result<Tracked, String> {
    let mut live_guard = d.live();
    let Some(tracked) = live_guard.rollouts.get(service).cloned() else {
        return Err(format!("service `{service}` has no rollout"));
    };
    drop(live_guard);
    let mut after = tracked.clone();
    match verb {
        "promote" | "abort" | "pause" | "resume" => {
            if tracked.done {
                return Err(format!(
                    "the rollout of `{service}` is over ({})",
                    tracked.rollout.reason
                ));
            }
            let cmd = match verb {
                "promote" => Command::Promote,
                "abort" => Command::Abort,
                "pause" => Command::Pause,
                _ => Command::Resume,
            };
            after.rollout.command(cmd, now_ms())?;
        }
        "undo" => {
            if !tracked.done {
                // Still in progress: going back is an abort (traffic returns to the
                // stable set first, which is still there).
                after.rollout.command(Command::Abort, now_ms())?;
            } else if tracked.rollout.phase == Phase::Completed {
                let desired_hash = d
                    .db()
                    .desired()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|s| s.name == service)
                    .map(|s| s.def_hash);
                if desired_hash.as_deref() != Some(tracked.canary.def_hash.as_str()) {
                    return Err(format!(
                        "`{service}` has changed since its last rollout: apply the version you want instead"
                    ));
                }
                let rollout = Rollout::undo(
                    service,
                    tracked.rollout.params.clone(),
                    &tracked.canary.def_hash,
                    &tracked.stable.def_hash,
                    now_ms(),
                );
                after = Tracked {
                    rollout,
                    stable: tracked.canary.clone(),
                    canary: tracked.stable.clone(),
                    done: false,
                };
                return undo(d, service, after);
            } else {
                return Err(format!(
                    "the last rollout of `{service}` was aborted: it already runs the previous version"
                ));
            }
        }
        other => return Err(format!("unknown rollout command `{other}`")),
    }
    let json = serde_json::to_string(&after).map_err(|e| e.to_string())?;
    let kind = format!("rollout.{verb}");
    let event = new_event(&kind, Some(service), None, &after.rollout.reason);
    d.db()
        .put_rollout(service, &json, now_ms(), &[event])
        .map_err(|e| e.to_string())?;
    live_guard = d.live();
    live_guard
        .rollouts
        .insert(service.to_string(), after.clone());
    drop(live_guard);
    d.wake.notify_one();
    Ok(after)
}

/// Starts the undo rollout `after` and makes the previous definition desired again.
fn undo(d: &Daemon, service: &str, after: Tracked) -> Result<Tracked, String> {
    let mut desired = d
        .db()
        .desired()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name == service)
        .ok_or_else(|| format!("service `{service}` is not deployed"))?;
    desired.def_hash = after.canary.def_hash.clone();
    desired.image_digest = after.canary.image.clone();
    desired.version = after.canary.version.clone();
    desired.definition = d
        .definition(&after.canary.def_hash)
        .map(|def| def.to_json())
        .ok_or_else(|| "the previous definition is no longer known".to_string())?;
    desired.updated_ms = now_ms();
    let json = serde_json::to_string(&after).map_err(|e| e.to_string())?;
    let message = format!("back to {}", after.canary.label());
    let event = new_event("rollout.undo", Some(service), None, &message);
    d.db()
        .put_desired_with_routes(
            std::slice::from_ref(&desired),
            &[],
            None,
            &[(service.to_string(), json)],
            &[event],
        )
        .map_err(|e| e.to_string())?;
    d.live().rollouts.insert(service.to_string(), after.clone());
    d.wake.notify_one();
    Ok(after)
}

/// Every rollout, for the API.
pub(crate) fn all(d: &Daemon) -> HashMap<String, Tracked> {
    d.live().rollouts.clone()
}
