//! Rollouts: one service moving from its stable version to a new one, as a pure,
//! persisted state machine.
//!
//! The daemon keeps one [`Rollout`] per service while a change is in progress. Each
//! reconcile pass it builds an [`Observation`], calls [`Rollout::tick`], persists the
//! rollout if it changed (before acting), makes the instance counts per version match
//! the returned [`Targets`] (new instances first; an instance stops only once the proxy
//! confirmed a table that gives it no traffic, and instances that are not ready go
//! first), and pushes a route table with `canary_weight`. Time is `now_ms`, passed in.
//!
//! # Rules
//!
//! "Confirmed" means `Observation::confirmed_weight == Some(w)` for the weight `w` the
//! rollout wants. Messages count steps from 1; [`Rollout::step`] is the 0-based index.
//!
//! **Canary.** For step `k`, `canary = max(1, ceil(replicas × steps[k] / 100))` new
//! instances start while the weight stays at the previous step's ("waiting for 2 of 3
//! new instances to be ready for step 2 (25 %)"); once that many are ready the weight
//! becomes `steps[k]` ("waiting for the proxy to confirm 25 %"); once confirmed,
//! `step_started_ms` is set and the step is analysed ("analysing step 2 (25 %) during
//! its 30s pause: …"). When the pause has passed, a [`Verdict::Pass`] (or no analysis
//! configured) moves to the next step; [`Verdict::Inconclusive`] keeps waiting
//! ("analysing step 2 (25 %): inconclusive: 12 of 50 requests; …"); a 0 % step (only
//! requests pinned by `X-Kiln-Canary` reach it) is not held by an inconclusive
//! analysis, only aborted by a failing one. With a manual pause
//! (`pause_ms: None`) the phase is [`Phase::Paused`] until [`Command::Promote`]. The
//! last step is 100 %, so before completing all `replicas` new instances are ready
//! and 100 % is confirmed. `stable = replicas` until then; on completion the targets
//! are `stable 0, canary replicas, weight 100` and the daemon makes the new version the
//! stable one. At 100 % the stable version gets no traffic, so the p99 *ratio* is not
//! checked while the rollout wants 100 % (any kind).
//!
//! **Blue-green.** `canary = replicas`; once all are ready, the pause (if not 0; manual
//! waits for `Promote`, phase `Paused`), then weight 100 at once, confirmed; then the
//! old set stays warm (`stable = replicas`) for `rollback_window_ms` while the analysis
//! runs (any `Fail` switches back); then `stable = 0`, completed. An inconclusive
//! analysis does not hold the completion: traffic moved already, the window is for
//! going back. Within the window the daemon rolls back with `command(Abort)`.
//!
//! **Rolling.** No traffic steps. Each tick: new instances start while the running
//! total (targets or observed, whichever is higher) stays within `replicas +
//! max_surge`; stable targets drop while the ready instances kept (assuming not-ready
//! ones stop first) stay at least `replicas - max_unavailable`. The weight follows the
//! ready instances kept: `round(100 × new / (new + old))`. The last old instance goes
//! only after 100 % is confirmed; completed when `replicas` new instances are ready
//! and no old one is wanted. With a pause other than 0, each batch of new instances
//! waits, once ready, for the pause (manual: `Promote`) and a passing analysis before
//! the next batch starts; `step` counts batches. The analysis otherwise only aborts.
//!
//! **Abort** (an analysis `Fail` whenever the current window is analysed, including
//! while paused; `canary_failed`; a progress deadline; `Command::Abort`): the phase
//! becomes [`Phase::Aborted`] at once with a reason like "aborted at step 1 (5 %):
//! error rate 31.0 % > 1.0 % over 400 requests; moving traffic back to stable";
//! targets `stable = replicas` and weight 0 (kept only while the stable version has
//! no ready instance and the new one has); only once 0 % is confirmed does `canary`
//! drop to 0, and the reason ends "…; traffic back to stable". An aborted rollout never
//! lowers the stable target.
//!
//! **Deadlines.** Every `Progressing` state has [`Rollout::deadline_ms`]: the end of a
//! timed pause or of the rollback window (the rollout moves on by itself then), or
//! `state_since_ms + progress_deadline_ms` for a wait (instances, confirmation, an
//! inconclusive analysis after its pause). Passing the latter aborts ("progress
//! deadline of 10m0s passed: waiting for …"). `state_since_ms` restarts on each state,
//! and during a rolling update on each change of its targets or new instance ready.
//!
//! **Commands.** `Pause` freezes the state and its clocks (timers resume where they
//! were; only aborts still happen); `Resume` undoes it. `Promote` ends a step's pause
//! (timed or manual), the blue-green pause or rollback window, or a rolling batch's
//! pause, unless the analysis failed (inconclusive is allowed: a human decided); it is
//! refused while waiting for instances or a confirmation. Every command is refused
//! with a message once the rollout completed or aborted.
//!
//! **Undo.** [`Rollout::undo`] is a rollout back to the previous definition: no
//! analysis, no pauses, no rollback window, and a canary becomes one 100 % step. It
//! still starts the previous instances first and moves traffic only once they are ready
//! and the table is confirmed.
//!
//! **Normalisation** in [`Rollout::new`]: canary steps above 100 are clamped, values
//! not above their predecessor dropped (0 is kept only first) and 100 appended if
//! missing; rolling `max_unavailable` is at most `replicas - 1` (some instance always
//! serves) and a surge of 0 with nothing unavailable becomes a surge of 1; 0 replicas
//! completes at once.

mod command;
mod machine;
mod rolling;
mod steps;
mod text;

use serde::{Deserialize, Serialize};

use crate::analysis::{Thresholds, Verdict, Window};

/// How a service changes version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    BlueGreen,
    Canary,
    Rolling,
}

/// A service's strategy, as the daemon takes it from the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub kind: Kind,
    pub replicas: u32,
    /// Canary: the new version's traffic share at each step, in percent; ends at 100.
    pub steps: Vec<u32>,
    /// After each canary step, before the blue-green switch, between rolling batches;
    /// `None` waits for `kiln rollout promote`.
    pub pause_ms: Option<u64>,
    /// Blue-green: how long the old set stays warm after the switch.
    pub rollback_window_ms: u64,
    /// Rolling: instances above `replicas` at once.
    pub max_surge: u32,
    /// Rolling: instances below `replicas` ready at once.
    pub max_unavailable: u32,
    /// A wait without progress for longer than this aborts.
    pub progress_deadline_ms: u64,
    pub analysis: Option<Thresholds>,
}

/// Where a rollout is, as `kiln rollout status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Progressing,
    /// By `kiln rollout pause`, or waiting for `kiln rollout promote`.
    Paused,
    Completed,
    /// Set as soon as the abort is decided; [`Rollout::is_finished`] says when the new
    /// instances may go.
    Aborted,
}

/// One service's change in progress. Serialize it after every `tick` that changed it;
/// a deserialized copy carries on exactly as the original would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub service: String,
    pub params: Params,
    /// Definition hash of the version serving before the rollout.
    pub stable: String,
    /// Definition hash of the version rolled out.
    pub canary: String,
    pub phase: Phase,
    /// Canary: 0-based index into `params.steps`; rolling: batches started minus 1.
    pub step: usize,
    /// The new version's traffic share the rollout currently wants, in percent.
    pub weight: u32,
    /// Never empty: what it waits for and why, or how it ended.
    pub reason: String,
    pub started_ms: i64,
    /// When the current state began or last made progress: the progress-deadline clock
    /// (moved forward by time spent paused).
    pub state_since_ms: i64,
    /// When the current step's weight was confirmed: the analysis window starts here.
    pub step_started_ms: Option<i64>,
    pub last_verdict: Option<Verdict>,
    pub is_undo: bool,
    stage: Stage,
    targets: Targets,
    /// Set while paused by [`Command::Pause`]: since when.
    paused_since_ms: Option<i64>,
    /// Time paused since the current pause or window began; its end moves by this.
    frozen_ms: u64,
    /// "aborted at step 1 (5 %): …", once aborted.
    abort_cause: Option<String>,
    /// Rolling: the most new instances seen ready (and wanted) so far.
    best_ready: u32,
}

/// Where the state machine is; the phase says how it is seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    /// Canary, blue-green: the new instances for the step are starting.
    Start,
    /// Blue-green: all new instances ready, the pause before the switch.
    Hold { since_ms: i64 },
    /// Canary, blue-green: waiting for the proxy to confirm `weight`.
    Shift,
    /// Canary: the step's pause and analysis.
    Analyse { pause_over: bool },
    /// Blue-green: the rollback window.
    KeepWarm,
    /// Rolling: batches.
    Replace { batch: Batch },
    /// Aborted: waiting for the proxy to confirm 0 %.
    Rollback,
    /// Nothing more to do.
    Done,
}

/// Where a rolling update is between batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Batch {
    /// New instances are starting (or none yet).
    Starting,
    /// The last batch is ready: the pause before the next one.
    Ready { since_ms: i64, pause_over: bool },
    /// Promoted: the next batch may start.
    Released,
}

/// What the daemon sees for one service this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub now_ms: i64,
    pub stable_ready: u32,
    pub canary_ready: u32,
    /// Instances that exist and are not stopping.
    pub stable_running: u32,
    pub canary_running: u32,
    /// The `canary_weight` of the newest table the daemon pushed for this service,
    /// once the proxy confirmed it (or a newer one); `None` before. While a newer push
    /// is in flight, do not report an older confirmation as current: a confirmed 0 %
    /// from before a 5 % push would let the new instances go while 5 % may still
    /// arrive. A service no route serves: report the weight asked for at once.
    pub confirmed_weight: Option<u32>,
    /// Both since `step_started_ms` (empty while it is `None`).
    pub canary_window: Window,
    pub stable_window: Window,
    /// A new instance failed readiness for good or crash-loops: abort.
    pub canary_failed: bool,
}

/// What must exist now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Instances of the stable version to keep.
    pub stable: u32,
    /// Instances of the new version.
    pub canary: u32,
    /// The new version's share for the route table, 0..=100.
    pub canary_weight: u32,
}

/// `kiln rollout promote|abort|pause|resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Promote,
    Abort,
    Pause,
    Resume,
}

impl Rollout {
    /// A rollout of `service` from `stable` to `canary`, starting at `now_ms`.
    pub fn new(service: &str, params: Params, stable: &str, canary: &str, now_ms: i64) -> Rollout {
        machine::start(service, params, stable, canary, now_ms)
    }

    /// A rollout from `current` back to `previous`, marked `is_undo` (see the module
    /// docs). A blue-green rollout still in its rollback window is undone with
    /// `command(Abort)` instead: the old set is still warm.
    pub fn undo(
        service: &str,
        params: Params,
        current: &str,
        previous: &str,
        now_ms: i64,
    ) -> Rollout {
        let params = Params {
            steps: match params.kind {
                Kind::Canary => vec![100],
                _ => params.steps,
            },
            pause_ms: Some(0),
            rollback_window_ms: 0,
            analysis: None,
            ..params
        };
        let mut rollout = Rollout::new(service, params, current, previous, now_ms);
        rollout.is_undo = true;
        rollout
    }

    /// Advances as far as `obs` allows (possibly through several states) and returns
    /// what must exist now.
    pub fn tick(&mut self, obs: &Observation) -> Targets {
        self.step_machine(obs);
        self.targets
    }

    /// Applies `kiln rollout promote|abort|pause|resume`; `Err` says why it does not
    /// apply now. The next `tick` acts on it.
    pub fn command(&mut self, cmd: Command, now_ms: i64) -> Result<(), String> {
        command::apply(self, cmd, now_ms)
    }

    /// What the current state wants, without advancing.
    pub fn targets(&self) -> Targets {
        self.targets
    }

    /// Completed or aborted, and the targets are final: the old version's instances
    /// (stable after completion, new after an abort) may all go.
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Done
    }

    /// When the rollout acts by itself if nothing changes: the end of a timed pause or
    /// rollback window, or the progress deadline of a wait. `None` while paused or
    /// once completed or aborted.
    pub fn deadline_ms(&self) -> Option<i64> {
        self.deadline()
    }
}

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
