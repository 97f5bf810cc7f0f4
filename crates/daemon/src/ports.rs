//! Host ports for instances: each instance gets its own port from the configured range,
//! recorded in its database row (the column is unique), so two instances never share one.

use std::collections::HashSet;
use std::net::TcpListener;

/// The lowest port in `range` that no instance holds and that can be bound on `host`
/// right now (something outside kiln may be using it).
pub(crate) fn allocate(host: &str, range: (u16, u16), used: &HashSet<u16>) -> Option<u16> {
    (range.0..=range.1)
        .filter(|port| !used.contains(port))
        .find(|port| TcpListener::bind((bind_host(host), *port)).is_ok())
}

/// How many ports of `range` no instance holds.
pub(crate) fn free(range: (u16, u16), used: &HashSet<u16>) -> usize {
    (range.0..=range.1).filter(|p| !used.contains(p)).count()
}

/// The address to bind or connect to for `host` (an unspecified address means loopback
/// for kiln's own connections).
pub(crate) fn bind_host(host: &str) -> &str {
    match host {
        "0.0.0.0" | "::" | "" => "127.0.0.1",
        other => other,
    }
}

/// `HOST:PORT`, with brackets for IPv6.
pub(crate) fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parses `FIRST-LAST`.
pub fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid port range `{text}`: expected FIRST-LAST, e.g. 20000-29999");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("20000-20009"), Ok((20000, 20009)));
        assert!(parse_range("2-1").is_err());
        assert!(parse_range("0-10").is_err());
        assert!(parse_range("80").is_err());
    }

    #[test]
    fn allocation_skips_used_and_bound_ports() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let used: HashSet<u16> = HashSet::new();
        assert_eq!(allocate("127.0.0.1", (port, port), &used), None);
        let used: HashSet<u16> = [port].into();
        assert_eq!(free((port, port), &used), 0);
    }
}
