//! Randomized rollouts: thousands of rollouts driven through the daemon's loop against
//! a small simulated world, checking the invariants at every tick.
//!
//! The world: stable and new instances that become ready after random delays, a proxy
//! that applies pushed tables in order after random delays (and is reported confirmed
//! only with nothing in flight), analysis windows from a random request rate with
//! random error spikes or a bad new version, random commands, and new instances that
//! fail. In some runs the proxy stalls until the world settles. The daemon is
//! deliberately naive: it creates instances at once and stops the extra ones (not-ready
//! first) at once or a few ticks later (while they still run and serve, and are kept
//! if the targets want them again), without checking the proxy, trusting the rollout
//! to sequence traffic. After a random tick
//! the delays stop, paused rollouts are resumed and manual pauses promoted: every
//! rollout must then finish within a bounded number of ticks.

use std::collections::VecDeque;

use super::*;
use crate::analysis::evaluate;

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

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const CASES: u64 = 3000;
/// Ticks a rollout may take to finish once the world stops delaying it.
const SETTLE_TICKS: usize = 2000;

/// A simulated instance.
#[derive(Clone, Copy)]
struct Instance {
    /// Ticks until ready (0: ready).
    ready_in: u64,
    /// Ticks until the daemon stops it; it runs and serves until then.
    stop_in: Option<u64>,
}

struct World {
    rng: Rng,
    now: i64,
    stable: Vec<Instance>,
    canary: Vec<Instance>,
    /// Tables pushed, not applied yet: (canary weight, ticks left).
    in_flight: VecDeque<(u32, u64)>,
    applied: u32,
    pushed: u32,
    delays: bool,
    /// The proxy applies nothing until the world settles.
    stalled: bool,
    failing: bool,
    /// The new version fails 30 % of its requests.
    bad: bool,
    requests_per_s: u64,
}

impl World {
    fn new(rng: Rng, replicas: u32) -> World {
        let mut world = World {
            rng,
            now: 1_000_000,
            stable: vec![
                Instance {
                    ready_in: 0,
                    stop_in: None,
                };
                replicas as usize
            ],
            canary: Vec::new(),
            in_flight: VecDeque::new(),
            applied: 0,
            pushed: 0,
            delays: true,
            stalled: false,
            failing: false,
            bad: false,
            requests_per_s: 0,
        };
        world.bad = world.rng.chance(15);
        world.stalled = world.rng.chance(10);
        world.requests_per_s = world.rng.pick(&[0, 5, 20, 100, 500]);
        world
    }

    fn delay(&mut self, max: u64) -> u64 {
        match self.delays {
            true => self.rng.below(max + 1),
            false => 0,
        }
    }

    /// Time passes: instances get ready, the proxy applies tables in order.
    fn advance(&mut self) {
        self.now += match self.delays {
            true => 100 + self.rng.below(5000) as i64,
            false => 1000,
        };
        for list in [&mut self.stable, &mut self.canary] {
            for instance in list.iter_mut() {
                instance.ready_in = instance.ready_in.saturating_sub(1);
                instance.stop_in = instance.stop_in.map(|left| left.saturating_sub(1));
            }
            list.retain(|instance| instance.stop_in != Some(0));
        }
        if self.stalled && self.delays {
            return;
        }
        for table in &mut self.in_flight {
            table.1 = table.1.saturating_sub(1);
        }
        while let Some(&(weight, 0)) = self.in_flight.front() {
            self.applied = weight;
            self.in_flight.pop_front();
        }
    }

    fn ready(instances: &[Instance]) -> u32 {
        instances.iter().filter(|i| i.ready_in == 0).count() as u32
    }

    fn observe(&mut self, rollout: &Rollout) -> Observation {
        let (canary_window, stable_window) = match rollout.step_started_ms {
            Some(since) => self.windows(since),
            None => (Window::default(), Window::default()),
        };
        Observation {
            now_ms: self.now,
            stable_ready: World::ready(&self.stable),
            canary_ready: World::ready(&self.canary),
            stable_running: self.stable.len() as u32,
            canary_running: self.canary.len() as u32,
            confirmed_weight: self.in_flight.is_empty().then_some(self.applied),
            canary_window,
            stable_window,
            canary_failed: self.failing,
        }
    }

    fn windows(&mut self, since: i64) -> (Window, Window) {
        let secs = u64::try_from(self.now - since).unwrap_or(0) / 1000;
        let total = self.requests_per_s * secs;
        let share = u64::from(self.applied);
        // A few requests are pinned to the new version by header at any weight.
        let new = total * share / 100 + 5 * secs;
        let old = total * (100 - share) / 100;
        let spike = self.delays && self.rng.chance(4);
        let errors = match (self.bad, spike) {
            (true, _) => new * 3 / 10,
            (false, true) => new / 5,
            (false, false) if self.delays => new * self.rng.below(4) / 1000,
            (false, false) => 0,
        };
        let slow = self.delays && self.rng.chance(3);
        let canary = Window {
            requests: new,
            errors,
            p99_ms: (new > 0).then_some(if slow { 2000 } else { 100 }),
        };
        let stable = Window {
            requests: old,
            errors: 0,
            p99_ms: (old > 0).then_some(100),
        };
        (canary, stable)
    }

    /// The naive daemon: counts match the targets, extra instances stop (not-ready
    /// ones first) now or a few ticks later; a changed weight is pushed as a new table.
    fn apply(&mut self, targets: Targets) {
        for version in [true, false] {
            let wanted = match version {
                true => targets.stable,
                false => targets.canary,
            } as usize;
            let live = |list: &Vec<Instance>| list.iter().filter(|i| i.stop_in.is_none()).count();
            while live(self.list(version)) < wanted {
                // An instance not stopped yet is kept rather than replaced.
                let list = self.list(version);
                if let Some(kept) = (0..list.len())
                    .filter(|i| list[*i].stop_in.is_some())
                    .min_by_key(|i| list[*i].ready_in)
                {
                    list[kept].stop_in = None;
                    continue;
                }
                let ready_in = self.delay(6);
                self.list(version).push(Instance {
                    ready_in,
                    stop_in: None,
                });
            }
            while live(self.list(version)) > wanted {
                let lag = self.delay(3);
                let list = self.list(version);
                let Some(slowest) = (0..list.len())
                    .filter(|i| list[*i].stop_in.is_none())
                    .max_by_key(|i| list[*i].ready_in)
                else {
                    break;
                };
                match lag {
                    0 => {
                        list.remove(slowest);
                    }
                    lag => list[slowest].stop_in = Some(lag),
                }
            }
        }
        if targets.canary_weight != self.pushed {
            let delay = self.delay(5);
            self.in_flight.push_back((targets.canary_weight, delay));
            self.pushed = targets.canary_weight;
        }
    }

    fn list(&mut self, stable: bool) -> &mut Vec<Instance> {
        match stable {
            true => &mut self.stable,
            false => &mut self.canary,
        }
    }
}

fn random_params(rng: &mut Rng) -> Params {
    let kind = rng.pick(&[Kind::Canary, Kind::BlueGreen, Kind::Rolling]);
    let mut steps: Vec<u32> = [0, 1, 5, 10, 20, 25, 33, 50, 75, 100]
        .into_iter()
        .filter(|_| rng.chance(35))
        .collect();
    if rng.chance(10) {
        steps.reverse();
    }
    let analysis = rng.chance(70).then(|| Thresholds {
        max_error_rate_ppm: rng.chance(80).then(|| rng.pick(&[1000, 10_000, 50_000])),
        max_p99_ms: rng.chance(40).then(|| rng.pick(&[200, 500, 1000])),
        max_p99_ratio_permille: rng.chance(40).then(|| rng.pick(&[1200, 1500, 3000])),
        min_requests: rng.below(61),
    });
    Params {
        kind,
        replicas: if rng.chance(3) {
            0
        } else {
            1 + rng.below(6) as u32
        },
        steps,
        pause_ms: match rng.chance(20) {
            true => None,
            false => Some(rng.pick(&[0, 0, 1000, 5000, 10_000])),
        },
        rollback_window_ms: rng.below(20_001),
        max_surge: rng.below(4) as u32,
        max_unavailable: rng.below(4) as u32,
        progress_deadline_ms: 5000 + rng.below(55_001),
        analysis,
    }
}

/// Would the analysis of this observation fail, whatever the rollout drops from it?
fn surely_fails(rollout: &Rollout, obs: &Observation) -> bool {
    let (Some(t), Some(_)) = (&rollout.params.analysis, rollout.step_started_ms) else {
        return false;
    };
    if rollout.is_finished() || rollout.phase == Phase::Aborted {
        return false;
    }
    let t = Thresholds {
        max_p99_ratio_permille: None,
        ..t.clone()
    };
    evaluate(&obs.canary_window, &obs.stable_window, &t).is_fail()
}

/// Random commands while the world is unsettled; afterwards only what unblocks.
fn commands(rng: &mut Rng, rollout: &Rollout, settled: bool) -> Vec<Command> {
    if settled {
        return match (rollout.phase, rollout.reason.starts_with("paused by")) {
            (Phase::Paused, true) => vec![Command::Resume],
            (Phase::Paused, false) => vec![Command::Promote],
            _ => vec![],
        };
    }
    let mut cmds = Vec::new();
    for (cmd, percent) in [
        (Command::Pause, 3),
        (Command::Resume, 4),
        (Command::Promote, 4),
        (Command::Abort, 1),
    ] {
        if rng.chance(percent) {
            cmds.push(cmd);
        }
    }
    cmds
}

/// Everything one run checks, with what it needs to remember.
struct Checker {
    params: Params,
    prev: Targets,
    prev_phase: Phase,
    prev_step: usize,
    prev_step_started: Option<i64>,
    failed: bool,
    log: Vec<String>,
}

impl Checker {
    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.log.join("\n"));
    }

    fn check(
        &mut self,
        r: &Rollout,
        obs: &Observation,
        t: Targets,
        should_abort: bool,
        promoted: bool,
    ) {
        let p = &self.params;
        let replicas = p.replicas;
        self.log.push(format!(
            "t={} obs s{}/{} c{}/{} conf {:?} -> {:?} {:?} w{} {t:?} | {}",
            obs.now_ms,
            obs.stable_ready,
            obs.stable_running,
            obs.canary_ready,
            obs.canary_running,
            obs.confirmed_weight,
            r.phase,
            r.step,
            r.weight,
            r.reason
        ));
        if replicas > 0 {
            // (1) No traffic to a version without a ready instance.
            if t.canary_weight > 0 && obs.canary_ready == 0 {
                self.fail("(1) weight on a new version with no ready instance");
            }
            if t.canary_weight < 100 && obs.stable_ready == 0 {
                self.fail("(1) traffic left on a stable version with no ready instance");
            }
        }
        // (2) The weight only rises, except on abort.
        if r.phase != Phase::Aborted && t.canary_weight < self.prev.canary_weight {
            self.fail("(2) the weight went down while progressing");
        }
        // (3) Stable instances stay until completion, and after an abort.
        let full_stable = match r.phase {
            Phase::Completed => false,
            Phase::Aborted => true,
            _ => p.kind != Kind::Rolling,
        };
        if full_stable && t.stable != replicas {
            self.fail("(3) stable instances reduced");
        }
        // (4) A version loses its last instance only once the proxy confirmed it
        // gets no traffic.
        if self.prev.canary > 0 && t.canary == 0 && obs.confirmed_weight != Some(0) {
            self.fail("(4) new instances dropped before 0 % was confirmed");
        }
        if self.prev.stable > 0 && t.stable == 0 && obs.confirmed_weight != Some(100) {
            self.fail("(4) stable instances dropped before 100 % was confirmed");
        }
        // (5) A reason always, a deadline while progressing.
        if r.reason.is_empty() {
            self.fail("(5) empty reason");
        }
        if r.phase == Phase::Progressing {
            match r.deadline_ms() {
                None => self.fail("(5) progressing without a deadline"),
                Some(deadline) if deadline < obs.now_ms => {
                    self.fail("(5) a deadline passed without the rollout acting on it")
                }
                Some(_) => {}
            }
        }
        // (7) A failed analysis aborts with the weight at 0, and never completes.
        if should_abort {
            self.failed = true;
            // The weight waits only when no stable instance is ready (a rolling
            // update that had stopped them all).
            if r.phase != Phase::Aborted || (t.canary_weight != 0 && obs.stable_ready > 0) {
                self.fail("(7) a failed analysis did not abort");
            }
        }
        if self.failed && r.phase == Phase::Completed {
            self.fail("(7) completed after a failed analysis");
        }
        // Pauses and rollback windows are never cut short but by a promote.
        let started = self
            .prev_step_started
            .or(r.step_started_ms)
            .unwrap_or(i64::MAX);
        let waited = obs.now_ms.saturating_sub(started);
        let completed_now = r.phase == Phase::Completed && self.prev_phase != Phase::Completed;
        if !promoted && p.kind == Kind::Canary && (r.step > self.prev_step || completed_now) {
            match p.pause_ms {
                None => self.fail("a manual step ended without a promote"),
                Some(pause) if waited < pause as i64 => self.fail("a step's pause was cut short"),
                Some(_) => {}
            }
        }
        if !promoted
            && p.kind == Kind::BlueGreen
            && completed_now
            && waited < p.rollback_window_ms as i64
        {
            self.fail("the rollback window was cut short");
        }
        self.prev_step = r.step;
        self.prev_step_started = r.step_started_ms;
        let terminal = [Phase::Aborted, Phase::Completed];
        if terminal.contains(&self.prev_phase) && r.phase != self.prev_phase {
            self.fail("a finished phase changed");
        }
        self.prev = t;
        self.prev_phase = r.phase;
    }

    /// Rolling bounds on the world once the daemon applied the targets.
    fn check_world(&self, r: &Rollout, world: &World) {
        let (applied, stable, canary) = (
            world.applied,
            World::ready(&world.stable),
            World::ready(&world.canary),
        );
        if self.params.replicas > 0 {
            if applied > 0 && canary == 0 {
                self.fail("(1) the proxy sends traffic to no new instance");
            }
            if applied < 100 && stable == 0 {
                self.fail("(1) the proxy sends traffic to no stable instance");
            }
        }
        let p = &r.params;
        let progressing = matches!(r.phase, Phase::Progressing | Phase::Paused);
        if p.kind == Kind::Rolling && progressing {
            if stable + canary < p.replicas - p.max_unavailable {
                self.fail("(3) rolling: fewer ready than replicas - max_unavailable");
            }
            let running = world.stable.len() + world.canary.len();
            if running > (p.replicas + p.max_surge) as usize {
                self.fail("(3) rolling: more running than replicas + max_surge");
            }
        }
    }
}

/// Serializes and deserializes; the copy must equal the original.
fn round_trip(r: &Rollout) -> Rollout {
    let json = serde_json::to_string(r).unwrap();
    let copy: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(&copy, r, "(8) serde round trip changed the rollout");
    copy
}

fn run(seed: u64) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let params = random_params(&mut rng);
    let settle_at = rng.below(200) as usize;
    let undo = rng.chance(10);
    let world_rng = Rng(rng.next() | 1);
    let mut world = World::new(world_rng, params.replicas);
    let mut r = match undo {
        true => Rollout::undo("web", params, "v2", "v1", world.now),
        false => Rollout::new("web", params, "v1", "v2", world.now),
    };
    let mut checker = Checker {
        params: r.params.clone(),
        prev: r.targets(),
        prev_phase: r.phase,
        prev_step: r.step,
        prev_step_started: r.step_started_ms,
        failed: false,
        log: vec![format!("seed {seed}: {:?}", r.params)],
    };
    world.apply(r.targets());
    for tick in 0..settle_at + SETTLE_TICKS {
        let settled = tick >= settle_at;
        world.delays = !settled;
        if !settled && !world.failing && world.rng.chance(1) {
            world.failing = true;
        }
        world.advance();

        let mut promoted = false;
        for cmd in commands(&mut rng, &r, settled) {
            let mut twin = round_trip(&r);
            let result = r.command(cmd, world.now);
            assert_eq!(twin.command(cmd, world.now), result);
            assert_eq!(twin, r, "(8) a command diverged after a round trip");
            checker.log.push(format!("{cmd:?} -> {result:?}"));
            promoted |= cmd == Command::Promote && result.is_ok();
            if settled && result.is_err() {
                checker.fail("a settling command was refused");
            }
        }

        let obs = world.observe(&r);
        let should_abort = surely_fails(&r, &obs) || (obs.canary_failed && !r.is_finished());
        let mut twin = round_trip(&r);
        let targets = r.tick(&obs);
        assert_eq!(twin.tick(&obs), targets);
        assert_eq!(twin, r, "(8) a tick diverged after a round trip");
        assert_eq!(r.targets(), targets);
        checker.check(&r, &obs, targets, should_abort, promoted);

        world.apply(targets);
        checker.check_world(&r, &world);
        if r.is_finished() {
            return tick;
        }
    }
    checker.fail("(6) not finished long after the world settled");
}

#[test]
fn random_rollouts_keep_every_invariant() {
    let mut ticks = Vec::new();
    for seed in 0..CASES {
        ticks.push(run(seed));
    }
    ticks.sort_unstable();
    // Most runs must get far enough to exercise more than the start.
    assert!(
        ticks[ticks.len() / 2] > 5,
        "median ticks {}",
        ticks[ticks.len() / 2]
    );
}

#[test]
fn random_rollouts_end_both_ways() {
    let (mut completed, mut aborted) = (0, 0);
    for seed in CASES..CASES + 300 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let params = random_params(&mut rng);
        let mut world = World::new(Rng(seed | 1), params.replicas);
        let mut r = Rollout::new("web", params, "v1", "v2", world.now);
        world.delays = false;
        for _ in 0..SETTLE_TICKS {
            world.advance();
            if r.phase == Phase::Paused {
                let _ = r.command(Command::Promote, world.now);
            }
            let obs = world.observe(&r);
            let targets = r.tick(&obs);
            world.apply(targets);
            if r.is_finished() {
                break;
            }
        }
        match r.phase {
            Phase::Completed => completed += 1,
            Phase::Aborted => aborted += 1,
            phase => panic!("seed {seed}: still {phase:?}: {}", r.reason),
        }
    }
    assert!(
        completed > 100 && aborted > 20,
        "{completed} completed, {aborted} aborted"
    );
}
