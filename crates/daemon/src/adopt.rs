//! Startup: reconciling the database with what is really there, after a crash, a
//! SIGKILL or a reboot, before the first reconcile pass.
//!
//! - `running` rows whose process lives are adopted: their health checker restarts
//!   from the readiness last persisted, so traffic-ready instances stay ready.
//!   Rows whose process is gone are left to the loop, which replaces them.
//! - `creating` rows: the start was interrupted. If runc runs the container it is
//!   adopted; otherwise whatever exists of it is removed along with the row.
//! - `stopping` rows are left to the loop, which carries the stop on.
//! - Containers in kiln's runc root and instance dirs (mounts) without a row are
//!   orphans of an interrupted operation: they are removed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kiln_state::InstanceState;

use crate::DaemonError;
use crate::daemon::{Daemon, Health, new_event};
use crate::health;

/// Adopts or cleans up everything found; see the module doc.
pub(crate) fn adopt(d: &Arc<Daemon>) -> Result<(), DaemonError> {
    let rows = d.db().instances()?;
    let observed = d.runtime.list().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list runc's containers: adopting from the database alone");
        Vec::new()
    });
    let leftovers = d.runtime.leftovers().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list instance dirs");
        Vec::new()
    });
    let known: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for mut row in rows.clone() {
        match row.state {
            InstanceState::Running => {
                let alive = crate::launch::row_alive(&row);
                d.live().health.insert(
                    row.id.clone(),
                    Health {
                        ready: alive && row.ready,
                        failed: None,
                    },
                );
                if alive && let Some(def) = d.definition(&row.def_hash) {
                    let handle = health::spawn(d.clone(), &row, def, row.ready);
                    d.live().probes.insert(row.id.clone(), handle);
                }
            }
            InstanceState::Creating => {
                let running = observed
                    .iter()
                    .find(|o| o.id == row.id && o.status == "running")
                    .and_then(|o| o.pid)
                    .and_then(|pid| kiln_runtime::process_start_time(pid).map(|s| (pid, s)));
                match running {
                    Some((pid, start)) => {
                        row.state = InstanceState::Running;
                        row.pid = Some(pid);
                        row.pid_start = Some(start);
                        row.started_ms = Some(crate::clock::now_ms());
                        let message = format!("adopted after a restart, pid {pid}");
                        let event = new_event(
                            "instance.adopted",
                            Some(&row.service),
                            Some(&row.id),
                            &message,
                        );
                        d.db().update_instance(&row, Some(&event))?;
                        d.live().health.insert(row.id.clone(), Health::default());
                        if let Some(def) = d.definition(&row.def_hash) {
                            let handle = health::spawn(d.clone(), &row, def, false);
                            d.live().probes.insert(row.id.clone(), handle);
                        }
                    }
                    None => match d.runtime.stop(&row.id, 9, Duration::ZERO) {
                        Ok(()) => {
                            let event = new_event(
                                "instance.failed",
                                Some(&row.service),
                                Some(&row.id),
                                "its start was interrupted by a daemon restart: removed",
                            );
                            d.db().delete_instance(&row.id, Some(&event))?;
                        }
                        Err(e) => {
                            // The loop carries the stop on; the daemon must come up.
                            row.state = InstanceState::Stopping;
                            let why = format!(
                                "its start was interrupted by a daemon restart; removing it failed: {e}"
                            );
                            row.stop_reason = Some(why.clone());
                            let event = new_event(
                                "instance.failed",
                                Some(&row.service),
                                Some(&row.id),
                                &why,
                            );
                            d.db().update_instance(&row, Some(&event))?;
                        }
                    },
                }
            }
            InstanceState::Stopping => {}
        }
    }
    let orphans: HashSet<&str> = observed
        .iter()
        .map(|o| o.id.as_str())
        .chain(leftovers.iter().map(String::as_str))
        .filter(|id| !known.contains(id))
        .collect();
    for id in orphans {
        match d.runtime.stop(id, 9, Duration::ZERO) {
            Ok(()) => d.event(
                "instance.orphan",
                None,
                Some(id),
                "a container or mount without a database row: removed",
            ),
            // Not kiln's to judge (an id kiln never makes) or not removable now: the
            // daemon starts anyway, and says so.
            Err(e) => d.event(
                "instance.orphan",
                None,
                Some(id),
                &format!("a container or mount without a database row; cannot remove it: {e}"),
            ),
        }
    }
    Ok(())
}
