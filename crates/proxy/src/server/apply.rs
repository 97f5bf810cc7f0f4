//! Applying a route table all-or-nothing: validate, load TLS, bind new listeners, persist,
//! swap, then close the listeners the new table no longer has.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use tokio::net::TcpListener;

use super::Shared;
use crate::router::Table;
use crate::{ProxyError, RouteTable, listener, persist, table, tls};

impl Shared {
    /// Applies a table all-or-nothing and returns its version once it is live: listeners
    /// bound, TLS loaded, persisted (when `persist`), and every new request routed by it.
    pub(crate) async fn apply(
        self: &Arc<Self>,
        spec: RouteTable,
        persist: bool,
    ) -> Result<u64, ProxyError> {
        let mut listeners = self.listeners.lock().await;
        let version = spec.version;
        if let Some(live) = &self.current().spec {
            if version < live.version {
                return Err(ProxyError::StaleVersion {
                    current: live.version,
                    offered: version,
                });
            }
            if version == live.version {
                return match **live == spec {
                    true => Ok(version),
                    false => Err(ProxyError::VersionConflict { version }),
                };
            }
        }
        let validated = table::validate(&spec)?;
        let mut acceptors = HashMap::new();
        for (&address, material) in &validated.listeners {
            if let Some(material) = material {
                acceptors.insert(address, tls::acceptor(material)?);
            }
        }
        let mut fresh = Vec::new();
        for &address in validated.listeners.keys() {
            if !listeners.contains_key(&address) {
                let listener =
                    TcpListener::bind(address)
                        .await
                        .map_err(|source| ProxyError::Bind {
                            address: address.to_string(),
                            source,
                        })?;
                fresh.push((address, listener));
            }
        }
        if persist {
            persist::save(&self.paths.table, &spec).await?;
        }
        let table = Table::compile(spec, &validated, acceptors, &self.metrics, &self.upstreams);
        let old = std::mem::replace(
            &mut *self.table.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(table),
        );
        let previous = old.version();
        drop(old);
        self.metrics.set_table_version(version);
        for (address, listener) in fresh {
            let task = tokio::spawn(listener::accept_loop(self.clone(), address, listener));
            listeners.insert(address, task);
        }
        let removed: Vec<SocketAddr> = listeners
            .keys()
            .filter(|a| !validated.listeners.contains_key(a))
            .copied()
            .collect();
        for address in removed {
            if let Some(task) = listeners.remove(&address) {
                task.abort();
                let _ = task.await;
            }
        }
        self.prune_upstreams();
        tracing::info!(
            version,
            previous,
            listeners = listeners.len(),
            "route table applied"
        );
        Ok(version)
    }

    fn prune_upstreams(&self) {
        let table = self.current();
        let live: HashSet<&str> = table
            .spec
            .iter()
            .flat_map(|s| &s.routes)
            .flat_map(|r| &r.backends)
            .map(|b| b.address.as_str())
            .collect();
        self.upstreams.prune(&live);
    }

    /// Closes every data-plane listener.
    pub(super) async fn stop_listeners(&self) {
        let mut listeners = self.listeners.lock().await;
        for (_, task) in listeners.drain() {
            task.abort();
            let _ = task.await;
        }
    }
}
