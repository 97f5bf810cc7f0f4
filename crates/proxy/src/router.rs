//! The compiled route table the data plane reads once per request: listen address → routes,
//! matched by host and longest path prefix.

mod pick;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;
use crate::table::validate::{Validated, strip_port};
use crate::upstream::Upstreams;
use crate::{Group, RouteTable};

pub(crate) use pick::{BackendRef, Pin};

/// What the data plane serves. Swapped whole; never changed in place.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// The table as pushed; `None` until the first one.
    pub(crate) spec: Option<Arc<RouteTable>>,
    /// A few entries: a linear scan beats hashing the address on every request.
    listeners: Vec<(SocketAddr, ListenerRoutes)>,
}

/// The routes on one listen address and how to accept its connections.
pub(crate) struct ListenerRoutes {
    pub(crate) tls: Option<TlsAcceptor>,
    /// Most specific first: host routes before any-host routes, longer prefixes first.
    pub(crate) routes: Vec<CompiledRoute>,
}

impl std::fmt::Debug for ListenerRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRoutes")
            .field("tls", &self.tls.is_some())
            .field("routes", &self.routes)
            .finish()
    }
}

/// One route, ready for matching and backend picking.
#[derive(Debug)]
pub(crate) struct CompiledRoute {
    pub(crate) name: String,
    host: Option<String>,
    prefix: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) canary_weight: u32,
    /// Stable, then canary backends.
    pub(crate) groups: [Vec<Arc<BackendRef>>; 2],
    pick: pick::PickState,
}

impl Table {
    /// Builds the table from a validated spec and the TLS acceptors of its listen addresses.
    pub(crate) fn compile(
        spec: RouteTable,
        validated: &Validated,
        mut tls: HashMap<SocketAddr, TlsAcceptor>,
        metrics: &Metrics,
        upstreams: &Upstreams,
    ) -> Table {
        let mut listeners: HashMap<SocketAddr, ListenerRoutes> = HashMap::new();
        for (index, (route, &listen)) in spec.routes.iter().zip(&validated.listens).enumerate() {
            let backends = |group: Group| {
                route
                    .backends
                    .iter()
                    .zip(&validated.backends[index])
                    .filter(|(b, _)| b.group == group)
                    .map(|(b, &socket)| {
                        let metrics = metrics.version(&route.name, &route.service, &b.version);
                        let upstream = upstreams.get(&b.address, socket);
                        Arc::new(BackendRef { upstream, metrics })
                    })
                    .collect::<Vec<_>>()
            };
            let compiled = CompiledRoute {
                name: route.name.clone(),
                host: route
                    .host
                    .as_ref()
                    .map(|h| strip_port(h).to_ascii_lowercase()),
                prefix: route.path_prefix.clone(),
                timeout: (route.timeout_ms > 0).then(|| Duration::from_millis(route.timeout_ms)),
                canary_weight: route.canary_weight,
                groups: [backends(Group::Stable), backends(Group::Canary)],
                pick: pick::PickState::default(),
            };
            listeners
                .entry(listen)
                .or_insert_with(|| ListenerRoutes {
                    tls: tls.remove(&listen),
                    routes: Vec::new(),
                })
                .routes
                .push(compiled);
        }
        let mut listeners: Vec<_> = listeners.into_iter().collect();
        for (_, listener) in &mut listeners {
            listener.routes.sort_by_key(|r| {
                let prefix = r.prefix.as_ref().map_or(0, String::len);
                std::cmp::Reverse((r.host.is_some(), prefix))
            });
        }
        Table {
            spec: Some(Arc::new(spec)),
            listeners,
        }
    }

    /// The version of the live table, if any.
    pub(crate) fn version(&self) -> Option<u64> {
        self.spec.as_ref().map(|s| s.version)
    }

    /// The routes on one listen address.
    pub(crate) fn listener(&self, listen: SocketAddr) -> Option<&ListenerRoutes> {
        self.listeners
            .iter()
            .find(|(a, _)| *a == listen)
            .map(|(_, l)| l)
    }

    /// The most specific route on `listen` for this host (port ignored) and path.
    pub(crate) fn route(
        &self,
        listen: SocketAddr,
        host: &str,
        path: &str,
    ) -> Option<&CompiledRoute> {
        let host = strip_port(host);
        self.listener(listen)?.routes.iter().find(|r| {
            r.host.as_ref().is_none_or(|h| h.eq_ignore_ascii_case(host))
                && r.prefix.as_ref().is_none_or(|p| prefix_matches(p, path))
        })
    }
}

/// Prefix match on whole path segments: `/api` matches `/api` and `/api/x`, not `/apix`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::validate;
    use crate::{Backend, Route};

    fn route(name: &str, host: Option<&str>, prefix: Option<&str>) -> Route {
        Route {
            name: name.into(),
            listen: "127.0.0.1:8080".into(),
            host: host.map(Into::into),
            path_prefix: prefix.map(Into::into),
            service: "web".into(),
            timeout_ms: 0,
            tls: None,
            backends: vec![Backend {
                address: "127.0.0.1:9".into(),
                instance: "i".into(),
                version: "v1".into(),
                group: Group::Stable,
            }],
            canary_weight: 0,
        }
    }

    #[test]
    fn host_routes_win_then_longest_prefix() {
        let spec = RouteTable {
            version: 1,
            routes: vec![
                route("any", None, None),
                route("api", None, Some("/api")),
                route("shop", Some("Shop.Example.com"), None),
                route("shop-api", Some("shop.example.com"), Some("/api/v2")),
            ],
        };
        let validated = validate(&spec).expect("valid");
        let table = Table::compile(
            spec,
            &validated,
            HashMap::new(),
            &Metrics::default(),
            &Upstreams::default(),
        );
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let name =
            |host: &str, path: &str| table.route(listen, host, path).map(|r| r.name.as_str());
        assert_eq!(name("other", "/"), Some("any"));
        assert_eq!(name("other", "/api/x"), Some("api"));
        assert_eq!(name("other", "/apix"), Some("any"));
        assert_eq!(name("shop.example.com:8080", "/api/x"), Some("shop"));
        assert_eq!(name("SHOP.example.com", "/api/v2/x"), Some("shop-api"));
        let other: SocketAddr = "127.0.0.1:8081".parse().expect("addr");
        assert!(table.route(other, "x", "/").is_none());
    }
}
