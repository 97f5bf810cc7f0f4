//! Retries only for requests that never reached a backend; 502 and 504 otherwise.

use super::*;

#[tokio::test]
async fn a_refused_connect_is_retried_on_another_backend() {
    let alive = TestBackend::start("alive").await;
    let dead = TestBackend::start("dead").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let backends = vec![
        backend(&dead, "v1", Group::Stable),
        backend(&alive, "v1", Group::Stable),
        backend_at(&free_addr().to_string(), "v1", Group::Stable),
    ];
    proxy
        .put(&table(1, vec![route("web", listen, backends)]))
        .await
        .expect("table applies");
    dead.kill();
    let client = http_client();
    for i in 0..30 {
        let req = Request::post(format!("http://{listen}/echo"))
            .body(Full::new(Bytes::from(format!("body-{i}"))))
            .expect("request");
        let answer = send(&client, req).await.expect("request through the proxy");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, format!("alive:body-{i}"));
    }
    let metrics = proxy.metrics().await;
    let errors = metrics
        .lines()
        .find(|l| l.starts_with("kiln_proxy_connection_errors_total{route=\"web\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .expect("connection errors counted");
    assert!(errors >= 20, "{metrics}");
}

#[tokio::test]
async fn no_backend_reachable_is_a_502_and_a_slow_one_a_504() {
    let slow = TestBackend::start("slow").await;
    let proxy = TestProxy::start().await;
    let dead_listen = free_addr();
    let slow_listen = free_addr();
    let dead = vec![
        backend_at(&free_addr().to_string(), "v1", Group::Stable),
        backend_at(&free_addr().to_string(), "v1", Group::Stable),
    ];
    let mut timed = route(
        "slow",
        slow_listen,
        vec![backend(&slow, "v1", Group::Stable)],
    );
    timed.timeout_ms = 200;
    proxy
        .put(&table(1, vec![route("dead", dead_listen, dead), timed]))
        .await
        .expect("applies");
    let client = http_client();
    assert_eq!(
        get(&client, dead_listen, "/", &[]).await.status,
        StatusCode::BAD_GATEWAY
    );
    let started = std::time::Instant::now();
    let answer = get(&client, slow_listen, "/slow?ms=3000", &[]).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        get(&client, slow_listen, "/slow?ms=10", &[]).await.status,
        StatusCode::OK
    );
}
