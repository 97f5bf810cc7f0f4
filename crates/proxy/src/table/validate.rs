//! Checks a route table before anything of it is applied.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::{RouteTable, Tls};
use crate::ProxyError;

/// A table that passed validation: each route's parsed listen address, in route order.
#[derive(Debug)]
pub(crate) struct Validated {
    pub(crate) listens: Vec<SocketAddr>,
    /// Each route's parsed backend addresses, in order.
    pub(crate) backends: Vec<Vec<SocketAddr>>,
    /// Every listen address with its TLS material (one per address).
    pub(crate) listeners: HashMap<SocketAddr, Option<Tls>>,
}

/// Validates names, addresses, weights, prefixes and per-address TLS consistency.
pub(crate) fn validate(table: &RouteTable) -> Result<Validated, ProxyError> {
    let invalid = |message: String| Err(ProxyError::InvalidTable(message));
    let mut names = HashSet::new();
    let mut matches = HashSet::new();
    let mut listens = Vec::with_capacity(table.routes.len());
    let mut backends = Vec::with_capacity(table.routes.len());
    let mut tls: HashMap<SocketAddr, Option<Tls>> = HashMap::new();
    for route in &table.routes {
        let name = &route.name;
        if name.is_empty() {
            return invalid("a route has an empty name".into());
        }
        if !names.insert(name.as_str()) {
            return invalid(format!("route {name}: the name is used twice"));
        }
        let Ok(listen) = route.listen.parse::<SocketAddr>() else {
            return invalid(format!(
                "route {name}: listen {:?} is not an IP:port socket address",
                route.listen
            ));
        };
        if listen.port() == 0 {
            return invalid(format!("route {name}: listen port 0 is not allowed"));
        }
        if route.service.is_empty() {
            return invalid(format!("route {name}: service is empty"));
        }
        if route.canary_weight > 100 {
            return invalid(format!(
                "route {name}: canary_weight {} is above 100",
                route.canary_weight
            ));
        }
        if let Some(prefix) = &route.path_prefix
            && !prefix.starts_with('/')
        {
            return invalid(format!(
                "route {name}: path_prefix {prefix:?} must start with /"
            ));
        }
        if let Some(host) = &route.host
            && (host.is_empty() || host.contains(['/', ' ']))
        {
            return invalid(format!("route {name}: host {host:?} is not a host name"));
        }
        let host = route
            .host
            .as_ref()
            .map(|h| strip_port(h).to_ascii_lowercase());
        if !matches.insert((listen, host, route.path_prefix.clone())) {
            return invalid(format!(
                "route {name}: another route has the same listen, host and path_prefix"
            ));
        }
        match tls.get(&listen) {
            Some(existing) if existing != &route.tls => {
                return invalid(format!(
                    "route {name}: routes on {listen} disagree on TLS; one certificate per listen address"
                ));
            }
            Some(_) => {}
            None => {
                tls.insert(listen, route.tls.clone());
            }
        }
        let mut sockets = Vec::with_capacity(route.backends.len());
        for backend in &route.backends {
            let Ok(socket) = backend.address.parse::<SocketAddr>() else {
                return invalid(format!(
                    "route {name}: backend address {:?} is not an IP:port socket address",
                    backend.address
                ));
            };
            sockets.push(socket);
            if backend.version.is_empty() {
                return invalid(format!(
                    "route {name}: backend {} has an empty version",
                    backend.address
                ));
            }
        }
        listens.push(listen);
        backends.push(sockets);
    }
    Ok(Validated {
        listens,
        backends,
        listeners: tls,
    })
}

/// `host:port` → `host`, keeping bracketed IPv6 literals whole.
pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Group, Route};

    fn route(name: &str, listen: &str) -> Route {
        Route {
            name: name.into(),
            listen: listen.into(),
            host: None,
            path_prefix: None,
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
    fn duplicate_names_bad_weights_and_addresses_are_refused() {
        let ok = RouteTable {
            version: 1,
            routes: vec![route("a", "127.0.0.1:80")],
        };
        assert!(validate(&ok).is_ok());
        let mut dup = ok.clone();
        let mut second = route("a", "127.0.0.1:81");
        second.path_prefix = Some("/x".into());
        dup.routes.push(second);
        assert!(validate(&dup).is_err());
        let mut weight = ok.clone();
        weight.routes[0].canary_weight = 101;
        assert!(validate(&weight).is_err());
        let mut listen = ok.clone();
        listen.routes[0].listen = "localhost:80".into();
        assert!(validate(&listen).is_err());
        let mut prefix = ok;
        prefix.routes[0].path_prefix = Some("api".into());
        assert!(validate(&prefix).is_err());
    }

    #[test]
    fn strip_port_handles_names_and_ipv6() {
        assert_eq!(strip_port("shop.example.com:8080"), "shop.example.com");
        assert_eq!(strip_port("shop.example.com"), "shop.example.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
