//! A backend removed from the table gets no new requests; its requests in flight finish.

use super::*;

#[tokio::test]
async fn a_slow_request_on_a_removed_backend_completes() {
    let old = TestBackend::start("old").await;
    let new = TestBackend::start("new").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    proxy
        .put(&table(
            1,
            vec![route(
                "web",
                listen,
                vec![backend(&old, "v1", Group::Stable)],
            )],
        ))
        .await
        .expect("table applies");
    let client = http_client();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { get(&client, listen, "/slow?ms=1200", &[]).await }
    });
    let old_address = old.addr.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proxy
        .inflight()
        .await
        .get(&old_address)
        .copied()
        .unwrap_or_default()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow request never in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy
        .put(&table(
            2,
            vec![route(
                "web",
                listen,
                vec![backend(&new, "v2", Group::Stable)],
            )],
        ))
        .await
        .expect("table applies");
    assert_eq!(proxy.inflight().await.get(&old_address), Some(&1));
    for _ in 0..10 {
        assert_eq!(get(&client, listen, "/", &[]).await.body, "new");
    }
    let answer = slow.await.expect("slow request task");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "old");
    assert_eq!(
        proxy
            .inflight()
            .await
            .get(&old_address)
            .copied()
            .unwrap_or_default(),
        0
    );
}
