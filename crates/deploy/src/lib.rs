//! kiln deploy: the planner and health state machines, as pure logic.
//!
//! Nothing here does I/O, reads a clock or starts a thread: time comes in as
//! milliseconds and decisions go out as values, so the daemon can apply them and
//! tests can run thousands of simulated rollouts.
//!
//! - [`plan`]: desired services and actual instances in, [`Action`]s out
//!   ([`reconcile`]), and the `kiln apply` preview ([`preview`]).
//! - [`health`]: readiness and liveness as consecutive-threshold probe state.
//! - [`backoff`]: crash-loop backoff per service.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
pub mod backoff;
pub mod health;
pub mod plan;
pub mod rollout;

pub use backoff::Backoff;
pub use health::{ProbeState, Thresholds};
pub use plan::{
    Action, ActualInstance, Change, ChangeKind, DesiredService, Limits, Phase, Plan,
    diff_definitions, preview, reconcile,
};
