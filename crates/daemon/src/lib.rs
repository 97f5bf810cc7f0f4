//! kiln daemon: the control plane of one server.
//!
//! It serves the API (`docs/api.md`) on a unix socket, keeps the desired state and every
//! instance in SQLite, and runs the reconcile loop that makes the instances match:
//! starting, health-checking, replacing and stopping them. Instances run under runc
//! with a per-instance shim, so they keep running while the daemon is down; a new daemon
//! adopts them (`adopt`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod adopt;
pub mod api;
mod apply;
mod clock;
mod daemon;
mod definition;
mod drift;
mod error;
mod health;
mod housekeeping;
mod launch;
mod logging;
mod ports;
mod reconcile;
mod rollouts;
mod server;
mod traffic;

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use clock::rfc3339_ms;
pub use error::DaemonError;
pub use ports::parse_range;

use daemon::Daemon;

/// How the daemon is configured (from `kiln daemon`'s flags).
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// KILN_HOME: store, layers, instances, logs, state.db, kiln.sock.
    pub home: PathBuf,
    /// The host address instances listen on (host network).
    pub host: String,
    /// The first and last port handed to instances.
    pub ports: (u16, u16),
    /// A name for this deployment environment, given to instances in
    /// `/run/kiln/instance.json`.
    pub environment: String,
    /// The `kiln` binary, run as each instance's shim (`kiln __shim DIR`).
    pub shim_exe: PathBuf,
}

/// The socket path under `home`.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("kiln.sock")
}

/// The runc state root of instances (apart from the builder's, so that neither
/// mistakes the other's containers for its own).
pub fn runc_root(home: &Path) -> PathBuf {
    home.join("runc-instances")
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT. Instances keep running
/// when it stops.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    logging::init();
    let home = config.home.clone();
    fs::create_dir_all(&home).map_err(DaemonError::io(&home))?;
    // Owner only: the socket (root-equivalent), instance env in instance.json and the
    // logs all live below it.
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(DaemonError::io(&home))?;
    let _lock = lock_home(&home)?;
    let state = kiln_state::State::open(&home.join("state.db"))?;
    let store = kiln_image::Store::open(&home)?;
    let runtime = kiln_runtime::Instances::new(
        runc_root(&home),
        home.join("instances"),
        config.shim_exe.clone(),
    )?;
    let runtime_threads = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DaemonError::io(&home))?;
    let d = Arc::new(Daemon::new(config, state, store, runtime));
    runtime_threads.block_on(async move {
        let socket = socket_path(&home);
        {
            let d = d.clone();
            tokio::task::spawn_blocking(move || adopt::adopt(&d))
                .await
                .map_err(|e| DaemonError::Config(format!("adoption task failed: {e}")))??;
        }
        rollouts::load(&d)?;
        // What the proxy serves now, so that stops wait for it from the first pass.
        match kiln_proxy::client::get_table(&d.config.home) {
            Ok(Some(table)) => {
                let mut live = d.live();
                live.confirmed = Some(Arc::new(table));
                live.proxy_known = true;
            }
            Ok(None) => d.live().proxy_known = true,
            // Not answering (yet): what it served last may come back with it.
            Err(_) => {
                if let Ok(Some(table)) = kiln_proxy::client::persisted_table(&d.config.home) {
                    d.live().maybe_live.push(Arc::new(table.routes));
                }
            }
        }
        let listener = server::bind(&socket)?;
        d.event(
            "daemon.started",
            None,
            None,
            &format!(
                "pid {}, serving {}, ports {}-{} on {}",
                std::process::id(),
                socket.display(),
                d.config.ports.0,
                d.config.ports.1,
                d.config.host
            ),
        );
        let server = tokio::spawn(server::serve(d.clone(), listener));
        let reconciler = tokio::spawn(reconcile::run(d.clone()));
        wait_for_signal().await;
        tracing::info!("stopping: instances keep running");
        server.abort();
        reconciler.abort();
        let _ = fs::remove_file(&socket);
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon runs until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One daemon per home: an exclusive flock on `home/daemon.lock`, holding our pid.
fn lock_home(home: &Path) -> Result<fs::File, DaemonError> {
    use std::io::{Read, Seek, Write};
    let path = home.join("daemon.lock");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(DaemonError::io(&path))?;
    if rustix::fs::flock(
        file.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(DaemonError::AlreadyRunning {
            home: home.to_path_buf(),
            pid: pid.trim().to_string(),
        });
    }
    file.set_len(0).map_err(DaemonError::io(&path))?;
    file.rewind().map_err(DaemonError::io(&path))?;
    write!(file, "{}", std::process::id()).map_err(DaemonError::io(&path))?;
    Ok(file)
}
