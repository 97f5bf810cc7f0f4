//! [`reconcile`]: one pass of the planner. The rules are in the [`plan`](super) docs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::{Action, ActualInstance, DesiredService, Phase};

/// Plans one pass: what to stop and create so that `actual` moves toward `desired`.
pub fn reconcile(desired: &[DesiredService], actual: &[ActualInstance]) -> Vec<Action> {
    let mut live: BTreeMap<&str, Vec<&ActualInstance>> = BTreeMap::new();
    for instance in actual.iter().filter(|i| i.phase != Phase::Stopping) {
        live.entry(&instance.service).or_default().push(instance);
    }
    let mut wanted: BTreeMap<&str, &DesiredService> = BTreeMap::new();
    for service in desired {
        wanted.entry(&service.name).or_insert(service);
    }
    let names: BTreeSet<&str> = live.keys().chain(wanted.keys()).copied().collect();

    let mut pass = Pass::default();
    for name in names {
        let mut instances = live.remove(name).unwrap_or_default();
        instances.sort_by(|a, b| oldest_first(a, b));
        match wanted.get(name) {
            Some(service) => pass.service(service, &instances),
            None => {
                for instance in instances {
                    pass.stops
                        .push(stop(instance, "service removed".to_string()));
                }
            }
        }
    }
    let mut actions = pass.failure_stops;
    actions.extend(pass.creates);
    actions.extend(pass.stops);
    actions
}

/// Orders instances by `created_ms`, then `id`.
pub(crate) fn oldest_first(a: &ActualInstance, b: &ActualInstance) -> Ordering {
    (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id))
}

/// The order in which extra current instances go: not serving first, then newest.
pub(crate) fn first_to_scale_down(a: &ActualInstance, b: &ActualInstance) -> Ordering {
    a.serving()
        .cmp(&b.serving())
        .then_with(|| oldest_first(b, a))
}

/// The actions of one pass, in their three output groups.
#[derive(Default)]
struct Pass {
    failure_stops: Vec<Action>,
    creates: Vec<Action>,
    stops: Vec<Action>,
}

impl Pass {
    /// Plans a desired service; `instances` are not stopping, oldest first.
    fn service(&mut self, service: &DesiredService, instances: &[&ActualInstance]) {
        let mut failed = Vec::new();
        let mut current = Vec::new();
        let mut outdated = Vec::new();
        for &instance in instances {
            match &instance.failed {
                Some(reason) => {
                    self.failure_stops.push(stop(instance, failure(reason)));
                    failed.push(instance);
                }
                None if instance.def_hash == service.def_hash => current.push(instance),
                None => outdated.push(instance),
            }
        }
        self.create(service, instances.is_empty(), &failed, &current, &outdated);
        let serving = self.scale_down(service, &current);
        self.retire(service, serving, &outdated);
    }

    /// Creates what `current` lacks, each paired with what it replaces.
    fn create(
        &mut self,
        service: &DesiredService,
        fresh: bool,
        failed: &[&ActualInstance],
        current: &[&ActualInstance],
        outdated: &[&ActualInstance],
    ) {
        let replicas = service.replicas as usize;
        let missing = replicas.saturating_sub(current.len());
        let failed = failed.iter().map(|i| {
            let reason = failure(i.failed.as_deref().unwrap_or_default());
            (Some(i.id.clone()), format!("replaces {}: {reason}", i.id))
        });
        let uncovered = outdated.iter().skip(current.len());
        let outdated = uncovered.map(|i| (Some(i.id.clone()), "definition changed".to_string()));
        let mut partners = failed.chain(outdated);
        for _ in 0..missing {
            let (replaces, reason) = partners.next().unwrap_or_else(|| {
                let reason = match fresh {
                    true => "desired replicas".to_string(),
                    false => format!("scale up to {replicas}"),
                };
                (None, reason)
            });
            self.creates.push(Action::Create {
                service: service.name.clone(),
                replaces,
                reason,
            });
        }
    }

    /// Stops current instances beyond the replicas; returns how many kept ones serve.
    fn scale_down(&mut self, service: &DesiredService, current: &[&ActualInstance]) -> usize {
        let replicas = service.replicas as usize;
        let extra = current.len().saturating_sub(replicas);
        let mut order = current.to_vec();
        order.sort_by(|a, b| first_to_scale_down(a, b));
        for instance in &order[..extra] {
            self.stops
                .push(stop(instance, format!("scale down to {replicas}")));
        }
        order[extra..].iter().filter(|i| i.serving()).count()
    }

    /// Stops the outdated instances that the serving current ones make surplus.
    fn retire(&mut self, service: &DesiredService, serving: usize, outdated: &[&ActualInstance]) {
        let replicas = service.replicas as usize;
        let surplus = (serving + outdated.len())
            .saturating_sub(replicas)
            .min(outdated.len());
        let idle = outdated.iter().filter(|i| !i.serving());
        let order = idle.chain(outdated.iter().filter(|i| i.serving()));
        for instance in order.take(surplus) {
            let reason = "replaced by a new definition".to_string();
            self.stops.push(stop(instance, reason));
        }
    }
}

fn stop(instance: &ActualInstance, reason: String) -> Action {
    Action::Stop {
        id: instance.id.clone(),
        service: instance.service.clone(),
        reason,
    }
}

/// A failure reason as given, or "failed" when empty.
fn failure(reason: &str) -> String {
    match reason {
        "" => "failed".to_string(),
        reason => reason.to_string(),
    }
}

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
