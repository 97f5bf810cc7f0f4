//! The proxy's error type: every error says whether a retry is safe.

use std::io;
use std::path::PathBuf;

/// Errors of the proxy, its control API and its blocking client.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The route table is malformed or inconsistent; nothing of it was applied.
    #[error("invalid route table: {0}")]
    InvalidTable(String),
    /// A table older than the live one was offered; nothing was applied.
    #[error("route table version {offered} refused: version {current} is already live")]
    StaleVersion { current: u64, offered: u64 },
    /// The live version was offered again with different content; nothing was applied.
    #[error(
        "route table version {version} is already live with different content: bump the version"
    )]
    VersionConflict { version: u64 },
    /// A listen address of the table could not be bound; nothing of the table was applied.
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: io::Error },
    /// A TLS certificate or key of the table could not be loaded; nothing was applied.
    #[error("cannot load TLS material {path}: {message}")]
    Tls { path: PathBuf, message: String },
    /// The applied table could not be written to disk; it was not applied.
    #[error("cannot persist the route table to {path}: {source}")]
    Persist { path: PathBuf, source: io::Error },
    /// The persisted table could not be read back at start.
    #[error("cannot load the persisted route table {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// The proxy's home directory or control socket could not be set up.
    #[error("cannot set up {path}: {source}")]
    Home { path: PathBuf, source: io::Error },
    /// Another proxy already answers on the control socket.
    #[error("another kiln proxy is already serving {path}")]
    AlreadyRunning { path: PathBuf },
    /// The tokio runtime or the signal handlers could not be created.
    #[error("cannot start the proxy runtime: {0}")]
    Runtime(io::Error),
    /// The blocking client could not talk to the proxy's control socket.
    #[error("cannot reach the proxy at {path}: {source}")]
    Unreachable { path: PathBuf, source: io::Error },
    /// The proxy answered something the blocking client does not understand.
    #[error("unexpected answer from the proxy at {path}: {message}")]
    Protocol { path: PathBuf, message: String },
    /// The proxy refused a control request for a reason not covered above.
    #[error("the proxy refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// A backend refused or reset the connection before any byte of the request was sent.
    #[error("cannot connect to backend {address}: {message}")]
    BackendConnect { address: String, message: String },
    /// A backend failed after the request (or part of it) was sent.
    #[error("backend {address} failed: {message}")]
    BackendIo { address: String, message: String },
    /// A backend did not answer within the route's timeout.
    #[error("backend {address} did not answer within {timeout_ms} ms")]
    BackendTimeout { address: String, timeout_ms: u64 },
}

impl ProxyError {
    /// Whether doing the same thing again is safe and may succeed.
    ///
    /// A refused table is never half-applied, so re-sending it is always safe; this says
    /// whether it is worth it without changing anything (a port may free up, a proxy may
    /// come back). A backend request is retried only when it never reached the backend.
    pub fn retry_safe(&self) -> bool {
        use ProxyError::*;
        match self {
            Bind { .. } | Persist { .. } | Unreachable { .. } | BackendConnect { .. } => true,
            InvalidTable(_) | StaleVersion { .. } | VersionConflict { .. } | Tls { .. } => false,
            Load { .. } | Home { .. } | AlreadyRunning { .. } | Runtime(_) => false,
            Protocol { .. } | Refused { .. } | BackendIo { .. } | BackendTimeout { .. } => false,
        }
    }
}
