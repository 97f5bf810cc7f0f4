//! The route table: the serde shape shared with the control plane, and its validation.

pub(crate) mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use validate::validate;

/// A versioned set of routes. The control plane pushes it; the proxy confirms its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Monotonic version: a lower one than the live table is refused.
    pub version: u64,
    pub routes: Vec<Route>,
}

/// One route: requests on `listen` matching `host` and `path_prefix` go to `backends`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Unique in the table; a metrics label.
    pub name: String,
    /// Socket address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Exact host to match (case-insensitive, port ignored); `None` matches any host.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix to match, starting with `/`; the longest matching prefix wins.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The service behind the route; a metrics label.
    pub service: String,
    /// Time the backend has to answer with response headers; 0 means no limit.
    #[serde(default)]
    pub timeout_ms: u64,
    /// Serve this listen address over TLS with these PEM files.
    #[serde(default)]
    pub tls: Option<Tls>,
    pub backends: Vec<Backend>,
    /// Percentage (0..=100) of requests that go to the canary group.
    #[serde(default)]
    pub canary_weight: u32,
}

/// TLS material for a listen address, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One backend instance of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Socket address of the instance, e.g. `127.0.0.1:24001`.
    pub address: String,
    /// The instance id (informational).
    pub instance: String,
    /// The version the instance runs; a metrics label.
    pub version: String,
    pub group: Group,
}

/// Which side of a canary split a backend is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Stable,
    Canary,
}
