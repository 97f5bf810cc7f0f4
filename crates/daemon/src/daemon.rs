//! The daemon's shared state: the database, the store, the runtime, and what is only
//! known in memory (health, operations in flight, crash-loop backoff).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kiln_deploy::backoff::Backoff;
use kiln_image::Store;
use kiln_runtime::Instances;
use kiln_state::{NewEvent, State};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::DaemonConfig;
use crate::clock::now_ms;
use crate::definition::Definition;

/// Crash-loop backoff: the first replacement is immediate, then 1 s, 2 s, 4 s … up to a
/// minute; a service that stays healthy for 30 s starts again from zero.
const BACKOFF_BASE_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 60_000;
const BACKOFF_RESET_MS: u64 = 30_000;

/// The owner name of the daemon's pins in the store.
const PIN_OWNER: &str = "daemon";

/// Everything the API handlers, the reconcile loop and the health checkers share.
#[derive(Debug)]
pub(crate) struct Daemon {
    pub config: DaemonConfig,
    state: Mutex<State>,
    pub store: Store,
    pub runtime: Instances,
    live: Mutex<Live>,
    /// Serializes apply and destroy, and pinning against them.
    apply: Mutex<()>,
    /// The manifests last pinned in the store (see [`Daemon::pin`]); held across the
    /// write so the store and this record never disagree.
    pinned: Mutex<BTreeSet<String>>,
    /// Wakes the reconcile loop early.
    pub wake: Notify,
    pub started_ms: i64,
}

/// What only this process knows, rebuilt after a restart.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// Per instance: readiness as last observed, and why it must go (exit, liveness).
    pub health: HashMap<String, Health>,
    /// Instances with a start or stop in flight: the reconcile loop leaves them alone.
    pub busy: HashSet<String>,
    /// Started instances whose `running` row could not be written, with the message of
    /// their `instance.started` event: written again each pass, busy until then.
    pub unpersisted: HashMap<String, (kiln_state::InstanceRow, String)>,
    /// Per service.
    pub backoff: HashMap<String, Backoff>,
    /// Per service: the most recent failure, for `kiln status`.
    pub last_failure: HashMap<String, String>,
    /// Per instance: its health checker.
    pub probes: HashMap<String, JoinHandle<()>>,
    /// Per instance: a stop that failed is retried no earlier than this (unix ms).
    pub retry_after: HashMap<String, i64>,
    /// Definitions by hash (they never change).
    pub definitions: HashMap<String, Arc<Definition>>,
    /// Per service: an event about waiting (no free port, backoff) was already recorded.
    pub waiting_noted: HashSet<String>,
    /// Per service: when a failure last counted for the backoff (unix ms).
    pub failure_counted: HashMap<String, i64>,
    /// The route table the proxy last confirmed.
    pub confirmed: Option<Arc<kiln_proxy::RouteTable>>,
    /// A push to the proxy is in flight, with the routes it may make live (for a check of
    /// the confirmed table: those, which it does not change).
    pub pushing: Option<Arc<Vec<kiln_proxy::Route>>>,
    /// Pushes failed in a row (the first is recorded as an event).
    pub push_failures: u32,
    /// A proxy has answered since this daemon started.
    pub proxy_known: bool,
    /// When this daemon last started a proxy (unix ms).
    pub proxy_spawned_ms: i64,
    /// The routes the last pass wanted the proxy to serve.
    pub last_wanted: Vec<kiln_proxy::Route>,
    /// Tables that may be live although never confirmed: the one being pushed, one whose
    /// push failed or timed out (the proxy may still apply it), the proxy's persisted
    /// table while it does not answer. An address in any of them counts as routed.
    pub maybe_live: Vec<Arc<Vec<kiln_proxy::Route>>>,
    /// When the proxy was last asked what it serves (unix ms).
    pub proxy_checked_ms: i64,
    /// Rollouts by service (the database holds the same, this is the working copy).
    pub rollouts: HashMap<String, crate::rollouts::Tracked>,
    /// Metric baselines of the step each rollout analyses.
    pub baselines: HashMap<String, crate::rollouts::Baseline>,
}

impl Live {
    /// Whether an instance is ready: running, and ready as last observed (or, before any
    /// observation since this daemon started, as its row says).
    pub(crate) fn ready(&self, row: &kiln_state::InstanceRow) -> bool {
        row.state == kiln_state::InstanceState::Running
            && self.health.get(&row.id).map_or(row.ready, |h| h.ready)
    }

    /// Whether the proxy may not serve what the last pass wanted for `service` yet: the
    /// confirmed table, or a push in flight, has other routes for it. Changes to other
    /// services' routes do not delay this one.
    pub(crate) fn service_pending(&self, service: &str) -> bool {
        let of = |routes: &[kiln_proxy::Route]| {
            routes
                .iter()
                .filter(|r| r.service == service)
                .cloned()
                .collect::<Vec<_>>()
        };
        let wanted = of(&self.last_wanted);
        self.pushing.as_ref().is_some_and(|p| of(p) != wanted)
            || self
                .confirmed
                .as_ref()
                .is_none_or(|t| of(&t.routes) != wanted)
    }
}

/// An instance's health as far as the daemon knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    pub ready: bool,
    pub failed: Option<String>,
}

impl Daemon {
    pub(crate) fn new(
        config: DaemonConfig,
        state: State,
        store: Store,
        runtime: Instances,
    ) -> Daemon {
        Daemon {
            config,
            state: Mutex::new(state),
            store,
            runtime,
            live: Mutex::new(Live::default()),
            apply: Mutex::new(()),
            pinned: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            started_ms: now_ms(),
        }
    }

    /// The database. Held briefly: never across an `.await`.
    pub(crate) fn db(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The in-memory state. Held briefly: never across an `.await`.
    pub(crate) fn live(&self) -> MutexGuard<'_, Live> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an event (and logs it), outside any other change.
    pub(crate) fn event(
        &self,
        kind: &str,
        service: Option<&str>,
        instance: Option<&str>,
        message: &str,
    ) {
        let event = new_event(kind, service, instance, message);
        if let Err(e) = self.db().record_event(&event) {
            tracing::error!(error = %e, kind, "cannot record event");
        }
    }

    /// The definition with `hash`, from memory or the database.
    pub(crate) fn definition(&self, hash: &str) -> Option<Arc<Definition>> {
        if let Some(d) = self.live().definitions.get(hash) {
            return Some(d.clone());
        }
        let json = self.db().definition(hash).ok().flatten()?;
        let parsed: Definition = serde_json::from_str(&json).ok()?;
        let parsed = Arc::new(parsed);
        self.live()
            .definitions
            .insert(hash.to_string(), parsed.clone());
        Some(parsed)
    }

    /// Pins `images` (manifest digests) in the store so that removing their tags never
    /// collects what runs or is about to run; pins of images no longer named are dropped.
    /// Writes only when the set changed.
    pub(crate) fn pin(&self, images: BTreeSet<String>) -> Result<(), kiln_image::ImageError> {
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if *pinned == images {
            return Ok(());
        }
        let digests = images
            .iter()
            .map(|d| kiln_image::Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.set_pins(PIN_OWNER, &digests)?;
        *pinned = images;
        Ok(())
    }

    /// Held by apply and destroy for their whole run.
    pub(crate) fn apply_lock(&self) -> MutexGuard<'_, ()> {
        self.apply.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The apply lock if no apply is running.
    pub(crate) fn try_apply_lock(&self) -> Option<MutexGuard<'_, ()>> {
        match self.apply.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Records a failure of an instance of `service` created at `created_ms` for the
    /// crash-loop backoff; returns the delay before the service's next instance.
    ///
    /// Instances that were already there when a failure was counted fail "together"
    /// with it and do not count again: many replicas dying at once (a reboot, an OOM
    /// kill of all of them) is one event, not a crash loop. A replacement made after
    /// that failure which fails again does count, however fast it fails.
    pub(crate) fn note_failure(&self, service: &str, created_ms: i64, why: &str) -> u64 {
        let now = now_ms();
        let mut live = self.live();
        live.last_failure
            .insert(service.to_string(), why.to_string());
        let together = live
            .failure_counted
            .get(service)
            .is_some_and(|at| created_ms < *at);
        let backoff = live
            .backoff
            .entry(service.to_string())
            .or_insert_with(|| Backoff::new(BACKOFF_BASE_MS, BACKOFF_MAX_MS, BACKOFF_RESET_MS));
        if together {
            return u64::try_from(backoff.ready_at_ms().saturating_sub(now)).unwrap_or(0);
        }
        let delay = backoff.failure(now);
        live.failure_counted.insert(service.to_string(), now);
        delay
    }
}

/// A new event, logged as it is made (the daemon's own structured log).
pub(crate) fn new_event<'a>(
    kind: &'a str,
    service: Option<&'a str>,
    instance: Option<&'a str>,
    message: &'a str,
) -> NewEvent<'a> {
    tracing::info!(
        kind,
        service = service.unwrap_or_default(),
        instance = instance.unwrap_or_default(),
        "{message}"
    );
    NewEvent {
        ts_ms: now_ms(),
        service,
        instance,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(service: &str, weight: u32) -> kiln_proxy::Route {
        kiln_proxy::Route {
            name: service.into(),
            listen: "127.0.0.1:8080".into(),
            host: None,
            path_prefix: None,
            service: service.into(),
            timeout_ms: 1000,
            tls: None,
            backends: Vec::new(),
            canary_weight: weight,
        }
    }

    fn table(routes: Vec<kiln_proxy::Route>) -> Option<Arc<kiln_proxy::RouteTable>> {
        Some(Arc::new(kiln_proxy::RouteTable { version: 1, routes }))
    }

    #[test]
    fn a_service_waits_only_for_its_own_routes() {
        let mut live = Live {
            last_wanted: vec![route("web", 25), route("api", 0)],
            confirmed: table(vec![route("web", 25), route("api", 50)]),
            ..Live::default()
        };
        assert!(!live.service_pending("web"));
        assert!(live.service_pending("api"));
        // A push in flight that would change web's weight: web waits for it.
        live.pushing = Some(Arc::new(vec![route("web", 10), route("api", 0)]));
        assert!(live.service_pending("web"));
        // A check of the confirmed table changes nothing.
        live.pushing = Some(Arc::new(vec![route("web", 25), route("api", 50)]));
        assert!(!live.service_pending("web"));
        live.confirmed = None;
        assert!(live.service_pending("web"));
    }
}
