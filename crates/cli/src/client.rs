//! A small blocking client of the daemon's HTTP/JSON API (`docs/api.md`) on its unix
//! socket: one connection per request, `Connection: close`.

mod response;

use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kiln_daemon::api::types::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long to wait for the daemon's answer.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request("GET", path, None)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body).context("encoding the request")?;
        self.request("POST", path, Some(&body))
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request("DELETE", path, None)
    }

    fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<T> {
        let raw = self.exchange(method, path, body)?;
        let response = response::parse(&raw)
            .with_context(|| format!("reading the daemon's answer to {method} {path}"))?;
        if !(200..300).contains(&response.status) {
            let message = match serde_json::from_slice::<ErrorBody>(&response.body) {
                Ok(e) => e.error,
                Err(_) => format!(
                    "the daemon answered {method} {path} with {} {}: {}",
                    response.status,
                    response.reason,
                    String::from_utf8_lossy(&response.body).trim()
                ),
            };
            // Just the daemon's message: a spec error prints as `error: kiln.toml:7:9: …`.
            anyhow::bail!("{message}");
        }
        serde_json::from_slice(&response.body)
            .with_context(|| format!("decoding the daemon's answer to {method} {path}"))
    }

    /// Sends one request and reads everything until the daemon closes the connection.
    fn exchange(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => anyhow::anyhow!(
                "cannot reach the kiln daemon at {}: is `kiln daemon` running?",
                self.socket.display()
            ),
            _ => anyhow::Error::new(e).context(format!(
                "cannot connect to the kiln daemon at {}",
                self.socket.display()
            )),
        })?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: kiln\r\nAccept: application/json\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        if !body.is_empty() {
            request.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .with_context(|| format!("sending {method} {path} to the kiln daemon"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => anyhow::anyhow!(
                "the kiln daemon did not answer {method} {path} within {}s",
                READ_TIMEOUT.as_secs()
            ),
            _ => anyhow::Error::new(e).context(format!(
                "reading the kiln daemon's answer to {method} {path}"
            )),
        })?;
        Ok(raw)
    }
}

/// `?a=1&b=x` from the pairs that have a value, percent-encoded; empty when none do.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        let Some(value) = value else { continue };
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::net::UnixListener;

    #[test]
    fn talks_http_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("kiln.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"e\r\na\r\nrror\":\"x\"}\r\n0\r\n\r\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 32\r\n\r\n{\"error\":\"kiln.toml:7:9: nope\"}\n",
            ] {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.push((head, String::from_utf8(body).unwrap()));
                reader.into_inner().write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        let client = Client::new(socket);
        let got: ErrorBody = client
            .post("/v1/apply", &serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(got.error, "x");
        let err = client.get::<ErrorBody>("/v1/status").unwrap_err();
        assert_eq!(err.to_string(), "kiln.toml:7:9: nope");

        let seen = server.join().unwrap();
        assert!(
            seen[0].0.starts_with("POST /v1/apply HTTP/1.1\r\n"),
            "{}",
            seen[0].0
        );
        assert!(
            seen[0].0.contains("Host: kiln\r\n") && seen[0].0.contains("Connection: close\r\n")
        );
        assert_eq!(seen[0].1, r#"{"a":1}"#);
        assert!(seen[1].0.starts_with("GET /v1/status HTTP/1.1\r\n"));
        assert!(seen[1].0.contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn a_missing_socket_says_to_start_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("kiln.sock");
        let err = Client::new(socket.clone())
            .get::<ErrorBody>("/v1/status")
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!(
                "cannot reach the kiln daemon at {}: is `kiln daemon` running?",
                socket.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[
                ("service", Some("web".into())),
                ("x", None),
                ("q", Some("a b&c".into()))
            ]),
            "?service=web&q=a%20b%26c"
        );
    }
}
