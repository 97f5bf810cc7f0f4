//! The control socket HOME/proxy.sock (mode 0600): HTTP/1.1 JSON for the control plane.
//!
//! `PUT /v1/table` → 200 `{"version":N}` once live; 409 for an older version or the live
//! version with other content; 400 for a table that cannot be applied (nothing of it is).
//! `GET /v1/table` (404 before the first table), `GET /v1/inflight`, `GET /metrics`.

use std::convert::Infallible;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::UnixListener;

use crate::server::{Paths, Shared};
use crate::{ProxyError, RouteTable};

const MAX_TABLE_BYTES: usize = 64 << 20;

/// Checks HOME, creates HOME/proxy (0700) and refuses to start beside a live proxy.
pub(crate) fn prepare(home: &Path, paths: &Paths) -> Result<(), ProxyError> {
    let home_error = |source| ProxyError::Home {
        path: home.to_owned(),
        source,
    };
    if !std::fs::metadata(home).map_err(home_error)?.is_dir() {
        return Err(home_error(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let dir_error = |source| ProxyError::Home {
        path: paths.dir.clone(),
        source,
    };
    std::fs::create_dir_all(&paths.dir).map_err(dir_error)?;
    std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o700))
        .map_err(dir_error)?;
    if std::os::unix::net::UnixStream::connect(&paths.socket).is_ok() {
        return Err(ProxyError::AlreadyRunning {
            path: paths.socket.clone(),
        });
    }
    Ok(())
}

/// Binds the socket in the private directory, makes it 0600, then moves it into place, so
/// that it is never reachable with looser permissions.
pub(crate) fn bind(paths: &Paths) -> Result<UnixListener, ProxyError> {
    let socket_error = |source| ProxyError::Home {
        path: paths.socket.clone(),
        source,
    };
    let tmp = paths
        .dir
        .join(format!("control-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(socket_error)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(socket_error)?;
    std::fs::rename(&tmp, &paths.socket).map_err(socket_error)?;
    Ok(listener)
}

/// Serves control requests until the proxy stops.
pub(crate) async fn serve(shared: Arc<Shared>, listener: UnixListener) {
    let mut stop = shared.stop.subscribe();
    while !*stop.borrow_and_update() {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = conn.await {
                tracing::debug!(%error, "control connection ended with an error");
            }
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::PUT, "/v1/table") => put_table(&shared, req).await,
        (&Method::GET, "/v1/table") => match &shared.current().spec {
            Some(table) => json_response(StatusCode::OK, &**table),
            None => error(StatusCode::NOT_FOUND, "no route table yet", json!({})),
        },
        (&Method::GET, "/v1/inflight") => {
            json_response(StatusCode::OK, &shared.upstreams.inflight())
        }
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(shared.metrics.render())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (_, "/v1/table" | "/v1/inflight" | "/metrics") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            json!({}),
        ),
        _ => error(StatusCode::NOT_FOUND, "no such endpoint", json!({})),
    };
    Ok(response)
}

async fn put_table(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let bytes = match Limited::new(req.into_body(), MAX_TABLE_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read body: {e}"),
                json!({}),
            );
        }
    };
    let table: RouteTable = match serde_json::from_slice(&bytes) {
        Ok(table) => table,
        Err(e) => {
            let message = format!("invalid route table: {e}");
            return error(StatusCode::BAD_REQUEST, &message, json!({}));
        }
    };
    // A slow data plane, on purpose: tests prove with it that the control plane never
    // acts on a table before the proxy has confirmed it.
    if let Some(delay) = confirm_delay() {
        tokio::time::sleep(delay).await;
    }
    match shared.apply(table, true).await {
        Ok(version) => json_response(StatusCode::OK, &json!({ "version": version })),
        Err(e) => {
            tracing::warn!(error = %e, "route table refused");
            let message = e.to_string();
            match e {
                ProxyError::StaleVersion { current, .. } => error(
                    StatusCode::CONFLICT,
                    &message,
                    json!({ "kind": "stale_version", "current": current }),
                ),
                ProxyError::VersionConflict { version } => error(
                    StatusCode::CONFLICT,
                    &message,
                    json!({ "kind": "version_conflict", "current": version }),
                ),
                ProxyError::Persist { .. } => {
                    error(StatusCode::INTERNAL_SERVER_ERROR, &message, json!({}))
                }
                _ => error(StatusCode::BAD_REQUEST, &message, json!({})),
            }
        }
    }
}

fn json_response<T: serde::Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str, mut extra: serde_json::Value) -> Response<Full<Bytes>> {
    extra["error"] = json!(message);
    json_response(status, &extra)
}

/// `KILN_PROXY_CONFIRM_DELAY_MS`: how long to wait before applying and confirming each
/// pushed table (unset: no delay). For tests of the control plane's ordering.
fn confirm_delay() -> Option<std::time::Duration> {
    std::env::var("KILN_PROXY_CONFIRM_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}
