//! The state machine's frame: creation, one tick, aborts, completion and clocks.
//! The kind-specific states are in [`steps`](super::steps) and
//! [`rolling`](super::rolling).

use super::text::{duration, elapsed, plus};
use super::{Batch, Kind, Observation, Params, Phase, Rollout, Stage, Targets};
use crate::analysis::{Verdict, evaluate};

/// A new rollout (see [`Rollout::new`]).
pub(super) fn start(
    service: &str,
    params: Params,
    stable: &str,
    canary: &str,
    now_ms: i64,
) -> Rollout {
    let params = normalise(params);
    let replicas = params.replicas;
    let mut rollout = Rollout {
        service: service.to_string(),
        params,
        stable: stable.to_string(),
        canary: canary.to_string(),
        phase: Phase::Progressing,
        step: 0,
        weight: 0,
        reason: String::new(),
        started_ms: now_ms,
        state_since_ms: now_ms,
        step_started_ms: None,
        last_verdict: None,
        is_undo: false,
        stage: Stage::Start,
        targets: Targets {
            stable: replicas,
            canary: 0,
            canary_weight: 0,
        },
        paused_since_ms: None,
        frozen_ms: 0,
        abort_cause: None,
        best_ready: 0,
    };
    if replicas == 0 {
        rollout.complete(now_ms);
        rollout.reason = "completed: 0 replicas, nothing to replace".to_string();
        return rollout;
    }
    match rollout.params.kind {
        Kind::Canary | Kind::BlueGreen => {
            let first = rollout.step_weight(0);
            let count = match rollout.params.kind {
                Kind::Canary => rollout.canary_for(first),
                _ => replicas,
            };
            rollout.targets.canary = count;
            rollout.reason = format!(
                "waiting for {count} of {count} new instances to be ready{}",
                rollout.purpose()
            );
        }
        Kind::Rolling => {
            rollout.stage = Stage::Replace {
                batch: Batch::Starting,
            };
            rollout.reason = format!("starting the rolling update of {replicas} instances");
        }
    }
    rollout
}

/// Steps as the rules want them (see "Normalisation" in the module docs).
fn normalise(mut params: Params) -> Params {
    if params.kind == Kind::Canary {
        let mut steps: Vec<u32> = Vec::new();
        for step in params.steps.iter().map(|s| (*s).min(100)) {
            let first_zero = step == 0 && steps.is_empty();
            if first_zero || (step > 0 && steps.last().is_none_or(|last| step > *last)) {
                steps.push(step);
            }
        }
        if steps.last() != Some(&100) {
            steps.push(100);
        }
        params.steps = steps;
    }
    if params.kind == Kind::Rolling {
        params.max_unavailable = params
            .max_unavailable
            .min(params.replicas.saturating_sub(1));
        if params.max_surge == 0 && params.max_unavailable == 0 {
            params.max_surge = 1;
        }
    }
    params
}

impl Rollout {
    /// One tick: watch for aborts, then advance as far as the observation allows.
    pub(super) fn step_machine(&mut self, obs: &Observation) {
        if self.stage == Stage::Done {
            return;
        }
        if self.phase != Phase::Aborted {
            self.watch(obs);
        }
        if self.paused_since_ms.is_some() {
            return;
        }
        // Each pass moves to a later state; this bounds a tick even on a bug.
        let passes = self.params.steps.len() * 4 + 8;
        for _ in 0..passes {
            let moved = match self.stage {
                Stage::Start => self.start_new(obs),
                Stage::Hold { since_ms } => self.hold(obs.now_ms, since_ms),
                Stage::Shift => self.shift(obs),
                Stage::Analyse { pause_over } => self.analyse(obs.now_ms, pause_over),
                Stage::KeepWarm => self.keep_warm(obs.now_ms),
                Stage::Replace { batch } => self.replace(obs, batch),
                Stage::Rollback => self.roll_back(obs),
                Stage::Done => false,
            };
            if !moved {
                break;
            }
        }
    }

    /// Aborts on a failed new instance or a failed analysis of the current window.
    fn watch(&mut self, obs: &Observation) {
        if obs.canary_failed {
            self.abort(
                obs.now_ms,
                "a new instance failed (readiness or crash loop)",
            );
            return;
        }
        let (Some(thresholds), Some(_)) = (&self.params.analysis, self.step_started_ms) else {
            return;
        };
        let mut thresholds = thresholds.clone();
        if self.window_is_all_new() {
            thresholds.max_p99_ratio_permille = None;
        }
        let verdict = evaluate(&obs.canary_window, &obs.stable_window, &thresholds);
        let failure = match &verdict {
            Verdict::Fail { reason } => Some(reason.clone()),
            _ => None,
        };
        self.last_verdict = Some(verdict);
        if let Some(reason) = failure {
            self.abort(obs.now_ms, &reason);
        }
    }

    /// The stable version gets no traffic (any more) in the window analysed now.
    fn window_is_all_new(&self) -> bool {
        self.weight == 100
    }

    /// Decides the abort: traffic goes back first, then the new instances.
    pub(super) fn abort(&mut self, now_ms: i64, cause: &str) {
        let cause = format!("aborted {}: {cause}", self.place());
        self.reason = format!("{cause}; moving traffic back to stable");
        self.abort_cause = Some(cause);
        self.phase = Phase::Aborted;
        self.paused_since_ms = None;
        self.stage = Stage::Rollback;
        self.state_since_ms = now_ms;
        self.targets.stable = self.params.replicas;
    }

    /// Aborted: weight 0, and the new instances go once 0 % is confirmed.
    fn roll_back(&mut self, obs: &Observation) -> bool {
        let cause = self.abort_cause.clone().unwrap_or_default();
        if self.weight > 0 && (obs.stable_ready > 0 || obs.canary_ready == 0) {
            self.set_weight(0);
        }
        if self.weight > 0 {
            self.reason = format!(
                "{cause}; waiting for a stable instance to be ready before moving traffic back"
            );
            return false;
        }
        if obs.confirmed_weight != Some(0) {
            self.reason = format!(
                "{cause}; moving traffic back to stable: waiting for the proxy to confirm 0 %"
            );
            return false;
        }
        self.targets.canary = 0;
        self.stage = Stage::Done;
        self.state_since_ms = obs.now_ms;
        self.reason = format!("{cause}; traffic back to stable");
        false
    }

    /// Completed: all traffic and all instances on the new version.
    pub(super) fn complete(&mut self, now_ms: i64) {
        let replicas = self.params.replicas;
        self.targets = Targets {
            stable: 0,
            canary: replicas,
            canary_weight: 100,
        };
        self.weight = 100;
        self.phase = Phase::Completed;
        self.stage = Stage::Done;
        self.state_since_ms = now_ms;
        let what = match self.params.kind {
            Kind::Canary => match self.params.steps.len() {
                1 => "after 1 step".to_string(),
                n => format!("after {n} steps"),
            },
            Kind::BlueGreen => "the old set is released".to_string(),
            Kind::Rolling => format!("all {replicas} instances replaced"),
        };
        let undo = if self.is_undo { " (undo)" } else { "" };
        self.reason = format!("completed{undo}: all traffic on the new version, {what}");
    }

    /// Moves to `stage`, restarting the state clock.
    pub(super) fn enter(&mut self, stage: Stage, now_ms: i64) {
        self.stage = stage;
        self.state_since_ms = now_ms;
    }

    pub(super) fn set_weight(&mut self, weight: u32) {
        self.weight = weight;
        self.targets.canary_weight = weight;
    }

    /// Aborts when a `Progressing` wait went without progress for longer than the
    /// deadline; true if it did.
    pub(super) fn past_deadline(&mut self, now_ms: i64) -> bool {
        let limit = self.params.progress_deadline_ms;
        if self.phase != Phase::Progressing || elapsed(self.state_since_ms, now_ms) <= limit {
            return false;
        }
        let cause = format!(
            "progress deadline of {} passed: {}",
            duration(limit),
            self.reason
        );
        self.abort(now_ms, &cause);
        true
    }

    /// See [`Rollout::deadline_ms`].
    pub(super) fn deadline(&self) -> Option<i64> {
        if self.phase != Phase::Progressing || self.paused_since_ms.is_some() {
            return None;
        }
        let progress = plus(self.state_since_ms, self.params.progress_deadline_ms);
        let pause_end = |since: i64| match self.params.pause_ms {
            Some(pause) => plus(since, pause.saturating_add(self.frozen_ms)),
            None => progress,
        };
        let step_started = self.step_started_ms.unwrap_or(self.state_since_ms);
        Some(match self.stage {
            Stage::Hold { since_ms } => pause_end(since_ms),
            Stage::Analyse { pause_over: false } => pause_end(step_started),
            Stage::KeepWarm => plus(
                step_started,
                self.params
                    .rollback_window_ms
                    .saturating_add(self.frozen_ms),
            ),
            Stage::Replace {
                batch:
                    Batch::Ready {
                        since_ms,
                        pause_over: false,
                    },
            } => pause_end(since_ms),
            _ => progress,
        })
    }

    /// The traffic share of step `k`.
    pub(super) fn step_weight(&self, k: usize) -> u32 {
        self.params.steps.get(k).copied().unwrap_or(100)
    }

    /// New instances for a traffic share: `max(1, ceil(replicas × weight / 100))`.
    pub(super) fn canary_for(&self, weight: u32) -> u32 {
        let replicas = u64::from(self.params.replicas);
        let count = (replicas * u64::from(weight.min(100))).div_ceil(100);
        u32::try_from(count).unwrap_or(u32::MAX).max(1)
    }

    /// The analysis passed, or there is none: a pause may end.
    pub(super) fn analysis_allows(&self) -> bool {
        self.params.analysis.is_none() || self.last_verdict.as_ref().is_some_and(Verdict::is_pass)
    }

    /// The phase a state has when not paused by command: `Paused` while it waits for
    /// `kiln rollout promote`.
    pub(super) fn natural_phase(&self) -> Phase {
        let waits_for_promote = self.params.pause_ms.is_none()
            && matches!(
                self.stage,
                Stage::Hold { .. }
                    | Stage::Analyse { .. }
                    | Stage::Replace {
                        batch: Batch::Ready { .. }
                    }
            );
        match waits_for_promote {
            true => Phase::Paused,
            false => Phase::Progressing,
        }
    }
}
