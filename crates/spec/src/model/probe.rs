//! Health probes of a service's instances.

use std::time::Duration;

/// A `readiness` or `liveness` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub check: Check,
    /// 10ms to 1h; default 1s for readiness, 5s for liveness.
    pub interval: Duration,
    /// More than 0, at most 1h; default 1s.
    pub timeout: Duration,
    /// Passes in a row that make the probe pass: 1-100, default 1.
    pub success: u32,
    /// Failures in a row that make the probe fail: 1-100, default 3.
    pub failure: u32,
}

/// What a probe does; exactly one per probe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Check {
    /// `GET` of `path` (starting with `/`) on the service's port; 2xx and 3xx pass.
    Http { path: String },
    /// A TCP connection to the service's port.
    Tcp,
    /// A program run inside the instance; exit status 0 passes. Never empty.
    Exec { command: Vec<String> },
}
