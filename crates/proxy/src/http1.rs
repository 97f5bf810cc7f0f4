//! The HTTP/1.1 engine: one task per client connection reads a request, forwards it on a
//! pooled backend connection, and streams the answer back. No other task, channel or
//! header map is involved, so a small request costs one read and one write on each side.
//!
//! HTTP/2 (h2c with prior knowledge, or TLS with ALPN `h2`) is served by hyper instead
//! (`forward.rs`); a plaintext connection that opens with the HTTP/2 preface is handed over.
//!
//! Time limits: the route's timeout bounds the wait for the response head once the request
//! is sent, and each pause of the backend within the response body. A client gets
//! [`CLIENT_STALL`] for each pause within its request body and to take each part of the
//! response. Between requests, the listener's watchdog closes idle connections.
//!
//! Known limits: the request body is sent whole before the response is read. A backend
//! that answers early and stops reading gets its answer relayed; one that streams its
//! answer while still reading a large body (a streaming echo) stalls once both directions'
//! socket buffers are full, until [`CLIENT_STALL`] ends the exchange. nginx buffers request
//! bodies by default for the same reason. `Expect: 100-continue` is answered by the proxy,
//! as nginx does.

mod chunked;
mod head;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ProxyError;
use crate::forward::{Attempt, Downstream, MAX_RETRIES, Picked};
use crate::router::BackendRef;
use crate::upstream::{BackendConn, READ_SIZE, Upstream};
use chunked::Chunked;
use head::{Client, Framing, RequestHead, ResponseHead};

/// The longest a client may pause mid-exchange: sending its body or taking the answer.
const CLIENT_STALL: Duration = Duration::from_secs(60);
/// After answering a request whose body was not read: how long, and how much, is read
/// and discarded before closing, so that the close does not reset the answer away.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// How long a backend that stopped reading the request body gets to send its answer.
const EARLY_ANSWER_WAIT: Duration = Duration::from_secs(1);
/// The first bytes of every HTTP/2 connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How a client connection ended.
#[derive(Debug)]
pub(crate) enum End<I> {
    Closed,
    /// The client speaks HTTP/2: its connection and the bytes already read from it.
    Http2(I, Vec<u8>),
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Connection<I> {
    io: I,
    down: Arc<Downstream>,
    /// Bytes read from the client; those before `at` are used.
    buf: Vec<u8>,
    at: usize,
    /// Heads written by the proxy: the backend's request, then the client's response.
    out: Vec<u8>,
}

/// What happens to the client connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    /// Close, but read (and drop) what the client still sends for a moment first.
    Linger,
}

/// Why an attempt at a backend failed.
#[derive(Debug)]
enum Failure {
    /// Nothing of the request reached the backend: another backend may be tried.
    Unsent(ProxyError),
    /// The backend failed after (part of) the request was sent.
    Backend(ProxyError),
    /// The client went away, stalled, or sent a malformed body mid-request.
    Client,
}

/// Why no response head was read.
#[derive(Debug)]
enum HeadError {
    /// The connection closed before a single byte of an answer.
    ClosedEarly(String),
    Backend(String),
    Client,
}

/// What is left of a body.
#[derive(Debug, Clone, Copy)]
enum Body {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

impl Body {
    fn new(framing: Framing) -> Body {
        match framing {
            Framing::None | Framing::Length(0) => Body::Done,
            Framing::Length(n) => Body::Length(n),
            Framing::Chunked => Body::Chunked(Chunked::default()),
            Framing::Close => Body::Close,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Body::Done)
    }

    /// How many bytes at the start of `input` belong to the body (sent on as they are).
    fn advance(&mut self, input: &[u8]) -> Result<usize, &'static str> {
        let used = match self {
            Body::Done => 0,
            Body::Close => input.len(),
            Body::Length(left) => {
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                *left -= n as u64;
                n
            }
            Body::Chunked(chunked) => chunked
                .scan_all(input)
                .map_err(|_| "malformed chunked body")?,
        };
        if matches!(self, Body::Length(0)) || matches!(self, Body::Chunked(c) if c.is_done()) {
            *self = Body::Done;
        }
        Ok(used)
    }

    /// Like [`Body::advance`] for a chunked body, appending only its data to `out`.
    fn dechunk(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, &'static str> {
        let Body::Chunked(chunked) = self else {
            let used = self.advance(input)?;
            out.extend_from_slice(&input[..used]);
            return Ok(used);
        };
        let mut at = 0;
        while at < input.len() && !chunked.is_done() {
            let scan = chunked
                .scan(&input[at..])
                .map_err(|_| "malformed chunked body")?;
            out.extend_from_slice(&input[at..][scan.data]);
            at += scan.consumed;
        }
        if chunked.is_done() {
            *self = Body::Done;
        }
        Ok(at)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Connection<I> {
    pub(crate) fn new(io: I, down: Arc<Downstream>) -> Self {
        Connection {
            io,
            down,
            buf: Vec::with_capacity(READ_SIZE),
            at: 0,
            out: Vec::with_capacity(1024),
        }
    }

    /// Serves requests until the client or the proxy closes the connection. With `sniff`,
    /// a connection opening with the HTTP/2 preface is handed back instead.
    pub(crate) async fn run(mut self, sniff: bool) -> End<I> {
        let mut sniff = sniff;
        loop {
            let head = self.read_head(&mut sniff).await;
            // Active until the answer is out and any lingering done, so that neither a stop
            // nor the watchdog cuts it short.
            let _active = self.down.activity.start();
            let after = match head {
                Ok(Some(request)) => self.exchange(&request).await,
                Ok(None) => return End::Closed,
                Err(Head::Http2) => return End::Http2(self.io, self.buf),
                Err(Head::Refused(refusal)) => {
                    head::answer(
                        &mut self.out,
                        refusal.status,
                        refusal.message,
                        false,
                        "close",
                    );
                    match timed(CLIENT_STALL, write_flush(&mut self.io, &self.out)).await {
                        Some(Ok(())) => After::Linger,
                        _ => After::Close,
                    }
                }
            };
            match after {
                After::KeepAlive if !self.down.activity.is_closing() => {}
                After::KeepAlive | After::Close => {
                    let _ = timed(LINGER_TIME, self.io.shutdown()).await;
                    return End::Closed;
                }
                After::Linger => {
                    self.linger().await;
                    return End::Closed;
                }
            }
        }
    }

    /// Reads until a complete request head is buffered at `at`; `None` when the client
    /// closed (or failed) first.
    async fn read_head(&mut self, sniff: &mut bool) -> Result<Option<RequestHead>, Head> {
        loop {
            let pending = &self.buf[self.at..];
            if *sniff && !pending.is_empty() {
                if pending.starts_with(H2_PREFACE) {
                    return Err(Head::Http2);
                }
                *sniff = pending.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(pending);
            }
            if !*sniff && !pending.is_empty() {
                let client = Client {
                    ip: self.down.client_ip.as_bytes(),
                    proto: self.down.proto.as_bytes(),
                };
                if let Some(request) =
                    head::parse_request(pending, client, &mut self.out).map_err(Head::Refused)?
                {
                    self.down.activity.set_pending(false);
                    return Ok(Some(request));
                }
            }
            self.down.activity.set_pending(!pending.is_empty());
            match self.read_more().await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }

    /// Reads more from the client after the pending bytes.
    async fn read_more(&mut self) -> std::io::Result<usize> {
        read_more(&mut self.io, &mut self.buf, &mut self.at, READ_SIZE).await
    }

    /// Closes the sending side, then reads and drops what the client still sends for a
    /// moment: closing with unread bytes would make the kernel reset the connection, and
    /// the client could lose the answer.
    async fn linger(&mut self) {
        let _ = timed(LINGER_TIME, self.io.shutdown()).await;
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.io.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => total += n,
                _ => return,
            }
        }
    }

    /// One request and its answer.
    async fn exchange(&mut self, request: &RequestHead) -> After {
        // `at` moves once the request is sent; a retry elsewhere routes on the same head.
        let start = self.at;
        let end = start + request.len;
        // The part of the body already read is checked before anything is sent.
        let mut body = Body::new(request.body);
        let used = match body.advance(&self.buf[end..]) {
            Ok(used) => used,
            Err(message) => return self.answer(request, end, 400, message).await,
        };
        let down = self.down.clone();
        let shared = &down.shared;
        let mut tried: Vec<Arc<BackendRef>> = Vec::new();
        loop {
            let pending = &self.buf[start..];
            let picked = shared.pick(
                down.listen,
                request.host(pending),
                request.path(pending),
                request.pin,
                &tried,
            );
            let attempt = match picked {
                Picked::Backend(attempt) => attempt,
                Picked::NoRoute if tried.is_empty() => {
                    shared.metrics.no_route();
                    return self.answer(request, end, 404, "no route").await;
                }
                Picked::NoBackend if tried.is_empty() => {
                    shared.metrics.no_backend();
                    return self.answer(request, end, 503, "no backend").await;
                }
                Picked::NoRoute | Picked::NoBackend => {
                    return self.answer(request, end, 502, "backend failed").await;
                }
            };
            let started = Instant::now();
            let error = match self.send(request, &attempt, end, used, body).await {
                Ok((conn, response)) => {
                    return self
                        .respond(request, &attempt, started, conn, response)
                        .await;
                }
                Err(Failure::Client) => {
                    attempt.backend.metrics.client_gone();
                    return After::Close;
                }
                Err(Failure::Unsent(error)) if tried.len() < MAX_RETRIES => {
                    attempt.backend.metrics.connection_error();
                    tracing::debug!(backend = %attempt.backend.upstream.address, %error,
                        "backend attempt failed; trying another");
                    tried.push(attempt.backend.clone());
                    continue;
                }
                Err(Failure::Unsent(error) | Failure::Backend(error)) => error,
            };
            attempt.backend.metrics.connection_error();
            tracing::debug!(backend = %attempt.backend.upstream.address, %error, "backend attempt failed");
            let (status, message) = match error {
                ProxyError::BackendTimeout { .. } => (504, "backend timed out"),
                _ => (502, "backend failed"),
            };
            return self.answer(request, end, status, message).await;
        }
    }

    /// Sends the request on a pooled or new connection and reads the response head.
    ///
    /// `end` is where the request head ends in `buf`, `used` how much of the body after it
    /// is already read (and checked), `body` what is left of the body after that. Nothing
    /// is consumed from `buf` until the request was written, so that a failed attempt can
    /// be retried elsewhere.
    async fn send(
        &mut self,
        request: &RequestHead,
        attempt: &Attempt,
        end: usize,
        used: usize,
        body: Body,
    ) -> Result<(BackendConn, ResponseHead), Failure> {
        let upstream = &attempt.backend.upstream;
        // A pooled connection may be closed by the backend just as it is reused. A request
        // that is safe to repeat then gets one more try, on a new connection.
        let mut fresh_only = false;
        loop {
            let pooled_conn = if fresh_only {
                None
            } else {
                upstream.checkout()
            };
            let (mut conn, pooled) = match pooled_conn {
                Some(conn) => (conn, true),
                None => match upstream.connect_h1().await {
                    Ok(conn) => (conn, false),
                    Err(message) => {
                        return Err(Failure::Unsent(ProxyError::BackendConnect {
                            address: upstream.address.clone(),
                            message,
                        }));
                    }
                },
            };
            let mark = self.out.len();
            if request.needs_host {
                self.out.extend_from_slice(b"Host: ");
                self.out.extend_from_slice(upstream.host.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&self.buf[end..end + used]);
            let written = write_counted(&mut conn.stream, &self.out).await;
            self.out.truncate(mark);
            match written {
                Ok(()) => {}
                // Closed under us before taking a byte: the next connection.
                Err((0, _)) if pooled => continue,
                Err((written, error)) => {
                    let address = upstream.address.clone();
                    let message = error.to_string();
                    return Err(if written == 0 {
                        Failure::Unsent(ProxyError::BackendConnect { address, message })
                    } else {
                        Failure::Backend(ProxyError::BackendIo { address, message })
                    });
                }
            }
            self.at = end + used;
            let keep_alive = request.keep_alive && !self.down.activity.is_closing();
            if !body.is_done() {
                if request.expect_continue && !request.http10 {
                    match timed(CLIENT_STALL, write_flush(&mut self.io, CONTINUE)).await {
                        Some(Ok(())) => {}
                        _ => return Err(Failure::Client),
                    }
                }
                if let Err(failure) = self.forward_body(&mut conn, body, upstream).await {
                    // A backend that stopped reading may have answered (413, 401, …).
                    let Failure::Backend(error) = failure else {
                        return Err(failure);
                    };
                    let early = self.read_response_head(&mut conn, request, false);
                    return match tokio::time::timeout(EARLY_ANSWER_WAIT, early).await {
                        Ok(Ok(mut response)) => {
                            response.reusable = false;
                            response.early = true;
                            Ok((conn, response))
                        }
                        Ok(Err(HeadError::Client)) => Err(Failure::Client),
                        _ => Err(Failure::Backend(error)),
                    };
                }
            }
            let head = self.read_response_head(&mut conn, request, keep_alive);
            let head = match attempt.timeout {
                None => head.await,
                Some(timeout) => match tokio::time::timeout(timeout, head).await {
                    Ok(head) => head,
                    Err(_) => {
                        return Err(Failure::Backend(ProxyError::BackendTimeout {
                            address: upstream.address.clone(),
                            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                        }));
                    }
                },
            };
            return match head {
                Ok(response) => Ok((conn, response)),
                // `out` still holds the request head: nothing of an answer was parsed.
                Err(HeadError::ClosedEarly(_)) if pooled && !fresh_only && request.repeatable => {
                    tracing::debug!(backend = %upstream.address, "pooled connection closed by the backend; retrying on a new one");
                    fresh_only = true;
                    continue;
                }
                Err(HeadError::Client) => Err(Failure::Client),
                Err(HeadError::ClosedEarly(message) | HeadError::Backend(message)) => {
                    Err(backend_io(upstream, &message))
                }
            };
        }
    }

    /// Reads the response head, relaying interim (1xx) answers other than 100 to HTTP/1.1
    /// clients. `keep_alive`: the client connection may stay open after this answer.
    async fn read_response_head(
        &mut self,
        conn: &mut BackendConn,
        request: &RequestHead,
        keep_alive: bool,
    ) -> Result<ResponseHead, HeadError> {
        loop {
            match head::parse_response(conn.pending(), request, keep_alive, &mut self.out) {
                Ok(Some(response)) if response.status < 200 && response.status != 101 => {
                    let interim = &conn.buf[conn.at..conn.at + response.len];
                    if response.status != 100 && !request.http10 {
                        match timed(CLIENT_STALL, write_flush(&mut self.io, interim)).await {
                            Some(Ok(())) => {}
                            _ => return Err(HeadError::Client),
                        }
                    }
                    conn.at += response.len;
                    continue;
                }
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(message) => return Err(HeadError::Backend(message.to_owned())),
            }
            let nothing_yet = conn.buf.is_empty();
            match conn.read_more().await {
                Ok(0) if nothing_yet => {
                    return Err(HeadError::ClosedEarly(
                        "closed the connection without answering".into(),
                    ));
                }
                Ok(0) => {
                    return Err(HeadError::Backend(
                        "closed the connection in the response head".into(),
                    ));
                }
                Ok(_) => {}
                Err(error) if nothing_yet => return Err(HeadError::ClosedEarly(error.to_string())),
                Err(error) => return Err(HeadError::Backend(error.to_string())),
            }
        }
    }

    /// Copies the rest of a request body from the client to the backend.
    async fn forward_body(
        &mut self,
        conn: &mut BackendConn,
        mut body: Body,
        upstream: &Upstream,
    ) -> Result<(), Failure> {
        while !body.is_done() {
            match timed(CLIENT_STALL, self.read_more()).await {
                Some(Ok(n)) if n > 0 => {}
                _ => return Err(Failure::Client),
            }
            let used = body
                .advance(&self.buf[self.at..])
                .map_err(|_| Failure::Client)?;
            let part = &self.buf[self.at..self.at + used];
            match timed(CLIENT_STALL, conn.stream.write_all(part)).await {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(backend_io(upstream, &error.to_string())),
                None => return Err(backend_io(upstream, "stopped reading the request body")),
            }
            self.at += used;
        }
        Ok(())
    }

    /// Streams the response to the client. The backend connection goes back to its pool
    /// when the exchange ended cleanly.
    async fn respond(
        &mut self,
        request: &RequestHead,
        attempt: &Attempt,
        started: Instant,
        mut conn: BackendConn,
        response: ResponseHead,
    ) -> After {
        conn.at += response.len;
        let mut body = Body::new(response.body);
        // The head and what is already read of the body go out in one write.
        let first = if response.dechunk {
            body.dechunk(conn.pending(), &mut self.out)
        } else {
            body.advance(conn.pending()).inspect(|&used| {
                self.out
                    .extend_from_slice(&conn.buf[conn.at..conn.at + used]);
            })
        };
        let metrics = &attempt.backend.metrics;
        match first {
            Ok(used) => {
                conn.at += used;
                metrics.response(response.status, started.elapsed());
            }
            Err(_) => {
                // Nothing was sent yet: the client gets a 502, counted as a connection error.
                metrics.connection_error();
                return self.answer(request, self.at, 502, "backend failed").await;
            }
        }
        if !matches!(
            timed(CLIENT_STALL, write_flush(&mut self.io, &self.out)).await,
            Some(Ok(()))
        ) {
            return After::Close;
        }
        if response.status == 101 {
            return self.splice(conn).await;
        }
        while !body.is_done() {
            let read = match attempt.timeout {
                None => conn.read_more().await,
                Some(timeout) => match tokio::time::timeout(timeout, conn.read_more()).await {
                    Ok(read) => read,
                    Err(_) => return After::Close,
                },
            };
            match read {
                Ok(0) if matches!(body, Body::Close) => break,
                Ok(0) | Err(_) => return After::Close,
                Ok(_) => {}
            }
            let written = if response.dechunk {
                self.out.clear();
                let Ok(used) = body.dechunk(conn.pending(), &mut self.out) else {
                    return After::Close;
                };
                conn.at += used;
                timed(CLIENT_STALL, write_flush(&mut self.io, &self.out)).await
            } else {
                let Ok(used) = body.advance(conn.pending()) else {
                    return After::Close;
                };
                let part = &conn.buf[conn.at..conn.at + used];
                let written = timed(CLIENT_STALL, write_flush(&mut self.io, part)).await;
                conn.at += used;
                written
            };
            if !matches!(written, Some(Ok(()))) {
                return After::Close;
            }
        }
        if response.reusable {
            attempt.backend.upstream.checkin(conn);
        }
        match (response.client_keep_alive, response.early) {
            (_, true) => After::Linger,
            (true, false) => After::KeepAlive,
            (false, false) => After::Close,
        }
    }

    /// After a 101: bytes both ways until either side closes.
    async fn splice(&mut self, mut conn: BackendConn) -> After {
        let early = &self.buf[self.at..];
        if !early.is_empty() && conn.stream.write_all(early).await.is_err() {
            return After::Close;
        }
        self.at = self.buf.len();
        if let Err(error) = tokio::io::copy_bidirectional(&mut self.io, &mut conn.stream).await {
            tracing::debug!(%error, "upgraded connection ended with an error");
        }
        After::Close
    }

    /// Answers the request itself. `end` is where the request head ends in `buf`. The
    /// connection stays open only if the request had no body (which would otherwise have
    /// to be read and discarded).
    async fn answer(
        &mut self,
        request: &RequestHead,
        end: usize,
        status: u16,
        message: &str,
    ) -> After {
        let keep_alive =
            request.keep_alive && request.body == Framing::None && !self.down.activity.is_closing();
        let connection = match (keep_alive, request.http10) {
            (false, _) => "close",
            (true, true) => "keep-alive",
            (true, false) => "",
        };
        head::answer(
            &mut self.out,
            status,
            message,
            request.method_head,
            connection,
        );
        if !matches!(
            timed(CLIENT_STALL, write_flush(&mut self.io, &self.out)).await,
            Some(Ok(()))
        ) {
            return After::Close;
        }
        if keep_alive {
            self.at = end;
            After::KeepAlive
        } else if request.body != Framing::None {
            After::Linger
        } else {
            After::Close
        }
    }
}

/// Why no request head was read.
#[derive(Debug)]
enum Head {
    Http2,
    Refused(head::Refusal),
}

fn backend_io(upstream: &Upstream, message: &str) -> Failure {
    Failure::Backend(ProxyError::BackendIo {
        address: upstream.address.clone(),
        message: message.to_owned(),
    })
}

/// Runs `io` to completion, with a timer only if it does not complete at once (the usual
/// case for small messages): `None` when `limit` passed first.
async fn timed<F: Future>(limit: Duration, io: F) -> Option<F::Output> {
    let mut io = pin!(io);
    let at_once = std::future::poll_fn(|cx| {
        Poll::Ready(match io.as_mut().poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await;
    match at_once {
        Some(output) => Some(output),
        None => tokio::time::timeout(limit, io).await.ok(),
    }
}

/// Reads from `io` into `buf` after its pending bytes (those from `at`), making room for
/// about `size` bytes: used bytes are dropped first, so the buffer does not grow while
/// its user keeps up. `Ok(0)` at end of stream.
pub(crate) async fn read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
    at: &mut usize,
    size: usize,
) -> std::io::Result<usize> {
    if *at == buf.len() {
        buf.clear();
        *at = 0;
    }
    if buf.capacity() - buf.len() < size / 4 {
        if *at > 0 {
            buf.drain(..*at);
            *at = 0;
        }
        buf.reserve(size);
    }
    io.read_buf(buf).await
}

/// Writes all of `bytes` to a client and flushes: a TLS stream may keep records in its
/// buffer when the socket is full, and nothing else would push them out.
async fn write_flush<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

/// Writes all of `bytes`; on failure, says how many were written.
async fn write_counted<W: AsyncWrite + Unpin>(
    io: &mut W,
    bytes: &[u8],
) -> Result<(), (usize, std::io::Error)> {
    let mut written = 0;
    while written < bytes.len() {
        match io.write(&bytes[written..]).await {
            Ok(0) => return Err((written, std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(error) => return Err((written, error)),
        }
    }
    Ok(())
}
