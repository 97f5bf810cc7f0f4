//! Upgrade passthrough: the 101 is relayed and bytes flow both ways, counted in flight.

use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

#[tokio::test]
async fn an_upgraded_connection_echoes_through_the_proxy() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    proxy
        .put(&table(
            1,
            vec![route(
                "web",
                listen,
                vec![backend(&app, "v1", Group::Stable)],
            )],
        ))
        .await
        .expect("table applies");
    let stream = TcpStream::connect(listen).await.expect("connects");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn.with_upgrades());
    let req = Request::get("/ws")
        .header(HOST, "app.test")
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "websocket")
        .body(Full::<Bytes>::default())
        .expect("request");
    let mut response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()[UPGRADE], "websocket");
    let upgraded = hyper::upgrade::on(&mut response).await.expect("upgraded");
    let mut io = TokioIo::new(upgraded);
    for message in ["hello", "kiln"] {
        io.write_all(message.as_bytes()).await.expect("write");
        let mut echo = vec![0; message.len()];
        io.read_exact(&mut echo).await.expect("echo");
        assert_eq!(echo, message.as_bytes());
    }
    let address = app.addr.to_string();
    assert_eq!(proxy.inflight().await.get(&address), Some(&1));
    drop(io);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proxy
        .inflight()
        .await
        .get(&address)
        .copied()
        .unwrap_or_default()
        > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upgraded connection still counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
