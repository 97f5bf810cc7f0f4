//! The canary and blue-green states: start the new instances, (hold,) shift the weight,
//! analyse or keep the old set warm. Each returns true when it moved to another state.

use super::text::{duration, plus};
use super::{Kind, Observation, Phase, Rollout, Stage};

impl Rollout {
    /// Waits until the new instances for the step are ready, then shifts (blue-green:
    /// holds first when there is a pause).
    pub(super) fn start_new(&mut self, obs: &Observation) -> bool {
        let now = obs.now_ms;
        let wanted = self.targets.canary;
        if obs.canary_ready < wanted {
            self.reason = format!(
                "waiting for {} of {wanted} new instances to be ready{}",
                wanted - obs.canary_ready,
                self.purpose()
            );
            return self.past_deadline(now);
        }
        match self.params.kind {
            Kind::BlueGreen if self.params.pause_ms != Some(0) => {
                self.frozen_ms = 0;
                self.enter(Stage::Hold { since_ms: now }, now);
                self.phase = self.natural_phase();
            }
            Kind::BlueGreen => self.shift_to(100, now),
            _ => self.shift_to(self.step_weight(self.step), now),
        }
        true
    }

    /// Blue-green: all new instances ready; the pause before the switch.
    pub(super) fn hold(&mut self, now: i64, since_ms: i64) -> bool {
        let ready = self.targets.canary;
        let Some(pause) = self.params.pause_ms else {
            self.reason = format!(
                "all {ready} new instances ready; waiting for kiln rollout promote to switch"
            );
            return false;
        };
        if now < plus(since_ms, pause.saturating_add(self.frozen_ms)) {
            self.reason = format!(
                "all {ready} new instances ready; switching after the {} pause",
                duration(pause)
            );
            return false;
        }
        self.shift_to(100, now);
        true
    }

    /// Asks for `weight` and waits for its confirmation.
    pub(super) fn shift_to(&mut self, weight: u32, now: i64) {
        self.set_weight(weight);
        self.phase = Phase::Progressing;
        self.enter(Stage::Shift, now);
        self.reason = format!("waiting for the proxy to confirm {weight} %");
    }

    /// Waits for the proxy to confirm the weight; then the step's analysis starts
    /// (blue-green: the rollback window).
    pub(super) fn shift(&mut self, obs: &Observation) -> bool {
        let now = obs.now_ms;
        if obs.confirmed_weight != Some(self.weight) {
            let confirmed = match obs.confirmed_weight {
                Some(confirmed) => format!(" (confirmed: {confirmed} %)"),
                None => String::new(),
            };
            let place = match self.params.kind {
                Kind::Canary => format!(" {}", self.step_label()),
                _ => String::new(),
            };
            self.reason = format!(
                "waiting for the proxy to confirm {} %{place}{confirmed}",
                self.weight
            );
            return self.past_deadline(now);
        }
        self.step_started_ms = Some(now);
        self.frozen_ms = 0;
        self.last_verdict = None;
        let next = match self.params.kind {
            Kind::BlueGreen => Stage::KeepWarm,
            _ => Stage::Analyse { pause_over: false },
        };
        self.enter(next, now);
        self.phase = self.natural_phase();
        true
    }

    /// Canary: the step's pause, then a passing analysis, moves to the next step.
    pub(super) fn analyse(&mut self, now: i64, pause_over: bool) -> bool {
        let label = format!("step {} ({} %)", self.step + 1, self.weight);
        let verdict = self.verdict_text();
        let Some(pause) = self.params.pause_ms else {
            self.reason = format!("waiting for kiln rollout promote at {label}: {verdict}");
            return false;
        };
        let started = self.step_started_ms.unwrap_or(self.state_since_ms);
        let pause_end = plus(started, pause.saturating_add(self.frozen_ms));
        if now < pause_end {
            self.reason = format!(
                "analysing {label} during its {} pause: {verdict}",
                duration(pause)
            );
            return false;
        }
        // A 0 % step gets header-pinned requests only: its analysis cannot gate it.
        if self.analysis_allows() || self.weight == 0 {
            self.next_step(now);
            return true;
        }
        if !pause_over {
            self.enter(Stage::Analyse { pause_over: true }, pause_end);
        }
        self.reason = format!("analysing {label}: {verdict}; waiting for a conclusive result");
        self.past_deadline(now)
    }

    /// After a step: the next one, or completion after the last.
    pub(super) fn next_step(&mut self, now: i64) {
        if self.step + 1 >= self.params.steps.len() {
            self.complete(now);
            return;
        }
        self.step += 1;
        let wanted = self.canary_for(self.step_weight(self.step));
        self.targets.canary = self.targets.canary.max(wanted);
        self.phase = Phase::Progressing;
        self.enter(Stage::Start, now);
        self.reason = format!("starting {}", self.step_label().trim_start_matches("at "));
    }

    /// Blue-green: the old set stays warm for the rollback window, then goes.
    pub(super) fn keep_warm(&mut self, now: i64) -> bool {
        let window = self.params.rollback_window_ms;
        let started = self.step_started_ms.unwrap_or(self.state_since_ms);
        if now < plus(started, window.saturating_add(self.frozen_ms)) {
            self.reason = format!(
                "switched; keeping the old set warm until the {} rollback window ends: {}",
                duration(window),
                self.verdict_text()
            );
            return false;
        }
        self.complete(now);
        true
    }
}
