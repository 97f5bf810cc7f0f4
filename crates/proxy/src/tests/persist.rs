//! A restarted proxy serves its persisted table before any control plane talks to it.

use super::*;

#[tokio::test]
async fn a_restarted_proxy_serves_the_persisted_table() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let applied = table(
        3,
        vec![route(
            "web",
            listen,
            vec![backend(&app, "v1", Group::Stable)],
        )],
    );
    proxy.put(&applied).await.expect("table applies");
    let home = proxy.stop().await;
    assert!(home.path().join("proxy/table.json").is_file());
    assert!(!home.path().join("proxy.sock").exists());
    assert!(
        tokio::net::TcpStream::connect(listen).await.is_err(),
        "stopped proxy still listens"
    );

    let restarted = TestProxy::start_in(home).await;
    let client = http_client();
    assert_eq!(get(&client, listen, "/", &[]).await.body, "app");
    assert_eq!(restarted.get_table().await, Some(applied));
}
