//! Client connections that make no progress are closed; slow backends are waited for.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::listener::CLIENT_IDLE_TIMEOUT;

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_request_head_is_dropped() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let routes = vec![route(
        "web",
        listen,
        vec![backend(&app, "v1", Group::Stable)],
    )];
    proxy.put(&table(1, routes)).await.expect("table applies");

    let mut slow = TcpStream::connect(listen).await.expect("connects");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a")
        .await
        .expect("partial head");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(CLIENT_IDLE_TIMEOUT * 10, slow.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    // Shut down gracefully after one quiet period (no effect mid-head), dropped after two.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= CLIENT_IDLE_TIMEOUT * 2 && elapsed < CLIENT_IDLE_TIMEOUT * 3,
        "{elapsed:?}"
    );

    // A request that waits on its backend longer than that is not cut.
    let client = http_client();
    let wait = CLIENT_IDLE_TIMEOUT.as_millis() * 3;
    let answer = get(&client, listen, &format!("/slow?ms={wait}"), &[]).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "app")
    );
}
