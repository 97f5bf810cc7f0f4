//! Read-only answers: status, services, instances, events.

use kiln_state::{EventFilter, InstanceState};

use super::Query;
use super::types::{DaemonStatus, EventInfo, InstanceInfo, RolloutStatus, ServiceStatus};
use crate::clock::rfc3339_ms;
use crate::daemon::Daemon;
use crate::error::ApiError;

/// Events answered per request at most, unless `limit` says fewer.
const MAX_EVENTS: usize = 10_000;

pub(crate) fn status(d: &Daemon) -> Result<DaemonStatus, ApiError> {
    // Each lock is taken in a statement of its own: `services` locks the database too.
    let generation = d.db().generation()?;
    let services = services(d)?;
    Ok(DaemonStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        started_ms: d.started_ms,
        home: d.config.home.display().to_string(),
        host: d.config.host.clone(),
        ports: format!("{}-{}", d.config.ports.0, d.config.ports.1),
        generation,
        services,
    })
}

pub(crate) fn services(d: &Daemon) -> Result<Vec<ServiceStatus>, ApiError> {
    let desired = d.db().desired()?;
    let rows = d.db().instances()?;
    let live = d.live();
    Ok(desired
        .iter()
        .map(|s| {
            let mine = rows.iter().filter(|r| r.service == s.name);
            let failed = |id: &str| live.health.get(id).is_some_and(|h| h.failed.is_some());
            let live_rows: Vec<_> = mine
                .clone()
                .filter(|r| r.state != InstanceState::Stopping && !failed(&r.id))
                .collect();
            let current: Vec<_> = live_rows
                .iter()
                .filter(|r| r.def_hash == s.def_hash)
                .collect();
            let ready = current.iter().filter(|r| live.ready(r)).count();
            let outdated = live_rows.len() - current.len();
            let stopping = mine.count() - live_rows.len();
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let backoff_until_ms = live
                .backoff
                .get(&s.name)
                .map(|b| b.ready_at_ms())
                .filter(|t| *t > crate::clock::now_ms());
            ServiceStatus {
                name: s.name.clone(),
                image: s.image_digest.clone(),
                version: s.version.clone(),
                replicas: s.replicas,
                current: count(current.len()),
                ready: count(ready),
                outdated: count(outdated),
                stopping: count(stopping),
                converged: ready == s.replicas as usize
                    && current.len() == s.replicas as usize
                    && outdated == 0
                    && stopping == 0,
                generation: s.generation,
                backoff_until_ms,
                last_failure: live.last_failure.get(&s.name).cloned(),
            }
        })
        .collect())
}

pub(crate) fn instances(d: &Daemon, service: Option<&str>) -> Result<Vec<InstanceInfo>, ApiError> {
    let rows = d.db().instances()?;
    let desired = d.db().desired()?;
    let live = d.live();
    Ok(rows
        .into_iter()
        .filter(|r| service.is_none_or(|s| r.service == s))
        .map(|r| {
            let ready = live.ready(&r);
            InstanceInfo {
                current: desired
                    .iter()
                    .any(|s| s.name == r.service && s.def_hash == r.def_hash),
                ready,
                state: r.state.as_str().to_string(),
                started: r.started_ms.map(rfc3339_ms),
                created: rfc3339_ms(r.created_ms),
                id: r.id,
                service: r.service,
                image: r.image_digest,
                version: r.version,
                pid: r.pid,
                address: r.address,
                replaces: r.replaces,
            }
        })
        .collect())
}

pub(crate) fn events(d: &Daemon, query: &Query) -> Result<Vec<EventInfo>, ApiError> {
    let limit = query
        .number::<usize>("limit")?
        .unwrap_or(MAX_EVENTS)
        .min(MAX_EVENTS);
    let filter = EventFilter {
        after_seq: query.number("after")?.unwrap_or(0),
        service: query.get("service"),
        instance: query.get("instance"),
        since_ms: query.number("since_ms")?,
        limit: Some(limit),
    };
    Ok(d.db()
        .events(&filter)?
        .into_iter()
        .map(|e| EventInfo {
            seq: e.seq,
            ts: rfc3339_ms(e.ts_ms),
            service: e.service,
            instance: e.instance,
            kind: e.kind,
            message: e.message,
        })
        .collect())
}

pub(crate) fn rollouts(d: &Daemon, service: Option<&str>) -> Vec<RolloutStatus> {
    let mut all: Vec<_> = crate::rollouts::all(d)
        .into_values()
        .filter(|t| service.is_none_or(|s| t.rollout.service == s))
        .collect();
    all.sort_by(|a, b| a.rollout.service.cmp(&b.rollout.service));
    all.into_iter()
        .map(|t| {
            let r = &t.rollout;
            RolloutStatus {
                service: r.service.clone(),
                kind: match r.params.kind {
                    kiln_deploy::rollout::Kind::BlueGreen => "blue-green",
                    kiln_deploy::rollout::Kind::Canary => "canary",
                    kiln_deploy::rollout::Kind::Rolling => "rolling",
                }
                .to_string(),
                phase: match r.phase {
                    kiln_deploy::rollout::Phase::Progressing => "progressing",
                    kiln_deploy::rollout::Phase::Paused => "paused",
                    kiln_deploy::rollout::Phase::Completed => "completed",
                    kiln_deploy::rollout::Phase::Aborted => "aborted",
                }
                .to_string(),
                step: r.step + 1,
                steps: if r.params.kind == kiln_deploy::rollout::Kind::Canary {
                    r.params.steps.clone()
                } else {
                    Vec::new()
                },
                weight: r.weight,
                stable: t.stable.label(),
                canary: t.canary.label(),
                reason: r.reason.clone(),
                analysis: r.last_verdict.as_ref().map(ToString::to_string),
                done: t.done,
                is_undo: r.is_undo,
                started: rfc3339_ms(r.started_ms),
                deadline: r.deadline_ms().map(rfc3339_ms),
            }
        })
        .collect()
}
