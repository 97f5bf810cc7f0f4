//! HTTP/2 with prior knowledge (h2c) on a plain listener.

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::*;

#[tokio::test]
async fn h2c_prior_knowledge_requests_are_forwarded() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let mut host_route = route("web", listen, vec![backend(&app, "v1", Group::Stable)]);
    host_route.host = Some("app.example.com".into());
    proxy
        .put(&table(1, vec![host_route]))
        .await
        .expect("table applies");
    let stream = TcpStream::connect(listen).await.expect("connects");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::get("http://app.example.com/headers")
        .body(Full::<Bytes>::default())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let seen = String::from_utf8_lossy(&body);
    assert!(seen.contains("host: app.example.com\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-host: app.example.com\n"),
        "{seen}"
    );
    let req = Request::post("http://app.example.com/echo")
        .body(Full::new(Bytes::from_static(b"over h2")))
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"app:over h2");
}
