//! Routes: where kiln's proxy listens and which service it sends the requests to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One `[route.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteSpec {
    /// A DNS label, like a service name.
    pub name: String,
    /// An IP address and a port 1-65535. Several routes may share it if they differ in
    /// `host` or `path_prefix`, and then all use `tls` or none does.
    pub listen: SocketAddr,
    /// A service of the same spec.
    pub service: String,
    /// Requests for this host only: a lowercase hostname without port or scheme.
    /// `None`: any host.
    pub host: Option<String>,
    /// Requests whose path starts with this only: starts with `/`, no query, no
    /// whitespace. `None`: any path.
    pub path_prefix: Option<String>,
    /// Longest the backend may take to start answering once the request is sent, and
    /// longest it may pause within its answer: 1ms to 1h, default 30s.
    pub timeout: Duration,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsSpec>,
    /// 1-based line of the route's table header.
    #[serde(skip)]
    pub line: usize,
}

/// A certificate chain and its private key, PEM files. Relative paths are resolved
/// against the folder of the spec, like base paths; whether the files exist is not
/// checked here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsSpec {
    pub cert: PathBuf,
    pub key: PathBuf,
}
