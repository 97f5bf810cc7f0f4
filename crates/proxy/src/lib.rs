//! kiln proxy: the data plane.
//!
//! A separate process that serves HTTP/1.1, HTTP/2 (h2c and TLS with ALPN) and upgraded
//! connections on the listen addresses of a versioned [`RouteTable`], forwarding to
//! backends over pooled HTTP/1.1 keep-alive connections. The control plane pushes tables
//! over HOME/proxy.sock ([`client`]), reads in-flight counts to drain instances, and reads
//! per-version metrics for rollout analysis. The applied table is persisted, so a
//! restarted proxy serves without the control plane.
//!
//! Contract with the control plane:
//! - [`client::put_table`] returns only once the table is live: listeners bound, TLS
//!   loaded, persisted to HOME/proxy/table.json, and every new request routed by it. A
//!   refused table (400: validation, bind or TLS failure) changes nothing. An older version
//!   is refused (409); the live version again is a no-op if identical, else refused (409).
//! - A backend absent from the live table gets no new request; requests and upgraded
//!   connections already on it finish. [`client::inflight`] counts them per address (an
//!   absent address has none): stop an instance once its count is 0.
//! - Metrics: see [`metrics`] for what each series counts.
//!
//! Start reading at [`run`], then `server.rs` and `server/apply.rs` (applying a table),
//! `forward.rs` (the request path), `router.rs` (matching and picking) and `upstream.rs`
//! (backend connections and in-flight counts).

pub mod client;
mod control;
mod error;
mod forward;
mod http1;
mod listener;
pub mod metrics;
mod persist;
mod router;
mod server;
mod table;
mod tls;
mod upstream;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

pub use error::ProxyError;
pub use table::{Backend, Group, Route, RouteTable, Tls};
pub use tls::check as check_tls;

/// How long a stopping proxy waits for requests and upgraded connections in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Where the proxy keeps its state and how many threads it runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Must exist. Control socket HOME/proxy.sock, persisted table HOME/proxy/table.json.
    pub home: PathBuf,
    /// Tokio worker threads; 1 runs everything on the calling thread.
    pub workers: usize,
}

/// Runs the proxy until SIGTERM or SIGINT, blocking the calling thread.
///
/// Serves HOME/proxy/table.json at once if present, then opens the control socket. On a
/// signal it stops accepting, then waits up to [`SHUTDOWN_GRACE`] for requests in flight.
pub fn run(config: ProxyConfig) -> Result<(), ProxyError> {
    let mut builder = if config.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(config.workers);
        builder
    };
    let runtime = builder.enable_all().build().map_err(ProxyError::Runtime)?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).map_err(ProxyError::Runtime)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(ProxyError::Runtime)?;
        let server = server::Server::start(&config.home).await?;
        tracing::info!(home = %config.home.display(), "kiln proxy serving");
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("kiln proxy stopping");
        server.shutdown(SHUTDOWN_GRACE).await;
        Ok(())
    })
}
