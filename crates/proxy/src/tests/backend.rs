//! A small hyper backend for the tests: answers with its name, sleeps, echoes bodies,
//! headers and upgraded bytes, streams chunked answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A backend on an ephemeral loopback port; every connection dies with it.
pub(crate) struct TestBackend {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
    /// Bumped to close every open connection while the listener stays.
    generation: watch::Sender<u64>,
}

impl TestBackend {
    pub(crate) async fn start(name: &str) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("backend binds");
        let addr = listener.local_addr().expect("backend addr");
        let name: Arc<str> = name.into();
        let generation = watch::Sender::new(0);
        let closing = generation.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let name = name.clone();
                let mut closing = closing.subscribe();
                connections.spawn(async move {
                    let service = service_fn(move |req| answer(name.clone(), req));
                    let serve = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = serve => {}
                        _ = closing.changed() => {}
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        TestBackend {
            addr,
            task,
            generation,
        }
    }

    /// Closes every open connection; new ones are still accepted.
    pub(crate) fn close_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Closes the listener and every connection: new connects are refused.
    pub(crate) fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A body of unknown length: hyper sends it chunked, one chunk per piece.
pub(crate) struct Pieces(std::collections::VecDeque<Bytes>);

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What `/stream` sends, in pieces.
pub(crate) const STREAM: [&str; 3] = ["first;", "second;", "third"];

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn answer(
    name: Arc<str>,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    if let Some(protocol) = req.headers().get(UPGRADE).cloned() {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut read, &mut write).await;
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, protocol)
            .body(Full::default().boxed())
            .expect("101 response");
        return Ok(response);
    }
    if req.uri().path() == "/stream" {
        let pieces = STREAM.iter().map(|p| Bytes::from_static(p.as_bytes()));
        let response = Response::builder()
            .header("x-backend", &*name)
            .body(Pieces(pieces.collect()).boxed())
            .expect("streamed response");
        return Ok(response);
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let close = req.uri().path() == "/close";
    let body = match req.uri().path() {
        "/slow" => {
            let ms = query
                .strip_prefix("ms=")
                .and_then(|m| m.parse().ok())
                .unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            name.to_string()
        }
        "/headers" => {
            let mut lines = String::new();
            for (header, value) in req.headers() {
                lines.push_str(&format!("{header}: {}\n", value.to_str().unwrap_or("?")));
            }
            lines
        }
        "/echo" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            format!("{name}:{}", String::from_utf8_lossy(&body))
        }
        _ => name.to_string(),
    };
    let response = Response::builder()
        .header("x-backend", &*name)
        .header("keep-alive", "timeout=30")
        .header(CONNECTION, if close { "close" } else { "keep-alive" })
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("response");
    Ok(response)
}
