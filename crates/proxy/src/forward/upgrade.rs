//! Upgrade passthrough (WebSocket and the like): on 101, splice client and backend streams.

use hyper::Response;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::ProxyBody;
use super::headers;
use crate::upstream::{InflightGuard, Lease};

/// Answers the client's upgrade with the backend's 101 and copies bytes both ways until
/// either side closes; the connection counts as in flight until then.
pub(crate) fn splice(
    mut response: Response<Incoming>,
    requested: HeaderValue,
    client: OnUpgrade,
    lease: Lease,
    guard: InflightGuard,
) -> Response<ProxyBody> {
    // The backend connection becomes the upgraded stream: never back to the pool.
    lease.discard();
    let backend = hyper::upgrade::on(&mut response);
    let (mut parts, _) = response.into_parts();
    let protocol = headers::strip_hop_by_hop(&mut parts.headers).unwrap_or(requested);
    parts.headers.insert(CONNECTION, headers::UPGRADE_TOKEN);
    parts.headers.insert(UPGRADE, protocol);
    tokio::spawn(async move {
        let _guard = guard;
        match tokio::try_join!(client, backend) {
            Ok((client, backend)) => {
                let mut client = TokioIo::new(client);
                let mut backend = TokioIo::new(backend);
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                    tracing::debug!(%error, "upgraded connection ended with an error");
                }
            }
            Err(error) => tracing::debug!(%error, "upgrade failed"),
        }
    });
    Response::from_parts(parts, ProxyBody::empty())
}
