//! Small blocking clients of the control socket, for the daemon's blocking threads: std
//! `UnixStream` and hand-written HTTP/1.1, one request per connection.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::server::Paths;
use crate::{ProxyError, RouteTable};

/// Time allowed for the read-only calls.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pushes a table and returns the version the proxy confirmed as live.
///
/// `Ok` means every new request is routed by this table (or a newer one) and it is
/// persisted. A [`ProxyError::StaleVersion`] or [`ProxyError::VersionConflict`] means a
/// version conflict (409); [`ProxyError::InvalidTable`] means the proxy refused the table
/// (400) and the old one is fully in effect.
pub fn put_table(home: &Path, table: &RouteTable, timeout: Duration) -> Result<u64, ProxyError> {
    let body = serde_json::to_vec(table).map_err(|e| ProxyError::InvalidTable(e.to_string()))?;
    let (status, body) = exchange(home, "PUT", "/v1/table", Some(&body), timeout)?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| protocol(home, e))?;
    let message = || value["error"].as_str().unwrap_or("no message").to_owned();
    match status {
        200 => value["version"]
            .as_u64()
            .ok_or_else(|| protocol(home, "no version in the answer")),
        409 => {
            let current = value["current"].as_u64().unwrap_or_default();
            match value["kind"].as_str() {
                Some("version_conflict") => Err(ProxyError::VersionConflict { version: current }),
                _ => Err(ProxyError::StaleVersion {
                    current,
                    offered: table.version,
                }),
            }
        }
        400 => Err(ProxyError::InvalidTable(message())),
        status => Err(ProxyError::Refused {
            status,
            message: message(),
        }),
    }
}

/// The live table, or `None` if the proxy has none yet.
pub fn get_table(home: &Path) -> Result<Option<RouteTable>, ProxyError> {
    let (status, body) = exchange(home, "GET", "/v1/table", None, DEFAULT_TIMEOUT)?;
    match status {
        200 => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| protocol(home, e)),
        404 => Ok(None),
        status => Err(refused(status, &body)),
    }
}

/// The table the proxy of `home` persisted (what it serves as soon as it starts), read
/// from its file without asking the proxy; `Ok(None)` if there is none.
pub fn persisted_table(home: &Path) -> Result<Option<RouteTable>, ProxyError> {
    crate::persist::load(&Paths::new(home).table)
}

/// Requests and upgraded connections in flight per backend address. An address that is
/// absent has nothing in flight.
pub fn inflight(home: &Path) -> Result<BTreeMap<String, u64>, ProxyError> {
    let (status, body) = exchange(home, "GET", "/v1/inflight", None, DEFAULT_TIMEOUT)?;
    match status {
        200 => serde_json::from_slice(&body).map_err(|e| protocol(home, e)),
        status => Err(refused(status, &body)),
    }
}

/// The proxy's metrics in Prometheus text format.
pub fn metrics(home: &Path) -> Result<String, ProxyError> {
    let (status, body) = exchange(home, "GET", "/metrics", None, DEFAULT_TIMEOUT)?;
    match status {
        200 => String::from_utf8(body).map_err(|e| protocol(home, e)),
        status => Err(refused(status, &body)),
    }
}

fn exchange(
    home: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ProxyError> {
    let socket = Paths::new(home).socket;
    let unreachable = |source| ProxyError::Unreachable {
        path: socket.clone(),
        source,
    };
    let mut stream = UnixStream::connect(&socket).map_err(unreachable)?;
    let timeout = Some(timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(timeout).map_err(unreachable)?;
    stream.set_write_timeout(timeout).map_err(unreachable)?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: kiln-proxy\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(unreachable)?;
    stream.write_all(body).map_err(unreachable)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(unreachable)?;
    parse(&answer).ok_or_else(|| protocol(home, "malformed HTTP answer"))
}

/// Status and body of an HTTP/1.1 answer with a `Content-Length` (all ours have one).
fn parse(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let body = &answer[end + 4..];
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(body.len());
    Some((status, body.get(..length)?.to_vec()))
}

fn protocol(home: &Path, message: impl std::fmt::Display) -> ProxyError {
    ProxyError::Protocol {
        path: Paths::new(home).socket,
        message: message.to_string(),
    }
}

fn refused(status: u16, body: &[u8]) -> ProxyError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    ProxyError::Refused { status, message }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_status_and_sized_body() {
        let answer = b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse(answer), Some((409, b"{}".to_vec())));
        assert_eq!(parse(b"garbage"), None);
    }
}
