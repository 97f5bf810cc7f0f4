//! Hop-by-hop headers (stripped both ways) and the X-Forwarded-* headers.

use hyper::header::{
    CONNECTION, Entry, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, those named in `Connection` included.
///
/// Returns the `Upgrade` protocol when the message asked for one (`Connection: upgrade`).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    // Messages have few headers and usually no hop-by-hop one but `Connection`: one scan
    // is cheaper than a lookup per hop-by-hop name.
    if !headers
        .keys()
        .any(|name| name == UPGRADE || HOP_BY_HOP.contains(name))
    {
        return None;
    }
    let mut upgrade = false;
    if headers.contains_key(CONNECTION) {
        let mut named = Vec::new();
        for value in headers.get_all(CONNECTION) {
            for token in value.to_str().unwrap_or_default().split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("upgrade") {
                    upgrade = true;
                } else if token.eq_ignore_ascii_case("close")
                    || token.eq_ignore_ascii_case("keep-alive")
                    || token.is_empty()
                {
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    let protocol = headers.remove(UPGRADE);
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade { protocol } else { None }
}

/// Appends the client to `X-Forwarded-For`, sets `X-Forwarded-Proto` and `-Host`.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    proto: HeaderValue,
    host: Option<HeaderValue>,
) {
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(entry) => {
            entry.insert(client_ip.clone());
        }
        Entry::Occupied(mut entry) => {
            let mut joined = Vec::with_capacity(64);
            for value in entry.iter() {
                joined.extend_from_slice(value.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(client_ip.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&joined) {
                entry.insert(value);
            }
        }
    }
    headers.insert(X_FORWARDED_PROTO, proto);
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_listed_and_standard_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        assert_eq!(strip_hop_by_hop(&mut h), None);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn upgrade_is_reported_only_when_connection_asks() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(
            strip_hop_by_hop(&mut h),
            Some(HeaderValue::from_static("websocket"))
        );
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(strip_hop_by_hop(&mut h), None);
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let ip = HeaderValue::from_static("127.0.0.1");
        add_forwarded(&mut h, &ip, HeaderValue::from_static("https"), None);
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
    }
}
