//! [`preview`]: what `kiln apply` would change, like `terraform plan`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::reconcile::{first_to_scale_down, oldest_first};
use super::{ActualInstance, DesiredService, Phase};

/// The changes that applying a spec would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// By service, then kind (replace, create, destroy), then instance id.
    pub changes: Vec<Change>,
    /// Live instances that already have their desired definition and stay.
    pub unchanged: usize,
}

impl Plan {
    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One change of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: ChangeKind,
    pub service: String,
    /// The instance replaced or destroyed; `None` for a create.
    pub instance: Option<String>,
    pub reason: String,
}

/// What a [`Change`] does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Create,
    Replace,
    Destroy,
}

impl ChangeKind {
    /// The order of kinds in a plan: replace, create, destroy.
    fn rank(self) -> u8 {
        match self {
            ChangeKind::Replace => 0,
            ChangeKind::Create => 1,
            ChangeKind::Destroy => 2,
        }
    }
}

/// The reason of a replace when `reasons` gives none.
const DEFINITION_CHANGED: &str = "definition changed";

/// Previews applying `new` to `actual`.
///
/// For each service of `new`, its live instances (neither stopping nor failed)
/// with the new `def_hash` are unchanged, up to `replicas`; the extras are
/// destroyed ("replicas N → M", N the live instances). Live instances with another
/// `def_hash` are replaced, oldest first, while slots remain, and destroyed beyond
/// them. Missing instances are created: "new service" when the service has no
/// instance at all, else "scale up to N". Every instance of a service not in `new`
/// is destroyed, "service removed from the spec".
///
/// `reasons(service, old_def_hash)` explains a replace (e.g. "env.LOG_LEVEL
/// changed", from [`diff_definitions`](super::diff_definitions)); an empty answer
/// means "definition changed".
pub fn preview(
    new: &[DesiredService],
    actual: &[ActualInstance],
    reasons: &dyn Fn(&str, &str) -> String,
) -> Plan {
    let mut by_service: BTreeMap<&str, Vec<&ActualInstance>> = BTreeMap::new();
    for instance in actual.iter().filter(|i| i.phase != Phase::Stopping) {
        by_service
            .entry(&instance.service)
            .or_default()
            .push(instance);
    }
    let mut plan = Plan {
        changes: Vec::new(),
        unchanged: 0,
    };
    let mut seen = BTreeSet::new();
    for service in new {
        if seen.insert(service.name.as_str()) {
            let instances = by_service.get(service.name.as_str());
            service_changes(
                service,
                instances.map_or(&[], Vec::as_slice),
                reasons,
                &mut plan,
            );
        }
    }
    for (name, instances) in &by_service {
        if !seen.contains(name) {
            for instance in instances {
                let reason = "service removed from the spec".to_string();
                plan.changes
                    .push(change(ChangeKind::Destroy, instance, reason));
            }
        }
    }
    plan.changes.sort_by(|a, b| {
        (&a.service, a.action.rank(), &a.instance).cmp(&(&b.service, b.action.rank(), &b.instance))
    });
    plan
}

/// Adds the changes of one desired service; `instances` are not stopping.
fn service_changes(
    service: &DesiredService,
    instances: &[&ActualInstance],
    reasons: &dyn Fn(&str, &str) -> String,
    plan: &mut Plan,
) {
    let replicas = service.replicas as usize;
    let mut live: Vec<&ActualInstance> = instances
        .iter()
        .copied()
        .filter(|i| i.failed.is_none())
        .collect();
    live.sort_by(|a, b| oldest_first(a, b));
    let resize = format!("replicas {} → {replicas}", live.len());
    let (mut same, other): (Vec<_>, Vec<_>) = live
        .into_iter()
        .partition(|i| i.def_hash == service.def_hash);

    let kept = same.len().min(replicas);
    plan.unchanged += kept;
    same.sort_by(|a, b| first_to_scale_down(a, b));
    for instance in &same[..same.len() - kept] {
        plan.changes
            .push(change(ChangeKind::Destroy, instance, resize.clone()));
    }

    let slots = replicas - kept;
    for (n, instance) in other.iter().enumerate() {
        let next = match n < slots {
            true => {
                let reason = reasons(&service.name, &instance.def_hash);
                let reason = match reason.is_empty() {
                    true => DEFINITION_CHANGED.to_string(),
                    false => reason,
                };
                change(ChangeKind::Replace, instance, reason)
            }
            false => change(ChangeKind::Destroy, instance, resize.clone()),
        };
        plan.changes.push(next);
    }

    let missing = slots - other.len().min(slots);
    let reason = match instances.is_empty() {
        true => "new service".to_string(),
        false => format!("scale up to {replicas}"),
    };
    for _ in 0..missing {
        plan.changes.push(Change {
            action: ChangeKind::Create,
            service: service.name.clone(),
            instance: None,
            reason: reason.clone(),
        });
    }
}

fn change(action: ChangeKind, instance: &ActualInstance, reason: String) -> Change {
    Change {
        action,
        service: instance.service.clone(),
        instance: Some(instance.id.clone()),
        reason,
    }
}

#[cfg(test)]
mod tests;
