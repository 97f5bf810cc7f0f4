//! Tests of the whole proxy on loopback: a real server started in a temp home, small
//! hyper backends, and clients speaking HTTP/1.1, h2c, TLS and upgrades.

mod backend;
mod canary;
mod control;
mod drain;
mod h2;
mod http1;
mod idle;
mod metrics;
mod persist;
mod pool;
mod retry;
mod routing;
mod swap;
mod tls;
mod upgrade;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;

use crate::server::Server;
use crate::{Backend, Group, ProxyError, Route, RouteTable, client};

pub(crate) use backend::TestBackend;

/// A proxy serving from a temp home; stopped on drop.
pub(crate) struct TestProxy {
    pub(crate) home: TempDir,
    server: Option<Server>,
}

impl TestProxy {
    pub(crate) async fn start() -> TestProxy {
        let home = tempfile::tempdir().expect("temp home");
        TestProxy::start_in(home).await
    }

    pub(crate) async fn start_in(home: TempDir) -> TestProxy {
        let server = Server::start(home.path()).await.expect("proxy starts");
        TestProxy {
            home,
            server: Some(server),
        }
    }

    pub(crate) async fn put(&self, table: &RouteTable) -> Result<u64, ProxyError> {
        let home = self.home.path().to_owned();
        let table = table.clone();
        tokio::task::spawn_blocking(move || {
            client::put_table(&home, &table, Duration::from_secs(10))
        })
        .await
        .expect("put_table thread")
    }

    pub(crate) async fn inflight(&self) -> BTreeMap<String, u64> {
        let home = self.home.path().to_owned();
        tokio::task::spawn_blocking(move || client::inflight(&home))
            .await
            .expect("inflight thread")
            .expect("inflight answers")
    }

    pub(crate) async fn metrics(&self) -> String {
        let home = self.home.path().to_owned();
        tokio::task::spawn_blocking(move || client::metrics(&home))
            .await
            .expect("metrics thread")
            .expect("metrics answers")
    }

    pub(crate) async fn get_table(&self) -> Option<RouteTable> {
        let home = self.home.path().to_owned();
        tokio::task::spawn_blocking(move || client::get_table(&home))
            .await
            .expect("get_table thread")
            .expect("get_table answers")
    }

    /// Idle pooled connections to a backend address (HTTP/1.1 engine and HTTP/2 front
    /// end together).
    pub(crate) fn upstream(&self, address: &str) -> usize {
        let server = self.server.as_ref().expect("running");
        let socket = address.parse().expect("address");
        let upstream = server.shared.upstreams.get(address, socket);
        upstream.idle_connections() + upstream.idle_h1_connections()
    }

    /// Stops the proxy (freeing its ports) and hands the home back.
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1)).await;
        }
        let home = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.home, home)
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.shared.stop.send_replace(true);
        }
    }
}

/// A loopback address nothing listens on (right now).
pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("ephemeral port");
    listener.local_addr().expect("local addr")
}

pub(crate) fn backend(b: &TestBackend, version: &str, group: Group) -> Backend {
    backend_at(&b.addr.to_string(), version, group)
}

pub(crate) fn backend_at(address: &str, version: &str, group: Group) -> Backend {
    Backend {
        address: address.into(),
        instance: format!("{version}-{address}"),
        version: version.into(),
        group,
    }
}

pub(crate) fn route(name: &str, listen: SocketAddr, backends: Vec<Backend>) -> Route {
    Route {
        name: name.into(),
        listen: listen.to_string(),
        host: None,
        path_prefix: None,
        service: "web".into(),
        timeout_ms: 0,
        tls: None,
        backends,
        canary_weight: 0,
    }
}

pub(crate) fn table(version: u64, routes: Vec<Route>) -> RouteTable {
    RouteTable { version, routes }
}

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive HTTP/1.1 client.
pub(crate) fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A finished exchange: status, selected headers and the body as text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: String,
}

pub(crate) async fn send(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let response = client.request(req).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// GET `path` on `addr` with extra headers; panics on transport errors.
pub(crate) async fn get(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::default()).expect("request");
    send(client, req).await.expect("request through the proxy")
}
