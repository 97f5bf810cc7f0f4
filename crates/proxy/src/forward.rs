//! The HTTP/2 request path (hyper): route, pick a backend, forward with headers fixed up,
//! retry only what never reached a backend, stream the answer back. HTTP/1.1 clients are
//! served by `http1.rs`, which shares the routing and the attempts defined here.

mod body;
mod headers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};

pub(crate) use body::{ProxyBody, UpBody};

use crate::ProxyError;
use crate::listener::Activity;
use crate::router::{BackendRef, Pin};
use crate::server::Shared;
use crate::upstream::{Failed, InflightGuard, Lease};

/// At most this many other backends are tried after a connect failure.
pub(crate) const MAX_RETRIES: usize = 2;

/// One client connection: where it came in and from whom.
#[derive(Debug)]
pub(crate) struct Downstream {
    pub(crate) shared: Arc<Shared>,
    /// The listen address of the route table (not the socket's local address).
    pub(crate) listen: SocketAddr,
    pub(crate) client_ip: HeaderValue,
    pub(crate) proto: HeaderValue,
    pub(crate) activity: Arc<Activity>,
}

/// A backend picked for one attempt, counted in flight.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) backend: Arc<BackendRef>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) guard: InflightGuard,
}

/// The outcome of routing a request on the live table.
#[derive(Debug)]
pub(crate) enum Picked {
    NoRoute,
    NoBackend,
    Backend(Attempt),
}

/// The hyper service of every data-plane connection.
pub(crate) async fn handle(
    down: Arc<Downstream>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let _active = down.activity.start();
    Ok(forward(&down, req).await)
}

async fn forward(down: &Downstream, req: Request<Incoming>) -> Response<ProxyBody> {
    let shared = &*down.shared;
    if req.method() == Method::CONNECT {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "kiln proxy: no tunnels\n");
    }
    let pin = Pin::from_header(req.headers().get(Pin::HEADER).map(HeaderValue::as_bytes));
    let mut attempt = match shared.pick(down.listen, request_host(&req), req.uri().path(), pin, &[])
    {
        Picked::NoRoute => {
            shared.metrics.no_route();
            return answer(StatusCode::NOT_FOUND, "kiln proxy: no route\n");
        }
        Picked::NoBackend => {
            shared.metrics.no_backend();
            return answer(StatusCode::SERVICE_UNAVAILABLE, "kiln proxy: no backend\n");
        }
        Picked::Backend(attempt) => attempt,
    };
    let (mut parts, body) = req.into_parts();
    prepare(down, &mut parts, &attempt);
    let mut request = Request::from_parts(parts, UpBody::new(body));
    let mut tried: Vec<Arc<BackendRef>> = Vec::new();
    loop {
        let started = Instant::now();
        let failed = match send(request, &attempt).await {
            Ok((response, lease)) => return respond(response, lease, attempt, started),
            Err(failed) => failed,
        };
        attempt.backend.metrics.connection_error();
        let error = failed.error;
        tracing::debug!(backend = %attempt.backend.upstream.address, %error, "backend attempt failed");
        let Some(unsent) = failed
            .unsent
            .filter(|_| error.retry_safe() && tried.len() < MAX_RETRIES)
        else {
            return failure_answer(&error);
        };
        request = unsent;
        tried.push(attempt.backend.clone());
        // Route again on the live table: it may have changed since the first pick.
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        attempt = match shared.pick(down.listen, host, request.uri().path(), pin, &tried) {
            Picked::Backend(next) => next,
            Picked::NoRoute | Picked::NoBackend => return failure_answer(&error),
        };
    }
}

/// Turns the client's request into the backend's: origin-form URI, HTTP/1.1, `Host`,
/// hop-by-hop headers stripped, X-Forwarded-* set.
fn prepare(down: &Downstream, parts: &mut Parts, attempt: &Attempt) {
    let headers = &mut parts.headers;
    headers::strip_hop_by_hop(headers);
    let host = match headers.get(HOST) {
        Some(host) => Some(host.clone()),
        None => {
            let host = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
            let value = host
                .clone()
                .unwrap_or_else(|| attempt.backend.upstream.host.clone());
            headers.insert(HOST, value);
            host
        }
    };
    headers::add_forwarded(headers, &down.client_ip, down.proto.clone(), host);
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or(PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
    }
    parts.version = Version::HTTP_11;
    parts.extensions.clear();
}

async fn send(
    request: Request<UpBody>,
    attempt: &Attempt,
) -> Result<(Response<Incoming>, Lease), Failed> {
    let upstream = &attempt.backend.upstream;
    let Some(timeout) = attempt.timeout else {
        return upstream.send(request).await;
    };
    match tokio::time::timeout(timeout, upstream.send(request)).await {
        Ok(result) => result,
        Err(_) => {
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let address = upstream.address.clone();
            Err(Failed {
                error: ProxyError::BackendTimeout {
                    address,
                    timeout_ms,
                },
                unsent: None,
            })
        }
    }
}

fn respond(
    response: Response<Incoming>,
    lease: Lease,
    attempt: Attempt,
    started: Instant,
) -> Response<ProxyBody> {
    attempt
        .backend
        .metrics
        .response(response.status().as_u16(), started.elapsed());
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Never asked for: upgrades are not forwarded over HTTP/2.
        return answer(StatusCode::BAD_GATEWAY, "kiln proxy: unexpected upgrade\n");
    }
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        ProxyBody::Upstream {
            body,
            _lease: lease,
            _guard: attempt.guard,
        },
    )
}

fn request_host(req: &Request<Incoming>) -> &str {
    match req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => host,
        None => req.uri().authority().map_or("", |a| a.as_str()),
    }
}

fn answer(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn failure_answer(error: &ProxyError) -> Response<ProxyBody> {
    match error {
        ProxyError::BackendTimeout { .. } => answer(
            StatusCode::GATEWAY_TIMEOUT,
            "kiln proxy: backend timed out\n",
        ),
        _ => answer(StatusCode::BAD_GATEWAY, "kiln proxy: backend failed\n"),
    }
}
