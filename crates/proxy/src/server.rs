//! The proxy process state: the live table, backends, listeners, start and stop.

mod apply;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::forward::{Attempt, Picked};
use crate::metrics::Metrics;
use crate::router::{BackendRef, Pin, Table};
use crate::upstream::{InflightGuard, Upstreams};
use crate::{ProxyError, control, persist};

/// Where the proxy keeps its files under HOME.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) socket: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) table: PathBuf,
}

impl Paths {
    pub(crate) fn new(home: &Path) -> Paths {
        let dir = home.join("proxy");
        Paths {
            socket: home.join("proxy.sock"),
            table: dir.join("table.json"),
            dir,
        }
    }
}

/// Everything the data plane and the control socket share.
#[derive(Debug)]
pub(crate) struct Shared {
    table: RwLock<Arc<Table>>,
    /// HTTP/2 front end (HTTP/1.1 is the proxy's own engine, `http1.rs`).
    pub(crate) http2: http2::Builder<TokioExecutor>,
    pub(crate) metrics: Metrics,
    pub(crate) upstreams: Upstreams,
    /// Set to true once when the proxy stops.
    pub(crate) stop: watch::Sender<bool>,
    /// Bound data-plane listeners; the lock also serialises table changes.
    listeners: Mutex<HashMap<SocketAddr, JoinHandle<()>>>,
    pub(crate) paths: Paths,
}

/// A running proxy: data plane plus control socket.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) shared: Arc<Shared>,
    control: JoinHandle<()>,
}

impl Server {
    /// Loads HOME/proxy/table.json (if any) and serves it, then opens the control socket.
    ///
    /// A persisted table that cannot be applied any more is logged and skipped: the proxy
    /// then starts empty and waits for the control plane rather than failing to start.
    pub(crate) async fn start(home: &Path) -> Result<Server, ProxyError> {
        let paths = Paths::new(home);
        control::prepare(home, &paths)?;
        let shared = Arc::new(Shared::new(paths));
        match persist::load(&shared.paths.table) {
            Ok(Some(table)) => match shared.apply(table, false).await {
                Ok(version) => tracing::info!(version, "serving the persisted route table"),
                Err(error) => tracing::error!(%error, "cannot serve the persisted route table"),
            },
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "cannot load the persisted route table"),
        }
        let socket = match control::bind(&shared.paths) {
            Ok(socket) => socket,
            Err(error) => {
                shared.stop_listeners().await;
                return Err(error);
            }
        };
        let control = tokio::spawn(control::serve(shared.clone(), socket));
        tokio::spawn(sweep(shared.clone()));
        Ok(Server { shared, control })
    }

    /// Stops accepting, closes idle connections, and waits up to `grace` for requests and
    /// upgraded connections in flight to finish.
    pub(crate) async fn shutdown(self, grace: Duration) {
        self.shared.stop.send_replace(true);
        let _ = self.control.await;
        let _ = std::fs::remove_file(&self.shared.paths.socket);
        self.shared.stop_listeners().await;
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.upstreams.total_inflight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every few seconds, drops idle backend connections that are closed or too old.
async fn sweep(shared: Arc<Shared>) {
    const EVERY: Duration = Duration::from_secs(5);
    let mut stop = shared.stop.subscribe();
    while !*stop.borrow_and_update() {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => shared.upstreams.sweep_idle(),
            _ = stop.changed() => return,
        }
    }
}

impl Shared {
    fn new(paths: Paths) -> Shared {
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        Shared {
            table: RwLock::default(),
            http2,
            metrics: Metrics::default(),
            upstreams: Upstreams::default(),
            stop: watch::Sender::new(false),
            listeners: Mutex::default(),
            paths,
        }
    }

    /// The live table.
    pub(crate) fn current(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Routes a request and picks a backend, counting it in flight before the table lock
    /// is released: once a table swap returns, every request routed by the old table is
    /// already visible in the in-flight counts.
    pub(crate) fn pick(
        &self,
        listen: SocketAddr,
        host: &str,
        path: &str,
        pin: Pin,
        tried: &[Arc<BackendRef>],
    ) -> Picked {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = table.route(listen, host, path) else {
            return Picked::NoRoute;
        };
        let Some(backend) = route.pick(pin, tried) else {
            tracing::debug!(route = %route.name, "no backend left to pick");
            return Picked::NoBackend;
        };
        backend.metrics.request();
        Picked::Backend(Attempt {
            guard: InflightGuard::new(&backend.upstream),
            backend: backend.clone(),
            timeout: route.timeout,
        })
    }
}
