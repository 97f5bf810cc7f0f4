//! The load generator: paced HTTP/1.1 GETs from several threads against a route, half
//! on one keep-alive connection each, half on a new connection per request, each
//! request recorded with its times, status (or error kind) and the version that
//! answered.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connect, read and write timeouts of the load's requests.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What the load does.
#[derive(Debug, Clone)]
pub struct Config {
    pub threads: usize,
    /// Requests per second over all threads.
    pub rate: f64,
    pub path: String,
}

impl Config {
    /// 8 threads, 320 requests/s, on `path`.
    pub fn on(path: &str) -> Config {
        Config {
            threads: 8,
            rate: 320.0,
            path: path.to_string(),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// A connection error or timeout, by kind (`connect refused`, `read timeout`, …).
    Error(String),
}

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    pub start: Instant,
    pub end: Instant,
    pub thread: usize,
    pub keepalive: bool,
    /// Whether it went over a connection used before.
    pub reused: bool,
    pub outcome: Outcome,
    /// The `GREETING` in the body (its last word), if any.
    pub version: Option<String>,
}

impl Sample {
    /// A connection error, a timeout, or a 5xx.
    pub fn failed(&self) -> bool {
        match &self.outcome {
            Outcome::Status(s) => *s >= 500,
            Outcome::Error(_) => true,
        }
    }
}

/// Load running in the background.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

impl Load {
    pub fn start(address: &str, config: Config) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let interval = Duration::from_secs_f64(config.threads as f64 / config.rate);
        let handles = (0..config.threads)
            .map(|thread| {
                let stop = stop.clone();
                let address = address.to_string();
                let path = config.path.clone();
                let keepalive = thread % 2 == 0;
                std::thread::spawn(move || {
                    // Spread the threads' first requests over one interval.
                    let offset = interval.mul_f64(thread as f64 / 8.0);
                    let mut next = Instant::now() + offset;
                    let mut conn: Option<Conn> = None;
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if now < next {
                            std::thread::sleep(next - now);
                        } else if now > next + interval {
                            next = now;
                        }
                        next += interval;
                        let start = Instant::now();
                        let reused = conn.is_some();
                        let (outcome, version) =
                            request(&mut conn, &address, &path, None, keepalive, TIMEOUT);
                        if !keepalive {
                            conn = None;
                        }
                        samples.push(Sample {
                            start,
                            end: Instant::now(),
                            thread,
                            keepalive,
                            reused,
                            outcome,
                            version,
                        });
                    }
                    samples
                })
            })
            .collect();
        Load {
            stop,
            handles,
            started,
        }
    }

    /// Stops the load and returns what it did.
    pub fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples: Vec<Sample> = self
            .handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        samples.sort_by_key(|s| s.start);
        Report {
            started: self.started,
            stopped: Instant::now(),
            samples,
        }
    }
}

/// What a load did.
#[derive(Debug)]
pub struct Report {
    pub started: Instant,
    pub stopped: Instant,
    /// By start time.
    pub samples: Vec<Sample>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.samples.len()
    }

    pub fn failed(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.failed()).collect()
    }

    /// Requests per second over the whole load.
    pub fn rps(&self) -> f64 {
        self.total() as f64 / (self.stopped - self.started).as_secs_f64()
    }

    /// The samples of requests started in `[from, to)`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.start >= from && s.start < to)
            .collect()
    }

    /// The counts of versions among successful answers of `samples`.
    pub fn versions(samples: &[&Sample]) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in samples.iter().filter(|s| !s.failed()) {
            *out.entry(s.version.clone().unwrap_or_else(|| "?".into()))
                .or_insert(0) += 1;
        }
        out
    }

    /// A readable account: totals, failures by kind, the first failures, and
    /// versions and failures per second.
    pub fn summary(&self) -> String {
        let failed = self.failed();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for s in &failed {
            let kind = match &s.outcome {
                Outcome::Status(c) => format!("HTTP {c}"),
                Outcome::Error(e) => e.clone(),
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        let max_latency = self
            .samples
            .iter()
            .map(|s| s.end - s.start)
            .max()
            .unwrap_or_default();
        let mut out = format!(
            "load: {} requests in {:.1} s = {:.0} req/s, {} failed {kinds:?}, max latency {max_latency:?}\n",
            self.total(),
            (self.stopped - self.started).as_secs_f64(),
            self.rps(),
            failed.len(),
        );
        for s in failed.iter().take(15) {
            out.push_str(&format!(
                "  failed at +{} ms (thread {}, keepalive {}, reused {}): {:?} after {} ms\n",
                (s.start - self.started).as_millis(),
                s.thread,
                s.keepalive,
                s.reused,
                s.outcome,
                (s.end - s.start).as_millis()
            ));
        }
        let mut second = self.started;
        while second < self.stopped {
            let next = second + Duration::from_secs(1);
            let slice = self.between(second, next);
            let bad = slice.iter().filter(|s| s.failed()).count();
            out.push_str(&format!(
                "  +{:>2}s: {:>4} requests, {bad} failed, versions {:?}\n",
                (second - self.started).as_secs(),
                slice.len(),
                Report::versions(&slice)
            ));
            second = next;
        }
        out
    }
}

/// The version in a body: its last word (`v1` of `v1\n`, of `ok v1\n`, of `fail v1\n`).
pub fn version_of(body: &str) -> String {
    body.split_whitespace().last().unwrap_or("").to_string()
}

/// One `GET path` on a new connection with `timeout` for each step: the status and body.
pub fn get(
    address: &str,
    path: &str,
    header: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut conn = None;
    let (outcome, body) = request_body(&mut conn, address, path, header, false, timeout);
    match outcome {
        Outcome::Status(s) => Ok((s, body.unwrap_or_default())),
        Outcome::Error(e) => Err(e),
    }
}

/// A connection kept for the next request.
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<TcpStream>,
}

/// One request; keeps the connection in `conn` if `keepalive` and the answer allows.
pub fn request(
    conn: &mut Option<Conn>,
    address: &str,
    path: &str,
    header: Option<(&str, &str)>,
    keepalive: bool,
    timeout: Duration,
) -> (Outcome, Option<String>) {
    let (outcome, body) = request_body(conn, address, path, header, keepalive, timeout);
    (outcome, body.map(|b| version_of(&b)))
}

fn request_body(
    conn: &mut Option<Conn>,
    address: &str,
    path: &str,
    header: Option<(&str, &str)>,
    keepalive: bool,
    timeout: Duration,
) -> (Outcome, Option<String>) {
    let reused = conn.is_some();
    let mut c = match conn.take() {
        Some(c) => c,
        None => match connect(address, timeout) {
            Ok(c) => c,
            Err(e) => return (Outcome::Error(e), None),
        },
    };
    match exchange(&mut c, address, path, header, keepalive) {
        Ok((status, body, keep)) => {
            if keepalive && keep {
                *conn = Some(c);
            }
            (Outcome::Status(status), Some(body))
        }
        Err(e) => {
            let e = if reused {
                format!("{e} (reused connection)")
            } else {
                e
            };
            (Outcome::Error(e), None)
        }
    }
}

fn connect(address: &str, timeout: Duration) -> Result<Conn, String> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|e| format!("bad address {address:?}: {e}"))?;
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| kind("connect", &e))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| kind("setsockopt", &e))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| kind("setsockopt", &e))?;
    let _ = s.set_nodelay(true);
    Ok(Conn {
        reader: BufReader::new(s),
    })
}

fn kind(step: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let what = match e.kind() {
        K::WouldBlock | K::TimedOut => "timeout".to_string(),
        K::ConnectionRefused => "refused".to_string(),
        K::ConnectionReset => "reset".to_string(),
        K::ConnectionAborted => "aborted".to_string(),
        K::BrokenPipe => "broken pipe".to_string(),
        K::UnexpectedEof => "eof".to_string(),
        other => format!("{other:?}"),
    };
    format!("{step} {what}")
}

/// Writes the request and reads the answer: status, body, whether the connection may
/// be reused.
fn exchange(
    c: &mut Conn,
    address: &str,
    path: &str,
    header: Option<(&str, &str)>,
    keepalive: bool,
) -> Result<(u16, String, bool), String> {
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kiln-traffic-test\r\n");
    if let Some((name, value)) = header {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !keepalive {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    c.reader
        .get_mut()
        .write_all(req.as_bytes())
        .map_err(|e| kind("write", &e))?;
    let mut line = String::new();
    let n = c
        .reader
        .read_line(&mut line)
        .map_err(|e| kind("read status", &e))?;
    if n == 0 {
        return Err("closed before response".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = line.starts_with("HTTP/1.0");
    loop {
        let mut h = String::new();
        let n = c
            .reader
            .read_line(&mut h)
            .map_err(|e| kind("read headers", &e))?;
        if n == 0 {
            return Err("eof in headers".into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("bad header {h:?}"));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            c.reader
                .read_line(&mut size)
                .map_err(|e| kind("read chunk", &e))?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                // Trailers up to the blank line.
                loop {
                    let mut t = String::new();
                    let n = c
                        .reader
                        .read_line(&mut t)
                        .map_err(|e| kind("read trailer", &e))?;
                    if n == 0 || t.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            c.reader
                .read_exact(&mut chunk)
                .map_err(|e| kind("read chunk", &e))?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        c.reader
            .read_exact(&mut body)
            .map_err(|e| kind("read body", &e))?;
    } else {
        c.reader
            .read_to_end(&mut body)
            .map_err(|e| kind("read body", &e))?;
        close = true;
    }
    Ok((status, String::from_utf8_lossy(&body).to_string(), !close))
}
