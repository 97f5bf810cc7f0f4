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
    commit(
        d,
        &new,
        changed,
        &removed,
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
    commit(
        d,
        &new,
        Vec::new(),
        &removed,
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
    if dry_run || (changed.is_empty() && removed.is_empty()) {
        return Ok(ApplyResponse {
            plan,
            generation: d.db().generation()?,
            events_after,
            services,
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
    let generation = {
        let mut db = d.db();
        for service in &changed {
            db.put_definition(&service.def_hash, &service.definition)?;
        }
        // Every service of the new desired state is stamped with the new generation,
        // changed or not, so a client waits for exactly the services it applied.
        db.put_desired(new, removed, &events)?
    };
    {
        // A new definition starts with a clean slate: the old one's crash loop is not
        // held against it.
        let mut live = d.live();
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
