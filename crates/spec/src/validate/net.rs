//! Checks for what a route matches on: its listen address, host and path prefix.

use std::net::{IpAddr, SocketAddr};

/// Why a value was refused: `reason` follows "invalid ... `VALUE`: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub reason: &'static str,
    pub hint: Option<String>,
}

fn refused<T>(reason: &'static str, hint: Option<String>) -> Result<T, Refused> {
    Err(Refused { reason, hint })
}

/// Longest hostname, as for DNS.
const MAX_HOST: usize = 253;

/// Longest label of a hostname.
const MAX_LABEL: usize = 63;

/// `IP:PORT`, IPv6 in brackets, port 1-65535: "0.0.0.0:80", "[::1]:8080".
pub(crate) fn listen(text: &str) -> Result<SocketAddr, Refused> {
    if let Some((_, rest)) = text.split_once("://") {
        let address = rest.split('/').next().unwrap_or(rest);
        return refused(
            "an address has no scheme",
            Some(format!("write \"{address}\"")),
        );
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            return refused("the port must be 1-65535", None);
        }
        return Ok(address);
    }
    let is_port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if is_port(text) {
        return refused(
            "it has no IP address",
            Some(format!(
                "to listen on every address, write \"0.0.0.0:{text}\""
            )),
        );
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        let ip = match ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        return refused("it has no port", Some(format!("for example: \"{ip}:80\"")));
    }
    let Some((host, port)) = text.rsplit_once(':').filter(|(_, port)| is_port(port)) else {
        return refused(
            "expected IP:PORT",
            Some("for example: \"0.0.0.0:80\" or \"127.0.0.1:8080\"".to_owned()),
        );
    };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
    match host {
        "" | "*" => refused(
            "it has no IP address",
            Some(format!(
                "to listen on every address, write \"0.0.0.0:{port}\""
            )),
        ),
        _ if !port_ok => refused("the port must be 1-65535", None),
        "localhost" => refused(
            "it names a host, not an IP address",
            Some(format!("write \"127.0.0.1:{port}\"")),
        ),
        _ if host.parse::<IpAddr>().is_ok() => refused(
            "an IPv6 address goes in brackets",
            Some(format!("write \"[{host}]:{port}\"")),
        ),
        _ => refused(
            "it names a host, not an IP address",
            Some(format!(
                "listen on an address of this machine, such as \"0.0.0.0:{port}\"; match requests by name with `host`"
            )),
        ),
    }
}

/// A lowercase hostname: dot-separated labels of `[a-z0-9-]`, without port or scheme.
pub(crate) fn host(text: &str) -> Result<String, Refused> {
    if let Some((_, rest)) = text.split_once("://") {
        let host = rest.split(['/', ':']).next().unwrap_or(rest);
        return refused("a host has no scheme", Some(format!("write \"{host}\"")));
    }
    if let Some((host, _)) = text.split_once('/') {
        return refused(
            "a host has no path",
            Some(format!(
                "write \"{host}\" and match the path with `path_prefix`"
            )),
        );
    }
    let is_port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((host, _)) = text.rsplit_once(':').filter(|(_, port)| is_port(port)) {
        return refused(
            "a host has no port",
            Some(format!("write \"{host}\": the port is the one in `listen`")),
        );
    }
    if text.contains('*') {
        return refused("it must be one hostname, not a pattern", None);
    }
    if let Some(trimmed) = text.strip_suffix('.') {
        return refused(
            "it must not end with `.`",
            Some(format!("write \"{trimmed}\"")),
        );
    }
    if text.len() > MAX_HOST {
        return refused("it is longer than 253 characters", None);
    }
    if text.chars().any(|c| c.is_ascii_uppercase()) {
        let lower = text.to_ascii_lowercase();
        let hint = host(&lower).is_ok().then(|| format!("write \"{lower}\""));
        return refused("it must be lowercase", hint);
    }
    for label in text.split('.') {
        if label.is_empty() {
            return refused("it has an empty label (`..`, or a leading `.`)", None);
        }
        if label.len() > MAX_LABEL {
            return refused("a label is longer than 63 characters", None);
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return refused(
                "it may only contain lowercase letters, digits, `-` and `.`",
                None,
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return refused("a label must not start or end with `-`", None);
        }
    }
    Ok(text.to_owned())
}

/// A path that starts with `/`, without whitespace, query or fragment.
pub(crate) fn path_prefix(text: &str) -> Result<String, Refused> {
    if text.is_empty() {
        return refused("it is empty", None);
    }
    if let Some((_, rest)) = text.split_once("://") {
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        return refused(
            "the path must start with `/`",
            Some(format!(
                "write only the path: \"{path}\"; match the host with `host`"
            )),
        );
    }
    if !text.starts_with('/') {
        return refused(
            "the path must start with `/`",
            Some(format!("did you mean `/{text}`?")),
        );
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refused("it must not contain whitespace or control characters", None);
    }
    if text.contains(['?', '#']) {
        return refused("a prefix matches the path, not a query or fragment", None);
    }
    if text.contains('*') {
        let trimmed = text.trim_end_matches('*');
        let hint = (!trimmed.contains('*')).then(|| format!("write \"{trimmed}\""));
        return refused(
            "`*` is no wildcard here: a prefix already matches every path that starts with it",
            hint,
        );
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint<T: std::fmt::Debug>(result: Result<T, Refused>) -> Option<String> {
        result.unwrap_err().hint
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen("0.0.0.0:80"), Ok("0.0.0.0:80".parse().unwrap()));
        assert_eq!(listen("[::1]:8080"), Ok("[::1]:8080".parse().unwrap()));
        assert_eq!(listen("127.0.0.1:65535").unwrap().port(), 65535);
        for bad in [
            "",
            "0.0.0.0:0",
            "0.0.0.0:65536",
            "0.0.0.0",
            "80",
            ":80",
            "*:80",
            "localhost:80",
            "::1:80",
            "example.com:80",
            "http://0.0.0.0:80",
            "0.0.0.0:http",
        ] {
            assert!(listen(bad).is_err(), "{bad}");
        }
        assert_eq!(
            hint(listen("8080")).unwrap(),
            "to listen on every address, write \"0.0.0.0:8080\""
        );
        assert_eq!(
            hint(listen(":8080")).unwrap(),
            "to listen on every address, write \"0.0.0.0:8080\""
        );
        assert_eq!(
            hint(listen("localhost:80")).unwrap(),
            "write \"127.0.0.1:80\""
        );
        assert_eq!(
            hint(listen("1:2:3:4:5:6:7:8:80")).unwrap(),
            "write \"[1:2:3:4:5:6:7:8]:80\""
        );
        assert_eq!(hint(listen("::1")).unwrap(), "for example: \"[::1]:80\"");
        assert_eq!(
            hint(listen("http://0.0.0.0:80/")).unwrap(),
            "write \"0.0.0.0:80\""
        );
        assert_eq!(
            listen("0.0.0.0:0").unwrap_err().reason,
            "the port must be 1-65535"
        );
        assert_eq!(
            listen("localhost:0").unwrap_err().reason,
            "the port must be 1-65535"
        );
    }

    #[test]
    fn hosts() {
        for good in [
            "shop.example.com",
            "localhost",
            "a-b.c0",
            "127.0.0.1",
            &"a".repeat(63),
        ] {
            assert_eq!(host(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "Shop.example.com",
            "shop.example.com.",
            "shop..example.com",
            ".example.com",
            "-shop.example.com",
            "shop-.example.com",
            "shop_1.example.com",
            "*.example.com",
            "shop.example.com:443",
            "https://shop.example.com",
            "shop.example.com/api",
            &"a".repeat(64),
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
        assert_eq!(
            hint(host("Shop.Example.com")).unwrap(),
            "write \"shop.example.com\""
        );
        assert_eq!(
            hint(host("https://shop.example.com:443/x")).unwrap(),
            "write \"shop.example.com\""
        );
        assert_eq!(hint(host("Shop_1")), None);
    }

    #[test]
    fn path_prefixes() {
        for good in ["/", "/api", "/api/", "/a-b/c.d"] {
            assert_eq!(path_prefix(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "api",
            "/a b",
            "/api?x=1",
            "/api#top",
            "/api/*",
            "http://x/api",
        ] {
            assert!(path_prefix(bad).is_err(), "{bad}");
        }
        assert_eq!(hint(path_prefix("api")).unwrap(), "did you mean `/api`?");
        assert_eq!(hint(path_prefix("/api/*")).unwrap(), "write \"/api/\"");
        assert_eq!(
            hint(path_prefix("https://shop.example.com/api")).unwrap(),
            "write only the path: \"/api\"; match the host with `host`"
        );
    }
}
