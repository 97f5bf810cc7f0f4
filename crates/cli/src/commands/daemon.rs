//! `kiln daemon`, `kiln proxy` (the data plane the daemon starts), and `kiln __shim`,
//! the per-instance shim the daemon runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use kiln_daemon::DaemonConfig;

pub fn daemon(
    home: &Path,
    host: String,
    ports: (u16, u16),
    environment: String,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create the kiln home {}", home.display()))?;
    let shim_exe = std::env::current_exe().context("cannot find the kiln executable")?;
    kiln_daemon::run(DaemonConfig {
        home: home.to_path_buf(),
        host,
        ports,
        environment,
        shim_exe,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the shim of the instance in `dir`; its exit code is the process's.
pub fn shim(dir: &Path) -> ExitCode {
    kiln_runtime::shim_main(dir)
}

/// Runs the proxy in the foreground until SIGTERM or SIGINT.
pub fn proxy(home: &Path, workers: usize) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create the kiln home {}", home.display()))?;
    kiln_proxy::run(kiln_proxy::ProxyConfig {
        home: home.to_path_buf(),
        workers: workers.max(1),
    })?;
    Ok(ExitCode::SUCCESS)
}
