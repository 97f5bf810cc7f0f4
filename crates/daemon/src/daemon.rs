//! The daemon's shared state: the database, the store, the runtime, and what is only
//! known in memory (health, operations in flight, crash-loop backoff).

use std::collections::{HashMap, HashSet};
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

/// Everything the API handlers, the reconcile loop and the health checkers share.
#[derive(Debug)]
pub(crate) struct Daemon {
    pub config: DaemonConfig,
    state: Mutex<State>,
    pub store: Store,
    pub runtime: Instances,
    live: Mutex<Live>,
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

    /// Records a failure of `service` for the crash-loop backoff; returns the delay.
    pub(crate) fn note_failure(&self, service: &str, why: &str) -> u64 {
        let mut live = self.live();
        live.last_failure
            .insert(service.to_string(), why.to_string());
        live.backoff
            .entry(service.to_string())
            .or_insert_with(|| Backoff::new(BACKOFF_BASE_MS, BACKOFF_MAX_MS, BACKOFF_RESET_MS))
            .failure(now_ms())
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
