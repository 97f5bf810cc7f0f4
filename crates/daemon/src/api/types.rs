//! The API's request and response bodies, shared by the daemon and the CLI.
//!
//! Every body is JSON. Field names are part of the documented API
//! (`docs/api.md`): add fields, never rename or remove them.

use serde::{Deserialize, Serialize};

pub use kiln_deploy::plan::{Change, ChangeKind, Plan};

/// The API version prefix of every path.
pub const API_PREFIX: &str = "/v1";

/// An error answer (any 4xx or 5xx status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person: names the file, line or field when input was bad.
    pub error: String,
}

/// `POST /v1/apply`: make the services of a spec the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// The spec file as the user named it; used in messages (`kiln.toml:12:3: …`).
    pub path: String,
    /// The spec file's contents.
    pub source: String,
    /// Only compute and return the plan; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to `POST /v1/apply` and `DELETE /v1/services/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// What changes, per instance, with reasons.
    pub plan: Plan,
    /// The desired-state generation this apply created (the current one for a dry run
    /// or when nothing changed).
    pub generation: u64,
    /// Events recorded after this sequence number belong to this apply.
    pub events_after: i64,
    /// The services the apply touched (the ones to wait for).
    pub services: Vec<String>,
    /// The services whose change started a rollout (see `GET /v1/rollouts/SERVICE`).
    #[serde(default)]
    pub rollouts: Vec<String>,
}

/// One service in `GET /v1/services` and `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The desired image's manifest digest.
    pub image: String,
    /// The desired image's version (its tag, or a short digest).
    pub version: String,
    pub replicas: u32,
    /// Live instances with the desired definition.
    pub current: u32,
    /// Of those, how many are ready.
    pub ready: u32,
    /// Live instances with an older definition.
    pub outdated: u32,
    /// Instances being stopped.
    pub stopping: u32,
    /// `ready == replicas` and nothing outdated or stopping.
    pub converged: bool,
    /// The generation of the last apply that included this service.
    pub generation: u64,
    /// While crash-looping: no new instance before this time (unix ms).
    pub backoff_until_ms: Option<i64>,
    /// The most recent failure (exit or failed liveness), for `kiln status`.
    pub last_failure: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// kiln's version.
    pub version: String,
    pub pid: u32,
    /// When this daemon process started (unix ms).
    pub started_ms: i64,
    /// KILN_HOME.
    pub home: String,
    /// The host addresses instances are given: `HOST` and the port range `FIRST-LAST`.
    pub host: String,
    pub ports: String,
    /// The current desired-state generation.
    pub generation: u64,
    pub services: Vec<ServiceStatus>,
}

/// One instance in `GET /v1/instances` (and `kiln ps --output json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub service: String,
    /// The image's manifest digest.
    pub image: String,
    pub version: String,
    /// `creating`, `running` or `stopping`.
    pub state: String,
    pub ready: bool,
    /// Host pid of the instance's main process, once started.
    pub pid: Option<u32>,
    /// `HOST:PORT` the instance serves on.
    pub address: String,
    /// When the instance's process started (RFC 3339, UTC), once started.
    pub started: Option<String>,
    /// When the instance was created (RFC 3339, UTC).
    pub created: String,
    /// Whether the instance has the service's desired definition.
    pub current: bool,
    /// The instance this one replaced, if any.
    pub replaces: Option<String>,
}

/// One event in `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Increasing, never reused: pass the last one seen as `after` to follow.
    pub seq: i64,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub service: Option<String>,
    pub instance: Option<String>,
    /// A stable, dotted name: `instance.created`, `instance.exited`, `apply`, …
    pub kind: String,
    pub message: String,
}

/// One difference in `GET /v1/drift`: an instance that is not what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub instance: String,
    pub service: String,
    /// `image`, `definition`, `read_only_root`, `process` or `service`.
    pub field: String,
    pub expected: String,
    pub actual: String,
}

/// One rollout in `GET /v1/rollouts[/SERVICE]` (and `kiln rollout status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub service: String,
    /// `blue-green`, `canary` or `rolling`.
    pub kind: String,
    /// `progressing`, `paused`, `completed` or `aborted`.
    pub phase: String,
    /// The current step (1-based; canary steps, rolling batches).
    pub step: usize,
    /// The canary steps' traffic percentages (empty for other kinds).
    pub steps: Vec<u32>,
    /// The share of traffic (%) the rollout wants on the new version now.
    pub weight: u32,
    /// The version serving before the rollout, and the new one (`TAG-HASH`).
    pub stable: String,
    pub canary: String,
    /// What it is waiting for, and why.
    pub reason: String,
    /// The last analysis verdict (`pass: …`, `fail: …`, `inconclusive: …`), if any.
    pub analysis: Option<String>,
    /// The rollout is over: the instances it replaced (or started) are stopping or gone.
    pub done: bool,
    pub is_undo: bool,
    pub started: String,
    /// When the current state gives up (RFC 3339), while progressing.
    pub deadline: Option<String>,
}
