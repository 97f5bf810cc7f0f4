//! Randomized rollouts: [`reconcile`]'s actions applied step after step to a
//! simulated set of instances, checking its invariants at every step.
//!
//! Each case starts from either a converged old deployment or a random mess,
//! sometimes changes the spec mid-way, sometimes kills instances, sometimes caps
//! creates with [`Limits`]. Creates become `Creating`, then `Running` and ready a
//! few steps later (as do instances that start out running but not ready); stops
//! become `Stopping`, then vanish a step or two later.

use std::collections::BTreeMap;

use super::*;
use crate::plan::Limits;

/// xorshift64*: enough randomness for a simulation, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SERVICES: [&str; 4] = ["api", "db", "web", "worker"];
const HASHES: [&str; 3] = ["h0", "h1", "h2"];

struct Sim {
    rng: Rng,
    desired: Vec<DesiredService>,
    instances: Vec<ActualInstance>,
    /// Steps left before a starting instance runs and is ready, by id.
    starting: BTreeMap<String, u64>,
    next_id: u64,
    now: i64,
    /// Per service: no more non-stopping instances than this (invariant c).
    bounds: BTreeMap<String, usize>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        Sim {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            desired: Vec::new(),
            instances: Vec::new(),
            starting: BTreeMap::new(),
            next_id: 0,
            now: 1000,
            bounds: BTreeMap::new(),
        }
    }

    fn add(&mut self, service: &str, def_hash: &str, phase: Phase, ready: bool) -> String {
        self.next_id += 1;
        let id = format!("{service}-{:04}", self.next_id);
        // Not ready yet: it passes readiness a few steps from now.
        if phase != Phase::Stopping && !ready {
            let delay = 1 + self.rng.below(3);
            self.starting.insert(id.clone(), delay);
        }
        self.instances.push(ActualInstance {
            id: id.clone(),
            service: service.to_string(),
            def_hash: def_hash.to_string(),
            phase,
            ready,
            failed: None,
            // Some instances share a creation time, to exercise the tie on id.
            created_ms: self.now - self.rng.below(2) as i64,
        });
        id
    }

    /// A converged deployment of the old definitions, all serving.
    fn converged_start(&mut self) {
        for service in SERVICES {
            for _ in 0..self.rng.below(5) {
                self.add(service, "h0", Phase::Running, true);
            }
        }
    }

    /// Anything: any definition, phase, readiness, failures.
    fn messy_start(&mut self) {
        for service in SERVICES {
            for _ in 0..self.rng.below(6) {
                let def_hash = *self.rng.pick(&HASHES);
                let phase = *self
                    .rng
                    .pick(&[Phase::Creating, Phase::Running, Phase::Stopping]);
                let ready = phase == Phase::Running && self.rng.chance(70);
                let id = self.add(service, def_hash, phase, ready);
                if self.rng.chance(15) {
                    self.fail(&id);
                }
            }
        }
    }

    fn random_desired(&mut self, def_hash: &str) {
        self.desired.clear();
        for service in SERVICES {
            if self.rng.chance(80) {
                self.desired.push(DesiredService {
                    name: service.to_string(),
                    def_hash: def_hash.to_string(),
                    replicas: self.rng.below(6) as u32,
                });
            }
        }
        self.reset_bounds();
    }

    /// Changes one service's definition and replicas, as a new `kiln apply` would.
    fn change_one(&mut self, def_hash: &str) {
        if self.desired.is_empty() {
            return;
        }
        let n = self.rng.below(self.desired.len() as u64) as usize;
        self.desired[n].def_hash = def_hash.to_string();
        self.desired[n].replicas = self.rng.below(6) as u32;
        self.reset_bounds();
    }

    /// Invariant (c) from now on: `replicas` current instances plus the instances
    /// alive now that are not current (they are all outdated or failed).
    fn reset_bounds(&mut self) {
        self.bounds.clear();
        for service in SERVICES {
            let replicas = self.wanted(service).map_or(0, |d| d.replicas as usize);
            let def_hash = self.wanted(service).map(|d| d.def_hash.clone());
            let others = self
                .live(service)
                .filter(|i| i.failed.is_some() || Some(&i.def_hash) != def_hash.as_ref())
                .count();
            // A messy start may hold more current instances than wanted: the
            // first pass stops them before the first check.
            self.bounds.insert(service.to_string(), replicas + others);
        }
    }

    fn wanted(&self, service: &str) -> Option<&DesiredService> {
        self.desired.iter().find(|d| d.name == service)
    }

    fn live<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a ActualInstance> {
        self.instances
            .iter()
            .filter(move |i| i.service == service && i.phase != Phase::Stopping)
    }

    fn serving(&self, service: &str) -> usize {
        self.live(service)
            .filter(|i| i.failed.is_none() && i.serving())
            .count()
    }

    fn fail(&mut self, id: &str) {
        if let Some(instance) = self.instances.iter_mut().find(|i| i.id == id) {
            instance.failed = Some("exited with status 1".to_string());
            instance.ready = false;
            instance.phase = Phase::Running;
            self.starting.remove(id);
        }
    }

    /// Checks every action against the state it was planned from, then applies it.
    fn apply(&mut self, actions: &[Action]) {
        let mut stopped = Vec::new();
        let mut replaced = Vec::new();
        for action in actions {
            match action {
                Action::Stop { id, service, .. } => {
                    assert!(!stopped.contains(id), "{id} stopped twice");
                    let instance = self.instances.iter().find(|i| &i.id == id);
                    let instance = instance.unwrap_or_else(|| panic!("stop of unknown {id}"));
                    assert_eq!(&instance.service, service);
                    assert_ne!(instance.phase, Phase::Stopping, "{id} already stopping");
                    stopped.push(id.clone());
                }
                Action::Create {
                    service, replaces, ..
                } => {
                    let desired = self.wanted(service);
                    let desired =
                        desired.unwrap_or_else(|| panic!("create of undesired {service}"));
                    let def_hash = desired.def_hash.clone();
                    if let Some(id) = replaces {
                        assert!(!replaced.contains(id), "{id} replaced twice");
                        let old = self.live(service).find(|i| &i.id == id);
                        let old = old.unwrap_or_else(|| panic!("replaces unknown {id}"));
                        assert!(old.failed.is_some() || old.def_hash != def_hash);
                        replaced.push(id.clone());
                    }
                    self.add(service, &def_hash, Phase::Creating, false);
                }
            }
        }
        for instance in &mut self.instances {
            if stopped.contains(&instance.id) {
                instance.phase = Phase::Stopping;
                instance.ready = false;
                self.starting.remove(&instance.id);
            }
        }
    }

    /// Time passes: stopping instances may vanish, starting ones may become ready,
    /// and with `chaos` some instances die.
    fn tick(&mut self, chaos: bool) {
        self.now += 1000;
        let mut vanished = Vec::new();
        for instance in &self.instances {
            if instance.phase == Phase::Stopping && self.rng.chance(50) {
                vanished.push(instance.id.clone());
            }
        }
        self.instances.retain(|i| !vanished.contains(&i.id));
        for id in &vanished {
            self.starting.remove(id);
        }
        let mut started = Vec::new();
        for (id, steps) in &mut self.starting {
            *steps -= 1;
            if *steps == 0 {
                started.push(id.clone());
            }
        }
        for id in started {
            self.starting.remove(&id);
            if let Some(instance) = self.instances.iter_mut().find(|i| i.id == id) {
                instance.phase = Phase::Running;
                instance.ready = true;
            }
        }
        if chaos && !self.instances.is_empty() && self.rng.chance(40) {
            let id = self.rng.pick(&self.instances).id.clone();
            if self
                .instances
                .iter()
                .any(|i| i.id == id && i.phase != Phase::Stopping)
            {
                self.fail(&id);
            }
        }
    }

    /// Invariant (a): exactly `replicas` current serving instances per desired
    /// service, nothing else alive.
    fn converged(&self) -> bool {
        SERVICES.iter().all(|&service| {
            let mut live = self.live(service);
            match self.wanted(service) {
                None => live.next().is_none(),
                Some(d) => {
                    let live: Vec<_> = live.collect();
                    live.len() == d.replicas as usize
                        && live
                            .iter()
                            .all(|i| i.def_hash == d.def_hash && i.failed.is_none() && i.serving())
                }
            }
        })
    }
}

/// Runs one case; returns the steps it took to converge.
fn run(seed: u64) -> usize {
    let mut sim = Sim::new(seed);
    let messy = sim.rng.chance(40);
    match messy {
        true => sim.messy_start(),
        false => sim.converged_start(),
    }
    let first_hash = match messy {
        true => *sim.rng.pick(&HASHES),
        false => "h1",
    };
    sim.random_desired(first_hash);
    // Before anything changes, what serves: invariant (b) keeps at least this
    // much (up to the replicas) when nothing dies.
    let initial: BTreeMap<&str, usize> = SERVICES.iter().map(|&s| (s, sim.serving(s))).collect();
    let chaos_steps = match sim.rng.chance(40) {
        true => 1 + sim.rng.below(10) as usize,
        false => 0,
    };
    let change_at = match sim.rng.chance(30) {
        true => Some(1 + sim.rng.below(8) as usize),
        false => None,
    };
    let limits = match sim.rng.chance(30) {
        true => Limits {
            max_creates: 1 + sim.rng.below(4) as usize,
        },
        false => Limits {
            max_creates: usize::MAX,
        },
    };
    let quiet_from = chaos_steps.max(change_at.unwrap_or(0));
    let max_steps = quiet_from + 80;

    for step in 0..max_steps {
        if change_at == Some(step) {
            sim.change_one("h9");
        }
        if step >= quiet_from && sim.converged() {
            // Invariant (d): converged means nothing to do.
            let actions = reconcile(&sim.desired, &sim.instances);
            assert!(actions.is_empty(), "seed {seed}: converged yet {actions:?}");
            return step;
        }
        let before: BTreeMap<&str, usize> = SERVICES.iter().map(|&s| (s, sim.serving(s))).collect();
        let actions = limits.apply(reconcile(&sim.desired, &sim.instances));
        sim.apply(&actions);
        for service in SERVICES {
            let replicas = sim.wanted(service).map_or(0, |d| d.replicas as usize);
            let serving = sim.serving(service);
            // Invariant (b), step by step: a pass never takes serving below
            // what served before it, up to the replicas.
            assert!(
                serving >= before[service].min(replicas),
                "seed {seed} step {step}: {service} serves {serving}, served {}",
                before[service]
            );
            // Invariant (b) as a whole: a change of a fully serving deployment
            // never serves less than the replicas (or than it had).
            if !messy && chaos_steps == 0 && change_at.is_none() {
                assert!(
                    serving >= initial[service].min(replicas),
                    "seed {seed} step {step}: {service} serves {serving} < {}",
                    initial[service].min(replicas)
                );
            }
            // Invariant (c): no leak.
            let live = sim.live(service).count();
            assert!(
                live <= sim.bounds[service],
                "seed {seed} step {step}: {service} has {live} > {}",
                sim.bounds[service]
            );
        }
        sim.tick(step < chaos_steps);
    }
    panic!(
        "seed {seed}: no convergence in {max_steps} steps: {:?}",
        sim.instances
    );
}

#[test]
fn random_rollouts_converge_without_losing_capacity_or_leaking() {
    let mut slowest = 0;
    for seed in 0..5000 {
        slowest = slowest.max(run(seed));
    }
    assert!(
        slowest > 3,
        "the cases are too easy: slowest took {slowest} steps"
    );
}

#[test]
fn a_converged_deployment_is_left_alone_step_after_step() {
    let mut sim = Sim::new(7);
    sim.converged_start();
    sim.desired = SERVICES
        .iter()
        .map(|&s| DesiredService {
            name: s.to_string(),
            def_hash: "h0".to_string(),
            replicas: sim.live(s).count() as u32,
        })
        .collect();
    for _ in 0..5 {
        assert!(sim.converged());
        assert!(reconcile(&sim.desired, &sim.instances).is_empty());
        sim.tick(false);
    }
}
