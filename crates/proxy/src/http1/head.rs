//! Request and response heads: parsed with httparse, checked, and rewritten for the other
//! side in one pass, without a header map.
//!
//! Requests go to backends as HTTP/1.1 in origin form, with `Host` first, hop-by-hop
//! headers (and those named in `Connection`) removed, and `X-Forwarded-For`, `-Proto` and
//! `-Host` set. Responses go to clients with hop-by-hop headers removed and `Connection`
//! and `Transfer-Encoding` set by the proxy. Framing follows RFC 9112 §6.3; anything that
//! two parsers could frame differently (two lengths, a length and a coding, an unknown
//! coding) is refused rather than guessed.

use std::ops::Range;

use crate::router::Pin;

/// The largest request or response head accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields accepted in one head.
const MAX_HEADERS: usize = 100;

/// Hop-by-hop fields: they describe one connection, never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    Close,
}

/// Who the client is, as the backend will be told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    pub(crate) ip: &'a [u8],
    /// `http` or `https`.
    pub(crate) proto: &'a [u8],
}

/// A client's request head, already rewritten for the backend.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    /// Bytes of the head in the client's buffer.
    pub(crate) len: usize,
    pub(crate) method_head: bool,
    pub(crate) http10: bool,
    /// The client wants the connection kept open after this exchange.
    pub(crate) keep_alive: bool,
    /// A safe method without a body (RFC 9110 §9.2.1): it may be sent again when a reused
    /// backend connection turns out to be closed.
    pub(crate) repeatable: bool,
    pub(crate) body: Framing,
    /// `Expect: 100-continue` was sent (and removed): the proxy answers it.
    pub(crate) expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` protocol, on HTTP/1.1.
    pub(crate) upgrade: bool,
    /// The host, from the absolute-form target or `Host`, in the client's buffer.
    host: Option<Range<usize>>,
    /// The path without the query, in the client's buffer; `None` for `/`.
    path: Option<Range<usize>>,
    pub(crate) pin: Pin,
    /// The rewritten head lacks `Host`: the backend's address is to be sent as `Host`.
    pub(crate) needs_host: bool,
}

impl RequestHead {
    /// The host to route by (empty if unknown or not UTF-8).
    pub(crate) fn host<'a>(&self, buf: &'a [u8]) -> &'a str {
        self.host
            .clone()
            .and_then(|r| std::str::from_utf8(&buf[r]).ok())
            .unwrap_or_default()
    }

    /// The path to route by.
    pub(crate) fn path<'a>(&self, buf: &'a [u8]) -> &'a str {
        self.path
            .clone()
            .and_then(|r| std::str::from_utf8(&buf[r]).ok())
            .unwrap_or("/")
    }
}

/// A request the proxy answers itself and then closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: &'static str,
}

const fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal { status, message }
}

/// A backend's response head, already rewritten for the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseHead {
    /// Bytes of the head in the backend's buffer.
    pub(crate) len: usize,
    pub(crate) status: u16,
    /// How the body is read from the backend.
    pub(crate) body: Framing,
    /// Chunked data goes to the client without its framing (an HTTP/1.0 client).
    pub(crate) dechunk: bool,
    /// The client connection stays open after this exchange.
    pub(crate) client_keep_alive: bool,
    /// The backend connection may serve another request once the body is read.
    pub(crate) reusable: bool,
    /// The backend answered before the request body was all sent (and read).
    pub(crate) early: bool,
}

/// Parses the request head at the start of `buf` and writes the backend's version of it
/// to `out`, without the final CRLF (see [`RequestHead::needs_host`]). `Ok(None)`: the
/// head is not complete yet.
pub(crate) fn parse_request(
    buf: &[u8],
    client: Client<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<RequestHead>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(refuse(431, "request head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "too many header fields")),
        Err(httparse::Error::Version) => return Err(refuse(505, "HTTP version not supported")),
        Err(_) => return Err(refuse(400, "malformed request head")),
    };
    if len > MAX_HEAD {
        return Err(refuse(431, "request head too large"));
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(refuse(400, "malformed request head"));
    };
    if method == "CONNECT" {
        return Err(refuse(405, "no tunnels"));
    }
    let http10 = version == 0;
    let offset = |s: &[u8]| s.as_ptr() as usize - buf.as_ptr() as usize;
    let range = |s: &[u8]| offset(s)..offset(s) + s.len();

    // The target: origin form, `*`, or absolute form (whose authority overrides `Host`).
    let (mut host, path, origin): (Option<Range<usize>>, Option<Range<usize>>, &[u8]) =
        match target.as_bytes() {
            [b'/', ..] => (
                None,
                Some(range(until_query(target.as_bytes()))),
                target.as_bytes(),
            ),
            b"*" => (None, None, b"*"),
            t => {
                let (authority, rest) =
                    absolute_form(t).ok_or(refuse(400, "invalid request target"))?;
                let path = (!rest.is_empty() && rest[0] == b'/').then(|| range(until_query(rest)));
                (Some(range(authority)), path, rest)
            }
        };
    let absolute = host.is_some();

    let mut lengths: Option<u64> = None;
    let mut codings = 0u32;
    let mut chunked = false;
    let mut hosts = 0;
    let mut upgrade_protocol: Option<&[u8]> = None;
    let mut expect_continue = false;
    let mut forwarded_for = false;
    let mut pin = Pin::Weighted;
    let tokens = connection_tokens(req.headers);
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !absolute {
                host = Some(range(h.value));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let value = content_length(h.value).ok_or(refuse(400, "invalid Content-Length"))?;
            if lengths.is_some_and(|l| l != value) {
                return Err(refuse(400, "conflicting Content-Length fields"));
            }
            lengths = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings += 1;
            chunked = only_chunked(h.value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_protocol = Some(h.value);
        } else if name.eq_ignore_ascii_case("expect") {
            if !h.value.eq_ignore_ascii_case(b"100-continue") {
                return Err(refuse(417, "only 100-continue is supported in Expect"));
            }
            expect_continue = true;
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for = true;
        } else if name.eq_ignore_ascii_case(Pin::HEADER) {
            pin = Pin::from_header(Some(h.value));
        }
    }
    if hosts > 1 {
        return Err(refuse(400, "more than one Host field"));
    }
    if hosts == 0 && !http10 {
        return Err(refuse(400, "HTTP/1.1 request without Host"));
    }
    let body = match (codings, lengths) {
        (1.., _) if http10 => return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request")),
        (1.., Some(_)) => return Err(refuse(400, "both Transfer-Encoding and Content-Length")),
        (1, None) if chunked => Framing::Chunked,
        (1.., None) => return Err(refuse(501, "only Transfer-Encoding: chunked is supported")),
        (0, Some(0) | None) => Framing::None,
        (0, Some(n)) => Framing::Length(n),
    };
    let keep_alive = !tokens.close && (!http10 || tokens.keep_alive);
    let upgrade = !http10 && tokens.upgrade && upgrade_protocol.is_some();

    // The backend's head.
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    if origin.first() != Some(&b'/') && origin != b"*" {
        out.push(b'/');
    }
    out.extend_from_slice(origin);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host_value = host.clone().map(|r| &buf[r]);
    if let Some(value) = host_value {
        field(out, b"Host", value);
    }
    // Framing fields are written from the framing found above, never copied: a field
    // named in `Connection` is removed, and must not take the framing with it.
    for h in req.headers.iter() {
        let name = h.name;
        if hop_by_hop(name)
            || tokens.lists(name)
            || name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("x-forwarded-for")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
            || name.eq_ignore_ascii_case("x-forwarded-host")
        {
            continue;
        }
        field(out, name.as_bytes(), h.value);
    }
    match (body, lengths) {
        (Framing::Chunked, _) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        (_, Some(length)) => content_length_field(out, length),
        (_, None) => {}
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    if forwarded_for {
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("x-forwarded-for") {
                out.extend_from_slice(h.value);
                out.extend_from_slice(b", ");
            }
        }
    }
    out.extend_from_slice(client.ip);
    out.extend_from_slice(b"\r\n");
    field(out, b"X-Forwarded-Proto", client.proto);
    if let Some(value) = host_value {
        field(out, b"X-Forwarded-Host", value);
    }
    if let (true, Some(protocol)) = (upgrade, upgrade_protocol) {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        field(out, b"Upgrade", protocol);
    }
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE");
    Ok(Some(RequestHead {
        len,
        repeatable: safe && body == Framing::None,
        method_head: method == "HEAD",
        http10,
        keep_alive,
        body,
        expect_continue,
        upgrade,
        needs_host: host.is_none(),
        host,
        path,
        pin,
    }))
}

/// Parses the response head at the start of `buf` and writes the client's version of it to
/// `out` (complete, with its final CRLF). `Ok(None)`: the head is not complete yet. An
/// interim (1xx) response other than 101 is returned without writing anything: the caller
/// skips it.
/// `keep_alive`: the client connection may stay open after this answer (the client asked
/// for it and the proxy is not closing).
pub(crate) fn parse_response(
    buf: &[u8],
    request: &RequestHead,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Option<ResponseHead>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err("response head too large");
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err("too many header fields in the response");
        }
        Err(_) => return Err("malformed response head"),
    };
    if len > MAX_HEAD {
        return Err("response head too large");
    }
    let (Some(version), Some(status)) = (res.version, res.code) else {
        return Err("malformed response head");
    };
    let interim = (100..200).contains(&status);
    if interim && status != 101 {
        return Ok(Some(ResponseHead {
            len,
            status,
            body: Framing::None,
            dechunk: false,
            client_keep_alive: keep_alive,
            reusable: true,
            early: false,
        }));
    }
    if status == 101 && !request.upgrade {
        return Err("101 Switching Protocols to a request without an upgrade");
    }

    let tokens = connection_tokens(res.headers);
    let mut lengths: Option<u64> = None;
    let mut codings = 0u32;
    let mut chunked = false;
    let mut protocol: Option<&[u8]> = None;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = content_length(h.value).ok_or("invalid Content-Length in the response")?;
            if lengths.is_some_and(|l| l != value) {
                return Err("conflicting Content-Length fields in the response");
            }
            lengths = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            codings += 1;
            chunked = only_chunked(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            protocol = Some(h.value);
        }
    }
    let body = if status == 101 {
        Framing::Close
    } else if request.method_head || status == 204 || status == 304 {
        Framing::None
    } else {
        match (codings, lengths) {
            (1, _) if chunked => Framing::Chunked,
            (1.., _) => return Err("a Transfer-Encoding other than chunked in the response"),
            (0, Some(n)) => Framing::Length(n),
            (0, None) => Framing::Close,
        }
    };
    let persistent = !tokens.close && (version == 1 || tokens.keep_alive);
    // A coding in an HTTP/1.0 answer, or next to a length, is faulty framing (RFC 9112
    // §6.1, §6.3): the body is read as chunked, and the connection is not trusted after.
    let faulty = codings > 0 && (version == 0 || lengths.is_some());
    let reusable = persistent && body != Framing::Close && !faulty;
    let dechunk = body == Framing::Chunked && request.http10;
    let client_keep_alive = status != 101 && keep_alive && body != Framing::Close && !dechunk;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, status);
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in res.headers.iter() {
        let name = h.name;
        if hop_by_hop(name) || tokens.lists(name) || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        field(out, name.as_bytes(), h.value);
    }
    // The length is written from what was parsed (see parse_request). A length next to a
    // coding is dropped: the coding frames the body. With no body (HEAD, 204, 304) the
    // length describes the resource and is passed on.
    if let (0, Some(length), false) = (codings, lengths, status == 101) {
        content_length_field(out, length);
    }
    if status == 101 {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        field(out, b"Upgrade", protocol.unwrap_or(b"websocket"));
    } else {
        if body == Framing::Chunked && !dechunk {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if !client_keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if request.http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(ResponseHead {
        len,
        status,
        body,
        dechunk,
        client_keep_alive,
        reusable,
        early: false,
    }))
}

/// An answer made by the proxy itself, with `connection` (if not empty) as its
/// `Connection` field.
pub(crate) fn answer(
    out: &mut Vec<u8>,
    status: u16,
    text: &str,
    head_only: bool,
    connection: &str,
) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, status);
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ");
    push_decimal(out, (text.len() + 13) as u64);
    out.extend_from_slice(b"\r\n");
    if !connection.is_empty() {
        field(out, b"connection", connection.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(b"kiln proxy: ");
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A status code: three digits (httparse accepts no other).
fn push_status(out: &mut Vec<u8>, status: u16) {
    let digit = |d: u16| b'0' + u8::try_from(d % 10).unwrap_or_default();
    out.extend_from_slice(&[digit(status / 100), digit(status / 10), digit(status)]);
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The tokens of every `Connection` field of a head.
#[derive(Debug, Default)]
struct ConnectionTokens<'a> {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    /// Other tokens: names of fields that are hop-by-hop for this message.
    listed: Vec<&'a [u8]>,
}

impl ConnectionTokens<'_> {
    fn lists(&self, name: &str) -> bool {
        self.listed
            .iter()
            .any(|l| l.eq_ignore_ascii_case(name.as_bytes()))
    }
}

fn connection_tokens<'a>(headers: &[httparse::Header<'a>]) -> ConnectionTokens<'a> {
    let mut tokens = ConnectionTokens::default();
    for h in headers {
        if !h.name.eq_ignore_ascii_case("connection") {
            continue;
        }
        for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                tokens.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                tokens.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                tokens.upgrade = true;
            } else if !token.is_empty() {
                tokens.listed.push(token);
            }
        }
    }
    tokens
}

/// A `Content-Length` value: digits only, no list, no sign.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A `Transfer-Encoding` value that is exactly `chunked`: other codings would have to be
/// undone or passed on, and neither is done.
fn only_chunked(value: &[u8]) -> bool {
    value.trim_ascii().eq_ignore_ascii_case(b"chunked")
}

fn content_length_field(out: &mut Vec<u8>, length: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, length);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn until_query(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    &target[..end]
}

/// `http://authority/rest` → (authority, rest); `None` for anything else or userinfo.
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let after = &target[scheme_end + 3..];
    let end = after
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(after.len());
    let authority = &after[..end];
    if authority.is_empty() || authority.contains(&b'@') {
        return None;
    }
    Some((authority, &after[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Client<'static> = Client {
        ip: b"127.0.0.1",
        proto: b"http",
    };

    fn request(head: &str) -> Result<Option<(RequestHead, String)>, Refusal> {
        let mut out = Vec::new();
        let parsed = parse_request(head.as_bytes(), CLIENT, &mut out)?;
        Ok(parsed.map(|p| (p, String::from_utf8(out).expect("utf-8"))))
    }

    fn complete(head: &str) -> (RequestHead, String) {
        request(head).expect("valid").expect("complete")
    }

    #[test]
    fn a_request_is_rewritten_for_the_backend() {
        let head = "GET /a/b?x=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, x-secret\r\n\
                    x-secret: 1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\
                    Keep-Alive: timeout=5\r\nProxy-Authorization: x\r\nAccept: */*\r\n\r\nNEXT";
        let (req, out) = complete(head);
        assert_eq!(req.len, head.len() - 4);
        assert_eq!(req.host(head.as_bytes()), "shop.example");
        assert_eq!(req.path(head.as_bytes()), "/a/b");
        assert!(req.keep_alive && !req.needs_host && req.body == Framing::None);
        assert_eq!(
            out,
            "GET /a/b?x=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\n\
             X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: shop.example\r\n"
        );
    }

    #[test]
    fn absolute_form_overrides_host_and_becomes_origin_form() {
        let head = "GET http://a.example:8080?q HTTP/1.1\r\nHost: other\r\n\r\n";
        let (req, out) = complete(head);
        assert_eq!(req.host(head.as_bytes()), "a.example:8080");
        assert_eq!(req.path(head.as_bytes()), "/");
        assert!(
            out.starts_with("GET /?q HTTP/1.1\r\nHost: a.example:8080\r\n"),
            "{out}"
        );
        assert!(!out.contains("other"), "{out}");
        let (req, _) = complete("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(req.path(b""), "/");
    }

    #[test]
    fn http10_without_host_gets_the_backend_address_and_no_keep_alive_by_default() {
        let (req, out) = complete("GET / HTTP/1.0\r\n\r\n");
        assert!(req.needs_host && req.http10 && !req.keep_alive);
        assert!(!out.contains("Host"), "{out}");
        let (req, _) = complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(req.keep_alive);
    }

    #[test]
    fn bodies_are_framed_and_ambiguity_is_refused() {
        let (req, out) = complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(req.body, Framing::Length(5));
        assert!(out.contains("Content-Length: 5\r\n"), "{out}");
        let (req, out) =
            complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(req.body, Framing::Chunked);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
        // A framing field named in `Connection` still frames the body it is sent with.
        let (req, out) = complete(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nConnection: content-length\r\n\r\n",
        );
        assert_eq!(req.body, Framing::Length(40));
        assert!(out.contains("Content-Length: 40\r\n"), "{out}");
        for (head, status) in [
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                501,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405),
            ("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ] {
            let refusal = request(head).expect_err(head);
            assert_eq!(refusal.status, status, "{head}");
        }
    }

    #[test]
    fn partial_and_oversized_heads() {
        assert!(
            request("GET / HTTP/1.1\r\nHost: a\r\n")
                .expect("partial")
                .is_none()
        );
        let mut big = "GET / HTTP/1.1\r\nHost: a\r\nX: ".to_owned();
        big.push_str(&"a".repeat(MAX_HEAD));
        assert_eq!(request(&big).expect_err("too large").status, 431);
    }

    #[test]
    fn upgrades_and_expect_continue() {
        let (req, out) = complete(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Expect: 100-continue\r\n\r\n",
        );
        assert!(req.upgrade && req.expect_continue);
        assert!(
            out.ends_with("Connection: upgrade\r\nUpgrade: websocket\r\n"),
            "{out}"
        );
        assert!(!out.contains("Expect"), "{out}");
        let (req, _) = complete("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
        assert!(!req.upgrade);
    }

    fn response(req: &str, head: &str) -> Result<(ResponseHead, String), &'static str> {
        let (req, _) = complete(req);
        let mut out = Vec::new();
        let res =
            parse_response(head.as_bytes(), &req, req.keep_alive, &mut out)?.expect("complete");
        Ok((res, String::from_utf8(out).expect("utf-8")))
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const GET10: &str = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

    #[test]
    fn responses_are_framed_per_rfc_9112() {
        let (res, out) = response(
            GET,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, x-a\r\nx-a: 1\r\n\
             Keep-Alive: timeout=5\r\nX-B: 2\r\n\r\n",
        )
        .expect("valid");
        assert_eq!(res.body, Framing::Length(5));
        assert!(res.reusable && res.client_keep_alive && !res.dechunk);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-B: 2\r\nContent-Length: 5\r\n\r\n"
        );
        // A framing field named in `Connection` still frames the body.
        let (res, out) = response(
            GET,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n",
        )
        .expect("valid");
        assert_eq!(res.body, Framing::Length(5));
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");

        let (res, out) = response(GET, "HTTP/1.1 200 OK\r\n\r\n").expect("valid");
        assert_eq!(res.body, Framing::Close);
        assert!(!res.reusable && !res.client_keep_alive);
        assert!(out.ends_with("Connection: close\r\n\r\n"), "{out}");

        let (res, out) = response(
            GET,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        )
        .expect("valid");
        assert_eq!(res.body, Framing::Chunked);
        assert!(!res.reusable, "a length next to a coding is faulty framing");
        assert_eq!(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

        let (res, out) = response(
            GET10,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .expect("valid");
        assert!(res.dechunk && !res.client_keep_alive);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");

        let (res, out) =
            response(GET10, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").expect("valid");
        assert!(res.client_keep_alive);
        assert!(out.ends_with("Connection: keep-alive\r\n\r\n"), "{out}");

        let head = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
        let (res, out) =
            response(head, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n").expect("valid");
        assert_eq!(res.body, Framing::None);
        assert!(out.contains("Content-Length: 50\r\n"), "{out}");
        let (res, _) = response(
            GET,
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        )
        .expect("valid");
        assert_eq!(res.body, Framing::None);
        let (res, _) =
            response(GET, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").expect("valid");
        assert!(!res.reusable && res.client_keep_alive);
        let (res, _) = response(GET, "HTTP/1.1 100 Continue\r\n\r\n").expect("valid");
        assert_eq!(res.status, 100);
    }

    #[test]
    fn bad_responses_are_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(response(GET, head).is_err(), "{head}");
        }
    }

    #[test]
    fn proxy_answers_are_complete_messages() {
        let mut out = Vec::new();
        answer(&mut out, 502, "backend failed", false, "close");
        let text = String::from_utf8(out).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(head.ends_with("connection: close"), "{head}");
        assert_eq!(body, "kiln proxy: backend failed\n");
    }
}
