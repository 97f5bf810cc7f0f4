//! Keep-alive connections to backends: reused, and replaced when the backend closes them.

use super::*;

#[tokio::test]
async fn connections_closed_by_the_backend_are_replaced() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let routes = vec![route(
        "web",
        listen,
        vec![backend(&app, "v1", Group::Stable)],
    )];
    proxy.put(&table(1, routes)).await.expect("table applies");
    let client = http_client();
    for _ in 0..5 {
        assert_eq!(get(&client, listen, "/", &[]).await.body, "app");
    }
    for round in 0..5 {
        app.close_connections();
        // Let the proxy see the close of its idle connections.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = get(&client, listen, "/", &[]).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "app"),
            "round {round}"
        );
    }
    for _ in 0..5 {
        let answer = get(&client, listen, "/close", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            !answer.headers.contains_key("connection"),
            "hop-by-hop header leaked"
        );
    }
    // A backend that says `Connection: close` is never reused; one that keeps the
    // connection open is, over and over.
    assert_eq!(proxy.upstream(&app.addr.to_string()), 0);
    for _ in 0..5 {
        assert_eq!(get(&client, listen, "/", &[]).await.body, "app");
        assert_eq!(proxy.upstream(&app.addr.to_string()), 1);
    }
}
