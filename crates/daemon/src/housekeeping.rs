//! Keeping the daemon's own data bounded: old events, and the logs of instances that are
//! long gone (a crash loop leaves one set of log files per attempt).

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::daemon::Daemon;

/// Events kept in the database; older ones are pruned.
const EVENTS_KEPT: usize = 100_000;

/// Logs of an instance that no longer exists are kept this long after their last write
/// (`KILN_LOG_RETENTION_HOURS`), for post-mortems.
const LOG_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Prunes events and sweeps old logs; errors are logged, never fatal.
pub(crate) fn run(d: &Daemon) {
    match d.db().prune_events(EVENTS_KEPT) {
        Ok(0) => {}
        Ok(n) => tracing::info!(pruned = n, "pruned old events"),
        Err(e) => tracing::warn!(error = %e, "cannot prune events"),
    }
    let live: HashSet<String> = match d.db().instances() {
        Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list instances for the log sweep");
            return;
        }
    };
    let retention = std::env::var("KILN_LOG_RETENTION_HOURS")
        .ok()
        .and_then(|h| h.parse::<u64>().ok())
        .map_or(LOG_RETENTION, |h| Duration::from_secs(h * 3600));
    sweep_logs(&d.config.home.join("logs"), &live, retention);
}

/// Removes `logs/SERVICE/ID.log*` of instances not in `live` whose last write is older
/// than `retention`.
fn sweep_logs(logs: &Path, live: &HashSet<String>, retention: Duration) {
    let Ok(services) = fs::read_dir(logs) else {
        return;
    };
    let now = SystemTime::now();
    for service in services.flatten() {
        let Ok(files) = fs::read_dir(service.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(id) = name.to_str().and_then(|n| n.split(".log").next()) else {
                continue;
            };
            if live.contains(id) {
                continue;
            }
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > retention);
            if old && let Err(e) = fs::remove_file(file.path()) {
                tracing::warn!(error = %e, path = %file.path().display(), "cannot remove an old log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_logs_of_gone_instances_go() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("web");
        fs::create_dir_all(&web).unwrap();
        for name in ["web-gone.log", "web-gone.log.1", "web-live.log"] {
            fs::write(web.join(name), "{}\n").unwrap();
        }
        let live: HashSet<String> = ["web-live".to_string()].into();
        sweep_logs(dir.path(), &live, Duration::from_secs(3600));
        assert!(web.join("web-gone.log").exists(), "young logs stay");
        sweep_logs(dir.path(), &live, Duration::ZERO);
        assert!(!web.join("web-gone.log").exists());
        assert!(!web.join("web-gone.log.1").exists());
        assert!(web.join("web-live.log").exists());
    }
}
