//! `apply` and `destroy`: turning a spec into the desired state, with a plan.
//!
//! Everything is checked before anything is persisted: the spec, every image (resolved
//! to a digest and unpacked), and that the port range can hold the new instances. Then
//! the desired state changes in one transaction, and the reconcile loop does the rest.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kiln_deploy::plan::{Plan, diff_definitions, preview};
use kiln_state::{DesiredService, NewEvent};

use crate::api::types::ApplyResponse;
use crate::clock::now_ms;
use crate::daemon::{Daemon, new_event};
use crate::definition::{Resolved, resolve};
use crate::error::ApiError;
use crate::ports;
use crate::reconcile::{actual_instances, to_deploy};

/// Applies the services of the spec in `request` (the whole desired state: services it
/// does not name are destroyed).
pub(crate) fn apply(
    d: &Daemon,
    request: &crate::api::types::ApplyRequest,
) -> Result<ApplyResponse, ApiError> {
    // One apply or destroy at a time, from reading the old desired state to committing
    // the new one: concurrent requests never lose each other's changes.
    let _serial = d.apply_lock();
    let spec = kiln_spec::parse(&request.source, Path::new(&request.path))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resolved: Vec<Resolved> = Vec::new();
    let mut problems = Vec::new();
    for service in spec.services.values() {
        match resolve(&d.store, &request.path, service) {
            Ok(r) => resolved.push(r),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(problems.join("\n")));
    }
    // Unpack every layer now: a broken image fails the apply, not its instances.
    for r in &resolved {
        let digest = kiln_image::Digest::parse(&r.definition.image).map_err(ApiError::internal)?;
        d.store.unpacked_layers(&digest).map_err(|e| {
            ApiError::bad_request(format!(
                "{}:{}: service.{}.image: {e}",
                request.path, r.spec.image_line, r.spec.name
            ))
        })?;
    }
    let now = now_ms();
    let new: Vec<DesiredService> = resolved
        .iter()
        .map(|r| DesiredService {
            name: r.spec.name.clone(),
            generation: 0,
            def_hash: r.def_hash.clone(),
            definition: r.def_json.clone(),
            image_digest: r.definition.image.clone(),
            version: r.version.clone(),
            replicas: r.spec.replicas,
            updated_ms: now,
        })
        .collect();
    let old = d.db().desired()?;
    let removed: Vec<String> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    let changed: Vec<DesiredService> = new
        .iter()
        .filter(|n| {
            !old.iter().any(|o| {
                o.name == n.name
                    && o.def_hash == n.def_hash
                    && o.replicas == n.replicas
                    && o.version == n.version
            })
        })
        .cloned()
        .collect();
    let definitions: BTreeMap<&str, &str> = resolved
        .iter()
        .map(|r| (r.spec.name.as_str(), r.def_json.as_str()))
        .collect();
    let mut services: Vec<String> = new.iter().map(|n| n.name.clone()).collect();
    services.extend(removed.iter().cloned());
    let routes = check_routes(d, &request.path, &spec)?;
    let rollouts = start_rollouts(d, &resolved, &old, &new)?;
    commit(
        d,
        &new,
        changed,
        &removed,
        Some(routes),
        rollouts,
        &definitions,
        request.dry_run,
        services,
        &request.path,
    )
}

/// Destroys service `name`: it leaves the desired state and its instances stop.
pub(crate) fn destroy(d: &Daemon, name: &str) -> Result<ApplyResponse, ApiError> {
    let _serial = d.apply_lock();
    let old = d.db().desired()?;
    if !old.iter().any(|s| s.name == name) {
        let known: Vec<&str> = old.iter().map(|s| s.name.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "no service `{name}` is deployed{}",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (deployed: {})", known.join(", "))
            }
        )));
    }
    let new: Vec<DesiredService> = old.iter().filter(|s| s.name != name).cloned().collect();
    let removed = vec![name.to_string()];
    // Its routes go with it: nothing would answer them.
    let routes: Vec<(String, String)> = d
        .db()
        .routes()?
        .into_iter()
        .filter(|(_, json)| {
            serde_json::from_str::<kiln_spec::RouteSpec>(json).map_or(true, |r| r.service != name)
        })
        .collect();
    commit(
        d,
        &new,
        Vec::new(),
        &removed,
        Some(routes),
        Vec::new(),
        &BTreeMap::new(),
        false,
        removed.clone(),
        "kiln destroy",
    )
}

/// Plans, checks ports, and (unless `dry_run`) persists the change in one transaction.
#[allow(clippy::too_many_arguments)]
fn commit(
    d: &Daemon,
    new: &[DesiredService],
    changed: Vec<DesiredService>,
    removed: &[String],
    routes: Option<Vec<(String, String)>>,
    rollouts: Vec<(String, crate::rollouts::Tracked)>,
    definitions: &BTreeMap<&str, &str>,
    dry_run: bool,
    services: Vec<String>,
    source: &str,
) -> Result<ApplyResponse, ApiError> {
    let rows = d.db().instances()?;
    let actual = actual_instances(d, &rows);
    let plan_input: Vec<_> = new.iter().map(to_deploy).collect();
    let reasons = |service: &str, old_hash: &str| -> String {
        let old = d.definition(old_hash);
        let new = definitions.get(service);
        match (old, new) {
            (Some(old), Some(new)) => {
                let old = serde_json::to_value(&*old).unwrap_or_default();
                let new: serde_json::Value = serde_json::from_str(new).unwrap_or_default();
                let paths = diff_definitions(&old, &new);
                if paths.is_empty() {
                    "definition changed".to_string()
                } else {
                    format!("{} changed", paths.join(", "))
                }
            }
            _ => "definition changed".to_string(),
        }
    };
    let plan: Plan = preview(&plan_input, &actual, &reasons);
    let needed = plan
        .changes
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                kiln_deploy::plan::ChangeKind::Create | kiln_deploy::plan::ChangeKind::Replace
            )
        })
        .count();
    let used: HashSet<u16> = rows.iter().map(|r| r.port).collect();
    let free = ports::free(d.config.ports, &used);
    if needed > free {
        return Err(ApiError::conflict(format!(
            "port range {}-{} is exhausted: the plan starts {needed} new instance(s) but only {free} port(s) are free \
             (replaced instances keep their ports until their replacements are ready); \
             give `kiln daemon --ports` a wider range",
            d.config.ports.0, d.config.ports.1
        )));
    }
    let events_after = d.db().last_event_seq()?;
    let routes_changed = match &routes {
        Some(routes) => *routes != d.db().routes()?,
        None => false,
    };
    if dry_run || (changed.is_empty() && removed.is_empty() && !routes_changed) {
        return Ok(ApplyResponse {
            plan,
            generation: d.db().generation()?,
            events_after,
            services,
            rollouts: rollouts.into_iter().map(|(name, _)| name).collect(),
        });
    }
    let summary = summarize(&plan, &changed, removed);
    let message = format!("{source}: {summary}");
    let mut events: Vec<NewEvent<'_>> = vec![new_event("apply", None, None, &message)];
    let destroyed: Vec<String> = removed
        .iter()
        .map(|n| format!("{n} removed from the desired state"))
        .collect();
    for (name, why) in removed.iter().zip(&destroyed) {
        events.push(new_event("service.destroyed", Some(name), None, why));
    }
    // Pinned before the desired state names them: from here on no `kiln rmi` can
    // collect an image an instance is about to start from.
    let images = new
        .iter()
        .map(|s| s.image_digest.clone())
        .chain(rows.iter().map(|r| r.image_digest.clone()))
        .collect();
    d.pin(images)
        .map_err(|e| ApiError::internal(format!("pin images: {e}")))?;
    let rollout_rows: Vec<(String, String)> = rollouts
        .iter()
        .map(|(name, t)| serde_json::to_string(t).map(|json| (name.clone(), json)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let is_start = |t: &crate::rollouts::Tracked| {
        !t.done && t.rollout.phase != kiln_deploy::rollout::Phase::Aborted
    };
    let started: Vec<(&String, String)> = rollouts
        .iter()
        .filter(|(_, t)| is_start(t))
        .map(|(name, t)| {
            let kind = t.rollout.params.kind;
            (
                name,
                format!("{name}: {kind:?} rollout to {}", t.canary.label()),
            )
        })
        .collect();
    for (_, message) in &started {
        events.push(new_event("rollout.started", None, None, message));
    }
    let started_names: Vec<String> = started.iter().map(|(name, _)| (*name).clone()).collect();
    let generation = {
        let mut db = d.db();
        // Definitions are written in the desired state's own transaction. Every service
        // of the new desired state is stamped with the new generation, changed or not,
        // so a client waits for exactly the services it applied.
        db.put_desired_with_routes(new, removed, routes.as_deref(), &rollout_rows, &events)?
    };
    {
        // A new definition starts with a clean slate: the old one's crash loop is not
        // held against it.
        let mut live = d.live();
        for (name, t) in rollouts {
            live.baselines.remove(&name);
            live.rollouts.insert(name, t);
        }
        for service in &changed {
            live.backoff.remove(&service.name);
            live.last_failure.remove(&service.name);
            live.failure_counted.remove(&service.name);
        }
    }
    Ok(ApplyResponse {
        plan,
        generation,
        events_after,
        services,
        rollouts: started_names,
    })
}

fn summarize(plan: &Plan, changed: &[DesiredService], removed: &[String]) -> String {
    use kiln_deploy::plan::ChangeKind;
    let count = |k: ChangeKind| plan.changes.iter().filter(|c| c.action == k).count();
    let names: Vec<String> = changed
        .iter()
        .map(|s| format!("{} {}×{}", s.name, s.version, s.replicas))
        .chain(removed.iter().map(|n| format!("-{n}")))
        .collect();
    format!(
        "{} ({} to create, {} to replace, {} to destroy)",
        names.join(", "),
        count(ChangeKind::Create),
        count(ChangeKind::Replace),
        count(ChangeKind::Destroy)
    )
}

/// The spec's routes as stored (name, JSON), after checking what the proxy would refuse:
/// a listen address the proxy does not hold already must be free to bind, and TLS files
/// must be readable. Errors name `path:LINE`.
fn check_routes(
    d: &Daemon,
    path: &str,
    spec: &kiln_spec::Spec,
) -> Result<Vec<(String, String)>, ApiError> {
    let held: HashSet<String> = d
        .live()
        .confirmed
        .as_ref()
        .map(|t| t.routes.iter().map(|r| r.listen.clone()).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for route in spec.routes.values() {
        let at = format!("{path}:{}: route.{}", route.line, route.name);
        let listen = route.listen.to_string();
        if !held.contains(&listen)
            && let Err(e) = std::net::TcpListener::bind(route.listen)
        {
            problems.push(format!("{at}.listen: cannot listen on {listen}: {e}"));
        }
        if let Some(tls) = &route.tls {
            // Loaded as the proxy will: a table it refuses would hold up every stop.
            let files = kiln_proxy::Tls {
                cert: tls.cert.clone(),
                key: tls.key.clone(),
            };
            if let Err(e) = kiln_proxy::check_tls(&files) {
                problems.push(format!("{at}.tls: {e}"));
            }
        }
        match serde_json::to_string(route) {
            Ok(json) => out.push((route.name.clone(), json)),
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::bad_request(problems.join("\n")))
    }
}

/// The rollouts this apply starts: services whose definition changes while an older one
/// serves, and whose strategy asks for one.
fn start_rollouts(
    d: &Daemon,
    resolved: &[Resolved],
    old: &[DesiredService],
    new: &[DesiredService],
) -> Result<Vec<(String, crate::rollouts::Tracked)>, ApiError> {
    let rows = d.db().instances()?;
    let existing = crate::rollouts::all(d);
    let mut out = Vec::new();
    for r in resolved {
        let name = &r.spec.name;
        let (Some(before), Some(after)) = (
            old.iter().find(|s| &s.name == name),
            new.iter().find(|s| &s.name == name),
        ) else {
            continue;
        };
        let current = existing.get(name);
        let stable_hash = match current {
            Some(t) if !t.done => t.stable.def_hash.as_str(),
            _ => before.def_hash.as_str(),
        };
        let serving = rows
            .iter()
            .any(|row| &row.service == name && row.def_hash == stable_hash);
        if let Some(t) = crate::rollouts::start(&r.spec.strategy, before, after, current, serving) {
            out.push((name.clone(), t));
            continue;
        }
        // No new rollout, but one in progress must not go on toward a version that is
        // no longer wanted.
        let Some(t) = current.filter(|t| !t.done) else {
            continue;
        };
        if after.def_hash == t.canary.def_hash {
            continue;
        }
        let mut ended = t.clone();
        if after.def_hash == t.stable.def_hash {
            // Back to the stable version: the same as `kiln rollout abort`.
            if ended
                .rollout
                .command(kiln_deploy::rollout::Command::Abort, crate::clock::now_ms())
                .is_err()
            {
                ended.done = true;
            }
        } else {
            ended.done = true;
            ended.rollout.reason = format!(
                "{}; ended: replaced by a change without a rollout",
                t.rollout.reason
            );
        }
        out.push((name.clone(), ended));
    }
    Ok(out)
}
