//! The reconcile planner: desired services and actual instances in, actions out.
//!
//! Instances are never modified, only replaced, and a replacement is surge-style:
//! new instances start first and old ones stop only once enough new ones are
//! ready, so the number of serving instances never drops below the desired
//! replicas during a change. One call to [`reconcile`] is one pass; the daemon
//! applies the actions, lets time pass and calls it again until it returns nothing.
//!
//! # Rules of [`reconcile`]
//!
//! An instance *serves* when it is `Running` and `ready`. For each service:
//!
//! - Instances in [`Phase::Stopping`] are ignored: they are already going and
//!   count toward nothing.
//! - A service that is not desired: every other instance is stopped, reason
//!   "service removed".
//! - A desired service `S` (the first entry wins if a name repeats):
//!   - every `failed` instance, whatever its definition, is stopped with its
//!     failure as the reason;
//!   - `current` are the other instances with `S.def_hash`, `outdated` those with
//!     another one, oldest first (`created_ms`, then `id`);
//!   - if `current` is short of `S.replicas`, the missing instances are created.
//!     Each create replaces something, in this order: a failed instance (reason
//!     "replaces <id>: <failure>"), then an outdated instance not yet *covered*
//!     (outdated number `i` is covered when `i < current.len()`: a new instance
//!     already stands for it; reason "definition changed"), else nothing (reason
//!     "scale up to N", or "desired replicas" when the service has no instance);
//!   - if `current` exceeds `S.replicas`, the extras are stopped, reason "scale
//!     down to N": instances that do not serve first, then the newest;
//!   - outdated instances stop only as a surplus: with `serving` the current
//!     instances that serve and are kept, `k = (serving + outdated.len()) -
//!     replicas` (at least 0, at most `outdated.len()`) of them stop, reason
//!     "replaced by a new definition"; those that do not serve go first, then the
//!     oldest. With 0 replicas all of them stop.
//!
//! Hence, without failures, the serving count after a pass is at least
//! `min(serving before, replicas)`, a service never has more than `replicas` current
//! instances plus the outdated ones it had when its definition changed, and a
//! converged set of instances yields no action.
//!
//! Actions come out as: stops of failed instances, then creates, then the other
//! stops; services by name, instances in the order above. The same input always
//! gives the same output. [`Limits`] caps the creates of one pass.

mod diff;
mod limits;
mod preview;
mod reconcile;

use serde::{Deserialize, Serialize};

pub use diff::diff_definitions;
pub use limits::Limits;
pub use preview::{Change, ChangeKind, Plan, preview};
pub use reconcile::reconcile;

/// A service as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    pub name: String,
    /// Identifies the definition: instances with another hash are outdated.
    pub def_hash: String,
    pub replicas: u32,
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Running,
    Stopping,
}

/// An instance as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualInstance {
    pub id: String,
    pub service: String,
    pub def_hash: String,
    pub phase: Phase,
    /// Passed readiness (or has no readiness check and is running).
    pub ready: bool,
    /// `Some(reason)` if it exited or failed liveness: it must go and be replaced.
    pub failed: Option<String>,
    pub created_ms: i64,
}

impl ActualInstance {
    /// Running and ready: it takes traffic.
    pub(crate) fn serving(&self) -> bool {
        self.phase == Phase::Running && self.ready
    }
}

/// What the daemon should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Start a new instance of `service` with its desired definition.
    Create {
        service: String,
        /// The instance this one stands in for, if any.
        replaces: Option<String>,
        reason: String,
    },
    /// Stop instance `id`.
    Stop {
        id: String,
        service: String,
        reason: String,
    },
}
