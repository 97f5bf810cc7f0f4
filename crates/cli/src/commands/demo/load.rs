//! The demo's load generator: paced `GET`s from a few threads against the route, half
//! of them on one keep-alive connection each, half on a new connection per request;
//! every request is recorded with its outcome and the version that answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connect, read and write timeout of each request.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// A 5xx answer.
    ServerError,
    /// Any other status.
    Unexpected(u16),
    /// No answer: refused, reset, timed out, cut short…
    Error(String),
}

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    pub start: Instant,
    pub outcome: Outcome,
    /// The version named in the body (`version v2`), if any.
    pub version: Option<String>,
}

/// Requests counted by outcome and by the version that answered.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub ok: u64,
    pub server_errors: u64,
    pub unexpected: u64,
    pub errors: u64,
    /// Answers (any status) per version.
    pub versions: BTreeMap<String, u64>,
    /// Failed answers per version.
    pub failed_versions: BTreeMap<String, u64>,
    /// The first few connection errors, for messages.
    pub error_kinds: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, s: &Sample) {
        match &s.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::ServerError => self.server_errors += 1,
            Outcome::Unexpected(_) => self.unexpected += 1,
            Outcome::Error(kind) => {
                self.errors += 1;
                *self.error_kinds.entry(kind.clone()).or_insert(0) += 1;
            }
        }
        if let Some(v) = &s.version {
            *self.versions.entry(v.clone()).or_insert(0) += 1;
            if s.outcome != Outcome::Ok {
                *self.failed_versions.entry(v.clone()).or_insert(0) += 1;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.failed()
    }

    /// 5xx, other statuses and connection errors.
    pub fn failed(&self) -> u64 {
        self.server_errors + self.unexpected + self.errors
    }

    /// `210 ok, 0 failed  (v1 48% / v2 52%)`, with the kinds of failures when any.
    pub fn line(&self) -> String {
        let mut out = format!("{} ok, {} failed", self.ok, self.failed());
        if self.failed() > 0 {
            out.push_str(&format!(" [{}]", self.failure_kinds()));
        }
        out.push_str(&format!("  ({})", self.shares()));
        out
    }

    /// `412 5xx (all from v3), 1 connection error (connect refused)`.
    pub fn failure_kinds(&self) -> String {
        let mut parts = Vec::new();
        if self.server_errors > 0 {
            let from: Vec<String> = self
                .failed_versions
                .iter()
                .map(|(v, n)| format!("{n} from {v}"))
                .collect();
            parts.push(format!("{} 5xx: {}", self.server_errors, from.join(", ")));
        }
        if self.unexpected > 0 {
            parts.push(format!("{} unexpected status", self.unexpected));
        }
        if self.errors > 0 {
            let kinds: Vec<String> = self
                .error_kinds
                .iter()
                .map(|(k, n)| format!("{n}× {k}"))
                .collect();
            parts.push(format!(
                "{} connection error{}: {}",
                self.errors,
                if self.errors == 1 { "" } else { "s" },
                kinds.join(", ")
            ));
        }
        parts.join("; ")
    }

    /// `v1 48% / v2 52%` of the answers, or `no answers`.
    pub fn shares(&self) -> String {
        let answered: u64 = self.versions.values().sum();
        if answered == 0 {
            return "no answers".to_string();
        }
        let mut out = String::new();
        for (v, n) in &self.versions {
            if !out.is_empty() {
                out.push_str(" / ");
            }
            let _ = write!(out, "{v} {:.0}%", 100.0 * *n as f64 / answered as f64);
        }
        out
    }
}

/// Load running in the background.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    /// In the order requests completed.
    samples: Arc<Mutex<Vec<Sample>>>,
    pub started: Instant,
}

impl Load {
    /// `threads` threads sending `rate` requests per second in all to `GET path` at
    /// `address`; even threads keep their connection alive, odd ones open one per request.
    pub fn start(address: SocketAddr, path: &str, threads: usize, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let interval = Duration::from_secs_f64(threads as f64 / rate);
        let handles = (0..threads)
            .map(|thread| {
                let stop = stop.clone();
                let samples = samples.clone();
                let path = path.to_string();
                let keepalive = thread % 2 == 0;
                // Spread the threads' requests over one interval.
                let offset = interval.mul_f64(thread as f64 / threads as f64);
                std::thread::spawn(move || {
                    let mut next = Instant::now() + offset;
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if now < next {
                            std::thread::sleep(next - now);
                        } else if now > next + interval {
                            next = now;
                        }
                        next += interval;
                        let start = Instant::now();
                        let (outcome, version) = request(&mut conn, address, &path, keepalive);
                        lock(&samples).push(Sample {
                            start,
                            outcome,
                            version,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            handles,
            samples,
            started: Instant::now(),
        }
    }

    /// The requests completed since `cursor` (an index into the samples), which moves on.
    pub fn take_new(&self, cursor: &mut usize) -> Counts {
        let samples = lock(&self.samples);
        let mut counts = Counts::default();
        for s in samples.iter().skip(*cursor) {
            counts.add(s);
        }
        *cursor = samples.len();
        counts
    }

    /// The requests that started in `[from, to)`.
    pub fn between(&self, from: Instant, to: Instant) -> Counts {
        let mut counts = Counts::default();
        for s in lock(&self.samples)
            .iter()
            .filter(|s| s.start >= from && s.start < to)
        {
            counts.add(s);
        }
        counts
    }

    /// Stops the threads (each finishes its request in flight).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `GET path`, on the kept connection if any; keeps the connection for the next
/// request when `keepalive` and the answer allow it.
fn request(
    conn: &mut Option<BufReader<TcpStream>>,
    address: SocketAddr,
    path: &str,
    keepalive: bool,
) -> (Outcome, Option<String>) {
    let reused = conn.is_some();
    let mut c = match conn.take() {
        Some(c) => c,
        None => match connect(address) {
            Ok(c) => c,
            Err(e) => return (Outcome::Error(e), None),
        },
    };
    match exchange(&mut c, address, path, keepalive) {
        Ok((status, body, keep)) => {
            if keepalive && keep {
                *conn = Some(c);
            }
            let version = version_of(&body);
            let outcome = match status {
                200..=299 => Outcome::Ok,
                500..=599 => Outcome::ServerError,
                other => Outcome::Unexpected(other),
            };
            (outcome, version)
        }
        Err(e) if reused => (Outcome::Error(format!("{e} (kept-alive connection)")), None),
        Err(e) => (Outcome::Error(e), None),
    }
}

/// `v2` of `version v2\n` (and of `failed version v2\n`).
pub fn version_of(body: &str) -> Option<String> {
    let mut words = body.split_whitespace();
    while let Some(w) = words.next() {
        if w == "version" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// One `GET path` on a new connection: the status and the version that answered.
pub fn get(address: SocketAddr, path: &str) -> Result<(u16, Option<String>), String> {
    let mut c = connect(address)?;
    let (status, body, _) = exchange(&mut c, address, path, false)?;
    Ok((status, version_of(&body)))
}

fn connect(address: SocketAddr) -> Result<BufReader<TcpStream>, String> {
    let s = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| kind("connect", &e))?;
    s.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| kind("setsockopt", &e))?;
    let _ = s.set_nodelay(true);
    Ok(BufReader::new(s))
}

fn kind(step: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let what = match e.kind() {
        K::WouldBlock | K::TimedOut => "timeout".to_string(),
        K::ConnectionRefused => "refused".to_string(),
        K::ConnectionReset => "reset".to_string(),
        K::ConnectionAborted => "aborted".to_string(),
        K::BrokenPipe => "broken pipe".to_string(),
        K::UnexpectedEof => "cut short".to_string(),
        other => format!("{other:?}"),
    };
    format!("{step} {what}")
}

/// Writes the request and reads the answer: status, body, whether the connection may
/// be used again.
fn exchange(
    c: &mut BufReader<TcpStream>,
    address: SocketAddr,
    path: &str,
    keepalive: bool,
) -> Result<(u16, String, bool), String> {
    let close = if keepalive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kiln-demo\r\n{close}\r\n");
    c.get_mut()
        .write_all(req.as_bytes())
        .map_err(|e| kind("write", &e))?;
    let mut line = String::new();
    if c.read_line(&mut line).map_err(|e| kind("read", &e))? == 0 {
        return Err("closed before answering".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = !line.starts_with("HTTP/1.0");
    loop {
        let mut h = String::new();
        if c.read_line(&mut h).map_err(|e| kind("read", &e))? == 0 {
            return Err("cut short in the headers".into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("bad header {h:?}"));
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" if value.contains("close") => keep = false,
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            c.read_line(&mut size).map_err(|e| kind("read", &e))?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    let n = c.read_line(&mut t).map_err(|e| kind("read", &e))?;
                    if n == 0 || t.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            c.read_exact(&mut chunk).map_err(|e| kind("read", &e))?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        c.read_exact(&mut body).map_err(|e| kind("read", &e))?;
    } else {
        c.read_to_end(&mut body).map_err(|e| kind("read", &e))?;
        keep = false;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned(), keep))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_bodies() {
        assert_eq!(version_of("version v2\n").as_deref(), Some("v2"));
        assert_eq!(version_of("failed version v3\n").as_deref(), Some("v3"));
        assert_eq!(version_of("<html>404</html>"), None);
    }

    #[test]
    fn counts_show_failures_and_shares() {
        let now = Instant::now();
        let mut c = Counts::default();
        for (outcome, v) in [
            (Outcome::Ok, "v1"),
            (Outcome::Ok, "v1"),
            (Outcome::Ok, "v1"),
            (Outcome::ServerError, "v2"),
        ] {
            c.add(&Sample {
                start: now,
                outcome,
                version: Some(v.into()),
            });
        }
        c.add(&Sample {
            start: now,
            outcome: Outcome::Error("connect refused".into()),
            version: None,
        });
        assert_eq!((c.total(), c.failed()), (5, 2));
        assert_eq!(
            c.line(),
            "3 ok, 2 failed [1 5xx: 1 from v2; 1 connection error: 1× connect refused]  (v1 75% / v2 25%)"
        );
    }
}
