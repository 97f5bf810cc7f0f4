//! HTTP/1.1 on the unix socket: accepting connections, reading bodies, writing JSON.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;

use crate::DaemonError;
use crate::api::{self, types::ErrorBody};
use crate::daemon::Daemon;
use crate::error::ApiError;

/// Request bodies larger than this are refused (a spec is a few KiB).
const MAX_BODY: usize = 4 << 20;

/// Binds the socket (replacing a stale one), owner-only.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DaemonError::io(path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(DaemonError::io(path))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(DaemonError::io(path))?;
    Ok(listener)
}

/// Serves connections until the task is dropped.
pub(crate) async fn serve(d: Arc<Daemon>, listener: UnixListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let d = d.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(d.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "api connection ended with an error");
            }
        });
    }
}

async fn handle(
    d: Arc<Daemon>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::bad_request(format!(
                "cannot read the request body: {e}"
            ))));
        }
    };
    let answer = api::route(d, method.as_str(), &path, &query, body).await;
    Ok(match answer {
        Ok(json) => json_response(StatusCode::OK, json),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(method = %method, path, error = %e.message, "api request failed");
            }
            error_response(&e)
        }
    })
}

/// Serializes an answer body.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(ApiError::internal)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody {
        error: e.message.clone(),
    })
    .unwrap_or_default();
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, body)
}
